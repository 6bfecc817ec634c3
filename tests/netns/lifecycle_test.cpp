// Crash safety, refusal of concurrent use, bad input that changes nothing, and exec.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/netns.hpp"
#include "core/pins.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/mode.hpp"
#include "support/cluster_fixture.hpp"
#include "support/fault.hpp"
#include "topology/cluster.hpp"
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

// --- journal replay: what only the journal (or a sweep outside the netns) can remove ---

// start_stopped, kill_stopped: support/fault.hpp.
using test::kill_stopped;
using test::start_stopped;

// Ids of the BPF links pinned (link_*) under the prefix's pin directory.
std::vector<uint32_t> pinned_link_ids(const std::string& prefix) {
  std::vector<uint32_t> ids;
  for (const auto& [pin, link] : test::pinned_links(prefix)) ids.push_back(link.id);
  return ids;
}

// The links among `ids` that still exist. The kernel releases an unpinned link from a work item,
// so this waits for that event (bounded; the bound is a failure, not a measurement).
std::vector<uint32_t> links_not_released(const std::vector<uint32_t>& ids) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::vector<uint32_t> left;
    for (uint32_t id : ids) {
      int fd = bpf_link_get_fd_by_id(id);
      if (fd >= 0) close(fd);
      if (fd >= 0 || errno != ENOENT) left.push_back(id);
    }
    if (left.empty() || std::chrono::steady_clock::now() > deadline) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int pidfd_of(int pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
bool exited(int pidfd) {
  pollfd pf{pidfd, POLLIN, 0};
  return poll(&pf, 1, 0) == 1;
}

// SIGKILL in the middle of `mode ebpf` (every node's programs attached and pinned, conntrack not
// flushed yet): the tcx links and maps are pinned in bpffs, outside every netns, so deleting the
// namespaces does not release them — clean must remove the pins.
TEST(JournalReplay, KilledModeEbpfLeavesNoPinOrLink) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/two-node.yaml", "tj");
  pid_t pid = start_stopped({"mode", "ebpf", "--prefix", c.prefix()},
                            {{"HRBENCH_FAULT_STOP_AT", "exec:conntrack"}});
  ASSERT_GT(pid, 0);
  auto links = pinned_link_ids(c.prefix());
  kill_stopped(pid);
  // Two nodes: eth0 and one lxc per pod (two each).
  ASSERT_EQ(links.size(), 2u * 3) << "the kill point is after every node's attach";
  topology::StateDir st(c.prefix());
  bool journalled = false;
  for (const auto& e : st.journal())
    journalled |= e.kind == "bpffs" && e.name == pins::root(c.prefix());
  EXPECT_TRUE(journalled) << "the pin directory is journalled before it is created";

  auto r = test::hrbench({"clean"}, c.prefix());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(pins::root(c.prefix())));
  EXPECT_EQ(links_not_released(links), std::vector<uint32_t>{}) << "links that outlived clean";
  EXPECT_TRUE(test::netns_with_prefix(c.prefix()).empty());
  EXPECT_FALSE(std::filesystem::exists(st.path()));
}

