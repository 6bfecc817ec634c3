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
  std::string out = fmt::format("cluster '{}' (prefix {}, {}), fabric netns {}{}\n", l.spec.name,
                                l.prefix, complete ? "up" : "INCOMPLETE: run hrbench clean",
                                l.fabric_netns, mark(l.fabric_netns));
  out += fmt::format("  {:<16} {:<8} {:<16} {:<20} {}\n", "name", "kind", "address", "netns",
                     "details");
  for (const auto& n : l.nodes) {
    out += fmt::format("  {:<16} {:<8} {:<16} {:<20} podCIDR {} router {}{}\n", n.name, "node",
                       n.underlay_ip.str(), n.netns, n.pod_cidr.str(), n.router_ip.str(),
                       mark(n.netns));
    if (l.dual())
      out +=
          v6_line(n.underlay_ip6, "podCIDR " + n.pod_cidr6.str() + " router " + n.router_ip6.str());
    for (const auto& p : n.pods) {
      out += fmt::format("  {:<16} {:<8} {:<16} {:<20} {} on {}{}\n", p.name, "pod", p.ip.str(),
                         p.netns, p.lxc, n.name, mark(p.netns));
      if (l.dual()) out += v6_line(p.ip6, "");
    }
  }
  for (const auto& e : l.externals) {
    out += fmt::format("  {:<16} {:<8} {:<16} {:<20} underlay {}{}\n", e.name, "external",
                       e.address.str(), e.netns, e.underlay_ip.str(), mark(e.netns));
    if (l.dual()) out += v6_line(e.address6, "underlay " + e.underlay_ip6.str());
  }
  return out;
}

nlohmann::json to_json(const Layout& l, bool complete, const NetnsPresent& present) {
  nlohmann::json j{{"name", l.spec.name},
                   {"prefix", l.prefix},
                   {"family", l.dual() ? "dual" : "ipv4"},
                   {"complete", complete},
                   {"fabricNetns", l.fabric_netns},
                   {"nodes", nlohmann::json::array()},
                   {"externalHosts", nlohmann::json::array()}};
  for (const auto& n : l.nodes) {
    nlohmann::json pods = nlohmann::json::array();
    for (const auto& p : n.pods) {
      pods.push_back({{"name", p.name},
                      {"ip", p.ip.str()},
                      {"netns", p.netns},
                      {"lxc", p.lxc},
                      {"present", present(p.netns)}});
      if (l.dual()) pods.back()["ipv6"] = p.ip6.str();
    }
    j["nodes"].push_back({{"name", n.name},
                          {"underlayIP", n.underlay_ip.str()},
                          {"podCIDR", n.pod_cidr.str()},
                          {"routerIP", n.router_ip.str()},
                          {"netns", n.netns},
                          {"present", present(n.netns)},
                          {"pods", pods}});
    if (l.dual()) {
      j["nodes"].back()["underlayIPv6"] = n.underlay_ip6.str();
      j["nodes"].back()["podCIDRv6"] = n.pod_cidr6.str();
      j["nodes"].back()["routerIPv6"] = n.router_ip6.str();
    }
  }
  for (const auto& e : l.externals) {
    j["externalHosts"].push_back({{"name", e.name},
                                  {"address", e.address.str()},
                                  {"underlayIP", e.underlay_ip.str()},
                                  {"netns", e.netns},
                                  {"present", present(e.netns)}});
    if (l.dual()) {
      j["externalHosts"].back()["addressv6"] = e.address6.str();
      j["externalHosts"].back()["underlayIPv6"] = e.underlay_ip6.str();
    }
  }
  return j;
}

}  // namespace hrb::topology
