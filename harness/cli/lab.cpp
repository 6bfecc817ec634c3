// hrbench lab: the documented limits of eBPF host routing, each shown with its evidence.
#include <iostream>

#include "cli/commands.hpp"
#include "core/interrupt.hpp"
#include "core/log.hpp"
#include "lab/lab.hpp"
#include "results/results.hpp"

namespace hrb::cli {

namespace {

struct LabCmdOptions {
  CommonOptions common;
  std::vector<std::string> scenarios;  // empty: all
  std::string topology;
  boost::optional<std::string> output;
  bool json = false;
};

int run_lab(const LabCmdOptions& o, const Args& args) {
  lab::LabOptions l;
  l.topology = o.topology;
  l.prefix = own_cluster_prefix(o.common, "hrblab");
  l.progress = [](const std::string& s) { log::info("lab: {}", s); };
  auto names = o.scenarios.empty() ? lab::scenario_names() : o.scenarios;
  InterruptFlag::install();
  auto verdicts = lab::run(names, l, InterruptFlag::get());
  auto doc = results::to_json(lab::to_document(verdicts, command_line("lab", args)));
  if (o.output) results::write_json(*o.output, doc);
  if (o.json)
    std::cout << doc.dump(2) << "\n";
  else
    std::cout << lab::render_text(verdicts);
  return InterruptFlag::raised() ? 130 : 0;
}

}  // namespace

int cmd_lab(const Args& args) {
  LabCmdOptions o;
  po::options_description d(
      "hrbench lab [SCENARIO…]: the documented limits of eBPF host routing, each on a fresh "
      "cluster in legacy and ebpf mode, with a verdict and its evidence (all scenarios by "
      "default: user-rule-bypass, hybrid-nodes, istio-like-redirect, dual-stack, os-support)");
  d.add_options()("scenarios", po::value(&o.scenarios), "scenarios")(
      "topology,t", po::value(&o.topology)->default_value(kDefaultTopology), "topology file")(
      "output,o", po::value(&o.output),
      "write the verdicts and evidence as JSON (for `hrbench report`)")(
      "json", po::bool_switch(&o.json), "print JSON");
  po::positional_options_description pos;
  pos.add("scenarios", -1);
  if (!parse(args, d, "hrbench lab [SCENARIO…] [-o FILE]", o.common, pos)) return 0;
  return run_lab(o, args);
}

}  // namespace hrb::cli
