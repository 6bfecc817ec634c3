/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps shared by from_pod and from_uplink of one node: the second object reuses the first's
 * (bpf_map__reuse_fd before load), so both see one endpoint table and one connection-tracking
 * table. */
#ifndef HRB_MAPS_H
#define HRB_MAPS_H

#include "common.h"

#define HRB_MAX_ENDPOINTS 4096
#define HRB_MAX_CT 262144 /* flows and masquerade claims; ProgramOptions::ct_entries overrides */
#define HRB_MAX_STACK_FLOWS 65536

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HRB_MAX_ENDPOINTS);
	__type(key, __u32); /* pod IPv4, network order */
	__type(value, struct hrb_endpoint);
} endpoints SEC(".maps");

/* Connection tracking and masquerade state (ct.h, nat.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, HRB_MAX_CT);
	__type(key, struct hrb_ct_key);
	__type(value, struct hrb_ct_entry);
} ct SEC(".maps");

/* Services (lib/lb.h): frontends and their backends, filled by the harness from the cluster's one
 * service list (datapath::service_ip / service_endpoints). */
#define HRB_MAX_LB (2 * 65536)
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HRB_MAX_LB);
	__type(key, struct hrb_lb_key);
	__type(value, struct hrb_lb_value);
} lb SEC(".maps");

/* Clients of services (see hrb_flow_key); value: when last seen. Only used when the cluster has
 * services (the load-time constant `services_enabled`). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HRB_MAX_STACK_FLOWS);
	__type(key, struct hrb_flow_key);
	__type(value, __u64);
} stack_flows SEC(".maps");

/* The non-masquerade CIDRs: an LPM trie behind a one-slot array of maps, so that the IP Masquerade
 * Agent swaps in a complete new trie with one update (atomic for every packet) on a change. */
struct nonmasq_lpm {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HRB_MAX_NONMASQ);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hrb_lpm_key);
	__type(value, __u8);
} nonmasq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct nonmasq_lpm);
} nonmasq_active SEC(".maps") = {
    .values = {&nonmasq},
};

/* IPv6: the same tables, keyed by IPv6 addresses (hrb_abi.h), sized like the IPv4 ones
 * (ProgramOptions::ct_entries sizes ct6 too). Empty unless the node has IPv6. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HRB_MAX_ENDPOINTS);
	__type(key, struct hrb_ip6);
	__type(value, struct hrb_endpoint);
} endpoints6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, HRB_MAX_CT);
	__type(key, struct hrb_ct6_key);
	__type(value, struct hrb_ct6_entry);
} ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HRB_MAX_LB);
	__type(key, struct hrb_lb6_key);
	__type(value, struct hrb_lb6_value);
} lb6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HRB_MAX_STACK_FLOWS);
	__type(key, struct hrb_flow6_key);
	__type(value, __u64);
} stack_flows6 SEC(".maps");

/* The IPv6 masquerade exclusions: as the IPv4 ones, an LPM trie behind a one-slot array of maps,
 * which the IP Masquerade Agent swaps on a change (one update, atomic for every packet; the
 * kernel takes an inner map of the template's type, key, value and flags). */
struct nonmasq6_lpm {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HRB_MAX_NONMASQ);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hrb_lpm6_key);
	__type(value, __u8);
} nonmasq6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct nonmasq6_lpm);
} nonmasq6_active SEC(".maps") = {
    .values = {&nonmasq6},
};

#endif
