/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking, after the cases Cilium's bpf/lib/conntrack.h handles, in our own words.
 *
 * One LRU map per node (`ct`, shared by from_pod and from_uplink) holds one entry per flow,
 * keyed by the tuple of the flow's first packet (HRB_CT_FLOW). Every packet of pod traffic looks
 * its flow up in both directions: first as an original-direction packet, then with its tuple
 * reversed as a reply. Created on the first packet; TCP keeps a subset of states (new until a
 * packet without SYN is seen, established, closed on RST or on FIN from both sides); the
 * lifetime is refreshed on every packet (6 h established TCP, 60 s non-TCP and SYN-only, 10 s
 * once closed, and then no longer refreshed). A pure SYN on a closed or expired entry starts the
 * flow anew (port reuse). Lookups do not check the lifetime (as in Cilium, whose agent GC
 * deletes); here the LRU evicts, and the lifetime decides only when a flow is new again and when
 * a masquerade port can be reclaimed (nat.h).
 */
#ifndef HRB_CT_H
#define HRB_CT_H

#include "common.h"
#include "maps.h"
#include "parse.h"

/* Signed: another CPU may have refreshed the lifetime after `now` was read. */
static __always_inline bool ct_expired_at(__u64 expires_ns, __u64 now)
{
	return (__s64)(now - expires_ns) > 0;
}

static __always_inline __u64 ct_lifetime(__u8 proto, __u8 flags)
{
	if (proto != IPPROTO_TCP)
		return ct_lifetime_other_ns;
	if (flags & HRB_CT_F_CLOSED)
		return ct_lifetime_close_ns;
	return (flags & HRB_CT_F_ESTABLISHED) ? ct_lifetime_tcp_ns : ct_lifetime_syn_ns;
}

/* A key from its parts (addresses and ports in network order). */
static __always_inline void ct_key_tuple(struct hrb_ct_key *k, __u32 src, __u32 dst, __u16 sport,
					 __u16 dport, __u8 proto, __u8 kind)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = src;
	k->dst_ip = dst;
	k->src_port = sport;
	k->dst_port = dport;
	k->proto = proto;
	k->kind = kind;
}

/* The key of a packet's flow if the packet is in the original direction. */
static __always_inline void ct_key_orig(const struct pkt *p, struct hrb_ct_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = p->saddr;
	k->dst_ip = p->daddr;
	k->src_port = p->sport;
	k->dst_port = p->proto == IPPROTO_ICMP ? 0 : p->dport;
	k->proto = p->proto;
	k->kind = HRB_CT_FLOW;
}

/* The key of a packet's flow if the packet is a reply. ICMP echo: the id stays the "source". */
static __always_inline void ct_key_reply(const struct pkt *p, struct hrb_ct_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src_ip = p->daddr;
	k->dst_ip = p->saddr;
	k->src_port = p->proto == IPPROTO_ICMP ? p->sport : p->dport;
	k->dst_port = p->proto == IPPROTO_ICMP ? 0 : p->sport;
	k->proto = p->proto;
	k->kind = HRB_CT_FLOW;
}

/* Both-direction lookup. On a hit *reply says which direction the packet is in and *k holds the
 * entry's key; on a miss *k is the original-direction key (for ct_create). */
static __always_inline struct hrb_ct_entry *ct_lookup(const struct pkt *p, struct hrb_ct_key *k,
						      bool *reply)
{
	struct hrb_ct_entry *e;

	ct_key_orig(p, k);
	e = bpf_map_lookup_elem(&ct, k);
	if (e) {
		*reply = false;
		return e;
	}
	ct_key_reply(p, k);
	e = bpf_map_lookup_elem(&ct, k);
	if (e) {
		*reply = true;
		return e;
	}
	ct_key_orig(p, k);
	*reply = false;
	return NULL;
}

/* A TCP packet with SYN and without ACK: the first of a connection (both families). */
static __always_inline bool pure_syn(__u8 proto, __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
}

static __always_inline bool is_pure_syn(const struct pkt *p)
{
	return pure_syn(p->proto, p->tcp_flags);
}

/* A packet of an existing flow: state and lifetime, on the fields both families' entries have
 * (ct6.h uses it too). Returns true when the entry started anew (a SYN reusing a closed or
 * expired tuple, or any packet of an expired non-TCP flow). */
