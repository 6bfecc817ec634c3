// `hrbench run` end to end: a quick matrix, its results file against the JSON Schema, the
// Google Benchmark export read by Google Benchmark's own compare.py, and Ctrl-C.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/pins.hpp"
#include "support/cluster_fixture.hpp"

using namespace hrb;
namespace fs = std::filesystem;

namespace {

TEST(Run, QuickMatrixWritesAValidCompleteResultsFile) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tr");
  // --max-steal none: the export leaves out invalid trials, and the rows checked below must be
  // there whatever the machine's CPU steal.
  auto r = test::hrbench({"run", "--quick", "--duration", "0.4", "--warmup", "0.1", "--output", out,
                          "--export", "gbench", "csv", "--max-steal", "none"},
                         prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("ebpf/legacy"), std::string::npos) << "the comparison table:\n" << r.out;
  auto v = test::validate_results(out);
  EXPECT_EQ(v.status, 0) << v.err;
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_TRUE(doc["complete"].get<bool>());
  std::set<std::string> cells;
  for (const auto& t : doc["trials"])
    cells.insert(t["mode"].get<std::string>() + "/" + t["scenario"].get<std::string>() + "/" +
                 t["workload"].get<std::string>() + "/" +
                 std::to_string(t["repetition"].get<int>()));
  // 2 modes x 4 pod scenarios x 4 workloads + node-node x 4 workloads, one repetition.
  EXPECT_EQ(cells.size(), 2u * 4 * 4 + 4);
  EXPECT_EQ(doc["trials"].size(), cells.size());
  for (const char* c : {"legacy/pod-pod-cross-node/tcp_rr/0", "ebpf/pod-external/udp_stream/0",
                        "none/node-node/tcp_stream/0"})
    EXPECT_TRUE(cells.count(c)) << c;
  for (const auto& t : doc["trials"])
    if (t["scenario"] == "pod-service") {  // every default workload through the service
      EXPECT_TRUE(t["valid"].get<bool>()) << t["mode"] << " " << t["workload"] << t["flags"];
    }
  for (const auto& t : doc["trials"])
    if (t["mode"] == "ebpf" && t["scenario"] != "pod-service") {
      // (pod-service: kube-proxy's rules DNAT it until ebpf mode load-balances services.)
      EXPECT_EQ(t["iptablesPackets"], 0) << "ebpf bypasses iptables";
    }
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  EXPECT_TRUE(fs::exists(dir + "/run.csv"));

  // Google Benchmark's compare.py reads the export (two runs' worth: the same file twice).
  auto cmp = run_cmd({"/usr/bin/python3", "/usr/share/benchmark/compare.py", "benchmarks",
                      dir + "/run.gbench.json", dir + "/run.gbench.json"},
                     {.check = false});
  EXPECT_EQ(cmp.status, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("ebpf/pod-pod-cross-node/tcp_rr/transactionsPerSecond"), std::string::npos)
      << cmp.out;
  fs::remove_all(dir);
}

TEST(Run, SigintLeavesAValidPartialFileAndACleanMachine) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("ts");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(HRBENCH_BIN, HRBENCH_BIN, "run", "--prefix", prefix.c_str(), "--repetitions", "3",
          "--duration", "0.5", "--warmup", "0.1", "--output", out.c_str(), nullptr);
    _exit(127);
  }
  // Wait until at least two trials are on disk (the file is replaced atomically per trial).
  for (;;) {
    int st;
    ASSERT_EQ(waitpid(pid, &st, WNOHANG), 0) << "run ended before it could be interrupted";
    std::ifstream f(out);
    if (f) {
      auto doc = nlohmann::json::parse(f, nullptr, false);
      if (!doc.is_discarded() && doc["trials"].size() >= 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGINT);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 130);
  auto v = test::validate_results(out);
  EXPECT_EQ(v.status, 0) << v.err;
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_FALSE(doc["complete"].get<bool>());
  EXPECT_TRUE(doc["interrupted"].get<bool>());
  EXPECT_GE(doc["trials"].size(), 2u);
  EXPECT_LT(doc["trials"].size(), 84u);
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty()) << "the cluster was not torn down";
  EXPECT_FALSE(fs::exists(pins::root(prefix)));
  fs::remove_all(dir);
}

