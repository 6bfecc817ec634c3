#pragma once
// eBPF host routing: from_pod on every lxc ingress and from_uplink on the node's eth0 ingress,
// attached with tcx links (clsact where the kernel has no tcx), with the maps filled from the
// cluster. The legacy rules stay installed underneath, bypassed — as on an AKS node, where the
// ip-masq-agent and kube-proxy chains remain while eBPF host routing is on — so their counters
// prove the bypass and a switch back to legacy needs no reconfiguration.
//
// Links and maps are pinned under /sys/fs/bpf/hrbench/<prefix>/<node>/ (core/pins.hpp) so they
// outlive the hrbench process. The directory and each attachment are in the cluster's journal
// before they are made; removal (and `down`/`clean`) undo what the journal holds.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/ipv6.hpp"
#include "datapath/legacy.hpp"
#include "datapath/mode.hpp"
#include "hrb_abi.h"

struct from_pod;  // generated skeletons (from_pod.skel.h, from_uplink.skel.h)
struct from_uplink;

namespace hrb::datapath {

const char* reason_name(int reason);  // HRB_R_* -> "redirect_peer", …

using ReasonCounters = std::array<uint64_t, HRB_R__MAX>;
// node name -> program ("from_pod" | "from_uplink") -> counters summed over CPUs; `variant`: of
// an alternated mode's variant (ModeOptions::alternates; 0 is the first, the usual mode's).
std::map<std::string, std::map<std::string, ReasonCounters>> read_counters(
    const topology::Layout& l, size_t variant = 0);

// Replaces every node's non-masquerade trie with one built from `masq` (MasqConfig::return_cidrs;
// empty on a single-stack IPv6 cluster, as the loader leaves it), and on a cluster with IPv6 its
// IPv6 trie too (ipv6_nonmasq), in one map update per node and family (each packet sees the old
// list or the new one, never a mix). Every trie is made and filled before the first swap: a
// failure before then changes nothing. ebpf mode must be on.
void swap_nonmasq(const topology::Layout& l, const MasqConfig& masq);
// What swap_nonmasq is made of, for tests on NodePrograms' own maps: a new non-masquerade trie
// holding `cidrs` (HRB_MAX_NONMASQ entries big, as the loader's), and the update that makes
// `trie` the one the programs read through `outer` (nonmasq_active, nonmasq6_active; throws
// when the kernel refuses it, e.g. a trie of the other family).
Fd new_nonmasq_trie(const std::vector<Cidr>& cidrs);
Fd new_nonmasq6_trie(const std::vector<Cidr6>& cidrs);
void set_active_trie(int outer, int trie, const std::string& what);

// The same, as JSON {node: {program: {reason: count}}}, non-zero counts only.
nlohmann::json counters_json(const topology::Layout& l, size_t variant = 0);

// An alternated mode (ModeOptions::alternates) on: every node's dispatchers point at the
// programs of one variant. Opens the pins once; select() is one map update per node and hook
// (no RCU grace period, unlike replacing a tcx link), so a run can switch every few ms.
class VariantSelector {
 public:
  VariantSelector(const topology::Layout& l, size_t variants);  // throws unless alternated
  void select(size_t v);                                        // throws on a failed update
  size_t variants() const { return variants_; }

