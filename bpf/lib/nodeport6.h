/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NodePort over IPv6, at the node's uplink (from_uplink6): nodeport.h's design on the IPv6 maps
 * (Cilium's nodeport_lb6 / nodeport_snat_fwd_ipv6), in our own words.
 *
 * A TCP or UDP packet to the node's IPv6 address at a NodePort (a frontend {node ip6, NodePort,
 * protocol} in `lb6`, filled beside the IPv6 ClusterIP's with the same backends) belongs to a
 * connection keyed before DNAT (HRB_CT_SERVICE {client, node ip6, client port, NodePort} in
 * `ct6`), whose first packet picks the backend (lb6_backend, as for a ClusterIP).
 *   - A backend on this node: DNAT, the flow after DNAT tracked with HRB_CT_F_SVC |
 *     HRB_CT_F_FROM_OUTSIDE and {node ip6, NodePort} as its service address, redirect_peer;
 *     the backend sees the client's address. Its answers pass from_pod6, which gives them the
 *     node's address and the NodePort back as their source (lb6_reverse) and forwards them.
 *   - A backend on another node: DNAT, and SNAT to the node's IPv6 address so that the backend
 *     answers through this node. The SNAT port is claimed as a masqueraded flow's (nat6_claim:
 *     one range, one key space, BPF_NOEXIST), the claim owned by HRB_CT_NODEPORT; the
 *     connection's HRB_CT_NODEPORT entry {client -> backend} holds the SNAT port and the
 *     NodePort. Forwarded along the FIB. The reply comes back to the uplink for the SNAT port:
 *     reverse_nat6() sees the claim's owner and hands it here — reverse SNAT (destination: the
 *     client), reverse DNAT (source: node ip6 and NodePort), along the FIB back to the client.
 * A TCP connection starts with a pure SYN: a TCP packet without one and without state goes to
 * the stack. Hop limit <= 1 and what the FIB cannot forward go to the stack untranslated, where
 * kube-proxy's ip6tables NodePort rules (installed underneath) translate them.
 * ICMPv6 errors about NodePort connections are translated both ways as nodeport.h does for
 * IPv4 (nodeport6_error_to_client, nodeport6_error_to_backend; a local backend's own errors in
 * nat6.h's icmp6_error_out).
 */
#ifndef HRB_NODEPORT6_H
#define HRB_NODEPORT6_H

#include "common.h"
#include "ct.h"
#include "ct6.h"
#include "fwd.h"
#include "fwd6.h"
#include "ipv6.h"
#include "lb6.h"
#include "maps.h"
#include "nat6.h"
#include "nodeport.h" /* enum np_verdict */

/* np_snat_port (nodeport.h) for IPv6: the SNAT port of the connection of v (client -> backend,
 * after DNAT) to NodePort np — the one its entry holds while the claim still names it
 * (re-created when it was evicted), else a new claim. 0 when the packet must be dropped. */
static __always_inline __u16 np6_snat_port(const struct pkt6 *v, __u16 np, __u64 now)
{
	struct hrb_ct6_key k, rk;
	struct hrb_ct6_entry *e, *r, n;
	__u16 sp = 0;
	long rc;

	ct6_key_orig(v, &k);
	k.kind = HRB_CT_NODEPORT;
	e = bpf_map_lookup_elem(&ct6, &k);
	if (e) {
		ct6_track(e, v, false, now);
		nat6_rev_key(&rk, &v->daddr, v->dport, e->nat_port, v->proto);
		r = bpf_map_lookup_elem(&ct6, &rk);
		if (r) {
			if (r->owner == HRB_CT_NODEPORT && ip6_eq(&r->nat_ip, &v->saddr) &&
			    r->nat_port == v->sport) {
				nat6_mirror(r, e);
				sp = e->nat_port;
			}
		} else {
			struct hrb_ct6_entry claim = {.expires_ns = e->expires_ns,
						      .nat_ip = v->saddr,
						      .nat_port = v->sport,
						      .owner = HRB_CT_NODEPORT};

			if (!bpf_map_update_elem(&ct6, &rk, &claim, BPF_NOEXIST)) {
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
	ct6_init(&n, v, 0, now);
	sp = nat6_claim(v, n.expires_ns, &rk, HRB_CT_NODEPORT);
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
	rc = bpf_map_update_elem(&ct6, &k, &n, BPF_NOEXIST);
	if (rc == -17 /* EEXIST: another CPU created the connection first; its port wins */) {
		bpf_map_delete_elem(&ct6, &rk);
		e = bpf_map_lookup_elem(&ct6, &k);
		return e ? e->nat_port : 0;
	}
	if (rc) {
		bpf_map_delete_elem(&ct6, &rk); /* no half state */
		count(HRB_R_DROP_CT_FULL);
		return 0;
	}
	count(HRB_R_CT_CREATED);
	return sp;
}

/* Both ends of the packet rewritten (destination first, then source) and p updated; -1 when a
 * rewrite failed. */
static __always_inline int np6_rewrite(struct __sk_buff *skb, struct pkt6 *p,
				       const struct hrb_ip6 *saddr, __u16 sport,
				       const struct hrb_ip6 *daddr, __u16 dport)
{
	if (rewrite6(skb, p, false, &p->daddr, daddr, p->dport, dport) ||
	    rewrite6(skb, p, true, &p->saddr, saddr, p->sport, sport))
		return -1;
	p->saddr = *saddr;
	p->sport = sport;
	p->daddr = *daddr;
	p->dport = dport;
	return 0;
}

/* np_route (nodeport.h) for IPv6: the route from the node's address to dst; false (counted) when
 * the stack must take the packet — hop limit spent, the FIB cannot forward it, too big. */
static __always_inline bool np6_route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, int *rc,
				      const struct hrb_ip6 *dst, const struct pkt6 *p)
{
	struct hrb_ip6 node;

	if (p->hop_limit <= 1) {
		count(HRB_R_NODEPORT_TO_STACK);
		return false;
	}
	ip6_set_node(&node);
	*rc = fib_lookup6(skb, fib, &node, dst, p->proto);
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

/* A packet from outside to the node's IPv6 address: a NodePort connection's, or NP_NONE. */
static __always_inline enum np_verdict nodeport6_in(struct __sk_buff *skb, struct pkt6 *p,
						    struct bpf_fib_lookup *fib, int *rc,
						    struct hrb_endpoint **ep)
{
	struct hrb_lb6_key fk = {.addr = p->daddr, .port = p->dport, .proto = p->proto};
	struct hrb_lb6_value *fe;
	struct hrb_ip6 bip, node;
	__u16 bport, sp, np = p->dport;
	__u64 now;

	if (!lb_enabled || !ip6_is_node(&p->daddr) || !p->has_ports || p->proto == IPPROTO_ICMPV6)
		return NP_NONE;
	fe = bpf_map_lookup_elem(&lb6, &fk);
	if (!fe)
		return NP_NONE;
	if (p->hop_limit <= 1) {
		count(HRB_R_NODEPORT_TO_STACK);
		return NP_TO_STACK;
	}
	now = hrb_now();
	switch (lb6_backend(p, fe, &fk, now, true, HRB_R_NODEPORT_NEW, HRB_R_NODEPORT_HIT, &bip,
			    &bport)) {
	case LB_DONE:
		break;
	case LB_NONE:
		/* TCP without SYN and no connection: not one opened here (the stack's conntrack
		 * may know it: a flow ip6tables' MASQUERADE gave a port in the NodePort range). */
		count(HRB_R_NODEPORT_TO_STACK);
		return NP_TO_STACK;
	default:
		return NP_DROP;
	}
	ip6_set_node(&node);
	*ep = bpf_map_lookup_elem(&endpoints6, &bip);
	if (*ep) {
		if (rewrite6(skb, p, false, &node, &bip, np, bport))
			return NP_DROP;
		p->daddr = bip;
		p->dport = bport;
		if (!lb6_track(p, &node, np, HRB_CT_F_FROM_OUTSIDE, now))
			return NP_DROP;
		count(HRB_R_NODEPORT_LOCAL);
		return NP_LOCAL;
	}
	if (!np6_route(skb, fib, rc, &bip, p))
		return NP_TO_STACK;
	/* The connection's state is keyed after DNAT: p as it will be towards the backend. */
	p->daddr = bip;
	p->dport = bport;
	sp = np6_snat_port(p, np, now);
	p->daddr = node;
	p->dport = np;
	if (!sp)
		return NP_DROP;
	if (np6_rewrite(skb, p, &node, sp, &bip, bport))
		return NP_DROP;
	count(HRB_R_NODEPORT_REMOTE);
	return NP_FORWARD;
}

/* np_by_snat_port (nodeport.h) for IPv6: the NodePort connection whose request left as
 * node:sp -> backend bip:bport — its HRB_CT_NODEPORT entry, with *r its claim and *cip:*cport its
 * client. NULL when the claim is no NodePort connection's, when the entry is gone (it cannot be
 * re-created from the claim, which lacks the NodePort), or when the claim is stale. */
static __always_inline struct hrb_ct6_entry *np6_by_snat_port(const struct hrb_ip6 *bip,
							      __u16 bport, __u16 sp, __u8 proto,
							      struct hrb_ct6_entry **r,
							      struct hrb_ip6 *cip, __u16 *cport)
{
	struct hrb_ct6_key k;
	struct hrb_ct6_entry *e;

	nat6_rev_key(&k, bip, bport, sp, proto);
	*r = bpf_map_lookup_elem(&ct6, &k);
	if (!*r || (*r)->owner != HRB_CT_NODEPORT)
		return NULL;
	*cip = (*r)->nat_ip;
	*cport = (*r)->nat_port;
	ct6_key_tuple(&k, cip, bip, *cport, bport, proto, HRB_CT_NODEPORT);
	e = bpf_map_lookup_elem(&ct6, &k);
	return e && e->nat_port == sp ? e : NULL;
}

/* A remote backend's reply to the node's IPv6 address at a SNAT port whose claim a NodePort
 * connection owns (reverse_nat6() returned 3): reverse SNAT, then reverse DNAT. */
static __always_inline enum np_verdict nodeport6_reply(struct __sk_buff *skb, struct pkt6 *p,
						       struct bpf_fib_lookup *fib, int *rc)
{
	struct hrb_ct6_entry *r, *e;
	struct hrb_ip6 cip, node;
	__u16 cport;

	e = np6_by_snat_port(&p->saddr, p->sport, p->dport, p->proto, &r, &cip, &cport);
	if (!e) {
		count(HRB_R_NODEPORT_REPLY_MISS);
		return NP_TO_STACK;
	}
	if (!np6_route(skb, fib, rc, &cip, p))
		return NP_TO_STACK;
	ct6_track(e, p, true, hrb_now());
	nat6_mirror(r, e);
	ip6_set_node(&node);
	if (np6_rewrite(skb, p, &node, e->node_port, &cip, cport))
		return NP_DROP;
	count(HRB_R_NODEPORT_REPLY);
	return NP_FORWARD;
}

/* nodeport_error_to_client (nodeport.h) for IPv6: an ICMPv6 error for the node about a request
 * it forwarded to a remote backend (quoted: node:snat -> backend; icmp6_error_in() returned 3):
 * to the client, quoting the request as the client sent it (client -> [node]:NodePort), from
 * the node's address whoever sent it — the backend or a router between the nodes: the client
 * only talks to the node, and no pod or fabric address goes out. */
static __always_inline enum np_verdict nodeport6_error_to_client(struct __sk_buff *skb,
								 struct pkt6 *p,
								 struct bpf_fib_lookup *fib,
								 int *rc)
{
	struct pkt6_inner *in = &p->inner;
	struct hrb_ct6_entry *r, *e;
	struct hrb_ip6 cip, node, bip = in->daddr;
	__u16 cport, bport = in->dport, sp = in->sport;

	e = np6_by_snat_port(&bip, bport, sp, in->proto, &r, &cip, &cport);
	if (!e) {
		count(HRB_R_NODEPORT_REPLY_MISS);
		return NP_TO_STACK;
	}
	if (!np6_route(skb, fib, rc, &cip, p))
		return NP_TO_STACK;
	ip6_set_node(&node);
	if (icmp6_error_rewrite(skb, p, true, &node, &cip, sp, cport, true) ||
	    icmp6_error_rewrite(skb, p, false, &bip, &node, bport, e->node_port, false) ||
	    icmp6_outer_rewrite(skb, p, true, &p->saddr, &node))
		return NP_DROP;
	p->daddr = cip;
	p->saddr = node;
	count(HRB_R_ICMP_ERROR_LB);
	return NP_FORWARD;
}

/* nodeport_error_to_backend (nodeport.h) for IPv6: a client's ICMPv6 error to the node about a
 * NodePort answer it got (quoted: [node]:NodePort -> client): to the connection's backend,
 * quoting the answer as the backend sent it — on this node (NP_LOCAL, *ep), or on another,
 * where the answer came from the SNAT port (NP_FORWARD). NP_NONE when the quote is of no
 * NodePort connection. */
static __always_inline enum np_verdict nodeport6_error_to_backend(struct __sk_buff *skb,
								  struct pkt6 *p,
								  struct bpf_fib_lookup *fib,
								  int *rc, struct hrb_endpoint **ep)
{
	struct pkt6_inner *in = &p->inner;
	struct hrb_ct6_key k;
	struct hrb_ct6_entry *se, *e;
	struct hrb_ip6 bip, node, cip = p->saddr;
	__u16 bport, np = in->sport, cport = in->dport;

	if (!lb_enabled || !in->ok || !ip6_is_node(&p->daddr) || !ip6_is_node(&in->saddr) ||
	    !ip6_eq(&in->daddr, &cip) || in->proto == IPPROTO_ICMPV6)
		return NP_NONE;
	ip6_set_node(&node);
	ct6_key_tuple(&k, &cip, &node, cport, np, in->proto, HRB_CT_SERVICE);
	se = bpf_map_lookup_elem(&ct6, &k);
	if (!se)
		return NP_NONE;
	bip = se->nat_ip;
	bport = se->nat_port;
	*ep = bpf_map_lookup_elem(&endpoints6, &bip);
	if (*ep) {
		if (icmp6_error_rewrite(skb, p, true, &node, &bip, np, bport, true))
			return NP_DROP;
		p->daddr = bip;
		count(HRB_R_ICMP_ERROR_LB);
		return NP_LOCAL;
	}
	ct6_key_tuple(&k, &cip, &bip, cport, bport, in->proto, HRB_CT_NODEPORT);
	e = bpf_map_lookup_elem(&ct6, &k);
	if (!e)
		return NP_NONE;
	if (!np6_route(skb, fib, rc, &bip, p))
		return NP_TO_STACK;
	if (icmp6_error_rewrite(skb, p, true, &node, &bip, np, bport, true) ||
	    icmp6_error_rewrite(skb, p, false, &cip, &node, cport, e->nat_port, true))
		return NP_DROP;
	p->daddr = bip;
	p->saddr = node;
	count(HRB_R_ICMP_ERROR_LB);
	return NP_FORWARD;
}

#endif