TEST(Run, BadOptionsChangeNothing) {
  HRB_REQUIRE_ROOT();
  const std::string prefix = test::unique_prefix("tv");
  for (std::vector<std::string> args : {std::vector<std::string>{"run", "--modes", "legacy,turbo"},
                                        {"run", "--workloads", "tcp_maerts"},
                                        {"run", "--scenarios", "pod-moon"},
                                        {"run", "--scan", "services"},
                                        {"run", "--quick", "--thorough"},
                                        {"run", "--export", "xml"},
                                        {"run", "--pin-cpus", "0,4096"},
                                        {"run", "--pin-cpus", "0"},
                                        {"run", "--scenarios", "node-node", "--workloads", "pps"},
                                        {"run", "--max-steal", "ten"},
                                        {"run", "--max-steal", "150"},
                                        {"run", "--max-steal", "5%"}}) {
    auto r = test::hrbench(args, prefix);
    EXPECT_EQ(r.status, static_cast<int>(ExitCode::kUsage)) << args[1] << ": " << r.err;
    EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  }
  auto r = test::hrbench(
      {"run", "--masq-config", test::source_path("tests/fixtures/masq/bad-cidr.yaml")}, prefix);
  EXPECT_EQ(r.status, static_cast<int>(ExitCode::kBadInput)) << r.err;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
}

// pps (XDP live frames into the cross-node server pod) as a workload of `hrbench run`: measured
// in pod-pod-cross-node only, in every mode, and the file is valid against the schema. The steal
// limit is off (--max-steal 0): a trial is then invalid only when no packet arrived.
TEST(Run, PpsRunsInTheCrossNodeScenario) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tp");
  auto r = test::hrbench({"run", "--modes", "legacy,ebpf", "--scenarios",
                          "pod-pod-cross-node,node-node", "--workloads", "pps", "--repetitions",
                          "1", "--duration", "0.3", "--max-steal", "0", "--output", out},
                         prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  auto v = test::validate_results(out);
  EXPECT_EQ(v.status, 0) << v.err;
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_EQ(doc["config"]["maxStealFraction"], 1.0) << "--max-steal 0 is recorded as off";
  std::set<std::string> modes;
  for (const auto& t : doc["trials"]) {
    EXPECT_EQ(t["scenario"], "pod-pod-cross-node");
    EXPECT_TRUE(t["valid"].get<bool>()) << t["flags"];
    EXPECT_GT(t["metrics"]["packets"].get<uint64_t>(), 0u) << "no frame reached the pod";
    EXPECT_EQ(t["server"], "node2-pod1");
    modes.insert(t["mode"].get<std::string>());
  }
  EXPECT_EQ(modes, (std::set<std::string>{"legacy", "ebpf"}));
  EXPECT_NE(r.out.find("packetsPerSecond"), std::string::npos) << r.out;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}

// `gate --adaptive` measures more repetitions of an inconclusive check with the run's own
// settings (pinned CPUs, calibration delay, ...) — merging repetitions measured differently would
// be refused with exit 3 — and writes the merged run.
TEST(Run, GateAdaptiveAddsRepetitionsMeasuredLikeTheRun) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json",
                    merged = dir + "/merged.json";
  const std::string prefix = test::unique_prefix("tg");
  auto r = test::hrbench(
      {"run", "--modes", "ebpf,ebpf-delay", "--calibration-delay", "100", "--pin-cpus", "0,0",
       "--scenarios", "pod-pod-cross-node", "--workloads", "tcp_rr", "--repetitions", "1",
       "--duration", "0.3", "--warmup", "0.1", "--max-steal=none", "--output=" + out},
      prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  {
    std::ofstream p(dir + "/policy.yaml");
    p << "minPairs: 3\nchecks:\n  - name: delayed not below half\n    kind: relative\n"
         "    workload: tcp_rr\n    metric: transactionsPerSecond\n"
         "    a: {mode: ebpf, scenario: pod-pod-cross-node}\n"
         "    b: {mode: ebpf-delay, scenario: pod-pod-cross-node}\n    ratio: {min: 0.5}\n";
  }
  auto g = test::hrbench(
      {"gate", out, "--policy", dir + "/policy.yaml", "--adaptive", "2", "--output", merged},
      prefix);
  EXPECT_NE(g.status, static_cast<int>(ExitCode::kBadInput)) << g.err << g.out;
  ASSERT_TRUE(fs::exists(merged)) << g.err;
  auto doc = nlohmann::json::parse(std::ifstream(merged));
  EXPECT_EQ(doc["config"]["repetitions"], 3);
  EXPECT_EQ(doc["config"]["pinnedCpus"], nlohmann::json({0, 0}));
  EXPECT_EQ(doc["config"]["maxStealFraction"], 1.0) << "the steal limit stays off";
  std::multiset<std::string> modes;
  for (const auto& t : doc["trials"]) modes.insert(t["mode"].get<std::string>());
  EXPECT_EQ(modes.count("ebpf"), 3u);
  EXPECT_EQ(modes.count("ebpf-delay"), 3u);
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty()) << "the adaptive cluster was left behind";
  EXPECT_FALSE(fs::exists(pins::root(prefix)));
  fs::remove_all(dir);
}

