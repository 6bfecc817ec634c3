// The gate's statistics and outputs on synthetic results (no kernel needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.hpp"
#include "gate/gate.hpp"
#include "metrics/stats.hpp"
#include "support/cluster_fixture.hpp"

using namespace hrb;
using namespace hrb::gate;

namespace {

nlohmann::json trial(const std::string& mode, const std::string& scen, const std::string& wl,
                     int rep, double tps) {
  return {{"mode", mode},      {"scenario", scen}, {"workload", wl},
          {"repetition", rep}, {"valid", true},    {"metrics", {{"transactionsPerSecond", tps}}}};
}

// A run with `pairs` repetitions: legacy ~ N(1000, sd), ebpf ~ shift * N(1000, sd).
nlohmann::json run_doc(size_t pairs, double shift, double sd, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(1000, sd);
  nlohmann::json doc{{"schema", "hostroute-bench/results"},
                     {"schemaVersion", 1},
                     {"config", {{"repetitions", pairs}}},
                     {"trials", nlohmann::json::array()}};
  for (size_t r = 0; r < pairs; ++r) {
    doc["trials"].push_back(trial("legacy", "pod-pod-cross-node", "tcp_rr", r, noise(rng)));
    doc["trials"].push_back(trial("ebpf", "pod-pod-cross-node", "tcp_rr", r, shift * noise(rng)));
  }
  return doc;
}

Policy policy(double min_ratio, size_t min_pairs = 3) {
  return parse_policy_string(fmt::format(R"(minPairs: {}
checks:
  - name: ebpf not slower
    kind: relative
    workload: tcp_rr
    metric: transactionsPerSecond
    a: {{mode: legacy, scenario: pod-pod-cross-node}}
    b: {{mode: ebpf, scenario: pod-pod-cross-node}}
    ratio: {{min: {}}}
)",
                                         min_pairs, min_ratio),
                             "policy.yaml");
}

// The documents of these tests are JSON, as in a file: read with results::from_json (what
// read_results does after parsing) before the gate sees them.
GateResult evaluate(const Policy& p, const nlohmann::json& cur, const std::string& cur_file,
                    const nlohmann::json* base, const std::string& base_file,
                    const EvaluateOptions& options = {}) {
  const auto c = results::from_json(cur, cur_file);
  std::optional<results::Run> b;
  if (base) b = results::from_json(*base, base_file);
  return gate::evaluate(p, c, cur_file, b ? &*b : nullptr, base_file, options);
}

results::Environment env_of(const nlohmann::json& doc) {
  return results::from_json(doc, "test").environment;
}

}  // namespace

TEST(GateStats, IdenticalDistributionsRarelyFail) {
  // A/A with a bound of "no regression at all" (min 1.0): the interval is 95 % two-sided, so a
  // false failure (whole interval below 1) should happen in at most ~2.5 % of runs.
  int fails = 0;
  const int runs = 300;
  for (int s = 0; s < runs; ++s) {
    auto r = evaluate(policy(1.0), run_doc(8, 1.0, 30, s), "aa.json", nullptr, "");
    fails += r.overall() == Verdict::kFail;
  }
  EXPECT_LE(fails, runs * 5 / 100) << "false alarms above 5 %";
  // With a 5 % tolerance and 1 % noise, A/A runs pass nearly always (with 3 % noise and 8
  // pairs many are inconclusive instead: the interval is wider than the tolerance).
  int tolerant_pass = 0, tolerant_fail = 0;
  for (int s = 0; s < runs; ++s) {
    auto v = evaluate(policy(0.95), run_doc(8, 1.0, 10, s), "aa.json", nullptr, "").overall();
    tolerant_pass += v == Verdict::kPass;
    tolerant_fail += v == Verdict::kFail;
  }
  EXPECT_GE(tolerant_pass, runs * 90 / 100);
  EXPECT_EQ(tolerant_fail, 0);
}

TEST(GateStats, AShiftedDistributionFails) {
  int fails = 0;
  for (int s = 0; s < 50; ++s)
    fails += evaluate(policy(0.95), run_doc(8, 0.80, 30, s), "ab.json", nullptr, "").overall() ==
             Verdict::kFail;
  EXPECT_EQ(fails, 50) << "a 20 % regression must fail every time at this noise";
}

