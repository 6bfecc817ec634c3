#include "topology/spec.hpp"

#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>

#include "core/file.hpp"

namespace hrb::topology {

std::string Diagnostic::str() const {
  std::string where = file;
  if (line > 0) where += fmt::format(":{}:{}", line, column);
  return fmt::format("{}: {}{}", where, key.empty() ? "" : "'" + key + "': ", message);
}

namespace {
std::string join_diags(const std::vector<Diagnostic>& d) {
  std::string s =
      fmt::format("invalid topology ({} problem{}):", d.size(), d.size() == 1 ? "" : "s");
  for (const auto& x : d) s += "\n  " + x.str();
  return s;
}
}  // namespace

SpecError::SpecError(std::vector<Diagnostic> diags)
    : Error(join_diags(diags), ExitCode::kBadInput), diags_(std::move(diags)) {}

namespace {

// Walks a YAML document, collecting diagnostics with positions and dotted key paths.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void add(const YAML::Node& at, const std::string& key, std::string msg) {
    Diagnostic d{file_, 0, 0, key, std::move(msg)};
    if (at.IsDefined()) {
      d.line = at.Mark().line + 1;
      d.column = at.Mark().column + 1;
    }
    diags_.push_back(std::move(d));
  }
  void add_at(const YAML::Mark& m, const std::string& key, std::string msg) {
    diags_.push_back({file_, m.line + 1, m.column + 1, key, std::move(msg)});
  }

  // Checks `node` is a map whose keys are all in `allowed` (and none repeated).
  bool map_keys(const YAML::Node& node, const std::string& path,
                const std::set<std::string>& allowed) {
    if (!node.IsMap()) {
      add(node, path, "expected a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      std::string k = kv.first.Scalar();
      std::string full = path.empty() ? k : path + "." + k;
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        add(kv.first, full, "unknown key (expected one of: " + list + ")");
      } else if (!seen.insert(k).second) {
        add(kv.first, full, "duplicate key");
      }
    }
    return true;
  }

  std::optional<std::string> str(const YAML::Node& n, const std::string& key) {
    if (!n.IsScalar()) {
      add(n, key, "expected a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<long> integer(const YAML::Node& n, const std::string& key, long lo, long hi) {
    if (!n.IsScalar()) {
      add(n, key, "expected a number");
      return std::nullopt;
    }
    long v = 0;
    if (!YAML::convert<long>::decode(n, v)) {
      add(n, key, "'" + n.Scalar() + "' is not a whole number");
      return std::nullopt;
    }
    if (v < lo || v > hi) {
      add(n, key, fmt::format("{} is out of range (expected {} to {})", v, lo, hi));
      return std::nullopt;
    }
    return v;
  }

  std::optional<Cidr> cidr(const YAML::Node& n, const std::string& key) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    std::string why;
    auto c = Cidr::parse(*s, &why);
    if (!c) add(n, key, "bad CIDR '" + *s + "': " + why);
    return c;
  }

  std::optional<Cidr6> cidr6(const YAML::Node& n, const std::string& key, int min_len, int max_len,
                             const std::string& why_len) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    std::string why;
    auto c = Cidr6::parse(*s, &why);
    if (!c) {
      add(n, key, "bad IPv6 CIDR '" + *s + "': " + why);
    } else if (c->len < min_len || c->len > max_len) {
      add(n, key,
          fmt::format("/{} is out of range: expected /{} to /{} ({})", c->len, min_len, max_len,
                      why_len));
      return std::nullopt;
    }
    return c;
  }