TEST(Run, OutputDirectoryGetsTheRunIdFile) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run");
  const std::vector<std::string> tiny{"run",       "--modes",     "none",   "--scenarios",
                                      "node-node", "--workloads", "tcp_rr", "--repetitions",
                                      "1",         "--duration",  "0.1",    "--warmup",
                                      "0",         "--max-steal", "none"};
  auto with_output = [&](const std::string& o) {
    auto a = tiny;
    a.insert(a.end(), {"--output", o});
    return a;
  };
  const std::string prefix = test::unique_prefix("to");
  auto r = test::hrbench(with_output(dir), prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u) << "one results file, no temporary left";
  auto doc = nlohmann::json::parse(std::ifstream(files[0]));
  EXPECT_EQ(files[0].filename().string(), doc["runId"].get<std::string>() + ".json");

  // A results file in a directory that does not exist, or a directory that does not exist:
  // refused, naming the flag, before anything is built.
  for (const std::string& bad : {dir + "/no/such/run.json", dir + "/nodir/"}) {
    const std::string p2 = test::unique_prefix("to");
    auto b = test::hrbench(with_output(bad), p2);
    EXPECT_EQ(b.status, static_cast<int>(ExitCode::kUsage)) << b.err;
    EXPECT_NE(b.err.find("--output"), std::string::npos) << b.err;
    EXPECT_NE(b.err.find("does not exist"), std::string::npos) << b.err;
    EXPECT_TRUE(test::netns_with_prefix(p2).empty());
  }
  EXPECT_FALSE(fs::exists(dir + "/no"));
  EXPECT_FALSE(fs::exists(dir + "/nodir"));
  fs::remove_all(dir);
}

// A quick run of a service scenario (tcp_crr and udp_rr, 2 endpoints, services=0,50) into out;
// the results document, null (after a failed expectation) when the run or its schema failed.
nlohmann::json service_scan(const std::string& out, const std::string& prefix,
                            const std::string& scenario, const std::string& modes) {
  auto r = test::hrbench({"run",
                          "--quick",
                          "--scenarios",
                          scenario,
                          "--workloads",
                          "tcp_crr,udp_rr",
                          "--modes",
                          modes,
                          "--endpoints-per-service",
                          "2",
                          "--scan",
                          "services=0,50",
                          "--duration",
                          "0.4",
                          "--warmup",
                          "0.1",
                          "--max-steal",
                          "none",
                          "--max-retries",
                          "0",
                          "--output",
                          out},
                         prefix);
  EXPECT_EQ(r.status, 0) << r.err;
  if (r.status != 0) return nullptr;
  auto v = test::validate_results(out);
  EXPECT_EQ(v.status, 0) << v.err;
  if (v.status != 0) return nullptr;
  return nlohmann::json::parse(std::ifstream(out));
}

}  // namespace