// SIGKILL in the middle of `down` of an ebpf cluster, after its namespaces are gone: the state
// directory, the pins (the guard's setsockopt link on the root cgroup among them) and the owner
// cgroup are left, and only the journal still says what the cluster was. clean finishes it.
TEST(JournalReplay, KilledDownIsFinishedByClean) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/two-node.yaml", "tj");
  auto m = test::hrbench({"mode", "ebpf"}, c.prefix());
  ASSERT_EQ(m.status, 0) << m.err;
  topology::StateDir st(c.prefix());
  auto links = pinned_link_ids(c.prefix());
  std::vector<std::string> cgroups;
  for (const auto& e : st.journal())
    if (e.kind == "cgroup") cgroups.push_back(e.name);
  std::vector<int> watchers;
  for (const auto& e : st.journal())
    if (e.kind == "process") watchers.push_back(pidfd_of(std::stoi(e.name)));

  pid_t pid =
      start_stopped({"down", "--prefix", c.prefix()}, {{"HRBENCH_FAULT_STOP_AT", "down:netns"}});
  ASSERT_GT(pid, 0);
  kill_stopped(pid);
  EXPECT_TRUE(test::netns_with_prefix(c.prefix()).empty()) << "down had deleted the netns";
  EXPECT_TRUE(st.exists()) << "the journal outlives the killed down";
  ASSERT_TRUE(std::filesystem::exists(pins::root(c.prefix())))
      << "the kill point is before the pins are removed";
  for (int fd : watchers) EXPECT_TRUE(fd >= 0 && exited(fd)) << "down had killed the watcher";

  auto r = test::hrbench({"clean"}, c.prefix());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(pins::root(c.prefix())));
  EXPECT_GE(links.size(), 2u * 3);
  EXPECT_EQ(links_not_released(links), std::vector<uint32_t>{}) << "links that outlived clean";
  for (const auto& cg : cgroups) EXPECT_FALSE(std::filesystem::exists(cg)) << cg;
  EXPECT_FALSE(std::filesystem::exists(st.path()));
  for (int fd : watchers)
    if (fd >= 0) close(fd);
}

// A helper that outlives its SIGKILLed holder (simulated: HRBENCH_FAULT_NO_PDEATHSIG; in real
// life one still inside a system call when the SIGKILL arrives) runs in the root netns and
// carries no prefix: only its journal line ("helper PID STARTTIME") lets clean find it.
TEST(JournalReplay, CleanKillsAHelperItsDeadHolderLeftRunning) {
  HRB_REQUIRE_ROOT();
  const std::string prefix = test::unique_prefix("tj");
  pid_t pid = start_stopped(
      {"up", "--topology", test::source_path("topologies/two-node.yaml"), "--prefix", prefix},
      {{"HRBENCH_FAULT_STOP_AT", "exec:ip"}, {"HRBENCH_FAULT_NO_PDEATHSIG", "1"}});
  ASSERT_GT(pid, 0);
  // The holder stopped right after releasing its first helper (the root `ip -batch`, which now
  // waits for its script on stdin): the journal's last helper line.
  topology::StateDir st(prefix);
  int hpid = 0;
  uint64_t hstart = 0;
  for (const auto& e : st.journal()) {
    if (e.kind == "helper") {
      ASSERT_EQ(std::sscanf(e.name.c_str(), "%d %" SCNu64, &hpid, &hstart), 2) << e.name;
    }
  }
  ASSERT_GT(hpid, 0) << "no helper journalled";
  int hfd = pidfd_of(hpid);
  ASSERT_GE(hfd, 0);
  ASSERT_EQ(process_start_time(hpid), hstart);
  // Freeze the helper before its holder dies, so it cannot see end-of-file and leave on its own.
  ASSERT_EQ(kill(hpid, SIGSTOP), 0);
  for (;;) {
    std::ifstream f("/proc/" + std::to_string(hpid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close_paren = stat.rfind(')');
    ASSERT_NE(close_paren, std::string::npos) << "the helper is gone";
    if (stat.compare(close_paren + 2, 1, "T") == 0) break;
    sched_yield();
  }
  kill_stopped(pid);
  EXPECT_FALSE(exited(hfd)) << "the helper outlived its holder (the case under test)";

  auto r = test::hrbench({"clean"}, prefix);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("killed 1 helpers left by a dead holder"), std::string::npos) << r.err;
  pollfd pf{hfd, POLLIN, 0};
  bool gone = poll(&pf, 1, 30000) == 1;  // an event: it comes, or clean did not kill it
  EXPECT_TRUE(gone) << "clean left the journalled helper " << hpid << " running";
  if (!gone) syscall(SYS_pidfd_send_signal, hfd, SIGKILL, nullptr, 0);
  close(hfd);
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  EXPECT_FALSE(std::filesystem::exists(st.path()));
}

// The state directory lost (or never fsync'ed): clean still finds what carries the prefix — the
// netns, the guard watcher (by its command line), the pin directory and the owner cgroup.
TEST(JournalReplay, CleanWithoutStateSweepsByPrefix) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/two-node.yaml", "tj");
  auto m = test::hrbench({"mode", "ebpf"}, c.prefix());
  ASSERT_EQ(m.status, 0) << m.err;
  topology::StateDir st(c.prefix());
  auto links = pinned_link_ids(c.prefix());
  std::vector<std::string> cgroups;
  std::vector<int> watchers;
  for (const auto& e : st.journal()) {
    if (e.kind == "cgroup") cgroups.push_back(e.name);
    if (e.kind == "process") watchers.push_back(pidfd_of(std::stoi(e.name)));
  }
  std::filesystem::remove_all(st.path());

  auto r = test::hrbench({"clean"}, c.prefix());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(test::netns_with_prefix(c.prefix()).empty());
  EXPECT_FALSE(std::filesystem::exists(pins::root(c.prefix())));
  EXPECT_EQ(links_not_released(links), std::vector<uint32_t>{}) << "links that outlived clean";
  for (const auto& cg : cgroups) EXPECT_FALSE(std::filesystem::exists(cg)) << cg;
  for (int fd : watchers) {
    pollfd pf{fd, POLLIN, 0};
    EXPECT_TRUE(fd >= 0 && poll(&pf, 1, 30000) == 1) << "the guard watcher survived clean";
    if (fd >= 0) close(fd);
  }
  EXPECT_FALSE(std::filesystem::exists(st.path()));
}

