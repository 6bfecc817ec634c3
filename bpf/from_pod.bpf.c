// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * from_pod: tc ingress of each pod's node-side veth (lxc…), i.e. every packet a pod sends.
 * Every packet of pod traffic is connection-tracked (lib/ct.h).
 *   local pod            -> MACs, TTL, bpf_redirect_peer into it
 *   service CIDR         -> the stack (kube-proxy's DNAT); the client is remembered so that
 *                           replies to it go through the stack too (to be un-DNATed)
 *   elsewhere            -> FIB lookup, MTU check, masquerade unless the destination is in the
 *                           cluster or a nonMasqueradeCIDR (lib/nat.h), bpf_redirect /
 *                           redirect_neigh
 *   TTL <= 1, oversize   -> the stack, which answers with the ICMP error
 *   anything unusual     -> the stack, with a reason counter
 */
#include "lib/common.h"
#include "lib/ct.h"
#include "lib/fwd.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct pkt p;
	enum parse_result pr = parse(skb, &p);
	struct hrb_ct_entry *e;
	struct hrb_endpoint *ep;
	struct bpf_fib_lookup fib;
	int rc;

	injected_delay();
	if (pr != PARSE_OK)
		return parse_verdict(pr);

	ep = bpf_map_lookup_elem(&endpoints, &p.daddr);
	if (ep) {
		if (!ct_pod_traffic(&p, 0, &e))
			return TC_ACT_SHOT;
		return to_local_pod(skb, p.daddr, p.dport, p.proto, ep);
	}
	if (in_services(p.daddr)) {
		/* kube-proxy DNATs in the stack; remember the client so its replies go there too.
		 */
		if (p.has_ports) {
			struct hrb_flow_key k = {.ip = p.saddr, .port = p.sport, .proto = p.proto};
			__u64 now = bpf_ktime_get_ns();

			bpf_map_update_elem(&stack_flows, &k, &now, BPF_ANY);
		}
		count(HRB_R_TO_STACK_SERVICE);
		return TC_ACT_OK;
	}
	if (p.ip->ttl <= 1) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	bool masq = needs_masquerade(p.daddr);

	rc = fib_lookup(skb, &fib, masq ? node_ip : p.saddr, p.daddr, p.proto, p.ip->tos);
	if (!fib_forwardable(rc))
		return fib_to_stack(rc);
	if (!mtu_ok(skb, fib.ifindex))
		return TC_ACT_OK;
	if (masq) {
		enum nat_verdict v = p.icmp_error ? icmp_error_out(skb, &p) : masquerade(skb, &p);

		if (v == NAT_TO_STACK)
			return TC_ACT_OK;
		if (v == NAT_DROP)
			return TC_ACT_SHOT;
	} else if (!ct_pod_traffic(&p, 0, &e)) {
		return TC_ACT_SHOT;
	}
	return forward_fib(skb, rc, &fib);
}
