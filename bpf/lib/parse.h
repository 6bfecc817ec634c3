/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing with one bounds check per header, into a small summary of the packet. */
#ifndef HRB_PARSE_H
#define HRB_PARSE_H

#include "common.h"

struct pkt {
	struct iphdr *ip;
	__u32 saddr, daddr; /* network order */
	__u16 sport, dport; /* network order; ICMP echo: id, 0 */
	__u8 proto;
	__u8 tcp_flags; /* FIN 0x01, SYN 0x02, RST 0x04 */
	__u8 has_ports; /* TCP, UDP or ICMP echo / echo reply */
	__u8 icmp_type;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IPV4,
	PARSE_FRAGMENT,
	PARSE_OPTIONS,
	PARSE_MALFORMED,
};

static __always_inline enum parse_result parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	if (ip->ihl != 5)
		return PARSE_OPTIONS;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PARSE_FRAGMENT;
	p->ip = ip;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->sport = p->dport = 0;
	p->tcp_flags = 0;
	p->has_ports = 0;
	p->icmp_type = 0;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > end)
			return PARSE_MALFORMED;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->has_ports = 1;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > end)
			return PARSE_MALFORMED;
		p->sport = udp->source;
		p->dport = udp->dest;
		p->has_ports = 1;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = (void *)(ip + 1);

		if ((void *)(icmp + 1) > end)
			return PARSE_MALFORMED;
		p->icmp_type = icmp->type;
		if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY) {
			p->sport = icmp->un.echo.id;
			p->has_ports = 1;
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
	case PARSE_OPTIONS:
		count(HRB_R_TO_STACK_IP_OPTIONS);
		return TC_ACT_OK;
	default:
		count(HRB_R_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
}

#endif