// What a journal of the version before journalled attachments holds: this version's journal
// without its attach/detach lines (the pin layout is the same).
void make_journal_of_the_version_before(const topology::StateDir& st) {
  std::string kept;
  {
    std::ifstream in(st.path() + "/journal");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("attach ", 0) != 0 && line.rfind("detach ", 0) != 0) kept += line + "\n";
  }
  std::ofstream(st.path() + "/journal", std::ios::trunc) << kept;
}

// The process that attached dies without removing anything. Simulated in this process: ebpf mode
// applied under the prefix's lock, then the mode, the lock and the journalling of helpers dropped
// — what a crash leaves is the state directory and the kernel's objects. The journal holds every
// attachment before clean runs; clean undoes them, and the blocker's link on the root cgroup,
// outside every netns, is detached by the time clean returns (not only unpinned).
TEST(JournalReplay, CleanUndoesTheJournalledAttachmentsOfACrashedHolder) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/two-node.yaml", "tj");
  topology::StateDir st(c.prefix());
  {
    Fd lock = st.lock();
    auto l = topology::load_layout(st);
    datapath::ModeOptions o;
    o.name = "ebpf";
    datapath::make_mode(o, &st)->apply(l);
  }
  set_spawn_observer({});  // the dead holder's; our own helpers below are not the cluster's

  size_t tcx = 0, cgroup = 0;
  for (const auto& a : st.attachments()) {
    tcx += a.kind == Attachment::Kind::kTcx;
    cgroup += a.kind == Attachment::Kind::kCgroup;
    if (a.kind != Attachment::Kind::kClsact) {
      EXPECT_TRUE(std::filesystem::exists(a.pin)) << "journalled, not pinned: " << a.str();
    }
    if (a.kind == Attachment::Kind::kTcx && a.hook == "ingress") {
      EXPECT_EQ(test::tcx_query(a.netns, a.target), 1) << "journalled, not attached: " << a.str();
    }
  }
  EXPECT_EQ(tcx, 2u * 3) << "two nodes: eth0 and one lxc per pod (two each)";
  EXPECT_EQ(cgroup, 1u) << "the blocker's cgroup/setsockopt link (BPF LSM is unavailable here)";
  const uint32_t blocker = test::guard_prog_id(c.prefix());
  ASSERT_NE(blocker, 0u);
  EXPECT_TRUE(test::cgroup_setsockopt_programs().count(blocker));
  auto links = pinned_link_ids(c.prefix());
  std::vector<std::string> cgroups;
  std::vector<int> watchers;
  for (const auto& e : st.journal()) {
    if (e.kind == "cgroup") cgroups.push_back(e.name);
    if (e.kind == "process") watchers.push_back(std::stoi(e.name));
  }

  auto r = test::hrbench({"clean"}, c.prefix());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(test::cgroup_setsockopt_programs().count(blocker))
      << "the blocker is still attached to the root cgroup after clean";
  EXPECT_FALSE(std::filesystem::exists(pins::root(c.prefix())));
  EXPECT_EQ(links_not_released(links), std::vector<uint32_t>{}) << "links that outlived clean";
  EXPECT_TRUE(test::netns_with_prefix(c.prefix()).empty());
  for (const auto& cg : cgroups) EXPECT_FALSE(std::filesystem::exists(cg)) << cg;
  for (int pid : watchers) {
    EXPECT_FALSE(process_running(pid)) << "the guard watcher survived clean";
    waitpid(pid, nullptr, 0);  // ours: this process started it
  }
  EXPECT_FALSE(std::filesystem::exists(st.path()));
}

