// hrbench: the command line. It parses options and calls the library; no logic lives here.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "datapath/masq_agent.hpp"
#include "datapath/mode.hpp"
#include "doctor/doctor.hpp"
#include "gate/gate.hpp"
#include "guard/blocker.hpp"
#include "guard/monitor.hpp"
#include "lab/lab.hpp"
#include "metrics/cpu.hpp"
#include "report/report.hpp"
#include "results/results.hpp"
#include "run/run.hpp"
#include "topology/cluster.hpp"
#include "topology/spec.hpp"
#include "traffic/pps.hpp"
#include "traffic/workload.hpp"

namespace po = boost::program_options;
using namespace hrb;

namespace {

const char* kDefaultTopology = HRB_SOURCE_DIR "/topologies/two-node.yaml";
const char* kDefaultMasqConfig = HRB_SOURCE_DIR "/topologies/ip-masq-agent.yaml";

struct Command {
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Common options every subcommand takes.
po::options_description common_options() {
  po::options_description o("Common options");
  o.add_options()("help,h", "show this help")("verbose,v", "debug logging")(
      "prefix", po::value<std::string>()->default_value(env_or("HRBENCH_PREFIX", "hrb")),
      "name prefix of every object of the cluster (env HRBENCH_PREFIX)");
  return o;
}

// Parses args against `desc` (+ common options); prints help and returns nullopt when asked.
std::optional<po::variables_map> parse(const std::vector<std::string>& args,
                                       po::options_description desc, const std::string& usage,
                                       const po::positional_options_description& pos = {}) {
  desc.add(common_options());
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + "\nusage: " + usage + " (see --help)", ExitCode::kUsage);
  }
  if (vm.count("help")) {
    std::cout << "usage: " << usage << "\n\n" << desc << "\n";
    return std::nullopt;
  }
  if (vm.count("verbose")) log::set_level(log::Level::kDebug);
  return vm;
}

std::string prefix_of(const po::variables_map& vm);

// The recorded cluster of --prefix, or a clear "not found".
topology::StateDir existing_cluster(const po::variables_map& vm) {
  topology::StateDir st(prefix_of(vm));
  if (!st.exists())
    throw Error("no cluster with prefix '" + st.prefix() + "'; run `hrbench up`",
                ExitCode::kNotFound);
  return st;
}

std::string prefix_of(const po::variables_map& vm) {
  std::string p = vm["prefix"].as<std::string>();
  if (!topology::valid_prefix(p))
    throw Error(
        "--prefix '" + p + "': expected a lower-case letter then up to 11 letters or digits",
        ExitCode::kUsage);
  return p;
}

// The prefix of a command that builds its own cluster (run, lab, gate --adaptive): --prefix or
// HRBENCH_PREFIX when given, else the command's own default so it never meets `hrbench up`'s.
std::string own_cluster_prefix(const po::variables_map& vm, const std::string& fallback) {
  return vm["prefix"].defaulted() && !std::getenv("HRBENCH_PREFIX") ? fallback : prefix_of(vm);
}

int cmd_doctor(const std::vector<std::string>& args) {
  po::options_description d("hrbench doctor: probe every prerequisite by really trying it");
  d.add_options()("json", "print JSON instead of a table");
  auto vm = parse(args, d, "hrbench doctor [--json]");
  if (!vm) return 0;
  auto checks = doctor::run_checks();
  if (vm->count("json"))
    std::cout << doctor::to_json(checks).dump(2) << "\n";
  else
    std::cout << doctor::render_table(checks);
  return doctor::all_required_ok(checks) ? 0 : static_cast<int>(ExitCode::kMissingFeature);
}

int cmd_topo(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench topo validate FILE…: check topology files without creating anything");
  d.add_options()("action", po::value<std::string>(), "validate")(
      "files", po::value<std::vector<std::string>>(), "topology files");
  po::positional_options_description pos;
  pos.add("action", 1).add("files", -1);
  auto vm = parse(args, d, "hrbench topo validate FILE…", pos);
  if (!vm) return 0;
  if (!vm->count("action") || (*vm)["action"].as<std::string>() != "validate" ||
      !vm->count("files"))
    throw Error("usage: hrbench topo validate FILE…", ExitCode::kUsage);
  int rc = 0;
  for (const auto& f : (*vm)["files"].as<std::vector<std::string>>()) {
    try {
      auto s = topology::parse_spec_file(f);
      std::cout << f << ": ok (" << s.node_count << " nodes x " << s.pods_per_node << " pods, "
                << s.externals.size() << " external hosts)\n";
    } catch (const Error& e) {
      std::cerr << e.what() << "\n";
      rc = static_cast<int>(e.code());
    }
  }
  return rc;
}

void print_layout(const topology::Layout& l, const topology::StateDir& st) {
  auto mark = [](const std::string& ns) { return netns_exists(ns) ? "" : "  (MISSING)"; };
  std::cout << fmt::format("cluster '{}' (prefix {}, {}), fabric netns {}{}\n", l.spec.name,
                           l.prefix, st.complete() ? "up" : "INCOMPLETE: run hrbench clean",
                           l.fabric_netns, mark(l.fabric_netns));
  std::cout << fmt::format("  {:<16} {:<8} {:<16} {:<20} {}\n", "name", "kind", "address", "netns",
                           "details");
  for (const auto& n : l.nodes) {
    std::cout << fmt::format("  {:<16} {:<8} {:<16} {:<20} podCIDR {} router {}{}\n", n.name,
                             "node", n.underlay_ip.str(), n.netns, n.pod_cidr.str(),
                             n.router_ip.str(), mark(n.netns));
    for (const auto& p : n.pods)
      std::cout << fmt::format("  {:<16} {:<8} {:<16} {:<20} {} on {}{}\n", p.name, "pod",
                               p.ip.str(), p.netns, p.lxc, n.name, mark(p.netns));
  }
  for (const auto& e : l.externals)
    std::cout << fmt::format("  {:<16} {:<8} {:<16} {:<20} underlay {}{}\n", e.name, "external",
                             e.address.str(), e.netns, e.underlay_ip.str(), mark(e.netns));
}

