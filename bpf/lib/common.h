/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Constants, load-time configuration and counters shared by the datapath programs. */
#ifndef HRB_COMMON_H
#define HRB_COMMON_H

/* The datapath reads packet headers and UAPI structs only, whose layout never changes: no CO-RE
 * relocations, so libbpf need not parse the kernel's BTF (6 MB) for each object it loads — a
 * fifth of `mode ebpf`'s time on a 16-node cluster (docs/scale.md). */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "hrb_abi.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define AF_INET 2
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Offsets in an Ethernet + IPv4 frame; the L4 header's depends on the IP options (pkt.l4_off). */
#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SRC_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))

/* Load-time configuration (set through the skeleton's rodata before load). */
const volatile __u32 node_ip = 0;      /* network order */
const volatile __u32 cluster_net = 0;  /* network order */
const volatile __u32 cluster_mask = 0; /* network order */
const volatile __u32 service_net = 0;
const volatile __u32 service_mask = 0;
/* Masquerade ports (host order): Linux's default ephemeral range, so that a pod's own port is
 * usually kept; ebpf mode moves the node netns' own ephemeral range out of it (datapath.md). */
const volatile __u16 nat_port_min = 32768;
const volatile __u16 nat_port_max = 60999;
/* Connection-tracking lifetimes, Cilium's defaults (CT_CONNECTION_LIFETIME_TCP, _NONTCP,
 * CT_SYN_TIMEOUT, CT_CLOSE_TIMEOUT). */
const volatile __u64 ct_lifetime_tcp_ns = 21600ull * 1000000000;
const volatile __u64 ct_lifetime_other_ns = 60ull * 1000000000;
const volatile __u64 ct_lifetime_syn_ns = 60ull * 1000000000;
const volatile __u64 ct_lifetime_close_ns = 10ull * 1000000000;
const volatile bool ct_enabled = true; /* microbenchmarks only: the cost of tracking pod traffic */
/* Services are load-balanced in BPF (kube-proxy replacement; ebpf and bpf-lb modes). */
const volatile bool lb_enabled = false;
/* false in bpf-lb mode: after connection tracking and load balancing, the host stack routes
 * (and iptables masquerades); true in ebpf mode: BPF host routing. */
const volatile bool host_routing = true;
const volatile bool record_redirects = false; /* tests only */
const volatile __u32 delay_loops = 0;	      /* calibration: injected cost per packet */
const volatile bool services_enabled = false; /* kube-proxy service rules are installed */
/* IPv4: off on a single-stack IPv6 node, whose IPv4 facts (node_ip, cluster_net, ...) are all
 * zero: every IPv4 packet goes to the stack untouched (to_stack_ipv4_off), none is classified by
 * an all-zero prefix. */
const volatile bool ipv4_enabled = true;
/* IPv6 (lib/ipv6.h and the *6 headers): off unless the node has IPv6 facts (datapath::Ipv6Facts);
 * off, every IPv6 packet goes to the stack (to_stack_non_ipv4). Addresses in network order; a
 * prefix as its address and mask. */
const volatile bool ipv6_enabled = false;
const volatile struct hrb_ip6 node_ip6 = {};
const volatile struct hrb_ip6 cluster_net6 = {};
const volatile struct hrb_ip6 cluster_mask6 = {};
const volatile struct hrb_ip6 service_net6 = {};
const volatile struct hrb_ip6 service_mask6 = {};
/* The flag an IPv6 address change adds to its bpf_l4_csum_replace: BPF_F_IPV6 (kernel >= 6.16)
 * keeps skb->csum of a CHECKSUM_COMPLETE packet right; an older kernel refuses the flag (-EINVAL),
 * so the loader clears it there (doctor::kernel_has_csum_ipv6_flag) and such a packet's
 * skb->csum is left as kernels before the flag left every IPv6 rewrite. */
const volatile __u64 csum_flag_ipv6 = BPF_F_IPV6;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HRB_R__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct hrb_redirect_record last_redirect = {};

static __always_inline void count(enum hrb_reason r)
{
	__u32 key = r;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	if (v)
		*v += 1;
}

static __always_inline void record(__u32 helper, __u32 ifindex)
{
	if (record_redirects) {
		last_redirect.helper = helper;
		last_redirect.ifindex = ifindex;
		last_redirect.count++;
	}
}

/* The datapath's clock, for lifetimes (CT, claims, stack_flows): CLOCK_MONOTONIC read at the last
 * tick (a few ms of resolution, ample for lifetimes of 10 s and more). bpf_ktime_get_ns() reads
 * the clock source on every call, which here cost about half of what connection tracking adds
 * to a packet (docs/bench.md). */
static __always_inline __u64 hrb_now(void) { return bpf_ktime_get_coarse_ns(); }

/* A tunable busy loop, off (0) unless the gate's calibration switches it on. */
static __always_inline void injected_delay(void)
{
	if (!delay_loops)
		return;
	for (__u32 i = 0; i < delay_loops && i < 100000; i++)
		asm volatile("" ::: "memory"); /* keeps the loop from being optimised away */
	count(HRB_R_DELAY_LOOPS);
}

static __always_inline bool in_cluster(__u32 addr) { return (addr & cluster_mask) == cluster_net; }

static __always_inline bool in_services(__u32 addr)
{
	return service_mask && (addr & service_mask) == service_net;
}

/* The backend choice of a new load-balanced connection (lb_backend, lb6_backend): a hash of its
 * tuple (murmur3's 32-bit block mixing and finaliser), modulo the number of backends. Cilium's
 * default algorithm (loadBalancer.algorithm=random) picks at random; its Maglev option hashes the
 * tuple (into a lookup table, which keeps most choices when backends change; ours never change
 * during a run). With a hash, a connection whose HRB_CT_SERVICE entry the LRU evicted picks the
 * same backend again instead of a random one, which would answer its next packet with a reset. */
static __always_inline __u32 hrb_hash_word(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = (k << 15) | (k >> 17);
	k *= 0x1b873593;
	h ^= k;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 hrb_hash_final(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

#endif