static __always_inline bool ct_track_state(__u64 *expires_ns, __u8 *flags, __u8 proto,
					   __u8 tcp_flags, bool reply, __u64 now)
{
	__u8 old = *flags, f = old;
	bool renewed = false;

	if ((f & HRB_CT_F_CLOSED) || ct_expired_at(*expires_ns, now)) {
		if (proto != IPPROTO_TCP ||
		    (!reply && (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)) {
			/* the translation stays */
			f &= HRB_CT_F_MASQ | HRB_CT_F_SVC | HRB_CT_F_FROM_OUTSIDE;
			renewed = true;
		}
	}
	if (reply)
		f |= HRB_CT_F_SEEN_REPLY;
	if (proto == IPPROTO_TCP) {
		if (!(tcp_flags & TCP_SYN))
			f |= HRB_CT_F_ESTABLISHED;
		if (tcp_flags & TCP_RST)
			f |= HRB_CT_F_CLOSED;
		else if (tcp_flags & TCP_FIN)
			f |= reply ? HRB_CT_F_FIN_REPLY : HRB_CT_F_FIN_ORIG;
		if ((f & (HRB_CT_F_FIN_ORIG | HRB_CT_F_FIN_REPLY)) ==
		    (HRB_CT_F_FIN_ORIG | HRB_CT_F_FIN_REPLY))
			f |= HRB_CT_F_CLOSED;
	}
	if (f != old) {
		*flags = f;
		if ((f & HRB_CT_F_CLOSED) && !(old & HRB_CT_F_CLOSED))
			count(HRB_R_CT_CLOSED);
	}
	/* A closed flow's lifetime is set once, when it closes, and not refreshed after. */
	if (!(f & HRB_CT_F_CLOSED) || !(old & HRB_CT_F_CLOSED))
		*expires_ns = now + ct_lifetime(proto, f);
	if (renewed)
		count(HRB_R_CT_CREATED);
	else
		count(HRB_R_CT_HIT);
	return renewed;
}

static __always_inline bool ct_track(struct hrb_ct_entry *e, const struct pkt *p, bool reply,
				     __u64 now)
{
	return ct_track_state(&e->expires_ns, &e->flags, p->proto, p->tcp_flags, reply, now);
}

/* The flags of a new flow whose first packet has proto and tcp_flags (both families). */
static __always_inline __u8 ct_new_flags(__u8 proto, __u8 tcp_flags, __u8 flags)
{
	if (proto == IPPROTO_TCP && !(tcp_flags & TCP_SYN))
		flags |= HRB_CT_F_ESTABLISHED; /* picked up mid-stream (e.g. after a mode switch) */
	if (proto == IPPROTO_TCP && (tcp_flags & TCP_RST))
		flags |= HRB_CT_F_CLOSED;
	return flags;
}

/* State of a new flow whose first packet is p. */
static __always_inline void ct_init(struct hrb_ct_entry *e, const struct pkt *p, __u8 flags,
				    __u64 now)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->flags = ct_new_flags(p->proto, p->tcp_flags, flags);
	e->expires_ns = now + ct_lifetime(p->proto, e->flags);
}

/* Inserts a flow; false (counted) when the table refused it. Another CPU creating the same flow
 * at the same time is no failure. */
static __always_inline bool ct_insert(const struct hrb_ct_key *k, const struct hrb_ct_entry *e)
{
	long rc = bpf_map_update_elem(&ct, k, e, BPF_NOEXIST);

	if (rc == 0 || rc == -17 /* EEXIST */) {
		if (rc == 0)
			count(HRB_R_CT_CREATED);
		return true;
	}
	count(HRB_R_DROP_CT_FULL);
	return false;
}

/* Tracks a packet of pod traffic that is not translated. `flags` are the new entry's extra
 * flags (HRB_CT_F_FROM_OUTSIDE on the uplink). Returns false when the packet must be dropped
 * (the flow could not be tracked). An existing entry is returned in *out, with the packet's
 * direction in *reply. */
static __always_inline bool ct_pod_traffic(const struct pkt *p, __u8 flags,
					   struct hrb_ct_entry **out, bool *reply)
{
	struct hrb_ct_key k;
	struct hrb_ct_entry *e, n;
	__u64 now;

	*out = NULL;
	*reply = false;
	if (!ct_enabled || p->icmp_error) /* an error belongs to a flow; it starts none */
		return true;
	now = hrb_now();
	e = ct_lookup(p, &k, reply);
	if (e) {
		ct_track(e, p, *reply, now);
		*out = e;
		return true;
	}
	ct_init(&n, p, flags, now);
	return ct_insert(&k, &n);
}

#endif
