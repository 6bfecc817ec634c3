// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test-only: reads packet data without a bounds check, which the verifier must refuse. The
 * test asserts that the error a user sees carries the verifier's own explanation. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int unchecked_read(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	return data[20];
}
