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

/* Why a datapath program did what it did: index of the per-CPU `counters` array of each
 * program. Append only; names for C++ are in hrb_reason_name(). */
enum hrb_reason {
	HRB_R_REDIRECT_PEER = 0,      /* delivered into a local pod with bpf_redirect_peer */
	HRB_R_REDIRECT_FIB,	      /* FIB hit with a neighbour: bpf_redirect with its MACs */
	HRB_R_REDIRECT_NEIGH,	      /* FIB hit, no neighbour yet: bpf_redirect_neigh */
	HRB_R_TO_STACK_NON_IPV4,      /* ARP, IPv6, …: the kernel's path */
	HRB_R_TO_STACK_FRAGMENT,      /* IPv4 fragment */
	HRB_R_TO_STACK_IP_OPTIONS,    /* IPv4 header with options */
	HRB_R_TO_STACK_SERVICE,	      /* destination in the service CIDR: kube-proxy's DNAT */
	HRB_R_TO_STACK_LOCAL,	      /* FIB: not forwarded (a node-local address) */
	HRB_R_TO_STACK_FIB_OTHER,     /* FIB: blackhole, unreachable, no route, … */
	HRB_R_TO_STACK_FRAG_NEEDED,   /* FIB: packet larger than the egress MTU */
	HRB_R_TO_STACK_NOT_OURS,      /* uplink: neither a local pod nor a masqueraded flow */
	HRB_R_MASQ_NEW,		      /* new masquerade entry */
	HRB_R_MASQ_HIT,		      /* masqueraded with an existing entry */
	HRB_R_MASQ_PORT_CHANGED,      /* new entry, the pod's port was taken: another one chosen */
	HRB_R_REVNAT_HIT,	      /* uplink: reply of a masqueraded flow translated back */
	HRB_R_DROP_TTL,		      /* TTL <= 1 */
	HRB_R_DROP_NO_PORT,	      /* masquerade: no free port after bounded retries */
	HRB_R_DROP_MALFORMED,	      /* truncated headers */
	HRB_R_NAT_RECLAIMED,	      /* an expired entry's port was reused */
	HRB_R_DELAY_LOOPS,	      /* calibration: busy-loop iterations run (issue 10) */
	HRB_R_TO_STACK_SERVICE_REPLY, /* reply to a flow kube-proxy DNATed: the stack reverses it */
	HRB_R__MAX
};

/* Value of the `endpoints` map, keyed by the pod's IPv4 address (network order). */
struct hrb_endpoint {
	__u32 ifindex;	  /* node-side veth (lxc…) in the node netns */
	__u8 pod_mac[6];  /* the pod's eth0 */
	__u8 node_mac[6]; /* the lxc… device */
};

/* A flow as the NAT tables key it; addresses and ports in network order.
 * nat_fwd: {pod ip, remote ip, pod port, remote port, proto} -> {node ip, nat port}
 * nat_rev: {remote ip, node ip, remote port, nat port, proto} -> {pod ip, pod port}
 * ICMP echo uses the echo identifier as the pod/nat port and 0 as the remote port. */
struct hrb_nat_key {
	__u32 src_ip;
	__u32 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
	__u8 pad[3];
};

#define HRB_NAT_F_CLOSING 1 /* TCP FIN or RST seen: expires quickly */

struct hrb_nat_entry {
	__u32 ip;
	__u16 port;
	__u16 flags;
	__u64 last_seen_ns;
};

/* Key of `stack_flows`: a local client whose connection to a service CIDR address went through
 * the node's stack (kube-proxy's DNAT), so its replies must go through the stack too. */
struct hrb_flow_key {
	__u32 ip;   /* the client pod, network order */
	__u16 port; /* its port, network order */
	__u8 proto;
	__u8 pad;
};

/* Key of the non-masquerade LPM trie (ip-masq-agent's nonMasqueradeCIDRs). */
struct hrb_lpm_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

/* Set by the datapath programs when `record_redirects` is on (tests only: the branch is
 * removed by the verifier otherwise), since a test run cannot perform a redirect. */
struct hrb_redirect_record {
	__u32 helper; /* 1 redirect_peer, 2 redirect (FIB), 3 redirect_neigh */
	__u32 ifindex;
	__u64 count;
};

#ifdef __cplusplus
#define HRB_ABI_ASSERT(c, m) static_assert(c, m)
#else
#define HRB_ABI_ASSERT(c, m) _Static_assert(c, m)
#endif
HRB_ABI_ASSERT(sizeof(struct hrb_probe_stats) == 16, "hrb_probe_stats ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_endpoint) == 16, "hrb_endpoint ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_nat_key) == 16, "hrb_nat_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_nat_entry) == 16, "hrb_nat_entry ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lpm_key) == 8, "hrb_lpm_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_flow_key) == 8, "hrb_flow_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_redirect_record) == 16, "hrb_redirect_record ABI");

#endif /* HRB_ABI_H */