nlohmann::json layout_json(const topology::Layout& l, const topology::StateDir& st) {
  nlohmann::json j{{"name", l.spec.name},
                   {"prefix", l.prefix},
                   {"complete", st.complete()},
                   {"fabricNetns", l.fabric_netns},
                   {"nodes", nlohmann::json::array()},
                   {"externalHosts", nlohmann::json::array()}};
  for (const auto& n : l.nodes) {
    nlohmann::json pods = nlohmann::json::array();
    for (const auto& p : n.pods)
      pods.push_back({{"name", p.name},
                      {"ip", p.ip.str()},
                      {"netns", p.netns},
                      {"lxc", p.lxc},
                      {"present", netns_exists(p.netns)}});
    j["nodes"].push_back({{"name", n.name},
                          {"underlayIP", n.underlay_ip.str()},
                          {"podCIDR", n.pod_cidr.str()},
                          {"routerIP", n.router_ip.str()},
                          {"netns", n.netns},
                          {"present", netns_exists(n.netns)},
                          {"pods", pods}});
  }
  for (const auto& e : l.externals)
    j["externalHosts"].push_back({{"name", e.name},
                                  {"address", e.address.str()},
                                  {"underlayIP", e.underlay_ip.str()},
                                  {"netns", e.netns},
                                  {"present", netns_exists(e.netns)}});
  return j;
}

// Options that choose and configure a datapath mode (up --mode, hrbench mode).
void add_mode_options(po::options_description& d) {
  d.add_options()("backend", po::value<std::string>()->default_value("nft"),
                  "iptables backend of legacy mode: nft | legacy")(
      "masq-config", po::value<std::string>()->default_value(kDefaultMasqConfig),
      "ip-masq-agent config (YAML/JSON); \"\" for the agent's built-in defaults")(
      "services", po::value<int>(), "kube-proxy services (default: the topology's `services`)")(
      "endpoints-per-service", po::value<int>(),
      "endpoints per service (default: the topology's `endpointsPerService`)")(
      "force", "ebpf: enable even with user-installed iptables/nft rules (they are bypassed)")(
      "ct-entries", po::value<uint32_t>(),
      "ebpf: entries of each node's connection-tracking table (default 262144; a small one "
      "makes the LRU evict, as the churn test does)")("allowlist", po::value<std::string>(),
                                                      "iptables monitor allowlist (default "
                                                      "config/iptables-allowlist.yaml)");
}

datapath::ModeOptions mode_options(const po::variables_map& vm, const std::string& name,
                                   const topology::Spec& spec) {
  datapath::ModeOptions o;
  o.name = name;
  o.backend = datapath::parse_backend(vm["backend"].as<std::string>());
  o.masq_config = vm["masq-config"].as<std::string>();
  o.services = vm.count("services") ? vm["services"].as<int>() : spec.services;
  o.force = vm.count("force") > 0;
  if (vm.count("allowlist")) o.allowlist = vm["allowlist"].as<std::string>();
  if (vm.count("ct-entries")) o.ct_entries = vm["ct-entries"].as<uint32_t>();
  o.endpoints_per_service = vm.count("endpoints-per-service")
                                ? vm["endpoints-per-service"].as<int>()
                                : spec.endpoints_per_service;
  return o;
}