TEST(GateStats, TooFewPairsIsInconclusive) {
  auto r = evaluate(policy(0.95, 3), run_doc(2, 0.5, 1, 1), "few.json", nullptr, "");
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].verdict, Verdict::kInconclusive);
  EXPECT_NE(r.checks[0].message.find("too few pairs"), std::string::npos);
  EXPECT_EQ(exit_code(r, false), 2);
  EXPECT_EQ(exit_code(r, true), 0);
}

TEST(GateStats, MissingOrNonFiniteDataIsAnInputErrorNamingFileAndMetric) {
  auto doc = run_doc(4, 1.0, 10, 1);
  for (auto& t : doc["trials"])
    if (t["mode"] == "ebpf") t["metrics"]["transactionsPerSecond"] = nullptr;  // NaN in JSON
  try {
    evaluate(policy(0.95), doc, "nan.json", nullptr, "");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("nan.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("transactionsPerSecond"), std::string::npos);
  }
  nlohmann::json empty = run_doc(0, 1, 1, 1);
  EXPECT_THROW(evaluate(policy(0.95), empty, "empty.json", nullptr, ""), Error);
  // Mismatched: legacy only in repetitions 0-1, ebpf only in 2-3: no pair.
  auto mis = run_doc(4, 1.0, 10, 1);
  nlohmann::json kept = nlohmann::json::array();
  for (auto& t : mis["trials"])
    if ((t["mode"] == "legacy") == (t["repetition"].get<int>() < 2)) kept.push_back(t);
  mis["trials"] = kept;
  EXPECT_THROW(evaluate(policy(0.95), mis, "mis.json", nullptr, ""), Error);
}

TEST(GateStats, ABaselineMeasuredWithOtherSettingsIsRefusedNamingTheKey) {
  auto policy = parse_policy_string(R"(checks:
  - name: ebpf not worse than baseline
    kind: baseline
    workload: tcp_rr
    metric: transactionsPerSecond
    mode: ebpf
    scenario: pod-pod-cross-node
    maxRegression: 0.05
)",
                                    "policy.yaml");
  auto base = run_doc(5, 1.0, 10, 1), cur = run_doc(5, 1.0, 10, 2);
  EXPECT_NO_THROW(evaluate(policy, cur, "cur.json", &base, "base.json"));
  cur["config"]["pinnedCpus"] = {0, 0};  // colocated threads: a different measurement
  try {
    evaluate(policy, cur, "cur.json", &base, "base.json");
    FAIL() << "a baseline without pinning accepted for a pinned run";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    const std::string m = e.what();
    EXPECT_NE(m.find("base.json"), std::string::npos) << m;
    EXPECT_NE(m.find("/config/pinnedCpus"), std::string::npos) << m;
  }
  base["config"]["pinnedCpus"] = {0, 0};
  EXPECT_NO_THROW(evaluate(policy, cur, "cur.json", &base, "base.json"));
  // Relative checks never read the baseline: no comparability needed.
  base["config"]["flows"] = 4;
  EXPECT_NO_THROW(evaluate(::policy(0.95), cur, "cur.json", &base, "base.json"));
}