  std::optional<Ipv6> ip6(const YAML::Node& n, const std::string& key) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    auto a = Ipv6::parse(*s);
    if (!a) add(n, key, "'" + *s + "' is not an IPv6 address");
    return a;
  }

  std::optional<Ipv4> ip(const YAML::Node& n, const std::string& key) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    auto a = Ipv4::parse(*s);
    if (!a) add(n, key, "'" + *s + "' is not an IPv4 address");
    return a;
  }

  std::optional<std::string> name(const YAML::Node& n, const std::string& key) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    static const std::regex re("^[a-z][a-z0-9-]{0,14}$");
    if (!std::regex_match(*s, re)) {
      add(n, key,
          "'" + *s + "' is not a valid name (lower-case letters, digits and '-', " +
              "starting with a letter, at most 15 characters)");
      return std::nullopt;
    }
    return s;
  }

  void sysctls(const YAML::Node& n, const std::string& key,
               std::map<std::string, std::string>& out) {
    if (!n.IsMap()) {
      add(n, key, "expected a mapping of sysctl keys to values");
      return;
    }
    static const std::regex re("^net\\.[a-z0-9_.\\-]+$");
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      std::string full = key + "." + k;
      if (!std::regex_match(k, re)) {
        add(kv.first, full,
            "only per-network-namespace sysctls (net.*) can be set here, e.g. "
            "net.ipv4.ip_forward");
        continue;
      }
      if (!kv.second.IsScalar()) {
        add(kv.second, full, "expected a scalar value");
        continue;
      }
      if (!out.emplace(k, kv.second.Scalar()).second) add(kv.first, full, "duplicate key");
    }
  }

  std::vector<Diagnostic>& diags() { return diags_; }

 private:
  std::string file_;
  std::vector<Diagnostic> diags_;
};