int cmd_mode(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench mode NAME: switch the running cluster's datapath (none | legacy | bpf-lb | ebpf) "
      "without rebuilding it; without NAME, print the current mode");
  d.add_options()("name", po::value<std::string>(), "none | legacy | bpf-lb | ebpf")(
      "print-rules", "print the iptables-restore input legacy mode would install, change nothing");
  add_mode_options(d);
  po::positional_options_description pos;
  pos.add("name", 1);
  auto vm = parse(args, d,
                  "hrbench mode [NAME] [--backend nft|legacy] [--masq-config FILE] "
                  "[--services N]",
                  pos);
  if (!vm) return 0;
  topology::StateDir st = existing_cluster(*vm);
  Fd lock = st.lock();
  auto layout = topology::load_layout(st);  // not found, should it have gone meanwhile
  if (!vm->count("name")) {
    std::cout << datapath::current_mode(st).to_json().dump(2) << "\n";
    return 0;
  }
  auto opts = mode_options(*vm, (*vm)["name"].as<std::string>(), layout.spec);
  if (vm->count("print-rules")) {
    auto mode = datapath::make_mode(opts);
    auto* legacy = dynamic_cast<datapath::LegacyMode*>(mode.get());
    if (!legacy) throw Error("--print-rules applies to legacy mode", ExitCode::kUsage);
    std::cout << legacy->rules(layout).restore_apply();
    return 0;
  }
  auto t0 = std::chrono::steady_clock::now();
  datapath::switch_mode(st, layout, opts);
  log::info("mode {} applied in {:.2f} s", opts.name,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

int cmd_traffic(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench traffic WORKLOAD --from NAME --to NAME: run one workload between two members of "
      "the running cluster and print its figures");
  d.add_options()("workload", po::value<std::string>(),
                  "tcp_rr | tcp_crr | tcp_stream | udp_stream | udp_rr | pps")(
      "from", po::value<std::string>(),
      "client: pod, node or external host (not for pps: the "
      "frames come from the fabric side of --to's node)")(
      "to", po::value<std::string>()->required(), "server: pod, node or external host")(
      "duration", po::value<double>()->default_value(5), "measured seconds")(
      "warmup", po::value<double>()->default_value(1), "seconds discarded first")(
      "flows", po::value<int>()->default_value(1), "parallel flows")(
      "size", po::value<size_t>()->default_value(0), "message size in bytes (0: default)")(
      "rate", po::value<uint64_t>()->default_value(0), "udp_stream datagrams/s (0: flat out)")(
      "verify", "tcp_stream: check every byte received")(
      "client-cpu", po::value<int>()->default_value(-1), "pin the client threads to this CPU")(
      "server-cpu", po::value<int>()->default_value(-1), "pin the server threads to this CPU")(
      "dst", po::value<std::string>(),
      "send to this address of --to (IPv4 or IPv6; default: its IPv4 address)")("json",
                                                                                "print JSON");
  po::positional_options_description pos;
  pos.add("workload", 1);
  auto vm = parse(args, d, "hrbench traffic WORKLOAD --from NAME --to NAME [--duration S]", pos);
  if (!vm) return 0;
  if (!vm->count("workload")) throw Error("name a workload", ExitCode::kUsage);
  topology::StateDir st = existing_cluster(*vm);
  auto l = topology::load_layout(st);
  auto member = [&](const std::string& key) {
    auto name = (*vm)[key].as<std::string>();
    auto ep = l.find(name);
    if (!ep || ep->kind == topology::Endpoint::Kind::kFabric)
      throw Error("--" + key + " " + name + ": no such pod, node or external host",
                  ExitCode::kNotFound);
    return *ep;
  };
  auto to = member("to");
  if ((*vm)["workload"].as<std::string>() == "pps") {
    if (to.kind != topology::Endpoint::Kind::kPod)
      throw Error("pps: --to must be a pod", ExitCode::kUsage);
    traffic::PpsSpec ps;
    for (const auto& n : l.nodes)
      for (const auto& p : n.pods)
        if (p.name == to.name) {
          ps.node = &n;
          ps.pod = &p;
        }
    ps.src = traffic::pps_source(l);
    ps.duration_s = (*vm)["duration"].as<double>();
    auto cpu0 = metrics::read_cpu_times();
    auto r = traffic::run_pps(l, ps);
    auto j = r.to_json();
    j["cpu"] = (metrics::read_cpu_times() - cpu0).to_json();
    j["to"] = to.name;
    j["mode"] = datapath::current_mode(st).name;
    std::cout << j.dump(2) << "\n";
    return r.received ? 0 : static_cast<int>(ExitCode::kFailure);
  }
  if (!vm->count("from")) throw Error("--from is required", ExitCode::kUsage);
  auto from = member("from");
  traffic::WorkloadSpec w;
  w.kind = traffic::parse_kind((*vm)["workload"].as<std::string>());
  w.client_netns = from.netns;
  w.server_netns = to.netns;
  w.dst = to.ip;
  if (vm->count("dst")) {
    auto a = traffic::IpAddr::parse((*vm)["dst"].as<std::string>());
    if (!a)
      throw Error("--dst " + (*vm)["dst"].as<std::string>() + ": not an IPv4 or IPv6 address",
                  ExitCode::kUsage);
    w.dst = *a;
  }
  w.duration_s = (*vm)["duration"].as<double>();
  w.warmup_s = (*vm)["warmup"].as<double>();
  w.flows = (*vm)["flows"].as<int>();
  w.msg_size = (*vm)["size"].as<size_t>();
  w.udp_rate_pps = (*vm)["rate"].as<uint64_t>();
  w.verify_payload = vm->count("verify") > 0;
  w.client_cpu = (*vm)["client-cpu"].as<int>();
  w.server_cpu = (*vm)["server-cpu"].as<int>();
  auto cpu0 = metrics::read_cpu_times();
  auto r = traffic::run_workload(w);
  auto cpu = metrics::read_cpu_times() - cpu0;
  auto j = r.to_json();
  j["cpu"] = cpu.to_json();
  j["from"] = from.name;
  j["to"] = to.name;
  j["dst"] = w.dst.str();
  j["mode"] = datapath::current_mode(st).name;
  if (vm->count("json")) {
    std::cout << j.dump(2) << "\n";
  } else {
    j.erase("latencyHistogram");
    std::cout << j.dump(2) << "\n";
  }
  return r.errors ? static_cast<int>(ExitCode::kFailure) : 0;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

std::atomic<bool> g_interrupted{false};

std::string joined_command_line(const std::vector<std::string>& args) {
  std::vector<std::string> v{"hrbench", "run"};
  v.insert(v.end(), args.begin(), args.end());
  return shell_join(v);
}

int cmd_run(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench run: build a cluster, measure every mode on every scenario and workload "
      "(interleaved, repeated), write a results file and print the comparison");
  d.add_options()("topology,t", po::value<std::string>()->default_value(kDefaultTopology),
                  "topology file")(
      "modes", po::value<std::string>()->default_value("legacy,ebpf"),
      "modes, comma-separated (legacy, bpf-lb, ebpf; the ladder: all three)")(
      "scenarios",
      po::value<std::string>()->default_value(
          "pod-pod-same-node,pod-pod-cross-node,pod-service,pod-external,node-node"),
      "scenarios, comma-separated (pod-service: node1's pod to a ClusterIP, port 80, whose "
      "backends, port 8080, are node2's pods; external-nodeport, not in the default list: the "
      "external host to node1's IP at that service's NodePort; node-node is the ceiling, "
      "measured in mode none)")(
      "workloads", po::value<std::string>()->default_value("tcp_rr,tcp_crr,tcp_stream,udp_stream"),
      "workloads, comma-separated (also udp_rr; pps: XDP frames into the cross-node server pod)")(
      "repetitions,r", po::value<int>(), "repetitions of the matrix (default 3)")(
      "duration", po::value<double>(), "measured seconds per trial (default 1.5)")(
      "warmup", po::value<double>(), "discarded seconds before each trial (default 0.4)")(
      "flows", po::value<int>()->default_value(1), "parallel flows per trial")(
      "size", po::value<size_t>()->default_value(0), "message size (0: each workload's default)")(
      "quick", "preset: 1 repetition of 1 s trials")("thorough",
                                                     "preset: 7 repetitions of 10 s trials")(
      "scan", po::value<std::string>(),
      "vary one parameter, e.g. services=0,1000,5000,10000 or flows=1,2,4")(
      "max-retries", po::value<int>()->default_value(1), "re-runs of a trial marked invalid")(
      "max-steal", po::value<std::string>(),
      "PCT: a trial with more CPU steal than this is marked invalid (default 10; 0 or none: "
      "off, for shared machines where a valid trial is needed)")(
      "output,o", po::value<std::string>(),
      "results file, or an existing directory to write <run id>.json into (default results/)")(
      "export", po::value<std::vector<std::string>>()->multitoken(),
      "also write gbench (Google Benchmark JSON) and/or csv next to the results file")(
      "pin-cpus", po::value<std::string>(),
      "CLIENT,SERVER: pin the generators' client and server threads to these CPUs (0,0: "
      "colocated, a transaction costs its CPU work; what the CI gate measures)")(
      "calibration-delay", po::value<uint32_t>()->default_value(0),
      "busy-loop iterations per program run in the pseudo-mode ebpf-delay (gate calibration)");
  add_mode_options(d);
  auto vm = parse(args, d, "hrbench run [--quick|--thorough] [OPTIONS]");
  if (!vm) return 0;
  run::RunConfig c;
  c.topology = (*vm)["topology"].as<std::string>();
  c.prefix = own_cluster_prefix(*vm, "hrbrun");
  if (vm->count("quick") && vm->count("thorough"))
    throw Error("--quick and --thorough exclude each other", ExitCode::kUsage);
  if (vm->count("quick")) run::apply_preset(c, "quick");
  if (vm->count("thorough")) run::apply_preset(c, "thorough");
  c.modes = split_list((*vm)["modes"].as<std::string>());
  c.scenarios = split_list((*vm)["scenarios"].as<std::string>());
  c.workloads = split_list((*vm)["workloads"].as<std::string>());
  if (vm->count("repetitions")) c.repetitions = (*vm)["repetitions"].as<int>();
  if (vm->count("duration")) c.duration_s = (*vm)["duration"].as<double>();
  if (vm->count("warmup")) c.warmup_s = (*vm)["warmup"].as<double>();
  c.flows = (*vm)["flows"].as<int>();
  c.msg_size = (*vm)["size"].as<size_t>();
  c.max_retries = (*vm)["max-retries"].as<int>();
  if (vm->count("max-steal")) {
    const std::string v = (*vm)["max-steal"].as<std::string>();
    double pct = -1;
    try {
      size_t used = 0;
      pct = v == "none" ? 0 : std::stod(v, &used);
      if (v != "none" && used != v.size()) pct = -1;
    } catch (const std::exception&) {
    }
    if (!(pct >= 0 && pct <= 100))
      throw Error("--max-steal: '" + v + "' (expected a percentage 0-100, or none)",
                  ExitCode::kUsage);
    c.max_steal_fraction = pct == 0 ? 1.0 : pct / 100;  // 1: nothing is marked
  }
  c.calibration_delay_loops = (*vm)["calibration-delay"].as<uint32_t>();
  if (vm->count("pin-cpus")) {
    auto cpus = split_list((*vm)["pin-cpus"].as<std::string>());
    try {
      if (cpus.size() != 2) throw std::invalid_argument("two CPUs");
      c.client_cpu = std::stoi(cpus[0]);
      c.server_cpu = std::stoi(cpus[1]);
    } catch (const std::exception&) {
      throw Error("--pin-cpus: expected CLIENT,SERVER (CPU numbers)", ExitCode::kUsage);
    }
  }
  if (vm->count("output")) c.output = (*vm)["output"].as<std::string>();
  if (vm->count("scan")) {
    std::string sc = (*vm)["scan"].as<std::string>();
    auto eq = sc.find('=');
    if (eq == std::string::npos) throw Error("--scan PARAM=V1,V2,…", ExitCode::kUsage);
    c.scan_param = sc.substr(0, eq);
    for (const auto& v : split_list(sc.substr(eq + 1))) {
      try {
        c.scan_values.push_back(std::stoi(v));
      } catch (...) {
        throw Error("--scan: '" + v + "' is not a number", ExitCode::kUsage);
      }
    }
  }
  auto spec = topology::parse_spec_file(c.topology);
  c.mode_options = mode_options(*vm, "none", spec);
  c.command_line = joined_command_line(args);
  std::vector<std::string> exports;
  if (vm->count("export")) exports = (*vm)["export"].as<std::vector<std::string>>();
  for (const auto& e : exports)
    if (e != "gbench" && e != "csv")
      throw Error("--export: '" + e + "' (expected gbench or csv)", ExitCode::kUsage);
  run::validate(c);

  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto doc = run::run_matrix(c, g_interrupted, {.tty = isatty(STDERR_FILENO) != 0});
  std::string out = doc["output"];
  std::string base = out.size() > 5 && out.ends_with(".json") ? out.substr(0, out.size() - 5) : out;
  for (const auto& e : exports) {
    if (e == "gbench") {
      results::write_json(base + ".gbench.json", results::to_gbench(doc));
      log::info("Google Benchmark format: {}.gbench.json", base);
    } else {
      std::ofstream(base + ".csv") << results::to_csv(doc);
      log::info("CSV: {}.csv", base);
    }
  }
  std::cout << results::summary_table(doc);
  std::cout << fmt::format("\nresults: {} ({} trials{})\n", out, doc["trials"].size(),
                           doc["complete"].get<bool>() ? "" : ", INTERRUPTED");
  return g_interrupted ? 130 : 0;
}

