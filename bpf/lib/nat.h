/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Masquerade (SNAT to the node IP) for TCP, UDP and ICMP echo, and its reverse. */
#ifndef HRB_NAT_H
#define HRB_NAT_H

#include "common.h"
#include "maps.h"
#include "parse.h"

#define NAT_RETRIES 32

static __always_inline bool needs_masquerade(__u32 daddr)
{
	struct hrb_lpm_key k = {.prefixlen = 32, .addr = daddr};
	__u32 zero = 0;
	void *lpm;

	if (in_cluster(daddr) || in_services(daddr))
		return false;
	lpm = bpf_map_lookup_elem(&nonmasq_active, &zero);
	if (!lpm)
		return true;
	return bpf_map_lookup_elem(lpm, &k) == NULL;
}

static __always_inline __u64 nat_timeout(__u8 proto, __u16 flags)
{
	if (proto == IPPROTO_TCP)
		return (flags & HRB_NAT_F_CLOSING) ? nat_timeout_closing_ns : nat_timeout_tcp_ns;
	return proto == IPPROTO_UDP ? nat_timeout_udp_ns : nat_timeout_icmp_ns;
}

static __always_inline bool nat_expired(const struct hrb_nat_entry *e, __u8 proto, __u64 now)
{
	return now - e->last_seen_ns > nat_timeout(proto, e->flags);
}

/* L4 checksum offset, or 0 for none. */
static __always_inline __u32 l4_csum_off(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return L4_OFF + offsetof(struct tcphdr, check);
	if (proto == IPPROTO_UDP)
		return L4_OFF + offsetof(struct udphdr, check);
	return L4_OFF + offsetof(struct icmphdr, checksum);
}

/* Rewrites one address (source or destination) and one port (or ICMP echo id) with
 * incremental checksum updates; a UDP checksum of zero (none) stays zero. */
static __always_inline int rewrite(struct __sk_buff *skb, __u8 proto, bool source, __u32 old_ip,
				   __u32 new_ip, __u16 old_port, __u16 new_port)
{
	__u32 csum = l4_csum_off(proto);
	__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 ip_off = source ? IP_SRC_OFF : IP_DST_OFF;
	__u32 port_off;

	if (proto == IPPROTO_ICMP)
		port_off = L4_OFF + offsetof(struct icmphdr, un.echo.id);
	else
		port_off = L4_OFF + (source ? 0 : 2);

	if (old_ip != new_ip) {
		/* ICMP's checksum has no pseudo-header. */
		if (proto != IPPROTO_ICMP &&
		    bpf_l4_csum_replace(skb, csum, old_ip, new_ip, BPF_F_PSEUDO_HDR | mangled | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip, 4))
			return -1;
		if (bpf_skb_store_bytes(skb, ip_off, &new_ip, 4, 0))
			return -1;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum, old_port, new_port, mangled | 2))
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0))
			return -1;
	}
	return 0;
}

static __always_inline void fwd_key(const struct pkt *p, struct hrb_nat_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = p->saddr;
	k->dst_ip = p->daddr;
	k->src_port = p->sport;
	k->dst_port = p->proto == IPPROTO_ICMP ? 0 : p->dport;
	k->proto = p->proto;
}

/* Claims a NAT port for a new flow: the pod's own port when it is in range and free, else
 * candidates from a flow hash, each claimed atomically (BPF_NOEXIST) so that an existing flow is
 * never taken over; an expired entry may be reclaimed. Returns the port (network order) or 0. */
static __always_inline __u16 nat_claim(const struct pkt *p, const struct hrb_nat_entry *pod_side,
				       __u64 now)
{
	struct hrb_nat_key rk = {};
	__u32 range = (__u32)nat_port_max - nat_port_min + 1;
	__u32 h = bpf_get_prandom_u32();
	__u16 orig = bpf_ntohs(p->sport);

	rk.src_ip = p->daddr;
	rk.dst_ip = node_ip;
	rk.src_port = p->proto == IPPROTO_ICMP ? 0 : p->dport;
	rk.proto = p->proto;
	for (__u32 i = 0; i < NAT_RETRIES; i++) {
		__u16 cand;

		if (i == 0 && orig >= nat_port_min && orig <= nat_port_max)
			cand = orig;
		else
			cand = nat_port_min + (h + i * 7919) % range;
		rk.dst_port = bpf_htons(cand);
		if (!bpf_map_update_elem(&nat_rev, &rk, pod_side, BPF_NOEXIST))
			return rk.dst_port;
		struct hrb_nat_entry *old = bpf_map_lookup_elem(&nat_rev, &rk);

		if (old && nat_expired(old, p->proto, now)) {
			/* The old flow is dead: drop both of its entries and take the port. */
			struct hrb_nat_key ofk = {.src_ip = old->ip,
						  .dst_ip = rk.src_ip,
						  .src_port = old->port,
						  .dst_port = rk.src_port,
						  .proto = rk.proto};

			bpf_map_delete_elem(&nat_fwd, &ofk);
			if (!bpf_map_update_elem(&nat_rev, &rk, pod_side, BPF_EXIST)) {
				count(HRB_R_NAT_RECLAIMED);
				return rk.dst_port;
			}
		}
	}
	return 0;
}

