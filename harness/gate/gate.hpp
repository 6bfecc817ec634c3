#pragma once
// The CI performance gate: checks declared in a policy file (results/gate.yaml, documented in
// docs/gate.md), evaluated on results files only — never on a live run.
//   relative: within one run, B / A of one metric (e.g. ebpf vs legacy, or ebpf vs node-node),
//             from per-repetition pairs (interleaved, so drift cancels)
//   baseline: the current run vs a committed baseline run, per metric
// Each check's ratio comes with a seeded bootstrap interval; a check fails only when the whole
// interval is past its bound, passes when the whole interval is on the right side, and is
// inconclusive otherwise (or with too few pairs).
#include <optional>
#include <string>
#include <vector>

#include "results/document.hpp"

namespace hrb::gate {

enum class Verdict { kPass, kFail, kInconclusive };
const char* verdict_name(Verdict v);

struct Cell {
  std::string mode, scenario;
};

struct Check {
  std::string name;
  std::string kind;  // relative | baseline
  std::string metric, workload;
  Cell a, b;                                   // relative: ratio is b / a
  Cell cell;                                   // baseline: the cell compared with the baseline run
  std::optional<double> min_ratio, max_ratio;  // relative bounds on b / a
  double max_regression = 0.05;                // baseline: allowed worsening (fraction)
};

struct Policy {
  std::string file;
  double confidence = 0.95;
  int resamples = 2000;
  uint64_t seed = 1;
  size_t min_pairs = 3;
  std::vector<Check> checks;
};

// Throws Error(kBadInput) naming file, line and key.
Policy parse_policy_file(const std::string& path);
Policy parse_policy_string(const std::string& yaml, const std::string& label);

// The policy with only the checks about one of `workloads` (`hrbench gate --workloads`); the
// result may have no checks left.
Policy only_workloads(Policy p, const std::vector<std::string>& workloads);

struct CheckResult {
  Check check;
  Verdict verdict = Verdict::kInconclusive;
  size_t pairs = 0;
  double ratio = 0, ci_low = 0, ci_high = 0;
  double bound = 0;
  std::string bound_text;  // ">= 0.950"
  double mann_whitney_p = 1;
  std::vector<double> a_values, b_values;  // the samples (b = current for baseline checks)
  std::string message;
  // What this run could resolve: the interval's half-width as a fraction of the ratio ("this
  // run resolves ±12 %"), and, for an inconclusive check, about how many pairs would bring the
  // interval clear of the bound if its centre stayed where it is (the half-width shrinks as
  // 1/√pairs); 0 when that cannot be said (the ratio sits on the bound).
  double resolution = 0;
  size_t pairs_to_resolve = 0;
  std::string resolution_text() const;  // "this run resolves ±12.3 %; the bound is >= 0.950; …"
};

// A field of the environment fingerprint (results' "environment") that differs between a
// baseline and the current run.
struct EnvironmentDifference {
  std::string field, baseline, current;
};

// The fields that change absolute figures: CPU model, vCPU count, architecture, kernel,
// virtualisation (VM and container). A field missing from one document and present in the other
// differs ("(not recorded)"). The hrbench version is recorded but not compared: comparing two
// versions is what a baseline check is for. Pinned CPUs and the other run settings are checked
// by require_comparable.
std::vector<EnvironmentDifference> environment_differences(const results::Environment& baseline,
                                                           const results::Environment& current);

// What a run's absolute figures are comparable with: the environment fields
// environment_differences compares and the settings require_comparable compares, as one id
// (16 hex digits: FNV-1a of `fields` serialised) — the history store's "environment". Two runs
// with one id may be compared point by point; a change of id is a break in a trend.
struct Fingerprint {
  std::string id;
  nlohmann::json fields;  // {"cpuModel": "…", …, "/config/pinnedCpus": [0, 0], …}
};
Fingerprint environment_fingerprint(const results::Run& run);

struct GateResult {
  std::vector<CheckResult> checks;
  std::vector<std::string> skipped;  // baseline checks without a baseline run
  // The baseline's environment differs from the current run's (the baseline checks are in
  // not_judged unless other_environment_allowed).
  std::vector<EnvironmentDifference> other_environment;
  bool other_environment_allowed = false;
  std::vector<std::string> not_judged;  // baseline checks skipped: baseline not comparable
  std::string baseline_file;
  Verdict overall() const;  // fail if any fails, else inconclusive if any is, else pass
  bool not_comparable() const { return !other_environment.empty() && !other_environment_allowed; }
};

struct EvaluateOptions {
  bool allow_other_environment = false;  // judge baseline checks across environments anyway
};

// Evaluates every check; throws Error(kBadInput) for a check whose data is missing, empty or
// non-finite, naming the file and the metric. A baseline from another environment (see
// environment_differences) is not comparable: its checks are not judged, unless allowed.
// A merged file (`hrbench merge`) brings one environment per shard: the baseline must match
// each of them (a difference names the shard, e.g. field "kernel (this run's shard 2)").
GateResult evaluate(const Policy& p, const results::Run& current, const std::string& current_file,
                    const results::Run* baseline, const std::string& baseline_file,
                    const EvaluateOptions& options = {});

// Throws Error(kBadInput) naming both files and the setting when two runs were measured with
// different settings that change what a trial measures (topology, pinned CPUs, flows, message
// size, calibration delay, iptables backend, services) — such runs cannot be compared or merged.
void require_comparable(const results::Run& a, const std::string& a_file, const results::Run& b,
                        const std::string& b_file);

std::string render_text(const GateResult& r);
std::string render_markdown(const GateResult& r, const std::string& title);
std::string render_junit(const GateResult& r, const std::string& suite);

// Exit code of `hrbench gate`: 0 pass, 1 regression, 2 inconclusive (0 with inconclusive_ok),
// 3 when the baseline is not comparable (another environment) and no check failed.
int exit_code(const GateResult& r, bool inconclusive_ok);

// Two runs side by side (`hrbench compare A B`): every metric of every cell both have.
std::string compare_runs(const results::Run& a, const results::Run& b, bool markdown);

}  // namespace hrb::gate
