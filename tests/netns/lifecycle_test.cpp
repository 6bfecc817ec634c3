// Crash safety, refusal of concurrent use, bad input that changes nothing, and exec.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "core/netns.hpp"
#include "support/cluster_fixture.hpp"
#include "topology/state.hpp"

using namespace hrb;

namespace {

// Starts `hrbench up` with HRBENCH_FAULT_STOP_AT=stage, waits until it stops itself there
// (SIGSTOP, seen through waitpid WUNTRACED: no sleeps), then SIGKILLs it.
void kill_up_at(const std::string& stage, const std::string& prefix, const std::string& topo) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("HRBENCH_FAULT_STOP_AT", stage.c_str(), 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl(HRBENCH_BIN, HRBENCH_BIN, "up", "--topology", topo.c_str(), "--prefix", prefix.c_str(),
          nullptr);
    _exit(127);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(st)) << "hrbench up did not reach stage " << stage << " (exit status "
                              << st << ")";
  kill(pid, SIGKILL);
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(st));
}

class KilledUp : public ::testing::TestWithParam<const char*> {};

TEST_P(KilledUp, CleanRemovesEverything) {
  HRB_REQUIRE_ROOT();
  auto before = test::root_veths();
  std::string prefix = test::unique_prefix("tk");
  kill_up_at(GetParam(), prefix, test::source_path("topologies/scale-8x16.yaml"));
  topology::StateDir st(prefix);
  EXPECT_TRUE(st.exists());
  EXPECT_FALSE(st.complete());
  if (std::string(GetParam()) != "journal") {
    EXPECT_EQ(test::netns_with_prefix(prefix).size(), 1u + 8 + 128 + 1) << "nothing was made?";
  }
  // A second `up` refuses, pointing at clean.
  auto again =
      test::hrbench({"up", "--topology", test::source_path("topologies/two-node.yaml")}, prefix);
  EXPECT_EQ(again.status, static_cast<int>(ExitCode::kBusy));
  EXPECT_NE(again.err.find("hrbench clean"), std::string::npos) << again.err;

  auto r = test::hrbench({"clean"}, prefix);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  EXPECT_FALSE(std::filesystem::exists(st.path()));
  EXPECT_EQ(test::root_veths(), before);
}

INSTANTIATE_TEST_SUITE_P(Stages, KilledUp,
                         ::testing::Values("journal", "netns", "sysctls", "links"));

TEST(Lifecycle, ConcurrentUpOnSamePrefixIsRefused) {
  HRB_REQUIRE_ROOT();
  std::string prefix = test::unique_prefix("tl");
  topology::StateDir st(prefix);
  {
    Fd held = st.lock();  // another hrbench "is working"
    auto r = test::hrbench({"up"}, prefix);
    EXPECT_EQ(r.status, static_cast<int>(ExitCode::kBusy));
    EXPECT_NE(r.err.find("another hrbench"), std::string::npos) << r.err;
    EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  }
  std::filesystem::remove_all(st.path());
}

TEST(Lifecycle, UpOnAnExistingClusterIsRefused) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/single-node.yaml", "tu");
  auto r = test::hrbench({"up", "--topology", test::source_path("topologies/two-node.yaml")},
                         c.prefix());
  EXPECT_EQ(r.status, static_cast<int>(ExitCode::kBusy));
  EXPECT_NE(r.err.find("already up"), std::string::npos) << r.err;
  EXPECT_EQ(test::netns_with_prefix(c.prefix()).size(), 1u + 1 + 4 + 1);
}

TEST(Lifecycle, InvalidTopologyCreatesNothing) {
  HRB_REQUIRE_ROOT();
  const auto dir = test::source_path("tests/fixtures/topologies");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string prefix = test::unique_prefix("ti");
    auto r = test::hrbench({"up", "--topology", e.path().string()}, prefix);
    EXPECT_EQ(r.status, static_cast<int>(ExitCode::kBadInput)) << e.path() << "\n" << r.err;
    EXPECT_NE(r.err.find(e.path().string() + ":"), std::string::npos) << r.err;
    EXPECT_TRUE(test::netns_with_prefix(prefix).empty()) << e.path();
    EXPECT_FALSE(topology::StateDir(prefix).exists());
    std::filesystem::remove_all(topology::StateDir(prefix).path());
    auto v = test::hrbench({"topo", "validate", e.path().string()}, "");
    EXPECT_EQ(v.status, static_cast<int>(ExitCode::kBadInput)) << e.path();
  }
}

TEST(Lifecycle, ExecRunsInTheNetnsAndKeepsTheMountNamespace) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/single-node.yaml", "te");
  auto r = test::hrbench(
      {"exec", "node1-pod3", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0"}, c.prefix());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("10.244.0.4/32"), std::string::npos) << r.out;
  auto mnt = test::hrbench({"exec", "node1", "--", "readlink", "/proc/self/ns/mnt"}, c.prefix());
  EXPECT_EQ(mnt.out, std::filesystem::read_symlink("/proc/self/ns/mnt").string() + "\n");
  auto bad = test::hrbench({"exec", "node9", "--", "true"}, c.prefix());
  EXPECT_EQ(bad.status, static_cast<int>(ExitCode::kNotFound));
  EXPECT_NE(bad.err.find("node1-pod1"), std::string::npos) << "lists the known names";
  auto rc = test::hrbench({"exec", "node1", "--", "sh", "-c", "exit 7"}, c.prefix());
  EXPECT_EQ(rc.status, 7) << "exec passes the command's exit code through";
}

TEST(Lifecycle, DownKillsProcessesLeftInsideTheCluster) {
  HRB_REQUIRE_ROOT();
  std::string prefix;
  pid_t child;
  {
    test::ClusterGuard c("topologies/single-node.yaml", "tp");
    prefix = c.prefix();
    child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      execl(HRBENCH_BIN, HRBENCH_BIN, "exec", "node1-pod1", "--prefix", prefix.c_str(), "--",
            "sleep", "300", nullptr);
      _exit(127);
    }
    // Wait until the child is inside the pod's netns (polling the kernel's own answer).
    struct stat want {};
    ASSERT_EQ(stat(netns_path(c.layout().pods()[0]->netns).c_str(), &want), 0);
    for (;;) {
      struct stat have {};
      if (stat(("/proc/" + std::to_string(child) + "/ns/net").c_str(), &have) == 0 &&
          have.st_ino == want.st_ino)
        break;
      int st;
      ASSERT_EQ(waitpid(child, &st, WNOHANG), 0) << "child exited early";
      sched_yield();
    }
  }  // down
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFSIGNALED(st)) << "the process inside the pod was killed by down";
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
}

}  // namespace
