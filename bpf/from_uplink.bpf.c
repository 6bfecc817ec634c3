// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * from_uplink: tc ingress of the node's eth0, i.e. every packet arriving from the fabric.
 *   reply to a masqueraded flow      -> reverse NAT, then into the pod
 *   ICMP error about such a flow     -> outer and quoted headers translated back, into the pod
 *   a local pod                      -> connection-tracked (a load-balanced connection's reply
 *                                       gets its service address back), MACs, TTL,
 *                                       bpf_redirect_peer
 *   anything else                    -> the stack
 */
#include "lib/common.h"
#include "lib/ct.h"
#include "lib/fwd.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int from_uplink(struct __sk_buff *skb)
{
	struct pkt p;
	enum parse_result pr = parse(skb, &p);
	struct hrb_endpoint *ep;
	int translated;

	injected_delay();
	if (pr != PARSE_OK)
		return parse_verdict(pr);
	translated = p.icmp_error ? icmp_error_in(skb, &p) : reverse_nat(skb, &p);
	if (translated < 0)
		return TC_ACT_SHOT;
	if (translated == 2) {
		count(HRB_R_REVNAT_MISS);
		return TC_ACT_OK;
	}
	ep = bpf_map_lookup_elem(&endpoints, &p.daddr);
	if (ep) {
		if (!translated && !ct_and_reverse_lb(skb, &p, HRB_CT_F_FROM_OUTSIDE))
			return TC_ACT_SHOT;
		return to_local_pod(skb, p.daddr, p.dport, p.proto, ep);
	}
	count(HRB_R_TO_STACK_NOT_OURS);
	return TC_ACT_OK;
}
