#include "run/shard.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>

#include "core/error.hpp"
#include "results/results.hpp"

namespace hrb::run {

results::Shard parse_shard(const std::string& v) {
  auto bad = [&](const std::string& why) {
    return Error("--shard: '" + v + "': " + why, ExitCode::kUsage);
  };
  const auto slash = v.find('/');
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 9 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw bad("expected INDEX/COUNT, e.g. 2/4 (whole numbers, 1 <= INDEX <= COUNT)");
    return std::stoi(s);
  };
  if (slash == std::string::npos)
    throw bad("expected INDEX/COUNT, e.g. 2/4 (whole numbers, 1 <= INDEX <= COUNT)");
  results::Shard s{.index = number(v.substr(0, slash)), .count = number(v.substr(slash + 1))};
  if (s.count < 1) throw bad("COUNT must be at least 1");
  if (s.index < 1 || s.index > s.count)
    throw bad(fmt::format("INDEX must be 1 to {} (the shards are numbered from 1)", s.count));
  return s;
}

void check_shard(const results::Shard& s, const RunConfig& cfg) {
  if (s.count < 1 || s.index < 1 || s.index > s.count)
    throw Error(fmt::format("--shard: {}/{}: expected 1 <= INDEX <= COUNT", s.index, s.count),
                ExitCode::kUsage);
  const int values = cfg.scan_param.empty() ? 1 : static_cast<int>(cfg.scan_values.size());
  const int rounds = values * cfg.repetitions;
  if (s.count > rounds)
    throw Error(fmt::format("--shard: {}/{}: the plan has {} round(s) ({} scan value(s) x {} "
                            "repetition(s)), the unit a shard gets whole, so shard {} would be "
                            "empty; give at most {} shards or more repetitions",
                            s.index, s.count, rounds, values, cfg.repetitions, rounds + 1, rounds),
                ExitCode::kUsage);
}

std::vector<PlannedTrial> shard_plan(const std::vector<PlannedTrial>& plan,
                                     const std::vector<int>& scan_values, int repetitions,
                                     const results::Shard& shard) {
  for (size_t i = 0; i < scan_values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (scan_values[i] == scan_values[j])
        throw Error(fmt::format("--shard: scan values {} and {} are both measured as {} (given "
                                "twice, or raised to the count the service scenarios need): "
                                "their rounds could not be told apart when the shards are "
                                "merged; give distinct values",
                                j + 1, i + 1, scan_values[i]),
                    ExitCode::kUsage);
  std::vector<PlannedTrial> out;
  for (const auto& t : plan) {
    int scan_index = 0;
    if (t.scan) {
      auto it = std::find(scan_values.begin(), scan_values.end(), t.scan->value);
      scan_index = static_cast<int>(it - scan_values.begin());
    }
    const int round = results::round_index(scan_index, t.repetition, repetitions);
    if (results::shard_of_round(round, shard.count) == shard.index) out.push_back(t);
  }
  if (out.empty())
    throw Error(fmt::format("--shard: {}/{}: this shard has no round of the plan", shard.index,
                            shard.count),
                ExitCode::kUsage);
  return out;
}

namespace {

// A field of two documents' JSON that differs: its path ("config.modeOptions.services") and the
// two values as JSON text ("(absent)" where one lacks it).
struct Difference {
  std::string field, a, b;
};
std::optional<Difference> first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  const auto fa = a.flatten(), fb = b.flatten();
  auto value = [](const nlohmann::json& flat, const std::string& key) {
    auto it = flat.find(key);
    return it == flat.end() ? std::string("(absent)") : it->dump();
  };
  std::vector<std::string> keys;
  for (const auto& [k, v] : fa.items()) keys.push_back(k);
  for (const auto& [k, v] : fb.items())
    if (!fa.contains(k)) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  for (const auto& k : keys) {
    Difference d{"", value(fa, k), value(fb, k)};
    if (d.a == d.b) continue;
    for (char ch : k.substr(1)) d.field += ch == '/' ? '.' : ch;  // a JSON pointer: /config/…
    return d;
  }
  return std::nullopt;
}

// What must be equal in the shards of one plan.
nlohmann::json plan_of(const results::Run& r) {
  results::Config c = r.config;
  c.shard.reset();
  c.budget_seconds.reset();  // a shard's own (--budget applies per shard; its default too)
  results::Run plan;
  plan.config = c;
  plan.topology = r.topology;
  plan.topology.file.reset();  // a path on its runner; the YAML it held is compared
  plan.git_revision = r.git_revision;
  auto j = results::to_json(plan);
  j.erase("trials");
  j.erase("environment");  // may differ: recorded per shard
  j.erase("schema");
  j.erase("schemaVersion");
  return j;
}

std::string trial_name(const results::Trial& t) {
  return fmt::format("{} {} {} repetition {}{}", t.mode, t.scenario, t.workload, t.rep(),
                     t.scan ? fmt::format(" {}={}", t.scan->param, t.scan->value) : "");
}

}  // namespace

