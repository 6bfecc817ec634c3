// run_matrix's plan and record, without a cluster: the order of the trials (ceiling block,
// repetitions, ABBA interleaving), the mode setting each trial gets, and how a measurement is
// recorded and judged valid.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.hpp"
#include "gate/gate.hpp"
#include "results/results.hpp"
#include "run/run.hpp"
#include "topology/spec.hpp"

using namespace hrb;
using namespace hrb::run;

namespace {

RunConfig config(std::vector<std::string> modes, std::vector<std::string> workloads, int reps) {
  RunConfig c;
  c.modes = std::move(modes);
  c.workloads = std::move(workloads);
  c.repetitions = reps;
  return c;
}

std::vector<std::string> cells(const std::vector<PlannedTrial>& plan) {
  std::vector<std::string> out;
  for (const auto& t : plan)
    out.push_back(t.mode + "/" + t.scenario + "/" + t.workload + "/" +
                  std::to_string(t.repetition));
  return out;
}

topology::Layout two_node() {
  return topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/two-node.yaml"),
      "plantest");
}

}  // namespace

TEST(Plan, CeilingFirstThenTheModesReversedOnOddRepetitions) {
  auto c = config({"legacy", "ebpf"}, {"tcp_rr", "tcp_crr"}, 3);
  auto plan = plan_trials(c, {"pod-pod-cross-node", "node-node"}, {}, c.mode_options);
  const std::vector<std::string> rep0{"none/node-node/tcp_rr/0",
                                      "none/node-node/tcp_crr/0",
                                      "legacy/pod-pod-cross-node/tcp_rr/0",
                                      "legacy/pod-pod-cross-node/tcp_crr/0",
                                      "ebpf/pod-pod-cross-node/tcp_rr/0",
                                      "ebpf/pod-pod-cross-node/tcp_crr/0"};
  const std::vector<std::string> rep1{"none/node-node/tcp_rr/1",
                                      "none/node-node/tcp_crr/1",
                                      "ebpf/pod-pod-cross-node/tcp_rr/1",
                                      "ebpf/pod-pod-cross-node/tcp_crr/1",
                                      "legacy/pod-pod-cross-node/tcp_rr/1",
                                      "legacy/pod-pod-cross-node/tcp_crr/1"};
  auto got = cells(plan);
  ASSERT_EQ(got.size(), 18u);
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.begin() + 6), rep0);
  EXPECT_EQ(std::vector<std::string>(got.begin() + 6, got.begin() + 12), rep1);
  EXPECT_EQ(got[12], "none/node-node/tcp_rr/2");
  EXPECT_EQ(got[14], "legacy/pod-pod-cross-node/tcp_rr/2") << "repetition 2 as repetition 0";
  for (const auto& t : plan) {
    EXPECT_FALSE(t.scan);
    EXPECT_EQ(t.flows, 1);
    EXPECT_EQ(t.setting.options.name, t.mode);
  }
}

TEST(Plan, WithoutNodeNodeThereIsNoCeilingBlock) {
  auto c = config({"legacy", "bpf-lb", "ebpf"}, {"tcp_rr"}, 2);
  auto got = cells(plan_trials(c, {"pod-pod-same-node", "pod-service"}, {}, c.mode_options));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "legacy/pod-pod-same-node/tcp_rr/0", "legacy/pod-service/tcp_rr/0",
                     "bpf-lb/pod-pod-same-node/tcp_rr/0", "bpf-lb/pod-service/tcp_rr/0",
                     "ebpf/pod-pod-same-node/tcp_rr/0", "ebpf/pod-service/tcp_rr/0",
                     "ebpf/pod-pod-same-node/tcp_rr/1", "ebpf/pod-service/tcp_rr/1",
                     "bpf-lb/pod-pod-same-node/tcp_rr/1", "bpf-lb/pod-service/tcp_rr/1",
                     "legacy/pod-pod-same-node/tcp_rr/1", "legacy/pod-service/tcp_rr/1"}));
}

