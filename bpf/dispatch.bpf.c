// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * dispatch: what an alternated run (hrbench run --alternate) attaches in place of from_pod,
 * from_uplink or to_pod. It tail-calls the program in its one slot, which the harness points at
 * one variant's program after another (an A/B of two builds' objects, or of a calibration
 * delay, measured in the same seconds: datapath::VariantSelector). One instance per node and
 * hook, each with its own slot. The key is a constant, so the JIT makes the tail call a direct
 * jump, patched when the slot changes. An empty slot passes the packet to the stack.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} slot SEC(".maps");

SEC("tc")
int dispatch(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &slot, 0);
	return TC_ACT_OK;
}
