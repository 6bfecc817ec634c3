// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test-only: drops every Nth UDP datagram to one port (tc ingress), so a test can check that
 * udp_stream counts loss exactly. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 every = 10;
const volatile __u16 port = 0; /* host order */
__u64 seen = 0, dropped = 0;

SEC("tc")
int drop_nth(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(0x0800) || ip->ihl != 5 ||
	    ip->protocol != 17 || udp->dest != bpf_htons(port))
		return 0;
	if (++seen % every == 0) {
		dropped++;
		return 2; /* TC_ACT_SHOT */
	}
	return 0;
}
