// One run's plan over many runners, without a cluster: `run --shard I/N` (the plan split into
// whole rounds, bad values refused) and `merge` (the shards' files joined, files that do not
// belong together refused naming the file, field or shard), and what gate and short_cells make
// of the shard and merged files (tests/fixtures/results/shard-{1,2}-of-2.json: the gate
// fixture's run, tests/fixtures/gate/run.json, split into its two shards, shard 2 on another
// kernel).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "core/error.hpp"
#include "gate/gate.hpp"
#include "results/results.hpp"
#include "run/adaptive.hpp"
#include "run/run.hpp"
#include "run/shard.hpp"
#include "topology/spec.hpp"

using namespace hrb;
using namespace hrb::run;

namespace {

std::string src(const std::string& rel) { return std::string(HRB_SOURCE_DIR) + "/" + rel; }

// A trial's place in the matrix: mode, scenario, workload, repetition, scan value.
using CellRep = std::tuple<std::string, std::string, std::string, int, int>;
CellRep key(const PlannedTrial& t) {
  return {t.mode, t.scenario, t.workload, t.repetition, t.scan_value()};
}

struct PlanCase {
  std::string name;
  std::vector<std::string> modes, scenarios, workloads;
  int repetitions;
  std::string scan_param;
  std::vector<int> scan_values;
};

const std::vector<PlanCase> kPlans{
    {"two modes, ceiling, 3 repetitions",
     {"legacy", "ebpf"},
     {"pod-pod-cross-node", "node-node"},
     {"tcp_rr"},
     3,
     "",
     {}},
    {"the ladder, four scenarios, two workloads, 4 repetitions",
     {"legacy", "bpf-lb", "ebpf"},
     {"pod-pod-same-node", "pod-pod-cross-node", "pod-service", "node-node"},
     {"tcp_rr", "tcp_crr"},
     4,
     "",
     {}},
    {"a services scan, 2 repetitions",
     {"legacy", "ebpf"},
     {"pod-service", "node-node"},
     {"tcp_crr"},
     2,
     "services",
     {3, 1000, 5000}},
    {"a flows scan, 1 repetition",
     {"legacy", "ebpf"},
     {"pod-pod-cross-node"},
     {"tcp_stream", "udp_stream"},
     1,
     "flows",
     {1, 2, 4, 8}},
};

RunConfig config_of(const PlanCase& p) {
  RunConfig c;
  c.modes = p.modes;
  c.scenarios = p.scenarios;
  c.workloads = p.workloads;
  c.repetitions = p.repetitions;
  c.scan_param = p.scan_param;
  c.scan_values = p.scan_values;
  return c;
}

results::Run read(const std::string& rel) { return results::read_results(src(rel)); }
std::vector<ShardFile> fixture_shards() {
  return {{"shard-1-of-2.json", read("tests/fixtures/results/shard-1-of-2.json")},
          {"shard-2-of-2.json", read("tests/fixtures/results/shard-2-of-2.json")}};
}

// The message of the Error(kBadInput) merge_shards throws; "" when it merges.
std::string merge_error(const std::vector<ShardFile>& shards) {
  try {
    merge_shards(shards, "hrbench merge");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput) << e.what();
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Shard, TheShardsOfAPlanAreItsRoundsExactlyOnceEachWholeAndInOrder) {
  for (const auto& p : kPlans) {
    const RunConfig c = config_of(p);
    const auto plan = plan_trials(c, p.scenarios, p.scan_values, c.mode_options);
    const auto rounds = plan_rounds(plan);
    const int round_count = rounds.back() + 1;
    ASSERT_EQ(round_count, p.repetitions * std::max<int>(1, static_cast<int>(p.scan_values.size())))
        << p.name;
    for (int n = 1; n <= 4; ++n) {
      if (n > round_count) {
        RunConfig sharded = c;
        sharded.shard = results::Shard{.index = 1, .count = n};
        EXPECT_THROW(validate(sharded), Error) << p.name << ": " << n << " shards";
        continue;
      }
      std::multiset<CellRep> uni;
      std::map<int, int> shard_of_round;  // round of the unsharded plan -> the shard that has it
      for (int i = 1; i <= n; ++i) {
        const auto part = shard_plan(plan, p.scan_values, p.repetitions, {.index = i, .count = n});
        ASSERT_FALSE(part.empty()) << p.name << " " << i << "/" << n;
        // The shard's trials are a subsequence of the plan, settings included: each round keeps
        // its order, the repetitions keep their global numbers.
        size_t at = 0;
        for (const auto& t : part) {
          while (at < plan.size() && key(plan[at]) != key(t)) ++at;
          ASSERT_LT(at, plan.size()) << p.name << ": shard " << i << "/" << n << " out of order";
          EXPECT_EQ(plan[at].setting.options.services, t.setting.options.services);
          EXPECT_EQ(plan[at].flows, t.flows);
          auto [it, fresh] = shard_of_round.emplace(rounds[at], i);
          EXPECT_EQ(it->second, i) << p.name << ": round " << rounds[at] << " split between "
                                   << "shards " << it->second << " and " << i << " of " << n;
          uni.insert(key(t));
          ++at;
        }
      }
      // The union is the plan exactly: every trial once (disjoint), nothing added.
      std::multiset<CellRep> whole;
      for (const auto& t : plan) whole.insert(key(t));
      EXPECT_EQ(uni, whole) << p.name << ", " << n << " shards";
      EXPECT_EQ(static_cast<int>(shard_of_round.size()), round_count);
      // Balanced: the shards' round counts differ by at most one.
      std::map<int, int> per_shard;
      for (const auto& [round, shard] : shard_of_round) ++per_shard[shard];
      for (const auto& [shard, count] : per_shard)
        EXPECT_LE(std::abs(count - round_count / n), 1) << p.name << " shard " << shard;
    }
  }
}

TEST(Shard, PlanMatrixOnATopologyMeasuresOnlyItsShard) {
  RunConfig c = config_of(kPlans[0]);
  const auto layout =
      topology::plan(topology::parse_spec_file(src("topologies/two-node.yaml")), "shardtest");
  const auto whole = plan_matrix(c, layout);
  c.shard = results::Shard{.index = 2, .count = 2};
  const auto part = plan_matrix(c, layout);
  ASSERT_EQ(part.trials.size(), 3u) << "round 1 of 3: the ceiling, then ebpf, then legacy";
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(key(part.trials[k]), key(whole.trials[3 + k]));
  EXPECT_EQ(part.trials[1].mode, "ebpf") << "repetition 1 keeps its reversed (ABBA) order";
}

TEST(Shard, BadShardValuesAreUsageErrorsNamingTheFlag) {
  for (const char* v : {"0/2", "3/2", "x", "2", "1/0", "/2", "1/", "-1/2", "1/2/3", "1.5/2", ""}) {
    try {
      parse_shard(v);
      ADD_FAILURE() << "'" << v << "' accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << v;
      EXPECT_NE(std::string(e.what()).find("--shard"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_shard("2/4"), (results::Shard{.index = 2, .count = 4}));
  EXPECT_EQ(parse_shard("1/1"), (results::Shard{.index = 1, .count = 1}));
  // More shards than rounds: a shard would be empty; said before anything is built.
  RunConfig c = config_of(kPlans[0]);  // 3 rounds
  c.shard = results::Shard{.index = 1, .count = 4};
  try {
    validate(c);
    ADD_FAILURE() << "4 shards of 3 rounds accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("--shard: 1/4: the plan has 3 round(s)"),
              std::string::npos)
        << e.what();
  }
  // Two scan values measured as one (pod-service raised both): refused, naming them.
  c = config_of(kPlans[2]);
  const auto plan = plan_trials(c, {"pod-service"}, {3, 3, 5000}, c.mode_options);
  try {
    shard_plan(plan, {3, 3, 5000}, c.repetitions, {.index = 1, .count = 2});
    ADD_FAILURE() << "duplicate scan values accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scan values 1 and 2 are both measured as 3"),
              std::string::npos)
        << e.what();
  }
}

TEST(Shard, MergedShardsAreTheUnshardedRunAndTheGateJudgesThemAlike) {
  const auto merged = merge_shards(fixture_shards(), "hrbench merge a b -o m");
  const auto whole = read("tests/fixtures/gate/run.json");
  // The trials in plan order (round by round, each as run), every one with its shard.
  ASSERT_EQ(merged.trials.size(), whole.trials.size());
  std::vector<std::pair<std::string, int>> order;
  for (const auto& t : merged.trials) {
    order.push_back({t.mode, t.rep()});
    ASSERT_TRUE(t.shard);
    EXPECT_EQ(*t.shard, t.rep() % 2 + 1) << "repetition r is round r: shard r mod 2 + 1";
  }
  EXPECT_EQ(order, (std::vector<std::pair<std::string, int>>{{"none", 0},
                                                             {"legacy", 0},
                                                             {"ebpf", 0},
                                                             {"none", 1},
                                                             {"ebpf", 1},
                                                             {"legacy", 1},
                                                             {"none", 2},
                                                             {"legacy", 2},
                                                             {"ebpf", 2},
                                                             {"none", 3},
                                                             {"ebpf", 3},
                                                             {"legacy", 3},
                                                             {"none", 4},
                                                             {"legacy", 4},
                                                             {"ebpf", 4}}));
  // The config of an unsharded run: no shard, no budget of one shard; each shard's record.
  EXPECT_FALSE(merged.config.shard);
  EXPECT_FALSE(merged.config.budget_seconds);
  EXPECT_EQ(merged.config.repetitions, 5);
  ASSERT_EQ(merged.shards.size(), 2u);
  EXPECT_EQ(merged.shards[1].index, 2);
  EXPECT_EQ(merged.shards[1].environment.kernel, "6.1.0-test");
  EXPECT_EQ(merged.shards[1].budget_seconds, 95.6);
  EXPECT_EQ(merged.shards[0].run_id, "20261201-170001-0001");
  EXPECT_EQ(merged.environment, merged.shards[0].environment) << "environment: shard 1's";
  EXPECT_EQ(merged.started_at, "2026-12-01T17:00:01Z");
  EXPECT_EQ(merged.finished_at, "2026-12-01T17:05:02Z");
  EXPECT_EQ(merged.complete, true);
  EXPECT_TRUE(results::short_cells(merged).empty());
  // Written and read back as any results file.
  EXPECT_EQ(results::from_json(results::to_json(merged), "merged"), merged);

  // The relative checks see the same pairs as in the unsharded run.
  const auto policy = gate::parse_policy_file(src("tests/fixtures/gate/policy.yaml"));
  const auto a = gate::evaluate(policy, merged, "merged.json", nullptr, "");
  const auto b = gate::evaluate(policy, whole, "run.json", nullptr, "");
  ASSERT_EQ(a.checks.size(), b.checks.size());
  for (size_t i = 0; i < a.checks.size(); ++i) {
    EXPECT_EQ(a.checks[i].verdict, b.checks[i].verdict) << a.checks[i].check.name;
    EXPECT_EQ(a.checks[i].pairs, b.checks[i].pairs);
    EXPECT_DOUBLE_EQ(a.checks[i].ratio, b.checks[i].ratio);
  }
}

TEST(Shard, AShardFileNeedsOnlyItsOwnRepetitions) {
  const auto s1 = read("tests/fixtures/results/shard-1-of-2.json");
  EXPECT_TRUE(results::short_cells(s1).empty()) << results::short_cells_text(s1);
  auto short1 = s1;
  short1.trials.pop_back();  // ebpf repetition 4
  const auto cells = results::short_cells(short1);
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_TRUE(cells[0].line().starts_with("ebpf pod-pod-cross-node tcp_rr: 2 of 3 valid"))
      << cells[0].line() << ": shard 1 of 2 measures repetitions 0, 2 and 4";
  // Merged: the cell needs all 5; a shard whose budget ran out is named as the reason.
  auto shards = fixture_shards();
  shards[1].run.trials.pop_back();  // legacy repetition 3
  shards[1].run.budget_exhausted = true;
  shards[1].run.complete = false;
  const auto merged = merge_shards(shards, "hrbench merge");
  EXPECT_FALSE(*merged.complete);
  EXPECT_TRUE(*merged.budget_exhausted);
  const auto short_merged = results::short_cells(merged);
  ASSERT_EQ(short_merged.size(), 1u);
  EXPECT_EQ(short_merged[0].line(),
            "legacy pod-pod-cross-node tcp_rr: 4 of 5 valid (a shard's budget ran out)");
}

TEST(Shard, ABaselineMustMatchTheEnvironmentOfEveryShard) {
  const auto merged = merge_shards(fixture_shards(), "hrbench merge");
  const auto policy = gate::parse_policy_file(src("tests/fixtures/gate/policy.yaml"));
  const auto shard1 = read("tests/fixtures/results/shard-1-of-2.json");
  // A baseline from shard 1's machine: shard 2 ran on another kernel, so not comparable.
  auto r = gate::evaluate(policy, merged, "merged.json", &shard1, "base.json");
  EXPECT_TRUE(r.not_comparable());
  ASSERT_EQ(r.other_environment.size(), 1u);
  EXPECT_EQ(r.other_environment[0].field, "kernel (this run's shard 2)");
  EXPECT_EQ(r.other_environment[0].baseline, "6.18.0-test");
  EXPECT_EQ(r.other_environment[0].current, "6.1.0-test");
  EXPECT_EQ(gate::exit_code(r, false), 1) << "the fixture's ceiling check fails (relative)";
  // The merged file as a baseline is judged the same way, shard by shard.
  r = gate::evaluate(policy, shard1, "shard1.json", &merged, "merged.json");
  ASSERT_EQ(r.other_environment.size(), 1u);
  EXPECT_EQ(r.other_environment[0].field, "kernel (baseline shard 2)");
  // Shards from one environment: comparable, judged.
  auto same = fixture_shards();
  same[1].run.environment = same[0].run.environment;
  const auto merged_same = merge_shards(same, "hrbench merge");
  r = gate::evaluate(policy, merged_same, "merged.json", &shard1, "base.json");
  EXPECT_FALSE(r.not_comparable());
  EXPECT_TRUE(r.not_judged.empty());
}

TEST(Shard, MergeRefusesFilesThatAreNotTheShardsOfOnePlan) {
  // Missing and duplicate shards.
  auto shards = fixture_shards();
  EXPECT_EQ(merge_error({shards[0]}), "shard 2/2 missing: merge needs every shard of 1..2 once");
  EXPECT_EQ(merge_error({shards[0], shards[1], shards[1]}),
            "shard 2/2 is given twice: shard-2-of-2.json and shard-2-of-2.json");
  // Not a shard: an unsharded run, a merged file.
  ShardFile whole{"run.json", read("tests/fixtures/gate/run.json")};
  EXPECT_EQ(merge_error({shards[0], whole}),
            "run.json: not a shard: its config has no shard (a shard is measured with hrbench run "
            "--shard INDEX/COUNT)");
  ShardFile merged{"merged.json", merge_shards(shards, "hrbench merge")};
  EXPECT_EQ(merge_error({merged, shards[1]}),
            "merged.json: a merged file (of 2 shards), not a shard: merge the shards' own files");
  // Shards of different splits.
  auto other = shards;
  other[1].run.config.shard = results::Shard{.index = 2, .count = 3};
  EXPECT_EQ(merge_error(other),
            "shard-1-of-2.json is shard 1/2 and shard-2-of-2.json is shard 2/3: shards of "
            "different splits");
  // Another plan: the field and both values.
  other = shards;
  other[1].run.config.flows = 4;
  EXPECT_EQ(merge_error(other),
            "shard-1-of-2.json and shard-2-of-2.json are not shards of one plan: config.flows is "
            "1 in shard-1-of-2.json and 4 in shard-2-of-2.json");
  other = shards;
  (*other[1].run.config.mode_options)["services"] = 1000;
  EXPECT_NE(merge_error(other).find("config.modeOptions.services is 0 in shard-1-of-2.json and "
                                    "1000 in shard-2-of-2.json"),
            std::string::npos);
  other = shards;
  other[1].run.git_revision = "0123456789ab";
  EXPECT_NE(merge_error(other).find("gitRevision is \"abc123def456\" in shard-1-of-2.json and "
                                    "\"0123456789ab\" in shard-2-of-2.json"),
            std::string::npos);
  other = shards;
  other[0].run.config.modes = std::vector<std::string>{"legacy", "bpf-lb"};
  EXPECT_NE(merge_error(other).find("config.modes.1 is \"bpf-lb\""), std::string::npos)
      << merge_error(other);
  // What may differ: the runner's environment, the topology file's path, the shard's budget.
  other = shards;
  other[1].run.topology.file = "/elsewhere/two-node.yaml";
  other[1].run.config.budget_seconds = 1;
  EXPECT_EQ(merge_error(other), "");
  // A trial of a round its shard does not measure (a hand-edited file).
  other = shards;
  other[1].run.trials[0].repetition = 2;
  EXPECT_EQ(merge_error(other),
            "shard-2-of-2.json: trials[0] (none node-node tcp_rr repetition 2) is of round 2, "
            "which shard 2/2 does not measure (round r belongs to shard r mod 2 + 1)");
}

TEST(Shard, AdaptiveRefusesToAddRepetitionsToAShardOrAMergedFile) {
  // The fixture's ebpf/legacy ratios are 1.18 … 1.22: a bound of 1.20 is straddled.
  const auto policy = gate::parse_policy_string(
      "minPairs: 3\n"
      "checks:\n"
      "  - name: straddles\n"
      "    kind: relative\n"
      "    workload: tcp_rr\n"
      "    metric: transactionsPerSecond\n"
      "    a: {mode: legacy, scenario: pod-pod-cross-node}\n"
      "    b: {mode: ebpf, scenario: pod-pod-cross-node}\n"
      "    ratio: {min: 1.20}\n",
      "inline.yaml");
  auto merged = merge_shards(fixture_shards(), "hrbench merge");
  auto shard1 = read("tests/fixtures/results/shard-1-of-2.json");
  AdaptiveOptions o{.max_extra_repetitions = 2};
  for (const auto* doc : {&merged, &shard1})
    ASSERT_EQ(gate::evaluate(policy, *doc, "m.json", nullptr, "").overall(),
              gate::Verdict::kInconclusive);
  for (auto* doc : {&merged, &shard1}) {
    try {
      adaptive_gate(policy, *doc, "x.json", nullptr, "", o, std::atomic<bool>{false});
      ADD_FAILURE() << "--adaptive measured more repetitions of a shard or merged file";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find("x.json: --adaptive cannot add repetitions to "),
                std::string::npos)
          << e.what();
    }
  }
  // Nothing to measure (N = 0): judged like any file.
  o.max_extra_repetitions = 0;
  EXPECT_EQ(
      adaptive_gate(policy, merged, "m.json", nullptr, "", o, std::atomic<bool>{false}).overall(),
      gate::Verdict::kInconclusive);
}
