#include "topology/view.hpp"

#include <fmt/format.h>

namespace hrb::topology {

namespace {
// Dual stack: a member's IPv6 address on the line below its IPv4 one, under the address column.
std::string v6_line(const Ipv6& a, const std::string& details) {
  std::string s = fmt::format("  {:<16} {:<8} {}", "", "", a.str());
  if (!details.empty()) s += " " + details;
  return s + "\n";
}
}  // namespace

std::string to_table(const Layout& l, bool complete, const NetnsPresent& present) {
  auto mark = [&](const std::string& ns) { return present(ns) ? "" : "  (MISSING)"; };
  // The address column holds the IPv4 address, or the IPv6 one on a single-stack IPv6 cluster;
  // on a dual-stack cluster the IPv6 address gets a line of its own below.
  const bool v4 = l.has_ipv4(), below = l.dual();
  auto pick = [&](const auto& a4, const auto& a6) { return v4 ? a4.str() : a6.str(); };
  std::string out = fmt::format("cluster '{}' (prefix {}, {}{}), fabric netns {}{}\n", l.spec.name,
                                l.prefix, complete ? "up" : "INCOMPLETE: run hrbench clean",
                                v4 ? "" : ", ipv6", l.fabric_netns, mark(l.fabric_netns));
  out += fmt::format("  {:<16} {:<8} {:<16} {:<20} {}\n", "name", "kind", "address", "netns",
                     "details");
  for (const auto& n : l.nodes) {
    out += fmt::format("  {:<16} {:<8} {:<16} {:<20} podCIDR {} router {}{}\n", n.name, "node",
                       pick(n.underlay_ip, n.underlay_ip6), n.netns, pick(n.pod_cidr, n.pod_cidr6),
                       pick(n.router_ip, n.router_ip6), mark(n.netns));
    if (below)
      out +=
          v6_line(n.underlay_ip6, "podCIDR " + n.pod_cidr6.str() + " router " + n.router_ip6.str());
    for (const auto& p : n.pods) {
      out += fmt::format("  {:<16} {:<8} {:<16} {:<20} {} on {}{}\n", p.name, "pod",
                         pick(p.ip, p.ip6), p.netns, p.lxc, n.name, mark(p.netns));
      if (below) out += v6_line(p.ip6, "");
    }
  }
  for (const auto& e : l.externals) {
    out += fmt::format("  {:<16} {:<8} {:<16} {:<20} underlay {}{}\n", e.name, "external",
                       pick(e.address, e.address6), e.netns, pick(e.underlay_ip, e.underlay_ip6),
                       mark(e.netns));
    if (below) out += v6_line(e.address6, "underlay " + e.underlay_ip6.str());
  }
  return out;
}

// The IPv4 keys (ip, underlayIP, …) are left out on a single-stack IPv6 cluster, the IPv6 ones
// (ipv6, underlayIPv6, …) on an IPv4 one.
nlohmann::json to_json(const Layout& l, bool complete, const NetnsPresent& present) {
  const bool v4 = l.has_ipv4(), v6 = l.has_ipv6();
  nlohmann::json j{{"name", l.spec.name},
                   {"prefix", l.prefix},
                   {"family", family_name(l.spec.family)},
                   {"complete", complete},
                   {"fabricNetns", l.fabric_netns},
                   {"nodes", nlohmann::json::array()},
                   {"externalHosts", nlohmann::json::array()}};
  for (const auto& n : l.nodes) {
    nlohmann::json pods = nlohmann::json::array();
    for (const auto& p : n.pods) {
      pods.push_back(
          {{"name", p.name}, {"netns", p.netns}, {"lxc", p.lxc}, {"present", present(p.netns)}});
      if (v4) pods.back()["ip"] = p.ip.str();
      if (v6) pods.back()["ipv6"] = p.ip6.str();
    }
    nlohmann::json node{
        {"name", n.name}, {"netns", n.netns}, {"present", present(n.netns)}, {"pods", pods}};
    if (v4) {
      node["underlayIP"] = n.underlay_ip.str();
      node["podCIDR"] = n.pod_cidr.str();
      node["routerIP"] = n.router_ip.str();
    }
    if (v6) {
      node["underlayIPv6"] = n.underlay_ip6.str();
      node["podCIDRv6"] = n.pod_cidr6.str();
      node["routerIPv6"] = n.router_ip6.str();
    }
    j["nodes"].push_back(std::move(node));
  }
  for (const auto& e : l.externals) {
    nlohmann::json x{{"name", e.name}, {"netns", e.netns}, {"present", present(e.netns)}};
    if (v4) {
      x["address"] = e.address.str();
      x["underlayIP"] = e.underlay_ip.str();
    }
    if (v6) {
      x["addressv6"] = e.address6.str();
      x["underlayIPv6"] = e.underlay_ip6.str();
    }
    j["externalHosts"].push_back(std::move(x));
  }
  return j;
}

}  // namespace hrb::topology