TEST(GatePolicy, RejectsBadPolicies) {
  for (const char* y :
       {"checks: []\n", "colour: 1\nchecks: []\n",
        "checks:\n  - {name: x, kind: relative, workload: tcp_rr, metric: speed,"
        " a: {mode: legacy, scenario: s}, b: {mode: ebpf, scenario: s}, ratio: {min: 1}}\n",
        "checks:\n  - {name: x, kind: relative, workload: tcp_stream, metric: latencyP99,"
        " a: {mode: legacy, scenario: s}, b: {mode: ebpf, scenario: s}, ratio: {min: 1}}\n",
        "checks:\n  - {name: x, kind: relative, workload: tcp_rr, "
        "metric: transactionsPerSecond, a: {mode: legacy, scenario: s}, "
        "b: {mode: ebpf, scenario: s}, ratio: {}}\n",
        "checks:\n  - {name: x, kind: sideways, workload: tcp_rr, "
        "metric: transactionsPerSecond}\n"}) {
    try {
      parse_policy_string(y, "p.yaml");
      FAIL() << "accepted:\n" << y;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find("p.yaml"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(parse_policy_file(test::source_path("results/gate.yaml")));
}

// results/gate-base.yaml (scripts/ci-gate --base): head (ebpf) against another build's objects,
// recorded as ebpf@base, in one run. The mode names another build's mode by its stable name.
TEST(GatePolicy, TheBasePolicyJudgesHeadAgainstEbpfAtBase) {
  auto p = parse_policy_file(test::source_path("results/gate-base.yaml"));
  for (const auto& k : p.checks) EXPECT_EQ(k.a.mode, "ebpf@base") << k.name;
  auto doc_with = [](double head) {
    nlohmann::json doc{{"schema", "hostroute-bench/results"},
                       {"schemaVersion", 1},
                       {"config", {{"repetitions", 9}}},
                       {"trials", nlohmann::json::array()}};
    for (int r = 0; r < 9; ++r)
      for (const char* wl : {"tcp_rr", "tcp_crr"}) {
        const double v = 1000 + 5 * r;
        doc["trials"].push_back(trial("ebpf@base", "pod-pod-cross-node", wl, r, v));
        doc["trials"].push_back(trial("ebpf", "pod-pod-cross-node", wl, r, head * v));
      }
    return doc;
  };
  p = only_workloads(std::move(p), {"tcp_rr", "tcp_crr"});
  ASSERT_EQ(p.checks.size(), 2u);
  auto same = evaluate(p, doc_with(1.0), "aa.json", nullptr, "");
  EXPECT_EQ(same.overall(), Verdict::kPass);
  auto slower = evaluate(p, doc_with(0.9), "ab.json", nullptr, "");
  EXPECT_EQ(slower.overall(), Verdict::kFail) << "head 10 % slower than base";
}

// Whole numbers out of range (a negative double cast to size_t was undefined behaviour; found by
// fuzz_gate_policy, tests/fixtures/gate/fuzz/minpairs-negative.yaml).
TEST(GatePolicy, RejectsNumbersOutOfRange) {
  const std::string checks =
      "checks:\n  - {name: x, kind: relative, workload: tcp_rr, metric: transactionsPerSecond,"
      " a: {mode: legacy, scenario: s}, b: {mode: ebpf, scenario: s}, ratio: {min: 1}}\n";
  for (const char* head : {"minPairs: -13\n", "minPairs: 2.5\n", "resamples: 1e300\n", "seed: -1\n",
                           "resamples: 0\n"}) {
    try {
      parse_policy_string(head + checks, "p.yaml");
      FAIL() << "accepted: " << head;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find("whole number"), std::string::npos) << e.what();
    }
  }
  try {
    parse_policy_file(test::source_path("tests/fixtures/gate/fuzz/minpairs-negative.yaml"));
    FAIL() << "the fuzzer's input was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput) << e.what();
  }
}

TEST(GateStats, MannWhitney) {
  std::vector<double> a{1, 2, 3, 4, 5, 6, 7, 8}, b{11, 12, 13, 14, 15, 16, 17, 18};
  EXPECT_LT(metrics::mann_whitney_p(a, b), 0.01);
  EXPECT_GT(metrics::mann_whitney_p(a, a), 0.9);
}

// The gate fixture (tests/fixtures/gate): its run judged by its policy, with itself as baseline.
GateResult fixture_result() {
  const std::string dir = test::source_path("tests/fixtures/gate/");
  auto p = parse_policy_file(dir + "policy.yaml");
  auto doc = nlohmann::json::parse(std::ifstream(dir + "run.json"));
  return evaluate(p, doc, "run.json", &doc, "run.json");
}

// The fixture's verdicts, from data made to fall clearly on one side of each bound (the table in
// tests/fixtures/gate/policy.yaml): asserted here, check by check, not read from a golden file.
TEST(GateOutput, TheFixtureGivesTwoPassesOneFailOneInconclusive) {
  auto r = fixture_result();
  ASSERT_EQ(r.checks.size(), 4u);
  struct Want {
    const char* name;
    Verdict verdict;
    double lo, hi;  // the interval must lie within [lo, hi] (the per-repetition ratio range)
  } want[] = {
      {"ebpf faster than legacy", Verdict::kPass, 1.18, 1.22},
      {"ebpf p99 10 % below legacy", Verdict::kPass, 0.792, 0.819},
      {"ebpf reaches the ceiling", Verdict::kFail, 0.880, 0.916},
  };
  for (const auto& w : want) {
    auto it = std::find_if(r.checks.begin(), r.checks.end(),
                           [&](const CheckResult& c) { return c.check.name == w.name; });
    ASSERT_NE(it, r.checks.end()) << w.name;
    EXPECT_EQ(it->verdict, w.verdict) << w.name << ": " << it->message;
    EXPECT_EQ(it->pairs, 5u) << w.name;
    EXPECT_GE(it->ci_low, w.lo) << w.name;
    EXPECT_LE(it->ci_high, w.hi) << w.name;
  }
  const auto& base = r.checks[3];
  EXPECT_EQ(base.check.name, "ebpf same as baseline within 1 %");
  EXPECT_EQ(base.verdict, Verdict::kInconclusive) << base.message;
  EXPECT_DOUBLE_EQ(base.ratio, 1.0) << "the run is its own baseline";
  EXPECT_LT(base.ci_low, 0.98) << "clearly below the bound 0.99";
  EXPECT_GT(base.ci_high, 1.0) << "clearly above it";
  EXPECT_EQ(r.overall(), Verdict::kFail);
  EXPECT_EQ(exit_code(r, false), 1);
  EXPECT_EQ(exit_code(r, true), 1) << "--inconclusive-ok never hides a failure";
}

// Golden files: the formatting of the Markdown and JUnit renderings of the fixture (its verdicts
// are asserted above). After an intended change of format, regenerate them and check by hand
// that they still show 2 pass, 1 fail, 1 inconclusive.
TEST(GateOutput, MarkdownAndJunitMatchTheGoldenFiles) {
  const std::string dir = test::source_path("tests/fixtures/gate/");
  auto r = fixture_result();
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  // Regenerate after an intended change of format with:
  //   hrbench gate run.json --policy policy.yaml --baseline run.json
  //     --markdown expected.md --junit expected.xml     (in tests/fixtures/gate)
  const std::string md = slurp(dir + "expected.md"), xml = slurp(dir + "expected.xml");
  EXPECT_EQ(render_markdown(r, "hostroute-bench gate"), md);
  EXPECT_EQ(render_junit(r, "hostroute-bench gate"), xml);
  // A golden regenerated with wrong verdicts would still match: count them in the files too.
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(md, "| ✅ pass |"), 2u) << md;
  EXPECT_EQ(count(md, "| ❌ **fail** |"), 1u) << md;
  EXPECT_EQ(count(md, "| ⚠️ inconclusive |"), 1u) << md;
  EXPECT_NE(xml.find("tests=\"4\" failures=\"1\" skipped=\"1\""), std::string::npos) << xml;
}

TEST(GateCli, ExitCodes) {
  const std::string dir = test::source_path("tests/fixtures/gate/");
  auto gate = [&](const std::string& policy, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"gate",       dir + "run.json", "--policy",
                               dir + policy, "--baseline",     dir + "run.json"};
    a.insert(a.end(), extra.begin(), extra.end());
    return test::hrbench(a, "");
  };
  auto pass = gate("policy-pass.yaml");
  EXPECT_EQ(pass.status, 0) << pass.out << pass.err;
  EXPECT_NE(pass.out.find("pass"), std::string::npos) << pass.out;
  auto inconclusive = gate("policy-inconclusive.yaml");
  EXPECT_EQ(inconclusive.status, 2) << inconclusive.out << inconclusive.err;
  auto tolerated = gate("policy-inconclusive.yaml", {"--inconclusive-ok"});
  EXPECT_EQ(tolerated.status, 0) << tolerated.out << tolerated.err;
  auto still_fails = gate("policy.yaml", {"--inconclusive-ok"});
  EXPECT_EQ(still_fails.status, 1) << "--inconclusive-ok hid a failure\n" << still_fails.out;

  auto ok = test::hrbench(
      {"gate", dir + "run.json", "--policy", dir + "policy.yaml", "--baseline", dir + "run.json"},
      "");
  EXPECT_EQ(ok.status, 1) << "the fixture has one failing check\n" << ok.out << ok.err;
  auto bad = test::hrbench({"gate", dir + "run.json", "--policy", dir + "missing.yaml"}, "");
  EXPECT_EQ(bad.status, 3) << bad.err;
  auto nofile = test::hrbench({"gate", "/nonexistent.json"}, "");
  EXPECT_EQ(nofile.status, 3);
  auto usage = test::hrbench({"gate", "--bogus"}, "");
  EXPECT_EQ(usage.status, 3);
  // --workloads keeps the checks of those workloads; none left is a usage error.
  auto only = test::hrbench({"gate", dir + "run.json", "--policy", dir + "policy.yaml",
                             "--baseline", dir + "run.json", "--workloads", "tcp_rr,tcp_crr"},
                            "");
  EXPECT_EQ(only.status, 1) << only.err;
  auto none = test::hrbench(
      {"gate", dir + "run.json", "--policy", dir + "policy.yaml", "--workloads", "tcp_crr"}, "");
  EXPECT_EQ(none.status, 3);
  EXPECT_NE(none.err.find("--workloads tcp_crr"), std::string::npos) << none.err;
}

