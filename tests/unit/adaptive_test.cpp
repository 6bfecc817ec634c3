// `hrbench gate --adaptive`'s parts that need no cluster: which cells a step re-measures, how
// the new repetitions are merged, and that a budget of 0 only judges.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "results/results.hpp"
#include "run/adaptive.hpp"

using namespace hrb;
using namespace hrb::run;

namespace {

nlohmann::json trial(const std::string& mode, int rep, double tps) {
  return {{"mode", mode},         {"scenario", "pod-pod-cross-node"},
          {"workload", "tcp_rr"}, {"repetition", rep},
          {"valid", true},        {"metrics", {{"transactionsPerSecond", tps}}}};
}

// A run as run_matrix writes it, as far as config_of_results reads it.
nlohmann::json repeatable_run_json() {
  return {{"schema", "hostroute-bench/results"},
          {"schemaVersion", 1},
          {"topology", {{"file", "/t/two-node.yaml"}}},
          {"config",
           {{"repetitions", 2},
            {"durationSeconds", 1.5},
            {"warmupSeconds", 0.4},
            {"flows", 2},
            {"pinnedCpus", {0, 0}},
            {"modeOptions", datapath::ModeOptions{}.to_json()}}},
          {"trials",
           {trial("legacy", 0, 100), trial("ebpf", 0, 110), trial("legacy", 1, 101),
            trial("ebpf", 1, 111)}}};
}

results::Run repeatable_run() { return results::from_json(repeatable_run_json(), "cur.json"); }

gate::CheckResult check_result(gate::Verdict v, gate::Cell a, gate::Cell b,
                               const std::string& workload) {
  gate::CheckResult r;
  r.verdict = v;
  r.check.kind = "relative";
  r.check.a = a;
  r.check.b = b;
  r.check.workload = workload;
  return r;
}

}  // namespace

TEST(AdaptiveGate, ConfigRepeatsTheRunsSettingsForTheInconclusiveCellsOnly) {
  gate::GateResult res;
  res.checks.push_back(check_result(gate::Verdict::kInconclusive, {"none", "node-node"},
                                    {"ebpf", "pod-pod-cross-node"}, "tcp_rr"));
  res.checks.push_back(check_result(gate::Verdict::kPass, {"legacy", "pod-service"},
                                    {"bpf-lb", "pod-service"}, "udp_rr"));
  gate::CheckResult base;  // a baseline check: one cell
  base.verdict = gate::Verdict::kInconclusive;
  base.check.kind = "baseline";
  base.check.cell = {"legacy", "pod-pod-cross-node"};
  base.check.workload = "tcp_stream";
  res.checks.push_back(base);

  RunConfig c = adaptive_config(repeatable_run(), "cur.json", res, 2);
  EXPECT_EQ(c.topology, "/t/two-node.yaml");
  EXPECT_EQ(c.repetitions, 2);
  EXPECT_EQ(c.flows, 2);
  EXPECT_EQ(c.client_cpu, 0);
  EXPECT_EQ(c.server_cpu, 0);
  EXPECT_EQ(c.modes, (std::vector<std::string>{"ebpf", "legacy"}));  // none: the ceiling block
  EXPECT_EQ(c.scenarios, (std::vector<std::string>{"node-node", "pod-pod-cross-node"}));
  EXPECT_EQ(c.workloads, (std::vector<std::string>{"tcp_rr", "tcp_stream"}));
}

TEST(AdaptiveGate, ARunWithoutItsConfigCannotBeRepeated) {
  nlohmann::json doc = repeatable_run_json();
  doc.erase("topology");
  try {
    adaptive_config(results::from_json(doc, "cur.json"), "cur.json", {}, 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("cur.json: --adaptive cannot repeat this run"),
              std::string::npos)
        << e.what();
  }
}

TEST(AdaptiveGate, MergeAppendsRepetitionsAfterTheRunsOwn) {
  auto doc = repeatable_run();
  auto extra = results::from_json({{"schema", "hostroute-bench/results"},
                                   {"schemaVersion", 1},
                                   {"config", {{"repetitions", 1}}},
                                   {"trials", {trial("legacy", 0, 102), trial("ebpf", 0, 112)}}},
                                  "extra.json");
  merge_repetitions(doc, extra);
  EXPECT_EQ(doc.config.repetitions, 3);
  ASSERT_EQ(doc.trials.size(), 6u);
  EXPECT_EQ(doc.trials[4].repetition, 2);
  EXPECT_EQ(doc.trials[5].repetition, 2);
  EXPECT_EQ(results::metric_value(doc.trials[5], *results::find_metric("transactionsPerSecond")),
            112);
}

TEST(AdaptiveGate, NoBudgetJudgesOnceAndMeasuresNothing) {
  auto policy = gate::parse_policy_string(R"(
minPairs: 3
checks:
  - name: ebpf faster
    kind: relative
    workload: tcp_rr
    metric: transactionsPerSecond
    a: {mode: legacy, scenario: pod-pod-cross-node}
    b: {mode: ebpf, scenario: pod-pod-cross-node}
    ratio: {min: 1.05}
)",
                                          "policy");
  auto doc = repeatable_run();  // 2 pairs < minPairs: inconclusive
  const auto before = doc;
  std::atomic<bool> stop{false};
  auto r = adaptive_gate(policy, doc, "cur.json", nullptr, "", {.max_extra_repetitions = 0}, stop);
  EXPECT_EQ(r.overall(), gate::Verdict::kInconclusive);
  EXPECT_EQ(doc, before);
}