// A cluster whose journal was written by the version before (no attach lines): removal reads the
// pin names as that version did, so switching the mode off detaches everything and clean
// finishes a second ebpf mode.
TEST(JournalReplay, AStateOfTheVersionBeforeStillSwitchesAndCleans) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/two-node.yaml", "tj");
  topology::StateDir st(c.prefix());
  ASSERT_EQ(test::hrbench({"mode", "ebpf"}, c.prefix()).status, 0);
  make_journal_of_the_version_before(st);
  auto from_pins = st.attachments();
  EXPECT_EQ(from_pins.size(), 2u * 3 + 1) << "six tcx links and the blocker's, by pin name";
  uint32_t blocker = test::guard_prog_id(c.prefix());
  auto links = pinned_link_ids(c.prefix());

  auto m = test::hrbench({"mode", "legacy"}, c.prefix());
  ASSERT_EQ(m.status, 0) << m.err;
  // Detached by the switch itself, not left to the kernel's deferred release of unpinned links.
  for (const auto& n : c.layout().nodes) {
    EXPECT_EQ(test::tcx_query(n.netns, n.uplink), 0) << n.name;
    for (const auto& p : n.pods) EXPECT_EQ(test::tcx_query(n.netns, p.lxc), 0) << p.lxc;
  }
  EXPECT_FALSE(test::cgroup_setsockopt_programs().count(blocker)) << "the blocker is attached";
  EXPECT_FALSE(std::filesystem::exists(pins::root(c.prefix())));
  EXPECT_EQ(links_not_released(links), std::vector<uint32_t>{}) << "links left attached";
  EXPECT_TRUE(st.attachments().empty());

  ASSERT_EQ(test::hrbench({"mode", "ebpf"}, c.prefix()).status, 0);
  make_journal_of_the_version_before(st);
  blocker = test::guard_prog_id(c.prefix());
  links = pinned_link_ids(c.prefix());
  auto r = test::hrbench({"clean"}, c.prefix());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(test::cgroup_setsockopt_programs().count(blocker)) << "the blocker is attached";
  EXPECT_FALSE(std::filesystem::exists(pins::root(c.prefix())));
  EXPECT_EQ(links_not_released(links), std::vector<uint32_t>{}) << "links that outlived clean";
  EXPECT_TRUE(test::netns_with_prefix(c.prefix()).empty());
  EXPECT_FALSE(std::filesystem::exists(st.path()));
}

}  // namespace
