/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by both variants of the iptables blocker: which writes count as x_tables rule writes,
 * the set of guarded node netns (by cookie), and the owner cgroup whose writers are let through
 * (guard::OwnerWrite: the IP Masquerade Agent reprogramming its chain). */
#ifndef HRB_GUARD_H
#define HRB_GUARD_H

#include "hrb_abi.h" /* hrb_abi_version: every object carries it */

#define SOL_IP 0
#define SOL_IPV6 41
#define IPT_SO_SET_REPLACE 64 /* also IP6T_SO_SET_REPLACE at SOL_IPV6 */
#define ARPT_SO_SET_REPLACE 96
#define EBT_SO_SET_ENTRIES 128

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64); /* netns cookie */
	__type(value, __u8);
} guarded_netns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64); /* cgroup id of an allowed writer */
	__type(value, __u8);
} owner_cgroups SEC(".maps");

static __always_inline bool owner_writer(void)
{
	__u64 cg = bpf_get_current_cgroup_id();

	return bpf_map_lookup_elem(&owner_cgroups, &cg) != NULL;
}

static __always_inline bool xtables_write(int level, int optname)
{
	if (level == SOL_IP)
		return optname == IPT_SO_SET_REPLACE || optname == ARPT_SO_SET_REPLACE ||
		       optname == EBT_SO_SET_ENTRIES;
	return level == SOL_IPV6 && optname == IPT_SO_SET_REPLACE;
}

#endif