// pod-service: node1's pod to a ClusterIP whose 2 backends are node2's pods, TCP and UDP, in
// legacy and ebpf mode, scanning the service count from 0 (the run installs the 2 services it
// needs, and records that count). Every trial completes transactions without an error, and in
// legacy mode kube-proxy's KUBE-SEP rules of that service translated the traffic.
TEST(Run, PodServiceReachesBackendsOnTheOtherNode) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("ts");
  auto doc = service_scan(out, prefix, "pod-service", "legacy,ebpf");
  ASSERT_FALSE(doc.is_null());
  const auto& ps = doc["config"]["podService"];
  EXPECT_EQ(ps["serviceIndex"], 1) << "svc-1's endpoints: pods 2 and 3 of 4, node2's";
  EXPECT_EQ(ps["backends"], 2);
  EXPECT_EQ(ps["servicesRequested"], 0);
  EXPECT_EQ(doc["config"]["modeOptions"]["services"], 2);
  EXPECT_EQ(doc["config"]["scan"]["values"], nlohmann::json({2, 50}));
  EXPECT_EQ(doc["config"]["scan"]["requestedValues"], nlohmann::json({0, 50}));
  ASSERT_EQ(doc["trials"].size(), 2u * 2 * 2);  // scan values x modes x workloads
  for (const auto& t : doc["trials"]) {
    const std::string what = t["mode"].get<std::string>() + " " + t["workload"].get<std::string>() +
                             " services=" + t["scan"]["value"].dump();
    EXPECT_EQ(t["scenario"], "pod-service");
    EXPECT_GT(t["metrics"]["transactions"].get<uint64_t>(), 0u) << what;
    EXPECT_EQ(t["result"]["errors"], 0) << what << ": " << t["flags"];
    EXPECT_NE(t["server"].get<std::string>().find("node2-pod1:8080, node2-pod2:8080"),
              std::string::npos)
        << t["server"];
    if (t["mode"] == "legacy") {
      EXPECT_GT(t["serviceRulePackets"].get<uint64_t>(), 0u) << what;
    }
  }
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}

// external-nodeport: the external host to node1's IP at the NodePort of the service pod-service
// measures (2 backends, node2's pods), TCP and UDP, in all three modes, scanning the service
// count from 0. Every trial completes transactions without an error; kube-proxy's KUBE-SEP rules
// of the service translated the traffic in legacy and bpf-lb mode (bpf-lb leaves NodePort to
// kube-proxy), and in ebpf mode no iptables rule counted a packet.
TEST(Run, ExternalNodePortReachesBackendsOnTheOtherNode) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("ts");
  auto doc = service_scan(out, prefix, "external-nodeport", "legacy,bpf-lb,ebpf");
  ASSERT_FALSE(doc.is_null());
  const auto& np = doc["config"]["externalNodePort"];
  EXPECT_EQ(np["serviceIndex"], 1);
  EXPECT_EQ(np["port"], 30001);
  EXPECT_EQ(np["backends"], 2);
  EXPECT_EQ(doc["config"]["scan"]["values"], nlohmann::json({2, 50}));
  EXPECT_EQ(doc["trials"].size(), 3u * 2u * 2u);
  for (const auto& t : doc["trials"]) {
    const std::string what = t["mode"].get<std::string>() + " " + t["workload"].get<std::string>() +
                             " services=" + t["scan"]["value"].dump();
    EXPECT_EQ(t["scenario"], "external-nodeport");
    EXPECT_EQ(t["client"], "ext1");
    EXPECT_GT(t["metrics"]["transactions"].get<uint64_t>(), 0u) << what;
    EXPECT_EQ(t["result"]["errors"], 0) << what << ": " << t["flags"];
    if (t["mode"] == "ebpf") {
      EXPECT_EQ(t["iptablesPackets"], 0) << what;
      EXPECT_NE(t["bpfCounters"].dump().find("nodeport_new"), std::string::npos) << what;
    } else {
      EXPECT_GT(t["serviceRulePackets"].get<uint64_t>(), 0u) << what;
    }
  }
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}