Spec parse_root(const YAML::Node& root, const std::string& file) {
  Checker c(file);
  Spec s;
  s.file = file;
  if (!root.IsDefined() || root.IsNull()) {
    throw SpecError({{file, 0, 0, "", "the file is empty"}});
  }
  if (!c.map_keys(
          root, "",
          {"name", "family", "clusterCIDR", "serviceCIDR", "clusterCIDRv6", "serviceCIDRv6",
           "nodes", "underlay", "externalHosts", "sysctls", "services", "endpointsPerService"})) {
    throw SpecError(c.diags());
  }
  auto require = [&](const YAML::Node& parent, const char* key, const std::string& path) {
    YAML::Node n = parent[key];
    if (!n.IsDefined()) c.add_at(parent.Mark(), path, "required key is missing");
    return n;
  };

  if (auto n = require(root, "name", "name"); n.IsDefined())
    if (auto v = c.name(n, "name")) s.name = *v;
  if (auto n = root["family"]; n.IsDefined()) {
    if (auto v = c.str(n, "family")) {
      if (*v == "dual")
        s.family = StackFamily::kDual;
      else if (*v == "ipv6")
        s.family = StackFamily::kIpv6;
      else if (*v != "ipv4")
        c.add(n, "family", "'" + *v + "' is not a family (expected ipv4, ipv6 or dual)");
    }
  }
  // An IPv6 key: required with family dual or ipv6, refused with ipv4 (named at the key).
  auto v6_key = [&](const YAML::Node& parent, const char* key, const std::string& path) {
    YAML::Node n = parent[key];
    if (s.has_ipv6() && !n.IsDefined())
      c.add_at(parent.Mark(), path,
               "required key is missing (family: " + family_name(s.family) + ")");
    if (!s.has_ipv6() && n.IsDefined()) {
      c.add(n, path, "is for IPv6: set family: dual or ipv6 (the cluster is ipv4)");
      return YAML::Node(YAML::NodeType::Undefined);
    }
    return n;
  };
  // An IPv4 key: required unless the cluster is single-stack IPv6, where it is refused.
  auto v4_key = [&](const YAML::Node& parent, const char* key, const std::string& path,
                    bool required = true) {
    YAML::Node n = parent[key];
    if (!s.has_ipv4()) {
      if (n.IsDefined())
        c.add(n, path,
              "is for IPv4: the cluster is family: ipv6 (its *v6 keys take this role; family: "
              "dual has both)");
      return YAML::Node(YAML::NodeType::Undefined);
    }
    if (required && !n.IsDefined()) c.add_at(parent.Mark(), path, "required key is missing");
    return n;
  };
  std::optional<Cidr> cluster, service, underlay;
  std::optional<Cidr6> cluster6, service6, underlay6;
  if (auto n = v6_key(root, "clusterCIDRv6", "clusterCIDRv6"); n.IsDefined())
    cluster6 = c.cidr6(n, "clusterCIDRv6", 32, kPodPrefix6 - 1, "a /64 per node is carved from it");
  if (auto n = v6_key(root, "serviceCIDRv6", "serviceCIDRv6"); n.IsDefined())
    service6 = c.cidr6(n, "serviceCIDRv6", 64, 124, "ClusterIPs are taken from its start");
  if (auto n = v4_key(root, "clusterCIDR", "clusterCIDR"); n.IsDefined())
    cluster = c.cidr(n, "clusterCIDR");
  if (auto n = v4_key(root, "serviceCIDR", "serviceCIDR"); n.IsDefined())
    service = c.cidr(n, "serviceCIDR");

  YAML::Node podcidrs_node(YAML::NodeType::Undefined);
  std::optional<long> mask_size;
  if (auto nodes = require(root, "nodes", "nodes"); nodes.IsDefined()) {
    if (c.map_keys(nodes, "nodes", {"count", "podsPerNode", "podCIDRMaskSize", "podCIDRs"})) {
      if (auto n = require(nodes, "count", "nodes.count"); n.IsDefined())
        if (auto v = c.integer(n, "nodes.count", 1, 64)) s.node_count = *v;
      if (auto n = require(nodes, "podsPerNode", "nodes.podsPerNode"); n.IsDefined())
        if (auto v = c.integer(n, "nodes.podsPerNode", 0, 250)) s.pods_per_node = *v;
      if (auto n = v4_key(nodes, "podCIDRMaskSize", "nodes.podCIDRMaskSize", false); n.IsDefined())
        mask_size = c.integer(n, "nodes.podCIDRMaskSize", 8, 30);
      // reset, not assignment: assigning a missing key's (invalid) node throws.
      if (auto n = v4_key(nodes, "podCIDRs", "nodes.podCIDRs", false); n.IsDefined())
        podcidrs_node.reset(n);
    }
  }

  if (auto u = require(root, "underlay", "underlay"); u.IsDefined()) {
    if (c.map_keys(u, "underlay", {"kind", "cidr", "cidrv6", "mtu"})) {
      if (u["kind"].IsDefined()) {
        if (auto k = c.str(u["kind"], "underlay.kind")) {
          if (*k != "bridge")
            c.add(u["kind"], "underlay.kind",
                  "unsupported underlay kind '" + *k + "' (expected: bridge)");
          s.underlay_kind = *k;
        }
      }
      if (auto n = v4_key(u, "cidr", "underlay.cidr"); n.IsDefined())
        underlay = c.cidr(n, "underlay.cidr");
      if (u["mtu"].IsDefined())
        if (auto v = c.integer(u["mtu"], "underlay.mtu", 576, 65535)) s.mtu = *v;
      if (auto n = v6_key(u, "cidrv6", "underlay.cidrv6"); n.IsDefined())
        underlay6 = c.cidr6(n, "underlay.cidrv6", 64, 120,
                            "nodes count up from ::1, external hosts down from ::fe");
    }
  }

  if (auto n = root["services"]; n.IsDefined())
    if (auto v = c.integer(n, "services", 0, 100000)) s.services = *v;
  if (auto n = root["endpointsPerService"]; n.IsDefined())
    if (auto v = c.integer(n, "endpointsPerService", 1, 1000)) s.endpoints_per_service = *v;

  if (auto n = root["sysctls"]; n.IsDefined()) {
    if (c.map_keys(n, "sysctls", {"node", "pod"})) {
      if (n["node"].IsDefined()) c.sysctls(n["node"], "sysctls.node", s.node_sysctls);
      if (n["pod"].IsDefined()) c.sysctls(n["pod"], "sysctls.pod", s.pod_sysctls);
    }
  }

  // Names used so far: nodes are node1..nodeN.
  std::set<std::string> names;
  for (int i = 1; i <= s.node_count; ++i) names.insert("node" + std::to_string(i));
  names.insert("fabric");
  std::vector<std::pair<YAML::Node, ExternalHost>> exts;
  if (auto n = root["externalHosts"]; n.IsDefined()) {
    if (!n.IsSequence()) {
      c.add(n, "externalHosts", "expected a list of {name, address}");
    } else {
      for (size_t i = 0; i < n.size(); ++i) {
        std::string path = fmt::format("externalHosts[{}]", i);
        const YAML::Node e = n[i];
        if (!c.map_keys(e, path, {"name", "address", "addressv6"})) continue;
        ExternalHost h;
        bool ok = true;
        if (auto nn = require(e, "name", path + ".name"); nn.IsDefined()) {
          auto v = c.name(nn, path + ".name");
          if (v && !names.insert(*v).second) {
            c.add(nn, path + ".name", "duplicate name '" + *v + "'");
            ok = false;
          }
          if (v)
            h.name = *v;
          else
            ok = false;
        } else {
          ok = false;
        }
        if (auto an = v4_key(e, "address", path + ".address"); an.IsDefined()) {
          auto a = c.ip(an, path + ".address");
          if (a)
            h.address = *a;
          else
            ok = false;
        } else if (s.has_ipv4()) {
          ok = false;
        }
        if (auto an = v6_key(e, "addressv6", path + ".addressv6"); an.IsDefined()) {
          if (auto a = c.ip6(an, path + ".addressv6"))
            h.address6 = *a;
          else
            ok = false;
        } else if (s.has_ipv6()) {
          ok = false;
        }
        if (ok) exts.push_back({e, h});
      }
    }
  }

  // Cross-field checks, only on fields that parsed.
  if (cluster && service && cluster->overlaps(*service))
    c.add(root["serviceCIDR"], "serviceCIDR",
          "overlaps clusterCIDR " + cluster->str() + " (service and pod ranges must be disjoint)");
  if (cluster && underlay && cluster->overlaps(*underlay))
    c.add(root["underlay"]["cidr"], "underlay.cidr", "overlaps clusterCIDR " + cluster->str());
  if (service && underlay && service->overlaps(*underlay))
    c.add(root["underlay"]["cidr"], "underlay.cidr", "overlaps serviceCIDR " + service->str());

  if (cluster && s.node_count > 0) {
    if (podcidrs_node.IsDefined()) {
      if (mask_size)
        c.add(podcidrs_node, "nodes.podCIDRs", "give either podCIDRs or podCIDRMaskSize, not both");
      if (!podcidrs_node.IsSequence()) {
        c.add(podcidrs_node, "nodes.podCIDRs", "expected a list of CIDRs, one per node");
      } else {
        if (static_cast<int>(podcidrs_node.size()) != s.node_count)
          c.add(podcidrs_node, "nodes.podCIDRs",
                fmt::format("has {} entries but nodes.count is {}", podcidrs_node.size(),
                            s.node_count));
        for (size_t i = 0; i < podcidrs_node.size(); ++i) {
          std::string key = fmt::format("nodes.podCIDRs[{}]", i);
          auto pc = c.cidr(podcidrs_node[i], key);
          if (!pc) continue;
          if (!cluster->contains(*pc)) {
            c.add(podcidrs_node[i], key,
                  "pod CIDR " + pc->str() + " is outside clusterCIDR " + cluster->str());
          }
          for (size_t j = 0; j < s.pod_cidrs.size(); ++j)
            if (s.pod_cidrs[j].overlaps(*pc))
              c.add(podcidrs_node[i], key,
                    fmt::format("overlaps nodes.podCIDRs[{}] {}", j, s.pod_cidrs[j].str()));
          s.pod_cidrs.push_back(*pc);
        }
      }
    } else {
      int m = mask_size ? static_cast<int>(*mask_size) : 24;
      if (m < cluster->len) {
        c.add(root["nodes"]["podCIDRMaskSize"], "nodes.podCIDRMaskSize",
              fmt::format("/{} is larger than clusterCIDR {}", m, cluster->str()));
      } else {
        uint64_t blocks = 1ull << (m - cluster->len);
        if (static_cast<uint64_t>(s.node_count) > blocks) {
          c.add(root["nodes"]["count"], "nodes.count",
                fmt::format("{} nodes do not fit: clusterCIDR {} holds only {} /{} pod CIDRs",
                            s.node_count, cluster->str(), blocks, m));
        } else {
          for (int i = 0; i < s.node_count; ++i)
            s.pod_cidrs.push_back(Cidr{cluster->at(static_cast<uint64_t>(i) << (32 - m)), m});
        }
      }
    }
    // Each pod CIDR loses its network address, the node's router address and broadcast.
    for (size_t i = 0; i < s.pod_cidrs.size(); ++i) {
      uint64_t room = s.pod_cidrs[i].size() >= 4 ? s.pod_cidrs[i].size() - 3 : 0;
      if (static_cast<uint64_t>(s.pods_per_node) > room) {
        c.add(root["nodes"]["podsPerNode"], "nodes.podsPerNode",
              fmt::format("{} pods do not fit in pod CIDR {} of node{} (room for {})",
                          s.pods_per_node, s.pod_cidrs[i].str(), i + 1, room));
        break;
      }
    }
  }
  if (underlay) {
    uint64_t room = underlay->size() >= 4 ? underlay->size() - 2 : 0;
    uint64_t need = static_cast<uint64_t>(s.node_count) + exts.size();
    if (need > room)
      c.add(root["underlay"]["cidr"], "underlay.cidr",
            fmt::format("{} nodes and external hosts do not fit in {} (room for {})", need,
                        underlay->str(), room));
  }
  for (auto& [entry, h] : exts) {
    const YAML::Node node = entry["address"];
    std::string key = "externalHosts." + h.name + ".address";
    // (Single-stack IPv6: no IPv4 range parsed, so only the duplicate check needs the guard.)
    if (cluster && cluster->contains(h.address))
      c.add(node, key, "external address " + h.address.str() + " is inside clusterCIDR");
    else if (service && service->contains(h.address))
      c.add(node, key, "external address " + h.address.str() + " is inside serviceCIDR");
    else if (underlay && underlay->contains(h.address))
      c.add(node, key,
            "external address " + h.address.str() +
                " is inside underlay.cidr; give the "
                "address outside it (the host gets its underlay address separately)");
    for (auto& [_, o] : exts)
      if (s.has_ipv4() && &o != &h && o.address == h.address && o.name < h.name)
        c.add(node, key, "duplicate address " + h.address.str() + " (also " + o.name + ")");
    if (s.has_ipv6()) {
      const YAML::Node node6 = entry["addressv6"];
      const std::string key6 = key + "v6", a6 = h.address6.str();
      if (cluster6 && cluster6->contains(h.address6))
        c.add(node6, key6, "external address " + a6 + " is inside clusterCIDRv6");
      else if (service6 && service6->contains(h.address6))
        c.add(node6, key6, "external address " + a6 + " is inside serviceCIDRv6");
      else if (underlay6 && underlay6->contains(h.address6))
        c.add(node6, key6,
              "external address " + a6 +
                  " is inside underlay.cidrv6; give the address outside it (the host gets its "
                  "underlay address separately)");
      for (auto& [_, o] : exts)
        if (&o != &h && o.address6 == h.address6 && o.name < h.name)
          c.add(node6, key6, "duplicate address " + a6 + " (also " + o.name + ")");
    }
    s.externals.push_back(h);
  }
  // Dual stack: the IPv6 ranges disjoint, a /64 per node.
  if (cluster6 && service6 && cluster6->overlaps(*service6))
    c.add(
        root["serviceCIDRv6"], "serviceCIDRv6",
        "overlaps clusterCIDRv6 " + cluster6->str() + " (service and pod ranges must be disjoint)");
  if (cluster6 && underlay6 && cluster6->overlaps(*underlay6))
    c.add(root["underlay"]["cidrv6"], "underlay.cidrv6",
          "overlaps clusterCIDRv6 " + cluster6->str());
  if (service6 && underlay6 && service6->overlaps(*underlay6))
    c.add(root["underlay"]["cidrv6"], "underlay.cidrv6",
          "overlaps serviceCIDRv6 " + service6->str());
  if (cluster6 && s.node_count > 0) {
    if (static_cast<uint64_t>(s.node_count) > cluster6->count(kPodPrefix6))
      c.add(root["clusterCIDRv6"], "clusterCIDRv6",
            fmt::format("{} nodes do not fit: {} holds only {} /{} pod prefixes", s.node_count,
                        cluster6->str(), cluster6->count(kPodPrefix6), kPodPrefix6));
    else
      for (int i = 0; i < s.node_count; ++i)
        s.pod_cidrs6.push_back(cluster6->subnet(static_cast<uint64_t>(i), kPodPrefix6));
  }
  if (service6 && static_cast<uint64_t>(s.services) + 2 > service6->count(128))
    c.add(root["services"], "services",
          fmt::format("{} services do not fit in serviceCIDRv6 {}", s.services, service6->str()));
  if (underlay6 && static_cast<uint64_t>(s.node_count) + exts.size() > 253)
    c.add(root["underlay"]["cidrv6"], "underlay.cidrv6",
          fmt::format("{} nodes and external hosts do not fit below ::fe of {}",
                      static_cast<uint64_t>(s.node_count) + exts.size(), underlay6->str()));
  if (s.services > 0 && s.node_count * s.pods_per_node == 0)
    c.add(root["services"], "services", "services need pods to serve as endpoints");
  if (service && static_cast<uint64_t>(s.services) + 2 > service->size())
    c.add(root["services"], "services",
          fmt::format("{} services do not fit in serviceCIDR {}", s.services, service->str()));

  if (!c.diags().empty()) throw SpecError(c.diags());
  if (s.has_ipv4()) {
    s.cluster_cidr = *cluster;
    s.service_cidr = *service;
    s.underlay_cidr = *underlay;
  }
  if (s.has_ipv6()) {
    s.cluster_cidr6 = *cluster6;
    s.service_cidr6 = *service6;
    s.underlay_cidr6 = *underlay6;
  }
  return s;
}

}  // namespace

std::string family_name(StackFamily f) {
  switch (f) {
    case StackFamily::kIpv4:
      return "ipv4";
    case StackFamily::kDual:
      return "dual";
    case StackFamily::kIpv6:
      return "ipv6";
  }
  return "?";
}

void require_family(const Spec& spec, Family f, const std::string& flag) {
  if (spec.has(f)) return;
  throw Error(fmt::format("{} {}: topology {} has no {} (its family is {}); use a dual-stack "
                          "topology (family: dual), e.g. topologies/dual-stack.yaml",
                          flag, hrb::family_name(f), spec.name,
                          f == Family::kIpv4 ? "IPv4" : "IPv6", family_name(spec.family)),
              ExitCode::kUsage);
}

Spec parse_spec_string(const std::string& yaml, const std::string& file_label) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw SpecError(
        {{file_label, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg}});
  }
  return parse_root(root, file_label);
}

Spec parse_spec_file(const std::string& path) {
  return parse_spec_string(read_text_file(path, "topology file"), path);
}

}  // namespace hrb::topology