std::vector<std::pair<std::string, nlohmann::json>> read_runs(
    const std::vector<std::string>& files) {
  std::vector<std::pair<std::string, nlohmann::json>> runs;
  for (const auto& f : files) runs.push_back({f, results::read_results(f)});
  return runs;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  if (!f) throw Error("cannot write " + path);
}

int cmd_compare(const std::vector<std::string>& args) {
  po::options_description d("hrbench compare A.json B.json: two runs side by side (B/A, U test)");
  d.add_options()("files", po::value<std::vector<std::string>>(), "two results files")(
      "markdown", "print a Markdown table");
  po::positional_options_description pos;
  pos.add("files", 2);
  auto vm = parse(args, d, "hrbench compare A.json B.json [--markdown]", pos);
  if (!vm) return 0;
  if (!vm->count("files") || (*vm)["files"].as<std::vector<std::string>>().size() != 2)
    throw Error("give two results files", ExitCode::kUsage);
  auto runs = read_runs((*vm)["files"].as<std::vector<std::string>>());
  std::cout << gate::compare_runs(runs[0].second, runs[1].second, vm->count("markdown") > 0);
  return 0;
}

// Merges the trials of `extra` into `doc` as further repetitions.
void merge_repetitions(nlohmann::json& doc, const nlohmann::json& extra) {
  int base = doc["config"].value("repetitions", 1);
  for (auto t : extra["trials"]) {
    t["repetition"] = t["repetition"].get<int>() + base;
    doc["trials"].push_back(t);
  }
  doc["config"]["repetitions"] = base + extra["config"].value("repetitions", 0);
}