/* Source NAT of a pod's packet to the node IP. TC_ACT_OK to go on forwarding, else a verdict. */
static __always_inline int masquerade(struct __sk_buff *skb, struct pkt *p)
{
	struct hrb_nat_key fk;
	struct hrb_nat_entry *e;
	__u64 now = bpf_ktime_get_ns();
	__u16 nat_port;

	if (!p->has_ports)
		return TC_ACT_OK; /* other ICMP: no flow to masquerade; forwarded as is */
	fwd_key(p, &fk);
	e = bpf_map_lookup_elem(&nat_fwd, &fk);
	if (e && !nat_expired(e, p->proto, now)) {
		nat_port = e->port;
		if (now - e->last_seen_ns > 1000000000ull)
			e->last_seen_ns = now;
		if (p->tcp_flags & 0x05)
			e->flags |= HRB_NAT_F_CLOSING;
		count(HRB_R_MASQ_HIT);
	} else {
		struct hrb_nat_entry pod_side = {
		    .ip = p->saddr, .port = p->sport, .last_seen_ns = now};
		struct hrb_nat_entry node_side = {.ip = node_ip, .last_seen_ns = now};

		nat_port = nat_claim(p, &pod_side, now);
		if (!nat_port) {
			count(HRB_R_DROP_NO_PORT);
			return TC_ACT_SHOT;
		}
		node_side.port = nat_port;
		bpf_map_update_elem(&nat_fwd, &fk, &node_side, BPF_ANY);
		count(HRB_R_MASQ_NEW);
		if (nat_port != p->sport)
			count(HRB_R_MASQ_PORT_CHANGED);
	}
	if (rewrite(skb, p->proto, true, p->saddr, node_ip, p->sport, nat_port))
		return TC_ACT_SHOT;
	p->saddr = node_ip;
	p->sport = nat_port;
	return TC_ACT_OK;
}

/* Reverse NAT of a reply arriving at the node IP. Returns 1 when translated (p updated to the
 * pod as destination), 0 when the packet belongs to no masqueraded flow, -1 on error. */
static __always_inline int reverse_nat(struct __sk_buff *skb, struct pkt *p)
{
	struct hrb_nat_key rk = {};
	struct hrb_nat_entry *e;
	__u16 dport;

	if (!p->has_ports || p->daddr != node_ip)
		return 0;
	rk.src_ip = p->saddr;
	rk.dst_ip = p->daddr;
	rk.proto = p->proto;
	if (p->proto == IPPROTO_ICMP) {
		if (p->icmp_type != ICMP_ECHOREPLY)
			return 0;
		rk.dst_port = p->sport; /* the echo id */
	} else {
		rk.src_port = p->sport;
		rk.dst_port = p->dport;
	}
	e = bpf_map_lookup_elem(&nat_rev, &rk);
	if (!e)
		return 0;
	__u64 now = bpf_ktime_get_ns();

	if (now - e->last_seen_ns > 1000000000ull)
		e->last_seen_ns = now;
	if (p->tcp_flags & 0x05)
		e->flags |= HRB_NAT_F_CLOSING;
	__u32 pod_ip = e->ip;
	__u16 pod_port = e->port;

	dport = p->proto == IPPROTO_ICMP ? p->sport : p->dport;
	if (rewrite(skb, p->proto, false, p->daddr, pod_ip, dport, pod_port))
		return -1;
	p->daddr = pod_ip;
	count(HRB_R_REVNAT_HIT);
	return 1;
}

#endif
