// Runs that complete on noisy machines, without a cluster: the re-queue of invalid trials into
// the interleaved order (TrialQueue), the budget, the fault-injection knob, and the cells a run
// names as short of valid repetitions.
#include <gtest/gtest.h>

#include <map>

#include "core/error.hpp"
#include "results/results.hpp"
#include "run/run.hpp"

using namespace hrb;
using namespace hrb::run;

namespace {

RunConfig config(int reps) {
  RunConfig c;
  c.modes = {"legacy", "ebpf"};
  c.workloads = {"tcp_rr", "tcp_crr"};
  c.repetitions = reps;
  return c;
}

std::string cell(const PlannedTrial& t) {
  return t.mode + "/" + t.workload + "/" + std::to_string(t.repetition);
}

// Drives the queue as run_matrix does: `invalid(order, planned)` says whether an attempt fails.
// Returns the plan indices in run order.
template <class F>
std::vector<size_t> drive(TrialQueue& q, F invalid) {
  std::vector<size_t> ran;
  while (auto i = q.next()) {
    ran.push_back(*i);
    q.done(!invalid(ran.size(), *i));
  }
  return ran;
}

}  // namespace

TEST(Requeue, AllValidRunsThePlanInOrder) {
  auto c = config(3);
  auto plan = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options);
  TrialQueue q(plan, 10);
  auto ran = drive(q, [](size_t, size_t) { return false; });
  ASSERT_EQ(ran.size(), plan.size());
  for (size_t k = 0; k < ran.size(); ++k) EXPECT_EQ(ran[k], k);
  EXPECT_EQ(plan_rounds(plan), (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
}

TEST(Requeue, AnInvalidTrialRerunsAtTheEndOfItsRoundNotBackToBack) {
  auto c = config(2);
  // Round 0: legacy rr, legacy crr, ebpf rr, ebpf crr; round 1: ebpf …, legacy ….
  auto plan = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options);
  TrialQueue q(plan, 10);
  // The first attempt (legacy tcp_rr rep 0) fails once, its re-run (order 5) fails again.
  auto ran = drive(q, [](size_t order, size_t) { return order == 1 || order == 5; });
  std::vector<std::string> got;
  for (size_t i : ran) got.push_back(cell(plan[i]));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "legacy/tcp_rr/0", "legacy/tcp_crr/0", "ebpf/tcp_rr/0", "ebpf/tcp_crr/0",
                     "legacy/tcp_rr/0",  // re-run 1: after the rest of round 0
                     "ebpf/tcp_rr/1", "ebpf/tcp_crr/1", "legacy/tcp_rr/1", "legacy/tcp_crr/1",
                     "legacy/tcp_rr/0"}))  // re-run 2: after round 1
      << "the first pass keeps the plan's ABBA order";
  EXPECT_EQ(q.attempts(0), 3);
}

TEST(Requeue, MaxRetriesCapsTheReRunsOfOneTrial) {
  auto c = config(1);
  auto plan = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options);
  TrialQueue q(plan, 2);
  auto ran = drive(q, [](size_t, size_t i) { return i == 2; });  // ebpf tcp_rr: always invalid
  EXPECT_EQ(ran.size(), plan.size() + 2);
  EXPECT_EQ(q.attempts(2), 3) << "1 + max_retries attempts";
  TrialQueue none(plan, 0);
  EXPECT_EQ(drive(none, [](size_t, size_t) { return true; }).size(), plan.size());
}

TEST(Requeue, ThirtyPercentInjectedFaultsStillGiveEveryCellItsRepetitions) {
  auto c = config(3);
  auto plan = plan_trials(c, {"pod-pod-cross-node", "node-node"}, {}, c.mode_options);
  auto fault = parse_fault_injection("0.3,7");
  ASSERT_TRUE(fault);
  TrialQueue q(plan, c.max_retries);
  int marked = 0;
  std::map<size_t, int> valid;
  std::vector<size_t> first_pass;
  std::map<size_t, int> seen;
  size_t order = 0;
  while (auto i = q.next()) {
    const bool bad = fault->hits(static_cast<int64_t>(++order));
    marked += bad;
    if (!seen[*i]++) first_pass.push_back(*i);
    if (!bad) ++valid[*i];
    q.done(!bad);
  }
  EXPECT_GT(marked, 0);
  EXPECT_EQ(valid.size(), plan.size()) << "every planned trial ended valid";
  for (auto [i, n] : valid) EXPECT_EQ(n, 1) << "a valid trial is not re-run";
  for (size_t k = 0; k < first_pass.size(); ++k)
    EXPECT_EQ(first_pass[k], k) << "first attempts in the plan's order";
}

