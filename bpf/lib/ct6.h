/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 connection tracking: ct.h's design (one entry per flow, keyed by its first packet's tuple,
 * looked up in both directions; the same TCP states, lifetimes and counters, the state machine
 * itself is ct.h's ct_track_state) on its own LRU map `ct6` with IPv6 keys. As for IPv4 a
 * masqueraded flow is one state in two keys (HRB_CT_FLOW and its HRB_CT_NAT_REV claim, nat6.h)
 * and a load-balanced connection has its HRB_CT_SERVICE entry (lb6.h).
 */
#ifndef HRB_CT6_H
#define HRB_CT6_H

#include "common.h"
#include "ct.h"
#include "ipv6.h"
#include "maps.h"

static __always_inline void ct6_key_tuple(struct hrb_ct6_key *k, const struct hrb_ip6 *src,
					  const struct hrb_ip6 *dst, __u16 sport, __u16 dport,
					  __u8 proto, __u8 kind)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = *src;
	k->dst_ip = *dst;
	k->src_port = sport;
	k->dst_port = dport;
	k->proto = proto;
	k->kind = kind;
}

/* The key of a packet's flow if the packet is in the original direction. */
static __always_inline void ct6_key_orig(const struct pkt6 *p, struct hrb_ct6_key *k)
{
	ct6_key_tuple(k, &p->saddr, &p->daddr, p->sport, p->proto == IPPROTO_ICMPV6 ? 0 : p->dport,
		      p->proto, HRB_CT_FLOW);
}

/* ... if it is a reply. ICMPv6 echo: the id stays the "source". */
static __always_inline void ct6_key_reply(const struct pkt6 *p, struct hrb_ct6_key *k)
{
	bool icmp = p->proto == IPPROTO_ICMPV6;

	ct6_key_tuple(k, &p->daddr, &p->saddr, icmp ? p->sport : p->dport, icmp ? 0 : p->sport,
		      p->proto, HRB_CT_FLOW);
}

static __always_inline struct hrb_ct6_entry *ct6_lookup(const struct pkt6 *p, struct hrb_ct6_key *k,
							bool *reply)
{
	struct hrb_ct6_entry *e;

	ct6_key_orig(p, k);
	e = bpf_map_lookup_elem(&ct6, k);
	if (e) {
		*reply = false;
		return e;
	}
	ct6_key_reply(p, k);
	e = bpf_map_lookup_elem(&ct6, k);
	if (e) {
		*reply = true;
		return e;
	}
	ct6_key_orig(p, k);
	*reply = false;
	return NULL;
}

static __always_inline bool ct6_track(struct hrb_ct6_entry *e, const struct pkt6 *p, bool reply,
				      __u64 now)
{
	return ct_track_state(&e->expires_ns, &e->flags, p->proto, p->tcp_flags, reply, now);
}

static __always_inline void ct6_init(struct hrb_ct6_entry *e, const struct pkt6 *p, __u8 flags,
				     __u64 now)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->flags = ct_new_flags(p->proto, p->tcp_flags, flags);
	e->expires_ns = now + ct_lifetime(p->proto, e->flags);
}

static __always_inline bool ct6_insert(const struct hrb_ct6_key *k, const struct hrb_ct6_entry *e)
{
	long rc = bpf_map_update_elem(&ct6, k, e, BPF_NOEXIST);

	if (rc == 0 || rc == -17 /* EEXIST */) {
		if (rc == 0)
			count(HRB_R_CT_CREATED);
		return true;
	}
	count(HRB_R_DROP_CT_FULL);
	return false;
}

/* As ct_pod_traffic: tracks a packet that is not translated; false when it must be dropped. */
static __always_inline bool ct6_pod_traffic(const struct pkt6 *p, __u8 flags,
					    struct hrb_ct6_entry **out, bool *reply)
{
	struct hrb_ct6_key k;
	struct hrb_ct6_entry *e, n;
	__u64 now;

	*out = NULL;
	*reply = false;
	if (!ct_enabled || p->icmp_error)
		return true;
	now = hrb_now();
	e = ct6_lookup(p, &k, reply);
	if (e) {
		ct6_track(e, p, *reply, now);
		*out = e;
		return true;
	}
	ct6_init(&n, p, flags, now);
	return ct6_insert(&k, &n);
}

#endif
