// ACNS node components on a live cluster: the iptables monitor (refuses ebpf mode while user
// rules exist), the blocker (kernel-refused x_tables writes, undone nftables writes), and the IP
// Masquerade Agent. The root network namespace is never written to (a rule of this machine), so
// "elsewhere still works" is checked in a pod netns and a scratch netns instead.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "core/netns.hpp"
#include "support/cluster_fixture.hpp"
#include "topology/state.hpp"
#include "traffic/reach.hpp"

using namespace hrb;
using Clock = std::chrono::steady_clock;

namespace {

// Program ids attached to the cgroup v2 root's setsockopt hook (other tests running in parallel
// may attach their own: look for ours by id, never by count).
std::set<uint32_t> cgroup_setsockopt_programs() {
  int fd = open("/sys/fs/cgroup/unified", O_RDONLY | O_DIRECTORY);
  if (fd < 0) fd = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY);
  uint32_t ids[64], cnt = 64, flags = 0;
  int r = bpf_prog_query(fd, BPF_CGROUP_SETSOCKOPT, 0, &flags, ids, &cnt);
  close(fd);
  return r == 0 ? std::set<uint32_t>(ids, ids + cnt) : std::set<uint32_t>{};
}

// The program behind the blocker's pinned link.
uint32_t guard_prog_id(const std::string& prefix) {
  int fd = bpf_obj_get(("/sys/fs/bpf/hrbench/" + prefix + "/guard/link_setsockopt").c_str());
  if (fd < 0) return 0;
  bpf_link_info info{};
  uint32_t len = sizeof info;
  int r = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  return r == 0 ? info.prog_id : 0;
}

class Guard : public ::testing::Test {
 protected:
  void SetUp() override {
    HRB_REQUIRE_ROOT();
    c_ = std::make_unique<test::ClusterGuard>("topologies/two-node.yaml", "tg");
  }
  void TearDown() override { c_.reset(); }
  const topology::NodeLayout& node1() { return c_->layout().nodes[0]; }
  CmdResult in(const std::string& netns, const std::vector<std::string>& argv) {
    return run_cmd(argv, {.netns = netns, .check = false});
  }
  CmdResult mode(std::vector<std::string> a) {
    a.insert(a.begin(), "mode");
    return test::hrbench(a, c_->prefix());
  }
  std::unique_ptr<test::ClusterGuard> c_;
};

TEST_F(Guard, UserRulesRefuseEbpfModeUntilRemoved) {
  ASSERT_EQ(mode({"legacy", "--services", "5"}).status, 0);  // allowlisted owners only
  struct Case {
    std::vector<std::string> add, del;
    const char* shows;
  } cases[] = {
      {{"iptables-nft", "-A", "FORWARD", "-s", "10.0.0.0/8", "-j", "DROP"},
       {"iptables-nft", "-D", "FORWARD", "-s", "10.0.0.0/8", "-j", "DROP"},
       "iptables-nft filter FORWARD -s 10.0.0.0/8 -j DROP"},
      {{"nft",
        "add table inet usr; add chain inet usr c1 { type filter hook forward priority 0; }; "
        "add rule inet usr c1 ip saddr 10.0.0.0/8 drop"},
       {"nft", "delete table inet usr"},
       "nft inet usr c1 ip saddr 10.0.0.0/8 drop"},
  };
  for (const auto& k : cases) {
    ASSERT_EQ(in(node1().netns, k.add).status, 0);
    auto r = mode({"ebpf"});
    EXPECT_EQ(r.status, static_cast<int>(ExitCode::kRefused)) << r.err;
    EXPECT_NE(r.err.find(k.shows), std::string::npos) << r.err;
    auto m = test::hrbench({"guard", "monitor", "--json"}, c_->prefix());
    EXPECT_EQ(m.status, static_cast<int>(ExitCode::kRefused));
    EXPECT_NE(m.out.find("\"userInstalled\": 1"), std::string::npos) << m.out;
    ASSERT_EQ(in(node1().netns, k.del).status, 0);
  }
  auto ok = mode({"ebpf"});
  EXPECT_EQ(ok.status, 0) << "only allowlisted rules left: " << ok.err;
}