int cmd_gate(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench gate RESULTS.json: evaluate the checks of a policy file; exit 0 pass, 1 "
      "regression, 2 inconclusive, 3 usage or input error");
  d.add_options()("current", po::value<std::string>(), "the run to judge")(
      "policy", po::value<std::string>()->default_value(HRB_SOURCE_DIR "/results/gate.yaml"),
      "policy file")("baseline", po::value<std::string>(), "baseline run for baseline checks")(
      "markdown", po::value<std::string>(), "also write a Markdown summary to FILE")(
      "junit", po::value<std::string>(), "also write JUnit XML to FILE")(
      "inconclusive-ok", "exit 0 when the verdict is inconclusive")(
      "workloads", po::value<std::string>(),
      "evaluate only the policy's checks of these workloads (comma-separated)")(
      "adaptive", po::value<int>()->default_value(0),
      "when inconclusive, measure up to N more repetitions of the checks' cells (root)")(
      "output", po::value<std::string>(), "with --adaptive: write the merged run here");
  po::positional_options_description pos;
  pos.add("current", 1);
  auto vm = parse(args, d, "hrbench gate RESULTS.json [--policy FILE] [--baseline FILE]", pos);
  if (!vm) return 0;
  if (!vm->count("current")) throw Error("give the results file to judge", ExitCode::kUsage);
  const std::string cur_file = (*vm)["current"].as<std::string>();
  auto policy = gate::parse_policy_file((*vm)["policy"].as<std::string>());
  if (vm->count("workloads")) {
    auto keep = split_list((*vm)["workloads"].as<std::string>());
    std::erase_if(policy.checks, [&](const gate::Check& k) {
      return std::find(keep.begin(), keep.end(), k.workload) == keep.end();
    });
    if (policy.checks.empty())
      throw Error("--workloads " + (*vm)["workloads"].as<std::string>() + ": no check of " +
                      policy.file + " is about these workloads",
                  ExitCode::kUsage);
  }
  auto cur = results::read_results(cur_file);
  nlohmann::json base;
  std::string base_file;
  if (vm->count("baseline")) {
    base_file = (*vm)["baseline"].as<std::string>();
    base = results::read_results(base_file);
  }
  auto result =
      gate::evaluate(policy, cur, cur_file, base_file.empty() ? nullptr : &base, base_file);
  int extra_left = (*vm)["adaptive"].as<int>();
  while (result.overall() == gate::Verdict::kInconclusive && extra_left > 0) {
    run::RunConfig c;
    try {
      c = run::config_of_results(cur);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}: --adaptive cannot repeat this run: {}", cur_file, e.what()),
                  ExitCode::kBadInput);
    }
    c.prefix = own_cluster_prefix(*vm, "hrbgate");
    c.repetitions = std::min(2, extra_left);
    auto add = [](std::vector<std::string>& v, const std::string& x) {
      if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
    };
    for (const auto& r : result.checks) {
      if (r.verdict != gate::Verdict::kInconclusive) continue;
      for (const auto& cell : {r.check.a, r.check.b, r.check.cell}) {
        if (cell.mode.empty()) continue;
        if (cell.mode != "none") add(c.modes, cell.mode);
        add(c.scenarios, cell.scenario);
      }
      add(c.workloads, r.check.workload);
    }
    c.output = "/tmp/hrbench-gate-adaptive-" + std::to_string(getpid()) + ".json";
    log::info("gate: inconclusive; measuring {} more repetition(s)", c.repetitions);
    auto extra = run::run_matrix(c, g_interrupted, {.tty = false});
    std::filesystem::remove(c.output);
    gate::require_comparable(cur, cur_file, extra, "the --adaptive repetitions");
    merge_repetitions(cur, extra);
    extra_left -= c.repetitions;
    result = gate::evaluate(policy, cur, cur_file, base_file.empty() ? nullptr : &base, base_file);
  }
  if (vm->count("output")) results::write_json((*vm)["output"].as<std::string>(), cur);
  std::cout << gate::render_text(result);
  if (vm->count("markdown"))
    write_text((*vm)["markdown"].as<std::string>(),
               gate::render_markdown(result, "hostroute-bench gate"));
  if (vm->count("junit"))
    write_text((*vm)["junit"].as<std::string>(),
               gate::render_junit(result, "hostroute-bench gate"));
  return gate::exit_code(result, vm->count("inconclusive-ok") > 0);
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench report RESULTS.json…: a report from results files (self-contained HTML with "
      "charts, or Markdown)");
  d.add_options()("files", po::value<std::vector<std::string>>(), "results files")(
      "format", po::value<std::string>()->default_value("html"), "html | md")(
      "output,o", po::value<std::string>(), "file to write (default: stdout)");
  po::positional_options_description pos;
  pos.add("files", -1);
  auto vm = parse(args, d, "hrbench report RESULTS.json… [--format html|md] [-o FILE]", pos);
  if (!vm) return 0;
  if (!vm->count("files")) throw Error("give at least one results file", ExitCode::kUsage);
  std::vector<std::pair<std::string, nlohmann::json>> runs;
  for (const auto& f : (*vm)["files"].as<std::vector<std::string>>()) {
    std::ifstream in(f);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.value("schema", "") == "hostroute-bench/lab")
      runs.push_back({f, j});
    else
      runs.push_back({f, results::read_results(f)});
  }
  std::string fmt_ = (*vm)["format"].as<std::string>();
  std::string text;
  if (fmt_ == "html")
    text = report::html(runs);
  else if (fmt_ == "md")
    text = report::markdown(runs);
  else
    throw Error("--format: '" + fmt_ + "' (expected html or md)", ExitCode::kUsage);
  if (vm->count("output")) {
    write_text((*vm)["output"].as<std::string>(), text);
    log::info("report written to {}", (*vm)["output"].as<std::string>());
  } else {
    std::cout << text;
  }
  return 0;
}