TEST(Plan, PpsRunsInPodPodCrossNodeOnly) {
  auto c = config({"ebpf"}, {"tcp_rr", "pps"}, 1);
  auto got = cells(plan_trials(c, {"pod-pod-same-node", "pod-pod-cross-node"}, {}, c.mode_options));
  EXPECT_EQ(got, (std::vector<std::string>{"ebpf/pod-pod-same-node/tcp_rr/0",
                                           "ebpf/pod-pod-cross-node/tcp_rr/0",
                                           "ebpf/pod-pod-cross-node/pps/0"}));
}

TEST(Plan, EveryScanValueIsAWholePassOfRepetitions) {
  auto c = config({"legacy", "ebpf"}, {"tcp_crr"}, 2);
  c.scan_param = "services";
  c.mode_options.services = 7;
  auto plan = plan_trials(c, {"pod-service"}, {10, 100}, c.mode_options);
  ASSERT_EQ(plan.size(), 8u);
  for (size_t i = 0; i < plan.size(); ++i) {
    const int v = i < 4 ? 10 : 100;
    ASSERT_TRUE(plan[i].scan);
    EXPECT_EQ(*plan[i].scan, (results::TrialScan{.param = "services", .value = v}));
    EXPECT_EQ(plan[i].setting.options.services, v) << "the scan value is the service count";
    EXPECT_EQ(plan[i].repetition, static_cast<int>(i % 4 / 2));
  }
  c.scan_param = "flows";
  plan = plan_trials(c, {"pod-service"}, {1, 8}, c.mode_options);
  EXPECT_EQ(plan.back().flows, 8);
  EXPECT_EQ(plan.back().setting.options.services, 7);
}

TEST(Plan, EbpfDelayIsEbpfWithTheCalibrationDelayDecidedOnce) {
  auto c = config({"ebpf", "ebpf-delay"}, {"tcp_rr"}, 1);
  c.calibration_delay_loops = 500;
  auto plan = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[1].mode, "ebpf-delay") << "recorded under its own name";
  EXPECT_EQ(plan[1].setting.options.name, "ebpf");
  EXPECT_EQ(plan[1].setting.options.delay_loops, 500u);
  EXPECT_EQ(plan[0].setting.options.delay_loops, 0u);
  for (const auto& t : plan) EXPECT_TRUE(t.setting.bpf && t.setting.rules);
  auto legacy = trial_mode("legacy", c.mode_options, 500);
  EXPECT_TRUE(legacy.rules);
  EXPECT_FALSE(legacy.bpf);
  auto none = trial_mode("none", c.mode_options, 500);
  EXPECT_FALSE(none.rules || none.bpf);
}

