/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 header parsing, with the extension headers walked where that is safe, into a summary of
 * the packet like parse.h's for IPv4.
 *
 * Extension headers (RFC 8200 4.1), at most HRB_IPV6_MAX_EXT of them:
 *   destination options          walked (only the final destination reads them)
 *   routing, segments left 0     walked (the destination address is the final one)
 *   routing, segments left > 0   the stack: the L4 checksum's pseudo-header and the flow's tuple
 *                                would be the last segment's, not the destination address
 *   hop-by-hop options           the stack: every node on the path must read them (router
 *                                alert, jumbo payload), which is the kernel's forwarding code
 *   fragment                     the stack, as IPv4 fragments are (no fragment tracking)
 *   more than HRB_IPV6_MAX_EXT   the stack
 * ICMPv6 other than echo and the four error types (neighbour and router discovery, MLD, ...) is
 * the node's own business: the stack. So are link-local, multicast, loopback and unspecified
 * addresses, which are never forwarded.
 */
#ifndef HRB_IPV6_H
#define HRB_IPV6_H

#include "common.h"

#define ETH_P_IPV6 0x86DD
#define AF_INET6 10
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
#define HRB_IPV6_MAX_EXT 4

/* Offsets in an Ethernet + IPv6 frame. */
#define IP6_OFF ETH_HLEN
#define IP6_HLEN 40
#define IP6_HOP_OFF (IP6_OFF + 7)
#define IP6_SRC_OFF (IP6_OFF + 8)
#define IP6_DST_OFF (IP6_OFF + 24)

/* The header an ICMPv6 error quotes (RFC 4443 2.4: as much of the packet as fits). */
struct pkt6_inner {
	struct hrb_ip6 saddr, daddr;
	__u16 sport, dport; /* network order; ICMPv6 echo: id, 0 */
	__u8 proto;
	__u8 ok;      /* IPv6 without extension headers + 8 bytes of TCP, UDP or ICMPv6 echo */
	__u16 l4_off; /* of the quoted L4 header in the frame */
};

struct pkt6 {
	__u32 l4_off; /* of the L4 header, extension headers included */
	struct hrb_ip6 saddr, daddr;
	__u16 sport, dport; /* network order; ICMPv6 echo: id, 0 */
	__u8 proto;
	__u8 tcp_flags;
	__u8 has_ports; /* TCP, UDP or ICMPv6 echo request / reply */
	__u8 icmp_type;
	__u8 icmp_error; /* unreachable, packet too big, time exceeded, parameter problem */
	__u8 hop_limit;
	struct pkt6_inner inner; /* icmp_error only */
};

enum parse6_result {
	PARSE6_OK = 0,
	PARSE6_FRAGMENT,
	PARSE6_EXTHDR, /* an extension header that is not walked */
	PARSE6_NDISC,  /* ICMPv6 other than echo and errors */
	PARSE6_SCOPE,  /* link-local, multicast, loopback, unspecified */
	PARSE6_MALFORMED,
};

