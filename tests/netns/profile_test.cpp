// `hrbench run --profile` on the default two-node cluster (issue #18's done-means): a short run
// of tcp_crr pod-pod-cross-node in legacy and ebpf mode, its stored profiles read back: legacy
// shows netfilter and conntrack time, ebpf BPF program time and none in the iptables rule walk.
// And perf is never left running: Ctrl-C while perf samples leaves no perf and no scratch
// directory behind.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/file.hpp"
#include "metrics/profile.hpp"
#include "results/profiles.hpp"
#include "results/results.hpp"
#include "support/cluster_fixture.hpp"

using namespace hrb;
namespace fs = std::filesystem;

namespace {

#define HRB_REQUIRE_PERF()                                                                     \
  do {                                                                                         \
    if (find_program("perf").empty())                                                          \
      GTEST_SKIP() << "perf is not installed (package linux-perf; scripts/setup installs it)"; \
  } while (0)

// Samples per bucket of the stacks of one task (the stack's first frame): "hrbench" are the
// generators' threads and the kernel work done in their context, which no other program on the
// machine can contribute to.
std::map<std::string, uint64_t> buckets_of_task(const results::Profile& p,
                                                const std::string& task) {
  metrics::FoldedStacks f;
  for (const auto& [stack, n] : p.stacks)
    if (stack.rfind(task + ";", 0) == 0) {
      f.stacks[stack] = n;
      f.samples += n;
    }
  return metrics::bucket_samples(f);
}

// Processes whose command line mentions `needle` (perf's scratch directory).
std::vector<int> processes_with(const std::string& needle) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmd = try_read_text_file(e.path().string() + "/cmdline");
    if (cmd && cmd->find(needle) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

// The scratch directory of perf process `pid`: where its -o file is.
std::string scratch_of(int pid) {
  auto cmd = try_read_text_file("/proc/" + std::to_string(pid) + "/cmdline").value_or("");
  std::vector<std::string> args;
  for (size_t at = 0; at < cmd.size();) {
    const size_t end = cmd.find('\0', at);
    args.push_back(cmd.substr(at, end - at));
    at = end == std::string::npos ? cmd.size() : end + 1;
  }
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "-o") return fs::path(args[i + 1]).parent_path().string();
  return "";
}

}  // namespace

TEST(Profile, LegacyShowsNetfilterAndConntrackEbpfShowsBpfAndNoRuleWalk) {
  HRB_REQUIRE_ROOT();
  HRB_REQUIRE_PERF();
  const std::string dir = test::temp_dir("profile-test"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tp");
  auto r = test::hrbench({"run", "--modes", "legacy,ebpf", "--scenarios", "pod-pod-cross-node",
                          "--workloads", "tcp_crr", "--repetitions", "1", "--duration", "0.6",
                          "--warmup", "0.1", "--max-steal", "none", "--profile", "--output", out},
                         prefix);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty()) << "the cluster was not torn down";
  EXPECT_NE(r.out.find("where the CPU went"), std::string::npos) << r.out;

  const auto doc = results::read_results(out);
  ASSERT_TRUE(doc.profiles);
  EXPECT_EQ(doc.profiles->file, "run.profiles.json");
  EXPECT_EQ(doc.profiles->cells, 2);
  EXPECT_EQ(doc.trials.size(), 2u) << "the profiled repetitions are not trials";
  auto v = test::validate_json_schema(test::source_path("results/schema.json"), out);
  EXPECT_EQ(v.status, 0) << v.err;
  v = test::validate_json_schema(test::source_path("results/profiles.schema.json"),
                                 dir + "/run.profiles.json");
  EXPECT_EQ(v.status, 0) << v.err;

  const auto profiles = results::profiles_of(out, doc);
  ASSERT_TRUE(profiles);
  EXPECT_EQ(profiles->frequency_hz, 999);
  ASSERT_EQ(profiles->profiles.size(), 2u);
  std::map<std::string, const results::Profile*> by_mode;
  for (const auto& p : profiles->profiles) {
    EXPECT_EQ(p.scenario, "pod-pod-cross-node");
    EXPECT_EQ(p.workload, "tcp_crr");
    EXPECT_GT(p.samples, 100u) << p.mode;
    by_mode[p.mode] = &p;
  }
  ASSERT_TRUE(by_mode.count("legacy") && by_mode.count("ebpf"));

  const auto legacy = buckets_of_task(*by_mode["legacy"], "hrbench");
  EXPECT_GT(legacy.at("netfilter"), 0u) << "legacy: the rule walk (nft_do_chain, nf_hook_slow)";
  EXPECT_GT(legacy.at("conntrack"), 0u) << "legacy: netfilter's conntrack";
  // No BPF program on legacy's path. Cgroup programs are not on it: tests running beside this
  // one attach them to the root cgroup (the iptables blocker's cgroup/setsockopt), and this
  // process's own setsockopt calls run them (1.6 % of legacy's samples once).
  uint64_t path_bpf = 0;
  for (const auto& [stack, n] : by_mode["legacy"]->stacks)
    if (stack.rfind("hrbench;", 0) == 0 && metrics::stack_bucket(stack) == "bpf" &&
        stack.find("__cgroup_bpf_run") == std::string::npos)
      path_bpf += n;
  EXPECT_EQ(path_bpf, 0u) << "legacy runs no BPF program on the path";

  const auto ebpf = buckets_of_task(*by_mode["ebpf"], "hrbench");
  EXPECT_GT(ebpf.at("bpf"), 0u) << "ebpf: from_pod / from_uplink";
  EXPECT_EQ(ebpf.at("netfilter"), 0u) << "ebpf bypasses the iptables rule walk";
  // Every kept sample: the kernel's shared tasks (ksoftirqd) may also carry another program's
  // packets on a busy machine, so there a trace is tolerated, not a share.
  const auto all = metrics::bucket_samples(results::folded(*by_mode["ebpf"]));
  EXPECT_LT(static_cast<double>(all.at("netfilter")), 0.01 * by_mode["ebpf"]->samples);
  fs::remove_all(dir);
}

