// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The iptables blocker as the AKS blocker builds it, with BPF LSM: socket_setsockopt refuses
 * x_tables writes and netlink_send refuses nftables transactions, in the guarded node netns only.
 * Used where the kernel lets BPF LSM programs load; elsewhere (this project's VM: EPERM) the
 * blocker falls back to guard_sockopt.bpf.c and the nftables watcher.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "lib/guard.h"

char LICENSE[] SEC("license") = "GPL";

#define NETLINK_NETFILTER 12
#define NFNL_MSG_BATCH_BEGIN 16 /* NLMSG_MIN_TYPE */
#define NFNL_SUBSYS_NFTABLES 10
#define EPERM 1

__u64 refused_setsockopt = 0;
__u64 refused_netlink = 0;
__u64 allowed_owner = 0;

static __always_inline bool guarded(struct sock *sk)
{
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	__u64 cookie = BPF_CORE_READ(net, net_cookie);

	return bpf_map_lookup_elem(&guarded_netns, &cookie) != NULL;
}

SEC("lsm/socket_setsockopt")
int BPF_PROG(guard_socket_setsockopt, struct socket *sock, int level, int optname, int ret)
{
	if (ret)
		return ret;
	if (!xtables_write(level, optname) || !guarded(BPF_CORE_READ(sock, sk)))
		return 0;
	if (owner_writer()) {
		__sync_fetch_and_add(&allowed_owner, 1);
		return 0;
	}
	__sync_fetch_and_add(&refused_setsockopt, 1);
	return -EPERM;
}

/* nftables writes are transactions: a batch that begins with NFNL_MSG_BATCH_BEGIN whose res_id
 * names the nftables subsystem. Refusing the batch refuses the whole transaction; reads
 * (dumps) are not batched and pass. */
SEC("lsm/netlink_send")
int BPF_PROG(guard_netlink_send, struct sock *sk, struct sk_buff *skb, int ret)
{
	struct nlmsghdr nlh;
	struct nfgenmsg nfg;
	unsigned char *data;

	if (ret)
		return ret;
	if (BPF_CORE_READ(sk, sk_protocol) != NETLINK_NETFILTER || !guarded(sk))
		return 0;
	data = BPF_CORE_READ(skb, data);
	if (bpf_probe_read_kernel(&nlh, sizeof(nlh), data) ||
	    bpf_probe_read_kernel(&nfg, sizeof(nfg), data + sizeof(nlh)))
		return 0;
	if (nlh.nlmsg_type != NFNL_MSG_BATCH_BEGIN || bpf_ntohs(nfg.res_id) != NFNL_SUBSYS_NFTABLES)
		return 0;
	if (owner_writer()) {
		__sync_fetch_and_add(&allowed_owner, 1);
		return 0;
	}
	__sync_fetch_and_add(&refused_netlink, 1);
	return -EPERM;
}