namespace {

// The fixture run, its environment set to a machine's fingerprint; `kernel` varies.
nlohmann::json with_environment(const std::string& kernel) {
  auto doc =
      nlohmann::json::parse(std::ifstream(test::source_path("tests/fixtures/gate/run.json")));
  doc["environment"] = {{"cpuModel", "Intel(R) Xeon(R) Processor"},
                        {"cpus", 2},
                        {"arch", "x86_64"},
                        {"kernel", kernel},
                        {"virtualization", "kvm"},
                        {"container", "none"},
                        {"hrbenchVersion", "0.1.0+gdeadbeef"}};
  return doc;
}

}  // namespace

TEST(GateEnvironment, DifferencesNameEachFieldAndBothValues) {
  auto a = with_environment("Linux 6.18.44-fc-v669");
  auto b = with_environment("Linux 6.18.44-fc-v973");
  b["environment"]["hrbenchVersion"] = "0.1.0+gcafe";  // recorded, never compared
  EXPECT_TRUE(environment_differences(env_of(a), env_of(a)).empty());
  auto d = environment_differences(env_of(a), env_of(b));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].field, "kernel");
  EXPECT_EQ(d[0].baseline, "Linux 6.18.44-fc-v669");
  EXPECT_EQ(d[0].current, "Linux 6.18.44-fc-v973");
  b["environment"]["cpus"] = 4;
  b["environment"].erase("virtualization");
  d = environment_differences(env_of(a), env_of(b));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].field, "cpus");
  EXPECT_EQ(d[0].current, "4");
  EXPECT_EQ(d[2].field, "virtualization");
  EXPECT_EQ(d[2].current, "(not recorded)");
}

