/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one ABI between hostroute-bench's BPF programs and its C++ harness.
 * Included by the bpf/ programs (after vmlinux.h) and by C++ (after <linux/types.h>).
 * Fixed-width types and explicit padding only; every struct's size is pinned
 * by a static assertion below, and tests/bpf/abi_btf_test.cpp checks it against
 * the BTF of the compiled objects.
 */
#ifndef HRB_ABI_H
#define HRB_ABI_H

#ifndef __BPF__
#include <linux/types.h>
#endif

/* The ABI version. Every object built from bpf/ carries it as the global `hrb_abi_version` (in
 * .rodata, defined below for the BPF side), and the loader refuses an object of another build
 * (`hrbench run --modes ebpf,ebpf@DIR`, docs/gate.md) whose version is not this one, naming the
 * file and both versions.
 * Bump rule: add 1 in the same commit as any change after which this loader cannot drive an
 * object of the previous commit exactly as before (or the reverse):
 *   - a map's name, type, key or value (any struct below), or its max_entries where C++ sizes it;
 *   - a program's name or section;
 *   - a load-time constant (`const volatile` in .rodata) or a .bss variable added, removed,
 *     renamed, retyped or reordered — C++ writes them through this build's skeleton layout;
 *   - the meaning of an existing HRB_REASONS index, an HRB_CT_* kind or flag.
 * Not a bump: appending to HRB_REASONS, changing what a program does with the same maps and
 * constants (that is what an A/B of two builds measures). The loader also compares the .rodata
 * and .bss layout of the two objects and refuses a difference under the same version (a missed
 * bump), so a forgotten bump cannot corrupt a run silently. */
#define HRB_ABI_VERSION 4
#ifdef __BPF__
const volatile __u32 hrb_abi_version = HRB_ABI_VERSION;
#endif

/* Counters of the doctor probe program (bpf/doctor_probe.bpf.c). */
struct hrb_probe_stats {
	__u64 packets;
	__u64 bytes;
};

/* Why a datapath program did what it did: index of the per-CPU `counters` array of each
 * program. One list X(ENUM_SUFFIX, name, description), expanded into the enum here and into the
 * names in C++ (datapath::reason_name). Append only: the index is the ABI. */
