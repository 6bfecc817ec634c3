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

/* The backend of p's connection to the frontend fe (p: the packet before DNAT): the one recorded
 * in the connection's HRB_CT_SERVICE entry, or for a new connection one picked at random and
 * recorded — unless `syn_only` and p is TCP but no pure SYN (a NodePort connection starts with
 * one: lib/nodeport.h). Counts r_hit or r_new. LB_DONE with the backend, LB_NONE when no
 * connection was found or made, LB_DROP when the packet must be dropped (no backend, or the
 * table refused the entry). */
/* The hash of p's connection that chooses its backend (hrb_hash_word, common.h). */
static __always_inline __u32 lb_hash(const struct pkt *p)
{
	__u32 h = hrb_hash_word(0, p->saddr);

	h = hrb_hash_word(h, p->daddr);
	h = hrb_hash_word(h, ((__u32)p->sport << 16) | p->dport);
	return hrb_hash_final(hrb_hash_word(h, p->proto));
}

static __always_inline enum lb_verdict
lb_backend(const struct pkt *p, const struct hrb_lb_value *fe, struct hrb_lb_key *fk, __u64 now,
	   bool syn_only, enum hrb_reason r_new, enum hrb_reason r_hit, __u32 *bip, __u16 *bport)
{
	struct hrb_ct_entry *se, n;
	struct hrb_lb_value *be;
	struct hrb_ct_key sk;

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
		*bip = se->nat_ip;
		*bport = se->nat_port;
		count(r_hit);
		return LB_DONE;
	}
	if (syn_only && p->proto == IPPROTO_TCP && !is_pure_syn(p))
		return LB_NONE;
	if (!fe->count) {
		count(HRB_R_DROP_NO_BACKEND);
		return LB_DROP;
	}
	fk->slot = lb_hash(p) % fe->count + 1; /* the same tuple, the same backend (common.h) */
	be = bpf_map_lookup_elem(&lb, fk);
	if (!be) {
		count(HRB_R_DROP_NO_BACKEND);
		return LB_DROP;
	}
	*bip = be->ip;
	*bport = be->port;
	ct_init(&n, p, 0, now);
	n.nat_ip = *bip;
	n.nat_port = *bport;
	if (!ct_insert(&sk, &n))
		return LB_DROP;
	/* Another CPU may have created the connection first: its backend wins. */
	se = bpf_map_lookup_elem(&ct, &sk);
	if (se) {
		*bip = se->nat_ip;
		*bport = se->nat_port;
	}
	count(r_new);
	return LB_DONE;
}

/* Tracks p (after DNAT to a backend) in its flow, marked as load-balanced from the service
 * address vip:vport, with `flags` added to a new entry. False when the table refused it. */
static __always_inline bool lb_track(const struct pkt *p, __u32 vip, __u16 vport, __u8 flags,
				     __u64 now)
{
	struct hrb_ct_entry *e, n;
	struct hrb_ct_key k;
	bool reply;

	e = ct_lookup(p, &k, &reply);
	if (e) {
		ct_track(e, p, reply, now);
		if (!(e->flags & HRB_CT_F_SVC) || e->nat_ip != vip || e->nat_port != vport) {
			e->nat_ip = vip;
			e->nat_port = vport;
			e->flags |= HRB_CT_F_SVC | flags;
		}
		return true;
	}
	ct_init(&n, p, HRB_CT_F_SVC | flags, now);
	n.nat_ip = vip;
	n.nat_port = vport;
	return ct_insert(&k, &n);
}

/* A client's ICMP error about a backend's reply, which reached it with the service address as
 * its source (quoted: service -> client): it goes to the backend instead, quoting the reply as
 * the backend sent it, found by the connection's HRB_CT_SERVICE entry. LB_NONE when the quote is
 * of no connection of this client's (the stack gets it, as any packet to an unknown service). */
static __always_inline enum lb_verdict lb_icmp_error_to_backend(struct __sk_buff *skb,
								struct pkt *p)
{
	struct pkt_inner *in = &p->inner;
	struct hrb_ct_key k;
	struct hrb_ct_entry *se;
	__u32 bip;