TEST(Plan, ModeNamesAreCheckedInOnePlace) {
  EXPECT_NO_THROW(validate_mode_names({"legacy", "bpf-lb", "ebpf", "none", "ebpf-delay"}));
  try {
    validate_mode_names({"legacy", "ebfp"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("'ebfp'"), std::string::npos) << e.what();
  }
}

TEST(Plan, OnATopologyTheServiceScenariosRaiseTheServiceCount) {
  auto c = config({"legacy", "ebpf"}, {"tcp_rr"}, 1);
  c.scenarios = {"pod-service", "node-node"};
  auto p = plan_matrix(c, two_node());
  EXPECT_EQ(p.scenarios, (std::vector<std::string>{"pod-service", "node-node"}));
  ASSERT_TRUE(p.pod_service);
  EXPECT_EQ(p.mode_options.services, p.pod_service->minimum_services);
  EXPECT_EQ(p.pod_service->services_requested, 0);
  EXPECT_FALSE(p.external_node_port);
  EXPECT_EQ(cells(p.trials),
            (std::vector<std::string>{"none/node-node/tcp_rr/0", "legacy/pod-service/tcp_rr/0",
                                      "ebpf/pod-service/tcp_rr/0"}));
  for (const auto& t : p.trials) EXPECT_EQ(t.setting.options.services, p.mode_options.services);
  c.workloads = {"pps"};
  EXPECT_THROW(plan_matrix(c, two_node()), Error) << "pps needs pod-pod-cross-node";
}

TEST(Record, AMeasurementBecomesATrialJudgedValidOrNot) {
  auto c = config({"ebpf"}, {"tcp_rr"}, 1);
  const auto t = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options).at(0);
  Measurement m;
  m.started_at = "2026-12-01T00:00:00Z";
  m.client = "node1-pod1";
  m.server = "node2-pod1";
  m.cpu.user = 0.5;
  m.cpu.idle = 1.5;
  traffic::WorkloadResult r{.kind = traffic::Kind::kTcpRr};
  r.seconds = 1;
  r.transactions = 1000;
  m.workload = r;
  m.iptables_packets = 0;
  m.bpf_counters = nlohmann::json::object();
  auto trial = record(t, m, 3, 1, 0.10);
  EXPECT_EQ(trial.mode, "ebpf");
  EXPECT_EQ(trial.order, 3);
  EXPECT_EQ(trial.attempt, 1);
  EXPECT_TRUE(trial.is_valid());
  EXPECT_EQ(trial.flags, std::vector<std::string>{});
  EXPECT_EQ(results::metric_value(trial, *results::find_metric("transactionsPerSecond")), 1000);
  EXPECT_EQ(results::metric_value(trial, *results::find_metric("cpuUsPerTransaction")), 500);
  EXPECT_EQ(trial.iptables_packets, 0u);
  EXPECT_FALSE(trial.service_rule_packets);

  m.workload->transactions = 0;
  m.cpu.steal = 1;  // a third of the time stolen
  trial = record(t, m, 3, 2, 0.10);
  EXPECT_FALSE(trial.is_valid());
  EXPECT_EQ(trial.flags, (std::vector<std::string>{"no transactions", "steal 33% > 10%"}));
}

// A mode of another build, KIND@DIR (here this build's own directory: the objects must exist, or
// the plan refuses the name), is a plain string from the plan through the results file to the
// gate.
TEST(Record, AnyModeNameSurvivesPlanResultsAndGate) {
  const std::string other = std::string("ebpf@") + HRB_BINARY_DIR;
  auto c = config({"legacy", other}, {"tcp_rr"}, 3);
  auto plan = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options);
  EXPECT_EQ(plan[1].setting.options.objects_dir, std::string(HRB_BINARY_DIR) + "/bpf");
  EXPECT_TRUE(plan[1].setting.bpf);
  results::Run run;
  run.config.repetitions = 3;
  for (const auto& t : plan) {
    Measurement m;
    traffic::WorkloadResult r{.kind = traffic::Kind::kTcpRr};
    r.seconds = 1;
    r.transactions = t.mode == "legacy" ? 1000 : 1200 + t.repetition;
    m.workload = r;
    run.trials.push_back(record(t, m, run.trials.size() + 1, 1, 1));
  }
  run = results::from_json(results::to_json(run), "mem.json");
  EXPECT_EQ(run.trials[0].mode, "legacy");
  EXPECT_EQ(run.trials[1].mode, other);
  auto policy = gate::parse_policy_string(R"(
minPairs: 3
checks:
  - name: other build faster
    kind: relative
    workload: tcp_rr
    metric: transactionsPerSecond
    a: {mode: legacy, scenario: pod-pod-cross-node}
    b: {mode: ")" + other + R"(", scenario: pod-pod-cross-node}
    ratio: {min: 1.1}
)",
                                          "policy.yaml");
  auto r = gate::evaluate(policy, run, "mem.json", nullptr, "");
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].pairs, 3u);
  EXPECT_EQ(r.checks[0].verdict, gate::Verdict::kPass);
}

