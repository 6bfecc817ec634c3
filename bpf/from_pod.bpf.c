// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * from_pod: tc ingress of each pod's node-side veth (lxc…), i.e. every packet a pod sends.
 * Every packet of pod traffic is connection-tracked (lib/ct.h).
 *   service address      -> a backend (lib/lb.h, when services are load-balanced in BPF), then
 *                           as a packet to that backend; unknown services: the stack
 *                           (kube-proxy's DNAT), the client remembered so that its replies go
 *                           through the stack too
 *   local pod            -> MACs, TTL, bpf_redirect_peer into it (a backend's reply gets its
 *                           service address back first)
 *   elsewhere            -> FIB lookup, MTU check, masquerade unless the destination is in the
 *                           cluster or a nonMasqueradeCIDR (lib/nat.h), bpf_redirect /
 *                           redirect_neigh
 *   TTL <= 1, oversize   -> the stack, which answers with the ICMP error
 *   a source address that is not the sending pod's -> dropped
 *   anything unusual     -> the stack, with a reason counter
 * With host_routing off (bpf-lb mode) every packet goes on to the stack after tracking and load
 * balancing: the kernel routes, iptables masquerades, and to_pod (below, on the lxc egress)
 * tracks what the stack delivers into the pod.
 * IPv6 (ipv6_enabled) takes the same steps in from_pod6 with the IPv6 maps and headers (ipv6.h,
 * ct6.h, lb6.h, nat6.h: NAT66 to the node's IPv6 address, fwd6.h); without it IPv6 goes to the
 * stack.
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
#include "lib/parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* An IPv6 packet from a pod: from_pod's steps (below) for IPv6. A subprogram: its stack frame
 * is not added to the IPv4 path's. */
static __noinline int from_pod6(struct __sk_buff *skb)
{
	struct pkt6 p;
	enum parse6_result pr = parse6(skb, &p);
	struct hrb_endpoint *ep;
	struct lb6_choice lbc = {};
	struct bpf_fib_lookup fib;
	struct hrb_ip6 src;
	bool masq, balanced = false;
	int rc;

	injected_delay();
	if (pr != PARSE6_OK)
		return parse6_verdict(pr);
	ep = bpf_map_lookup_elem(&endpoints6, &p.saddr);
	if (!ep || ep->ifindex != skb->ingress_ifindex) {
		count(HRB_R_DROP_SOURCE);
		return TC_ACT_SHOT;
	}
	if (in_services6(&p.daddr)) {
		enum lb_verdict v = lb6_choose(skb, &p, &lbc);

		if (v == LB_DROP)
			return TC_ACT_SHOT;
		if (v == LB_NONE) {
			if (p.has_ports) {
				struct hrb_flow6_key k = {
				    .ip = p.saddr, .port = p.sport, .proto = p.proto};
				__u64 now = hrb_now();

				bpf_map_update_elem(&stack_flows6, &k, &now, BPF_ANY);
			}
			count(lb_enabled ? HRB_R_TO_STACK_NO_SERVICE : HRB_R_TO_STACK_SERVICE);
			return TC_ACT_OK;
		}
		if (!host_routing)
			return lb6_apply(skb, &p, &lbc) ? TC_ACT_OK : TC_ACT_SHOT;
		/* Rewritten only once it leaves in BPF (lb_choose, lb.h). */
		balanced = true;
		if (lbc.pending && p.hop_limit <= 1) {
			count(HRB_R_TO_STACK_TTL);
			return TC_ACT_OK;
		}
	}
	ep = bpf_map_lookup_elem(&endpoints6, lbc.pending ? &lbc.bip : &p.daddr);
	if (ep) {
		if (balanced ? !lb6_apply(skb, &p, &lbc)
			     : !ct6_and_reverse_lb(skb, &p, 0, host_routing))
			return TC_ACT_SHOT;
		if (!host_routing) {
			count(HRB_R_STACK_ROUTES);
			return TC_ACT_OK;
		}
		return to_local_pod6(skb, &p, ep);
	}
	if (!host_routing) {
		if (!ct6_and_reverse_lb(skb, &p, 0, host_routing))
			return TC_ACT_SHOT;
		count(HRB_R_STACK_ROUTES);
		return TC_ACT_OK;
	}
	if (p.hop_limit <= 1) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	masq = !balanced && needs_masquerade6(&p.daddr);
	if (masq)
		ip6_set_node(&src);
	else
		src = p.saddr;
	rc = fib_lookup6(skb, &fib, &src, lbc.pending ? &lbc.bip : &p.daddr, p.proto);
	if (!fib_forwardable(rc))
		return fib_to_stack(rc);
	/* Oversize: the stack answers Packet Too Big (IPv6 is not fragmented on the way) about the
	 * service address, the packet being still untranslated. */
	if (!mtu_ok(skb, fib.ifindex))
		return TC_ACT_OK;
	if (masq) {
		enum nat_verdict v = p.icmp_error ? icmp6_error_out(skb, &p) : masquerade6(skb, &p);

		if (v == NAT_TO_STACK)
			return TC_ACT_OK;
		if (v == NAT_DROP)
			return TC_ACT_SHOT;
	} else if (balanced ? !lb6_apply(skb, &p, &lbc)
			    : !ct6_and_reverse_lb(skb, &p, 0, host_routing)) {
		return TC_ACT_SHOT;
	}
	return forward_fib6(skb, rc, &fib);
}

static __always_inline bool is_ipv6(const struct __sk_buff *skb)
{
	return ipv6_enabled && skb->protocol == bpf_htons(ETH_P_IPV6);
}

/* IPv4. A subprogram too: the verifier bounds the stack of a call chain (512 bytes), and the two
 * families' frames are each about half of it. */
static __noinline int from_pod4(struct __sk_buff *skb)
{
	struct pkt p;
	enum parse_result pr = parse(skb, &p);
	struct hrb_endpoint *ep;
	struct bpf_fib_lookup fib;
	struct lb_choice lbc = {};
	bool masq, balanced = false;
	int rc;

	injected_delay();
	if (pr != PARSE_OK)
		return parse_verdict(pr);
	/* A pod sends with its own address only (Cilium: source IP verification in bpf_lxc). */
	ep = bpf_map_lookup_elem(&endpoints, &p.saddr);
	if (!ep || ep->ifindex != skb->ingress_ifindex) {
		count(HRB_R_DROP_SOURCE);
		return TC_ACT_SHOT;
	}

	if (in_services(p.daddr)) {
		enum lb_verdict v = lb_choose(skb, &p, &lbc);

		if (v == LB_DROP)
			return TC_ACT_SHOT;
		if (v == LB_NONE) {
			/* kube-proxy DNATs in the stack; remember the client so its replies go
			 * there too. */
			if (p.has_ports) {
				struct hrb_flow_key k = {
				    .ip = p.saddr, .port = p.sport, .proto = p.proto};
				__u64 now = hrb_now();

				bpf_map_update_elem(&stack_flows, &k, &now, BPF_ANY);
			}
			count(lb_enabled ? HRB_R_TO_STACK_NO_SERVICE : HRB_R_TO_STACK_SERVICE);
			return TC_ACT_OK;
		}
		if (!host_routing) /* bpf-lb: translated here, routed by the stack */
			return lb_apply(skb, &p, &lbc) ? TC_ACT_OK : TC_ACT_SHOT;
		/* Tracked by lb_choose / lb_apply; a backend is a pod, never masqueraded. From
		 * here on the checks go by the backend, and the packet is rewritten only once it
		 * leaves in BPF (lb.h, struct lb_choice). */
		balanced = true;
		if (lbc.pending && p.ttl <= 1) {
			count(HRB_R_TO_STACK_TTL);
			return TC_ACT_OK;
		}
	}

	ep = bpf_map_lookup_elem(&endpoints, lbc.pending ? &lbc.bip : &p.daddr);
	if (ep) {
		if (balanced ? !lb_apply(skb, &p, &lbc)
			     : !ct_and_reverse_lb(skb, &p, 0, host_routing))
			return TC_ACT_SHOT;
		if (!host_routing) {
			count(HRB_R_STACK_ROUTES);
			return TC_ACT_OK;
		}
		return to_local_pod(skb, p.daddr, p.dport, p.proto, ep);
	}
	if (!host_routing) {
		/* The stack routes; ip-masq-agent's iptables rule masquerades. */
		if (!ct_and_reverse_lb(skb, &p, 0, host_routing))
			return TC_ACT_SHOT;
		count(HRB_R_STACK_ROUTES);
		return TC_ACT_OK;
	}
	if (p.ttl <= 1) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	masq = !balanced && needs_masquerade(p.daddr);
	rc = fib_lookup(skb, &fib, masq ? node_ip : p.saddr, lbc.pending ? lbc.bip : p.daddr,
			p.proto, p.tos);
	/* Oversize (the FIB lookup of an skb checks its length against the egress MTU itself, and
	 * mtu_ok a GSO packet's segments): with DF the stack answers fragmentation needed — about
	 * the service address, the packet being untranslated (above); without, it fragments the
	 * packet — translated first, so that every fragment reaches the connection's backend. */
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED ||
	    (fib_forwardable(rc) && !mtu_ok(skb, fib.ifindex))) {
		if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
			count(HRB_R_TO_STACK_FRAG_NEEDED);
		if (!p.df && !lb_apply(skb, &p, &lbc))
			return TC_ACT_SHOT;
		return TC_ACT_OK;
	}
	if (!fib_forwardable(rc))
		return fib_to_stack(rc);
	if (masq) {
		enum nat_verdict v = p.icmp_error ? icmp_error_out(skb, &p) : masquerade(skb, &p);

		if (v == NAT_TO_STACK)
			return TC_ACT_OK;
		if (v == NAT_DROP)
			return TC_ACT_SHOT;
	} else if (balanced ? !lb_apply(skb, &p, &lbc)
			    : !ct_and_reverse_lb(skb, &p, 0, host_routing)) {
		return TC_ACT_SHOT;
	}
	return forward_fib(skb, rc, &fib);
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	if (is_ipv6(skb))
		return from_pod6(skb);
	return from_pod4(skb);
}

/*
 * to_pod: tc egress of each lxc… in bpf-lb mode only (ebpf mode delivers with redirect_peer and
 * tracks in from_pod/from_uplink): what the stack delivers into the pod is tracked, and a
 * load-balanced connection's replies get their service address back here — after the stack's
 * forwarding, whose conntrack saw them with the backend's address.
 */
static __noinline int to_pod6(struct __sk_buff *skb)
{
	struct pkt6 p;
	enum parse6_result pr = parse6(skb, &p);

	if (pr != PARSE6_OK)
		return parse6_verdict(pr);
	if (!ct6_and_reverse_lb(skb, &p, 0, true))
		return TC_ACT_SHOT;
	count(HRB_R_TO_POD);
	return TC_ACT_OK;
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	if (is_ipv6(skb))
		return to_pod6(skb);
	struct pkt p;
	enum parse_result pr = parse(skb, &p);

	if (pr != PARSE_OK)
		return parse_verdict(pr);
	if (!ct_and_reverse_lb(skb, &p, 0, true))
		return TC_ACT_SHOT;
	count(HRB_R_TO_POD);
	return TC_ACT_OK;
}
