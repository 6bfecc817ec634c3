// One run spread over runners (`hrbench run --shard I/N`, `hrbench merge`, docs/gate.md) end to
// end: two real, very short shards, each on its own cluster, merged; the merged file covers the
// unsharded plan exactly, and gate and report read it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "run/run.hpp"
#include "support/cluster_fixture.hpp"
#include "topology/spec.hpp"

using namespace hrb;
namespace fs = std::filesystem;

namespace {

// Removes the test's directory and whatever a failed run left of its clusters.
struct Leftovers {
  std::string dir;
  std::vector<std::string> prefixes;
  ~Leftovers() {
    for (const auto& p : prefixes)
      if (!test::netns_with_prefix(p).empty()) test::hrbench({"clean"}, p);
    fs::remove_all(dir);
  }
};

}  // namespace

TEST(ShardRun, TwoShardsMergedCoverThePlanAndGateAndReportReadTheMergedFile) {
  HRB_REQUIRE_ROOT();
  Leftovers left{test::temp_dir("shard"), {test::unique_prefix("tsa"), test::unique_prefix("tsb")}};
  const std::string& dir = left.dir;
  // 3 rounds (repetitions) of the ceiling, legacy and ebpf: shard 1/2 measures rounds 0 and 2,
  // shard 2/2 round 1. 9 trials of 0.3 s in all.
  const std::vector<std::string> run{
      "run",         "--modes",  "legacy,ebpf",   "--scenarios", "pod-pod-cross-node,node-node",
      "--workloads", "tcp_rr",   "--repetitions", "3",           "--duration",
      "0.2",         "--warmup", "0.1",           "--max-steal", "none"};
  std::vector<std::string> files;
  for (int i = 1; i <= 2; ++i) {
    auto args = run;
    files.push_back(dir + "/shard" + std::to_string(i) + ".json");
    args.insert(args.end(), {"--shard", std::to_string(i) + "/2", "--output", files.back()});
    auto r = test::hrbench(args, left.prefixes[i - 1]);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(test::netns_with_prefix(left.prefixes[i - 1]).empty());
    auto v = test::validate_results(files.back());
    EXPECT_EQ(v.status, 0) << v.err;
    auto doc = nlohmann::json::parse(std::ifstream(files.back()));
    EXPECT_EQ(doc["config"]["shard"], (nlohmann::json{{"index", i}, {"count", 2}}));
    EXPECT_EQ(doc["trials"].size(), i == 1 ? 6u : 3u);
  }

  const std::string merged = dir + "/merged.json";
  auto m = test::hrbench({"merge", files[0], files[1], "-o", merged}, "");
  ASSERT_EQ(m.status, 0) << m.err;
  auto v = test::validate_results(merged);
  EXPECT_EQ(v.status, 0) << v.err;
  auto doc = nlohmann::json::parse(std::ifstream(merged));
  EXPECT_FALSE(doc["config"].contains("shard"));
  ASSERT_EQ(doc["shards"].size(), 2u);
  EXPECT_TRUE(doc["complete"].get<bool>());

  // Exactly the unsharded plan's cells and repetitions, each once.
  run::RunConfig c;
  c.modes = {"legacy", "ebpf"};
  c.scenarios = {"pod-pod-cross-node", "node-node"};
  c.workloads = {"tcp_rr"};
  c.repetitions = 3;
  const auto plan = run::plan_matrix(
      c, topology::plan(topology::parse_spec_file(test::source_path("topologies/two-node.yaml")),
                        "shardplan"));
  using Key = std::tuple<std::string, std::string, std::string, int>;
  std::multiset<Key> want, got;
  for (const auto& t : plan.trials) want.insert({t.mode, t.scenario, t.workload, t.repetition});
  for (const auto& t : doc["trials"]) {
    ASSERT_TRUE(t["valid"].get<bool>()) << t.dump();
    const int rep = t["repetition"];
    got.insert({t["mode"], t["scenario"], t["workload"], rep});
    EXPECT_EQ(t["shard"], rep % 2 + 1) << "round r is measured by shard r mod 2 + 1";
  }
  EXPECT_EQ(got, want);
  ASSERT_EQ(want.size(), 9u);

  // gate: a relative legacy/ebpf check and the ceiling, three pairs each (lax bounds: judged,
  // here passing, on any machine).
  const std::string policy = dir + "/policy.yaml";
  std::ofstream(policy) << "minPairs: 3\n"
                           "checks:\n"
                           "  - name: ebpf tcp_rr is measured against legacy\n"
                           "    kind: relative\n"
                           "    workload: tcp_rr\n"
                           "    metric: transactionsPerSecond\n"
                           "    a: {mode: legacy, scenario: pod-pod-cross-node}\n"
                           "    b: {mode: ebpf, scenario: pod-pod-cross-node}\n"
                           "    ratio: {min: 0.01, max: 100}\n"
                           "  - name: ebpf tcp_rr against the ceiling\n"
                           "    kind: relative\n"
                           "    workload: tcp_rr\n"
                           "    metric: transactionsPerSecond\n"
                           "    a: {mode: none, scenario: node-node}\n"
                           "    b: {mode: ebpf, scenario: pod-pod-cross-node}\n"
                           "    ratio: {min: 0.01}\n";
  auto g = test::hrbench({"gate", merged, "--policy", policy}, "");
  EXPECT_EQ(g.status, 0) << g.out << g.err;
  EXPECT_NE(g.out.find("ebpf tcp_rr is measured against legacy"), std::string::npos) << g.out;
  const std::string html = dir + "/report.html";
  auto rep = test::hrbench({"report", merged, "-o", html}, "");
  EXPECT_EQ(rep.status, 0) << rep.err;
  std::ifstream f(html);
  const std::string page{std::istreambuf_iterator<char>(f), {}};
  EXPECT_NE(page.find("shard 2 of 2"), std::string::npos) << "the report names each shard's run";
  EXPECT_NE(page.find("<svg"), std::string::npos);

  // The merged file is no shard: merging it again is refused, naming it, and writes nothing.
  auto again = test::hrbench({"merge", merged, files[1], "-o", dir + "/again.json"}, "");
  EXPECT_EQ(again.status, 3) << again.err;
  EXPECT_NE(again.err.find(merged + ": a merged file"), std::string::npos) << again.err;
  EXPECT_FALSE(fs::exists(dir + "/again.json"));
}
