// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The iptables blocker's kernel-enforced half: a cgroup/setsockopt program on the cgroup v2 root
 * that refuses x_tables rule writes (iptables-legacy, ip6tables-legacy, arptables, ebtables)
 * with EPERM inside the guarded node netns — keyed on the netns cookie — and lets everything
 * else through. (On this kernel BPF LSM programs cannot be loaded; nftables writes travel over
 * netlink, which cgroup hooks do not see: the watcher in harness/guard handles those.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lib/guard.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PAGE_SIZE 4096

__u64 refused = 0;
__u64 allowed_owner = 0;

SEC("cgroup/setsockopt")
int guard_setsockopt(struct bpf_sockopt *ctx)
{
	/* A rule table is larger than the page the program may see: leave the buffer alone. */
	if (ctx->optlen > PAGE_SIZE)
		ctx->optlen = 0;
	if (!xtables_write(ctx->level, ctx->optname))
		return 1;
	__u64 cookie = bpf_get_netns_cookie(ctx);

	if (!bpf_map_lookup_elem(&guarded_netns, &cookie))
		return 1;
	if (owner_writer()) {
		__sync_fetch_and_add(&allowed_owner, 1);
		return 1;
	}
	__sync_fetch_and_add(&refused, 1);
	return 0; /* EPERM */
}