// Figures measured in a kernel-matrix VM (virtualization "tcg" or "kvm", from the VM's kernel
// command line) differ from the machine's own in that field, whatever else they share.
TEST(GateEnvironment, KernelMatrixVmIsAnotherEnvironment) {
  auto host = with_environment("Linux 6.1.0-57-amd64");
  auto vm = host;
  vm["environment"]["virtualization"] = "tcg";
  auto d = environment_differences(env_of(host), env_of(vm));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].field, "virtualization");
  EXPECT_EQ(d[0].baseline, "kvm");
  EXPECT_EQ(d[0].current, "tcg");
  auto kvm_vm = vm;
  kvm_vm["environment"]["virtualization"] = "kvm";
  EXPECT_EQ(environment_differences(env_of(vm), env_of(kvm_vm)).size(), 1u) << "tcg is not kvm";
}

// A baseline from another environment is not comparable: its checks are not judged, exit 3,
// never a FAIL — even for the fixture, whose baseline checks would fail against it.
TEST(GateEnvironment, OtherEnvironmentIsNotComparableUnlessAllowed) {
  auto policy = parse_policy_string(R"(
checks:
  - name: ebpf not worse than baseline
    kind: baseline
    metric: transactionsPerSecond
    workload: tcp_rr
    mode: ebpf
    scenario: pod-pod-cross-node
    maxRegression: 0.05
)",
                                    "policy.yaml");
  auto base = with_environment("Linux 6.18.44-fc-v669");
  auto cur = with_environment("Linux 6.18.44-fc-v973");
  // Halve the current ebpf rate: judged, this is a regression.
  for (auto& t : cur["trials"])
    if (t["mode"] == "ebpf" && t["metrics"].contains("transactionsPerSecond"))
      t["metrics"]["transactionsPerSecond"] =
          t["metrics"]["transactionsPerSecond"].get<double>() / 2;

  auto r = evaluate(policy, cur, "cur.json", &base, "base.json");
  EXPECT_TRUE(r.not_comparable());
  EXPECT_TRUE(r.checks.empty());
  ASSERT_EQ(r.not_judged.size(), 1u);
  EXPECT_EQ(exit_code(r, false), 3);
  EXPECT_EQ(exit_code(r, true), 3) << "--inconclusive-ok does not hide it";
  const auto text = render_text(r);
  EXPECT_NE(text.find("baseline not comparable"), std::string::npos) << text;
  EXPECT_NE(text.find("kernel: 'Linux 6.18.44-fc-v669' (baseline) vs 'Linux 6.18.44-fc-v973'"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("fail"), std::string::npos) << text;
  EXPECT_NE(render_markdown(r, "t").find("baseline not comparable"), std::string::npos);
  EXPECT_NE(render_junit(r, "t").find("skipped=\"1\""), std::string::npos) << render_junit(r, "t");

  auto allowed =
      evaluate(policy, cur, "cur.json", &base, "base.json", {.allow_other_environment = true});
  EXPECT_FALSE(allowed.not_comparable());
  ASSERT_EQ(allowed.checks.size(), 1u);
  EXPECT_EQ(allowed.checks[0].verdict, Verdict::kFail);
  EXPECT_EQ(exit_code(allowed, false), 1);
  for (const auto& out :
       {render_text(allowed), render_markdown(allowed, "t"), render_junit(allowed, "t")})
    EXPECT_NE(out.find("--allow-other-environment"), std::string::npos) << out;

  // Same environment: judged as before.
  auto same = evaluate(policy, cur, "cur.json", &cur, "cur.json");
  EXPECT_TRUE(same.other_environment.empty());
  EXPECT_EQ(exit_code(same, false), 0);
}