// --alternate: per round, scenario and workload one group holding one trial of each mode, in the
// round's mode order (so the segments start ABBA across rounds); every trial in one group.
TEST(Plan, AlternationGroupsHoldOneTrialOfEachModePerRoundScenarioAndWorkload) {
  auto c = config({"ebpf", "ebpf-delay"}, {"tcp_rr", "tcp_stream"}, 3);
  c.scan_param = "services";
  auto plan = plan_trials(c, {"pod-pod-cross-node", "pod-service"}, {0, 100}, c.mode_options);
  const auto groups = alternation_groups(plan);
  ASSERT_EQ(groups.size(), 2u * 3u * 2u * 2u);  // scan values x repetitions x scenarios x workloads
  std::vector<int> seen(plan.size(), 0);
  for (const auto& g : groups) {
    ASSERT_EQ(g.size(), 2u);
    const auto& a = plan[g[0]];
    const auto& b = plan[g[1]];
    EXPECT_NE(a.mode, b.mode);
    EXPECT_EQ(a.scenario, b.scenario);
    EXPECT_EQ(a.workload, b.workload);
    EXPECT_EQ(a.repetition, b.repetition);
    EXPECT_EQ(a.scan_value(), b.scan_value());
    // The round's first mode first: ebpf on even repetitions, ebpf-delay on odd ones.
    EXPECT_EQ(a.mode, a.repetition % 2 ? "ebpf-delay" : "ebpf");
    for (size_t i : g) ++seen[i];
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(plan.size()));
}

// The one mode that holds the variants: the first mode's options, the others' objects and
// delays as alternates, in --modes order.
TEST(Plan, TheAlternatedModeHoldsEveryVariantInModesOrder) {
  auto c = config({"ebpf", "ebpf-delay", "ebpf@" HRB_BINARY_DIR}, {"tcp_rr"}, 1);
  c.calibration_delay_loops = 300;
  const auto m = alternated_mode(c, c.mode_options);
  EXPECT_EQ(m.name, "ebpf");
  EXPECT_EQ(m.delay_loops, 0u);
  EXPECT_TRUE(m.objects_dir.empty());
  ASSERT_EQ(m.alternates.size(), 2u);
  EXPECT_EQ(m.alternates[0].delay_loops, 300u);
  EXPECT_TRUE(m.alternates[0].objects_dir.empty());
  EXPECT_EQ(m.alternates[1].delay_loops, 0u);
  EXPECT_NE(m.alternates[1].objects_dir.find("/bpf"), std::string::npos);
  // Recorded and read back with the mode (the cluster's mode.json, results' modeOptions).
  EXPECT_EQ(datapath::ModeOptions::from_json(m.to_json()).alternates, m.alternates);
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"ebpf"}, {"legacy", "ebpf"}, {"ebpf", "bpf-lb"}, {"ebpf", "ebpf"}}) {
    auto b = config(bad, {"tcp_rr"}, 1);
    try {
      alternated_mode(b, b.mode_options);
      ADD_FAILURE() << bad.size() << " modes: accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << e.what();
    }
  }
}

TEST(Plan, ProfileTakesEachCellOnceInTheFirstRepetitionsOrder) {
  auto c = config({"legacy", "ebpf"}, {"tcp_rr", "tcp_crr"}, 3);
  auto plan = plan_trials(c, {"pod-pod-cross-node", "node-node"}, {}, c.mode_options);
  std::vector<PlannedTrial> profiled;
  for (size_t i : profile_plan(plan)) profiled.push_back(plan[i]);
  EXPECT_EQ(cells(profiled),
            (std::vector<std::string>{
                "none/node-node/tcp_rr/0", "none/node-node/tcp_crr/0",
                "legacy/pod-pod-cross-node/tcp_rr/0", "legacy/pod-pod-cross-node/tcp_crr/0",
                "ebpf/pod-pod-cross-node/tcp_rr/0", "ebpf/pod-pod-cross-node/tcp_crr/0"}));
  // A scan: each value's cells once.
  c.scan_param = "flows";
  auto scanned = plan_trials(c, {"pod-pod-cross-node"}, {1, 2}, c.mode_options);
  EXPECT_EQ(profile_plan(scanned).size(), 2u * 2 * 2);
}

