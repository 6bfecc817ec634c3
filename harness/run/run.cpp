#include "run/run.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/perf.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "metrics/cpu.hpp"
#include "metrics/profile.hpp"
#include "results/profiles.hpp"
#include "results/results.hpp"
#include "run/shard.hpp"
#include "topology/cluster.hpp"
#include "traffic/pps.hpp"
#include "traffic/workload.hpp"

namespace hrb::run {

using Clock = std::chrono::steady_clock;

void apply_preset(RunConfig& c, const std::string& p) {
  if (p == "quick") {
    c.repetitions = 1;
    c.duration_s = 1;
    c.warmup_s = 0.3;
  } else if (p == "thorough") {
    c.repetitions = 7;
    c.duration_s = 10;
    c.warmup_s = 2;
  } else {
    throw Error("unknown preset '" + p + "' (quick | thorough)", ExitCode::kUsage);
  }
}

namespace {
const std::vector<std::string> kScenarios{"pod-pod-same-node", "pod-pod-cross-node",
                                          "pod-service",       "pod-external",
                                          "node-node",         "external-nodeport"};
const std::string kPodService = "pod-service";
const std::string kExternalNodePort = "external-nodeport";
// The scenarios that measure a service of the cluster's service list (pod_service_index).
bool service_scenario(const std::string& s) { return s == kPodService || s == kExternalNodePort; }

struct Endpoints {
  std::string client_name, server_name, client_netns, server_netns;
  traffic::IpAddr dst;
  const topology::NodeLayout* server_node = nullptr;  // when the server is a pod: its node
  const topology::PodLayout* server_pod = nullptr;    // … and the pod (pps sends into it)
  // pod-service: the client sends to dst:port (the VIP), the backends listen on server_port
  // (the targetPort); the first backend is server_netns, the others more_server_netns.
  uint16_t port = 0, server_port = 0;
  std::vector<std::string> more_server_netns;
  int service = -1;  // the service's index
};

// The endpoints of scenario `s` over family `f` (IPv6: the layout's IPv6 addresses, the service's
// IPv6 ClusterIP; a cluster that is not dual stack has none).
std::optional<Endpoints> scenario_endpoints(const topology::Layout& l, const std::string& s,
                                            int eps, Family f = Family::kIpv4) {
  if (l.nodes.empty()) return std::nullopt;
  if (!l.has(f)) return std::nullopt;
  const bool v6 = f == Family::kIpv6;
  auto addr = [v6](const Ipv4& a, const Ipv6& a6) {
    return v6 ? traffic::IpAddr(a6) : traffic::IpAddr(a);
  };
  if (service_scenario(s)) {
    // pod-service: node1's first pod to the ClusterIP; external-nodeport: the external host to
    // node1's IP at the service's NodePort. Either way the backends are node2's pods.
    const int i = pod_service_index(l, eps);
    if (i < 0) return std::nullopt;
    const bool nodeport = s == kExternalNodePort;
    if (nodeport ? l.externals.empty() || !datapath::node_port(i) : l.nodes[0].pods.empty())
      return std::nullopt;
    const auto backends = datapath::service_endpoints(l, i, eps);
    Endpoints e;
    if (nodeport) {
      e = {l.externals[0].name, "", l.externals[0].netns, backends[0].netns,
           addr(l.nodes[0].underlay_ip, l.nodes[0].underlay_ip6)};
      e.port = *datapath::node_port(i);
    } else {
      const auto& client = l.nodes[0].pods[0];
      e = {client.name, "", client.netns, backends[0].netns,
           addr(datapath::service_ip(l, i), v6 ? datapath::service_ip6(l, i) : Ipv6{})};
      e.port = datapath::kServicePort;
    }
    e.server_port = datapath::kServiceTargetPort;
    e.service = i;
    e.server_name =
        fmt::format("svc-{} {}{} ->", i, nodeport ? "NodePort " : "", e.dst.host_port(e.port));
    for (size_t k = 0; k < backends.size(); ++k) {
      e.server_name += fmt::format("{}{}:{}", k ? ", " : " ", backends[k].name, e.server_port);
      if (k) e.more_server_netns.push_back(backends[k].netns);
    }
    return e;
  }
  const auto& n1 = l.nodes[0];
  auto to_pod = [&](const topology::PodLayout& from, const topology::NodeLayout& node,
                    const topology::PodLayout& to) {
    return Endpoints{from.name, to.name, from.netns, to.netns, addr(to.ip, to.ip6), &node, &to};
  };
  if (s == "pod-pod-same-node" && n1.pods.size() >= 2) return to_pod(n1.pods[0], n1, n1.pods[1]);
  if (s == "pod-pod-cross-node" && l.nodes.size() >= 2 && !n1.pods.empty() &&
      !l.nodes[1].pods.empty())
    return to_pod(n1.pods[0], l.nodes[1], l.nodes[1].pods[0]);
  if (s == "pod-external" && !n1.pods.empty() && !l.externals.empty())
    return Endpoints{n1.pods[0].name, l.externals[0].name, n1.pods[0].netns, l.externals[0].netns,
                     addr(l.externals[0].address, l.externals[0].address6)};
  if (s == "node-node" && l.nodes.size() >= 2)
    return Endpoints{n1.name, l.nodes[1].name, n1.netns, l.nodes[1].netns,
                     addr(l.nodes[1].underlay_ip, l.nodes[1].underlay_ip6)};
  return std::nullopt;
}

// The KUBE-SEP chains of service `i` (every port, every endpoint) in family f's tables.
std::set<std::string> sep_chains(const topology::Layout& l, int i, int eps, Family f) {
  std::set<std::string> out;
  for (const auto& sp : datapath::service_ports())
    for (const auto& ep : datapath::service_endpoints(l, i, eps))
      out.insert(datapath::kube_sep_chain(i, sp, ep, f));
  return out;
}

std::string git_revision() {
  auto r =
      run_cmd({"git", "-C", HRB_SOURCE_DIR, "rev-parse", "--short=12", "HEAD"}, {.check = false});
  std::string s = r.ok() ? r.out.substr(0, r.out.find('\n')) : "unknown";
  auto d = run_cmd({"git", "-C", HRB_SOURCE_DIR, "status", "--porcelain", "--untracked-files=no"},
                   {.check = false});
  if (d.ok() && !d.out.empty()) s += "-dirty";
  return s;
}

// `pps` is not a socket workload: XDP live frames injected at the server node's uplink, so it
// measures the receiving half of pod-pod-cross-node (uplink -> pod) and runs in that scenario only.
const std::string kPps = "pps";

// The CPU figures every trial has.
double steal_fraction(const metrics::CpuTimes& cpu) {
  const double total = cpu.total();
  return total > 0 ? cpu.steal / total : 0.0;
}
nlohmann::json cpu_metrics(const metrics::CpuTimes& cpu) {
  return {{"stealFraction", steal_fraction(cpu)}, {"cpuBusySeconds", cpu.busy()}};
}

// Figures derived from a workload result and the CPU time it took.
nlohmann::json derive_metrics(const traffic::WorkloadResult& r, const metrics::CpuTimes& cpu) {
  nlohmann::json m = cpu_metrics(cpu);
  const double busy = cpu.busy();
  switch (r.kind) {
    case traffic::Kind::kTcpRr:
    case traffic::Kind::kTcpCrr:
    case traffic::Kind::kUdpRr:
      m["transactionsPerSecond"] = r.transactions_per_s();
      m["transactions"] = r.transactions;
      m["latencyUs"] = {
          {"p50", r.latency.percentile(50) / 1e3}, {"p90", r.latency.percentile(90) / 1e3},
          {"p99", r.latency.percentile(99) / 1e3}, {"p999", r.latency.percentile(99.9) / 1e3},
          {"max", r.latency.max() / 1e3},          {"mean", r.latency.mean() / 1e3}};
      if (r.transactions) m["cpuUsPerTransaction"] = busy * 1e6 / r.transactions;
      break;
    case traffic::Kind::kTcpStream:
    case traffic::Kind::kUdpStream:
      m["gbitPerSecond"] = r.gbit_per_s();
      m["bytes"] = r.bytes;
      if (r.bytes) m["cpuSecondsPerGB"] = busy / (r.bytes / 1e9);
      if (r.kind == traffic::Kind::kTcpStream) m["tcpRetransmits"] = r.tcp_retransmits;
      if (r.kind == traffic::Kind::kUdpStream && r.udp_sent)
        m["udpLossRatio"] = static_cast<double>(r.udp_lost) / r.udp_sent;
      break;
  }
  return m;
}

// Packets counted by every rule in the nodes, and by the rules of the chains `in` (one
// iptables-save, or ip6tables-save for an IPv6 trial, per node).
struct RulePackets {
  uint64_t all = 0, in = 0;
};
RulePackets iptables_packets(const topology::Layout& l, datapath::Backend b,
                             const std::set<std::string>& in, Family f) {
  RulePackets n;
  for (const auto& node : l.nodes)
    for (const auto& c : datapath::rule_counters(node.netns, b, {}, f)) {
      n.all += c.packets;
      if (in.count(c.chain)) n.in += c.packets;
    }
  return n;
}

nlohmann::json counters_delta(const nlohmann::json& before, const nlohmann::json& after) {
  nlohmann::json d = nlohmann::json::object();
  for (auto& [node, progs] : after.items())
    for (auto& [prog, reasons] : progs.items())
      for (auto& [reason, v] : reasons.items()) {
        uint64_t b = before.contains(node) && before[node].contains(prog) &&
                             before[node][prog].contains(reason)
                         ? before[node][prog][reason].get<uint64_t>()
                         : 0;
        uint64_t delta = v.get<uint64_t>() - b;
        if (delta) d[node][prog][reason] = delta;
      }
  return d;
}

class Reporter {
 public:
  Reporter(const Progress& p, size_t total) : p_(p), total_(total), start_(Clock::now()) {}
  void trial(size_t k, const std::string& what) {
    double el = std::chrono::duration<double>(Clock::now() - start_).count();
    double eta = k > 1 ? el / (k - 1) * (total_ - k + 1) : 0;
    if (p_.tty) {
      std::cerr << fmt::format("\r\033[K[{}/{}] {}  elapsed {:.0f}s  ETA {:.0f}s", k, total_, what,
                               el, eta)
                << std::flush;
    } else {
      log::info("trial {}/{}: {} (elapsed {:.0f}s, ETA {:.0f}s)", k, total_, what, el, eta);
    }
  }
  void set_total(size_t total) { total_ = total; }
  void note(const std::string& s) {
    if (p_.tty) std::cerr << "\r\033[K";
    log::info("{}", s);
  }
  void done() {
    if (p_.tty) std::cerr << "\r\033[K";
  }

