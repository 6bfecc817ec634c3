/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Constants, load-time configuration and counters shared by the datapath programs. */
#ifndef HRB_COMMON_H
#define HRB_COMMON_H

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
#define ICMP_ECHO 8
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Offsets for an Ethernet + option-less IPv4 header (options go to the stack). */
#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SRC_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))
#define L4_OFF (IP_OFF + sizeof(struct iphdr))

/* Load-time configuration (set through the skeleton's rodata before load). */
const volatile __u32 node_ip = 0;      /* network order */
const volatile __u32 cluster_net = 0;  /* network order */
const volatile __u32 cluster_mask = 0; /* network order */
const volatile __u32 service_net = 0;
const volatile __u32 service_mask = 0;
const volatile __u16 nat_port_min = 1024; /* host order */
const volatile __u16 nat_port_max = 65535;
const volatile __u64 nat_timeout_tcp_ns = 3600ull * 1000000000;
const volatile __u64 nat_timeout_closing_ns = 10ull * 1000000000;
const volatile __u64 nat_timeout_udp_ns = 60ull * 1000000000;
const volatile __u64 nat_timeout_icmp_ns = 30ull * 1000000000;
const volatile bool record_redirects = false; /* tests only */
const volatile __u32 delay_loops = 0;	      /* calibration: injected cost per packet */
const volatile bool services_enabled = false; /* kube-proxy service rules are installed */

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

#endif
