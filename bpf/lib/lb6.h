/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 service load balancing (ClusterIP; Cilium's lb6_lookup_service, lb6_local, lb6_rev_nat):
 * lb.h's design on the `lb6` map and `ct6`. A packet to a service address:port/protocol belongs
 * to a connection keyed before DNAT (HRB_CT_SERVICE) whose first packet picks a backend at
 * random and records it; the flow after DNAT is tracked with HRB_CT_F_SVC and the service
 * address, which a backend's reply gets back as its source. ICMPv6 errors about load-balanced
 * connections are translated both ways. NodePort over IPv6 (nodeport6.h) picks and pins its
 * backends with the same two functions (lb6_backend, lb6_track).
 */
#ifndef HRB_LB6_H
#define HRB_LB6_H

#include "common.h"
#include "ct.h"
#include "ct6.h"
#include "ipv6.h"
#include "lb.h"
#include "maps.h"
#include "nat6.h"

/* lb_hash (lb.h) for IPv6: both addresses' words, the ports, the protocol. */
static __always_inline __u32 lb6_hash(const struct pkt6 *p)
{
	__u32 h = 0;

#pragma unroll
	for (int i = 0; i < 4; i++)
		h = hrb_hash_word(hrb_hash_word(h, p->saddr.w[i]), p->daddr.w[i]);
	h = hrb_hash_word(h, ((__u32)p->sport << 16) | p->dport);
	return hrb_hash_final(hrb_hash_word(h, p->proto));
}

/* lb_backend (lb.h) for IPv6: the backend of p's connection to the frontend fe, recorded in its
 * HRB_CT_SERVICE entry or picked at random for a new one (unless `syn_only` and p is TCP but no
 * pure SYN: LB_NONE); counts r_hit or r_new. */
static __always_inline enum lb_verdict lb6_backend(const struct pkt6 *p,
						   const struct hrb_lb6_value *fe,
						   struct hrb_lb6_key *fk, __u64 now, bool syn_only,
						   enum hrb_reason r_new, enum hrb_reason r_hit,
						   struct hrb_ip6 *bip, __u16 *bport)
{
	struct hrb_ct6_entry *se, n;
	struct hrb_lb6_value *be;
	struct hrb_ct6_key sk;

	ct6_key_orig(p, &sk);
	sk.kind = HRB_CT_SERVICE;
	se = bpf_map_lookup_elem(&ct6, &sk);
	if (se) {
		ct6_track(se, p, false, now);
		if ((p->tcp_flags & (TCP_FIN | TCP_RST)) && !(se->flags & HRB_CT_F_CLOSED)) {
			se->flags |= HRB_CT_F_CLOSED;
			se->expires_ns = now + ct_lifetime_close_ns;
		}
		*bip = se->nat_ip;
		*bport = se->nat_port;
		count(r_hit);
		return LB_DONE;
	}
	if (syn_only && p->proto == IPPROTO_TCP && !pure_syn(p->proto, p->tcp_flags))
		return LB_NONE;
	if (!fe->count) {
		count(HRB_R_DROP_NO_BACKEND);
		return LB_DROP;
	}
	fk->slot = lb6_hash(p) % fe->count + 1; /* the same tuple, the same backend (common.h) */
	be = bpf_map_lookup_elem(&lb6, fk);
	if (!be) {
		count(HRB_R_DROP_NO_BACKEND);
		return LB_DROP;
	}
	*bip = be->ip;
	*bport = be->port;
	ct6_init(&n, p, 0, now);
	n.nat_ip = *bip;
	n.nat_port = *bport;
	if (!ct6_insert(&sk, &n))
		return LB_DROP;
	se = bpf_map_lookup_elem(&ct6, &sk); /* another CPU's choice may have won */
	if (se) {
		*bip = se->nat_ip;
		*bport = se->nat_port;
	}
	count(r_new);
	return LB_DONE;
}

/* lb_track (lb.h) for IPv6: p (after DNAT) tracked in its flow, marked as load-balanced from
 * vip:vport, with `flags` added to a new entry. */
static __always_inline bool lb6_track(const struct pkt6 *p, const struct hrb_ip6 *vip, __u16 vport,
				      __u8 flags, __u64 now)
{
	struct hrb_ct6_entry *e, n;
	struct hrb_ct6_key k;
	bool reply;

	e = ct6_lookup(p, &k, &reply);
	if (e) {
		ct6_track(e, p, reply, now);
		if (!(e->flags & HRB_CT_F_SVC) || !ip6_eq(&e->nat_ip, vip) ||
		    e->nat_port != vport) {
			e->nat_ip = *vip;
			e->nat_port = vport;
			e->flags |= HRB_CT_F_SVC | flags;
		}
		return true;
	}
	ct6_init(&n, p, HRB_CT_F_SVC | flags, now);
	n.nat_ip = *vip;
	n.nat_port = vport;
	return ct6_insert(&k, &n);
}

/* A client's ICMPv6 error about a backend's reply (quoted: service -> client): to the backend,
 * quoting the reply as the backend sent it (lb_icmp_error_to_backend, lb.h). */
static __always_inline enum lb_verdict lb6_icmp_error_to_backend(struct __sk_buff *skb,
								 struct pkt6 *p)
{
	struct pkt6_inner *in = &p->inner;
	struct hrb_ct6_key k;
	struct hrb_ct6_entry *se;
	struct hrb_ip6 bip;

	if (!in->ok || !ip6_eq(&in->saddr, &p->daddr) || !ip6_eq(&in->daddr, &p->saddr) ||
	    in->proto == IPPROTO_ICMPV6)
		return LB_NONE;
	ct6_key_tuple(&k, &in->daddr, &in->saddr, in->dport, in->sport, in->proto, HRB_CT_SERVICE);
	se = bpf_map_lookup_elem(&ct6, &k);
	if (!se)
		return LB_NONE;
	bip = se->nat_ip;
	if (icmp6_error_rewrite(skb, p, true, &p->daddr, &bip, in->sport, se->nat_port, true))
		return LB_DROP;
	p->daddr = bip;
	count(HRB_R_ICMP_ERROR_LB);
	return LB_DONE;
}

/* An ICMPv6 error to a load-balanced connection's client about one of its requests (quoted:
 * client -> backend): the quoted destination gets the service address back, and so does the
 * outer source when the backend itself sent it. 1 translated, 0 about no such connection. */
static __always_inline int lb6_icmp_error_to_client(struct __sk_buff *skb, struct pkt6 *p)
{
	struct pkt6_inner *in = &p->inner;
	struct hrb_ct6_key k;
	struct hrb_ct6_entry *e;

	if (!in->ok || !ip6_eq(&in->saddr, &p->daddr) || in->proto == IPPROTO_ICMPV6)
		return 0;
	ct6_key_tuple(&k, &in->saddr, &in->daddr, in->sport, in->dport, in->proto, HRB_CT_FLOW);
	e = bpf_map_lookup_elem(&ct6, &k);
	if (!e || !(e->flags & HRB_CT_F_SVC))
		return 0;
	return lb6_icmp_error_rewrite(skb, p, e) ? -1 : 1;
}

/* lb_choose / lb_apply (lb.h) for IPv6: the backend chosen first, the rewrite after from_pod6's
 * hop-limit, FIB and MTU checks. */
struct lb6_choice {
	__u64 now;
	struct hrb_ip6 vip, bip;
	__u16 vport, bport;
	bool pending;
};

static __always_inline enum lb_verdict lb6_choose(struct __sk_buff *skb, struct pkt6 *p,
						  struct lb6_choice *c)
{
	struct hrb_lb6_key fk = {.addr = p->daddr, .port = p->dport, .proto = p->proto};
	struct hrb_lb6_value *fe;

	c->pending = false;
	if (lb_enabled && p->icmp_error)
		return lb6_icmp_error_to_backend(skb, p);
	if (!lb_enabled || !p->has_ports || p->proto == IPPROTO_ICMPV6)
		return LB_NONE;
	fe = bpf_map_lookup_elem(&lb6, &fk);
	if (!fe)
		return LB_NONE;
	c->now = hrb_now();
	c->vip = p->daddr;
	c->vport = p->dport;
	if (lb6_backend(p, fe, &fk, c->now, false, HRB_R_LB_NEW, HRB_R_LB_HIT, &c->bip,
			&c->bport) != LB_DONE)
		return LB_DROP;
	c->pending = true;
	return LB_DONE;
}

static __always_inline bool lb6_apply(struct __sk_buff *skb, struct pkt6 *p, struct lb6_choice *c)
{
	if (!c->pending)
		return true;
	c->pending = false;
	if (rewrite6(skb, p, false, &c->vip, &c->bip, c->vport, c->bport))
		return false;
	p->daddr = c->bip;
	p->dport = c->bport;
	return lb6_track(p, &c->vip, c->vport, 0, c->now);
}

/* ct_and_reverse_lb (lb.h) for IPv6. */
static __always_inline bool ct6_and_reverse_lb(struct __sk_buff *skb, struct pkt6 *p, __u8 flags,
					       bool reverse)
{
	struct hrb_ct6_entry *e;
	bool reply;

	if (p->icmp_error)
		return !reverse || lb6_icmp_error_to_client(skb, p) >= 0;
	if (!ct6_pod_traffic(p, flags, &e, &reply))
		return false;
	if (reverse && e && reply && (e->flags & HRB_CT_F_SVC))
		return lb6_reverse(skb, p, e) == 0;
	return true;
}

#endif