 private:
  Progress p_;
  size_t total_;
  Clock::time_point start_;
};

}  // namespace

std::string make_run_id() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", std::gmtime(&t));
  std::random_device rd;
  return fmt::format("{}-{:04x}", b, rd() & 0xffff);
}

int pod_service_index(const topology::Layout& l, int eps) {
  if (l.nodes.size() < 2 || eps < 1) return -1;
  const int pods = static_cast<int>(l.spec.node_count * l.spec.pods_per_node);
  // The endpoints of service i repeat with period `pods` in i: look no further.
  for (int i = 0; i < pods; ++i) {
    const auto ends = datapath::service_endpoints(l, i, eps);
    if (static_cast<int>(ends.size()) == eps &&
        std::all_of(ends.begin(), ends.end(), [](const auto& p) { return p.node == 1; }))
      return i;
  }
  return -1;
}

void validate_mode_names(const std::vector<std::string>& modes,
                         const datapath::ModeOptions& options) {
  for (const auto& m : modes) {
    try {
      datapath::parse_mode(m, options);  // KIND or KIND@DIR (datapath/mode.hpp)
    } catch (const Error& e) {
      throw Error(std::string("--modes: ") + e.what(), e.code());
    }
  }
}

TrialMode trial_mode(const std::string& mode, const datapath::ModeOptions& run_options,
                     uint32_t calibration_delay_loops) {
  const auto parsed = datapath::parse_mode(mode, run_options);
  TrialMode t{parsed.options};  // the kind, and another build's objects (KIND@DIR)
  // ebpf-delay: the gate's calibration, ebpf slowed down on purpose.
  if (parsed.calibration_delay) t.options.delay_loops = calibration_delay_loops;
  t.bpf = t.options.name == "ebpf" || t.options.name == "bpf-lb";
  t.rules = t.options.name == "legacy" || t.bpf;
  return t;
}

std::vector<Family> parse_families(const std::vector<std::string>& names) {
  std::vector<Family> out;
  for (const auto& n : names) {
    const auto f = parse_family(n);
    if (!f) throw Error("--families: unknown family '" + n + "' (ipv4, ipv6)", ExitCode::kUsage);
    if (std::find(out.begin(), out.end(), *f) != out.end())
      throw Error("--families: " + n + " is named twice", ExitCode::kUsage);
    out.push_back(*f);
  }
  if (out.empty()) throw Error("--families: name one or both of ipv4, ipv6", ExitCode::kUsage);
  return out;
}