TEST(Profile, CtrlCWhilePerfSamplesLeavesNoPerfBehind) {
  HRB_REQUIRE_ROOT();
  HRB_REQUIRE_PERF();
  const std::string dir = test::temp_dir("profile-test"), out = dir + "/run.json";
  const std::string prefix = test::unique_prefix("tq");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    // hrbench stops itself once perf samples during the profiled repetition.
    setenv("HRBENCH_FAULT_STOP_AT", "profile:sampling", 1);
    execl(HRBENCH_BIN, HRBENCH_BIN, "run", "--prefix", prefix.c_str(), "--modes", "legacy",
          "--scenarios", "pod-pod-cross-node", "--workloads", "tcp_rr", "--repetitions", "1",
          "--duration", "0.3", "--warmup", "0.1", "--max-steal", "none", "--profile", "--output",
          out.c_str(), nullptr);
    _exit(127);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(st)) << "hrbench ended before perf sampled";
  // perf is running now, a child of the stopped hrbench.
  std::vector<int> perf;
  for (int p : processes_with("hrb-perf-"))
    if (auto stat = try_read_text_file("/proc/" + std::to_string(p) + "/stat");
        stat && stat->find(") ") != std::string::npos) {
      std::istringstream rest(stat->substr(stat->rfind(')') + 2));
      char state;
      int ppid = 0;
      rest >> state >> ppid;
      if (ppid == pid) perf.push_back(p);
    }
  ASSERT_EQ(perf.size(), 1u) << "perf record samples, started by hrbench";
  const std::string scratch = scratch_of(perf[0]);
  ASSERT_NE(scratch.find("/tmp/hrb-perf-"), std::string::npos) << scratch;
  EXPECT_TRUE(fs::exists(scratch));
  kill(pid, SIGINT);
  kill(pid, SIGCONT);
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 130);
  for (int p : perf) EXPECT_TRUE(wait_process_exit(p, 5000)) << "perf " << p << " was left running";
  EXPECT_FALSE(fs::exists(scratch)) << "the scratch directory was left behind";
  auto doc = nlohmann::json::parse(std::ifstream(out));
  EXPECT_TRUE(doc["interrupted"].get<bool>());
  EXPECT_EQ(doc["trials"].size(), 1u) << "the measured trial is kept";
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty()) << "the cluster was not torn down";
  fs::remove_all(dir);
}
