#include "run/run.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <set>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "metrics/cpu.hpp"
#include "results/results.hpp"
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
  Ipv4 dst;
  const topology::NodeLayout* server_node = nullptr;  // when the server is a pod: its node
  const topology::PodLayout* server_pod = nullptr;    // … and the pod (pps sends into it)
  // pod-service: the client sends to dst:port (the VIP), the backends listen on server_port
  // (the targetPort); the first backend is server_netns, the others more_server_netns.
  uint16_t port = 0, server_port = 0;
  std::vector<std::string> more_server_netns;
  int service = -1;  // the service's index
};

std::optional<Endpoints> scenario_endpoints(const topology::Layout& l, const std::string& s,
                                            int eps) {
  if (l.nodes.empty()) return std::nullopt;
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
           l.nodes[0].underlay_ip};
      e.port = *datapath::node_port(i);
    } else {
      const auto& client = l.nodes[0].pods[0];
      e = {client.name, "", client.netns, backends[0].netns, datapath::service_ip(l, i)};
      e.port = datapath::kServicePort;
    }
    e.server_port = datapath::kServiceTargetPort;
    e.service = i;
    e.server_name =
        fmt::format("svc-{} {}{}:{} ->", i, nodeport ? "NodePort " : "", e.dst.str(), e.port);
    for (size_t k = 0; k < backends.size(); ++k) {
      e.server_name += fmt::format("{}{}:{}", k ? ", " : " ", backends[k].name, e.server_port);
      if (k) e.more_server_netns.push_back(backends[k].netns);
    }
    return e;
  }
  const auto& n1 = l.nodes[0];
  auto to_pod = [&](const topology::PodLayout& from, const topology::NodeLayout& node,
                    const topology::PodLayout& to) {
    return Endpoints{from.name, to.name, from.netns, to.netns, to.ip, &node, &to};
  };
  if (s == "pod-pod-same-node" && n1.pods.size() >= 2) return to_pod(n1.pods[0], n1, n1.pods[1]);
  if (s == "pod-pod-cross-node" && l.nodes.size() >= 2 && !n1.pods.empty() &&
      !l.nodes[1].pods.empty())
    return to_pod(n1.pods[0], l.nodes[1], l.nodes[1].pods[0]);
  if (s == "pod-external" && !n1.pods.empty() && !l.externals.empty())
    return Endpoints{n1.pods[0].name, l.externals[0].name, n1.pods[0].netns, l.externals[0].netns,
                     l.externals[0].address};
  if (s == "node-node" && l.nodes.size() >= 2)
    return Endpoints{n1.name, l.nodes[1].name, n1.netns, l.nodes[1].netns, l.nodes[1].underlay_ip};
  return std::nullopt;
}

// The KUBE-SEP chains of service `i` (every port, every endpoint).
std::set<std::string> sep_chains(const topology::Layout& l, int i, int eps) {
  std::set<std::string> out;
  for (const auto& sp : datapath::service_ports())
    for (const auto& ep : datapath::service_endpoints(l, i, eps))
      out.insert(datapath::kube_sep_chain(i, sp, ep));
  return out;
}

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

