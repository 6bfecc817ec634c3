/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Masquerade (SNAT to the node IP) on connection tracking, and its reverse.
 *
 * A masqueraded flow is one state in two keys of the `ct` map: its HRB_CT_FLOW entry (pod side,
 * holding the NAT port) and the HRB_CT_NAT_REV claim {remote, node ip, remote port, nat port} ->
 * {pod ip, pod port}. The claim is inserted with BPF_NOEXIST, which makes the port choice atomic
 * across CPUs; an expired claim is taken over with a compare-and-swap on its lifetime, so two
 * CPUs can never both reclaim it. Every packet, in either direction, looks up both keys and
 * checks that they still point at each other: when the LRU evicted one half, it is re-created
 * from the other (counted ct_evicted); when the port was meanwhile claimed by another flow, this
 * flow gets a new port (nat_remapped) — a packet is never translated with another flow's state.
 *
 * ICMP errors about a masqueraded flow are translated both ways, the embedded header included
 * (RFC 5508). Packets to be masqueraded that have no ports (GRE, SCTP, ICMP other than echo) go
 * to the stack, where ip-masq-agent's MASQUERADE rule (installed underneath in ebpf mode)
 * translates them.
 */
#ifndef HRB_NAT_H
#define HRB_NAT_H

#include "common.h"
#include "ct.h"
#include "maps.h"
#include "parse.h"

#define NAT_RETRIES 32

enum nat_verdict {
	NAT_FORWARD = 0, /* translated, or not to be translated: go on forwarding */
	NAT_TO_STACK,	 /* let the stack do it */
	NAT_DROP,
};

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

/* L4 checksum offset. */
static __always_inline __u32 l4_csum_off(const struct pkt *p)
{
	if (p->proto == IPPROTO_TCP)
		return p->l4_off + offsetof(struct tcphdr, check);
	if (p->proto == IPPROTO_UDP)
		return p->l4_off + offsetof(struct udphdr, check);
	return p->l4_off + offsetof(struct icmphdr, checksum);
}

/* Rewrites one address (source or destination) and one port (or ICMP echo id) with
 * incremental checksum updates; a UDP checksum of zero (none) stays zero. */
