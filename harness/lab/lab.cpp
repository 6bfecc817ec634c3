#include "lab/lab.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "datapath/mode.hpp"
#include "doctor/doctor.hpp"
#include "results/results.hpp"
#include "topology/cluster.hpp"
#include "traffic/reach.hpp"
#include "traffic/sockets.hpp"
#include "traffic/workload.hpp"

namespace hrb::lab {

using traffic::Proto;

const std::vector<std::string>& scenario_names() {
  static const std::vector<std::string> n{"user-rule-bypass", "hybrid-nodes", "istio-like-redirect",
                                          "dual-stack", "os-support"};
  return n;
}

namespace {

datapath::ModeOptions opts(const std::string& name) {
  datapath::ModeOptions o;
  o.name = name;
  o.masq_config = HRB_SOURCE_DIR "/topologies/ip-masq-agent.yaml";
  return o;
}

uint64_t rule_packets(const std::string& netns, const std::string& needle,
                      Family f = Family::kIpv4) {
  uint64_t n = 0;
  for (const auto& c : datapath::rule_counters(netns, datapath::Backend::kNft, {}, f))
    if (c.spec.find(needle) != std::string::npos) n += c.packets;
  return n;
}

nlohmann::json attempt(const std::string& what, const traffic::ReachResult& r) {
  nlohmann::json j{{"flow", what}, {"ok", r.ok}};
  if (r.ok)
    j["serverSaw"] = r.peer_seen.str();
  else
    j["error"] = r.error;
  return j;
}

// --- user-rule-bypass -----------------------------------------------------------------------

std::vector<Verdict> user_rule_bypass(topology::ScopedCluster& c) {
  const auto& l = c.layout();
  const auto& n1 = l.nodes[0];
  const auto &a = n1.pods[0], &b = n1.pods[1];
  const std::vector<std::string> rule{
      "FORWARD", "-s", a.ip.str() + "/32", "-d", b.ip.str() + "/32", "-j", "DROP"};
  auto add = rule, del = rule;
  add.insert(add.begin(), {"iptables-nft", "-I"});
  del.insert(del.begin(), {"iptables-nft", "-D"});
  std::vector<Verdict> out;
  for (const char* m : {"legacy", "ebpf"}) {
    datapath::switch_mode(c.state(), l, opts("none"));
    run_cmd(add, {.netns = n1.netns});
    nlohmann::json ev;
    auto mo = opts(m);
    if (std::string(m) == "ebpf") {
      try {
        datapath::switch_mode(c.state(), l, mo);
        ev["monitor"] = "did not refuse (unexpected)";
      } catch (const Error& e) {
        ev["monitor"] = std::string("refused enablement: ") + e.what();
        mo.force = true;
        datapath::switch_mode(c.state(), l, mo);
      }
    } else {
      datapath::switch_mode(c.state(), l, mo);
    }
    auto r = traffic::reach({Proto::kTcp, a.netns, b.netns, b.ip, 0, 500});
    ev["attempt"] = attempt(a.name + " -> " + b.name + " tcp", r);
    ev["userRulePackets"] = rule_packets(n1.netns, "-j DROP");
    if (std::string(m) == "ebpf") ev["bpfCounters"] = datapath::counters_json(l);
    Verdict v{"user-rule-bypass", m, !r.ok, "", ev};
    v.summary = r.ok ? fmt::format(
                           "the user's DROP rule is bypassed: the connection succeeds and "
                           "the rule counted {} packets",
                           ev["userRulePackets"].get<uint64_t>())
                     : fmt::format("the user's DROP rule is enforced ({} packets dropped)",
                                   ev["userRulePackets"].get<uint64_t>());
    if (std::string(m) == "ebpf")
      v.summary += "; the iptables monitor refuses enablement without --force";
    datapath::switch_mode(c.state(), l, opts("none"));
    run_cmd(del, {.netns = n1.netns, .check = false});
    out.push_back(v);
  }
  return out;
}

// --- hybrid-nodes ---------------------------------------------------------------------------

topology::Layout only(const topology::Layout& l, size_t node) {
  topology::Layout s = l;
  s.nodes = {l.nodes[node]};
  return s;
}

std::vector<Verdict> hybrid_nodes(topology::ScopedCluster& c) {
  const auto& l = c.layout();
  std::vector<Verdict> out;
  // Reference: both nodes in one mode; then node1 ebpf + node2 legacy, with 4 services whose
  // endpoints are spread over both nodes (kube-proxy's DNAT on the client's node).
  auto flows = [&](nlohmann::json& ev) {
    int failed = 0;
    const auto &p1 = l.nodes[0].pods[0], &p2 = l.nodes[1].pods[0];
    const auto& ext = l.externals[0];
    for (auto [from, to] : {std::pair{&p1, &p2}, {&p2, &p1}})
      for (Proto p : {Proto::kTcp, Proto::kUdp}) {
        auto r = traffic::reach({p, from->netns, to->netns, to->ip, 0, 500});
        failed += !r.ok;
        ev["attempts"].push_back(
            attempt(from->name + " -> " + to->name + " " + traffic::proto_name(p), r));
      }
    for (const auto* from : {&p1, &p2}) {
      auto r = traffic::reach({Proto::kTcp, from->netns, ext.netns, ext.address, 0, 500});
      failed += !r.ok;
      ev["attempts"].push_back(attempt(from->name + " -> ext1 tcp", r));
    }
    for (int i = 0; i < 4; ++i) {
      auto eps = datapath::service_endpoints(l, i, 1);
      for (const auto* from : {&p1, &p2}) {
        if (eps[0].name == from->name) continue;
        traffic::ReachSpec s{Proto::kTcp,
                             from->netns,
                             eps[0].netns,
                             datapath::service_ip(l, i),
                             datapath::kServiceTargetPort,
                             500};
        s.dst_port = datapath::kServicePort;
        auto r = traffic::reach(s);
        failed += !r.ok;
        ev["attempts"].push_back(
            attempt(fmt::format("{} -> svc-{} ({}:80, endpoint {})", from->name, i,
                                datapath::service_ip(l, i).str(), eps[0].name),
                    r));
      }
    }
    return failed;
  };
  for (const char* m : {"legacy", "ebpf", "hybrid"}) {
    datapath::switch_mode(c.state(), l, opts("none"));
    nlohmann::json ev{{"attempts", nlohmann::json::array()}};
    std::unique_ptr<datapath::Mode> n1, n2;
    auto o = opts(m);
    o.services = 4;
    if (std::string(m) == "hybrid") {
      auto e = o, g = o;
      e.name = "ebpf";
      g.name = "legacy";
      n1 = datapath::make_mode(e, &c.state());
      n2 = datapath::make_mode(g, &c.state());
      n1->apply(only(l, 0));
      n2->apply(only(l, 1));
    } else {
      datapath::switch_mode(c.state(), l, o);
    }
    int failed = flows(ev);
    for (const auto& n : l.nodes) {
      ev["conntrackEntries"][n.name] = datapath::conntrack_count(n.netns);
      ev["invalidDrops"][n.name] = rule_packets(n.netns, "--ctstate INVALID -j DROP");
    }
    if (std::string(m) != "legacy") ev["bpfCounters"] = datapath::counters_json(l);
    if (n1) {
      n1->remove(only(l, 0));
      n2->remove(only(l, 1));
    }
    int total = static_cast<int>(ev["attempts"].size());
    Verdict v{"hybrid-nodes", m, failed == 0,
              failed == 0 ? fmt::format("all {} flows work", total)
                          : fmt::format("{} of {} flows fail", failed, total),
              ev};
    if (failed) {
      std::string which;
      for (const auto& a : ev["attempts"])
        if (!a["ok"].get<bool>())
          which += (which.empty() ? "" : "; ") + a["flow"].get<std::string>();
      v.summary += ": " + which;
    }
    out.push_back(v);
  }
  datapath::switch_mode(c.state(), l, opts("none"));
  return out;
}

// --- istio-like-redirect --------------------------------------------------------------------

// Which listener gets a connection from pod a to pod b:8080 — the real server in b, or a
// "sidecar" proxy on port 15001 (in the node netns for node-level capture, in pod a's netns for
// pod-level capture)?
struct Capture {
  bool at_proxy = false, at_server = false;
};

Capture connect_and_see(const topology::PodLayout& a, const topology::PodLayout& b,
                        const std::string& proxy_netns) {
  auto listen_in = [](const std::string& ns, uint16_t port) {
    return run_in_netns(ns, [&] {
      Fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      int one = 1;
      setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      traffic::SockAddr sa(Ipv4{0}, port);
      if (bind(s.get(), sa.ptr(), sa.len) != 0 || listen(s.get(), 4))
        throw_errno("listen in " + ns);
      return s;
    });
  };
  Fd server = listen_in(b.netns, 8080), proxy = listen_in(proxy_netns, 15001);
  Fd client = run_in_netns(a.netns, [] {
    Fd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    return c;
  });
  traffic::SockAddr dst(b.ip, 8080);
  connect(client.get(), dst.ptr(), dst.len);
  traffic::wait_fd(client.get(), POLLOUT, 1000);
  return {traffic::wait_fd(proxy.get(), POLLIN, 300), traffic::wait_fd(server.get(), POLLIN, 300)};
}

std::vector<Verdict> istio_like_redirect(topology::ScopedCluster& c) {
  const auto& l = c.layout();
  const auto& n1 = l.nodes[0];
  const auto &a = n1.pods[0], &b = l.nodes[1].pods[0];
  std::vector<Verdict> out;
  struct Variant {
    const char* name;
    std::string netns;
    std::vector<std::string> rule;  // nat rule spec (after -I)
    std::string proxy_netns;
  } variants[] = {
      // Node-level capture (ambient-style): the node's PREROUTING sends the pod's outbound TCP
      // to a proxy on the node. DNAT to the node's address: the lxc side has none to REDIRECT to.
      {"node-level",
       n1.netns,
       {"PREROUTING", "-i", a.lxc, "-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination",
        n1.router_ip.str() + ":15001"},
       n1.netns},
      // Pod-level capture (sidecar-style): the pod's own OUTPUT chain redirects to the sidecar.
      {"pod-level",
       a.netns,
       {"OUTPUT", "-p", "tcp", "--dport", "8080", "-j", "REDIRECT", "--to-ports", "15001"},
       a.netns},
  };
  for (const auto& var : variants) {
    for (const char* m : {"legacy", "ebpf"}) {
      datapath::switch_mode(c.state(), l, opts("none"));
      auto add = var.rule, del = var.rule;
      add.insert(add.begin(), {"iptables-nft", "-t", "nat", "-I"});
      del.insert(del.begin(), {"iptables-nft", "-t", "nat", "-D"});
      run_cmd(add, {.netns = var.netns});
      auto mo = opts(m);
      mo.force = true;  // the capture rule is user-installed as far as the monitor knows
      datapath::switch_mode(c.state(), l, mo);
      auto cap = connect_and_see(a, b, var.proxy_netns);
      nlohmann::json ev{
          {"capture", var.name},
          {"acceptedBySidecar", cap.at_proxy},
          {"acceptedByServer", cap.at_server},
          {"captureRulePackets", rule_packets(var.netns, var.rule[var.rule.size() - 3])}};
      if (std::string(m) == "ebpf") ev["bpfCounters"] = datapath::counters_json(l);
      Verdict v{"istio-like-redirect", std::string(m) + " (" + var.name + ")", cap.at_proxy,
                cap.at_proxy ? std::string("outbound TCP is captured to the sidecar port by the ") +
                                   var.name + " rule"
                : cap.at_server ? std::string("the ") + var.name +
                                      " capture is bypassed: the connection goes straight to the "
                                      "server, the sidecar never sees it"
                                : "the connection reached neither the sidecar nor the server",
                ev};
      out.push_back(v);
      datapath::switch_mode(c.state(), l, opts("none"));
      run_cmd(del, {.netns = var.netns, .check = false});
    }
  }
  return out;
}

// --- dual-stack -----------------------------------------------------------------------------

double ping_rtt_us(const std::string& netns, const std::string& dst, bool v6) {
  auto r = run_cmd({"ping", v6 ? "-6" : "-4", "-c", "200", "-i", "0.002", "-q", "-W", "1", dst},
                   {.netns = netns, .check = false});
  auto at = r.out.find("= ");
  if (!r.ok() || at == std::string::npos) return -1;
  std::string nums = r.out.substr(at + 2);  // min/avg/max/mdev
  auto s1 = nums.find('/');
  return std::stod(nums.substr(s1 + 1)) * 1000.0;
}

// tcp_rr and udp_rr from pod a to pod b over each family: the generators speak both. Client and
// server share one CPU, so a transaction costs its CPU work (no idle wake-ups, docs/traffic.md)
// and the two families' paths compare directly.
nlohmann::json rr_by_family(const topology::PodLayout& a, const topology::PodLayout& b) {
  nlohmann::json out;
  for (auto kind : {traffic::Kind::kTcpRr, traffic::Kind::kUdpRr})
    for (const auto& [family, dst] :
         {std::pair{"ipv4", traffic::IpAddr(b.ip)}, {"ipv6", traffic::IpAddr(b.ip6)}}) {
      traffic::WorkloadSpec w;
      w.kind = kind;
      w.client_netns = a.netns;
      w.server_netns = b.netns;
      w.dst = dst;
      w.duration_s = 0.5;
      w.warmup_s = 0.1;
      w.client_cpu = w.server_cpu = traffic::first_allowed_cpu();
      auto r = traffic::run_workload(w);
      out[traffic::kind_name(kind)][family] = {{"transactionsPerSecond", r.transactions_per_s()},
                                               {"latencyP50Us", r.latency.percentile(50) / 1000.0},
                                               {"errors", r.errors}};
    }
  return out;
}

// Packets counted under `reason` by every BPF program of every node (counters_json's
// node -> program -> reason -> count).
uint64_t bpf_reason_total(const nlohmann::json& counters, const std::string& reason) {
  uint64_t n = 0;
  for (const auto& [node, progs] : counters.items())
    for (const auto& [prog, reasons] : progs.items())
      if (reasons.contains(reason)) n += reasons[reason].get<uint64_t>();
  return n;
}

// On a dual-stack cluster (the topology's IPv6: every pod, node and external host has its
// address from the layout, `hrbench up` assigned them): IPv6 pod-to-pod across nodes in legacy
// and ebpf mode, and the performance pair (tcp_rr, udp_rr) per family.
std::vector<Verdict> dual_stack(topology::ScopedCluster& c) {
  const auto& l = c.layout();
  const auto &a = l.nodes[0].pods[0], &b = l.nodes[1].pods[0];
  const std::string b6 = b.ip6.str();
  std::vector<Verdict> out;
  for (const char* m : {"legacy", "ebpf"}) {
    datapath::switch_mode(c.state(), l, opts(m));
    const bool ebpf = std::string(m) == "ebpf";
    auto ip6_rule_packets = [&] {
      uint64_t n = 0;
      for (const auto& node : l.nodes) n += rule_packets(node.netns, "", Family::kIpv6);
      return n;
    };
    auto bpf6 = [&] {
      if (!ebpf) return uint64_t{0};
      const auto j = datapath::counters_json(l);
      return bpf_reason_total(j, "redirect_peer6") + bpf_reason_total(j, "redirect_fib6") +
             bpf_reason_total(j, "redirect_neigh6");
    };
    const uint64_t rules_before = ip6_rule_packets(), bpf_before = bpf6();
    // Reachable when any of 5 echoes comes back (the first may wait for neighbour discovery).
    auto v6 = run_cmd({"ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", b6},
                      {.netns = a.netns, .check = false});
    double rtt6 = ping_rtt_us(a.netns, b6, true);
    // What carried the IPv6 pings: ip6tables rules (the stack's path) or the BPF IPv6 redirects.
    const uint64_t rules6 = ip6_rule_packets() - rules_before, bpf6_packets = bpf6() - bpf_before;
    double rtt4 = ping_rtt_us(a.netns, b.ip.str(), false);
    const nlohmann::json counters = ebpf ? datapath::counters_json(l) : nlohmann::json();
    nlohmann::json ev{{"ipv6Reachable", v6.ok()},
                      {"client", a.name + " " + a.ip6.str()},
                      {"server", b.name + " " + b6},
                      {"pingRttUs", {{"ipv4", rtt4}, {"ipv6", rtt6}}},
                      {"bpfCountersAfterPings", counters}};
    ev["ip6tablesRulePacketsDuringPings"] = rules6;
    if (ebpf) ev["bpfIpv6RedirectsDuringPings"] = bpf6_packets;
    if (v6.ok()) ev["rr"] = rr_by_family(a, b);
    Verdict v{"dual-stack", m, v6.ok(), "", ev};
    const std::string path =
        ebpf ? fmt::format("; forwarded by BPF: {} IPv6 redirects, {} ip6tables rule hits",
                           bpf6_packets, rules6)
             : fmt::format("; through the stack: {} ip6tables rule hits", rules6);
    v.summary = v6.ok() ? fmt::format(
                              "IPv6 pod-to-pod works (tcp_rr {:.0f}/s vs IPv4 {:.0f}/s; "
                              "ping RTT {:.0f} us vs {:.0f} us){}",
                              ev["rr"]["tcp_rr"]["ipv6"]["transactionsPerSecond"].get<double>(),
                              ev["rr"]["tcp_rr"]["ipv4"]["transactionsPerSecond"].get<double>(),
                              rtt6, rtt4, path)
                        : "IPv6 pod-to-pod fails: " + v6.out + v6.err;
    out.push_back(v);
  }
  datapath::switch_mode(c.state(), l, opts("none"));
  return out;
}

// --- os-support -----------------------------------------------------------------------------

std::vector<Verdict> os_support() {
  std::vector<Verdict> out;
  for (const auto& ch : doctor::run_checks()) {
    static const std::set<std::string> wanted{"kernel",        "btf",           "tcx_attach",
                                              "clsact_attach", "redirect_peer", "redirect_neigh",
                                              "fib_lookup",    "bpf_lsm",       "cgroup_sockopt"};
    if (!wanted.count(ch.id)) continue;
    out.push_back(
        {"os-support",
         ch.id,
         ch.ok,
         ch.feature + ": " + ch.detail.substr(0, ch.detail.find('\n')),
         {{"detail", ch.detail}, {"fix", ch.fix}, {"requiredByDefaultRun", ch.required}}});
  }
  return out;
}

}  // namespace

std::vector<Verdict> run(const std::vector<std::string>& scenarios, const LabOptions& o,
                         const std::atomic<bool>& interrupted) {
  for (const auto& s : scenarios)
    if (std::find(scenario_names().begin(), scenario_names().end(), s) == scenario_names().end())
      throw Error("unknown lab scenario '" + s +
                      "' (user-rule-bypass, hybrid-nodes, "
                      "istio-like-redirect, dual-stack, os-support)",
                  ExitCode::kUsage);
  if (!topology::parse_spec_file(o.topology).has_ipv4())
    throw Error("lab: --topology " + o.topology +
                    " is single-stack IPv6 (family: ipv6); the lab's scenarios measure IPv4 "
                    "(dual-stack: IPv4 and IPv6): give a topology of family ipv4 or dual",
                ExitCode::kUsage);
  std::vector<Verdict> all;
  for (const auto& s : scenarios) {
    if (interrupted) break;
    if (o.progress) o.progress(s);
    std::vector<Verdict> v;
    if (s == "os-support") {
      v = os_support();
    } else {
      // A fresh cluster per scenario; dual-stack's is dual stack (--topology when it is, else
      // topologies/dual-stack.yaml).
      const std::string topo =
          s != "dual-stack" || topology::parse_spec_file(o.topology).dual() ? o.topology
          : o.dual_topology.empty() ? HRB_SOURCE_DIR "/topologies/dual-stack.yaml"
                                    : o.dual_topology;
      topology::ScopedCluster c(topo, o.prefix);
      if (s == "user-rule-bypass") v = user_rule_bypass(c);
      if (s == "hybrid-nodes") v = hybrid_nodes(c);
      if (s == "istio-like-redirect") v = istio_like_redirect(c);
      if (s == "dual-stack") v = dual_stack(c);
    }
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

std::string render_text(const std::vector<Verdict>& vs) {
  std::string s =
      fmt::format("{:<20} {:<15} {:<7} {}\n", "scenario", "mode", "verdict", "what happened");
  for (const auto& v : vs)
    s += fmt::format("{:<20} {:<15} {:<7} {}\n", v.scenario, v.mode, v.works ? "works" : "BREAKS",
                     v.summary);
  return s;
}

results::LabDocument to_document(const std::vector<Verdict>& vs, const std::string& command) {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  results::LabDocument doc;
  doc.schema_version = 1;
  doc.started_at = b;
  doc.command = command;
  doc.environment = results::environment();
  doc.verdicts = vs;
  for (auto& v : doc.verdicts) results::sanitize(v.evidence);  // the only figures of the document
  return doc;
}

}  // namespace hrb::lab
