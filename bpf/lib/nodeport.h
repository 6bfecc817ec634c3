/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NodePort from the external host, at the node's uplink (from_uplink), after the cases Cilium's
 * nodeport_lb4 (bpf/lib/nodeport.h, bpf_host from-netdev) handles in its default SNAT mode, in
 * our own words.
 *
 * A TCP or UDP packet to the node IP at a NodePort (a frontend {node ip, NodePort, protocol} in
 * the `lb` map, filled like a ClusterIP's) belongs to a connection keyed before DNAT
 * (HRB_CT_SERVICE {client, node ip, client port, NodePort}), whose first packet picks the
 * backend (lb_backend, as for a ClusterIP).
 *   - A backend on this node: DNAT, the flow after DNAT tracked with HRB_CT_F_SVC |
 *     HRB_CT_F_FROM_OUTSIDE and the NodePort as its service address, delivered with
 *     redirect_peer. The backend's answers pass from_pod, which gives them the node IP and the
 *     NodePort back as their source (lb_reverse) and forwards them to the client.
 *   - A backend on another node: DNAT, and SNAT to the node IP so that the backend answers
 *     through this node (Cilium's nodeport_snat_fwd_ipv4). The SNAT port is claimed exactly as a
 *     masqueraded pod flow's (nat_claim: one range, one key space, BPF_NOEXIST), its claim
 *     owned by HRB_CT_NODEPORT; the connection's HRB_CT_NODEPORT entry {client -> backend}
 *     holds the SNAT port and the NodePort. Forwarded along the FIB. The backend's reply comes
 *     back to the uplink for the SNAT port: reverse_nat() sees the claim's owner and hands it
 *     here — reverse SNAT (destination: the client), then reverse DNAT (source: node IP and
 *     NodePort), and along the FIB back to the client.
 * A TCP connection starts with a pure SYN: a TCP packet without one and without state goes to
 * the stack (it may answer a flow the stack masqueraded to a port in the NodePort range).
 * TTL <= 1 and what the FIB cannot forward go to the stack untranslated, where kube-proxy's
 * NodePort rules (installed underneath) translate them and the kernel sends any ICMP error.
 * ICMP errors about NodePort connections are translated both ways (nodeport_error_to_client,
 * nodeport_error_to_backend; a local backend's own errors in nat.h's icmp_error_out).
 */
#ifndef HRB_NODEPORT_H
#define HRB_NODEPORT_H

#include "common.h"
#include "ct.h"
#include "fwd.h"
#include "lb.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

enum np_verdict {
	NP_NONE = 0, /* not a NodePort: the caller goes on */
	NP_LOCAL,    /* DNATed to a backend on this node (*ep): deliver it */
	NP_FORWARD,  /* translated: forward along *fib (FIB result *rc) */
	NP_TO_STACK, /* untranslated, to the stack */
	NP_DROP,
};

/* The key of a NodePort connection's HRB_CT_NODEPORT entry; v: a packet from the client after
 * DNAT (client -> backend). */
static __always_inline void np_key(const struct pkt *v, struct hrb_ct_key *k)
{
	ct_key_orig(v, k);
	k->kind = HRB_CT_NODEPORT;
}

/* The SNAT port of the connection of v (client -> backend, after DNAT) to NodePort np: the one
 * its entry holds while the claim still names it (re-created when it was evicted), else a new
 * claim. 0 when the packet must be dropped. */
static __always_inline __u16 np_snat_port(const struct pkt *v, __u16 np, __u64 now)
{
	struct hrb_ct_key k, rk;
	struct hrb_ct_entry *e, *r, n;
	__u16 sp = 0;
	long rc;

	np_key(v, &k);
	e = bpf_map_lookup_elem(&ct, &k);
	if (e) {
		ct_track(e, v, false, now);
		nat_rev_key(&rk, v->daddr, v->dport, e->nat_port, v->proto);
		r = bpf_map_lookup_elem(&ct, &rk);
		if (r) {
			if (r->owner == HRB_CT_NODEPORT && r->nat_ip == v->saddr &&
			    r->nat_port == v->sport) {
				nat_mirror(r, e);
				sp = e->nat_port;
			}
		} else {
			struct hrb_ct_entry claim = {.expires_ns = e->expires_ns,
						     .nat_ip = v->saddr,
						     .nat_port = v->sport,
						     .owner = HRB_CT_NODEPORT};

			if (!bpf_map_update_elem(&ct, &rk, &claim, BPF_NOEXIST)) {
				count(HRB_R_CT_EVICTED);
				sp = e->nat_port;
			}
		}
		if (sp) {
			if (e->node_port != np)
				e->node_port = np;
			return sp;
		}
		count(HRB_R_NAT_REMAPPED); /* the port went to another flow */
	}
	ct_init(&n, v, 0, now);
	sp = nat_claim(v, n.expires_ns, &rk, HRB_CT_NODEPORT);
	if (!sp) {
		count(HRB_R_DROP_NO_PORT);
		return 0;
	}
	if (e) {
		e->nat_port = sp;
		e->node_port = np;
		return sp;
	}
	n.nat_port = sp;
	n.node_port = np;
	rc = bpf_map_update_elem(&ct, &k, &n, BPF_NOEXIST);
	if (rc == -17 /* EEXIST: another CPU created the connection first; its port wins */) {
		bpf_map_delete_elem(&ct, &rk);
		e = bpf_map_lookup_elem(&ct, &k);
		return e ? e->nat_port : 0;
	}
	if (rc) {
		bpf_map_delete_elem(&ct, &rk); /* no half state */
		count(HRB_R_DROP_CT_FULL);
		return 0;
	}
	count(HRB_R_CT_CREATED);
	return sp;
}

/* A packet from outside to the node IP: a NodePort connection's, or NP_NONE. */
/* Both ends of the packet rewritten (destination first, then source) and p updated; -1 when a
 * rewrite failed. */
static __always_inline int np_rewrite(struct __sk_buff *skb, struct pkt *p, __u32 saddr,
				      __u16 sport, __u32 daddr, __u16 dport)
{
	if (rewrite(skb, p, false, p->daddr, daddr, p->dport, dport) ||
	    rewrite(skb, p, true, p->saddr, saddr, p->sport, sport))
		return -1;
	p->saddr = saddr;
	p->sport = sport;
	p->daddr = daddr;
	p->dport = dport;
	return 0;
}

/* The route from the node IP to dst: false (counted) when the stack must take the packet — its
 * TTL is spent (the stack sends time exceeded), the FIB cannot forward it, or it is too big for
 * the egress device. */
static __always_inline bool np_route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, int *rc,
				     __u32 dst, const struct pkt *p)
{
	if (p->ttl <= 1) {
		count(HRB_R_NODEPORT_TO_STACK);
		return false;
	}
	*rc = fib_lookup(skb, fib, node_ip, dst, p->proto, p->tos);
	if (!fib_forwardable(*rc)) {
		fib_to_stack(*rc);
		count(HRB_R_NODEPORT_TO_STACK);
		return false;
	}
	if (!mtu_ok(skb, fib->ifindex)) {
		count(HRB_R_NODEPORT_TO_STACK);
		return false;
	}
	return true;
}

static __always_inline enum np_verdict nodeport_in(struct __sk_buff *skb, struct pkt *p,
						   struct bpf_fib_lookup *fib, int *rc,
						   struct hrb_endpoint **ep)
{
	struct hrb_lb_key fk = {.addr = p->daddr, .port = p->dport, .proto = p->proto};
	struct hrb_lb_value *fe;
	__u16 bport, sp, np = p->dport;
	struct pkt v;
	__u32 bip;
	__u64 now;

	if (!lb_enabled || p->daddr != node_ip || !p->has_ports || p->proto == IPPROTO_ICMP)
		return NP_NONE;
	fe = bpf_map_lookup_elem(&lb, &fk);
	if (!fe)
		return NP_NONE;
	if (p->ttl <= 1) {
		count(HRB_R_NODEPORT_TO_STACK);
		return NP_TO_STACK;
	}
	now = hrb_now();
	switch (lb_backend(p, fe, &fk, now, true, HRB_R_NODEPORT_NEW, HRB_R_NODEPORT_HIT, &bip,
			   &bport)) {
	case LB_DONE:
		break;
	case LB_NONE:
		/* TCP without SYN and no connection: not one opened here — e.g. a reply to a flow
		 * the stack's MASQUERADE (kube-proxy, ip-masq-agent) gave a source port in the
		 * NodePort range. The stack's conntrack knows it. */
		count(HRB_R_NODEPORT_TO_STACK);
		return NP_TO_STACK;
	default:
		return NP_DROP;
	}
	v = *p;
	v.daddr = bip;
	v.dport = bport;
	*ep = bpf_map_lookup_elem(&endpoints, &bip);
	if (*ep) {
		if (!lb_track(&v, node_ip, np, HRB_CT_F_FROM_OUTSIDE, now))
			return NP_DROP;
		if (rewrite(skb, p, false, node_ip, bip, np, bport))
			return NP_DROP;
		*p = v;
		count(HRB_R_NODEPORT_LOCAL);
		return NP_LOCAL;
	}
	if (!np_route(skb, fib, rc, bip, p))
		return NP_TO_STACK;
	sp = np_snat_port(&v, np, now);
	if (!sp)
		return NP_DROP;
	if (np_rewrite(skb, p, node_ip, sp, bip, bport))
		return NP_DROP;
	count(HRB_R_NODEPORT_REMOTE);
	return NP_FORWARD;
}

/* The NodePort connection whose request left as node:sp -> backend bip:bport: its HRB_CT_NODEPORT
 * entry, with *r its port claim and *cip:*cport its client. NULL when the claim is no NodePort
 * connection's, when the entry is gone (it cannot be re-created from the claim, which lacks the
 * NodePort), or when the claim is stale (the connection moved to another port since). */
static __always_inline struct hrb_ct_entry *np_by_snat_port(__u32 bip, __u16 bport, __u16 sp,
							    __u8 proto, struct hrb_ct_entry **r,
							    __u32 *cip, __u16 *cport)
{
	struct hrb_ct_key k;
	struct hrb_ct_entry *e;

	nat_rev_key(&k, bip, bport, sp, proto);
	*r = bpf_map_lookup_elem(&ct, &k);
	if (!*r || (*r)->owner != HRB_CT_NODEPORT)
		return NULL;
	*cip = (*r)->nat_ip;
	*cport = (*r)->nat_port;
	ct_key_tuple(&k, *cip, bip, *cport, bport, proto, HRB_CT_NODEPORT);
	e = bpf_map_lookup_elem(&ct, &k);
	return e && e->nat_port == sp ? e : NULL;
}

/* A remote backend's reply to the node IP at a SNAT port whose claim a NodePort connection owns
 * (reverse_nat() returned 3): reverse SNAT, then reverse DNAT. */
static __always_inline enum np_verdict nodeport_reply(struct __sk_buff *skb, struct pkt *p,
						      struct bpf_fib_lookup *fib, int *rc)
{
	struct hrb_ct_entry *r, *e;
	__u32 cip;
	__u16 cport;

	e = np_by_snat_port(p->saddr, p->sport, p->dport, p->proto, &r, &cip, &cport);
	if (!e) {
		count(HRB_R_NODEPORT_REPLY_MISS);
		return NP_TO_STACK;
	}
	if (!np_route(skb, fib, rc, cip, p))
		return NP_TO_STACK;
	ct_track(e, p, true, hrb_now());
	nat_mirror(r, e);
	if (np_rewrite(skb, p, node_ip, e->node_port, cip, cport))
		return NP_DROP;
	count(HRB_R_NODEPORT_REPLY);
	return NP_FORWARD;
}

/* An ICMP error for the node IP about a request the node forwarded to a remote backend (quoted:
 * node:snat -> backend; icmp_error_in() returned 3): back to the client, quoting the request as
 * the client sent it (client -> node:NodePort). The outer source becomes the node IP whoever
 * sent the error — the backend or a router between the nodes: the client only ever talks to the
 * node, no pod or fabric address goes out (the packet fuzzer found spoofed ones going out), and
 * the stack's conntrack translates such an error's outer header the same way. */
static __always_inline enum np_verdict
nodeport_error_to_client(struct __sk_buff *skb, struct pkt *p, struct bpf_fib_lookup *fib, int *rc)
{
	struct pkt_inner *in = &p->inner;
	struct hrb_ct_entry *r, *e;
	__u32 cip, bip = in->daddr;
	__u16 cport, bport = in->dport, sp = in->sport;

	e = np_by_snat_port(bip, bport, sp, in->proto, &r, &cip, &cport);
	if (!e) {
		count(HRB_R_NODEPORT_REPLY_MISS);
		return NP_TO_STACK;
	}
	if (!np_route(skb, fib, rc, cip, p))
		return NP_TO_STACK;
	if (icmp_error_rewrite(skb, p, true, node_ip, cip, sp, cport, true) ||
	    icmp_error_rewrite(skb, p, false, bip, node_ip, bport, e->node_port, false) ||
	    icmp_outer_rewrite(skb, true, p->saddr, node_ip))
		return NP_DROP;
	p->daddr = cip;
	p->saddr = node_ip;
	count(HRB_R_ICMP_ERROR_LB);
	return NP_FORWARD;
}

/* A client's ICMP error to the node IP about a NodePort reply it got (quoted: node:NodePort ->
 * client): to the connection's backend, quoting the reply as the backend sent it — on this node
 * (NP_LOCAL, *ep), or on another, where the reply came from the SNAT port (NP_FORWARD). NP_NONE
 * when the quote is of no NodePort connection. */
static __always_inline enum np_verdict nodeport_error_to_backend(struct __sk_buff *skb,
								 struct pkt *p,
								 struct bpf_fib_lookup *fib,
								 int *rc, struct hrb_endpoint **ep)
{
	struct pkt_inner *in = &p->inner;
	struct hrb_ct_key k;
	struct hrb_ct_entry *se, *e;
	__u32 bip, cip = p->saddr;
	__u16 bport, np = in->sport, cport = in->dport;

	if (!lb_enabled || !in->ok || p->daddr != node_ip || in->saddr != node_ip ||
	    in->daddr != cip || in->proto == IPPROTO_ICMP)
		return NP_NONE;
	ct_key_tuple(&k, cip, node_ip, cport, np, in->proto, HRB_CT_SERVICE);
	se = bpf_map_lookup_elem(&ct, &k);
	if (!se)
		return NP_NONE;
	bip = se->nat_ip;
	bport = se->nat_port;
	*ep = bpf_map_lookup_elem(&endpoints, &bip);
	if (*ep) {
		if (icmp_error_rewrite(skb, p, true, node_ip, bip, np, bport, true))
			return NP_DROP;
		p->daddr = bip;
		count(HRB_R_ICMP_ERROR_LB);
		return NP_LOCAL;
	}
	ct_key_tuple(&k, cip, bip, cport, bport, in->proto, HRB_CT_NODEPORT);
	e = bpf_map_lookup_elem(&ct, &k);
	if (!e)
		return NP_NONE;
	if (!np_route(skb, fib, rc, bip, p))
		return NP_TO_STACK;
	if (icmp_error_rewrite(skb, p, true, node_ip, bip, np, bport, true) ||
	    icmp_error_rewrite(skb, p, false, cip, node_ip, cport, e->nat_port, true))
		return NP_DROP;
	p->daddr = bip;
	p->saddr = node_ip;
	count(HRB_R_ICMP_ERROR_LB);
	return NP_FORWARD;
}

#endif