int cmd_guard(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench guard monitor: list every iptables/nftables rule in the node netns and which are "
      "user-installed (the check ebpf mode runs first); exit 7 when there are any");
  d.add_options()("action", po::value<std::string>(), "monitor")(
      "node", po::value<std::string>(), "one node (default: all)")("json", "print JSON")(
      "allowlist", po::value<std::string>(), "allowlist file")("ready-fd", po::value<int>(),
                                                               "(internal, guard watch)");
  po::positional_options_description pos;
  pos.add("action", 1);
  auto vm = parse(args, d, "hrbench guard monitor [--node N] [--json]", pos);
  if (!vm) return 0;
  std::string action = vm->count("action") ? (*vm)["action"].as<std::string>() : "";
  topology::StateDir st = existing_cluster(*vm);
  auto l = topology::load_layout(st);
  if (action == "watch") {
    if (!vm->count("ready-fd")) throw Error("guard watch is internal", ExitCode::kUsage);
    if (vm->count("node")) {  // the nodes the blocker guards (a comma-separated list)
      auto names = split_list((*vm)["node"].as<std::string>());
      std::erase_if(l.nodes, [&](const auto& n) {
        return std::find(names.begin(), names.end(), n.name) == names.end();
      });
    }
    return guard::run_watcher(l, st, (*vm)["ready-fd"].as<int>());
  }
  if (action != "monitor") throw Error("usage: hrbench guard monitor", ExitCode::kUsage);
  auto allow = guard::load_allowlist(vm->count("allowlist") ? (*vm)["allowlist"].as<std::string>()
                                                            : guard::default_allowlist_path());
  nlohmann::json out = nlohmann::json::array();
  size_t user = 0;
  for (const auto& n : l.nodes) {
    if (vm->count("node") && (*vm)["node"].as<std::string>() != n.name) continue;
    auto rules = guard::list_rules(n.netns, allow);
    user += guard::user_rules(rules).size();
    if (vm->count("json")) {
      out.push_back(guard::to_json(n.name, rules));
      continue;
    }
    std::cout << fmt::format("{}: {} rules, {} user-installed\n", n.name, rules.size(),
                             guard::user_rules(rules).size());
    for (const auto& r : rules)
      std::cout << fmt::format("  {:<14} {}\n", r.owned() ? r.owner : "USER", r.text());
  }
  if (vm->count("json")) std::cout << out.dump(2) << "\n";
  return user ? static_cast<int>(ExitCode::kRefused) : 0;
}

int cmd_masq_agent(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench masq-agent: the IP Masquerade Agent; watches the config and reprograms the "
      "IP-MASQ-AGENT chain (and in ebpf mode the BPF non-masquerade trie) on change and every "
      "resyncInterval, until stopped");
  d.add_options()("config", po::value<std::string>(),
                  "ip-masq-agent config (default: the running mode's --masq-config)")(
      "once", "apply once and exit (3 when the file is invalid, 1 when programming failed)");
  auto vm = parse(args, d, "hrbench masq-agent [--config FILE] [--once]");
  if (!vm) return 0;
  topology::StateDir st = existing_cluster(*vm);
  auto l = topology::load_layout(st);
  datapath::MasqAgentOptions o;
  o.config = vm->count("config") ? (*vm)["config"].as<std::string>()
                                 : datapath::current_mode(st).masq_config;
  if (o.config.empty()) throw Error("no config file: pass --config FILE", ExitCode::kUsage);
  o.once = vm->count("once") > 0;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  log::info("masq-agent: watching {}", o.config);
  return datapath::run_masq_agent(l, st, o, g_interrupted);
}

