// The A/B of two builds (`hrbench run --modes ebpf,ebpf@NAME=DIR`, docs/gate.md) end to end, with
// identical objects: this build's own objects directory as "the other build". A very short run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/cluster_fixture.hpp"

using namespace hrb;
namespace fs = std::filesystem;

namespace {
std::string tmpdir() {
  char t[] = "/tmp/hrb-ab-XXXXXX";
  return mkdtemp(t);
}
}  // namespace

TEST(AbRun, TwoBuildsInterleavedWithIdenticalObjectsGiveValidTrialsAndAGateVerdict) {
  HRB_REQUIRE_ROOT();
  const std::string dir = tmpdir(), out = dir + "/ab.json";
  const std::string prefix = test::unique_prefix("tab");
  const std::string objects = fs::path(HRB_BINARY_DIR "/bpf").lexically_normal().string();
  auto r = test::hrbench(
      {"run", "--modes", "ebpf,ebpf@base=" HRB_BINARY_DIR, "--scenarios", "pod-pod-cross-node",
       "--workloads", "tcp_rr", "--repetitions", "3", "--duration", "0.3", "--warmup", "0.1",
       "--max-steal", "none", "--output", out},
      prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("applying ebpf with the objects of " + objects), std::string::npos) << r.err;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());

  auto v =
      run_cmd({"/usr/bin/python3", "-c",
               "import json,sys,jsonschema\n"
               "jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))\n",
               test::source_path("results/schema.json"), out},
              {.check = false});
  EXPECT_EQ(v.status, 0) << v.err;

  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_EQ(doc["config"]["modes"], nlohmann::json({"ebpf", "ebpf@base"}));
  EXPECT_EQ(doc["config"]["modeOptions"]["objectAliases"]["base"], objects);
  std::map<std::string, int> valid;
  std::vector<std::string> order;
  for (const auto& t : doc["trials"]) {
    const std::string m = t["mode"];
    order.push_back(m);
    if (!t["valid"].get<bool>()) continue;
    ++valid[m];
    EXPECT_GT(t["metrics"]["transactionsPerSecond"].get<double>(), 0) << m;
    EXPECT_FALSE(t["bpfCounters"].empty()) << m << ": the BPF datapath counted nothing";
  }
  EXPECT_EQ(valid["ebpf"], 3);
  EXPECT_EQ(valid["ebpf@base"], 3);
  // Interleaved like any two modes: ABBA.
  EXPECT_EQ(order, (std::vector<std::string>{"ebpf", "ebpf@base", "ebpf@base", "ebpf", "ebpf",
                                             "ebpf@base"}));

  // A relative policy names the second build by its stable name (A/A: a lax bound).
  const std::string policy = dir + "/ab.yaml";
  std::ofstream(policy) << "minPairs: 3\n"
                           "checks:\n"
                           "  - name: head tcp_rr at least half of base\n"
                           "    kind: relative\n"
                           "    workload: tcp_rr\n"
                           "    metric: transactionsPerSecond\n"
                           "    a: {mode: ebpf@base, scenario: pod-pod-cross-node}\n"
                           "    b: {mode: ebpf, scenario: pod-pod-cross-node}\n"
                           "    ratio: {min: 0.5}\n";
  auto g = test::hrbench({"gate", out, "--policy", policy, "--junit", dir + "/ab.xml"}, "");
  // Judged (pass, fail or inconclusive: a 0.3 s A/A on a shared machine is noisy), never exit 3
  // (a cell without data): both modes are found by the names the policy uses, 3 pairs each.
  EXPECT_GE(g.status, 0) << g.err;
  EXPECT_LE(g.status, 2) << g.out << g.err;
  EXPECT_NE(g.out.find("head tcp_rr at least half of base"), std::string::npos) << g.out;
  std::ifstream xml(dir + "/ab.xml");
  const std::string junit{std::istreambuf_iterator<char>(xml), {}};
  EXPECT_NE(junit.find("ebpf/pod-pod-cross-node / ebpf@base/pod-pod-cross-node"), std::string::npos)
      << junit;
  EXPECT_NE(junit.find(", 3 pairs,"), std::string::npos) << junit;
  fs::remove_all(dir);
}
