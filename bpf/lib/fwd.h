/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding: TTL, delivery into a local pod, and FIB-driven forwarding out of the node. */
#ifndef HRB_FWD_H
#define HRB_FWD_H

#include "common.h"
#include "maps.h"

/* Decrements the TTL and fixes the IP checksum; false when the TTL was <= 1 (the stack then
 * answers with ICMP time exceeded). Neither redirect helper decrements it, and the kernel's
 * forwarding path is bypassed. */
static __always_inline bool ttl_decrement(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + IP_OFF;
	__u8 ttl;

	if ((void *)(ip + 1) > end)
		return false;
	ttl = ip->ttl;
	if (ttl <= 1)
		return false;
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons((__u16)ttl << 8),
			    bpf_htons((__u16)(ttl - 1) << 8), 2);
	ttl--;
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, ttl), &ttl, 1, 0);
	return true;
}

static __always_inline void set_macs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	bpf_skb_store_bytes(skb, 0, dst, 6, 0);
	bpf_skb_store_bytes(skb, 6, src, 6, 0);
}

/* A packet to a local client whose service connection went through kube-proxy's DNAT: the
 * stack must see the reply to reverse the translation. An entry lasts as long as a tracked flow
 * would (6 h TCP, 60 s other) after the client's last packet to the service. */
static __always_inline bool service_reply(__u32 daddr, __u16 dport, __u8 proto)
{
	if (!services_enabled || !dport)
		return false;
	struct hrb_flow_key k = {.ip = daddr, .port = dport, .proto = proto};
	__u64 *seen = bpf_map_lookup_elem(&stack_flows, &k);
	__u64 life = proto == IPPROTO_TCP ? ct_lifetime_tcp_ns : ct_lifetime_other_ns;

	return seen && (__s64)(hrb_now() - *seen) <= (__s64)life;
}

/* Into a pod on this node: its MAC, the lxc MAC as source, straight into its netns. */
static __always_inline int deliver_local(struct __sk_buff *skb, const struct hrb_endpoint *ep)
{
	struct hrb_endpoint e = *ep;

	if (!ttl_decrement(skb)) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	set_macs(skb, e.pod_mac, e.node_mac);
	count(HRB_R_REDIRECT_PEER);
	record(1, e.ifindex);
	return bpf_redirect_peer(e.ifindex, 0);
}

/* A packet for a pod on this node: through the stack when it answers a service client (see
 * service_reply), else straight in. */
static __always_inline int to_local_pod(struct __sk_buff *skb, __u32 daddr, __u16 dport, __u8 proto,
					const struct hrb_endpoint *ep)
{
	if (service_reply(daddr, dport, proto)) {
		count(HRB_R_TO_STACK_SERVICE_REPLY);
		return TC_ACT_OK;
	}
	return deliver_local(skb, ep);
}

/* FIB lookup for a packet about to leave the node. tot_len stays 0: with the real length,
 * GSO super-packets would come back FRAG_NEEDED and silently take the slow path. */
static __always_inline int fib_lookup(struct __sk_buff *skb, struct bpf_fib_lookup *fib,
				      __u32 saddr, __u32 daddr, __u8 proto, __u8 tos)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->tos = tos;
	fib->l4_protocol = proto;
	fib->ipv4_src = saddr;
	fib->ipv4_dst = daddr;
	fib->ifindex = skb->ingress_ifindex;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
}

/* True when the FIB result lets the program forward the packet itself. */
static __always_inline bool fib_forwardable(int rc)
{
	return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH;
}

/* The packet fits the egress device's MTU (GSO packets: each segment does). An oversize packet
 * goes to the stack, which fragments it or, with DF set, answers with ICMP fragmentation
 * needed — the FIB lookup cannot tell (tot_len stays 0, above). */
static __always_inline bool mtu_ok(struct __sk_buff *skb, __u32 ifindex)
{
	__u32 mtu = 0;

	if (bpf_check_mtu(skb, ifindex, &mtu, 0, BPF_MTU_CHK_SEGS) == BPF_MTU_CHK_RET_SUCCESS)
		return true;
	count(HRB_R_TO_STACK_FRAG_NEEDED);
	return false;
}

/* Counts why a FIB result sends the packet to the stack. */
static __always_inline int fib_to_stack(int rc)
{
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED)
		count(HRB_R_TO_STACK_LOCAL);
	else if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		count(HRB_R_TO_STACK_FRAG_NEEDED);
	else
		count(HRB_R_TO_STACK_FIB_OTHER);
	return TC_ACT_OK;
}

/* Out of the node along the FIB result (after any masquerade rewrite). */
static __always_inline int forward_fib(struct __sk_buff *skb, int rc, struct bpf_fib_lookup *fib)
{
	__u32 ifindex = fib->ifindex;

	if (!ttl_decrement(skb)) {
		count(HRB_R_TO_STACK_TTL);
		return TC_ACT_OK;
	}
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		set_macs(skb, fib->dmac, fib->smac);
		count(HRB_R_REDIRECT_FIB);
		record(2, ifindex);
		return bpf_redirect(ifindex, 0);
	}
	struct bpf_redir_neigh nh = {};

	nh.nh_family = AF_INET;
	nh.ipv4_nh = fib->ipv4_dst;
	count(HRB_R_REDIRECT_NEIGH);
	record(3, ifindex);
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

#endif