void validate(const RunConfig& c) {
  validate_mode_names(c.modes, c.mode_options);
  if (c.families.empty())
    throw Error("--families: name one or both of ipv4, ipv6", ExitCode::kUsage);
  for (const auto& s : c.scenarios)
    if (std::find(kScenarios.begin(), kScenarios.end(), s) == kScenarios.end())
      throw Error("--scenarios: unknown scenario '" + s +
                      "' (pod-pod-same-node, pod-pod-cross-node, pod-service, pod-external, "
                      "node-node, external-nodeport)",
                  ExitCode::kUsage);
  for (const auto& w : c.workloads)
    if (w != kPps) traffic::parse_kind(w);
  if (c.repetitions < 1 || c.repetitions > 1000)
    throw Error("--repetitions must be 1..1000", ExitCode::kUsage);
  if (!(c.duration_s > 0) || c.warmup_s < 0)
    throw Error("--duration must be > 0 and --warmup >= 0", ExitCode::kUsage);
  if (!c.scan_param.empty() && c.scan_param != "services" && c.scan_param != "flows")
    throw Error("--scan: unknown parameter '" + c.scan_param + "' (services | flows)",
                ExitCode::kUsage);
  traffic::check_cpu(c.client_cpu, "--pin-cpus (client)");
  traffic::check_cpu(c.server_cpu, "--pin-cpus (server)");
  if (c.alternate_s < 0 || !std::isfinite(c.alternate_s))
    throw Error("--alternate must be a segment length in seconds > 0", ExitCode::kUsage);
  if (c.alternate_s > 0) {
    if (c.alternate_s < 0.005 || c.alternate_s > c.duration_s / 2)
      throw Error(fmt::format("--alternate {}: a segment must be 0.005 s to half of --duration "
                              "({} s), so that every mode gets segments",
                              c.alternate_s, c.duration_s / 2),
                  ExitCode::kUsage);
    if (c.alternate_settle_s < 0 || c.alternate_settle_s >= c.alternate_s / 2)
      throw Error("alternation: the settling time must be under half a segment", ExitCode::kUsage);
    alternated_mode(c, c.mode_options);  // the modes: variants of one BPF mode
    for (const auto& s : c.scenarios)
      if (s == "node-node")
        throw Error(
            "--alternate: scenario node-node is measured in mode none, which cannot be "
            "alternated with the BPF modes; leave it out of --scenarios",
            ExitCode::kUsage);
    for (const auto& w : c.workloads)
      if (w == kPps || w == "udp_stream")
        throw Error("--alternate: workload " + w +
                        " cannot be split into segments (tcp_rr, tcp_crr, tcp_stream, udp_rr)",
                    ExitCode::kUsage);
  }
  if (!c.scan_param.empty() && c.scan_values.empty())
    throw Error("--scan " + c.scan_param + " needs values, e.g. --scan services=0,1000,5000",
                ExitCode::kUsage);
  if (c.shard) check_shard(*c.shard, c);
  // --output: an existing directory (<run id>.json goes into it) or a file in one.
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!c.output.empty() && !fs::is_directory(c.output, ec)) {
    if (c.output.back() == '/')
      throw Error("--output: directory " + c.output +
                      " does not exist (expected a results file or an existing directory)",
                  ExitCode::kUsage);
    const fs::path parent = fs::path(c.output).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw Error("--output: " + c.output + ": directory " + parent.string() +
                      " does not exist (expected a results file in an existing directory, or "
                      "an existing directory)",
                  ExitCode::kUsage);
  }
}

std::string results_path(const std::string& output, const std::string& run_id) {
  std::error_code ec;
  if (output.empty()) return std::string(HRB_SOURCE_DIR) + "/results/" + run_id + ".json";
  if (std::filesystem::is_directory(output, ec))
    return (std::filesystem::path(output) / (run_id + ".json")).string();
  return output;
}
RunConfig config_of_results(const results::Run& doc) {
  const auto& j = doc.config;
  auto need = [](const auto& v, const char* what) {
    if (!v) throw Error(fmt::format("{} is not recorded", what), ExitCode::kBadInput);
    return *v;
  };
  RunConfig c;
  c.topology = need(doc.topology.file, "topology.file");
  c.duration_s = need(j.duration_seconds, "config.durationSeconds");
  c.warmup_s = need(j.warmup_seconds, "config.warmupSeconds");
  c.flows = j.flows.value_or(1);
  c.msg_size = j.message_size.value_or(0);
  c.max_retries = j.max_retries.value_or(1);
  c.max_steal_fraction = j.max_steal_fraction.value_or(0.10);
  c.mode_options = datapath::ModeOptions::from_json(need(j.mode_options, "config.modeOptions"));
  c.calibration_delay_loops = j.calibration_delay_loops.value_or(0);
  c.alternate_s = j.alternate_seconds.value_or(0);
  if (j.pinned_cpus) {
    c.client_cpu = (*j.pinned_cpus)[0];
    c.server_cpu = (*j.pinned_cpus)[1];
  }
  c.modes.clear();
  c.scenarios.clear();
  c.workloads.clear();
  // The families are the run's (a file without them measured IPv4).
  if (j.families) c.families = parse_families(*j.families);
  return c;
}

std::vector<PlannedTrial> plan_trials(const RunConfig& cfg,
                                      const std::vector<std::string>& scenarios,
                                      const std::vector<int>& scan_values,
                                      const datapath::ModeOptions& run_options) {
  const bool scanning = !cfg.scan_param.empty();
  const std::vector<int> values = scanning ? scan_values : std::vector<int>{0};
  const bool ceiling =
      std::find(scenarios.begin(), scenarios.end(), "node-node") != scenarios.end();
  std::vector<PlannedTrial> plan;
  for (int sv : values)
    for (int rep = 0; rep < cfg.repetitions; ++rep) {
      std::vector<std::string> order;
      if (ceiling) order.push_back("none");
      std::vector<std::string> modes = cfg.modes;
      if (rep % 2 == 1) std::reverse(modes.begin(), modes.end());
      order.insert(order.end(), modes.begin(), modes.end());
      for (const auto& mode : order) {
        TrialMode setting = trial_mode(mode, run_options, cfg.calibration_delay_loops);
        if (cfg.scan_param == "services") setting.options.services = sv;
        for (const auto& s : scenarios) {
          if ((mode == "none") != (s == "node-node")) continue;
          for (const auto& w : cfg.workloads) {
            if (w == kPps && s != "pod-pod-cross-node") continue;
            for (Family f : cfg.families) {
              if (w == kPps && f != Family::kIpv4) continue;  // IPv4 frames
              PlannedTrial t{mode, s, w, f, rep};
              if (scanning) t.scan = results::TrialScan{.param = cfg.scan_param, .value = sv};
              t.flows = cfg.scan_param == "flows" ? sv : cfg.flows;
              t.setting = setting;
              plan.push_back(std::move(t));
            }
          }
        }
      }
    }
  return plan;
}

