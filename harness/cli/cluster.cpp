// The cluster's life: topo validate, up, status, exec, down, clean.
#include <algorithm>
#include <chrono>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/log.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/status.hpp"
#include "guard/blocker.hpp"
#include "topology/cluster.hpp"
#include "topology/view.hpp"

namespace hrb::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --- topo validate ---------------------------------------------------------------------------

struct TopoOptions {
  CommonOptions common;
  std::string action;
  std::vector<std::string> files;
};

int run_topo_validate(const TopoOptions& o) {
  int rc = 0;
  for (const auto& f : o.files) {
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

// --- up --------------------------------------------------------------------------------------

struct UpOptions {
  CommonOptions common;
  std::string topology;
  std::string mode;
  ModeFlags mode_flags;
};

int run_up(const UpOptions& o) {
  std::string prefix = prefix_of(o.common);
  std::string yaml = read_text_file(o.topology, "topology file");
  auto spec = topology::parse_spec_string(yaml, o.topology);  // bad input: nothing is created
  auto layout = topology::plan(spec, prefix);
  auto mode = mode_options(o.mode_flags, o.mode, spec);
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
  log::info("cluster '{}' up in {:.2f} s: {} nodes, {} pods, {} external hosts", spec.name,
            seconds_since(t0), layout.nodes.size(), layout.pods().size(), layout.externals.size());
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

// --- status ----------------------------------------------------------------------------------

struct StatusOptions {
  CommonOptions common;
  bool json = false;
};

int run_status(const StatusOptions& o) {
  topology::StateDir st = existing_cluster(o.common);
  auto l = topology::load_layout(st);
  auto mode = datapath::current_mode(st);
  if (o.json) {
    auto j = topology::to_json(l, st.complete());
    j["mode"] = mode.to_json();
    if (datapath::has_bpf_counters(mode)) j["bpfCounters"] = datapath::counters_json(l);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << topology::to_table(l, st.complete());
  std::cout << "mode: " << datapath::describe_mode(mode) << "\n";
  if (mode.name == "ebpf") {
    auto g = guard::read_blocker_counters(st);
    std::cout << fmt::format("  iptables blocker: {} ({}); x_tables writes refused {}, {} {}\n",
                             g.active ? "active" : "NOT active", g.variant, g.refused_setsockopt,
                             g.lsm ? "nftables transactions refused" : "nftables objects undone",
                             g.lsm ? g.refused_nft : g.undone_nft);
  }
  if (datapath::has_bpf_counters(mode))
    std::cout << datapath::render_counters(datapath::read_counters(l));
  return 0;
}

// --- exec ------------------------------------------------------------------------------------

struct ExecOptions {
  CommonOptions common;
  boost::optional<std::string> name;
  std::vector<std::string> command;  // everything after "--"
};

int run_exec(const ExecOptions& o) {
  topology::StateDir st = existing_cluster(o.common);
  auto l = topology::load_layout(st);
  const std::string& name = *o.name;
  auto ep = l.find(name);
  if (!ep) {
    std::string names = "fabric";
    for (const auto& n : l.nodes) names += ", " + n.name;
    for (const auto* p : l.pods()) names += ", " + p->name;
    for (const auto& e : l.externals) names += ", " + e.name;
    throw Error("no pod, node or external host named '" + name + "' (known: " + names + ")",
                ExitCode::kNotFound);
  }
  exec_in_netns(ep->netns, o.command);
}

// --- down, clean -----------------------------------------------------------------------------

// Tears down each prefix; `down` (clean = false) reports a prefix without a cluster (exit 6).
int run_teardown(const std::vector<std::string>& prefixes, bool clean) {
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
    log::info("prefix '{}': removed {} namespaces{}{} in {:.2f} s", p, r.netns_removed,
              r.processes_killed ? fmt::format(", killed {} processes", r.processes_killed) : "",
              r.helpers_killed
                  ? fmt::format(", killed {} helpers left by a dead holder", r.helpers_killed)
                  : "",
              seconds_since(t0));
  }
  return rc;
}

}  // namespace

int cmd_topo(const Args& args) {
  TopoOptions o;
  po::options_description d(
      "hrbench topo validate FILE…: check topology files without creating anything");
  d.add_options()("action", po::value(&o.action), "validate")("files", po::value(&o.files),
                                                              "topology files");
  po::positional_options_description pos;
  pos.add("action", 1).add("files", -1);
  if (!parse(args, d, "hrbench topo validate FILE…", o.common, pos)) return 0;
  if (o.action != "validate" || o.files.empty())
    throw Error("usage: hrbench topo validate FILE…", ExitCode::kUsage);
  return run_topo_validate(o);
}

int cmd_up(const Args& args) {
  UpOptions o;
  po::options_description d("hrbench up: build the cluster of a topology file");
  d.add_options()("topology,t", po::value(&o.topology)->default_value(kDefaultTopology),
                  "topology file")("mode,m", po::value(&o.mode)->default_value("none"),
                                   "datapath mode to apply once up: none | legacy | bpf-lb | ebpf");
  add_mode_options(d, o.mode_flags);
  if (!parse(args, d, "hrbench up [--topology FILE] [--prefix P]", o.common)) return 0;
  return run_up(o);
}

int cmd_status(const Args& args) {
  StatusOptions o;
  po::options_description d("hrbench status: show the cluster");
  d.add_options()("json", po::bool_switch(&o.json), "print JSON");
  if (!parse(args, d, "hrbench status [--json] [--prefix P]", o.common)) return 0;
  return run_status(o);
}

int cmd_exec(const Args& args) {
  ExecOptions o;
  // Everything after "--" is the command, untouched by option parsing.
  auto dd = std::find(args.begin(), args.end(), "--");
  Args mine(args.begin(), dd);
  if (dd != args.end()) o.command.assign(dd + 1, args.end());
  po::options_description d(
      "hrbench exec NAME -- CMD…: run CMD in the netns of a pod, node, external host or the "
      "fabric (the root mount namespace is kept, so bpffs stays visible)");
  d.add_options()("name", po::value(&o.name), "pod, node, external host or 'fabric'");
  po::positional_options_description pos;
  pos.add("name", 1);
  if (!parse(mine, d, "hrbench exec NAME -- CMD [ARG…]", o.common, pos)) return 0;
  if (!o.name || o.command.empty())
    throw Error("usage: hrbench exec NAME -- CMD [ARG…]", ExitCode::kUsage);
  return run_exec(o);
}

int cmd_down(const Args& args) {
  CommonOptions common;
  po::options_description d("hrbench down: take the cluster down");
  if (!parse(args, d, "hrbench down [--prefix P]", common)) return 0;
  return run_teardown({prefix_of(common)}, false);
}

int cmd_clean(const Args& args) {
  CommonOptions common;
  bool all = false;
  po::options_description d(
      "hrbench clean: remove everything hrbench made with a prefix, also after a crash (--all: "
      "every prefix)");
  d.add_options()("all", po::bool_switch(&all), "every prefix recorded under the state directory");
  if (!parse(args, d, "hrbench clean [--prefix P | --all]", common)) return 0;
  std::string prefix = prefix_of(common);
  return run_teardown(all ? topology::StateDir::all_prefixes() : std::vector<std::string>{prefix},
                      true);
}

}  // namespace hrb::cli