 private:
  size_t variants_;
  std::vector<Fd> slots_;               // prog arrays, one per node and hook
  std::vector<std::vector<Fd>> progs_;  // per slot: each variant's program
};

// Masquerade ports: Linux's default ephemeral range, so that a pod's own source port is usually
// kept. ebpf mode moves the node netns' own ephemeral range (ip_local_port_range) to
// kNodePortRange, disjoint from it, so the node's sockets and masqueraded flows never collide.
inline constexpr uint16_t kNatPortMin = 32768, kNatPortMax = 60999;
inline constexpr const char* kNodePortRange = "61000 65535";

// The IPv6 facts of one node that the IPv6 datapath needs (bpf/lib/ipv6.h and the *6 headers;
// docs/datapath.md, "IPv6"). Plain data, so that whatever knows the cluster's IPv6 addressing
// fills it (ipv6_facts below); without it the IPv6 maps stay empty (and tiny) and every IPv6
// packet goes to the stack.
struct Ipv6Facts {
  Ipv6 node_ip;    // the node's IPv6 address on the underlay: NAT66's source
  Cidr6 cluster;   // every pod's address (the cluster's /56 or /48): never masqueraded
  Cidr6 services;  // the IPv6 service range (ClusterIPs); len 0: none
  struct Pod {
    std::string name;  // a pod of the node (topology::PodLayout::name): its veth and MACs
    Ipv6 ip;
  };
  std::vector<Pod> pods;  // the node's pods with an IPv6 address (in its /64)
  struct Backend {
    Ipv6 ip;
    uint16_t port = 0;  // host order
  };
  struct Service {
    Ipv6 ip;            // a ClusterIP in `services`
    uint16_t port = 0;  // host order
    uint8_t proto = 6;  // 6 TCP, 17 UDP
    std::vector<Backend> backends;
    // The service's NodePort (host order; 0: none): a second frontend {node_ip, node_port,
    // proto} with the same backends (bpf/lib/nodeport6.h), as the IPv4 loader adds one on the
    // node's IPv4 address.
    uint16_t node_port = 0;
  };
  std::vector<Service> service_list;
  std::vector<Cidr6> nonmasq;  // masquerade exclusions besides `cluster` and `services`: the
                               // first IPv6 trie (ipv6_nonmasq for a cluster; tests choose)
};
// Throws Error(kBadInput) naming the field when the facts cannot drive the maps (a prefix length
// outside 0..128, no cluster prefix, a node address that is :: or a pod's, a pod that is not on the
// node, a ClusterIP outside the service range, a protocol other than TCP or UDP, a NodePort
// outside kNodePortFirst..kNodePortLast or given twice for one protocol; a service without
// backends is allowed).
void check_ipv6_facts(const Ipv6Facts& f, const topology::NodeLayout& n);
// The node's IPv6 facts from a dual-stack cluster's layout (nullopt for an IPv4-only one): its
// IPv6 underlay address, the cluster's and the service range's prefixes, its pods' IPv6
// addresses, `services` services' IPv6 ClusterIPs (service_ip6) with `eps` endpoints each (the
// IPv4 services' endpoints, ports and protocols) and their NodePorts (node_port), and
// ip-masq-agent's IPv6 RETURN list (ipv6_nonmasq).
std::optional<Ipv6Facts> ipv6_facts(const topology::Layout& l, const topology::NodeLayout& n,
                                    const MasqConfig& masq, int services, int eps);

// The IPv6 masquerade exclusions of a cluster's BPF datapath: ip6tables' IP-MASQ-AGENT RETURN list
// (MasqConfig::return_cidrs6: fe80::/10 unless masqLinkLocalIPv6, the IPv6 nonMasqueradeCIDRs). One
// definition: the loader's first trie (ipv6_facts) and every trie the IP Masquerade Agent swaps in
// (swap_nonmasq) are this list.
std::vector<Cidr6> ipv6_nonmasq(const MasqConfig& masq);

// Load-time knobs beyond the cluster's own facts.
struct ProgramOptions {
  bool record_redirects = false;  // tests: remember each redirect's helper and ifindex
  uint32_t delay_loops = 0;       // calibration: injected per-packet cost
  uint16_t nat_port_min = kNatPortMin;
  uint16_t nat_port_max = kNatPortMax;
  bool services_enabled = false;  // kube-proxy rules installed: send service replies to the stack
  uint32_t ct_entries = 0;        // size of the connection-tracking map; 0: the object's own
  bool ct_enabled = true;         // microbenchmarks: the from_pod paths without tracking
  uint64_t ct_lifetime_close_ns = 0;  // 0: the object's default (10 s); tests shorten it
  uint64_t ct_lifetime_other_ns = 0;  // 0: 60 s
  // Services load-balanced in BPF (kube-proxy replacement): the cluster's service list
  // (service_ip / service_endpoints), TCP and UDP port kServicePort -> kServiceTargetPort, and
  // their NodePorts (node_port) on the node IP.
  int lb_services = 0;
  int lb_endpoints_per_service = 1;
  bool host_routing = true;  // false: bpf-lb mode (the stack routes after CT and LB)
  // Another build's objects (from_pod.bpf.o, from_uplink.bpf.o in this directory, as
  // resolve_objects_dir returns it); empty: this build's. Same loader, same ABI (hrb_abi.h).
  std::string objects_dir;
  // Another variant of this node's programs (an alternated mode): load with its maps (all but
  // the counters), already filled, instead of new ones.
  const class NodePrograms* share_maps = nullptr;
  // The node's IPv6 facts; nullopt: IPv6 goes to the stack (the IPv6 maps are made 1 entry big).
  std::optional<Ipv6Facts> ipv6;
};

// The datapath objects a mode loads from another build's objects directory: from_pod and
// from_uplink (the guard's objects are this build's). object_file: "<dir>/<object>.bpf.o", or
// empty (this build's embedded object) for an empty dir.
inline constexpr const char* kDatapathObjects[] = {"from_pod", "from_uplink"};
std::string object_file(const std::string& objects_dir, const std::string& object);
// Opens (does not load: no root needed) each datapath object of `objects_dir` and checks its ABI
// version and layout against this build's; throws Error(kBadInput) naming the file and both.
void check_objects(const std::string& objects_dir);

// The two programs of one node, loaded (sharing their maps) and with the maps filled from the
// cluster — not attached. EbpfMode attaches them; tests run them with BPF_PROG_TEST_RUN.
class NodePrograms {
 public:
  NodePrograms(const topology::Layout& l, const topology::NodeLayout& n, const MasqConfig& masq,
               const ProgramOptions& opts = {});
  ~NodePrograms();
  NodePrograms(NodePrograms&&) noexcept;
  ::from_pod* pod() const;
  ::from_uplink* uplink() const;
  int from_pod_fd() const;
  int from_uplink_fd() const;
  int to_pod_fd() const;               // bpf-lb mode: lxc egress
  int map_fd(const char* name) const;  // endpoints, ct, stack_flows, nonmasq, counters_*, and
                                       // the IPv6 ones: endpoints6, ct6, lb6, stack_flows6, ...
  ReasonCounters counters(const char* program) const;
  void reset_counters();

