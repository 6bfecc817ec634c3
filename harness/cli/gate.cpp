// hrbench gate (the CI verdict, optionally adaptive) and hrbench compare.
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/interrupt.hpp"
#include "gate/gate.hpp"
#include "results/results.hpp"
#include "run/adaptive.hpp"

namespace hrb::cli {

namespace {

struct GateOptions {
  CommonOptions common;
  boost::optional<std::string> current;
  std::string policy;
  boost::optional<std::string> baseline;
  boost::optional<std::string> markdown, junit;
  bool inconclusive_ok = false;
  bool allow_other_environment = false;
  boost::optional<std::string> workloads;
  int adaptive = 0;
  boost::optional<std::string> output;
  std::string family;
};

int run_gate(const GateOptions& o) {
  const std::string& cur_file = *o.current;
  auto policy = gate::parse_policy_file(o.policy);
  if (o.workloads) {
    policy = gate::only_workloads(std::move(policy), split_list(*o.workloads));
    if (policy.checks.empty())
      throw Error("--workloads " + *o.workloads + ": no check of " + policy.file +
                      " is about these workloads",
                  ExitCode::kUsage);
  }
  const auto full = results::read_results(cur_file);
  // Without --family: the run's first family (ipv4, or ipv6 for a single-stack IPv6 run).
  const std::string family = o.family.empty() ? results::families(full).front() : o.family;
  auto cur = results::select_family(full, family, cur_file);
  results::Run base;
  std::string base_file;
  if (o.baseline) {
    base_file = *o.baseline;
    base = results::select_family(results::read_results(base_file), family, base_file);
  }
  run::AdaptiveOptions a{.max_extra_repetitions = o.adaptive};
  a.evaluate.allow_other_environment = o.allow_other_environment;
  if (o.adaptive > 0) a.prefix = own_cluster_prefix(o.common, a.prefix);
  // The interrupt flag is polled but no handler is installed: a signal ends `gate` at once.
  auto result = run::adaptive_gate(policy, cur, cur_file, base_file.empty() ? nullptr : &base,
                                   base_file, a, InterruptFlag::get());
  if (o.output) {
    // The merged run keeps the other families' trials (judged or not, they are the run's).
    results::Run merged = cur;
    merged.config.families = full.config.families;
    for (const auto& t : full.trials)
      if (t.fam() != family) merged.trials.push_back(t);
    results::write_results(*o.output, merged);
  }
  std::cout << gate::render_text(result);
  if (o.markdown)
    write_text_file(*o.markdown, gate::render_markdown(result, "hostroute-bench gate"));
  if (o.junit) write_text_file(*o.junit, gate::render_junit(result, "hostroute-bench gate"));
  return gate::exit_code(result, o.inconclusive_ok);
}

struct CompareOptions {
  CommonOptions common;
  std::vector<std::string> files;
  bool markdown = false;
  std::string family;
};

int run_compare(const CompareOptions& o) {
  const auto ra = results::read_results(o.files[0]);
  const std::string family = o.family.empty() ? results::families(ra).front() : o.family;
  auto a = results::select_family(ra, family, o.files[0]);
  auto b = results::select_family(results::read_results(o.files[1]), family, o.files[1]);
  std::cout << gate::compare_runs(a, b, o.markdown);
  return 0;
}

}  // namespace

int cmd_gate(const Args& args) {
  GateOptions o;
  po::options_description d(
      "hrbench gate RESULTS.json: evaluate the checks of a policy file; exit 0 pass, 1 "
      "regression, 2 inconclusive, 3 usage or input error, or a baseline that is not "
      "comparable");
  d.add_options()("current", po::value(&o.current), "the run to judge")(
      "policy", po::value(&o.policy)->default_value(HRB_SOURCE_DIR "/results/gate.yaml"),
      "policy file")("baseline", po::value(&o.baseline), "baseline run for baseline checks")(
      "markdown", po::value(&o.markdown), "also write a Markdown summary to FILE")(
      "junit", po::value(&o.junit), "also write JUnit XML to FILE")(
      "inconclusive-ok", po::bool_switch(&o.inconclusive_ok),
      "exit 0 when the verdict is inconclusive")(
      "allow-other-environment", po::bool_switch(&o.allow_other_environment),
      "judge baseline checks although the baseline was measured in another environment (CPU, "
      "vCPUs, kernel, virtualisation); every output says so. Without it such a baseline is not "
      "comparable: exit 3")(
      "workloads", po::value(&o.workloads),
      "evaluate only the policy's checks of these workloads (comma-separated)")(
      "adaptive", po::value(&o.adaptive)->default_value(0),
      "when inconclusive, measure up to N more repetitions of the checks' cells (root)")(
      "output", po::value(&o.output), "with --adaptive: write the merged run here")(
      "family", po::value(&o.family),
      "judge the trials of this address family (ipv4 | ipv6; run --families; default: the "
      "run's first, ipv4 unless it measured only ipv6); a trial without one is ipv4");
  po::positional_options_description pos;
  pos.add("current", 1);
  if (!parse(args, d, "hrbench gate RESULTS.json [--policy FILE] [--baseline FILE]", o.common, pos))
    return 0;
  if (!o.current) throw Error("give the results file to judge", ExitCode::kUsage);
  return run_gate(o);
}

int cmd_compare(const Args& args) {
  CompareOptions o;
  po::options_description d("hrbench compare A.json B.json: two runs side by side (B/A, U test)");
  d.add_options()("files", po::value(&o.files), "two results files")(
      "markdown", po::bool_switch(&o.markdown), "print a Markdown table")(
      "family", po::value(&o.family),
      "compare the trials of this address family (ipv4 | ipv6; default: A's first, ipv4 "
      "unless A measured only ipv6)");
  po::positional_options_description pos;
  pos.add("files", 2);
  if (!parse(args, d, "hrbench compare A.json B.json [--markdown]", o.common, pos)) return 0;
  if (o.files.size() != 2) throw Error("give two results files", ExitCode::kUsage);
  return run_compare(o);
}

}  // namespace hrb::cli