TEST(GateCli, BaselineFromAnotherEnvironmentExits3NamingTheField) {
  char t[] = "/tmp/hrb-gate-env-XXXXXX";
  const std::string tmp = mkdtemp(t);
  std::ofstream(tmp + "/base.json") << with_environment("Linux 6.1.0-other").dump();
  std::ofstream(tmp + "/cur.json") << with_environment("Linux 6.18.44-this").dump();
  // The fixture's baseline check alone (its failing relative check would decide the exit code).
  std::ofstream(tmp + "/policy.yaml") << R"(checks:
  - name: ebpf same as baseline within 1 %
    kind: baseline
    workload: tcp_rr
    metric: transactionsPerSecond
    mode: ebpf
    scenario: pod-pod-cross-node
    maxRegression: 0.01
)";
  auto r = test::hrbench({"gate", tmp + "/cur.json", "--policy", tmp + "/policy.yaml", "--baseline",
                          tmp + "/base.json"},
                         "");
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("kernel: 'Linux 6.1.0-other' (baseline)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gate: not comparable"), std::string::npos) << r.out;
  auto allowed = test::hrbench({"gate", tmp + "/cur.json", "--policy", tmp + "/policy.yaml",
                                "--baseline", tmp + "/base.json", "--allow-other-environment"},
                               "");
  EXPECT_EQ(allowed.status, 2) << "judged: the fixture's baseline check is inconclusive\n"
                               << allowed.out;
  EXPECT_NE(allowed.out.find("another environment"), std::string::npos) << allowed.out;
  std::filesystem::remove_all(tmp);
}

// --markdown and --junit write the renderings of what the gate printed: for the fixture, the
// golden files.
TEST(GateCli, MarkdownAndJunitFilesAreWritten) {
  const std::string dir = test::source_path("tests/fixtures/gate/");
  char t[] = "/tmp/hrb-gate-XXXXXX";
  const std::string tmp = mkdtemp(t);
  auto r = test::hrbench(
      {"gate", dir + "run.json", "--policy", dir + "policy.yaml", "--baseline", dir + "run.json",
       "--markdown", tmp + "/gate.md", "--junit", tmp + "/gate.xml"},
      "");
  EXPECT_EQ(r.status, 1) << r.err;
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  EXPECT_EQ(slurp(tmp + "/gate.md"), slurp(dir + "expected.md"));
  EXPECT_EQ(slurp(tmp + "/gate.xml"), slurp(dir + "expected.xml"));
  std::filesystem::remove_all(tmp);
}