 private:
  void fill_ipv6(const Ipv6Facts& f, const std::map<std::string, hrb_endpoint>& endpoint);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What guards a node while eBPF host routing bypasses its iptables: harness/guard/'s monitor and
// blocker, given to EbpfMode by the code that composes it (make_mode), so that the mode itself
// does not know them.
class BypassGuard {
 public:
  virtual ~BypassGuard() = default;
  // Before anything changes: throws Error(kRefused) when rules in the nodes would be silently
  // bypassed (or, forced, warns).
  virtual void refuse_bypassed_rules(const topology::Layout& l) = 0;
  virtual void start(const topology::Layout& l, topology::StateDir& state) = 0;
  virtual void stop(const topology::Layout& l, topology::StateDir& state) = 0;  // idempotent
};

// ebpf: eBPF host routing, everything in BPF. bpf-lb (host_routing = false): Cilium with BPF
// host routing off — connection tracking and service load balancing in BPF at the pod's veth
// (from_pod on ingress, to_pod on egress), then the host stack routes and ip-masq-agent's
// iptables rule masquerades; no from_uplink, and no guard.
class EbpfMode : public Mode {
 public:
  // `guard`: checked before and started after the programs attach, stopped first on removal;
  // null for none.
  EbpfMode(ModeOptions opts, MasqConfig masq, topology::StateDir* state,
           std::unique_ptr<BypassGuard> guard = nullptr);
  std::string name() const override { return opts_.name; }
  void apply(const topology::Layout& layout) override;
  void remove(const topology::Layout& layout) override;

 private:
  // ebpf routes in BPF; bpf-lb leaves routing to the stack (ProgramOptions::host_routing).
  bool host_routing() const { return opts_.name != "bpf-lb"; }
  // A node's programs (every variant of an alternated mode), loaded and filled; thread-safe.
  std::vector<NodePrograms> load_node(const topology::Layout& l,
                                      const topology::NodeLayout& n) const;
  void attach_node(const topology::Layout& l, const topology::NodeLayout& n,
                   const std::vector<NodePrograms>& variants);
  ModeOptions opts_;
  MasqConfig masq_;
  LegacyMode legacy_;
  topology::StateDir* state_;
  std::unique_ptr<BypassGuard> guard_;
};

}  // namespace hrb::datapath
