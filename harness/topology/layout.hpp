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
  Ipv4 ip;
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
  std::vector<PodLayout> pods;
};

struct ExternalLayout {
  std::string name;   // ext1
  std::string netns;  // <prefix>-ext1
  std::string ifname = "eth0";
  std::string fabric_port;  // x1
  Ipv4 underlay_ip;
  Ipv4 address;  // the "outside" address pods talk to
};

// What a name given on the command line (pod, node, external host, "fabric") refers to.
struct Endpoint {
  enum class Kind { kPod, kNode, kExternal, kFabric } kind;
  std::string name;
  std::string netns;
  Ipv4 ip;  // pod IP, node underlay IP, external address; 0 for the fabric
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
};

Layout plan(const Spec& spec, const std::string& prefix);

// "<prefix>-" — what every netns of a cluster with this prefix starts with.
std::string netns_prefix(const std::string& prefix);

}  // namespace hrb::topology
