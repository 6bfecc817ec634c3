// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * from_uplink: tc ingress of the node's eth0, i.e. every packet arriving from the fabric.
 *   reply to a masqueraded flow      -> reverse NAT, then into the pod
 *   ICMP error about such a flow     -> outer and quoted headers translated back, into the pod
 *   to the node IP at a NodePort     -> a backend (lib/nodeport.h): on this node DNAT and
 *                                       bpf_redirect_peer; on another DNAT + SNAT to the node
 *                                       IP and out along the FIB
 *   a remote backend's reply to such -> reverse SNAT, reverse DNAT, back along the FIB
 *   ICMP errors about either         -> both headers translated, on to the client or backend
 *   a local pod                      -> connection-tracked (a load-balanced connection's reply
 *                                       gets its service address back), MACs, TTL,
 *                                       bpf_redirect_peer
 *   anything else                    -> the stack
 * IPv6 (ipv6_enabled): from_uplink6, the same with the IPv6 maps: NAT66 replies and ICMPv6
 * errors about masqueraded flows back to the pod, NodePort on the node's IPv6 address and
 * ICMPv6 errors about its connections (lib/nodeport6.h), local pods tracked and delivered.
 */
#include "lib/common.h"
#include "lib/ct.h"
#include "lib/ct6.h"
#include "lib/fwd.h"
#include "lib/fwd6.h"
#include "lib/ipv6.h"
#include "lib/lb.h"
#include "lib/lb6.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/nodeport.h"
#include "lib/nodeport6.h"
#include "lib/parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __noinline int from_uplink6(struct __sk_buff *skb)
{
	struct pkt6 p;
	enum parse6_result pr = parse6(skb, &p);
	struct hrb_endpoint *ep = NULL;
	struct bpf_fib_lookup fib;
	enum np_verdict np = NP_NONE;
	int translated, rc = 0;

	injected_delay();
	if (pr != PARSE6_OK)
		return parse6_verdict(pr);
	translated = p.icmp_error ? icmp6_error_in(skb, &p) : reverse_nat6(skb, &p);
	if (translated < 0)
		return TC_ACT_SHOT;
	if (translated == 3)
		np = p.icmp_error ? nodeport6_error_to_client(skb, &p, &fib, &rc)
				  : nodeport6_reply(skb, &p, &fib, &rc);
	else if (translated == 0)
		np = p.icmp_error ? nodeport6_error_to_backend(skb, &p, &fib, &rc, &ep)
				  : nodeport6_in(skb, &p, &fib, &rc, &ep);
	switch (np) {
	case NP_NONE:
		break;
	case NP_LOCAL:
		return ep ? deliver_local6(skb, ep) : TC_ACT_SHOT;
	case NP_FORWARD:
		return forward_fib6(skb, rc, &fib);
	case NP_TO_STACK:
		return TC_ACT_OK;
	default:
		return TC_ACT_SHOT;
	}
	if (translated == 2) {
		count(HRB_R_REVNAT_MISS);
		return TC_ACT_OK;
	}
	ep = bpf_map_lookup_elem(&endpoints6, &p.daddr);
	if (ep) {
		if (!translated && !ct6_and_reverse_lb(skb, &p, HRB_CT_F_FROM_OUTSIDE, true))
			return TC_ACT_SHOT;
		return to_local_pod6(skb, &p, ep);
	}
	count(HRB_R_TO_STACK_NOT_OURS);
	return TC_ACT_OK;
}

/* IPv4; a subprogram, as from_pod4 is (the stack of a call chain is bounded). */
static __noinline int from_uplink4(struct __sk_buff *skb)
{
	struct pkt p;
	enum parse_result pr = parse(skb, &p);
	struct hrb_endpoint *ep = NULL;
	struct bpf_fib_lookup fib;
	enum np_verdict np = NP_NONE;
	int translated, rc = 0;

	injected_delay();
	if (pr != PARSE_OK)
		return parse_verdict(pr);
	translated = p.icmp_error ? icmp_error_in(skb, &p) : reverse_nat(skb, &p);
	if (translated < 0)
		return TC_ACT_SHOT;
	if (translated == 3)
		np = p.icmp_error ? nodeport_error_to_client(skb, &p, &fib, &rc)
				  : nodeport_reply(skb, &p, &fib, &rc);
	else if (translated == 0)
		np = p.icmp_error ? nodeport_error_to_backend(skb, &p, &fib, &rc, &ep)
				  : nodeport_in(skb, &p, &fib, &rc, &ep);
	switch (np) {
	case NP_NONE:
		break;
	case NP_LOCAL:
		return ep ? deliver_local(skb, ep) : TC_ACT_SHOT;
	case NP_FORWARD:
		return forward_fib(skb, rc, &fib);
	case NP_TO_STACK:
		return TC_ACT_OK;
	default:
		return TC_ACT_SHOT;
	}
	if (translated == 2) {
		count(HRB_R_REVNAT_MISS);
		return TC_ACT_OK;
	}
	ep = bpf_map_lookup_elem(&endpoints, &p.daddr);
	if (ep) {
		if (!translated && !ct_and_reverse_lb(skb, &p, HRB_CT_F_FROM_OUTSIDE, true))
			return TC_ACT_SHOT;
		return to_local_pod(skb, p.daddr, p.dport, p.proto, ep);
	}
	count(HRB_R_TO_STACK_NOT_OURS);
	return TC_ACT_OK;
}

SEC("tc")
int from_uplink(struct __sk_buff *skb)
{
	if (ipv6_enabled && skb->protocol == bpf_htons(ETH_P_IPV6))
		return from_uplink6(skb);
	return from_uplink4(skb);
}