namespace {

// A short run of two modes, one scenario and one workload, with HRB_FAULT_INVALID=`fault`.
CmdResult faulty_run(const std::string& prefix, const std::string& out, const std::string& fault,
                     std::vector<std::string> more = {}) {
  std::vector<std::string> argv{"/usr/bin/env",
                                "HRB_FAULT_INVALID=" + fault,
                                HRBENCH_BIN,
                                "run",
                                "--prefix",
                                prefix,
                                "--quick",
                                "--repetitions",
                                "3",
                                "--duration",
                                "0.3",
                                "--warmup",
                                "0.1",
                                "--max-steal",
                                "none",
                                "--modes",
                                "legacy,ebpf",
                                "--scenarios",
                                "pod-pod-cross-node",
                                "--workloads",
                                "tcp_rr",
                                "--output",
                                out};
  argv.insert(argv.end(), more.begin(), more.end());
  return run_cmd(argv, {.check = false});
}

}  // namespace

TEST(Run, InvalidTrialsAreRequeuedUntilEveryCellHasItsRepetitions) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tq");
  auto r = faulty_run(prefix, out, "0.3,5");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::validate_results(out).status, 0);
  EXPECT_EQ(r.out.find("short of valid"), std::string::npos) << r.out;
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_TRUE(doc["complete"].get<bool>());
  EXPECT_GT(doc["config"]["budgetSeconds"].get<double>(), 0);
  std::map<std::string, std::set<int>> valid;
  int injected = 0;
  std::vector<std::string> modes;  // in run order
  for (const auto& t : doc["trials"]) {
    modes.push_back(t["mode"]);
    if (t["valid"].get<bool>()) {
      EXPECT_TRUE(valid[t["mode"].get<std::string>()].insert(t["repetition"].get<int>()).second)
          << "one valid trial per repetition";
    } else {
      EXPECT_EQ(t["flags"].back(), "fault injected");
      ++injected;
    }
  }
  EXPECT_GT(injected, 0) << "seed 5 marks some of the attempts";
  EXPECT_EQ(valid["legacy"], (std::set<int>{0, 1, 2}));
  EXPECT_EQ(valid["ebpf"], (std::set<int>{0, 1, 2}));
  EXPECT_EQ(doc["trials"].size(), 6u + injected);
  // The first pass keeps the plan's ABBA order.
  EXPECT_EQ(std::vector<std::string>(modes.begin(), modes.begin() + 2),
            (std::vector<std::string>{"legacy", "ebpf"}));
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}

TEST(Run, ATinyBudgetLeavesCellsShortAndNamesThem) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tb");
  // Attempts 1 and 2 (legacy and ebpf, repetition 0) are invalid, so completing takes 8
  // attempts of at least 0.4 s each; 2 s hold at most 5.
  auto r = faulty_run(prefix, out, "@1,2", {"--budget", "2s"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::validate_results(out).status, 0);
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_TRUE(doc["budgetExhausted"].get<bool>());
  EXPECT_FALSE(doc["complete"].get<bool>());
  EXPECT_EQ(doc["config"]["budgetSeconds"].get<double>(), 2);
  EXPECT_LT(doc["trials"].size(), 8u);
  EXPECT_NE(r.out.find("short of valid repetitions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("legacy pod-pod-cross-node tcp_rr: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fault injected"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("budget of 2 s ran out"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BUDGET RAN OUT"), std::string::npos) << r.out;
  auto md = test::hrbench({"report", out, "--format", "md", "-o", dir + "/report.md"}, "");
  ASSERT_EQ(md.status, 0) << md.err;
  std::ifstream f(dir + "/report.md");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("short of valid repetitions"), std::string::npos) << text;
  EXPECT_NE(text.find("ebpf pod-pod-cross-node tcp_rr: "), std::string::npos) << text;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}