results::Run merge_shards(const std::vector<ShardFile>& shards, const std::string& command) {
  if (shards.empty()) throw Error("merge: no shard files given", ExitCode::kUsage);
  for (const auto& s : shards) {
    if (!s.run.shards.empty())
      throw Error(fmt::format("{}: a merged file (of {} shards), not a shard: merge the shards' "
                              "own files",
                              s.file, s.run.shards.size()),
                  ExitCode::kBadInput);
    if (!s.run.config.shard)
      throw Error(fmt::format("{}: not a shard: its config has no shard (a shard is measured "
                              "with hrbench run --shard INDEX/COUNT)",
                              s.file),
                  ExitCode::kBadInput);
  }
  const int count = shards[0].run.config.shard->count;
  std::map<int, const ShardFile*> by_index;
  for (const auto& s : shards) {
    const auto& sh = *s.run.config.shard;
    if (sh.count != count)
      throw Error(fmt::format("{} is shard {}/{} and {} is shard {}/{}: shards of different "
                              "splits",
                              shards[0].file, shards[0].run.config.shard->index, count, s.file,
                              sh.index, sh.count),
                  ExitCode::kBadInput);
    auto [it, fresh] = by_index.emplace(sh.index, &s);
    if (!fresh)
      throw Error(fmt::format("shard {}/{} is given twice: {} and {}", sh.index, count,
                              it->second->file, s.file),
                  ExitCode::kBadInput);
  }
  std::vector<std::string> missing;
  for (int i = 1; i <= count; ++i)
    if (!by_index.count(i)) missing.push_back(fmt::format("{}/{}", i, count));
  if (!missing.empty())
    throw Error(fmt::format("shard{} {} missing: merge needs every shard of 1..{} once",
                            missing.size() > 1 ? "s" : "", fmt::join(missing, ", "), count),
                ExitCode::kBadInput);

  const ShardFile& first = *by_index.at(1);
  const auto plan = plan_of(first.run);
  for (const auto& [index, s] : by_index) {
    if (auto d = first_difference(plan, plan_of(s->run)))
      throw Error(fmt::format("{} and {} are not shards of one plan: {} is {} in {} and {} in {}",
                              first.file, s->file, d->field, d->a, first.file, d->b, s->file),
                  ExitCode::kBadInput);
  }

  results::Run out;
  out.run_id = make_run_id();
  out.git_revision = first.run.git_revision;
  out.command = command;
  out.environment = first.run.environment;
  out.topology = first.run.topology;
  out.config = first.run.config;
  out.config.shard.reset();
  out.config.budget_seconds.reset();
  out.other = first.run.other;
  bool complete = true, interrupted = false, budget = false;
  struct Placed {
    int round;
    size_t seq;
    results::Trial trial;
  };
  std::vector<Placed> trials;
  for (const auto& [index, s] : by_index) {
    const auto& r = s->run;
    results::ShardRun rec;
    rec.index = index;
    rec.file = s->file;
    rec.run_id = r.run_id;
    rec.started_at = r.started_at;
    rec.finished_at = r.finished_at;
    rec.command = r.command;
    rec.complete = r.complete;
    rec.interrupted = r.interrupted;
    rec.budget_exhausted = r.budget_exhausted;
    rec.budget_seconds = r.config.budget_seconds;
    rec.environment = r.environment;
    out.shards.push_back(rec);
    if (r.started_at && (!out.started_at || *r.started_at < *out.started_at))
      out.started_at = r.started_at;
    if (r.finished_at && (!out.finished_at || *r.finished_at > *out.finished_at))
      out.finished_at = r.finished_at;
    complete &= r.complete.value_or(false);
    interrupted |= r.interrupted.value_or(false);
    budget |= r.budget_exhausted.value_or(false);
    for (size_t k = 0; k < r.trials.size(); ++k) {
      results::Trial t = r.trials[k];
      const auto round = results::round_of(r.config, t);
      if (!round)
        throw Error(fmt::format("{}: trials[{}] ({}) has a scan value its config.scan does not "
                                "list",
                                s->file, k, trial_name(t)),
                    ExitCode::kBadInput);
      if (results::shard_of_round(*round, count) != index)
        throw Error(fmt::format("{}: trials[{}] ({}) is of round {}, which shard {}/{} does not "
                                "measure (round r belongs to shard r mod {} + 1)",
                                s->file, k, trial_name(t), *round, index, count, count),
                    ExitCode::kBadInput);
      t.shard = index;
      trials.push_back({*round, trials.size(), std::move(t)});
    }
  }
  std::stable_sort(trials.begin(), trials.end(),
                   [](const Placed& a, const Placed& b) { return a.round < b.round; });
  for (auto& p : trials) out.trials.push_back(std::move(p.trial));
  out.complete = complete;
  if (interrupted) out.interrupted = true;
  if (budget) out.budget_exhausted = true;
  return out;
}

}  // namespace hrb::run
