// The A/B of two builds (`hrbench run --modes ebpf,ebpf@NAME=DIR`, docs/gate.md) end to end, with
// identical objects: this build's own objects directory as "the other build". A very short run.
// And the alternated A/B (`--alternate`): the variants measured in the same seconds.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "support/cluster_fixture.hpp"

using namespace hrb;
namespace fs = std::filesystem;

namespace {}  // namespace

TEST(AbRun, TwoBuildsInterleavedWithIdenticalObjectsGiveValidTrialsAndAGateVerdict) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("ab"), out = dir + "/ab.json";
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

  auto v = test::validate_results(out);
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

// --alternate: ebpf and ebpf-delay (a heavy calibration delay) measured in the same seconds
// through the dispatcher. Each trial's share must be its own variant's: the delayed variant's
// counters show its busy loop and the plain one's do not, both variants forwarded packets, and
// the delayed one completed fewer transactions in the same seconds.
TEST(AbRun, AlternatedVariantsAreMeasuredInTheSameSecondsAndCountedApart) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("ab"), out = dir + "/alt.json";
  const std::string prefix = test::unique_prefix("tal");
  auto r = test::hrbench({"run",
                          "--modes",
                          "ebpf,ebpf-delay",
                          "--calibration-delay",
                          "20000",
                          "--alternate",
                          "0.05",
                          "--scenarios",
                          "pod-pod-cross-node",
                          "--workloads",
                          "tcp_rr,tcp_stream",
                          "--repetitions",
                          "2",
                          "--duration",
                          "0.4",
                          "--warmup",
                          "0.1",
                          "--max-steal",
                          "none",
                          "--output",
                          out},
                         prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("1 alternated variant(s)"), std::string::npos) << r.err;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  auto v = test::validate_results(out);
  EXPECT_EQ(v.status, 0) << v.err;

  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_EQ(doc["config"]["alternateSeconds"], 0.05);
  ASSERT_EQ(doc["trials"].size(), 8u);  // 2 repetitions x 2 workloads x 2 modes, all valid
  std::map<std::pair<int, std::string>, std::map<std::string, nlohmann::json>> pairs;
  for (const auto& t : doc["trials"]) {
    const std::string m = t["mode"], w = t["workload"];
    EXPECT_TRUE(t["valid"].get<bool>()) << m << " " << w << ": " << t["flags"];
    ASSERT_TRUE(t.contains("alternation")) << t;
    EXPECT_EQ(t["alternation"]["modes"].size(), 2u);
    EXPECT_GE(t["alternation"]["segments"].get<int>(), 4) << m << " " << w;
    // Its own variant's counters: redirects by both programs, and the busy loop only in one.
    const auto& c = t["bpfCounters"];
    for (const char* node : {"node1", "node2"})
      EXPECT_GT(c[node]["from_uplink"].value("redirect_peer", 0), 0)
          << m << " " << w << " " << node << ": " << c;
    EXPECT_EQ(c["node1"]["from_pod"].contains("delay_loops"), m == "ebpf-delay") << m << ": " << c;
    pairs[{t["repetition"].get<int>(), w}][m] = t;
  }
  ASSERT_EQ(pairs.size(), 4u);
  for (const auto& [key, p] : pairs) {
    ASSERT_EQ(p.size(), 2u);
    const auto& plain = p.at("ebpf");
    const auto& delayed = p.at("ebpf-delay");
    EXPECT_EQ(plain["startedAt"], delayed["startedAt"]);  // one workload, the same seconds
    // 20,000 iterations per program run cost several times the plain transaction's work.
    const char* metric = key.second == "tcp_rr" ? "transactionsPerSecond" : "gbitPerSecond";
    EXPECT_LT(delayed["metrics"][metric].get<double>(), plain["metrics"][metric].get<double>())
        << key.second << " rep " << key.first;
  }
  fs::remove_all(dir);
}

// Modes that are not variants of one BPF mode cannot be alternated: a usage error (exit 2)
// before a cluster is built.
TEST(AbRun, AlternationRefusesModesThatAreNotVariantsOfOneBpfMode) {
  for (const auto& [modes, scenarios, workloads, says] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"legacy,ebpf", "pod-pod-cross-node", "tcp_rr", "legacy is not a BPF mode"},
           {"ebpf,bpf-lb", "pod-pod-cross-node", "tcp_rr", "are different modes"},
           {"ebpf", "pod-pod-cross-node", "tcp_rr", "two or more --modes"},
           {"ebpf,ebpf-delay", "node-node,pod-pod-cross-node", "tcp_rr", "node-node"},
           {"ebpf,ebpf-delay", "pod-pod-cross-node", "udp_stream", "udp_stream"}}) {
    auto r = test::hrbench({"run", "--modes", modes, "--scenarios", scenarios, "--workloads",
                            workloads, "--alternate", "0.05"},
                           test::unique_prefix("tan"));
    EXPECT_EQ(r.status, 2) << modes << ": " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << modes << ": " << r.err;
  }
  auto r = test::hrbench({"run", "--modes", "ebpf,ebpf-delay", "--alternate", "5", "--scenarios",
                          "pod-pod-cross-node", "--duration", "1"},
                         test::unique_prefix("tan"));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--alternate 5"), std::string::npos) << r.err;
}