static __always_inline int rewrite(struct __sk_buff *skb, const struct pkt *p, bool source,
				   __u32 old_ip, __u32 new_ip, __u16 old_port, __u16 new_port)
{
	__u32 csum = l4_csum_off(p);
	__u64 mangled = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 ip_off = source ? IP_SRC_OFF : IP_DST_OFF;
	__u32 port_off;

	if (p->proto == IPPROTO_ICMP)
		port_off = p->l4_off + offsetof(struct icmphdr, un.echo.id);
	else
		port_off = p->l4_off + (source ? 0 : 2);

	if (old_ip != new_ip) {
		/* ICMP's checksum has no pseudo-header. */
		if (p->proto != IPPROTO_ICMP &&
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

/* A backend's reply in a load-balanced connection (e: its flow, found in the reply direction,
 * HRB_CT_F_SVC): the source becomes the service address again (Cilium's lb4_rev_nat). Used by
 * lib/lb.h, and by masquerade() for a local backend's answer to a NodePort client. */
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

/* The claim of nat_port towards remote:remote_port (ICMP: no remote port). */
static __always_inline void nat_rev_key(struct hrb_ct_key *k, __u32 remote, __u16 remote_port,
					__u16 nat_port, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = remote;
	k->dst_ip = node_ip;
	k->src_port = proto == IPPROTO_ICMP ? 0 : remote_port;
	k->dst_port = nat_port;
	k->proto = proto;
	k->kind = HRB_CT_NAT_REV;
}

/* Claims a port for a new masqueraded flow: the pod's own when it is in range and free, else
 * random candidates, each drawn anew: probing along a fixed step would make the taken ports
 * cluster as in linear probing, and at 50-60 % occupancy 32 probes then fail now and again
 * (found by datapath_bench's BM_MasqNewFlow); with independent draws they fail with
 * probability occupancy^32. Each claim is a BPF_NOEXIST insert, so an existing flow's
 * port is never taken; an expired claim is taken over by whichever CPU wins the
 * compare-and-swap of its lifetime. Returns the port (network order), 0 when none was free;
 * *rk is the claim's key. p is the packet as it is before SNAT: its source is what the claim
 * translates back to; `kind` the claim's owner (HRB_CT_FLOW: a masqueraded pod flow,
 * HRB_CT_NODEPORT: a NodePort connection, lib/nodeport.h). Both draw from one port range and
 * one key space, so a NodePort SNAT port and a masqueraded flow's can never be the same claim. */
static __always_inline __u16 nat_claim(const struct pkt *p, __u64 expires, struct hrb_ct_key *rk,
				       __u8 kind)
{
	struct hrb_ct_entry owner = {
	    .expires_ns = expires, .nat_ip = p->saddr, .nat_port = p->sport, .owner = kind};
	__u32 range = (__u32)nat_port_max - nat_port_min + 1;
	__u16 orig = bpf_ntohs(p->sport);
	__u64 now = hrb_now();

	for (__u32 i = 0; i < NAT_RETRIES; i++) {
		struct hrb_ct_entry *old;
		__u16 cand;
		__u64 seen;

		if (i == 0 && orig >= nat_port_min && orig <= nat_port_max)
			cand = orig;
		else
			cand = nat_port_min + bpf_get_prandom_u32() % range;
		nat_rev_key(rk, p->daddr, p->dport, bpf_htons(cand), p->proto);
		if (!bpf_map_update_elem(&ct, rk, &owner, BPF_NOEXIST))
			return rk->dst_port;
		old = bpf_map_lookup_elem(&ct, rk);
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

/* Keeps the claim in step with its flow (lifetime, closed). */
static __always_inline void nat_mirror(struct hrb_ct_entry *claim, const struct hrb_ct_entry *e)
{
	__u8 closed = e->flags & HRB_CT_F_CLOSED;

	claim->expires_ns = e->expires_ns;
	if ((claim->flags & HRB_CT_F_CLOSED) != closed)
		claim->flags = closed;
}

/* For a masqueraded flow's packet from the pod: the port its claim still holds for it, after
 * re-creating an evicted claim; 0 when another flow holds the port now. */
static __always_inline __u16 nat_check_claim(const struct pkt *p, const struct hrb_ct_entry *e)
{
	struct hrb_ct_key rk;
	struct hrb_ct_entry *r;

	nat_rev_key(&rk, p->daddr, p->dport, e->nat_port, p->proto);
	r = bpf_map_lookup_elem(&ct, &rk);
	if (r) {
		if (r->nat_ip != p->saddr || r->nat_port != p->sport || r->owner != HRB_CT_FLOW)
			return 0;
		nat_mirror(r, e);
		return e->nat_port;
	}
	struct hrb_ct_entry claim = {
	    .expires_ns = e->expires_ns, .nat_ip = p->saddr, .nat_port = p->sport};

	if (bpf_map_update_elem(&ct, &rk, &claim, BPF_NOEXIST))
		return 0;
	count(HRB_R_CT_EVICTED);
	return e->nat_port;
}

/* Source NAT of a pod's packet to the node IP, for a destination that is to be masqueraded. */
static __always_inline enum nat_verdict masquerade(struct __sk_buff *skb, struct pkt *p)
{
	struct hrb_ct_key k, rk;
	struct hrb_ct_entry *e, n;
	__u64 now = hrb_now();
	__u16 nat_port = 0;
	bool reply;

	e = ct_lookup(p, &k, &reply);
	if (e && reply && (e->flags & HRB_CT_F_FROM_OUTSIDE)) {
		/* The pod answers a flow opened towards it from outside: the answer keeps the
		 * address that flow was opened to — the NodePort's (node IP, NodePort) when the
		 * pod is the connection's local backend (lib/nodeport.h). */
		ct_track(e, p, true, now);
		if (e->flags & HRB_CT_F_SVC)
			return lb_reverse(skb, p, e) ? NAT_DROP : NAT_FORWARD;
		count(HRB_R_MASQ_SKIP_REPLY);
		return NAT_FORWARD;
	}
	if (e && reply) {
		/* A "reply" in a flow not opened from outside: this packet starts its own flow. */
		ct_key_orig(p, &k);
		e = NULL;
	}
	if (!p->has_ports) {
		count(HRB_R_TO_STACK_NO_PORTS);
		return NAT_TO_STACK;
	}
	if (e)
		ct_track(e, p, false, now);
	if (e && (e->flags & HRB_CT_F_MASQ)) {
		nat_port = nat_check_claim(p, e);
		if (nat_port)
			count(HRB_R_MASQ_HIT);
		else
			count(HRB_R_NAT_REMAPPED);
	}
	if (!nat_port) {
		ct_init(&n, p, HRB_CT_F_MASQ, now);
		nat_port = nat_claim(p, n.expires_ns, &rk, HRB_CT_FLOW);
		if (!nat_port) {
			count(HRB_R_DROP_NO_PORT);
			return NAT_DROP;
		}
		n.nat_ip = node_ip;
		n.nat_port = nat_port;
		if (e) {
			/* Re-mapped, or tracked before it needed masquerade: the flow's entry now
			 * holds the new translation. */
			e->nat_ip = node_ip;
			e->nat_port = nat_port;
			e->flags |= HRB_CT_F_MASQ;
		} else {
			long rc = bpf_map_update_elem(&ct, &k, &n, BPF_NOEXIST);

			if (rc == -17 /* EEXIST: another CPU created the flow first */) {
				bpf_map_delete_elem(&ct, &rk);
				e = bpf_map_lookup_elem(&ct, &k);
				if (!e || !(e->flags & HRB_CT_F_MASQ))
					return NAT_DROP;
				nat_port = e->nat_port;
			} else if (rc) {
				bpf_map_delete_elem(&ct, &rk); /* no half state */
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
	if (rewrite(skb, p, true, p->saddr, node_ip, p->sport, nat_port))
		return NAT_DROP;
	p->saddr = node_ip;
	p->sport = nat_port;
	return NAT_FORWARD;
}

/* Reverse NAT of a reply arriving at the node IP. Returns 1 when translated (p updated to the
 * pod as destination), 0 when the packet belongs to no masqueraded flow, 2 when it is for a
 * masquerade port but no state matches (a reply whose state is gone: in ebpf mode the node's own
 * sockets use other ports), 3 when the port is claimed by a NodePort connection (p untouched:
 * lib/nodeport.h translates it), -1 on error. */
static __always_inline int reverse_nat(struct __sk_buff *skb, struct pkt *p)
{
	struct hrb_ct_key rk, fk;
	struct hrb_ct_entry *r, *e;
	__u16 nat_port, pod_port;
	__u32 pod_ip;
	__u64 now;

	if (!p->has_ports || p->daddr != node_ip)
		return 0;
	if (p->proto == IPPROTO_ICMP && p->icmp_type != ICMP_ECHOREPLY)
		return 0;
	nat_port = p->proto == IPPROTO_ICMP ? p->sport : p->dport;
	nat_rev_key(&rk, p->saddr, p->sport, nat_port, p->proto);
	r = bpf_map_lookup_elem(&ct, &rk);
	if (!r)
		goto miss;
	if (r->owner == HRB_CT_NODEPORT)
		return 3;
	if (r->owner != HRB_CT_FLOW)
		goto miss;
	pod_ip = r->nat_ip;
	pod_port = r->nat_port;
	now = hrb_now();

	__builtin_memset(&fk, 0, sizeof(fk));
	fk.src_ip = pod_ip;
	fk.dst_ip = p->saddr;
	fk.src_port = pod_port;
	fk.dst_port = p->proto == IPPROTO_ICMP ? 0 : p->sport;
	fk.proto = p->proto;
	fk.kind = HRB_CT_FLOW;
	e = bpf_map_lookup_elem(&ct, &fk);
	if (!e) {
		/* The flow's half was evicted: the claim has all it takes to re-create it. */
		struct hrb_ct_entry n = {.expires_ns = r->expires_ns,
					 .nat_ip = node_ip,
					 .nat_port = nat_port,
					 .flags = HRB_CT_F_MASQ | HRB_CT_F_ESTABLISHED |
						  (r->flags & HRB_CT_F_CLOSED)};

		if (!bpf_map_update_elem(&ct, &fk, &n, BPF_NOEXIST))
			count(HRB_R_CT_EVICTED);
		e = bpf_map_lookup_elem(&ct, &fk);
		if (!e)
			goto miss;
	}
	if (!(e->flags & HRB_CT_F_MASQ) || e->nat_port != nat_port)
		goto miss; /* a stale claim: the flow was re-mapped since */
	ct_track(e, p, true, now);
	nat_mirror(r, e);
	if (rewrite(skb, p, false, p->daddr, pod_ip, nat_port, pod_port))
		return -1;
	p->daddr = pod_ip;
	if (p->proto == IPPROTO_ICMP)
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

/* An ICMP error's outer source or destination address: the IP header checksum only (ICMP has no
 * pseudo-header). */
static __always_inline int icmp_outer_rewrite(struct __sk_buff *skb, bool source, __u32 old_ip,
					      __u32 new_ip)
{
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip, 4) ||
	    bpf_skb_store_bytes(skb, source ? IP_SRC_OFF : IP_DST_OFF, &new_ip, 4, 0))
		return -1;
	return 0;
}

/* Translates an ICMP error about a translated flow (RFC 5508, 4.2): in the quoted header the
 * address, the port (or echo id) and both checksums, each change also folded into the ICMP
 * checksum, and with `outer` the outer address too. inbound: the quoted source and the outer
 * destination (e.g. towards the pod, node:nat -> pod:port); else the quoted destination and the
 * outer source (e.g. from the pod, pod:port -> node:nat). */
static __always_inline int icmp_error_rewrite(struct __sk_buff *skb, const struct pkt *p,
					      bool inbound, __u32 old_ip, __u32 new_ip,
					      __u16 old_port, __u16 new_port, bool outer)
{
	__u32 icsum = p->l4_off + offsetof(struct icmphdr, checksum);
	__u32 iip = p->l4_off + sizeof(struct icmphdr);
	__u32 il4 = iip + sizeof(struct iphdr);
	__u8 proto = p->inner.proto;
	__u32 addr_off =
	    iip + (inbound ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	__u32 port_off = il4 + (proto == IPPROTO_ICMP ? 4 : (inbound ? 0 : 2));
	__u32 l4c_off = il4 + (proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2);
	__u16 before, after;

	/* The quoted IP address and the quoted header's checksum. */
	if (bpf_skb_load_bytes(skb, iip + 10, &before, 2) ||
	    bpf_l3_csum_replace(skb, iip + 10, old_ip, new_ip, 4) ||
	    bpf_skb_load_bytes(skb, iip + 10, &after, 2) ||
	    bpf_skb_store_bytes(skb, addr_off, &new_ip, 4, 0) ||
	    bpf_l4_csum_replace(skb, icsum, old_ip, new_ip, 4) ||
	    bpf_l4_csum_replace(skb, icsum, before, after, 2))
		return -1;
	/* The quoted L4 checksum, when it was quoted (TCP's lies past the 8 bytes RFC 792 asks
	 * for) and is in use (UDP's may be 0). */
	if (bpf_skb_load_bytes(skb, l4c_off, &before, 2) == 0 &&
	    !(proto == IPPROTO_UDP && before == 0)) {
		if (proto != IPPROTO_ICMP && bpf_l3_csum_replace(skb, l4c_off, old_ip, new_ip, 4))
			return -1;
		if (bpf_l3_csum_replace(skb, l4c_off, old_port, new_port, 2) ||
		    bpf_skb_load_bytes(skb, l4c_off, &after, 2) ||
		    bpf_l4_csum_replace(skb, icsum, before, after, 2))
			return -1;
	}
	/* The quoted port (echo id). */
	if (bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0) ||
	    bpf_l4_csum_replace(skb, icsum, old_port, new_port, 2))
		return -1;
	return outer ? icmp_outer_rewrite(skb, !inbound, old_ip, new_ip) : 0;
}

/* An ICMP error to a load-balanced connection's client about one of its requests, quoted as the
 * backend got it (client -> backend; e: that flow, HRB_CT_F_SVC): the quoted destination gets the
 * service address back (e->nat_ip:nat_port, a ClusterIP's or the node's NodePort), and so does
 * the outer source when the backend itself sent the error; a router on the way keeps its own
 * address (traceroute still names the hop). */
static __always_inline int lb_icmp_error_rewrite(struct __sk_buff *skb, struct pkt *p,
						 const struct hrb_ct_entry *e)
{
	struct pkt_inner *in = &p->inner;
	bool from_backend = p->saddr == in->daddr;

	if (icmp_error_rewrite(skb, p, false, in->daddr, e->nat_ip, in->dport, e->nat_port,
			       from_backend))
		return -1;
	if (from_backend)
		p->saddr = e->nat_ip;
	count(HRB_R_ICMP_ERROR_LB);
	return 0;
}

/* The same, when p is an ICMP error to its quoted sender: 1 when translated, 0 when the quote is
 * of no load-balanced flow, -1 on error. */
static __always_inline int lb_icmp_error_to_client(struct __sk_buff *skb, struct pkt *p)
{
	struct pkt_inner *in = &p->inner;
	struct hrb_ct_key k;
	struct hrb_ct_entry *e;

	if (!in->ok || in->saddr != p->daddr || in->proto == IPPROTO_ICMP)
		return 0;
	ct_key_tuple(&k, in->saddr, in->daddr, in->sport, in->dport, in->proto, HRB_CT_FLOW);
	e = bpf_map_lookup_elem(&ct, &k);
	if (!e || !(e->flags & HRB_CT_F_SVC))
		return 0;
	return lb_icmp_error_rewrite(skb, p, e) ? -1 : 1;
}

/* An ICMP error arriving for the node IP about a masqueraded flow (destination unreachable,
 * fragmentation needed included, time exceeded, parameter problem): back to the pod. Returns 1
 * when translated (p->daddr is the pod), 0 when it is about no masqueraded flow, 3 when it is
 * about a NodePort connection's SNATed request (p untouched), -1 on error. */
static __always_inline int icmp_error_in(struct __sk_buff *skb, struct pkt *p)
{
	struct pkt_inner *in = &p->inner;
	struct hrb_ct_key rk;
	struct hrb_ct_entry *r;
	__u32 pod_ip;
	__u16 pod_port;

	if (!in->ok || p->daddr != node_ip || in->saddr != node_ip)
		return 0;
	/* The quoted packet is one the node sent: node:nat -> remote:port. */
	nat_rev_key(&rk, in->daddr, in->dport, in->sport, in->proto);
	r = bpf_map_lookup_elem(&ct, &rk);
	if (r && r->owner == HRB_CT_NODEPORT)
		return 3; /* about a NodePort connection's request: lib/nodeport.h translates it */
	if (!r || r->owner != HRB_CT_FLOW)
		return 0;
	pod_ip = r->nat_ip;
	pod_port = r->nat_port;
	if (icmp_error_rewrite(skb, p, true, node_ip, pod_ip, in->sport, pod_port, true))
		return -1;
	p->daddr = pod_ip;
	count(HRB_R_ICMP_ERROR_REVNAT);
	return 1;
}

/* A pod's ICMP error towards a destination that is masqueraded. The quoted packet is one the pod
 * received: remote -> pod, and the error goes back to its sender. In a flow the pod opened
 * (masqueraded) the error takes the node's address; in a flow opened towards the pod from outside
 * it keeps the pod's; anything else (another destination than the quoted sender, no such flow) is
 * dropped, so that no pod address leaves for the outside unasked (found by the packet fuzzer). */
static __always_inline enum nat_verdict icmp_error_out(struct __sk_buff *skb, struct pkt *p)
{
	struct pkt_inner *in = &p->inner;
	struct hrb_ct_key k = {};
	struct hrb_ct_entry *e;

	if (!in->ok || in->saddr != p->daddr || in->daddr != p->saddr)
		goto no_state;
	k.src_ip = in->daddr;
	k.dst_ip = in->saddr;
	k.src_port = in->proto == IPPROTO_ICMP ? in->sport : in->dport;
	k.dst_port = in->proto == IPPROTO_ICMP ? 0 : in->sport;
	k.proto = in->proto;
	k.kind = HRB_CT_FLOW;
	e = bpf_map_lookup_elem(&ct, &k);
	if (e && (e->flags & HRB_CT_F_MASQ)) {
		__u16 pod_port = in->proto == IPPROTO_ICMP ? in->sport : in->dport;

		if (icmp_error_rewrite(skb, p, false, in->daddr, e->nat_ip, pod_port, e->nat_port,
				       true))
			return NAT_DROP;
		p->saddr = node_ip;
		count(HRB_R_ICMP_ERROR_NAT);
		return NAT_FORWARD;
	}
	/* A flow opened towards the pod: {remote -> pod} is its original direction. */
	k.src_ip = in->saddr;
	k.dst_ip = in->daddr;
	k.src_port = in->sport;
	k.dst_port = in->proto == IPPROTO_ICMP ? 0 : in->dport;
	e = bpf_map_lookup_elem(&ct, &k);
	if (e && (e->flags & HRB_CT_F_FROM_OUTSIDE)) {
		/* In a NodePort connection the client connected to the node: the error takes the
		 * node's address and NodePort, outside and in the quote. */
		if ((e->flags & HRB_CT_F_SVC) && lb_icmp_error_rewrite(skb, p, e))
			return NAT_DROP;
		return NAT_FORWARD;
	}
no_state:
	count(HRB_R_DROP_ICMP_ERROR_NO_STATE);
	return NAT_DROP;
}

#endif
