#include "topology/layout.hpp"

#include <regex>

namespace hrb::topology {

bool valid_prefix(const std::string& prefix) {
  static const std::regex re("^[a-z][a-z0-9]{0,11}$");
  return std::regex_match(prefix, re);
}

std::string netns_prefix(const std::string& prefix) { return prefix + "-"; }

Layout plan(const Spec& spec, const std::string& prefix) {
  if (!valid_prefix(prefix))
    throw Error("invalid prefix '" + prefix +
                    "': expected a lower-case letter then up to 11 letters or digits",
                ExitCode::kUsage);
  Layout l;
  l.prefix = prefix;
  l.spec = spec;
  const std::string p = netns_prefix(prefix);
  l.fabric_netns = p + "fabric";
  for (int i = 0; i < spec.node_count; ++i) {
    NodeLayout n;
    n.name = "node" + std::to_string(i + 1);
    n.netns = p + n.name;
    n.fabric_port = "n" + std::to_string(i + 1);
    if (spec.has_ipv4()) {
      n.underlay_ip = spec.underlay_cidr.at(i + 1);
      n.pod_cidr = spec.pod_cidrs.at(i);
      n.router_ip = n.pod_cidr.at(1);
    }
    if (spec.has_ipv6()) {
      n.underlay_ip6 = spec.underlay_cidr6.at(i + 1);
      n.pod_cidr6 = spec.pod_cidrs6.at(i);
      n.router_ip6 = n.pod_cidr6.at(1);
    }
    for (int j = 0; j < spec.pods_per_node; ++j) {
      PodLayout pod;
      pod.name = n.name + "-pod" + std::to_string(j + 1);
      pod.netns = p + pod.name;
      pod.lxc = "lxc" + std::to_string(j + 1);
      if (spec.has_ipv4()) pod.ip = n.pod_cidr.at(j + 2);
      if (spec.has_ipv6()) pod.ip6 = n.pod_cidr6.at(j + 2);
      pod.node = i;
      n.pods.push_back(pod);
    }
    l.nodes.push_back(std::move(n));
  }
  for (size_t k = 0; k < spec.externals.size(); ++k) {
    ExternalLayout e;
    e.name = spec.externals[k].name;
    e.netns = p + e.name;
    e.fabric_port = "x" + std::to_string(k + 1);
    if (spec.has_ipv4()) {
      e.underlay_ip = spec.underlay_cidr.at(spec.underlay_cidr.size() - 2 - k);
      e.address = spec.externals[k].address;
    }
    if (spec.has_ipv6()) {
      e.underlay_ip6 = spec.underlay_cidr6.at(0xfe - k);
      e.address6 = spec.externals[k].address6;
    }
    l.externals.push_back(e);
  }
  return l;
}

std::vector<std::string> Layout::all_netns() const {
  std::vector<std::string> v{fabric_netns};
  for (const auto& n : nodes) v.push_back(n.netns);
  for (const auto& n : nodes)
    for (const auto& pod : n.pods) v.push_back(pod.netns);
  for (const auto& e : externals) v.push_back(e.netns);
  return v;
}

std::vector<const PodLayout*> Layout::pods() const {
  std::vector<const PodLayout*> v;
  for (const auto& n : nodes)
    for (const auto& pod : n.pods) v.push_back(&pod);
  return v;
}

std::optional<Endpoint> Layout::find(const std::string& name) const {
  if (name == "fabric") return Endpoint{Endpoint::Kind::kFabric, name, fabric_netns, {}, {}};
  for (const auto& n : nodes) {
    if (n.name == name)
      return Endpoint{Endpoint::Kind::kNode, n.name, n.netns, n.underlay_ip, n.underlay_ip6};
    for (const auto& pod : n.pods)
      if (pod.name == name)
        return Endpoint{Endpoint::Kind::kPod, pod.name, pod.netns, pod.ip, pod.ip6};
  }
  for (const auto& e : externals)
    if (e.name == name)
      return Endpoint{Endpoint::Kind::kExternal, e.name, e.netns, e.address, e.address6};
  return std::nullopt;
}

bool Layout::owns_netns(const std::string& netns) const {
  return netns.rfind(netns_prefix(prefix), 0) == 0;
}

}  // namespace hrb::topology
