#pragma once
// topology::Layout: a Spec resolved into the concrete objects of one cluster — every netns,
// interface name and address. This file is the one place that knows the naming rules.
#include <optional>
#include <string>
#include <vector>

#include "topology/spec.hpp"

namespace hrb::topology {

// Prefix rules: every object a cluster creates is named "<prefix>-…".
bool valid_prefix(const std::string& prefix);
constexpr const char* kDefaultPrefix = "hrb";

struct PodLayout {
  std::string name;   // node1-pod1
  std::string netns;  // <prefix>-node1-pod1
  std::string lxc;    // node-side veth, in the node netns: lxc1
  std::string ifname = "eth0";
  Ipv4 ip;       // zero on a single-stack IPv6 cluster (as every IPv4 field of the layout)
  Ipv6 ip6;      // with IPv6: the pod's IPv6 address (/128 on eth0); zero otherwise
  int node = 0;  // index into Layout::nodes
};

struct NodeLayout {
  std::string name;   // node1
  std::string netns;  // <prefix>-node1
  std::string uplink = "eth0";
  std::string fabric_port;  // peer of the uplink, in the fabric netns: n1
  Ipv4 underlay_ip;
  Cidr pod_cidr;
  Ipv4 router_ip;  // pods' gateway, first address of pod_cidr, held on the node's lo
  // Dual stack (zero otherwise): the node's IPv6 underlay address, its /64 pod prefix, and the
  // pods' IPv6 gateway (::1 of the prefix, on lo and on every lxc: IPv6 answers neighbour
  // solicitations only for addresses of the interface they arrive on).
  Ipv6 underlay_ip6;
  Cidr6 pod_cidr6;
  Ipv6 router_ip6;
  std::vector<PodLayout> pods;
};

struct ExternalLayout {
  std::string name;   // ext1
  std::string netns;  // <prefix>-ext1
  std::string ifname = "eth0";
  std::string fabric_port;  // x1
  Ipv4 underlay_ip;
  Ipv4 address;                 // the "outside" address pods talk to
  Ipv6 underlay_ip6, address6;  // dual stack: the same in IPv6 (zero otherwise)
};

// What a name given on the command line (pod, node, external host, "fabric") refers to.
struct Endpoint {
  enum class Kind { kPod, kNode, kExternal, kFabric } kind;
  std::string name;
  std::string netns;
  Ipv4 ip;   // pod IP, node underlay IP, external address; 0 for the fabric
  Ipv6 ip6;  // the same in IPv6 on a dual-stack cluster; zero otherwise
};

struct Layout {
  std::string prefix;
  Spec spec;
  std::string fabric_netns;
  std::string bridge = "br0";
  std::vector<NodeLayout> nodes;
  std::vector<ExternalLayout> externals;

  std::vector<std::string> all_netns() const;  // creation order: fabric, nodes, pods, externals
  std::optional<Endpoint> find(const std::string& name) const;
  std::vector<const PodLayout*> pods() const;
  bool owns_netns(const std::string& netns) const;
  bool dual() const { return spec.dual(); }          // IPv4 and IPv6 on every member
  bool has_ipv4() const { return spec.has_ipv4(); }  // false: single-stack IPv6 (IPv4 fields 0)
  bool has_ipv6() const { return spec.has_ipv6(); }  // dual stack or single-stack IPv6
  bool has(Family f) const { return spec.has(f); }
};

// Addresses (IPv4 / IPv6 on a dual-stack cluster):
//   node i (0-based)   underlay .(i+1) / ::(i+1); pod prefix pod_cidrs[i] / pod_cidrs6[i]
//   its router         first address of the pod prefix (.1 / ::1)
//   its pod j          pod prefix + j + 2
//   external host k    underlay size-2-k (.254 for a /24) / ::fe - k; its outside address as given
Layout plan(const Spec& spec, const std::string& prefix);

// "<prefix>-" — what every netns of a cluster with this prefix starts with.
std::string netns_prefix(const std::string& prefix);

}  // namespace hrb::topology