TEST(Requeue, BudgetAndItsDefault) {
  auto c = config(3);
  c.duration_s = 1.5;
  c.warmup_s = 0.5;
  EXPECT_DOUBLE_EQ(default_budget_seconds(c, 10), 2 * 10 * 2.0 + 60);
  EXPECT_TRUE(fits_budget(10, 2, 12));
  EXPECT_FALSE(fits_budget(10, 2.5, 12));
  EXPECT_DOUBLE_EQ(parse_budget("600"), 600);
  EXPECT_DOUBLE_EQ(parse_budget("90s"), 90);
  EXPECT_DOUBLE_EQ(parse_budget("10m"), 600);
  EXPECT_DOUBLE_EQ(parse_budget("1.5h"), 5400);
  for (const char* bad : {"", "0", "-3", "ten", "5x", "inf", "nan"})
    EXPECT_THROW(parse_budget(bad), Error) << bad;
}

TEST(Requeue, FaultInjectionIsDeterministic) {
  EXPECT_FALSE(parse_fault_injection(""));
  auto a = parse_fault_injection("0.3,42"), b = parse_fault_injection("0.3,42");
  auto other = parse_fault_injection("0.3,43");
  int hits = 0, same = 0;
  for (int64_t k = 1; k <= 2000; ++k) {
    EXPECT_EQ(a->hits(k), b->hits(k));
    hits += a->hits(k);
    same += a->hits(k) == other->hits(k);
  }
  EXPECT_NEAR(hits / 2000.0, 0.3, 0.05);
  EXPECT_LT(same, 2000) << "the seed matters";
  auto orders = parse_fault_injection("@2,5");
  ASSERT_TRUE(orders);
  EXPECT_FALSE(orders->hits(1));
  EXPECT_TRUE(orders->hits(2));
  EXPECT_TRUE(orders->hits(5));
  EXPECT_FALSE(parse_fault_injection("0")->hits(1));
  EXPECT_TRUE(parse_fault_injection("1")->hits(1));
  for (const char* bad : {"1.5", "x", "0.3,", "0.3,1,2", "@", "@0", "@2,x"})
    EXPECT_THROW(parse_fault_injection(bad), Error) << bad;
}

TEST(ShortCells, NamedWithTheirValidCountAndWhy) {
  results::Run doc;
  doc.config.modes = {"legacy", "ebpf"};
  doc.config.scenarios = {"pod-pod-cross-node", "node-node"};
  doc.config.workloads = {"tcp_crr"};
  doc.config.repetitions = 3;
  doc.config.max_retries = 1;
  auto trial = [&](const std::string& mode, const std::string& sc, int rep, bool valid,
                   std::vector<std::string> flags = {}) {
    results::Trial t;
    t.mode = mode;
    t.scenario = sc;
    t.workload = "tcp_crr";
    t.repetition = rep;
    t.valid = valid;
    t.flags = std::move(flags);
    doc.trials.push_back(t);
  };
  for (int r = 0; r < 3; ++r) {
    trial("legacy", "pod-pod-cross-node", r, true);
    trial("none", "node-node", r, true);
  }
  trial("ebpf", "pod-pod-cross-node", 0, true);
  trial("ebpf", "pod-pod-cross-node", 1, true);
  trial("ebpf", "pod-pod-cross-node", 2, false, {"steal 14% > 10%"});
  trial("ebpf", "pod-pod-cross-node", 2, false, {"steal 22% > 10%"});
  trial("ebpf", "pod-pod-cross-node", 2, false, {"steal 12% > 10%", "fault injected"});
  auto cells = results::short_cells(doc);
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_EQ(cells[0].line(),
            "ebpf pod-pod-cross-node tcp_crr: 2 of 3 valid (steal up to 22% > 10% ×3; fault "
            "injected; re-runs used up (--max-retries 1))");
  EXPECT_NE(results::short_cells_text(doc).find("1 cell(s) short"), std::string::npos);

  // A cell never measured, and a budget that ran out.
  doc.config.workloads = {"tcp_crr", "tcp_rr"};
  doc.budget_exhausted = true;
  doc.config.budget_seconds = 30;
  cells = results::short_cells(doc);
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].line(),
            "none node-node tcp_rr: 0 of 3 valid (not measured; budget of 30 s "
            "ran out)");
  doc.trials.clear();
  doc.config = {};
  EXPECT_TRUE(results::short_cells(doc).empty()) << "nothing planned, nothing recorded";
}

TEST(ShortCells, BudgetFieldsRoundTripAndOldFilesLackThem) {
  results::Run doc;
  doc.config.budget_seconds = 379;
  doc.budget_exhausted = true;
  const auto j = results::to_json(doc);
  EXPECT_EQ(j["config"]["budgetSeconds"], 379);
  EXPECT_EQ(j["budgetExhausted"], true);
  EXPECT_EQ(results::from_json(j, "doc"), doc);
  auto old = j;
  old["config"].erase("budgetSeconds");
  old.erase("budgetExhausted");
  const auto back = results::from_json(old, "old");
  EXPECT_FALSE(back.config.budget_seconds);
  EXPECT_FALSE(back.budget_exhausted);
  EXPECT_EQ(results::to_json(back), old) << "absent stays absent";
  old["budgetExhausted"] = "yes";
  EXPECT_THROW(results::from_json(old, "bad"), Error);
}