std::string make_run_id() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", std::gmtime(&t));
  std::random_device rd;
  return fmt::format("{}-{:04x}", b, rd() & 0xffff);
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
nlohmann::json cpu_metrics(const metrics::CpuTimes& cpu) {
  const double total = cpu.total();
  return {{"stealFraction", total > 0 ? cpu.steal / total : 0.0}, {"cpuBusySeconds", cpu.busy()}};
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
// iptables-save per node).
struct RulePackets {
  uint64_t all = 0, in = 0;
};
RulePackets iptables_packets(const topology::Layout& l, datapath::Backend b,
                             const std::set<std::string>& in = {}) {
  RulePackets n;
  for (const auto& node : l.nodes)
    for (const auto& c : datapath::rule_counters(node.netns, b)) {
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

struct PlannedTrial {
  std::string mode, scenario, workload;
  int repetition;
  nlohmann::json scan;  // {"param":…, "value":…} when scanning
  int scan_value = 0;
};

}  // namespace

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

void validate(const RunConfig& c) {
  for (const auto& m : c.modes) {
    try {
      datapath::parse_mode(m, c.mode_options);  // KIND or KIND@DIR (datapath/mode.hpp)
    } catch (const Error& e) {
      throw Error(std::string("--modes: ") + e.what(), e.code());
    }
  }
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
  if (!c.scan_param.empty() && c.scan_values.empty())
    throw Error("--scan " + c.scan_param + " needs values, e.g. --scan services=0,1000,5000",
                ExitCode::kUsage);
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

RunConfig config_of_results(const nlohmann::json& doc) {
  const auto& j = doc.at("config");
  RunConfig c;
  c.topology = doc.at("topology").at("file");
  c.duration_s = j.at("durationSeconds");
  c.warmup_s = j.at("warmupSeconds");
  c.flows = j.value("flows", 1);
  c.msg_size = j.value("messageSize", size_t{0});
  c.max_retries = j.value("maxRetries", 1);
  c.max_steal_fraction = j.value("maxStealFraction", 0.10);
  c.mode_options = datapath::ModeOptions::from_json(j.at("modeOptions"));
  c.calibration_delay_loops = j.value("calibrationDelayLoops", uint32_t{0});
  if (j.contains("pinnedCpus")) {
    c.client_cpu = j["pinnedCpus"].at(0);
    c.server_cpu = j["pinnedCpus"].at(1);
  }
  c.modes.clear();
  c.scenarios.clear();
  c.workloads.clear();
  return c;
}

nlohmann::json run_matrix(const RunConfig& cfg, const std::atomic<bool>& interrupted,
                          const Progress& progress) {
  validate(cfg);
  const std::string yaml = read_text_file(cfg.topology, "topology file");
  auto spec = topology::parse_spec_string(yaml, cfg.topology);
  auto layout = topology::plan(spec, cfg.prefix);
  for (const auto& m : cfg.modes) {  // each mode's input (masq config, …) before anything is built
    datapath::make_mode(datapath::parse_mode(m, cfg.mode_options).options);
  }

  // The plan: per repetition (and scan value), the ceiling block in mode none, then the modes in
  // an order that alternates between repetitions (ABBA…).
  const int eps = cfg.mode_options.endpoints_per_service;
  std::vector<std::string> scenarios;
  for (const auto& s : cfg.scenarios) {
    if (scenario_endpoints(layout, s, eps)) {
      scenarios.push_back(s);
    } else if (service_scenario(s) && pod_service_index(layout, eps) < 0) {
      log::warn(
          "scenario {} is not possible on topology {}: no service with {} endpoint(s) "
          "has them all on node2 (endpoints are pods taken round-robin; node2 has {} pods); "
          "skipped",
          s, spec.name, eps, layout.nodes.size() >= 2 ? layout.nodes[1].pods.size() : 0);
    } else {
      log::warn("scenario {} is not possible on topology {}; skipped", s, spec.name);
    }
  }
  // pod-service and external-nodeport need their service to exist: the run's service count is
  // at least index + 1, for every trial of the run (services belong to the mode, not to a
  // scenario), and the results record the count that was installed (config.modeOptions.services,
  // scan values).
  datapath::ModeOptions run_mode_options = cfg.mode_options;
  std::vector<int> scan_values = cfg.scan_values;
  nlohmann::json pod_service = nullptr, external_nodeport = nullptr;
  for (const auto& s : scenarios) {
    if (!service_scenario(s)) continue;
    const auto ep = *scenario_endpoints(layout, s, eps);
    const int need = ep.service + 1;
    if (run_mode_options.services < need) {
      log::info("{}: {} service(s) instead of {} (its service svc-{} must exist)", s, need,
                run_mode_options.services, ep.service);
      run_mode_options.services = need;
    }
    if (cfg.scan_param == "services")
      for (auto& v : scan_values)
        if (v < need) {
          log::info("{}: scan value services={} measured with {} services", s, v, need);
          v = need;
        }
    nlohmann::json j = {{"serviceIndex", ep.service},
                        {"port", ep.port},
                        {"targetPort", ep.server_port},
                        {"backends", datapath::service_endpoints(layout, ep.service, eps).size()},
                        {"server", ep.server_name},
                        {"servicesRequested", cfg.mode_options.services},
                        {"minimumServices", need}};
    if (s == kPodService) {
      j["serviceIP"] = ep.dst.str();
      pod_service = j;
    } else {
      j["nodeIP"] = ep.dst.str();
      external_nodeport = j;
    }
  }
  if (std::find(cfg.workloads.begin(), cfg.workloads.end(), kPps) != cfg.workloads.end()) {
    if (std::find(scenarios.begin(), scenarios.end(), "pod-pod-cross-node") == scenarios.end())
      throw Error(
          "--workloads pps runs in scenario pod-pod-cross-node only (frames are injected "
          "at the server node's uplink); add it to --scenarios",
          ExitCode::kUsage);
    if (scenarios.size() > 1) log::info("pps: measured in pod-pod-cross-node only");
  }
  if (cfg.scan_param.empty()) scan_values = {0};
  std::vector<PlannedTrial> plan;
  for (int sv : scan_values)
    for (int rep = 0; rep < cfg.repetitions; ++rep) {
      std::vector<std::string> order;
      if (std::find(scenarios.begin(), scenarios.end(), "node-node") != scenarios.end())
        order.push_back("none");
      std::vector<std::string> modes = cfg.modes;
      if (rep % 2 == 1) std::reverse(modes.begin(), modes.end());
      order.insert(order.end(), modes.begin(), modes.end());
      for (const auto& mode : order)
        for (const auto& s : scenarios) {
          if ((mode == "none") != (s == "node-node")) continue;
          for (const auto& w : cfg.workloads) {
            if (w == kPps && s != "pod-pod-cross-node") continue;
            PlannedTrial t{mode, s, w, rep, nullptr, sv};
            if (!cfg.scan_param.empty()) t.scan = {{"param", cfg.scan_param}, {"value", sv}};
            plan.push_back(t);
          }
        }
    }

  nlohmann::json doc{{"schema", "hostroute-bench/results"},
                     {"schemaVersion", results::kSchemaVersion},
                     {"runId", make_run_id()},
                     {"startedAt", iso_now()},
                     {"gitRevision", git_revision()},
                     {"command", cfg.command_line},
                     {"complete", false},
                     {"environment", results::environment()},
                     {"topology",
                      {{"file", cfg.topology},
                       {"name", spec.name},
                       {"nodes", spec.node_count},
                       {"podsPerNode", spec.pods_per_node},
                       {"yaml", yaml}}},
                     {"config",
                      {{"modes", cfg.modes},
                       {"scenarios", scenarios},
                       {"workloads", cfg.workloads},
                       {"repetitions", cfg.repetitions},
                       {"durationSeconds", cfg.duration_s},
                       {"warmupSeconds", cfg.warmup_s},
                       {"flows", cfg.flows},
                       {"messageSize", cfg.msg_size},
                       {"maxRetries", cfg.max_retries},
                       {"maxStealFraction", cfg.max_steal_fraction},
                       {"modeOptions", run_mode_options.to_json()},
                       {"calibrationDelayLoops", cfg.calibration_delay_loops},
                       {"scan", cfg.scan_param.empty() ? nlohmann::json(nullptr)
                                                       : nlohmann::json{{"param", cfg.scan_param},
                                                                        {"values", scan_values}}},
                       {"cpuTickSeconds", metrics::tick_seconds()}}},
                     {"trials", nlohmann::json::array()}};
  if (cfg.client_cpu >= 0 || cfg.server_cpu >= 0)
    doc["config"]["pinnedCpus"] = {cfg.client_cpu, cfg.server_cpu};
  if (!pod_service.is_null()) doc["config"]["podService"] = pod_service;
  if (!external_nodeport.is_null()) doc["config"]["externalNodePort"] = external_nodeport;
  if (cfg.scan_param == "services" && scan_values != cfg.scan_values)
    doc["config"]["scan"]["requestedValues"] = cfg.scan_values;
  const std::string out = results_path(cfg.output, doc["runId"].get<std::string>());
  auto save = [&] {
    nlohmann::json copy = doc;
    results::sanitize(copy);
    results::write_json(out, copy);
  };

  Reporter rep(progress, plan.size());
  rep.note(
      fmt::format("run {}: {} trials on {} ({} repetitions, {:.1f}+{:.1f} s each); results: {}",
                  doc["runId"].get<std::string>(), plan.size(), spec.name, cfg.repetitions,
                  cfg.warmup_s, cfg.duration_s, out));
  topology::ScopedCluster cluster(cfg.topology, cfg.prefix);  // torn down on every exit
  topology::StateDir& st = cluster.state();
  save();

  std::string current_mode = "none";
  int current_scan = -1;
  size_t k = 0;
  for (const auto& t : plan) {
    if (interrupted) break;
    ++k;
    // Mode and scan parameter for this trial.
    const auto parsed = datapath::parse_mode(t.mode, run_mode_options);
    datapath::ModeOptions mo = parsed.options;  // kind, and another build's objects (KIND@DIR)
    if (parsed.calibration_delay) mo.delay_loops = cfg.calibration_delay_loops;
    if (cfg.scan_param == "services") mo.services = t.scan_value;
    int flows = cfg.scan_param == "flows" ? t.scan_value : cfg.flows;
    if (t.mode != current_mode || (cfg.scan_param == "services" && t.scan_value != current_scan)) {
      datapath::switch_mode(st, layout, mo);
      current_mode = t.mode;
      current_scan = t.scan_value;
    }
    auto ep = *scenario_endpoints(layout, t.scenario, eps);
    traffic::WorkloadSpec w;
    if (t.workload != kPps) w.kind = traffic::parse_kind(t.workload);
    w.client_netns = ep.client_netns;
    w.server_netns = ep.server_netns;
    w.dst = ep.dst;
    w.port = ep.port;
    w.server_port = ep.server_port;
    w.more_server_netns = ep.more_server_netns;
    w.flows = std::max(1, flows);
    w.msg_size = cfg.msg_size;
    w.duration_s = cfg.duration_s;
    w.warmup_s = cfg.warmup_s;
    w.client_cpu = cfg.client_cpu;
    w.server_cpu = cfg.server_cpu;

    nlohmann::json trial;
    for (int attempt = 1; attempt <= 1 + cfg.max_retries; ++attempt) {
      rep.trial(k,
                fmt::format("{} {} {} rep {}{}", t.mode, t.scenario, t.workload, t.repetition + 1,
                            attempt > 1 ? fmt::format(" (retry {})", attempt - 1) : ""));
      for (const auto& n : layout.nodes) datapath::conntrack_flush(n.netns);
      const auto backend = cfg.mode_options.backend;
      const bool bpf = mo.name == "ebpf" || mo.name == "bpf-lb";
      const bool rules = mo.name == "legacy" || bpf;
      const auto seps =
          ep.service >= 0 ? sep_chains(layout, ep.service, eps) : std::set<std::string>{};
      const RulePackets ipt0 = rules ? iptables_packets(layout, backend, seps) : RulePackets{};
      auto bpf0 = bpf ? datapath::counters_json(layout) : nlohmann::json::object();
      auto started = iso_now();
      std::vector<std::string> flags;
      std::string client = ep.client_name;
      std::optional<traffic::PpsResult> pps;
      std::optional<traffic::WorkloadResult> wr;
      traffic::PpsSpec ps;
      auto cpu0 = metrics::read_cpu_times();
      if (t.workload == kPps) {
        ps.node = ep.server_node;
        ps.pod = ep.server_pod;
        ps.src = traffic::pps_source(layout);
        ps.duration_s = cfg.duration_s;
        pps = traffic::run_pps(layout, ps);
      } else {
        wr = traffic::run_workload(w);
      }
      auto cpu = metrics::read_cpu_times() - cpu0;
      nlohmann::json metrics_j, result_j;
      if (pps) {
        metrics_j = cpu_metrics(cpu);
        metrics_j["packetsPerSecond"] = pps->received_pps();
        metrics_j["packets"] = pps->received;
        if (pps->received) metrics_j["cpuNsPerPacket"] = cpu.busy() * 1e9 / pps->received;
        result_j = pps->to_json();
        client = ps.node->name + " uplink (XDP frames from " + ps.src.str() + ")";
        if (!pps->received) flags.push_back("no packets");
      } else {
        const auto& r = *wr;
        metrics_j = derive_metrics(r, cpu);
        result_j = r.to_json();
        if (r.errors) flags.push_back(fmt::format("errors: {} ({})", r.errors, r.first_error));
        if ((w.kind == traffic::Kind::kTcpRr || w.kind == traffic::Kind::kTcpCrr ||
             w.kind == traffic::Kind::kUdpRr) &&
            r.transactions == 0)
          flags.push_back("no transactions");
        if ((w.kind == traffic::Kind::kTcpStream || w.kind == traffic::Kind::kUdpStream) &&
            r.bytes == 0)
          flags.push_back("no bytes");
      }
      if (interrupted) break;  // the trial in flight is dropped
      trial = {{"mode", t.mode},
               {"scenario", t.scenario},
               {"workload", t.workload},
               {"repetition", t.repetition},
               {"order", k},
               {"attempt", attempt},
               {"startedAt", started},
               {"client", client},
               {"server", ep.server_name},
               {"flows", t.workload == kPps ? 1 : w.flows},
               {"metrics", metrics_j},
               {"cpu", cpu.to_json()},
               {"result", result_j}};
      if (!t.scan.is_null()) trial["scan"] = t.scan;
      if (rules) {
        const RulePackets ipt = iptables_packets(layout, backend, seps);
        trial["iptablesPackets"] = ipt.all - ipt0.all;
        // pod-service, external-nodeport: packets kube-proxy's DNAT rules of its service
        // translated (0 where the datapath load-balances the service itself).
        if (ep.service >= 0) trial["serviceRulePackets"] = ipt.in - ipt0.in;
      }
      if (bpf) trial["bpfCounters"] = counters_delta(bpf0, datapath::counters_json(layout));
      double steal = trial["metrics"]["stealFraction"].get<double>();
      if (steal > cfg.max_steal_fraction)
        flags.push_back(
            fmt::format("steal {:.0f}% > {:.0f}%", steal * 100, cfg.max_steal_fraction * 100));
      trial["flags"] = flags;
      trial["valid"] = flags.empty();
      if (flags.empty()) break;
      rep.note(fmt::format("trial {} marked invalid: {}", k, flags.front()));
    }
    if (interrupted) break;
    doc["trials"].push_back(trial);
    save();
  }
  rep.done();
  doc["complete"] = !interrupted.load();
  doc["finishedAt"] = iso_now();
  if (interrupted) {
    doc["interrupted"] = true;
    rep.note(fmt::format("interrupted: {} of {} trials written to {}", doc["trials"].size(),
                         plan.size(), out));
  }
  // Restore mode none before teardown removes everything (the netns go with it anyway).
  save();
  doc["output"] = out;
  return doc;
}

}  // namespace hrb::run
