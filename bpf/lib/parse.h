/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing with one bounds check per header, into a small summary of the packet. */
#ifndef HRB_PARSE_H
#define HRB_PARSE_H

#include "common.h"

/* The header an ICMP error quotes (RFC 792: the IP header and the first 8 bytes after it). */
struct pkt_inner {
	__u32 saddr, daddr; /* network order */
	__u16 sport, dport; /* network order; ICMP echo: id, 0 */
	__u8 proto;
	__u8 ok; /* option-less IPv4 + 8 bytes of TCP, UDP or ICMP echo quoted */
};

struct pkt {
	__u32 l4_off;	    /* offset of the L4 header in the frame (IP options included) */
	__u32 saddr, daddr; /* network order */
	__u16 sport, dport; /* network order; ICMP echo: id, 0 */
	__u8 proto;
	__u8 tcp_flags; /* TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK, … */
	__u8 has_ports; /* TCP, UDP or ICMP echo / echo reply */
	__u8 icmp_type;
	__u8 icmp_error; /* destination unreachable, time exceeded, parameter problem */
	__u8 ttl, tos;
	__u8 df;		/* don't fragment */
	struct pkt_inner inner; /* icmp_error only */
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IPV4,
	PARSE_FRAGMENT,
	PARSE_MALFORMED,
	PARSE_IPV4_OFF, /* IPv4 on a node without it (single-stack IPv6: ipv4_enabled off) */
};

static __always_inline bool icmp_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

/* The quoted header of an ICMP error at `l4` (the ICMP header). */
static __always_inline void parse_inner(void *l4, void *end, struct pkt_inner *in)
{
	struct iphdr *ip = l4 + sizeof(struct icmphdr);
	__u16 *ports = (void *)(ip + 1);

	in->ok = 0;
	if ((void *)(ip + 1) > end || (void *)(ports + 4) > end)
		return;
	if (ip->version != 4 || ip->ihl != 5)
		return;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return;
	in->saddr = ip->saddr;
	in->daddr = ip->daddr;
	in->proto = ip->protocol;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		in->sport = ports[0];
		in->dport = ports[1];
	} else if (ip->protocol == IPPROTO_ICMP) {
		__u8 type = *(__u8 *)ports;

		if (type != ICMP_ECHO && type != ICMP_ECHOREPLY)
			return;
		in->sport = ports[2]; /* the echo id */
		in->dport = 0;
	} else {
		return;
	}
	in->ok = 1;
}

static __always_inline enum parse_result parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	void *l4;
	__u32 ihl;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;
	if (!ipv4_enabled)
		return PARSE_IPV4_OFF;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PARSE_FRAGMENT;
	ihl = ip->ihl * 4;
	l4 = (void *)ip + ihl;
	if (l4 > end)
		return PARSE_MALFORMED;
	p->l4_off = ETH_HLEN + ihl;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->tos = ip->tos;
	p->df = !!(ip->frag_off & bpf_htons(IP_DF));
	p->sport = p->dport = 0;
	p->tcp_flags = 0;
	p->has_ports = 0;
	p->icmp_type = 0;
	p->icmp_error = 0;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > end)
			return PARSE_MALFORMED;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->has_ports = 1;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return PARSE_MALFORMED;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->has_ports = 1;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = l4;

		if ((void *)(icmp + 1) > end)
			return PARSE_MALFORMED;
		p->icmp_type = icmp->type;
		if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY) {
			p->sport = icmp->un.echo.id;
			p->has_ports = 1;
		} else if (icmp_is_error(icmp->type)) {
			p->icmp_error = 1;
			parse_inner(l4, end, &p->inner);
		}
	}
	return PARSE_OK;
}

static __always_inline int parse_verdict(enum parse_result r)
{
	switch (r) {
	case PARSE_NOT_IPV4:
		count(HRB_R_TO_STACK_NON_IPV4);
		return TC_ACT_OK;
	case PARSE_FRAGMENT:
		count(HRB_R_TO_STACK_FRAGMENT);
		return TC_ACT_OK;
	case PARSE_IPV4_OFF:
		count(HRB_R_TO_STACK_IPV4_OFF);
		return TC_ACT_OK;
	default:
		count(HRB_R_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
}

#endif