/* clang-format off */
#define HRB_REASONS(X) \
	X(REDIRECT_PEER, redirect_peer, "delivered into a local pod with bpf_redirect_peer") \
	X(REDIRECT_FIB, redirect_fib, "FIB hit with a neighbour: bpf_redirect with its MACs") \
	X(REDIRECT_NEIGH, redirect_neigh, "FIB hit, no neighbour yet: bpf_redirect_neigh") \
	X(TO_STACK_NON_IPV4, to_stack_non_ipv4, "ARP, IPv6 without ipv6_enabled, ...: the kernel's path") \
	X(TO_STACK_FRAGMENT, to_stack_fragment, "IPv4 fragment") \
	X(TO_STACK_IP_OPTIONS, to_stack_ip_options, "unused since IP options are parsed") \
	X(TO_STACK_SERVICE, to_stack_service, "destination in the service CIDR: kube-proxy's DNAT") \
	X(TO_STACK_LOCAL, to_stack_local, "FIB: not forwarded (a node-local address)") \
	X(TO_STACK_FIB_OTHER, to_stack_fib_other, "FIB: blackhole, unreachable, no route, ...") \
	X(TO_STACK_FRAG_NEEDED, to_stack_frag_needed, "over the egress MTU: the stack fragments or sends ICMP") \
	X(TO_STACK_NOT_OURS, to_stack_not_ours, "uplink: neither a local pod nor a masqueraded flow") \
	X(MASQ_NEW, masq_new, "new masquerade mapping") \
	X(MASQ_HIT, masq_hit, "masqueraded with an existing mapping") \
	X(MASQ_PORT_CHANGED, masq_port_changed, "new mapping, the pod's port was taken") \
	X(REVNAT_HIT, revnat_hit, "uplink: reply of a masqueraded flow translated back") \
	X(DROP_TTL, drop_ttl, "unused since TTL <= 1 goes to the stack") \
	X(DROP_NO_PORT, drop_no_port, "masquerade: no free port after bounded retries") \
	X(DROP_MALFORMED, drop_malformed, "truncated headers") \
	X(NAT_RECLAIMED, nat_reclaimed, "an expired mapping's port was reused") \
	X(DELAY_LOOPS, delay_loops, "calibration: busy-loop iterations run") \
	X(TO_STACK_SERVICE_REPLY, to_stack_service_reply, "reply to a flow kube-proxy DNATed") \
	X(CT_CREATED, ct_created, "connection tracking: a new flow") \
	X(CT_HIT, ct_hit, "connection tracking: a packet of a tracked flow") \
	X(CT_CLOSED, ct_closed, "TCP RST, or FIN both ways: closing lifetime") \
	X(CT_EVICTED, ct_evicted, "half of a masquerade state was evicted and re-created") \
	X(DROP_CT_FULL, drop_ct_full, "a new flow could not be tracked") \
	X(TO_STACK_TTL, to_stack_ttl, "TTL <= 1: the stack sends ICMP time exceeded") \
	X(TO_STACK_NO_PORTS, to_stack_no_ports, "to be masqueraded but port-less: iptables MASQUERADE") \
	X(ICMP_ERROR_REVNAT, icmp_error_revnat, "ICMP error about a masqueraded flow, back to the pod") \
	X(ICMP_ERROR_NAT, icmp_error_nat, "a pod's ICMP error about a masqueraded flow, translated") \
	X(DROP_ICMP_ERROR_NO_STATE, drop_icmp_error_no_state, "a pod's ICMP error to the outside about no flow") \
	X(NAT_REMAPPED, nat_remapped, "the flow's port went to another flow: a new one chosen") \
	X(MASQ_SKIP_REPLY, masq_skip_reply, "answer in a flow opened from outside: not masqueraded") \
	X(REVNAT_MISS, revnat_miss, "uplink: to a masquerade port of the node IP, but no state") \
	X(LB_NEW, lb_new, "service: a new connection, a backend chosen") \
	X(LB_HIT, lb_hit, "service: a packet of a known connection, to its backend") \
	X(LB_REVERSE, lb_reverse, "service: a backend's reply, source back to the service address") \
	X(DROP_NO_BACKEND, drop_no_backend, "service: no backend") \
	X(TO_STACK_NO_SERVICE, to_stack_no_service, "service CIDR, but no such service in BPF: the stack") \
	X(DROP_SOURCE, drop_source, "a pod sent with a source address that is not its own") \
	X(STACK_ROUTES, stack_routes, "bpf-lb: tracked (and load-balanced); the stack routes") \
	X(TO_POD, to_pod, "bpf-lb: delivered into the pod by the stack, tracked") \
	X(NODEPORT_NEW, nodeport_new, "NodePort: a new connection from outside, a backend chosen") \
	X(NODEPORT_HIT, nodeport_hit, "NodePort: a packet of a known connection, to its backend") \
	X(NODEPORT_LOCAL, nodeport_local, "NodePort: DNATed to a backend on this node") \
	X(NODEPORT_REMOTE, nodeport_remote, "NodePort: DNATed and SNATed to the node IP, out to the backend's node") \
	X(NODEPORT_REPLY, nodeport_reply, "NodePort: a remote backend's reply, rev-SNATed and rev-DNATed") \
	X(NODEPORT_REPLY_MISS, nodeport_reply_miss, "NodePort: a reply to a NodePort SNAT port whose connection is gone") \
	X(NODEPORT_TO_STACK, nodeport_to_stack, "NodePort: untranslated to the stack (TTL <= 1, not forwardable, TCP without SYN or state)") \
	X(ICMP_ERROR_LB, icmp_error_lb, "ICMP error about a load-balanced connection (ClusterIP, NodePort), translated") \
	X(REDIRECT_PEER6, redirect_peer6, "IPv6: delivered into a local pod with bpf_redirect_peer") \
	X(REDIRECT_FIB6, redirect_fib6, "IPv6: FIB hit with a neighbour: bpf_redirect with its MACs") \
	X(REDIRECT_NEIGH6, redirect_neigh6, "IPv6: FIB hit, no neighbour yet: bpf_redirect_neigh") \
	X(TO_STACK_ICMP6_NDISC, to_stack_icmp6_ndisc, "IPv6: neighbour discovery, router messages, MLD: the stack") \
	X(TO_STACK_IPV6_SCOPE, to_stack_ipv6_scope, "IPv6: link-local, multicast or unspecified address: the stack") \
	X(TO_STACK_IPV6_EXTHDR, to_stack_ipv6_exthdr, "IPv6: hop-by-hop, routing with segments left or too many extension headers: the stack") \
	X(TO_STACK_IPV6_FRAGMENT, to_stack_ipv6_fragment, "IPv6: a fragment header: the stack") \
	X(TO_STACK_IPV4_OFF, to_stack_ipv4_off, "IPv4 on a single-stack IPv6 node (ipv4_enabled off): the kernel's path")
