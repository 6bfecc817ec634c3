/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load balancing (kube-proxy replacement), per packet at the pod's veth, after the cases
 * Cilium's bpf/lib/lb.h handles (lb4_lookup_service, lb4_local, lb4_rev_nat), in our own words.
 *
 * A packet to a service address:port/protocol (the `lb` map's frontend, slot 0) belongs to a
 * connection keyed before DNAT (HRB_CT_SERVICE): the first packet picks a backend at random
 * (slots 1..count) and records it there, so every later packet of the connection goes to the
 * same backend. The packet is DNATed to the backend, and its flow after DNAT is tracked like any
 * pod flow, marked HRB_CT_F_SVC with the service address: a reply from the backend finds it in
 * the reply direction and gets the service address back as its source before delivery.
 *
 * Cilium's default translates pod->ClusterIP once, at connect() (socket LB on cgroup hooks), and
 * compiles this per-packet path out; see docs/datapath.md for what that would change here.
 */
#ifndef HRB_LB_H
#define HRB_LB_H

#include "common.h"
#include "ct.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

enum lb_verdict {
	LB_NONE = 0, /* not a known service: the caller decides */
	LB_DONE,     /* DNATed to a backend: p describes the packet after translation */
	LB_DROP,
};

static __always_inline enum lb_verdict lb_translate(struct __sk_buff *skb, struct pkt *p)
{
	struct hrb_lb_key fk = {.addr = p->daddr, .port = p->dport, .proto = p->proto};
	struct hrb_ct_key sk, k;
	struct hrb_ct_entry *se, *e, n;
	struct hrb_lb_value *fe, *be;
	__u32 bip, vip = p->daddr;
	__u16 bport, vport = p->dport;
	__u64 now;
	bool reply;

	if (!lb_enabled || !p->has_ports || p->proto == IPPROTO_ICMP)
		return LB_NONE;
	fe = bpf_map_lookup_elem(&lb, &fk);
	if (!fe)
		return LB_NONE;
	now = bpf_ktime_get_ns();
	ct_key_orig(p, &sk);
	sk.kind = HRB_CT_SERVICE;
	se = bpf_map_lookup_elem(&ct, &sk);
	if (se) {
		ct_track(se, p, false, now);
		/* Only the client's side passes here: its FIN or RST ends the connection. */
		if ((p->tcp_flags & (TCP_FIN | TCP_RST)) && !(se->flags & HRB_CT_F_CLOSED)) {
			se->flags |= HRB_CT_F_CLOSED;
			se->expires_ns = now + ct_lifetime_close_ns;
		}
		bip = se->nat_ip;
		bport = se->nat_port;
		count(HRB_R_LB_HIT);
	} else {
		if (!fe->count) {
			count(HRB_R_DROP_NO_BACKEND);
			return LB_DROP;
		}
		fk.slot = bpf_get_prandom_u32() % fe->count + 1;
		be = bpf_map_lookup_elem(&lb, &fk);
		if (!be) {
			count(HRB_R_DROP_NO_BACKEND);
			return LB_DROP;
		}
		bip = be->ip;
		bport = be->port;
		ct_init(&n, p, 0, now);
		n.nat_ip = bip;
		n.nat_port = bport;
		if (!ct_insert(&sk, &n))
			return LB_DROP;
		/* Another CPU may have created the connection first: its backend wins. */
		se = bpf_map_lookup_elem(&ct, &sk);
		if (se) {
			bip = se->nat_ip;
			bport = se->nat_port;
		}
		count(HRB_R_LB_NEW);
	}
	if (rewrite(skb, p, false, vip, bip, vport, bport))
		return LB_DROP;
	p->daddr = bip;
	p->dport = bport;

	/* The flow after DNAT, which the backend's replies find. */
	e = ct_lookup(p, &k, &reply);
	if (e) {
		ct_track(e, p, reply, now);
		if (!(e->flags & HRB_CT_F_SVC) || e->nat_ip != vip || e->nat_port != vport) {
			e->nat_ip = vip;
			e->nat_port = vport;
			e->flags |= HRB_CT_F_SVC;
		}
	} else {
		ct_init(&n, p, HRB_CT_F_SVC, now);
		n.nat_ip = vip;
		n.nat_port = vport;
		if (!ct_insert(&k, &n))
			return LB_DROP;
	}
	return LB_DONE;
}

/* A backend's reply in a load-balanced connection (e: its flow, found in the reply direction):
 * the source becomes the service address again. */
static __always_inline int lb_reverse(struct __sk_buff *skb, struct pkt *p,
				      const struct hrb_ct_entry *e)
{
	__u32 vip = e->nat_ip;
	__u16 vport = e->nat_port;

	if (rewrite(skb, p, true, p->saddr, vip, p->sport, vport))
		return -1;
	p->saddr = vip;
	p->sport = vport;
	count(HRB_R_LB_REVERSE);
	return 0;
}

/* Connection tracking of pod traffic that is not masqueraded, with the reverse translation of
 * load-balanced replies. Returns false when the packet must be dropped. */
static __always_inline bool ct_and_reverse_lb(struct __sk_buff *skb, struct pkt *p, __u8 flags)
{
	struct hrb_ct_entry *e;
	bool reply;

	if (!ct_pod_traffic(p, flags, &e, &reply))
		return false;
	if (e && reply && (e->flags & HRB_CT_F_SVC))
		return lb_reverse(skb, p, e) == 0;
	return true;
}

#endif