static __always_inline bool ip6_eq(const struct hrb_ip6 *a, const struct hrb_ip6 *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline bool ip6_is_node(const struct hrb_ip6 *a)
{
	return a->w[0] == node_ip6.w[0] && a->w[1] == node_ip6.w[1] && a->w[2] == node_ip6.w[2] &&
	       a->w[3] == node_ip6.w[3];
}

static __always_inline void ip6_set_node(struct hrb_ip6 *a)
{
	a->w[0] = node_ip6.w[0];
	a->w[1] = node_ip6.w[1];
	a->w[2] = node_ip6.w[2];
	a->w[3] = node_ip6.w[3];
}

static __always_inline bool in_cluster6(const struct hrb_ip6 *a)
{
	return (a->w[0] & cluster_mask6.w[0]) == cluster_net6.w[0] &&
	       (a->w[1] & cluster_mask6.w[1]) == cluster_net6.w[1] &&
	       (a->w[2] & cluster_mask6.w[2]) == cluster_net6.w[2] &&
	       (a->w[3] & cluster_mask6.w[3]) == cluster_net6.w[3];
}

static __always_inline bool in_services6(const struct hrb_ip6 *a)
{
	return service_mask6.w[0] && (a->w[0] & service_mask6.w[0]) == service_net6.w[0] &&
	       (a->w[1] & service_mask6.w[1]) == service_net6.w[1] &&
	       (a->w[2] & service_mask6.w[2]) == service_net6.w[2] &&
	       (a->w[3] & service_mask6.w[3]) == service_net6.w[3];
}

/* Never forwarded: fe80::/10, ff00::/8, ::1, ::. */
static __always_inline bool ip6_scoped(const struct hrb_ip6 *a)
{
	__u32 w0 = bpf_ntohl(a->w[0]);

	if ((w0 & 0xffc00000) == 0xfe800000 || (w0 >> 24) == 0xff)
		return true;
	return !w0 && !a->w[1] && !a->w[2] && (a->w[3] == 0 || a->w[3] == bpf_htonl(1));
}

static __always_inline bool icmp6_is_error(__u8 type)
{
	return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
}

static __always_inline void ip6_copy(struct hrb_ip6 *dst, const void *src)
{
	__builtin_memcpy(dst, src, sizeof(*dst));
}

/* The quoted packet of an ICMPv6 error whose ICMPv6 header is at offset `l4` of the frame. */
static __always_inline void parse6_inner(void *data, void *end, __u32 l4, struct pkt6_inner *in)
{
	struct ipv6hdr *ip = data + l4 + 8;
	__u16 *ports = (void *)(ip + 1);

	in->ok = 0;
	if ((void *)(ip + 1) > end || (void *)(ports + 4) > end)
		return;
	if (ip->version != 6)
		return;
	ip6_copy(&in->saddr, &ip->saddr);
	ip6_copy(&in->daddr, &ip->daddr);
	in->proto = ip->nexthdr;
	in->l4_off = l4 + 8 + IP6_HLEN;
	if (ip->nexthdr == IPPROTO_TCP || ip->nexthdr == IPPROTO_UDP) {
		in->sport = ports[0];
		in->dport = ports[1];
	} else if (ip->nexthdr == IPPROTO_ICMPV6) {
		__u8 type = *(__u8 *)ports;

		if (type != ICMPV6_ECHO_REQUEST && type != ICMPV6_ECHO_REPLY)
			return;
		in->sport = ports[2]; /* the echo id */
		in->dport = 0;
	} else {
		return;
	}
	in->ok = 1;
}

/* The L4 header (`need` bytes at `off`) is not in the linear data: a truncated packet, or one
 * whose extension headers push its L4 header into the paged part, which is the stack's to handle
 * (the walk reads with bpf_skb_load_bytes, the L4 header is read in place). */
static __always_inline enum parse6_result l4_out_of_reach6(const struct __sk_buff *skb, __u32 off,
							   __u32 need)
{
	return off + need <= skb->len ? PARSE6_EXTHDR : PARSE6_MALFORMED;
}

static __always_inline enum parse6_result parse6(struct __sk_buff *skb, struct pkt6 *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip = data + IP6_OFF;
	__u32 off = IP6_OFF + IP6_HLEN;
	__u8 nh;
	void *l4;

	if ((void *)(ip + 1) > end)
		return PARSE6_MALFORMED;
	if (ip->version != 6)
		return PARSE6_MALFORMED;
	nh = ip->nexthdr;
	ip6_copy(&p->saddr, &ip->saddr);
	ip6_copy(&p->daddr, &ip->daddr);
	p->hop_limit = ip->hop_limit;
#pragma unroll
	for (int i = 0; i < HRB_IPV6_MAX_EXT; i++) {
		struct {
			__u8 nexthdr, hdrlen, type, segments_left;
		} x;

		if (nh == IPPROTO_FRAGMENT)
			return PARSE6_FRAGMENT;
		if (nh == IPPROTO_HOPOPTS)
			return PARSE6_EXTHDR;
		if (nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
			break;
		if (bpf_skb_load_bytes(skb, off, &x, sizeof(x)))
			return PARSE6_MALFORMED;
		if (nh == IPPROTO_ROUTING && x.segments_left)
			return PARSE6_EXTHDR;
		nh = x.nexthdr;
		off += ((__u32)x.hdrlen + 1) * 8;
	}
	if (nh == IPPROTO_FRAGMENT)
		return PARSE6_FRAGMENT;
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS)
		return PARSE6_EXTHDR;
	if (off > 0xffff) /* bounds the offset for the verifier; no frame is that long */
		return PARSE6_MALFORMED;
	l4 = data + off;
	p->l4_off = off;
	p->proto = nh;
	p->sport = p->dport = 0;
	p->tcp_flags = 0;
	p->has_ports = 0;
	p->icmp_type = 0;
	p->icmp_error = 0;
	p->inner.ok = 0;
	if (nh == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > end)
			return l4_out_of_reach6(skb, off, sizeof(*tcp));
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->has_ports = 1;
	} else if (nh == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return l4_out_of_reach6(skb, off, sizeof(*udp));
		p->sport = udp->source;
		p->dport = udp->dest;
		p->has_ports = 1;
	} else if (nh == IPPROTO_ICMPV6) {
		__u8 *icmp = l4;

		if ((void *)(icmp + 8) > end)
			return l4_out_of_reach6(skb, off, 8);
		p->icmp_type = icmp[0];
		if (icmp[0] == ICMPV6_ECHO_REQUEST || icmp[0] == ICMPV6_ECHO_REPLY) {
			p->sport = *(__u16 *)(icmp + 4);
			p->has_ports = 1;
		} else if (icmp6_is_error(icmp[0])) {
			p->icmp_error = 1;
			parse6_inner(data, end, off, &p->inner);
		} else {
			return PARSE6_NDISC;
		}
	}
	if (ip6_scoped(&p->saddr) || ip6_scoped(&p->daddr))
		return PARSE6_SCOPE;
	return PARSE6_OK;
}

static __always_inline int parse6_verdict(enum parse6_result r)
{
	switch (r) {
	case PARSE6_FRAGMENT:
		count(HRB_R_TO_STACK_IPV6_FRAGMENT);
		return TC_ACT_OK;
	case PARSE6_EXTHDR:
		count(HRB_R_TO_STACK_IPV6_EXTHDR);
		return TC_ACT_OK;
	case PARSE6_NDISC:
		count(HRB_R_TO_STACK_ICMP6_NDISC);
		return TC_ACT_OK;
	case PARSE6_SCOPE:
		count(HRB_R_TO_STACK_IPV6_SCOPE);
		return TC_ACT_OK;
	default:
		count(HRB_R_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
}

#endif