	if (!in->ok || in->saddr != p->daddr || in->daddr != p->saddr || in->proto == IPPROTO_ICMP)
		return LB_NONE;
	ct_key_tuple(&k, in->daddr, in->saddr, in->dport, in->sport, in->proto, HRB_CT_SERVICE);
	se = bpf_map_lookup_elem(&ct, &k);
	if (!se)
		return LB_NONE;
	bip = se->nat_ip;
	if (icmp_error_rewrite(skb, p, true, p->daddr, bip, in->sport, se->nat_port, true))
		return LB_DROP;
	p->daddr = bip;
	count(HRB_R_ICMP_ERROR_LB);
	return LB_DONE;
}

/* A service connection's backend, chosen (lb_choose) before the packet is rewritten (lb_apply):
 * in between, from_pod checks the hop limit, the FIB and the MTU against the backend, and a packet
 * that must go to the stack goes there untranslated — kube-proxy's rules underneath DNAT it, and
 * netfilter's conntrack translates the stack's ICMP error (time exceeded, fragmentation needed)
 * back to the service address the client's socket knows. */
struct lb_choice {
	__u64 now;
	__u32 vip, bip;
	__u16 vport, bport;
	bool pending; /* chosen, not yet rewritten */
};

/* LB_DONE: p is a service connection's packet, its backend in c (c->pending), or an ICMP error
 * about a backend's reply, already sent on to the backend (c->pending false). */
static __always_inline enum lb_verdict lb_choose(struct __sk_buff *skb, struct pkt *p,
						 struct lb_choice *c)
{
	struct hrb_lb_key fk = {.addr = p->daddr, .port = p->dport, .proto = p->proto};
	struct hrb_lb_value *fe;

	c->pending = false;
	if (lb_enabled && p->icmp_error)
		return lb_icmp_error_to_backend(skb, p);
	if (!lb_enabled || !p->has_ports || p->proto == IPPROTO_ICMP)
		return LB_NONE;
	fe = bpf_map_lookup_elem(&lb, &fk);
	if (!fe)
		return LB_NONE;
	c->now = hrb_now();
	c->vip = p->daddr;
	c->vport = p->dport;
	if (lb_backend(p, fe, &fk, c->now, false, HRB_R_LB_NEW, HRB_R_LB_HIT, &c->bip, &c->bport) !=
	    LB_DONE)
		return LB_DROP;
	c->pending = true;
	return LB_DONE;
}

/* DNAT to the chosen backend, and the flow after it tracked (which the backend's replies find).
 * False when the packet must be dropped. Nothing to do when nothing is pending. */
static __always_inline bool lb_apply(struct __sk_buff *skb, struct pkt *p, struct lb_choice *c)
{
	if (!c->pending)
		return true;
	c->pending = false;
	if (rewrite(skb, p, false, c->vip, c->bip, c->vport, c->bport))
		return false;
	p->daddr = c->bip;
	p->dport = c->bport;
	return lb_track(p, c->vip, c->vport, 0, c->now);
}

/* lb_reverse (a backend's reply gets the service address back) is in nat.h, which masquerade()
 * needs it in too. */

/* Connection tracking of pod traffic that is not masqueraded, with the reverse translation of
 * load-balanced replies, and of ICMP errors about load-balanced requests (which start no flow).
 * Returns false when the packet must be dropped. With `reverse` false (from_pod in bpf-lb mode,
 * where the stack forwards the packet next) a reply is tracked and left as it is: netfilter's
 * conntrack knows the connection by the backend's address, and a reply already carrying the
 * service address would be INVALID to it (KUBE-FORWARD drops it); to_pod, on the client's lxc
 * egress after the stack, gives it the service address back. */
static __always_inline bool ct_and_reverse_lb(struct __sk_buff *skb, struct pkt *p, __u8 flags,
					      bool reverse)
{
	struct hrb_ct_entry *e;
	bool reply;

	if (p->icmp_error)
		return !reverse || lb_icmp_error_to_client(skb, p) >= 0;
	if (!ct_pod_traffic(p, flags, &e, &reply))
		return false;
	if (reverse && e && reply && (e->flags & HRB_CT_F_SVC))
		return lb_reverse(skb, p, e) == 0;
	return true;
}

#endif
