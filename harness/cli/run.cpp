// hrbench run: the benchmark matrix (and --scan), its results file, exports and summary.
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/log.hpp"
#include "results/profiles.hpp"
#include "results/results.hpp"
#include "run/run.hpp"
#include "run/shard.hpp"

namespace hrb::cli {

namespace {

struct RunOptions {
  CommonOptions common;
  std::string topology;
  std::string modes, scenarios, workloads, families;
  boost::optional<int> repetitions;
  boost::optional<double> duration, warmup;
  int flows = 1;
  size_t size = 0;
  bool quick = false, thorough = false;
  boost::optional<std::string> scan;
  int max_retries = 10;
  boost::optional<std::string> budget;
  boost::optional<std::string> max_steal;
  boost::optional<std::string> output;
  std::vector<std::string> exports;
  boost::optional<std::string> pin_cpus;
  uint32_t calibration_delay = 0;
  boost::optional<double> alternate;
  boost::optional<std::string> shard;
  bool profile = false;
  ModeFlags mode_flags;
};

// --- validators of flag values: each throws Error(kUsage) naming its flag --------------------

// --max-steal PCT|none -> the fraction of stolen CPU time past which a trial is invalid (1: off).
double parse_max_steal(const std::string& v) {
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
  return pct == 0 ? 1.0 : pct / 100;  // 1: nothing is marked
}

// --pin-cpus CLIENT,SERVER
std::pair<int, int> parse_pin_cpus(const std::string& v) {
  auto cpus = split_list(v);
  try {
    if (cpus.size() != 2) throw std::invalid_argument("two CPUs");
    return {std::stoi(cpus[0]), std::stoi(cpus[1])};
  } catch (const std::exception&) {
    throw Error("--pin-cpus: expected CLIENT,SERVER (CPU numbers)", ExitCode::kUsage);
  }
}

// --scan PARAM=V1,V2,… (the parameter's name is checked by run::validate)
std::pair<std::string, std::vector<int>> parse_scan(const std::string& sc) {
  auto eq = sc.find('=');
  if (eq == std::string::npos) throw Error("--scan PARAM=V1,V2,…", ExitCode::kUsage);
  std::pair<std::string, std::vector<int>> out{sc.substr(0, eq), {}};
  for (const auto& v : split_list(sc.substr(eq + 1))) {
    try {
      out.second.push_back(std::stoi(v));
    } catch (...) {
      throw Error("--scan: '" + v + "' is not a number", ExitCode::kUsage);
    }
  }
  return out;
}

void check_exports(const std::vector<std::string>& exports) {
  for (const auto& e : exports)
    if (e != "gbench" && e != "csv")
      throw Error("--export: '" + e + "' (expected gbench or csv)", ExitCode::kUsage);
}

// The matrix the options ask for, every value checked before anything is built.
run::RunConfig run_config(const RunOptions& o, const Args& args) {
  run::RunConfig c;
  c.topology = o.topology;
  c.prefix = own_cluster_prefix(o.common, "hrbrun");
  if (o.quick && o.thorough)
    throw Error("--quick and --thorough exclude each other", ExitCode::kUsage);
  if (o.quick) run::apply_preset(c, "quick");
  if (o.thorough) run::apply_preset(c, "thorough");
  c.modes = split_list(o.modes);
  c.scenarios = split_list(o.scenarios);
  c.workloads = split_list(o.workloads);
  if (o.repetitions) c.repetitions = *o.repetitions;
  if (o.duration) c.duration_s = *o.duration;
  if (o.warmup) c.warmup_s = *o.warmup;
  c.flows = o.flows;
  c.msg_size = o.size;
  c.max_retries = o.max_retries;
  if (o.budget) c.budget_s = run::parse_budget(*o.budget);
  if (o.max_steal) c.max_steal_fraction = parse_max_steal(*o.max_steal);
  c.calibration_delay_loops = o.calibration_delay;
  if (o.alternate) c.alternate_s = *o.alternate;
  c.profile = o.profile;
  if (o.pin_cpus) std::tie(c.client_cpu, c.server_cpu) = parse_pin_cpus(*o.pin_cpus);
  if (o.output) c.output = *o.output;
  if (o.scan) std::tie(c.scan_param, c.scan_values) = parse_scan(*o.scan);
  if (o.shard) c.shard = run::parse_shard(*o.shard);
  auto spec = topology::parse_spec_file(c.topology);
  // Without --families: the topology's first family (ipv6 on a single-stack IPv6 one).
  c.families = o.families.empty() ? std::vector<Family>{spec.first_family()}
                                  : run::parse_families(split_list(o.families));
  c.mode_options = mode_options(o.mode_flags, "none", spec);
  // KIND@NAME=DIR: measured with the BPF objects in DIR, recorded (and named by gate policies)
  // as KIND@NAME; DIR is kept in modeOptions.objectAliases (datapath/mode.hpp).
  try {
    datapath::define_mode_aliases(c.modes, c.mode_options);
  } catch (const Error& e) {
    throw Error(std::string("--modes: ") + e.what(), e.code());
  }
  c.command_line = command_line("run", args);
  check_exports(o.exports);
  run::validate(c);
  return c;
}

int run_run(const RunOptions& o, const Args& args) {
  run::RunConfig c = run_config(o, args);
  InterruptFlag::install();
  auto doc = run::run_matrix(c, InterruptFlag::get(), {.tty = isatty(STDERR_FILENO) != 0});
  const std::string out = doc.output.value_or("");
  std::string base = out.size() > 5 && out.ends_with(".json") ? out.substr(0, out.size() - 5) : out;
  for (const auto& e : o.exports) {
    if (e == "gbench") {
      results::write_json(base + ".gbench.json", results::to_gbench(doc));
      log::info("Google Benchmark format: {}.gbench.json", base);
    } else {
      std::ofstream(base + ".csv") << results::to_csv(doc);
      log::info("CSV: {}.csv", base);
    }
  }
  std::cout << results::summary_table(doc);
  if (auto profiles = results::profiles_of(out, doc)) {
    std::cout << "\nwhere the CPU went (" << doc.profiles->file << "):\n";
    for (const auto& cmp :
         results::bucket_comparisons(*profiles, doc.config.modes.value_or(c.modes)))
      std::cout << "  " << cmp.title() << ": " << results::bucket_sentence(cmp) << "\n";
  }
  if (auto shortfall = results::short_cells_text(doc); !shortfall.empty())
    std::cout << "\n" << shortfall;
  std::cout << fmt::format("\nresults: {} ({} trials{})\n", out, doc.trials.size(),
                           doc.interrupted.value_or(false)        ? ", INTERRUPTED"
                           : doc.budget_exhausted.value_or(false) ? ", BUDGET RAN OUT"
                                                                  : "");
  return InterruptFlag::raised() ? 130 : 0;
}

}  // namespace

int cmd_run(const Args& args) {
  RunOptions o;
  po::options_description d(
      "hrbench run: build a cluster, measure every mode on every scenario and workload "
      "(interleaved, repeated), write a results file and print the comparison");
  d.add_options()("topology,t", po::value(&o.topology)->default_value(kDefaultTopology),
                  "topology file")(
      "modes", po::value(&o.modes)->default_value("legacy,ebpf"),
      "modes, comma-separated (legacy, bpf-lb, ebpf; the ladder: all three). KIND@DIR or "
      "KIND@NAME=DIR (recorded as KIND@NAME): ebpf, bpf-lb or ebpf-delay with the BPF objects "
      "of another build (DIR: its build directory or its bpf/)")(
      "scenarios",
      po::value(&o.scenarios)
          ->default_value(
              "pod-pod-same-node,pod-pod-cross-node,pod-service,pod-external,node-node"),
      "scenarios, comma-separated (pod-service: node1's pod to a ClusterIP, port 80, whose "
      "backends, port 8080, are node2's pods; external-nodeport, not in the default list: the "
      "external host to node1's IP at that service's NodePort; node-node is the ceiling, "
      "measured in mode none)")(
      "workloads", po::value(&o.workloads)->default_value("tcp_rr,tcp_crr,tcp_stream,udp_stream"),
      "workloads, comma-separated (also udp_rr; pps: XDP frames into the cross-node server pod)")(
      "families", po::value(&o.families),
      "address families, comma-separated: ipv4, ipv6 (default: ipv4, or ipv6 on a single-stack "
      "IPv6 topology; both need a dual-stack topology, e.g. topologies/dual-stack.yaml; pps is "
      "measured over ipv4 only)")("repetitions,r", po::value(&o.repetitions),
                                  "repetitions of the matrix (default 3)")(
      "duration", po::value(&o.duration), "measured seconds per trial (default 1.5)")(
      "warmup", po::value(&o.warmup), "discarded seconds before each trial (default 0.4)")(
      "flows", po::value(&o.flows)->default_value(1), "parallel flows per trial")(
      "size", po::value(&o.size)->default_value(0), "message size (0: each workload's default)")(
      "quick", po::bool_switch(&o.quick), "preset: 1 repetition of 1 s trials")(
      "thorough", po::bool_switch(&o.thorough), "preset: 7 repetitions of 10 s trials")(
      "scan", po::value(&o.scan),
      "vary one parameter, e.g. services=0,1000,5000,10000 or flows=1,2,4")(
      "max-retries", po::value(&o.max_retries)->default_value(10),
      "re-runs of a trial marked invalid, each re-queued later in the interleaved order")(
      "budget", po::value(&o.budget),
      "SECONDS (or 90s, 10m, 1h) the trials may take, re-runs included; then the run stops and "
      "names the cells short of valid repetitions (default: 2 x the planned time + 60 s)")(
      "max-steal", po::value(&o.max_steal),
      "PCT: a trial with more CPU steal than this is marked invalid (default 10; 0 or none: "
      "off, for shared machines where a valid trial is needed)")(
      "output,o", po::value(&o.output),
      "results file, or an existing directory to write <run id>.json into (default results/)")(
      "export", po::value(&o.exports)->multitoken(),
      "also write gbench (Google Benchmark JSON) and/or csv next to the results file")(
      "pin-cpus", po::value(&o.pin_cpus),
      "CLIENT,SERVER: pin the generators' client and server threads to these CPUs (0,0: "
      "colocated, a transaction costs its CPU work; what the CI gate measures)")(
      "calibration-delay", po::value(&o.calibration_delay)->default_value(0),
      "busy-loop iterations per program run in the pseudo-mode ebpf-delay (gate calibration)")(
      "alternate", po::value(&o.alternate),
      "SECONDS: measure the --modes (variants of one BPF mode: ebpf@base=DIR,ebpf or "
      "ebpf,ebpf-delay) in the same seconds, switching the datapath between them every SECONDS "
      "(e.g. 0.05) through a tail-call dispatcher, so that the machine's drift hits them alike")(
      "shard", po::value(&o.shard),
      "INDEX/COUNT: measure only part INDEX of COUNT of the plan: every COUNT-th round (one scan "
      "value x one repetition, all its modes and scenarios), from round INDEX; join the COUNT "
      "files with hrbench merge. --budget applies per shard")(
      "profile", po::bool_switch(&o.profile),
      "after the measured trials, one more repetition of every cell with `perf record -e "
      "cpu-clock -a -g -F 999` sampling the machine; folded stacks and CPU buckets go to "
      "<results>.profiles.json (never into the trials: gate and summary do not see them; "
      "docs/profiles.md)");
  add_mode_options(d, o.mode_flags);
  if (!parse(args, d, "hrbench run [--quick|--thorough] [OPTIONS]", o.common)) return 0;
  return run_run(o, args);
}

}  // namespace hrb::cli
