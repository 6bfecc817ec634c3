#include "datapath/legacy.hpp"

#include <netinet/in.h>

#include "core/hash.hpp"
#include "core/log.hpp"
#include "core/parallel.hpp"
#include "core/process.hpp"

namespace hrb::datapath {

namespace {
const char* kMasqChain = "IP-MASQ-AGENT";

std::string comment(const std::string& text) { return "-m comment --comment \"" + text + "\""; }

}  // namespace

RuleSet masq_agent_rules(const MasqConfig& cfg, Family f) {
  RuleSet rs;
  std::vector<std::string> cidrs;
  if (f == Family::kIpv4)
    for (const auto& c : cfg.return_cidrs()) cidrs.push_back(c.str());
  else
    for (const auto& c : cfg.return_cidrs6()) cidrs.push_back(c.str());
  rs.chains["nat"] = {kMasqChain};
  rs.rules.push_back({"nat", "POSTROUTING",
                      comment("ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL "
                              "destination traffic to our custom IP-MASQ-AGENT chain") +
                          " -m addrtype ! --dst-type LOCAL -j " + kMasqChain});
  for (const auto& c : cidrs)
    rs.rules.push_back({"nat", kMasqChain,
                        "-d " + c + " " +
                            comment("ip-masq-agent: local traffic is not subject to MASQUERADE") +
                            " -j RETURN"});
  rs.rules.push_back({"nat", kMasqChain,
                      comment("ip-masq-agent: outbound traffic is subject to MASQUERADE (must be "
                              "last in chain)") +
                          " -j MASQUERADE"});
  return rs;
}

std::string kube_chain_name(const std::string& kind, const std::string& key) {
  static const char* b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint64_t h[2] = {fnv1a(key), fnv1a(key + "#")};
  std::string s = "KUBE-" + kind + "-";
  for (int i = 0; i < 16; ++i) s += b32[(h[i / 8] >> ((i % 8) * 5)) & 31];
  return s;
}

Ipv4 service_ip(const topology::Layout& l, int i) { return l.spec.service_cidr.at(i + 1); }

Ipv6 service_ip6(const topology::Layout& l, int i) { return l.spec.service_cidr6.at(i + 1); }

std::optional<uint16_t> node_port(int i) {
  if (i < 0 || i >= kNodePortServices) return std::nullopt;
  return static_cast<uint16_t>(kNodePortFirst + i);
}

const std::vector<ServicePort>& service_ports() {
  static const std::vector<ServicePort> ports{
      {"http", "tcp", IPPROTO_TCP, kServicePort, kServiceTargetPort},
      {"http-udp", "udp", IPPROTO_UDP, kServicePort, kServiceTargetPort}};
  return ports;
}

namespace {
std::string port_name(int i, const ServicePort& sp) {
  return "default/svc-" + std::to_string(i) + ":" + sp.name;
}
}  // namespace

std::string kube_svc_chain(int i, const ServicePort& sp) {
  return kube_chain_name("SVC", port_name(i, sp) + ":" + sp.protocol);
}

std::string kube_ext_chain(int i, const ServicePort& sp) {
  return kube_chain_name("EXT", port_name(i, sp) + ":" + sp.protocol);
}

namespace {
// What kube-proxy's rules say of one family: an address (/32 or /128 as a single host), and an
// endpoint as host:port (IPv6 in brackets, as net.JoinHostPort writes it).
struct FamilyText {
  Family f;
  std::string ip(const topology::PodLayout& p) const {
    return f == Family::kIpv4 ? p.ip.str() : p.ip6.str();
  }
  std::string host(const std::string& a) const { return a + (f == Family::kIpv4 ? "/32" : "/128"); }
  std::string host_port(const std::string& a, uint16_t port) const {
    return (f == Family::kIpv4 ? a : "[" + a + "]") + ":" + std::to_string(port);
  }
};
}  // namespace

std::string kube_sep_chain(int i, const ServicePort& sp, const topology::PodLayout& ep, Family f) {
  const FamilyText ft{f};
  return kube_chain_name(
      "SEP", port_name(i, sp) + ":" + sp.protocol + ":" + ft.host_port(ft.ip(ep), sp.target_port));
}

namespace {
// Endpoint k of service i: pods taken round-robin over every pod of the cluster.
std::vector<topology::PodLayout> endpoints_from(const std::vector<const topology::PodLayout*>& pods,
                                                int i, int eps) {
  std::vector<topology::PodLayout> out;
  if (pods.empty()) return out;
  for (int k = 0; k < eps && k < static_cast<int>(pods.size()); ++k)
    out.push_back(*pods[(static_cast<size_t>(i) * eps + k) % pods.size()]);
  return out;
}
}  // namespace

std::vector<topology::PodLayout> service_endpoints(const topology::Layout& l, int i, int eps) {
  const auto full = topology::plan(l.spec, l.prefix);
  return endpoints_from(full.pods(), i, eps);
}

RuleSet kube_proxy_rules(const topology::Layout& l, int services, int eps, Family f) {
  RuleSet rs;
  if (services <= 0) return rs;
  if (!l.has(f)) return rs;
  const FamilyText ft{f};
  auto& nat = rs.chains["nat"];
  auto& filter = rs.chains["filter"];
  nat = {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"};
  filter = {"KUBE-FORWARD"};
  auto add = [&](const char* table, const std::string& chain, const std::string& spec) {
    rs.rules.push_back({table, chain, spec});
  };
  add("nat", "PREROUTING", comment("kubernetes service portals") + " -j KUBE-SERVICES");
  add("nat", "OUTPUT", comment("kubernetes service portals") + " -j KUBE-SERVICES");
  add("nat", "POSTROUTING", comment("kubernetes postrouting rules") + " -j KUBE-POSTROUTING");
  add("nat", "KUBE-MARK-MASQ", "-j MARK --set-xmark 0x4000/0x4000");
  add("nat", "KUBE-POSTROUTING", "-m mark ! --mark 0x4000/0x4000 -j RETURN");
  add("nat", "KUBE-POSTROUTING", "-j MARK --set-xmark 0x4000/0x0");
  add("nat", "KUBE-POSTROUTING",
      comment("kubernetes service traffic requiring SNAT") + " -j MASQUERADE --random-fully");
  add("filter", "FORWARD", comment("kubernetes forwarding rules") + " -j KUBE-FORWARD");
  add("filter", "KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP");
  add("filter", "KUBE-FORWARD",
      comment("kubernetes forwarding rules") + " -m mark --mark 0x4000/0x4000 -j ACCEPT");
  add("filter", "KUBE-FORWARD",
      comment("kubernetes forwarding conntrack rule") +
          " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");

  const std::string cluster =
      f == Family::kIpv4 ? l.spec.cluster_cidr.str() : l.spec.cluster_cidr6.str();
  std::vector<Rule> sep_rules, nodeport_rules;
  // Every pod of the cluster, planned once (l may hold only some nodes): every node's kube-proxy
  // must agree on the endpoints.
  const auto full = topology::plan(l.spec, l.prefix);
  const auto all_pods = full.pods();
  // kube-proxy leaves the comments out of the per-endpoint rules (KUBE-SVC -> KUBE-SEP jumps,
  // the KUBE-SEP rules) once the cluster has more than 1,000 endpoint chains — "can reduce size
  // of iptables even by 40%+" (pkg/proxy/iptables/proxier.go: largeClusterMode,
  // appendServiceCommentLocked). Endpoints are counted per service port, as it counts them.
  const size_t endpoint_chains = service_ports().size() * static_cast<size_t>(services) *
                                 std::min(static_cast<size_t>(eps), all_pods.size());
  const bool large_cluster = endpoint_chains > kLargeClusterEndpoints;
  // One KUBE-SVC/KUBE-SEP set per service port and protocol, as kube-proxy writes them; all
  // services' TCP port first, then their UDP port (so TCP's rules are where they always were).
  for (const auto& sp : service_ports()) {
    const std::string proto = sp.protocol;
    const std::string port = std::to_string(sp.port);
    const std::string target = std::to_string(sp.target_port);
    for (int i = 0; i < services; ++i) {
      const std::string name = port_name(i, sp);
      const std::string vip =
          ft.host(f == Family::kIpv4 ? service_ip(l, i).str() : service_ip6(l, i).str());
      const std::string svc = kube_svc_chain(i, sp);
      nat.push_back(svc);
      add("nat", "KUBE-SERVICES",
          "-d " + vip + " -p " + proto + " " + comment(name + " cluster IP") + " -m " + proto +
              " --dport " + port + " -j " + svc);
      add("nat", svc,
          "! -s " + cluster + " -d " + vip + " -p " + proto + " " + comment(name + " cluster IP") +
              " -m " + proto + " --dport " + port + " -j KUBE-MARK-MASQ");
      // NodePort, externalTrafficPolicy Cluster: KUBE-NODEPORTS -> KUBE-EXT (masquerade mark,
      // so the backend answers through this node) -> the service's KUBE-SVC.
      if (const auto np = node_port(i)) {
        const std::string ext = kube_ext_chain(i, sp);
        nat.push_back(ext);
        nodeport_rules.push_back({"nat", "KUBE-NODEPORTS",
                                  "-p " + proto + " " + comment(name) + " -m " + proto +
                                      " --dport " + std::to_string(*np) + " -j " + ext});
        nodeport_rules.push_back(
            {"nat", ext,
             comment("masquerade traffic for " + name + " external destinations") +
                 " -j KUBE-MARK-MASQ"});
        nodeport_rules.push_back({"nat", ext, "-j " + svc});
      }
      auto ends = endpoints_from(all_pods, i, eps);
      // kube-proxy's large-cluster mode: the endpoint rules carry no comment (see below).
      auto ep_comment = [&](const std::string& text) {
        return large_cluster ? std::string() : comment(text) + " ";
      };
      for (size_t k = 0; k < ends.size(); ++k) {
        const std::string ep = ft.host_port(ft.ip(ends[k]), sp.target_port);
        const std::string sep = kube_sep_chain(i, sp, ends[k], f);
        nat.push_back(sep);
        std::string pick = ep_comment(name + " -> " + ep);
        size_t left = ends.size() - k;
        if (left > 1)
          pick += fmt::format("-m statistic --mode random --probability {:.11f} ", 1.0 / left);
        add("nat", svc, pick + "-j " + sep);
        sep_rules.push_back(
            {"nat", sep,
             "-s " + ft.host(ft.ip(ends[k])) + " " + ep_comment(name) + "-j KUBE-MARK-MASQ"});
        sep_rules.push_back({"nat", sep,
                             "-p " + proto + " " + ep_comment(name) + "-m " + proto +
                                 " -j DNAT --to-destination " + ep});
      }
    }
  }
  rs.rules.insert(rs.rules.end(), sep_rules.begin(), sep_rules.end());
  rs.rules.insert(rs.rules.end(), nodeport_rules.begin(), nodeport_rules.end());
  add("nat", "KUBE-SERVICES",
      comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain") +
          " -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
  return rs;
}

LegacyMode::LegacyMode(ModeOptions opts, MasqConfig masq)
    : opts_(std::move(opts)), masq_(std::move(masq)) {}

std::vector<Family> LegacyMode::families(const topology::Layout& l) {
  std::vector<Family> out;
  for (Family f : {Family::kIpv4, Family::kIpv6})
    if (l.has(f)) out.push_back(f);
  return out;
}

RuleSet LegacyMode::rules(const topology::Layout& l, Family f) const {
  if (!l.has(f)) return {};
  // kube-proxy's rules come first in POSTROUTING, as on a node where it started before the agent.
  RuleSet rs = kube_proxy_rules(l, opts_.services, opts_.endpoints_per_service, f);
  RuleSet masq = masq_agent_rules(masq_, f);
  for (auto& [t, cs] : masq.chains) rs.chains[t].insert(rs.chains[t].end(), cs.begin(), cs.end());
  rs.rules.insert(rs.rules.end(), masq.rules.begin(), masq.rules.end());
  return rs;
}

namespace {
// iptables-nft leaves its tables (with empty base chains) behind after the last rule is deleted;
// drop such empty tables so that removal restores the netns as it was.
void drop_empty_nft_tables(const std::string& netns, Family f) {
  for (const char* t : {"nat", "filter"}) {
    auto r = run_cmd({iptables_bin(Backend::kNft, "-save", f), "-t", t},
                     {.netns = netns, .check = false});
    if (r.out.find("\n-A ") != std::string::npos) continue;
    bool own_chain = false;
    for (size_t p = r.out.find("\n:"); p != std::string::npos; p = r.out.find("\n:", p + 1)) {
      std::string chain = r.out.substr(p + 2, r.out.find(' ', p + 2) - p - 2);
      if (chain != "PREROUTING" && chain != "INPUT" && chain != "FORWARD" && chain != "OUTPUT" &&
          chain != "POSTROUTING")
        own_chain = true;
    }
    if (!own_chain)
      run_cmd({"nft", "delete", "table", f == Family::kIpv4 ? "ip" : "ip6", t},
              {.netns = netns, .check = false});
  }
}
}  // namespace

void LegacyMode::apply(const topology::Layout& l) {
  if (opts_.services > kNodePortServices)
    log::info("services {}..{} have no NodePort: the range {}-{} holds {}", kNodePortServices,
              opts_.services - 1, kNodePortFirst, kNodePortLast, kNodePortServices);
  // Per family (IPv6 on a dual-stack cluster: ip6tables), one restore per node.
  std::vector<std::pair<Family, RuleSet>> sets;
  for (Family f : families(l)) sets.emplace_back(f, rules(l, f));
  log::debug("legacy: rules made");
  std::vector<std::function<void()>> jobs;
  for (const auto& n : l.nodes)
    jobs.push_back([&] {
      for (const auto& [f, rs] : sets) restore(n.netns, opts_.backend, rs.restore_apply(), "", f);
      log::debug("legacy: {} restored", n.name);
    });
  try {
    parallel(jobs, 2);
  } catch (...) {
    // All or nothing: take the rules out of every node again (where they never arrived, the
    // deletion fails harmlessly).
    log::warn("legacy mode failed to apply; removing it from every node");
    for (const auto& n : l.nodes)
      for (const auto& [f, rs] : sets) {
        restore(n.netns, opts_.backend, rs.restore_remove(), "", f, false);
        if (opts_.backend == Backend::kNft) drop_empty_nft_tables(n.netns, f);
      }
    throw;
  }
  for (const auto& [f, rs] : sets)
    log::debug("legacy: {} {} rules per node ({} backend)", rs.size(), family_name(f),
               backend_name(opts_.backend));
}

void LegacyMode::remove(const topology::Layout& l) {
  std::vector<std::pair<Family, std::string>> inputs;
  for (Family f : families(l)) inputs.emplace_back(f, rules(l, f).restore_remove());
  std::vector<std::function<void()>> jobs;
  for (const auto& n : l.nodes)
    jobs.push_back([&] {
      for (const auto& [f, input] : inputs) {
        restore(n.netns, opts_.backend, input, "", f);
        if (opts_.backend == Backend::kNft) drop_empty_nft_tables(n.netns, f);
      }
      conntrack_flush(n.netns);
    });
  parallel(jobs, 2);
}

}  // namespace hrb::datapath