int cmd_lab(const std::vector<std::string>& args) {
  po::options_description d(
      "hrbench lab [SCENARIO…]: the documented limits of eBPF host routing, each on a fresh "
      "cluster in legacy and ebpf mode, with a verdict and its evidence (all scenarios by "
      "default: user-rule-bypass, hybrid-nodes, istio-like-redirect, dual-stack, os-support)");
  d.add_options()("scenarios", po::value<std::vector<std::string>>(), "scenarios")(
      "topology,t", po::value<std::string>()->default_value(kDefaultTopology), "topology file")(
      "output,o", po::value<std::string>(),
      "write the verdicts and evidence as JSON (for "
      "`hrbench report`)")("json", "print JSON");
  po::positional_options_description pos;
  pos.add("scenarios", -1);
  auto vm = parse(args, d, "hrbench lab [SCENARIO…] [-o FILE]", pos);
  if (!vm) return 0;
  lab::LabOptions o;
  o.topology = (*vm)["topology"].as<std::string>();
  o.prefix = own_cluster_prefix(*vm, "hrblab");
  o.progress = [](const std::string& s) { log::info("lab: {}", s); };
  auto names = vm->count("scenarios") ? (*vm)["scenarios"].as<std::vector<std::string>>()
                                      : lab::scenario_names();
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto verdicts = lab::run(names, o, g_interrupted);
  std::vector<std::string> v{"hrbench", "lab"};
  v.insert(v.end(), args.begin(), args.end());
  auto doc = lab::to_document(verdicts, shell_join(v));
  if (vm->count("output")) results::write_json((*vm)["output"].as<std::string>(), doc);
  if (vm->count("json"))
    std::cout << doc.dump(2) << "\n";
  else
    std::cout << lab::render_text(verdicts);
  return g_interrupted ? 130 : 0;
}

int cmd_up(const std::vector<std::string>& args) {
  po::options_description d("hrbench up: build the cluster of a topology file");
  d.add_options()("topology,t", po::value<std::string>()->default_value(kDefaultTopology),
                  "topology file")("mode,m", po::value<std::string>()->default_value("none"),
                                   "datapath mode to apply once up: none | legacy | bpf-lb | ebpf");
  add_mode_options(d);
  auto vm = parse(args, d, "hrbench up [--topology FILE] [--prefix P]");
  if (!vm) return 0;
  std::string prefix = prefix_of(*vm);
  std::string file = (*vm)["topology"].as<std::string>();
  std::string yaml = read_text_file(file, "topology file");
  auto spec = topology::parse_spec_string(yaml, file);  // bad input: nothing is created
  auto layout = topology::plan(spec, prefix);
  auto mode = mode_options(*vm, (*vm)["mode"].as<std::string>(), spec);
  datapath::make_mode(mode);  // validate the mode's input before anything is created
  topology::StateDir st(prefix);
  Fd lock = st.lock();
  if (st.exists())
    throw Error(st.complete() ? "a cluster with prefix '" + prefix +
                                    "' is already up; run `hrbench down` first"
                              : "a cluster with prefix '" + prefix +
                                    "' was left half-made by an interrupted run; run "
                                    "`hrbench clean` first",
                ExitCode::kBusy);
  auto t0 = std::chrono::steady_clock::now();
  topology::bring_up(layout, st, yaml, [](const std::string& s) { log::info("up: {}", s); });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("cluster '{}' up in {:.2f} s: {} nodes, {} pods, {} external hosts", spec.name, secs,
            layout.nodes.size(), layout.pods().size(), layout.externals.size());
  if (mode.name != "none") {
    try {
      datapath::switch_mode(st, layout, mode);
    } catch (const std::exception& e) {
      log::error("mode {} failed; the cluster stays up in mode none ({})", mode.name, e.what());
      throw;
    }
  }
  return 0;
}

int cmd_status(const std::vector<std::string>& args) {
  po::options_description d("hrbench status: show the cluster");
  d.add_options()("json", "print JSON");
  auto vm = parse(args, d, "hrbench status [--json] [--prefix P]");
  if (!vm) return 0;
  topology::StateDir st = existing_cluster(*vm);
  auto l = topology::load_layout(st);
  auto mode = datapath::current_mode(st);
  if (vm->count("json")) {
    auto j = layout_json(l, st);
    j["mode"] = mode.to_json();
    if (mode.name == "ebpf" || mode.name == "bpf-lb") j["bpfCounters"] = datapath::counters_json(l);
    std::cout << j.dump(2) << "\n";
  } else {
    print_layout(l, st);
    std::cout << "mode: " << mode.name;
    if (mode.name == "legacy")
      std::cout << fmt::format(" (iptables-{}, {} services x {} endpoints, masq config {})",
                               datapath::backend_name(mode.backend), mode.services,
                               mode.endpoints_per_service,
                               mode.masq_config.empty() ? "agent defaults" : mode.masq_config);
    std::cout << "\n";
    if (mode.name == "ebpf") {
      auto g = guard::read_blocker_counters(st);
      std::cout << fmt::format(
          "  iptables blocker: {} ({}); x_tables writes refused {}, nftables objects undone {}\n",
          g.active ? "active" : "NOT active", g.variant, g.refused_setsockopt, g.undone_nft);
    }
    if (mode.name == "ebpf" || mode.name == "bpf-lb") {
      for (const auto& [node, progs] : datapath::read_counters(l))
        for (const auto& [prog, c] : progs) {
          std::string line;
          for (int r = 0; r < HRB_R__MAX; ++r)
            if (c[r]) line += fmt::format(" {}={}", datapath::reason_name(r), c[r]);
          std::cout << fmt::format("  {} {}:{}\n", node, prog,
                                   line.empty() ? " (nothing yet)" : line);
        }
    }
  }
  return 0;
}