namespace {

// A real run (tests/fixtures/results/real-run-2026-11-27.json, the baseline once committed) and a
// copy of it with ebpf's tcp_rr transaction rate halved in every trial: what `compare` and `report`
// print must show exactly that change.
struct HalvedRuns {
  std::string dir, base, half;
  nlohmann::json doc;
  HalvedRuns() {
    char t[] = "/tmp/hrb-cmp-XXXXXX";
    dir = mkdtemp(t);
    base = test::source_path("tests/fixtures/results/real-run-2026-11-27.json");
    half = dir + "/halved.json";
    doc = nlohmann::json::parse(std::ifstream(base));
    auto copy = doc;
    for (auto& tr : copy["trials"])
      if (tr["mode"] == "ebpf" && tr["workload"] == "tcp_rr")
        tr["metrics"]["transactionsPerSecond"] =
            tr["metrics"]["transactionsPerSecond"].get<double>() / 2;
    std::ofstream(half) << copy.dump(1);
  }
  ~HalvedRuns() { std::filesystem::remove_all(dir); }
};

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

}  // namespace

TEST(CompareCli, ShowsTheChangedMetricAndOnlyIt) {
  HalvedRuns runs;
  auto r = test::hrbench({"compare", runs.base, runs.half}, "");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(words(line), (std::vector<std::string>{"mode", "scenario", "workload", "metric", "A",
                                                   "B", "B/A", "U", "p"}));
  int rows = 0, halved = 0;
  while (std::getline(in, line)) {
    auto w = words(line);
    ASSERT_EQ(w.size(), 8u) << line;
    ++rows;
    if (w[0] == "ebpf" && w[2] == "tcp_rr" && w[3] == "transactionsPerSecond") {
      ++halved;
      EXPECT_EQ(w[6], "0.500") << line;
      EXPECT_LT(std::stod(w[7]), 0.01) << "every B below every A: " << line;
    } else {
      EXPECT_TRUE(w[6] == "1.000" || (w[6] == "-" && w[4] == "0")) << "unchanged: " << line;
      EXPECT_EQ(w[7], "1.000") << line;
    }
  }
  EXPECT_EQ(halved, 1) << r.out;  // ebpf is measured in pod-pod-cross-node only
  EXPECT_GT(rows, 20) << r.out;
  auto md = test::hrbench({"compare", runs.base, runs.half, "--markdown"}, "");
  ASSERT_EQ(md.status, 0) << md.err;
  EXPECT_EQ(md.out.rfind("| mode | scenario | workload | metric | A | B | B/A | U p |\n|---|", 0),
            0u)
      << md.out;
  EXPECT_NE(md.out.find("| ebpf | pod-pod-cross-node | tcp_rr | transactionsPerSecond | "),
            std::string::npos)
      << md.out;
  EXPECT_NE(md.out.find(" | 0.500 | "), std::string::npos) << md.out;
}

TEST(ReportCli, MarkdownAndHtmlShowEachRunAndItsTable) {
  HalvedRuns runs;
  auto r = test::hrbench({"report", runs.base, runs.half, "--format", "md"}, "");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string& md = r.out;
  EXPECT_EQ(md.rfind("# hostroute-bench report\n", 0), 0u) << md;
  const auto first = md.find("\n## " + runs.base + "\n"), second = md.find("\n## " + runs.half);
  ASSERT_NE(first, std::string::npos) << md;
  ASSERT_NE(second, std::string::npos) << md;
  ASSERT_LT(first, second);
  EXPECT_NE(md.find("| run | " + runs.doc["runId"].get<std::string>() + " |"), std::string::npos);
  EXPECT_NE(md.find("| trials | " + std::to_string(runs.doc["trials"].size()) + " "),
            std::string::npos)
      << md;
  // The summary row of tcp_rr's rate in each run: legacy the same, ebpf and the ratio halved.
  auto row = [&](size_t from, size_t to) {
    for (size_t at = md.find("pod-pod-cross-node   tcp_rr", from); at < to;
         at = md.find("pod-pod-cross-node   tcp_rr", at + 1)) {
      auto w = words(md.substr(at, md.find('\n', at) - at));
      if (w.size() >= 8 && w[2] == "transactionsPerSecond") return w;
    }
    return std::vector<std::string>{};
  };
  auto a = row(first, second), b = row(second, md.size());
  ASSERT_FALSE(a.empty()) << md;
  ASSERT_FALSE(b.empty()) << md;
  EXPECT_EQ(a[4], b[4]) << "legacy unchanged";
  EXPECT_NEAR(std::stod(b[5]), std::stod(a[5]) / 2, 1.0) << "ebpf halved";
  EXPECT_EQ(a[6], b[6]) << "the ceiling unchanged";
  EXPECT_NEAR(std::stod(b[7]), std::stod(a[7]) / 2, 0.001) << "ebpf/legacy halved";

  const std::string html = runs.dir + "/report.html";
  auto h = test::hrbench({"report", runs.base, "-o", html}, "");
  ASSERT_EQ(h.status, 0) << h.err;
  std::stringstream ss;
  ss << std::ifstream(html).rdbuf();
  const std::string page = ss.str();
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<h2>" + runs.base + "</h2>"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos) << "no chart";
  EXPECT_NE(page.find("<h3>Comparison table</h3>"), std::string::npos);
  EXPECT_NE(page.find(a[0] + "   " + a[1]), std::string::npos) << "the summary table";
  EXPECT_NE(page.find("</html>"), std::string::npos);
}