#define HRB_REASON_ENUM(id, name, doc) HRB_R_##id,
enum hrb_reason { HRB_REASONS(HRB_REASON_ENUM) HRB_R__MAX };
#undef HRB_REASON_ENUM
/* clang-format on */

/* Value of the `endpoints` map, keyed by the pod's IPv4 address (network order). */
struct hrb_endpoint {
	__u32 ifindex;	  /* node-side veth (lxc…) in the node netns */
	__u8 pod_mac[6];  /* the pod's eth0 */
	__u8 node_mac[6]; /* the lxc… device */
};

/* Connection tracking (bpf/lib/ct.h): one LRU map per node, shared by from_pod and from_uplink.
 * Addresses and ports in network order; ICMP echo uses the echo identifier as the source port
 * and 0 as the destination port.
 *   HRB_CT_FLOW     a flow, keyed by its tuple in the direction of its first packet (the
 *                   original direction); a reply looks it up with its own tuple reversed.
 *   HRB_CT_NAT_REV  the reply side of a masqueraded flow: {remote ip, node ip, remote port,
 *                   nat port} -> the pod's ip and port. It is the port claim (inserted with
 *                   BPF_NOEXIST) and the reverse NAT lookup; the flow entry and it are one state
 *                   (each direction's packets check both, see ct.h).
 *   HRB_CT_SERVICE  a connection to a service, keyed before DNAT: nat_ip/nat_port hold the
 *                   backend chosen for it (lib/lb.h); its flow (after DNAT) has HRB_CT_F_SVC
 *                   and holds the service address for the replies. A NodePort connection's
 *                   is keyed {client, node ip, client port, NodePort} (lib/nodeport.h).
 *   HRB_CT_NODEPORT a NodePort connection to a backend on another node, DNATed and SNATed to
 *                   the node IP, keyed after DNAT and before SNAT {client -> backend}:
 *                   nat_port holds the SNAT port, node_port the NodePort; its HRB_CT_NAT_REV
 *                   claim {backend, node ip, backend port, SNAT port} -> {client, client port}
 *                   has owner HRB_CT_NODEPORT. */
#define HRB_CT_FLOW 0
#define HRB_CT_NAT_REV 1
#define HRB_CT_SERVICE 2 /* {client, service ip, client port, service port} -> the backend */
#define HRB_CT_NODEPORT 3

struct hrb_ct_key {
	__u32 src_ip;
	__u32 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
	__u8 kind; /* HRB_CT_FLOW | HRB_CT_NAT_REV | HRB_CT_SERVICE | HRB_CT_NODEPORT */
	__u8 pad[2];
};

#define HRB_CT_F_SEEN_REPLY 0x01  /* a packet in the reply direction was seen */
#define HRB_CT_F_ESTABLISHED 0x02 /* TCP: a packet without SYN was seen */
#define HRB_CT_F_FIN_ORIG 0x04	  /* TCP: FIN from the original direction */
#define HRB_CT_F_FIN_REPLY 0x08	  /* TCP: FIN from the reply direction */
#define HRB_CT_F_CLOSED 0x10	  /* TCP: RST, or FIN both ways: closing lifetime */
/* The first packet came in on the uplink: replies keep the pod address (never masqueraded). */
#define HRB_CT_F_FROM_OUTSIDE 0x20
#define HRB_CT_F_MASQ 0x40 /* masqueraded: nat_ip/nat_port hold the translation */
#define HRB_CT_F_SVC 0x80  /* to a service backend: nat_ip/nat_port hold the service */

struct hrb_ct_entry {
	__u64 expires_ns; /* CLOCK_MONOTONIC ns; compared as a signed difference */
	union {
		__u32 nat_ip; /* FLOW: the node IP if masqueraded; NAT_REV: the pod's (NodePort
			       * client's) IP; SERVICE: the backend */
		struct {      /* NODEPORT: both addresses are the node IP, so the NodePort */
			__u16 node_port; /* the client connected to (network order) */
			__u16 node_port_pad;
		};
	};
	__u16 nat_port; /* FLOW: the source port after masquerade; NAT_REV: the pod's port;
			 * NODEPORT: the SNAT port */
	__u8 flags;	/* HRB_CT_F_* (FLOW, NODEPORT), HRB_CT_F_CLOSED mirrored in NAT_REV */
	__u8 owner;	/* NAT_REV: the kind that owns the claim, HRB_CT_FLOW (a masqueraded pod
			 * flow) or HRB_CT_NODEPORT; 0 elsewhere */
};

