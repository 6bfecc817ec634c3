#pragma once
// `hrbench gate --adaptive N`: when the gate's verdict on a run is inconclusive, measure more
// repetitions of exactly the cells its inconclusive checks compare, merge them into the run as
// further repetitions, and judge again — until a verdict or N extra repetitions. The gate itself
// stays file-only: this loop, in run/, is what measures.
#include <atomic>
#include <string>

#include "gate/gate.hpp"
#include "run/run.hpp"

namespace hrb::run {

struct AdaptiveOptions {
  int max_extra_repetitions = 0;   // 0: judge once, measure nothing
  std::string prefix = "hrbgate";  // of the cluster the extra repetitions are measured on
  gate::EvaluateOptions evaluate;  // e.g. allow_other_environment
};

// Evaluates `policy` on `current` (and `baseline` when given), then, while the verdict is
// inconclusive and the budget lasts, measures up to 2 more repetitions at a time and merges
// them into `current` (which then holds the merged run). Returns the last result. Throws
// Error(kBadInput) when `current` cannot be repeated (config missing, or a file merged from
// shards: their runners' repetitions and this machine's would mix unrecorded) or the new
// repetitions were measured differently (gate::require_comparable).
gate::GateResult adaptive_gate(const gate::Policy& policy, results::Run& current,
                               const std::string& current_file, const results::Run* baseline,
                               const std::string& baseline_file, const AdaptiveOptions& o,
                               const std::atomic<bool>& interrupted);

// The matrix of one adaptive step: the settings of `current` (config_of_results), `repetitions`
// repetitions, and the modes, scenarios and workloads of the inconclusive checks of `result`
// (mode none is the ceiling block every run measures: not listed). Output and prefix are left
// for the caller.
RunConfig adaptive_config(const results::Run& current, const std::string& current_file,
                          const gate::GateResult& result, int repetitions);

// Appends the trials of `extra` to `doc` as further repetitions (their numbers shifted past
// doc's) and adds extra's repetition count to doc's config.
void merge_repetitions(results::Run& doc, const results::Run& extra);

}  // namespace hrb::run
