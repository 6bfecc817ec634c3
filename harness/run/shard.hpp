#pragma once
// One run's plan over many runners: `hrbench run --shard I/N` measures the rounds of the plan
// that results::shard_of_round deals to shard I (whole rounds: every pair the gate compares,
// the ceiling included, stays on one machine), and `hrbench merge` joins the N shards' results
// files into one that gate and report read like an unsharded run's. docs/gate.md, "Spreading a
// run over runners".
#include <string>
#include <vector>

#include "results/document.hpp"
#include "run/run.hpp"

namespace hrb::run {

// --shard INDEX/COUNT (1 <= INDEX <= COUNT); throws Error(kUsage) naming the flag.
results::Shard parse_shard(const std::string& v);

// Throws Error(kUsage) naming --shard when `shard` is out of range or a shard of cfg's plan would
// have no round (COUNT larger than scan values x repetitions). Called by validate.
void check_shard(const results::Shard& shard, const RunConfig& cfg);

// The trials of `plan` (plan_trials' order, scan values as measured) that `shard` measures:
// whole rounds, each in its order, repetition numbers unchanged. Throws Error(kUsage) when the
// shard gets no round, or when two scan values are measured as one (pod-service raised both):
// their rounds could not be told apart in the files.
std::vector<PlannedTrial> shard_plan(const std::vector<PlannedTrial>& plan,
                                     const std::vector<int>& scan_values, int repetitions,
                                     const results::Shard& shard);

// A shard's results file, read.
struct ShardFile {
  std::string file;
  results::Run run;
};

// Joins the files of shards 1..N of one plan into one document (`hrbench merge`): config as an
// unsharded run records it (no `shard`, no `budgetSeconds`: each shard's is in `shards`), the
// environment of shard 1 plus every shard's in `shards`, each trial marked with its shard, the
// trials in plan order (by round; within a round as run). Throws Error(kBadInput) naming the
// file when one is not a shard (unsharded, or already merged), names the shard missing or given
// twice, and names the field and both values when two files are not of one plan (revision,
// topology, or any config field but shard and budgetSeconds); nothing is returned then.
results::Run merge_shards(const std::vector<ShardFile>& shards, const std::string& command);

}  // namespace hrb::run
