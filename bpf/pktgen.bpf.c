// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pps generator's program: run with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES, every
 * frame it is handed is transmitted out of `target_ifindex` (a fabric port, so the frames arrive
 * on a node's uplink and the node must forward them to a pod). Debian's xdp-trafficgen cannot
 * load on this kernel (it needs a tracepoint that is gone).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "hrb_abi.h" /* hrb_abi_version: every object carries it */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define HDR_LEN 42 /* Ethernet + IPv4 + UDP */

const volatile __u32 target_ifindex = 0;
/* The headers every frame must carry. Live frames recycle their pages, and the node that
 * forwards them rewrites headers in place (TTL, MACs): each frame is restored before it goes. */
const volatile __u8 header[HDR_LEN] = {};
__u64 frames = 0;

SEC("xdp")
int pktgen(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;

	if (data + HDR_LEN > end)
		return XDP_DROP;
	for (int i = 0; i < HDR_LEN; i++)
		data[i] = header[i];
	__sync_fetch_and_add(&frames, 1);
	return bpf_redirect(target_ifindex, 0);
}