/* The service load balancer's map (lib/lb.h): per service address, port and protocol, slot 0
 * is the frontend (`count` backends, the service's id) and slots 1..count its backends. */
struct hrb_lb_key {
	__u32 addr; /* network order */
	__u16 port; /* network order */
	__u8 proto;
	__u8 pad;
	__u32 slot;
};

struct hrb_lb_value {
	__u32 ip;	  /* backend (slot >= 1), network order */
	__u16 port;	  /* backend's port, network order */
	__u16 count;	  /* frontend (slot 0): number of backends */
	__u32 service_id; /* frontend: 1-based service index */
};

/* Key of `stack_flows`: a local client whose connection to a service CIDR address went through
 * the node's stack (kube-proxy's DNAT), so its replies must go through the stack too. */
struct hrb_flow_key {
	__u32 ip;   /* the client pod, network order */
	__u16 port; /* its port, network order */
	__u8 proto;
	__u8 pad;
};

/* The non-masquerade LPM tries (IPv4 and IPv6): the size of the loader's tries behind
 * nonmasq_active and nonmasq6_active, and of every trie the IP Masquerade Agent swaps in. */
#define HRB_MAX_NONMASQ 16384

/* Key of the non-masquerade LPM trie (ip-masq-agent's nonMasqueradeCIDRs). */
struct hrb_lpm_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

/* IPv6 (the `*6` maps; used only when the load-time constant ipv6_enabled is set, else every IPv6
 * packet goes to the stack). An address in network order, as 4 words so that BPF compares it in
 * 4 loads. */
struct hrb_ip6 {
	__u32 w[4];
};

/* Key of the `endpoints6` map (value: struct hrb_endpoint): a local pod's IPv6 address. */

/* IPv6 connection tracking (`ct6`, bpf/lib/ct6.h): the same kinds, flags and lifetimes as
 * hrb_ct_key/hrb_ct_entry, with IPv6 addresses (HRB_CT_NODEPORT: a NodePort connection to the
 * node's IPv6 address, bpf/lib/nodeport6.h). ICMPv6 echo: the identifier as the source port. */
struct hrb_ct6_key {
	struct hrb_ip6 src_ip;
	struct hrb_ip6 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
	__u8 kind;
	__u8 pad[2];
};

struct hrb_ct6_entry {
	__u64 expires_ns;
	/* FLOW: the node's IPv6 address if masqueraded (NAT66), the service address if
	 * HRB_CT_F_SVC; NAT_REV: the pod's (NodePort client's); SERVICE: the backend; NODEPORT:
	 * unused (both addresses are the node's) */
	struct hrb_ip6 nat_ip;
	__u16 nat_port; /* as hrb_ct_entry's; NODEPORT: the SNAT port */
	__u8 flags;
	__u8 owner;
	__u16 node_port; /* NODEPORT: the NodePort the client connected to (network order) */
	__u16 pad;
};

/* The IPv6 services (`lb6`, bpf/lib/lb6.h): as hrb_lb_key/hrb_lb_value. */
struct hrb_lb6_key {
	struct hrb_ip6 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
	__u32 slot;
};

struct hrb_lb6_value {
	struct hrb_ip6 ip;
	__u16 port;
	__u16 count;
	__u32 service_id;
};

/* Key of `stack_flows6` (as hrb_flow_key). */
struct hrb_flow6_key {
	struct hrb_ip6 ip;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

/* Key of the IPv6 non-masquerade LPM trie. */
struct hrb_lpm6_key {
	__u32 prefixlen;
	struct hrb_ip6 addr;
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
HRB_ABI_ASSERT(sizeof(struct hrb_ct_key) == 16, "hrb_ct_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_ct_entry) == 16, "hrb_ct_entry ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lpm_key) == 8, "hrb_lpm_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lb_key) == 12, "hrb_lb_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lb_value) == 12, "hrb_lb_value ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_flow_key) == 8, "hrb_flow_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_redirect_record) == 16, "hrb_redirect_record ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_ip6) == 16, "hrb_ip6 ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_ct6_key) == 40, "hrb_ct6_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_ct6_entry) == 32, "hrb_ct6_entry ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lb6_key) == 24, "hrb_lb6_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lb6_value) == 24, "hrb_lb6_value ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_flow6_key) == 20, "hrb_flow6_key ABI");
HRB_ABI_ASSERT(sizeof(struct hrb_lpm6_key) == 20, "hrb_lpm6_key ABI");

#endif /* HRB_ABI_H */
