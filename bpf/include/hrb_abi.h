/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one ABI between hostroute-bench's BPF programs and its C++ harness.
 * Included by the bpf/ programs (after vmlinux.h) and by C++ (after <linux/types.h>).
 * Fixed-width types and explicit padding only; every struct's size is pinned
 * by a static assertion below, and a test checks it against the object's BTF.
 */
#ifndef HRB_ABI_H
#define HRB_ABI_H

#ifndef __BPF__
#include <linux/types.h>
#endif

/* Counters of the doctor probe program (bpf/doctor_probe.bpf.c). */
struct hrb_probe_stats {
	__u64 packets;
	__u64 bytes;
};

#ifdef __cplusplus
static_assert(sizeof(struct hrb_probe_stats) == 16, "hrb_probe_stats ABI");
#else
_Static_assert(sizeof(struct hrb_probe_stats) == 16, "hrb_probe_stats ABI");
#endif

#endif /* HRB_ABI_H */