TEST_F(Guard, BlockerRefusesAndUndoesWritesOnlyInNodes) {
  ASSERT_EQ(mode({"ebpf"}).status, 0);
  const uint32_t ours = guard_prog_id(c_->prefix());
  ASSERT_NE(ours, 0u) << "no pinned blocker link";
  EXPECT_TRUE(cgroup_setsockopt_programs().count(ours)) << "the blocker is not attached";

  // x_tables: refused by the kernel in the node netns.
  auto legacy =
      in(node1().netns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.0.0.0/8", "-j", "DROP"});
  EXPECT_NE(legacy.status, 0);
  EXPECT_NE(legacy.err.find("Operation not permitted"), std::string::npos) << legacy.err;

  // nftables: committed, then undone by the watcher within a second, and logged.
  for (std::vector<std::string> add :
       {std::vector<std::string>{"iptables-nft", "-A", "FORWARD", "-s", "10.1.0.0/16", "-j",
                                 "DROP"},
        {"nft",
         "add table inet usr2; add chain inet usr2 c { type filter hook forward priority 0; }; "
         "add rule inet usr2 c ip saddr 10.2.0.0/16 drop"}}) {
    ASSERT_EQ(in(node1().netns, add).status, 0) << add[0];
    auto t0 = Clock::now();
    bool gone = false;
    while (Clock::now() - t0 < std::chrono::seconds(1)) {
      auto all = in(node1().netns, {"nft", "list", "ruleset"}).out;
      if (all.find("10.1.0.0/16") == std::string::npos &&
          all.find("10.2.0.0/16") == std::string::npos) {
        gone = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(gone) << add[0] << ": the rule is still there after 1 s";
  }
  // The watcher logs each removal right after it (poll: the log line follows the deletion).
  std::string text;
  for (auto t0 = Clock::now(); Clock::now() - t0 < std::chrono::seconds(2);) {
    std::ifstream log(topology::StateDir(c_->prefix()).path() + "/guard.log");
    text.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
    if (text.find("removed t inet usr2 committed by nft") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(text.find("committed by iptables-nft"), std::string::npos) << text;
  EXPECT_NE(text.find("committed by nft"), std::string::npos) << text;
  auto st = test::hrbench({"status"}, c_->prefix());
  EXPECT_NE(st.out.find("x_tables writes refused 1"), std::string::npos) << st.out;
  // The BPF LSM variant was tried first; on this kernel it cannot load and the fallback is named.
  EXPECT_NE(st.out.find("BPF LSM unavailable"), std::string::npos) << st.out;

  // Elsewhere, both backends still work: a pod netns, and a scratch netns.
  const auto& pod = c_->layout().pods()[0]->netns;
  EXPECT_EQ(in(pod, {"iptables-legacy", "-A", "OUTPUT", "-d", "10.9.9.9", "-j", "DROP"}).status, 0);
  EXPECT_EQ(in(pod, {"iptables-nft", "-A", "OUTPUT", "-d", "10.9.9.8", "-j", "DROP"}).status, 0);
  auto scratch = run_cmd({"iptables-legacy", "-A", "OUTPUT", "-d", "10.9.9.9", "-j", "DROP"},
                         {.check = false, .new_anon_netns = true});
  EXPECT_EQ(scratch.status, 0) << scratch.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // give a wrong watcher its chance
  EXPECT_NE(in(pod, {"iptables-nft-save"}).out.find("10.9.9.8"), std::string::npos)
      << "the watcher touched a pod netns";

  // Switching back: nothing of the blocker is left, and rules can be added again.
  ASSERT_EQ(mode({"legacy"}).status, 0);
  EXPECT_FALSE(cgroup_setsockopt_programs().count(ours)) << "the blocker is still attached";
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/bpf/hrbench/" + c_->prefix()));
  EXPECT_EQ(
      in(node1().netns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.3.0.0/16", "-j", "DROP"})
          .status,
      0);
  EXPECT_EQ(in(node1().netns, {"iptables-nft", "-A", "FORWARD", "-s", "10.4.0.0/16", "-j", "DROP"})
                .status,
            0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_NE(in(node1().netns, {"iptables-nft-save"}).out.find("10.4.0.0/16"), std::string::npos);
}

// With the legacy backend the agent's chain is x_tables, which the kernel half refuses in the
// nodes: the agent writes from the blocker's owner cgroup, anyone else is still refused, and the
// cgroup goes with the blocker.
TEST_F(Guard, MasqAgentWritesXtablesUnderTheBlockerOthersCannot) {
  ASSERT_EQ(mode({"ebpf", "--backend", "legacy"}).status, 0);
  const std::string cg = "/hrbench-" + c_->prefix() + "-owner";
  auto owner_cgroup_exists = [&] {
    return std::filesystem::exists("/sys/fs/cgroup/unified" + cg) ||
           std::filesystem::exists("/sys/fs/cgroup" + cg);
  };
  EXPECT_TRUE(owner_cgroup_exists());
  auto agent = test::hrbench({"masq-agent", "--once"}, c_->prefix());
  EXPECT_EQ(agent.status, 0) << agent.err;
  auto saved = in(node1().netns, {"iptables-legacy-save", "-t", "nat"}).out;
  EXPECT_NE(saved.find("-A IP-MASQ-AGENT -d 10.244.0.0/16"), std::string::npos) << saved;
  auto user =
      in(node1().netns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.0.0.0/8", "-j", "DROP"});
  EXPECT_NE(user.status, 0);
  EXPECT_NE(user.err.find("Operation not permitted"), std::string::npos) << user.err;
  auto st = test::hrbench({"status"}, c_->prefix());
  EXPECT_NE(st.out.find("x_tables writes refused 1"), std::string::npos) << st.out;
  ASSERT_EQ(mode({"legacy", "--backend", "legacy"}).status, 0);
  EXPECT_FALSE(owner_cgroup_exists()) << "the owner cgroup outlived the blocker";
}

TEST_F(Guard, MasqAgentFollowsTheConfigInBothModes) {
  char tmpl[] = "/tmp/hrb-masq-XXXXXX";
  const std::string dir = mkdtemp(tmpl), cfg = dir + "/ip-masq-agent.yaml";
  auto write_cfg = [&](bool external_kept) {
    std::ofstream(cfg + ".tmp") << "nonMasqueradeCIDRs: [10.244.0.0/16, 172.18.0.0/24"
                                << (external_kept ? ", 192.168.200.0/24" : "")
                                << "]\nresyncInterval: 2s\n";
    std::filesystem::rename(cfg + ".tmp", cfg);
  };
  write_cfg(false);
  const auto* pod = c_->layout().pods()[0];
  const auto& ext = c_->layout().externals[0];
  const auto node_ip = c_->layout().nodes[pod->node].underlay_ip;
  // Polls pod -> external until the external host sees `want` (new connections each time).
  auto sees_within = [&](Ipv4 want, std::chrono::seconds limit) {
    auto t0 = Clock::now();
    while (Clock::now() - t0 < limit) {
      auto r = traffic::reach({traffic::Proto::kTcp, pod->netns, ext.netns, ext.address});
      if (r.ok && r.peer_seen == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  for (const char* m : {"legacy", "ebpf"}) {
    ASSERT_EQ(mode({m, "--masq-config", cfg}).status, 0);
    EXPECT_TRUE(sees_within(node_ip, std::chrono::seconds(1))) << m << ": masqueraded at first";
    pid_t agent = fork();
    ASSERT_GE(agent, 0);
    if (agent == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      execl(HRBENCH_BIN, HRBENCH_BIN, "masq-agent", "--prefix", c_->prefix().c_str(), "--config",
            cfg.c_str(), nullptr);
      _exit(127);
    }
    write_cfg(true);
    EXPECT_TRUE(sees_within(pod->ip, std::chrono::seconds(3)))
        << m << ": 192.168.200.0/24 became non-masquerade, within resyncInterval";
    // A broken file changes nothing.
    std::ofstream(cfg) << "nonMasqueradeCIDRs: [not-a-cidr]\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    EXPECT_TRUE(sees_within(pod->ip, std::chrono::seconds(1))) << m << ": a bad file changed it";
    write_cfg(false);
    EXPECT_TRUE(sees_within(node_ip, std::chrono::seconds(3))) << m << ": masqueraded again";
    kill(agent, SIGTERM);
    int st;
    waitpid(agent, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