MatrixPlan plan_matrix(const RunConfig& cfg, const topology::Layout& layout) {
  const int eps = cfg.mode_options.endpoints_per_service;
  for (Family f : cfg.families) topology::require_family(layout.spec, f, "--families");
  MatrixPlan p;
  for (const auto& s : cfg.scenarios) {
    if (scenario_endpoints(layout, s, eps, cfg.families.front())) {
      p.scenarios.push_back(s);
    } else if (service_scenario(s) && pod_service_index(layout, eps) < 0) {
      log::warn(
          "scenario {} is not possible on topology {}: no service with {} endpoint(s) "
          "has them all on node2 (endpoints are pods taken round-robin; node2 has {} pods); "
          "skipped",
          s, layout.spec.name, eps, layout.nodes.size() >= 2 ? layout.nodes[1].pods.size() : 0);
    } else {
      log::warn("scenario {} is not possible on topology {}; skipped", s, layout.spec.name);
    }
  }
  // pod-service and external-nodeport need their service to exist: the run's service count is
  // at least index + 1, for every trial of the run (services belong to the mode, not to a
  // scenario), and the results record the count that was installed (config.modeOptions.services,
  // scan values).
  p.mode_options = cfg.mode_options;
  p.scan_values = cfg.scan_values;
  for (const auto& s : p.scenarios) {
    if (!service_scenario(s)) continue;
    const auto ep = *scenario_endpoints(layout, s, eps, cfg.families.front());
    const int need = ep.service + 1;
    if (p.mode_options.services < need) {
      log::info("{}: {} service(s) instead of {} (its service svc-{} must exist)", s, need,
                p.mode_options.services, ep.service);
      p.mode_options.services = need;
    }
    if (cfg.scan_param == "services")
      for (auto& v : p.scan_values)
        if (v < need) {
          log::info("{}: scan value services={} measured with {} services", s, v, need);
          v = need;
        }
    results::ServiceTarget target{
        .service_index = ep.service,
        .ip = ep.dst.str(),
        .port = ep.port,
        .target_port = ep.server_port,
        .backends =
            static_cast<int64_t>(datapath::service_endpoints(layout, ep.service, eps).size()),
        .server = ep.server_name,
        .services_requested = cfg.mode_options.services,
        .minimum_services = need,
    };
    (s == kPodService ? p.pod_service : p.external_node_port) = target;
  }
  if (std::find(cfg.workloads.begin(), cfg.workloads.end(), kPps) != cfg.workloads.end()) {
    if (std::find(p.scenarios.begin(), p.scenarios.end(), "pod-pod-cross-node") ==
        p.scenarios.end())
      throw Error(
          "--workloads pps runs in scenario pod-pod-cross-node only (frames are injected "
          "at the server node's uplink); add it to --scenarios",
          ExitCode::kUsage);
    if (p.scenarios.size() > 1) log::info("pps: measured in pod-pod-cross-node only");
    if (std::find(cfg.families.begin(), cfg.families.end(), Family::kIpv4) == cfg.families.end())
      throw Error(
          "--workloads pps sends IPv4 frames; add ipv4 to --families (a topology with "
          "IPv4: family ipv4 or dual)",
          ExitCode::kUsage);
  }
  p.trials = plan_trials(cfg, p.scenarios, p.scan_values, p.mode_options);
  if (cfg.shard) p.trials = shard_plan(p.trials, p.scan_values, cfg.repetitions, *cfg.shard);
  return p;
}

std::vector<size_t> profile_plan(const std::vector<PlannedTrial>& plan) {
  std::vector<size_t> out;
  std::set<std::tuple<std::string, std::string, std::string, Family, int>> seen;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& t = plan[i];
    if (seen.insert({t.mode, t.scenario, t.workload, t.family, t.scan_value()}).second)
      out.push_back(i);
  }
  return out;
}

std::vector<int> plan_rounds(const std::vector<PlannedTrial>& plan) {
  std::vector<int> rounds;
  int round = -1;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (i == 0 || plan[i].repetition != plan[i - 1].repetition ||
        plan[i].scan_value() != plan[i - 1].scan_value())
      ++round;
    rounds.push_back(round);
  }
  return rounds;
}

std::vector<std::vector<size_t>> alternation_groups(const std::vector<PlannedTrial>& plan) {
  const auto rounds = plan_rounds(plan);
  std::vector<std::vector<size_t>> groups;
  // (round, scenario, workload, family)
  std::map<std::tuple<int, std::string, std::string, Family>, size_t> at;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto key = std::make_tuple(rounds[i], plan[i].scenario, plan[i].workload, plan[i].family);
    auto [it, fresh] = at.emplace(key, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  return groups;
}

datapath::ModeOptions alternated_mode(const RunConfig& cfg,
                                      const datapath::ModeOptions& run_options) {
  if (cfg.modes.size() < 2)
    throw Error("--alternate needs two or more --modes to alternate between", ExitCode::kUsage);
  std::set<std::string> seen;
  datapath::ModeOptions first;
  for (size_t i = 0; i < cfg.modes.size(); ++i) {
    const auto& m = cfg.modes[i];
    if (!seen.insert(m).second)
      throw Error("--alternate: mode " + m + " is named twice in --modes", ExitCode::kUsage);
    datapath::ModeOptions o = trial_mode(m, run_options, cfg.calibration_delay_loops).options;
    if (o.name != "ebpf" && o.name != "bpf-lb")
      throw Error("--alternate: " + m +
                      " is not a BPF mode; alternation switches between variants of one BPF "
                      "mode (e.g. --modes ebpf@base=DIR,ebpf or ebpf,ebpf-delay)",
                  ExitCode::kUsage);
    if (i == 0) {
      first = o;
      continue;
    }
    if (o.name != first.name)
      throw Error("--alternate: " + m + " and " + cfg.modes[0] + " are different modes (" + o.name +
                      ", " + first.name + "); alternation switches between variants of one mode",
                  ExitCode::kUsage);
    first.alternates.push_back({o.objects_dir, o.delay_loops});
  }
  return first;
}

TrialQueue::TrialQueue(const std::vector<PlannedTrial>& plan, int max_retries)
    : attempts_(plan.size(), 0), max_retries_(std::max(0, max_retries)) {
  const auto rounds = plan_rounds(plan);
  for (size_t i = 0; i < plan.size(); ++i) q_.push_back({i, rounds[i]});
}

std::optional<size_t> TrialQueue::next() const {
  if (q_.empty()) return std::nullopt;
  return q_.front().planned;
}

bool TrialQueue::done(bool valid) {
  if (q_.empty()) return false;
  Entry e = q_.front();
  q_.pop_front();
  const int made = ++attempts_[e.planned];
  if (valid || made > max_retries_) return false;
  // First failure: the end of its own round; later ones: the end of the round after.
  if (made > 1) ++e.round;
  auto at = std::find_if(q_.begin(), q_.end(), [&](const Entry& x) { return x.round > e.round; });
  q_.insert(at, e);
  return true;
}

std::vector<size_t> TrialQueue::order() const {
  std::vector<size_t> out;
  for (const auto& e : q_) out.push_back(e.planned);
  return out;
}

double default_budget_seconds(const RunConfig& cfg, size_t planned_trials) {
  return 2.0 * static_cast<double>(planned_trials) * (cfg.warmup_s + cfg.duration_s) + 60.0;
}

bool fits_budget(double elapsed_s, double expected_s, double budget_s) {
  return elapsed_s + expected_s <= budget_s;
}

double parse_budget(const std::string& v) {
  double x = -1;
  try {
    size_t used = 0;
    x = std::stod(v, &used);
    const std::string unit = v.substr(used);
    if (unit == "m" || unit == "min")
      x *= 60;
    else if (unit == "h")
      x *= 3600;
    else if (!unit.empty() && unit != "s")
      x = -1;
  } catch (const std::exception&) {
    x = -1;
  }
  if (!(x > 0) || !std::isfinite(x))
    throw Error("--budget: '" + v + "' (expected seconds > 0, e.g. 600, 90s, 10m, 1h)",
                ExitCode::kUsage);
  return x;
}

bool FaultInjection::hits(int64_t order) const {
  if (!orders.empty()) return orders.count(order) > 0;
  // splitmix64 of (seed, order): the same attempt is marked whatever ran before it.
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(order);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ULL << 53) < fraction;
}

