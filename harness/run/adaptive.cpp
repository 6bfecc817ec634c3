#include "run/adaptive.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"

namespace hrb::run {

void merge_repetitions(results::Run& doc, const results::Run& extra) {
  int base = doc.config.repetitions.value_or(1);
  for (auto t : extra.trials) {
    t.repetition = t.rep() + base;
    doc.trials.push_back(std::move(t));
  }
  doc.config.repetitions = base + extra.config.repetitions.value_or(0);
}

RunConfig adaptive_config(const results::Run& current, const std::string& current_file,
                          const gate::GateResult& result, int repetitions) {
  RunConfig c;
  try {
    c = config_of_results(current);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: --adaptive cannot repeat this run: {}", current_file, e.what()),
                ExitCode::kBadInput);
  } catch (const nlohmann::json::exception& e) {  // modeOptions (datapath's reader)
    throw Error(fmt::format("{}: --adaptive cannot repeat this run: {}", current_file, e.what()),
                ExitCode::kBadInput);
  }
  c.repetitions = repetitions;
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
  return c;
}

gate::GateResult adaptive_gate(const gate::Policy& policy, results::Run& current,
                               const std::string& current_file, const results::Run* baseline,
                               const std::string& baseline_file, const AdaptiveOptions& o,
                               const std::atomic<bool>& interrupted) {
  auto result = gate::evaluate(policy, current, current_file, baseline, baseline_file, o.evaluate);
  int extra_left = o.max_extra_repetitions;
  while (result.overall() == gate::Verdict::kInconclusive && extra_left > 0) {
    // A merged file's repetitions were measured on its shards' runners; more measured here
    // would join them unrecorded (their environment has no place in the file). A shard's file
    // holds only its rounds; repetitions added to it would be of no shard.
    if (!current.shards.empty() || current.config.shard)
      throw Error(fmt::format("{}: --adaptive cannot add repetitions to {}: run the shards with "
                              "more --repetitions instead",
                              current_file,
                              current.config.shard
                                  ? fmt::format("shard {}/{} of a run", current.config.shard->index,
                                                current.config.shard->count)
                                  : fmt::format("a file merged from {} shards (measured on their "
                                                "runners, not here)",
                                                current.shards.size())),
                  ExitCode::kBadInput);
    // As many repetitions as the least resolved inconclusive check asks for (each repetition
    // adds one pair), at least 2, at most what is left.
    size_t wanted = 2;
    for (const auto& k : result.checks)
      if (k.verdict == gate::Verdict::kInconclusive && k.pairs_to_resolve > k.pairs)
        wanted = std::max(wanted, k.pairs_to_resolve - k.pairs);
    const int step = static_cast<int>(std::min<size_t>(wanted, static_cast<size_t>(extra_left)));
    RunConfig c = adaptive_config(current, current_file, result, step);
    c.prefix = o.prefix;
    c.output = "/tmp/hrbench-gate-adaptive-" + std::to_string(getpid()) + ".json";
    log::info("gate: inconclusive; measuring {} more repetition(s)", c.repetitions);
    auto extra = run_matrix(c, interrupted, {.tty = false});
    std::filesystem::remove(c.output);
    gate::require_comparable(current, current_file, extra, "the --adaptive repetitions");
    merge_repetitions(current, extra);
    extra_left -= c.repetitions;
    result = gate::evaluate(policy, current, current_file, baseline, baseline_file, o.evaluate);
  }
  return result;
}

}  // namespace hrb::run
