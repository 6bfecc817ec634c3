/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NAT66 masquerade (source NAT to the node's IPv6 address) on IPv6 connection tracking, and its
 * reverse: nat.h's design for IPv6, as Cilium's BPF masquerade does it for IPv6
 * (snat_v6_nat / snat_v6_rev_nat). A masqueraded flow is one state in two keys of `ct6` — its
 * HRB_CT_FLOW entry and its HRB_CT_NAT_REV claim {remote, node ip6, remote port, nat port} ->
 * {pod, pod port} — with the same guarantees: ports from the one range nat.h's come from
 * (nat_port_min..nat_port_max, which the node's own sockets do not use: ip_local_port_range is
 * shared by both families), claimed with BPF_NOEXIST, an expired claim taken over by a
 * compare-and-swap, both halves checked against each other on every packet (an evicted half is
 * re-created, a port that went to another flow gets the flow a new one): never mis-translated.
 *
 * Checksums: IPv6 has no header checksum; TCP, UDP and ICMPv6 all cover a pseudo-header with
 * both addresses, so an address change is folded into the L4 checksum as a bpf_csum_diff of the
 * 16 bytes (BPF_F_IPV6: skb->csum of a CHECKSUM_COMPLETE packet stays as it is, the address and
 * the checksum change cancel out in it). ICMPv6 errors about masqueraded flows are translated
 * both ways, outer and quoted headers (RFC 5508 4.2 for IPv6), the quoted L4 checksum included.
 * Packets without ports to be masqueraded go to the stack (ip6tables MASQUERADE, if any).
 */
#ifndef HRB_NAT6_H
#define HRB_NAT6_H

#include "common.h"
#include "ct.h"
#include "ct6.h"
#include "ipv6.h"
#include "maps.h"
#include "nat.h"

static __always_inline bool needs_masquerade6(const struct hrb_ip6 *daddr)
{
	struct hrb_lpm6_key k = {.prefixlen = 128, .addr = *daddr};
	__u32 zero = 0;
	void *lpm;

	if (in_cluster6(daddr) || in_services6(daddr))
		return false;
	lpm = bpf_map_lookup_elem(&nonmasq6_active, &zero);
	if (!lpm)
		return true;
	return bpf_map_lookup_elem(lpm, &k) == NULL;
}

static __always_inline __u32 l4_csum_off6(__u8 proto, __u32 l4_off)
{
	if (proto == IPPROTO_TCP)
		return l4_off + offsetof(struct tcphdr, check);
	if (proto == IPPROTO_UDP)
		return l4_off + offsetof(struct udphdr, check);
	return l4_off + 2; /* ICMPv6 */
}

/* The checksum difference of an address change. */
static __always_inline __s64 ip6_diff(const struct hrb_ip6 *old_ip, const struct hrb_ip6 *new_ip)
{
	return bpf_csum_diff((__be32 *)old_ip->w, 16, (__be32 *)new_ip->w, 16, 0);
}

/* Rewrites one address (source or destination) and one port (or ICMPv6 echo id) with
 * incremental L4 checksum updates; a UDP checksum of zero (none: invalid over IPv6) stays zero,
 * and one that comes out as zero is written as 0xffff (BPF_F_MARK_MANGLED_0; RFC 8200 8.1). */
static __always_inline int rewrite6(struct __sk_buff *skb, const struct pkt6 *p, bool source,
				    const struct hrb_ip6 *old_ip, const struct hrb_ip6 *new_ip,
				    __u16 old_port, __u16 new_port)
{
	__u32 csum = l4_csum_off6(p->proto, p->l4_off);
	__u64 mangled = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 port_off;

	if (p->proto == IPPROTO_ICMPV6)
		port_off = p->l4_off + 4;
	else
		port_off = p->l4_off + (source ? 0 : 2);
	if (!ip6_eq(old_ip, new_ip)) {
		__s64 d = ip6_diff(old_ip, new_ip);

		if (d < 0 ||
		    bpf_l4_csum_replace(skb, csum, 0, d,
					BPF_F_PSEUDO_HDR | csum_flag_ipv6 | mangled) ||
		    bpf_skb_store_bytes(skb, source ? IP6_SRC_OFF : IP6_DST_OFF, new_ip, 16, 0))
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

/* A backend's reply in a load-balanced connection: the service address back as its source. */
static __always_inline int lb6_reverse(struct __sk_buff *skb, struct pkt6 *p,
				       const struct hrb_ct6_entry *e)
{
	struct hrb_ip6 vip = e->nat_ip;
	__u16 vport = e->nat_port;

	if (rewrite6(skb, p, true, &p->saddr, &vip, p->sport, vport))
		return -1;
	p->saddr = vip;
	p->sport = vport;
	count(HRB_R_LB_REVERSE);
	return 0;
}

static __always_inline void nat6_rev_key(struct hrb_ct6_key *k, const struct hrb_ip6 *remote,
					 __u16 remote_port, __u16 nat_port, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = *remote;
	ip6_set_node(&k->dst_ip);
	k->src_port = proto == IPPROTO_ICMPV6 ? 0 : remote_port;
	k->dst_port = nat_port;
	k->proto = proto;
	k->kind = HRB_CT_NAT_REV;
}

/* nat_claim (nat.h) for IPv6: the pod's port when in range and free, else independent random
 * draws, each a BPF_NOEXIST insert; an expired claim is taken over by the CPU that wins the
 * compare-and-swap of its lifetime. The port (network order), 0 when none was free. `kind`: the
 * claim's owner, HRB_CT_FLOW (a masqueraded pod flow) or HRB_CT_NODEPORT (nodeport6.h); one
 * range and one key space for both. */
static __always_inline __u16 nat6_claim(const struct pkt6 *p, __u64 expires, struct hrb_ct6_key *rk,
					__u8 kind)
{
	struct hrb_ct6_entry owner = {
	    .expires_ns = expires, .nat_ip = p->saddr, .nat_port = p->sport, .owner = kind};
	__u32 range = (__u32)nat_port_max - nat_port_min + 1;
	__u16 orig = bpf_ntohs(p->sport);
	__u64 now = hrb_now();

	for (__u32 i = 0; i < NAT_RETRIES; i++) {
		struct hrb_ct6_entry *old;
		__u16 cand;
		__u64 seen;

		if (i == 0 && orig >= nat_port_min && orig <= nat_port_max)
			cand = orig;
		else
			cand = nat_port_min + bpf_get_prandom_u32() % range;
		nat6_rev_key(rk, &p->daddr, p->dport, bpf_htons(cand), p->proto);
		if (!bpf_map_update_elem(&ct6, rk, &owner, BPF_NOEXIST))
			return rk->dst_port;
		old = bpf_map_lookup_elem(&ct6, rk);
		if (!old)
			continue;
		seen = old->expires_ns;
		if ((__s64)(now - seen) > 0 &&
		    __sync_val_compare_and_swap(&old->expires_ns, seen, expires) == seen) {
			old->nat_ip = owner.nat_ip;
			old->nat_port = owner.nat_port;
			old->flags = 0;
			old->owner = kind;
			count(HRB_R_NAT_RECLAIMED);
			return rk->dst_port;
		}
	}
	return 0;
}

static __always_inline void nat6_mirror(struct hrb_ct6_entry *claim, const struct hrb_ct6_entry *e)
{
	__u8 closed = e->flags & HRB_CT_F_CLOSED;

	claim->expires_ns = e->expires_ns;
	if ((claim->flags & HRB_CT_F_CLOSED) != closed)
		claim->flags = closed;
}

/* The port the flow's claim still holds for it (re-creating an evicted claim); 0 when another
 * flow holds the port now. */
static __always_inline __u16 nat6_check_claim(const struct pkt6 *p, const struct hrb_ct6_entry *e)
{
	struct hrb_ct6_key rk;
	struct hrb_ct6_entry *r;

	nat6_rev_key(&rk, &p->daddr, p->dport, e->nat_port, p->proto);
	r = bpf_map_lookup_elem(&ct6, &rk);
	if (r) {
		if (!ip6_eq(&r->nat_ip, &p->saddr) || r->nat_port != p->sport ||
		    r->owner != HRB_CT_FLOW)
			return 0;
		nat6_mirror(r, e);
		return e->nat_port;
	}
	struct hrb_ct6_entry claim = {.expires_ns = e->expires_ns,
				      .nat_ip = p->saddr,
				      .nat_port = p->sport,
				      .owner = HRB_CT_FLOW};

	if (bpf_map_update_elem(&ct6, &rk, &claim, BPF_NOEXIST))
		return 0;
	count(HRB_R_CT_EVICTED);
	return e->nat_port;
}

/* Source NAT of a pod's packet to the node's IPv6 address (masquerade() for IPv6). */
static __always_inline enum nat_verdict masquerade6(struct __sk_buff *skb, struct pkt6 *p)
{
	struct hrb_ct6_key k, rk;
	struct hrb_ct6_entry *e, n;
	struct hrb_ip6 node;
	__u64 now = hrb_now();
	__u16 nat_port = 0;
	bool reply;

	ip6_set_node(&node);
	e = ct6_lookup(p, &k, &reply);
	if (e && reply && (e->flags & HRB_CT_F_FROM_OUTSIDE)) {
		/* An answer in a flow opened towards the pod from outside keeps its address. */
		ct6_track(e, p, true, now);
		if (e->flags & HRB_CT_F_SVC)
			return lb6_reverse(skb, p, e) ? NAT_DROP : NAT_FORWARD;
		count(HRB_R_MASQ_SKIP_REPLY);
		return NAT_FORWARD;
	}
	if (e && reply) {
		ct6_key_orig(p, &k);
		e = NULL;
	}
	if (!p->has_ports) {
		count(HRB_R_TO_STACK_NO_PORTS);
		return NAT_TO_STACK;
	}
	if (e)
		ct6_track(e, p, false, now);
	if (e && (e->flags & HRB_CT_F_MASQ)) {
		nat_port = nat6_check_claim(p, e);
		if (nat_port)
			count(HRB_R_MASQ_HIT);
		else
			count(HRB_R_NAT_REMAPPED);
	}
	if (!nat_port) {
		ct6_init(&n, p, HRB_CT_F_MASQ, now);
		nat_port = nat6_claim(p, n.expires_ns, &rk, HRB_CT_FLOW);
		if (!nat_port) {
			count(HRB_R_DROP_NO_PORT);
			return NAT_DROP;
		}
		n.nat_ip = node;
		n.nat_port = nat_port;
		if (e) {
			e->nat_ip = node;
			e->nat_port = nat_port;
			e->flags |= HRB_CT_F_MASQ;
		} else {
			long rc = bpf_map_update_elem(&ct6, &k, &n, BPF_NOEXIST);

			if (rc == -17 /* EEXIST: another CPU created the flow first */) {
				bpf_map_delete_elem(&ct6, &rk);
				e = bpf_map_lookup_elem(&ct6, &k);
				if (!e || !(e->flags & HRB_CT_F_MASQ))
					return NAT_DROP;
				nat_port = e->nat_port;
			} else if (rc) {
				bpf_map_delete_elem(&ct6, &rk); /* no half state */
				count(HRB_R_DROP_CT_FULL);
				return NAT_DROP;
			} else {
				count(HRB_R_CT_CREATED);
			}
		}
		count(HRB_R_MASQ_NEW);
		if (nat_port != p->sport)
			count(HRB_R_MASQ_PORT_CHANGED);
	}
	if (rewrite6(skb, p, true, &p->saddr, &node, p->sport, nat_port))
		return NAT_DROP;
	p->saddr = node;
	p->sport = nat_port;
	return NAT_FORWARD;
}

/* Reverse NAT of a reply arriving at the node's IPv6 address: 1 translated (p: to the pod), 0 no
 * masqueraded flow's, 2 to a masquerade port without state, 3 to a port a NodePort connection
 * claimed (p untouched: nodeport6.h translates it), -1 on error (reverse_nat, nat.h). */
static __always_inline int reverse_nat6(struct __sk_buff *skb, struct pkt6 *p)
{
	struct hrb_ct6_key rk, fk;
	struct hrb_ct6_entry *r, *e;
	struct hrb_ip6 pod_ip, node;
	__u16 nat_port, pod_port;
	bool icmp = p->proto == IPPROTO_ICMPV6;

	if (!p->has_ports || !ip6_is_node(&p->daddr))
		return 0;
	if (icmp && p->icmp_type != ICMPV6_ECHO_REPLY)
		return 0;
	nat_port = icmp ? p->sport : p->dport;
	nat6_rev_key(&rk, &p->saddr, p->sport, nat_port, p->proto);
	r = bpf_map_lookup_elem(&ct6, &rk);
	if (r && r->owner == HRB_CT_NODEPORT)
		return 3;
	if (!r || r->owner != HRB_CT_FLOW)
		goto miss;
	pod_ip = r->nat_ip;
	pod_port = r->nat_port;
	ct6_key_tuple(&fk, &pod_ip, &p->saddr, pod_port, icmp ? 0 : p->sport, p->proto,
		      HRB_CT_FLOW);
	e = bpf_map_lookup_elem(&ct6, &fk);
	if (!e) {
		/* The flow's half was evicted: the claim has all it takes to re-create it. */
		struct hrb_ct6_entry n = {.expires_ns = r->expires_ns,
					  .nat_port = nat_port,
					  .flags = HRB_CT_F_MASQ | HRB_CT_F_ESTABLISHED |
						   (r->flags & HRB_CT_F_CLOSED)};

		ip6_set_node(&n.nat_ip);
		if (!bpf_map_update_elem(&ct6, &fk, &n, BPF_NOEXIST))
			count(HRB_R_CT_EVICTED);
		e = bpf_map_lookup_elem(&ct6, &fk);
		if (!e)
			goto miss;
	}
	if (!(e->flags & HRB_CT_F_MASQ) || e->nat_port != nat_port)
		goto miss; /* a stale claim: the flow was re-mapped since */
	ct6_track(e, p, true, hrb_now());
	nat6_mirror(r, e);
	ip6_set_node(&node);
	if (rewrite6(skb, p, false, &node, &pod_ip, nat_port, pod_port))
		return -1;
	p->daddr = pod_ip;
	if (icmp)
		p->sport = pod_port;
	else
		p->dport = pod_port;
	count(HRB_R_REVNAT_HIT);
	return 1;
miss:
	if (bpf_ntohs(nat_port) >= nat_port_min && bpf_ntohs(nat_port) <= nat_port_max)
		return 2;
	return 0;
}

/* An ICMPv6 error's outer source or destination address, folded into the ICMPv6 checksum (its
 * pseudo-header has the outer addresses). */
static __always_inline int icmp6_outer_rewrite(struct __sk_buff *skb, const struct pkt6 *p,
					       bool source, const struct hrb_ip6 *old_ip,
					       const struct hrb_ip6 *new_ip)
{
	__s64 d = ip6_diff(old_ip, new_ip);

	if (d < 0 ||
	    bpf_l4_csum_replace(skb, p->l4_off + 2, 0, d, BPF_F_PSEUDO_HDR | csum_flag_ipv6) ||
	    bpf_skb_store_bytes(skb, source ? IP6_SRC_OFF : IP6_DST_OFF, new_ip, 16, 0))
		return -1;
	return 0;
}

/* Translates an ICMPv6 error about a translated flow: in the quoted packet the address, the port
 * (or echo id) and the quoted L4 checksum (whose pseudo-header has the address), and with
 * `outer` the outer address; every change folded into the ICMPv6 checksum, whose pseudo-header
 * has the outer addresses. inbound: the quoted source and the outer destination (towards the
 * pod: node:nat -> pod:port); else the quoted destination and the outer source (from the pod). */
static __always_inline int icmp6_error_rewrite(struct __sk_buff *skb, const struct pkt6 *p,
					       bool inbound, const struct hrb_ip6 *old_ip,
					       const struct hrb_ip6 *new_ip, __u16 old_port,
					       __u16 new_port, bool outer)
{
	__u32 icsum = p->l4_off + 2;
	__u32 iip = p->l4_off + 8;
	__u32 il4 = p->inner.l4_off;
	__u8 proto = p->inner.proto;
	__u32 addr_off = iip + (inbound ? 8 : 24);
	__u32 port_off = il4 + (proto == IPPROTO_ICMPV6 ? 4 : (inbound ? 0 : 2));
	__u32 l4c_off = l4_csum_off6(proto, il4);
	__s64 d = ip6_diff(old_ip, new_ip);
	__u16 before, after;

	if (d < 0)
		return -1;
	/* The quoted address: data of the ICMPv6 message. */
	if (bpf_skb_store_bytes(skb, addr_off, new_ip, 16, 0) ||
	    bpf_l4_csum_replace(skb, icsum, 0, d, 0))
		return -1;
	/* The quoted L4 checksum, when it was quoted and is in use (UDP's may be 0). A UDP
	 * checksum that comes out as 0 is written as 0xffff (RFC 8200 8.1: 0 means none, invalid
	 * over IPv6), as BPF_F_MARK_MANGLED_0 does for rewrite6's; the ICMPv6 checksum takes the
	 * bytes as written. */
	if (bpf_skb_load_bytes(skb, l4c_off, &before, 2) == 0 &&
	    !(proto == IPPROTO_UDP && before == 0)) {
		if (bpf_l3_csum_replace(skb, l4c_off, 0, d, 0) ||
		    bpf_l3_csum_replace(skb, l4c_off, old_port, new_port, 2) ||
		    bpf_skb_load_bytes(skb, l4c_off, &after, 2))
			return -1;
		if (proto == IPPROTO_UDP && after == 0) {
			after = 0xffff;
			if (bpf_skb_store_bytes(skb, l4c_off, &after, 2, 0))
				return -1;
		}
		if (bpf_l4_csum_replace(skb, icsum, before, after, 2))
			return -1;
	}
	if (bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0) ||
	    bpf_l4_csum_replace(skb, icsum, old_port, new_port, 2))
		return -1;
	return outer ? icmp6_outer_rewrite(skb, p, !inbound, old_ip, new_ip) : 0;
}

/* lb_icmp_error_rewrite (nat.h) for IPv6: an ICMPv6 error to a load-balanced connection's
 * client about one of its requests, quoted as the backend got it (client -> backend; e: that
 * flow, HRB_CT_F_SVC): the quoted destination gets the service address back (e->nat_ip:nat_port,
 * a ClusterIP's or the node's NodePort), and so does the outer source when the backend itself
 * sent the error. */
static __always_inline int lb6_icmp_error_rewrite(struct __sk_buff *skb, struct pkt6 *p,
						  const struct hrb_ct6_entry *e)
{
	struct pkt6_inner *in = &p->inner;
	bool from_backend = ip6_eq(&p->saddr, &in->daddr);

	if (icmp6_error_rewrite(skb, p, false, &in->daddr, &e->nat_ip, in->dport, e->nat_port,
				from_backend))
		return -1;
	if (from_backend)
		p->saddr = e->nat_ip;
	count(HRB_R_ICMP_ERROR_LB);
	return 0;
}

/* An ICMPv6 error arriving for the node's address about a masqueraded flow (the quoted packet:
 * node:nat -> remote:port): back to the pod. 1 translated (p->daddr: the pod), 0 about no
 * masqueraded flow, 3 about a NodePort connection's SNATed request (p untouched), -1 on
 * error. */
static __always_inline int icmp6_error_in(struct __sk_buff *skb, struct pkt6 *p)
{
	struct pkt6_inner *in = &p->inner;
	struct hrb_ct6_key rk;
	struct hrb_ct6_entry *r;
	struct hrb_ip6 node;

	if (!in->ok || !ip6_is_node(&p->daddr) || !ip6_is_node(&in->saddr))
		return 0;
	nat6_rev_key(&rk, &in->daddr, in->dport, in->sport, in->proto);
	r = bpf_map_lookup_elem(&ct6, &rk);
	if (r && r->owner == HRB_CT_NODEPORT)
		return 3;
	if (!r || r->owner != HRB_CT_FLOW)
		return 0;
	ip6_set_node(&node);
	if (icmp6_error_rewrite(skb, p, true, &node, &r->nat_ip, in->sport, r->nat_port, true))
		return -1;
	p->daddr = r->nat_ip;
	count(HRB_R_ICMP_ERROR_REVNAT);
	return 1;
}

/* A pod's ICMPv6 error towards a destination that is masqueraded, about a packet it received
 * (quoted: remote -> pod): the node's address in a flow the pod opened (masqueraded), the pod's
 * in a flow opened towards it from outside; anything else is dropped, so that no pod address
 * leaves for the outside unasked (icmp_error_out, nat.h). */
static __always_inline enum nat_verdict icmp6_error_out(struct __sk_buff *skb, struct pkt6 *p)
{
	struct pkt6_inner *in = &p->inner;
	bool icmp = in->proto == IPPROTO_ICMPV6;
	struct hrb_ct6_key k;
	struct hrb_ct6_entry *e;

	if (!in->ok || !ip6_eq(&in->saddr, &p->daddr) || !ip6_eq(&in->daddr, &p->saddr))
		goto no_state;
	ct6_key_tuple(&k, &in->daddr, &in->saddr, icmp ? in->sport : in->dport,
		      icmp ? 0 : in->sport, in->proto, HRB_CT_FLOW);
	e = bpf_map_lookup_elem(&ct6, &k);
	if (e && (e->flags & HRB_CT_F_MASQ)) {
		__u16 pod_port = icmp ? in->sport : in->dport;

		if (icmp6_error_rewrite(skb, p, false, &in->daddr, &e->nat_ip, pod_port,
					e->nat_port, true))
			return NAT_DROP;
		ip6_set_node(&p->saddr);
		count(HRB_R_ICMP_ERROR_NAT);
		return NAT_FORWARD;
	}
	ct6_key_tuple(&k, &in->saddr, &in->daddr, in->sport, icmp ? 0 : in->dport, in->proto,
		      HRB_CT_FLOW);
	e = bpf_map_lookup_elem(&ct6, &k);
	if (e && (e->flags & HRB_CT_F_FROM_OUTSIDE)) {
		/* A NodePort client connected to the node: the error takes the node's address
		 * and NodePort, outside and in the quote (nodeport6.h). */
		if ((e->flags & HRB_CT_F_SVC) && lb6_icmp_error_rewrite(skb, p, e))
			return NAT_DROP;
		return NAT_FORWARD;
	}
no_state:
	count(HRB_R_DROP_ICMP_ERROR_NO_STATE);
	return NAT_DROP;
}

#endif
