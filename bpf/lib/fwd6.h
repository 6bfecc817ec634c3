/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv6 forwarding: fwd.h's steps for IPv6 — the hop limit, delivery into a local pod, and
 * FIB-driven forwarding out of the node (bpf_fib_lookup with AF_INET6). MACs, the MTU check and
 * the FIB's to-the-stack reasons are fwd.h's. */
#ifndef HRB_FWD6_H
#define HRB_FWD6_H

#include "common.h"
#include "fwd.h"
#include "ipv6.h"
#include "maps.h"

/* Decrements the hop limit (IPv6 has no header checksum); false when it was <= 1: the stack then
 * answers with ICMPv6 time exceeded. */
static __always_inline bool hop_limit_decrement(struct __sk_buff *skb)
{
	__u8 hl;

	if (bpf_skb_load_bytes(skb, IP6_HOP_OFF, &hl, 1) || hl <= 1)
		return false;
	hl--;
	return bpf_skb_store_bytes(skb, IP6_HOP_OFF, &hl, 1, 0) == 0;
}

/* As service_reply (fwd.h): a local client whose IPv6 service connection went through the stack
 * (kube-proxy's ip6tables DNAT) gets its replies through the stack too. */
static __always_inline bool service_reply6(const struct hrb_ip6 *daddr, __u16 dport, __u8 proto)
{
	if (!services_enabled || !dport)
		return false;
	struct hrb_flow6_key k = {.ip = *daddr, .port = dport, .proto = proto};
	__u64 *seen = bpf_map_lookup_elem(&stack_flows6, &k);
	__u64 life = proto == IPPROTO_TCP ? ct_lifetime_tcp_ns : ct_lifetime_other_ns;

	return seen && (__s64)(hrb_now() - *seen) <= (__s64)life;
}

static __always_inline int deliver_local6(struct __sk_buff *skb, const struct hrb_endpoint *ep)
{
	struct hrb_endpoint e = *ep;

	if (!hop_limit_decrement(skb)) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	set_macs(skb, e.pod_mac, e.node_mac);
	count(HRB_R_REDIRECT_PEER6);
	record(1, e.ifindex);
	return bpf_redirect_peer(e.ifindex, 0);
}

static __always_inline int to_local_pod6(struct __sk_buff *skb, const struct pkt6 *p,
					 const struct hrb_endpoint *ep)
{
	if (service_reply6(&p->daddr, p->dport, p->proto)) {
		count(HRB_R_TO_STACK_SERVICE_REPLY);
		return TC_ACT_OK;
	}
	return deliver_local6(skb, ep);
}

/* tot_len stays 0 (as for IPv4, fwd.h): the MTU is checked by mtu_ok. */
static __always_inline int fib_lookup6(struct __sk_buff *skb, struct bpf_fib_lookup *fib,
				       const struct hrb_ip6 *saddr, const struct hrb_ip6 *daddr,
				       __u8 proto)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	__builtin_memcpy(fib->ipv6_src, saddr, 16);
	__builtin_memcpy(fib->ipv6_dst, daddr, 16);
	fib->ifindex = skb->ingress_ifindex;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
}

static __always_inline int forward_fib6(struct __sk_buff *skb, int rc, struct bpf_fib_lookup *fib)
{
	__u32 ifindex = fib->ifindex;

	if (!hop_limit_decrement(skb)) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		set_macs(skb, fib->dmac, fib->smac);
		count(HRB_R_REDIRECT_FIB6);
		record(2, ifindex);
		return bpf_redirect(ifindex, 0);
	}
	struct bpf_redir_neigh nh = {};

	nh.nh_family = AF_INET6;
	__builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, 16); /* the next hop, as the FIB left it */
	count(HRB_R_REDIRECT_NEIGH6);
	record(3, ifindex);
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

#endif