std::optional<FaultInjection> parse_fault_injection(const std::string& v) {
  if (v.empty()) return std::nullopt;
  auto bad = [&] {
    return Error("HRB_FAULT_INVALID: '" + v +
                     "' (expected FRACTION[,SEED], e.g. 0.3,7, or @ORDER,ORDER,…, e.g. @2,5)",
                 ExitCode::kUsage);
  };
  FaultInjection f;
  std::vector<std::string> parts;
  std::string cur;
  for (char ch : v.substr(v[0] == '@' ? 1 : 0)) {
    if (ch == ',') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  parts.push_back(cur);
  try {
    size_t used = 0;
    if (v[0] == '@') {
      for (const auto& p : parts) {
        const long long n = std::stoll(p, &used);
        if (used != p.size() || n < 1) throw bad();
        f.orders.insert(n);
      }
      return f;
    }
    if (parts.size() > 2) throw bad();
    f.fraction = std::stod(parts[0], &used);
    if (used != parts[0].size() || !(f.fraction >= 0 && f.fraction <= 1)) throw bad();
    if (parts.size() == 2) {
      f.seed = std::stoull(parts[1], &used);
      if (used != parts[1].size()) throw bad();
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    throw bad();
  }
  return f;
}

results::Trial record(const PlannedTrial& t, const Measurement& m, size_t order, int attempt,
                      double max_steal_fraction) {
  results::Trial trial;
  trial.mode = t.mode;
  trial.scenario = t.scenario;
  trial.workload = t.workload;
  trial.family = family_name(t.family);
  trial.repetition = t.repetition;
  trial.order = static_cast<int64_t>(order);
  trial.attempt = attempt;
  trial.started_at = m.started_at;
  trial.client = m.client;
  trial.server = m.server;
  trial.flows = t.workload == kPps ? 1 : std::max(1, t.flows);
  trial.cpu = m.cpu.to_json();
  std::vector<std::string> flags;
  if (m.pps) {
    nlohmann::json metrics_j = cpu_metrics(m.cpu);
    metrics_j["packetsPerSecond"] = m.pps->received_pps();
    metrics_j["packets"] = m.pps->received;
    if (m.pps->received) metrics_j["cpuNsPerPacket"] = m.cpu.busy() * 1e9 / m.pps->received;
    trial.metrics = metrics_j;
    trial.result = m.pps->to_json();
    if (!m.pps->received) flags.push_back("no packets");
  } else if (m.workload) {
    const auto& r = *m.workload;
    trial.metrics = derive_metrics(r, m.cpu);
    trial.result = r.to_json();
    if (r.errors) flags.push_back(fmt::format("errors: {} ({})", r.errors, r.first_error));
    if ((r.kind == traffic::Kind::kTcpRr || r.kind == traffic::Kind::kTcpCrr ||
         r.kind == traffic::Kind::kUdpRr) &&
        r.transactions == 0)
      flags.push_back("no transactions");
    if ((r.kind == traffic::Kind::kTcpStream || r.kind == traffic::Kind::kUdpStream) &&
        r.bytes == 0)
      flags.push_back("no bytes");
  }
  trial.scan = t.scan;
  trial.iptables_packets = m.iptables_packets;
  trial.service_rule_packets = m.service_rule_packets;
  trial.bpf_counters = m.bpf_counters;
  const double steal = steal_fraction(m.cpu);
  if (steal > max_steal_fraction)
    flags.push_back(fmt::format("steal {:.0f}% > {:.0f}%", steal * 100, max_steal_fraction * 100));
  trial.valid = flags.empty();
  trial.flags = std::move(flags);
  return trial;
}

namespace {

// The generator's spec of a planned trial between `ep`'s client and server(s).
traffic::WorkloadSpec workload_spec(const Endpoints& ep, const PlannedTrial& t,
                                    const RunConfig& cfg) {
  traffic::WorkloadSpec w;
  if (t.workload != kPps) w.kind = traffic::parse_kind(t.workload);
  w.client_netns = ep.client_netns;
  w.server_netns = ep.server_netns;
  w.dst = ep.dst;
  w.port = ep.port;
  w.server_port = ep.server_port;
  w.more_server_netns = ep.more_server_netns;
  w.flows = std::max(1, t.flows);
  w.msg_size = cfg.msg_size;
  w.duration_s = cfg.duration_s;
  w.warmup_s = cfg.warmup_s;
  w.client_cpu = cfg.client_cpu;
  w.server_cpu = cfg.server_cpu;
  return w;
}

// One attempt of a trial in the mode already applied: conntrack flushed, counters and CPU times
// before and after the workload (or the pps frames). With `perf` (--profile's repetition), perf
// records the machine from before the CPU times are read until after the workload ends.
Measurement measure(const topology::Layout& layout, const RunConfig& cfg, const PlannedTrial& t,
                    const Endpoints& ep, int eps, std::optional<PerfRecording>* perf = nullptr) {
  Measurement m;
  for (const auto& n : layout.nodes) datapath::conntrack_flush(n.netns);
  const auto backend = cfg.mode_options.backend;
  const auto seps =
      ep.service >= 0 ? sep_chains(layout, ep.service, eps, t.family) : std::set<std::string>{};
  const RulePackets ipt0 =
      t.setting.rules ? iptables_packets(layout, backend, seps, t.family) : RulePackets{};
  auto bpf0 = t.setting.bpf ? datapath::counters_json(layout) : nlohmann::json::object();
  m.started_at = log::iso_now();
  m.client = ep.client_name;
  m.server = ep.server_name;
  if (perf) {
    perf->emplace(kPerfFrequencyHz);
    fault_point("profile:sampling");  // tests: stop here while perf samples
  }
  auto cpu0 = metrics::read_cpu_times();
  if (t.workload == kPps) {
    traffic::PpsSpec ps;
    ps.node = ep.server_node;
    ps.pod = ep.server_pod;
    ps.src = traffic::pps_source(layout);
    ps.duration_s = cfg.duration_s;
    m.pps = traffic::run_pps(layout, ps);
    m.client = ps.node->name + " uplink (XDP frames from " + ps.src.str() + ")";
  } else {
    m.workload = traffic::run_workload(workload_spec(ep, t, cfg));
  }
  m.cpu = metrics::read_cpu_times() - cpu0;
  if (perf) (*perf)->stop();
  if (t.setting.rules) {
    const RulePackets ipt = iptables_packets(layout, backend, seps, t.family);
    m.iptables_packets = ipt.all - ipt0.all;
    // pod-service, external-nodeport: packets kube-proxy's DNAT rules of its service
    // translated (0 where the datapath load-balances the service itself).
    if (ep.service >= 0) m.service_rule_packets = ipt.in - ipt0.in;
  }
  if (t.setting.bpf) m.bpf_counters = counters_delta(bpf0, datapath::counters_json(layout));
  return m;
}

// " ipv6" for an IPv6 trial's progress lines ("" for IPv4: the lines of an IPv4 run as before).
std::string family_suffix(const PlannedTrial& t) {
  return t.family == Family::kIpv4 ? "" : std::string(" ") + family_name(t.family);
}

// The last word on a recorded attempt: the fault injection's mark (HRB_FAULT_INVALID), and a note
// when it is invalid.
void judge(results::Trial& trial, const PlannedTrial& t, const std::optional<FaultInjection>& fault,
           Reporter& rep) {
  if (fault && fault->hits(*trial.order)) {
    trial.flags->push_back(kFaultFlag);
    trial.valid = false;
  }
  if (!trial.is_valid())
    rep.note(fmt::format("trial {} ({} {} {}{} rep {}) marked invalid: {}", *trial.order, t.mode,
                         t.scenario, t.workload, family_suffix(t), t.repetition + 1,
                         trial.flags->front()));
}

// One attempt of planned trial `t`, number `order` in the run, in the mode already applied;
// nullopt when interrupted (the trial in flight is dropped).
std::optional<results::Trial> run_attempt(const topology::Layout& layout, const RunConfig& cfg,
                                          const PlannedTrial& t, size_t order, int attempt,
                                          const std::optional<FaultInjection>& fault, Reporter& rep,
                                          const std::atomic<bool>& interrupted) {
  const int eps = cfg.mode_options.endpoints_per_service;
  const auto ep = *scenario_endpoints(layout, t.scenario, eps, t.family);
  rep.trial(order, fmt::format("{} {} {}{} rep {}{}", t.mode, t.scenario, t.workload,
                               family_suffix(t), t.repetition + 1,
                               attempt > 1 ? fmt::format(" (re-run {})", attempt - 1) : ""));
  Measurement m = measure(layout, cfg, t, ep, eps);
  if (interrupted) return std::nullopt;
  results::Trial trial = record(t, m, order, attempt, cfg.max_steal_fraction);
  judge(trial, t, fault, rep);
  return trial;
}

// --alternate: the trials of `group` (one per mode) measured as one workload whose datapath
// switches between their variants (`variant_of[i]`: the variant of the group's i-th trial) every
// segment. One Measurement per trial, in group order: its share of the workload, the CPU time of
// its segments, its variant's counters; the iptables packets are the whole workload's.
std::vector<Measurement> measure_alternated(const topology::Layout& layout, const RunConfig& cfg,
                                            const std::vector<const PlannedTrial*>& group,
                                            const std::vector<size_t>& variant_of,
                                            datapath::VariantSelector& selector,
                                            const Endpoints& ep, int eps) {
  const PlannedTrial& t = *group.front();
  for (const auto& n : layout.nodes) datapath::conntrack_flush(n.netns);
  const auto backend = cfg.mode_options.backend;
  const auto seps =
      ep.service >= 0 ? sep_chains(layout, ep.service, eps, t.family) : std::set<std::string>{};
  const RulePackets ipt0 = iptables_packets(layout, backend, seps, t.family);
  std::vector<nlohmann::json> bpf0;
  for (size_t v : variant_of) bpf0.push_back(datapath::counters_json(layout, v));
  const std::string started_at = log::iso_now();
  traffic::WorkloadSpec spec = workload_spec(ep, t, cfg);
  spec.duration_s = cfg.duration_s * static_cast<double>(group.size());  // each: its duration
  spec.alternation = {.variants = static_cast<int>(group.size()),
                      .segment_s = cfg.alternate_s,
                      .settle_s = cfg.alternate_settle_s,
                      .select = [&](int i) { selector.select(variant_of.at(i)); }};
  const traffic::WorkloadResult w = traffic::run_workload(spec);
  const RulePackets ipt = iptables_packets(layout, backend, seps, t.family);
  std::vector<Measurement> out;
  for (size_t i = 0; i < group.size(); ++i) {
    Measurement m;
    m.started_at = started_at;
    m.client = ep.client_name;
    m.server = ep.server_name;
    m.workload = w.variants.at(i);
    m.cpu = m.workload->cpu;
    m.iptables_packets = ipt.all - ipt0.all;
    if (ep.service >= 0) m.service_rule_packets = ipt.in - ipt0.in;
    m.bpf_counters = counters_delta(bpf0[i], datapath::counters_json(layout, variant_of[i]));
    out.push_back(std::move(m));
  }
  return out;
}

// Where a measuring loop left the cluster (the profiling pass goes on from there): the mode
// applied ("" for an alternated one: no single mode), the scanned service count, the trials made.
struct LoopEnd {
  std::string mode;
  int scan = -1;
  size_t trials = 0;
};

// The trials one after another, each in its own mode (switched when the next one's differs).
LoopEnd run_sequential(const RunConfig& cfg, const topology::Layout& layout, topology::StateDir& st,
                       const MatrixPlan& plan, const std::optional<FaultInjection>& fault,
                       Reporter& rep, const std::atomic<bool>& interrupted, double budget,
                       results::Run& doc, const std::function<void()>& save) {
  TrialQueue queue(plan.trials, cfg.max_retries);
  const auto start = Clock::now();
  std::string current_mode = "none";
  int current_scan = -1;
  size_t k = 0;
  while (auto i = queue.next()) {
    if (interrupted) break;
    const PlannedTrial& t = plan.trials[*i];
    // The next attempt is expected to take as long as the mean one so far (mode switches
    // included), the first one its warm-up and duration.
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double expected = k ? elapsed / k : cfg.warmup_s + cfg.duration_s;
    if (!fits_budget(elapsed, expected, budget)) {
      doc.budget_exhausted = true;
      rep.note(
          fmt::format("budget of {:.0f} s ran out after {:.0f} s: {} trial(s) left in the queue",
                      budget, elapsed, queue.size()));
      break;
    }
    ++k;
    rep.set_total(k + queue.size() - 1);
    const int scan_value = t.scan_value();
    if (t.mode != current_mode || (cfg.scan_param == "services" && scan_value != current_scan)) {
      datapath::switch_mode(st, layout, t.setting.options);
      current_mode = t.mode;
      current_scan = scan_value;
    }
    auto trial = run_attempt(layout, cfg, t, k, queue.attempts(*i) + 1, fault, rep, interrupted);
    if (!trial || interrupted) break;
    queue.done(trial->is_valid());
    doc.trials.push_back(std::move(*trial));
    save();
  }
  return {current_mode, current_scan, k};
}

// --alternate: each group of trials (alternation_groups) measured as one alternated workload, in
// the one mode that holds every variant; a group with an invalid trial is re-queued whole.
LoopEnd run_alternated(const RunConfig& cfg, const topology::Layout& layout, topology::StateDir& st,
                       const MatrixPlan& plan, const std::optional<FaultInjection>& fault,
                       Reporter& rep, const std::atomic<bool>& interrupted, double budget,
                       results::Run& doc, const std::function<void()>& save) {
  const auto groups = alternation_groups(plan.trials);
  std::vector<PlannedTrial> firsts;
  for (const auto& g : groups) firsts.push_back(plan.trials[g.front()]);
  TrialQueue queue(firsts, cfg.max_retries);
  const int eps = cfg.mode_options.endpoints_per_service;
  const auto start = Clock::now();
  std::optional<datapath::VariantSelector> selector;
  int current_services = -1;
  size_t k = 0, measured = 0;
  while (auto gi = queue.next()) {
    if (interrupted) break;
    std::vector<const PlannedTrial*> group;
    std::vector<size_t> variant_of;
    for (size_t i : groups[*gi]) {
      group.push_back(&plan.trials[i]);
      variant_of.push_back(static_cast<size_t>(
          std::find(cfg.modes.begin(), cfg.modes.end(), plan.trials[i].mode) - cfg.modes.begin()));
    }
    const PlannedTrial& t = *group.front();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double expected = measured ? elapsed / static_cast<double>(measured)
                                     : cfg.warmup_s + cfg.duration_s * group.size();
    if (!fits_budget(elapsed, expected, budget)) {
      doc.budget_exhausted = true;
      rep.note(fmt::format("budget of {:.0f} s ran out after {:.0f} s: {} group(s) left", budget,
                           elapsed, queue.size()));
      break;
    }
    ++measured;
    const int services = t.setting.options.services;
    if (services != current_services) {
      datapath::ModeOptions m = alternated_mode(cfg, plan.mode_options);
      m.services = services;
      selector.reset();
      datapath::switch_mode(st, layout, m);
      selector.emplace(layout, cfg.modes.size());
      current_services = services;
    }
    std::string names;
    for (const auto* g : group) names += (names.empty() ? "" : "+") + g->mode;
    rep.set_total(k + queue.size() * group.size());
    rep.trial(k + 1, fmt::format("{} {} {}{} rep {} (alternated every {} s){}", names, t.scenario,
                                 t.workload, family_suffix(t), t.repetition + 1, cfg.alternate_s,
                                 queue.attempts(*gi) ? " (re-run)" : ""));
    const auto ep = *scenario_endpoints(layout, t.scenario, eps, t.family);
    auto ms = measure_alternated(layout, cfg, group, variant_of, *selector, ep, eps);
    if (interrupted) break;
    bool valid = true;
    std::vector<results::Trial> trials;
    for (size_t i = 0; i < group.size(); ++i) {
      results::Trial trial =
          record(*group[i], ms[i], ++k, queue.attempts(*gi) + 1, cfg.max_steal_fraction);
      nlohmann::json modes = nlohmann::json::array();
      for (const auto* g : group) modes.push_back(g->mode);
      trial.alternation = nlohmann::json{{"segmentSeconds", cfg.alternate_s},
                                         {"settleSeconds", cfg.alternate_settle_s},
                                         {"segments", ms[i].workload->segments},
                                         {"modes", modes}};
      judge(trial, *group[i], fault, rep);
      valid = valid && trial.is_valid();
      trials.push_back(std::move(trial));
    }
    queue.done(valid);
    for (auto& tr : trials) doc.trials.push_back(std::move(tr));
    save();
  }
  return {"", -1, k};
}

// --- --profile: a separate repetition per cell with perf sampling (docs/profiles.md) ---------
// After the measured trials, so sampling and perf script's work never overlap a trial that
// gate, summary or pairing read; its figures go to the profiles file only.
struct ProfilePass {
  const topology::Layout& layout;
  const RunConfig& cfg;
  const MatrixPlan& plan;
  topology::StateDir& st;
  Reporter& rep;
  const std::atomic<bool>& interrupted;
  std::string& current_mode;
  int& current_scan;

  void run(results::Run& doc, const std::string& out, const std::function<void()>& save,
           size_t done) {
    const auto cells = profile_plan(plan.trials);
    const std::string path = results::profiles_path_for(out);
    results::ProfileDocument pd;
    pd.run_id = doc.run_id;
    pd.event = "cpu-clock";
    pd.frequency_hz = kPerfFrequencyHz;
    pd.command = perf_record_argv("perf", "SCRATCH/perf.data", kPerfFrequencyHz);
    results::write_profiles(path, pd);  // the results never name a file that is not there
    doc.profiles = results::ProfilesRef{.file = std::filesystem::path(path).filename().string(),
                                        .event = pd.event,
                                        .frequency_hz = pd.frequency_hz,
                                        .cells = 0};
    save();
    rep.note(fmt::format("profiling {} cell(s), one repetition each with perf record -F {}: {}",
                         cells.size(), kPerfFrequencyHz, path));
    rep.set_total(done + cells.size());
    const int eps = cfg.mode_options.endpoints_per_service;
    for (size_t n = 0; n < cells.size() && !interrupted; ++n) {
      const PlannedTrial& t = plan.trials[cells[n]];
      if (t.mode != current_mode ||
          (cfg.scan_param == "services" && t.scan_value() != current_scan)) {
        datapath::switch_mode(st, layout, t.setting.options);
        current_mode = t.mode;
        current_scan = t.scan_value();
      }
      rep.trial(done + n + 1, fmt::format("profile {} {} {}{}", t.mode, t.scenario, t.workload,
                                          family_suffix(t)));
      const auto ep = *scenario_endpoints(layout, t.scenario, eps, t.family);
      std::optional<PerfRecording> perf;
      const auto t0 = Clock::now();
      Measurement m = measure(layout, cfg, t, ep, eps, &perf);
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      if (interrupted) break;  // the profile in flight is dropped, as a trial would be
      results::Profile p = profile_of(t, m, *perf, seconds);
      pd.profiles.push_back(std::move(p));
      results::write_profiles(path, pd);
      doc.profiles->cells = static_cast<int64_t>(pd.profiles.size());
      save();
    }
  }

  results::Profile profile_of(const PlannedTrial& t, const Measurement& m,
                              const PerfRecording& perf, double seconds) const {
    // The profiled repetition's figures and flags, as record() makes them for a trial.
    const results::Trial trial = record(t, m, 0, 1, cfg.max_steal_fraction);
    // The generators run in this process: its samples, and the kernel's own tasks'.
    const auto f = metrics::fold_perf_script(perf.script(), {.pids = {getpid()}});
    results::Profile p;
    p.mode = t.mode;
    p.scenario = t.scenario;
    p.workload = t.workload;
    p.scan = t.scan;
    if (t.family != Family::kIpv4) p.family = family_name(t.family);
    p.started_at = m.started_at;
    p.seconds = seconds;
    p.samples = f.samples;
    p.other_samples = f.other_samples;
    p.valid = trial.valid;
    p.flags = trial.flags;
    p.metrics = trial.metrics;
    p.buckets = metrics::bucket_samples(f);
    p.stacks = f.stacks;
    return p;
  }
};

}  // namespace

results::Run run_matrix(const RunConfig& cfg, const std::atomic<bool>& interrupted,
                        const Progress& progress) {
  validate(cfg);
  // Checked before anything is built.
  const auto fault = [] {
    const char* f = std::getenv("HRB_FAULT_INVALID");
    return parse_fault_injection(f ? f : "");
  }();
  const std::string yaml = read_text_file(cfg.topology, "topology file");
  auto spec = topology::parse_spec_string(yaml, cfg.topology);
  auto layout = topology::plan(spec, cfg.prefix);
  // Each mode's input (masq config, …) before anything is built.
  for (const auto& m : cfg.modes)
    datapath::make_mode(trial_mode(m, cfg.mode_options, cfg.calibration_delay_loops).options);
  const bool alternating = cfg.alternate_s > 0;
  if (alternating) datapath::make_mode(alternated_mode(cfg, cfg.mode_options));

  const MatrixPlan plan = plan_matrix(cfg, layout);
  // --profile: perf must be able to sample before a trial is measured (hours later is too late).
  if (cfg.profile) {
    try {
      probe_perf();
    } catch (const Error& e) {
      throw Error(std::string("--profile: ") + e.what(), e.code());
    }
  }

  results::Run doc;
  doc.run_id = make_run_id();
  doc.started_at = log::iso_now();
  doc.git_revision = git_revision();
  doc.command = cfg.command_line;
  doc.complete = false;
  doc.environment = results::environment();
  doc.topology = {.file = cfg.topology,
                  .name = spec.name,
                  .nodes = spec.node_count,
                  .pods_per_node = spec.pods_per_node,
                  .yaml = yaml};
  auto& c = doc.config;
  c.modes = cfg.modes;
  c.scenarios = plan.scenarios;
  c.workloads = cfg.workloads;
  c.families.emplace();
  for (Family f : cfg.families) c.families->push_back(family_name(f));
  c.repetitions = cfg.repetitions;
  c.duration_seconds = cfg.duration_s;
  c.warmup_seconds = cfg.warmup_s;
  c.flows = cfg.flows;
  c.message_size = cfg.msg_size;
  c.max_retries = cfg.max_retries;
  c.max_steal_fraction = cfg.max_steal_fraction;
  c.budget_seconds =
      cfg.budget_s > 0 ? cfg.budget_s : default_budget_seconds(cfg, plan.trials.size());
  c.mode_options = plan.mode_options.to_json();
  c.calibration_delay_loops = cfg.calibration_delay_loops;
  if (alternating) c.alternate_seconds = cfg.alternate_s;
  c.scan_field = std::optional<results::Scan>();  // "scan": null
  if (!cfg.scan_param.empty()) {
    results::Scan scan{.param = cfg.scan_param, .values = plan.scan_values};
    if (cfg.scan_param == "services" && plan.scan_values != cfg.scan_values)
      scan.requested_values = cfg.scan_values;
    c.scan_field = scan;
  }
  c.cpu_tick_seconds = metrics::tick_seconds();
  if (cfg.client_cpu >= 0 || cfg.server_cpu >= 0)
    c.pinned_cpus = std::array<int, 2>{cfg.client_cpu, cfg.server_cpu};
  c.pod_service = plan.pod_service;
  c.external_node_port = plan.external_node_port;
  c.shard = cfg.shard;
  const std::string out = results_path(cfg.output, *doc.run_id);
  auto save = [&] { results::write_results(out, doc); };

  Reporter rep(progress, plan.trials.size());
  rep.note(fmt::format(
      "run {}: {} trials on {} ({} repetitions{}, {:.1f}+{:.1f} s each; budget {:.0f} s); "
      "results: {}",
      *doc.run_id, plan.trials.size(), spec.name, cfg.repetitions,
      cfg.shard ? fmt::format(", shard {}/{}", cfg.shard->index, cfg.shard->count) : "",
      cfg.warmup_s, cfg.duration_s, *c.budget_seconds, out));
  topology::ScopedCluster cluster(cfg.topology, cfg.prefix);  // torn down on every exit
  topology::StateDir& st = cluster.state();
  save();

  if (fault)
    rep.note(
        fmt::format("HRB_FAULT_INVALID={}: fault injection", std::getenv("HRB_FAULT_INVALID")));
  const double budget = *c.budget_seconds;
  // Where the measuring left the cluster: its mode, scanned service count and trials so far.
  LoopEnd end =
      alternating
          ? run_alternated(cfg, layout, st, plan, fault, rep, interrupted, budget, doc, save)
          : run_sequential(cfg, layout, st, plan, fault, rep, interrupted, budget, doc, save);
  if (cfg.profile && !interrupted) {
    try {
      ProfilePass{layout, cfg, plan, st, rep, interrupted, end.mode, end.scan}.run(doc, out, save,
                                                                                   end.trials);
    } catch (const Error& e) {
      // Ctrl-C reaches perf too (one process group): its failure is the interrupt's.
      if (!interrupted) {
        rep.done();
        throw Error(fmt::format("--profile: {} (the measured trials are in {})", e.what(), out),
                    e.code());
      }
    }
  }
  rep.done();
  doc.complete = !interrupted.load() && !doc.budget_exhausted.value_or(false);
  doc.finished_at = log::iso_now();
  if (interrupted) {
    doc.interrupted = true;
    rep.note(fmt::format("interrupted: {} of {} trials written to {}", doc.trials.size(),
                         plan.trials.size(), out));
  }
  // The last write; the cluster's destructor then tears it down, its mode with it.
  save();
  doc.output = out;
  return doc;
}

}  // namespace hrb::run
