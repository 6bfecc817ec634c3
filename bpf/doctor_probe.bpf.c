// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs that `hrbench doctor` loads and attaches to prove, on this kernel, that each
 * feature the datapath needs really works: a verifier that accepts a helper is the only
 * honest answer to "does this kernel have it".
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "hrb_abi.h"

#define TC_ACT_OK 0

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 target_ifindex = 1;

struct hrb_probe_stats stats = {};

/* Counts what it sees; attached with tcx and with clsact to prove both paths. */
SEC("tc")
int probe_count(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&stats.packets, 1);
	__sync_fetch_and_add(&stats.bytes, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int probe_redirect_peer(struct __sk_buff *skb) { return bpf_redirect_peer(target_ifindex, 0); }

SEC("tc")
int probe_redirect_neigh(struct __sk_buff *skb)
{
	return bpf_redirect_neigh(target_ifindex, NULL, 0, 0);
}

SEC("tc")
int probe_fib_lookup(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};

	fib.family = 2; /* AF_INET */
	fib.ifindex = skb->ingress_ifindex;
	return bpf_fib_lookup(skb, &fib, sizeof(fib), 0) < 0 ? 2 : TC_ACT_OK;
}

/* bpf_l4_csum_replace with BPF_F_IPV6 (kernel >= 6.16) on a test frame: 0 when the kernel
 * takes the flag, 1 when it refuses it (-EINVAL, as it does every flag it does not know). */
SEC("tc")
int probe_csum_ipv6(struct __sk_buff *skb)
{
	return bpf_l4_csum_replace(skb, 14 + 40 + 16, 0, 0, BPF_F_PSEUDO_HDR | BPF_F_IPV6) ? 1 : 0;
}

/* Run with BPF_F_TEST_XDP_LIVE_FRAMES: each frame is counted and dropped. */
SEC("xdp")
int probe_xdp_live(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&stats.packets, 1);
	return XDP_DROP;
}

/* Loaded and attached to a scratch cgroup: allows everything. */
SEC("cgroup/setsockopt")
int probe_setsockopt(struct bpf_sockopt *ctx) { return 1; }

/* BPF LSM, as the AKS iptables blocker uses it (socket_setsockopt). Loading it is the probe. */
SEC("lsm/socket_setsockopt")
int BPF_PROG(probe_lsm, struct socket *sock, int level, int optname) { return 0; }