int cmd_exec(const std::vector<std::string>& args) {
  // Everything after "--" (or after NAME) is the command, untouched by option parsing.
  std::vector<std::string> mine, cmd;
  auto dd = std::find(args.begin(), args.end(), "--");
  mine.assign(args.begin(), dd);
  if (dd != args.end()) cmd.assign(dd + 1, args.end());
  po::options_description d(
      "hrbench exec NAME -- CMD…: run CMD in the netns of a pod, node, external host or the "
      "fabric (the root mount namespace is kept, so bpffs stays visible)");
  d.add_options()("name", po::value<std::string>(), "pod, node, external host or 'fabric'");
  po::positional_options_description pos;
  pos.add("name", 1);
  auto vm = parse(mine, d, "hrbench exec NAME -- CMD [ARG…]", pos);
  if (!vm) return 0;
  if (!vm->count("name") || cmd.empty())
    throw Error("usage: hrbench exec NAME -- CMD [ARG…]", ExitCode::kUsage);
  topology::StateDir st = existing_cluster(*vm);
  auto l = topology::load_layout(st);
  std::string name = (*vm)["name"].as<std::string>();
  auto ep = l.find(name);
  if (!ep) {
    std::string names = "fabric";
    for (const auto& n : l.nodes) names += ", " + n.name;
    for (const auto* p : l.pods()) names += ", " + p->name;
    for (const auto& e : l.externals) names += ", " + e.name;
    throw Error("no pod, node or external host named '" + name + "' (known: " + names + ")",
                ExitCode::kNotFound);
  }
  Fd ns = open_netns(ep->netns);
  if (setns(ns.get(), CLONE_NEWNET) != 0) throw_errno("setns into " + ep->netns);
  std::vector<char*> argv;
  for (auto& a : cmd) argv.push_back(a.data());
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  throw_errno("exec " + cmd[0]);
}

int teardown(const std::vector<std::string>& args, bool clean) {
  po::options_description d(clean ? "hrbench clean: remove everything hrbench made with a prefix, "
                                    "also after a crash (--all: every prefix)"
                                  : "hrbench down: take the cluster down");
  if (clean) d.add_options()("all", "every prefix recorded under the state directory");
  auto vm =
      parse(args, d, clean ? "hrbench clean [--prefix P | --all]" : "hrbench down [--prefix P]");
  if (!vm) return 0;
  std::vector<std::string> prefixes{prefix_of(*vm)};
  if (clean && vm->count("all")) prefixes = topology::StateDir::all_prefixes();
  int rc = 0;
  for (const auto& p : prefixes) {
    topology::StateDir st(p);
    if (!clean && !st.exists()) {
      std::cerr << "no cluster with prefix '" << p << "'\n";
      rc = static_cast<int>(ExitCode::kNotFound);
      continue;
    }
    Fd lock = st.lock();
    auto t0 = std::chrono::steady_clock::now();
    auto r = topology::tear_down(st);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log::info("prefix '{}': removed {} namespaces{}{} in {:.2f} s", p, r.netns_removed,
              r.processes_killed ? fmt::format(", killed {} processes", r.processes_killed) : "",
              r.helpers_killed
                  ? fmt::format(", killed {} helpers left by a dead holder", r.helpers_killed)
                  : "",
              secs);
  }
  return rc;
}

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> m{
      {"doctor", {"probe every prerequisite (table or --json)", cmd_doctor}},
      {"topo", {"topo validate FILE…: check topology files", cmd_topo}},
      {"up", {"build the cluster of a topology", cmd_up}},
      {"status", {"show the cluster", cmd_status}},
      {"mode", {"switch the datapath mode of the running cluster", cmd_mode}},
      {"traffic", {"run one workload between two members of the cluster", cmd_traffic}},
      {"run",
       {"the benchmark: every mode x scenario x workload, results file, comparison", cmd_run}},
      {"compare", {"two results files side by side", cmd_compare}},
      {"gate", {"CI verdict from results files and a policy (exit 0/1/2/3)", cmd_gate}},
      {"report", {"HTML or Markdown report from results files", cmd_report}},
      {"guard", {"guard monitor: user-installed iptables/nft rules in the nodes", cmd_guard}},
      {"masq-agent",
       {"the IP Masquerade Agent: reprogram masquerade on config change", cmd_masq_agent}},
      {"lab", {"the limits of eBPF host routing, shown: works / breaks, with evidence", cmd_lab}},
      {"exec", {"run a command in a pod, node or external host", cmd_exec}},
      {"down", {"take the cluster down", [](const auto& a) { return teardown(a, false); }}},
      {"clean",
       {"remove everything of a prefix, also after a crash",
        [](const auto& a) { return teardown(a, true); }}},
  };
  return m;
}

void usage(std::ostream& o) {
  o << "hrbench — eBPF host routing vs legacy iptables routing, measured on netns clusters\n\n"
       "usage: hrbench COMMAND [OPTIONS]   (hrbench COMMAND --help for each)\n\ncommands:\n";
  for (const auto& [name, c] : commands()) o << fmt::format("  {:<8} {}\n", name, c.summary);
  o << "\nexit codes: 0 ok, 1 failure, 2 usage, 3 invalid input (nothing changed), "
       "4 missing prerequisite, 5 busy, 6 not found, 7 refused (user-installed rules), 130 "
       "interrupted (run: partial results written); gate: 0 pass, 1 regression, 2 "
       "inconclusive, 3 error\n";
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(std::cerr);
    return static_cast<int>(ExitCode::kUsage);
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  auto it = commands().find(name);
  if (it == commands().end()) {
    std::cerr << "hrbench: unknown command '" << name << "'\n\n";
    usage(std::cerr);
    return static_cast<int>(ExitCode::kUsage);
  }
  try {
    return it->second.run(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const Error& e) {
    std::cerr << "hrbench " << name << ": " << e.what() << "\n";
    // The gate's own documented codes: 3 for any usage or input error (1 and 2 are verdicts).
    if (name == "gate") return 3;
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::cerr << "hrbench " << name << ": " << e.what() << "\n";
    if (name == "gate") return 3;
    return static_cast<int>(ExitCode::kFailure);
  }
}