TEST(GatePolicy, OnlyWorkloadsKeepsTheChecksOfThoseWorkloads) {
  auto p = parse_policy_string(R"(
checks:
  - {name: rr, kind: relative, workload: tcp_rr, metric: transactionsPerSecond,
     a: {mode: legacy, scenario: pod-pod-cross-node}, b: {mode: ebpf, scenario: pod-pod-cross-node},
     ratio: {min: 1.0}}
  - {name: stream, kind: relative, workload: tcp_crr, metric: transactionsPerSecond,
     a: {mode: legacy, scenario: pod-pod-cross-node}, b: {mode: ebpf, scenario: pod-pod-cross-node},
     ratio: {min: 1.0}}
  - {name: rr2, kind: relative, workload: tcp_rr, metric: transactionsPerSecond,
     a: {mode: legacy, scenario: pod-pod-same-node}, b: {mode: ebpf, scenario: pod-pod-same-node},
     ratio: {min: 1.0}}
)",
                               "policy");
  ASSERT_EQ(p.checks.size(), 3u);
  auto kept = only_workloads(p, {"tcp_rr"});
  ASSERT_EQ(kept.checks.size(), 2u);
  EXPECT_EQ(kept.checks[0].name, "rr");
  EXPECT_EQ(kept.checks[1].name, "rr2");
  EXPECT_EQ(only_workloads(p, {"tcp_crr", "tcp_rr"}).checks.size(), 3u);
  EXPECT_TRUE(only_workloads(p, {"no-such-workload"}).checks.empty());
  EXPECT_EQ(kept.file, p.file);
}

// Every check states the resolution its run reached; an inconclusive one the pairs that would
// resolve its bound (the half-width shrinking as 1/sqrt(pairs)).
TEST(GateOutput, EachCheckStatesItsResolutionAndTheInconclusiveOneThePairsItNeeds) {
  auto r = fixture_result();
  size_t inconclusive = 0;
  for (const auto& c : r.checks) {
    SCOPED_TRACE(c.check.name);
    EXPECT_NEAR(c.resolution, (c.ci_high - c.ci_low) / 2 / c.ratio, 1e-12);
    EXPECT_GT(c.resolution, 0);
    EXPECT_NE(render_text(r).find("resolution — " + c.check.name + ": this run resolves ±"),
              std::string::npos);
    if (c.verdict != Verdict::kInconclusive) continue;
    ++inconclusive;
    const double half = (c.ci_high - c.ci_low) / 2, d = std::fabs(c.ratio - c.bound);
    EXPECT_EQ(c.pairs_to_resolve,
              static_cast<size_t>(std::ceil(c.pairs * (half / d) * (half / d))));
    EXPECT_GT(c.pairs_to_resolve, c.pairs) << "more pairs than it had";
    EXPECT_NE(c.resolution_text().find("pairs would resolve it"), std::string::npos);
  }
  EXPECT_EQ(inconclusive, 1u);
  EXPECT_NE(render_junit(r, "t").find("this run resolves ±"), std::string::npos);
}