// --families ipv4,ipv6 on the dual-stack topology: every cell over both families, each trial
// valid and carrying its family; compare and report select one family, ipv4 on ipv4-only files.
TEST(Run, FamiliesAreARunDimension) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tf");
  auto r = test::hrbench({"run",
                          "--topology",
                          test::source_path("topologies/dual-stack.yaml"),
                          "--modes",
                          "legacy",
                          "--scenarios",
                          "pod-pod-same-node,pod-pod-cross-node,pod-service,pod-external,node-node",
                          "--workloads",
                          "tcp_rr,udp_rr",
                          "--families",
                          "ipv4,ipv6",
                          "--repetitions",
                          "1",
                          "--duration",
                          "0.3",
                          "--warmup",
                          "0.1",
                          "--output",
                          out,
                          "--max-steal",
                          "none",
                          "--export",
                          "csv"},
                         prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("family ipv6:"), std::string::npos) << "a table per family:\n" << r.out;
  auto v = test::validate_results(out);
  EXPECT_EQ(v.status, 0) << v.err;
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_EQ(doc["config"]["families"], (nlohmann::json{"ipv4", "ipv6"}));
  std::map<std::string, int> per_family;
  for (const auto& t : doc["trials"]) {
    const std::string fam = t["family"].get<std::string>();
    ++per_family[fam];
    EXPECT_TRUE(t["valid"].get<bool>())
        << t["scenario"] << " " << t["workload"] << " " << fam << " " << t["flags"];
    // The generator reached the address of its family.
    const std::string server = t["server"].get<std::string>();
    if (t["scenario"] == "pod-service") {
      EXPECT_NE(server.find(fam == "ipv6" ? "[fd00:10:96::" : " 10.96.0."), std::string::npos)
          << server;
      EXPECT_GT(t["serviceRulePackets"].get<uint64_t>(), 0u)
          << fam << ": kube-proxy's DNAT rules of the service counted its connections";
    }
  }
  // 4 pod scenarios + node-node, 2 workloads, one repetition: 10 trials per family.
  EXPECT_EQ(per_family["ipv4"], 10);
  EXPECT_EQ(per_family["ipv6"], 10);
  std::ifstream csv(dir + "/run.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "run_id,mode,scenario,workload,repetition,valid,metric,unit,value,family");

  // compare and report select a family; a family the file does not have is an input error.
  auto cmp = test::hrbench({"compare", out, out, "--family", "ipv6"}, "");
  EXPECT_EQ(cmp.status, 0) << cmp.err;
  auto md = test::hrbench({"report", out, "--format", "md", "--family", "ipv6"}, "");
  EXPECT_EQ(md.status, 0) << md.err;
  auto both = test::hrbench({"report", out, "--format", "md"}, "");
  EXPECT_EQ(both.status, 0) << both.err;
  EXPECT_NE(both.out.find("(ipv6)"), std::string::npos) << "one run per family";
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}

// A single-stack IPv6 topology (topologies/ipv6.yaml): without --families the run measures
// ipv6, every scenario (NodePort included) in legacy and ebpf mode gives valid trials, and
// compare and gate judge the file's family without being told.
TEST(Run, ASingleStackIpv6TopologyIsMeasuredOverIpv6ByDefault) {
  HRB_REQUIRE_ROOT();
  const std::string dir = test::temp_dir("run"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("t6r");
  auto r = test::hrbench(
      {"run", "--topology", test::source_path("topologies/ipv6.yaml"), "--modes", "legacy,ebpf",
       "--scenarios", "pod-pod-cross-node,pod-service,pod-external,external-nodeport",
       "--workloads", "tcp_rr", "--repetitions", "1", "--duration", "0.3", "--warmup", "0.1",
       "--output", out, "--max-steal", "none"},
      prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_EQ(doc["config"]["families"], (nlohmann::json{"ipv6"}));
  ASSERT_EQ(doc["trials"].size(), 8u);
  for (const auto& t : doc["trials"]) {
    EXPECT_EQ(t["family"], "ipv6");
    EXPECT_TRUE(t["valid"].get<bool>()) << t["mode"] << " " << t["scenario"] << " " << t["flags"];
    if (t["scenario"] == "pod-service") {
      EXPECT_NE(t["server"].get<std::string>().find("[fd00:10:96::"), std::string::npos)
          << t["server"];
    }
  }
  auto cmp = test::hrbench({"compare", out, out}, "");
  EXPECT_EQ(cmp.status, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("pod-service"), std::string::npos) << cmp.out;
  auto v4 = test::hrbench({"compare", out, out, "--family", "ipv4"}, "");
  EXPECT_NE(v4.status, 0) << "the file has no ipv4 trials";
  auto bad = test::hrbench({"run", "--topology", test::source_path("topologies/ipv6.yaml"),
                            "--families", "ipv4", "--repetitions", "1"},
                           prefix);
  EXPECT_EQ(bad.status, 2) << bad.err;
  EXPECT_NE(bad.err.find("has no IPv4"), std::string::npos) << bad.err;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  fs::remove_all(dir);
}