TEST(Plan, FamiliesAreInsideEachWorkloadAndPpsIsIpv4Only) {
  auto c = config({"legacy"}, {"tcp_rr", "pps"}, 1);
  c.families = {Family::kIpv4, Family::kIpv6};
  auto plan = plan_trials(c, {"pod-pod-cross-node"}, {}, c.mode_options);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].workload, "tcp_rr");
  EXPECT_EQ(plan[0].family, Family::kIpv4);
  EXPECT_EQ(plan[1].workload, "tcp_rr");
  EXPECT_EQ(plan[1].family, Family::kIpv6);
  EXPECT_EQ(plan[2].workload, "pps");
  EXPECT_EQ(plan[2].family, Family::kIpv4);
  // Each family's trial is its own profiled cell and its own alternation group.
  EXPECT_EQ(profile_plan(plan).size(), 3u);
  EXPECT_EQ(alternation_groups(plan).size(), 3u);
  // A trial records its family.
  EXPECT_EQ(record(plan[1], {}, 1, 1, 1.0).family, "ipv6");
  EXPECT_EQ(record(plan[0], {}, 1, 1, 1.0).family, "ipv4");
}

TEST(Plan, FamiliesAreCheckedAndIpv6NeedsADualStackTopology) {
  EXPECT_EQ(parse_families({"ipv6", "ipv4"}), (std::vector<Family>{Family::kIpv6, Family::kIpv4}));
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"ipv5"}, {"ipv4", "ipv4"}, {}}) {
    try {
      parse_families(bad);
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      EXPECT_NE(std::string(e.what()).find("--families"), std::string::npos) << e.what();
    }
  }
  auto c = config({"legacy"}, {"tcp_rr"}, 1);
  c.families = {Family::kIpv4, Family::kIpv6};
  try {
    plan_matrix(c, two_node());
    FAIL() << "ipv6 on an IPv4-only topology was planned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("dual-stack"), std::string::npos) << e.what();
  }
  auto dual = topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/dual-stack.yaml"),
      "plantest");
  c.scenarios = {"pod-pod-cross-node", "pod-service"};
  const auto p = plan_matrix(c, dual);
  ASSERT_EQ(p.trials.size(), 4u);
  EXPECT_EQ(p.scenarios, (std::vector<std::string>{"pod-pod-cross-node", "pod-service"}));
}

// A single-stack IPv6 topology: ipv4 is refused by name, ipv6 alone plans every scenario (the
// service target is the IPv6 ClusterIP), pps (IPv4 frames) is refused.
TEST(Plan, SingleStackIpv6TopologyPlansIpv6Only) {
  auto v6 = topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/ipv6.yaml"), "plantest");
  auto c = config({"legacy", "ebpf"}, {"tcp_rr"}, 1);
  c.scenarios = {"pod-pod-same-node", "pod-pod-cross-node", "pod-service",
                 "pod-external",      "node-node",          "external-nodeport"};
  c.families = {Family::kIpv4};
  try {
    plan_matrix(c, v6);
    FAIL() << "ipv4 on a single-stack IPv6 topology was planned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("--families ipv4: topology ipv6 has no IPv4 (its family "
                                         "is ipv6)"),
              std::string::npos)
        << e.what();
  }
  c.families = {Family::kIpv6};
  const auto p = plan_matrix(c, v6);
  EXPECT_EQ(p.scenarios, c.scenarios);
  for (const auto& t : p.trials) EXPECT_EQ(t.family, Family::kIpv6);
  ASSERT_TRUE(p.pod_service);
  EXPECT_EQ(p.pod_service->ip.rfind("fd00:10:96::", 0), 0u) << p.pod_service->ip;
  c.workloads = {"pps"};
  c.scenarios = {"pod-pod-cross-node"};
  EXPECT_THROW(plan_matrix(c, v6), Error);
}
