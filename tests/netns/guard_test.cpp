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
#include "core/pins.hpp"
#include "support/cluster_fixture.hpp"
#include "topology/state.hpp"
#include "traffic/reach.hpp"

using namespace hrb;
using Clock = std::chrono::steady_clock;

namespace {

// Polls `cond` until it holds or a generous deadline passes: a barrier, not a timing claim (on a
// loaded machine the deadline is never what ends a passing test).
template <class F>
bool eventually(F cond, std::chrono::seconds limit = std::chrono::seconds(30)) {
  for (auto t0 = Clock::now(); Clock::now() - t0 < limit;) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Waits until `needle` appears in the file at or after offset `from`; returns the offset just
// past it, or npos when it never did.
size_t wait_for_line(const std::string& path, const std::string& needle, size_t from = 0) {
  size_t at = std::string::npos;
  eventually([&] {
    auto text = slurp(path);
    at = from <= text.size() ? text.find(needle, from) : std::string::npos;
    return at != std::string::npos;
  });
  return at == std::string::npos ? at : at + needle.size();
}

// A forked child, stopped (SIGTERM, reaped) also when an assertion returns early.
struct Child {
  pid_t pid = -1;
  int stop() {
    int st = -1;
    if (pid > 0 && kill(pid, SIGTERM) == 0) waitpid(pid, &st, 0);
    pid = -1;
    return st;
  }
  ~Child() { stop(); }
};

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/hrb-guard-XXXXXX";
    path = mkdtemp(t);
  }
  ~TmpDir() { std::filesystem::remove_all(path); }
};

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
  std::string guard_log() { return topology::StateDir(c_->prefix()).path() + "/guard.log"; }
  // The blocker variant ebpf mode started: "bpf-lsm", or the fallback and why.
  std::string variant() { return topology::StateDir(c_->prefix()).read("guard.variant"); }
  // A barrier on the nftables watcher: two commits in node1, each waited for until the watcher
  // has logged its removal. The second is read in a later poll round than the first, so every
  // netlink event queued before this call has been handled (and whatever a wrong watcher would
  // have undone, undone) when it returns.
  void watcher_barrier(const std::string& tag) {
    for (int i = 0; i < 2; ++i) {
      const std::string table = "barrier" + tag + std::to_string(i);
      ASSERT_EQ(in(node1().netns, {"nft", "add table inet " + table}).status, 0);
      ASSERT_NE(wait_for_line(guard_log(), "removed t inet " + table + " committed by nft"),
                std::string::npos)
          << "the watcher did not undo " << table << ":\n"
          << slurp(guard_log());
    }
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
  if (variant() == "bpf-lsm")
    GTEST_SKIP() << "the blocker is the BPF LSM variant on this kernel (GuardLsm.* tests it); "
                    "this test is the fallback's (cgroup-sockopt + nftables watcher)";
  const uint32_t ours = test::guard_prog_id(c_->prefix());
  ASSERT_NE(ours, 0u) << "no pinned blocker link";
  EXPECT_TRUE(test::cgroup_setsockopt_programs().count(ours)) << "the blocker is not attached";

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
    EXPECT_TRUE(eventually([&] {
      auto all = in(node1().netns, {"nft", "list", "ruleset"}).out;
      return all.find("10.1.0.0/16") == std::string::npos &&
             all.find("10.2.0.0/16") == std::string::npos;
    })) << add[0]
        << ": the rule was never undone";
  }
  // The watcher logs each removal right after it (the log line follows the deletion).
  EXPECT_NE(wait_for_line(guard_log(), "committed by iptables-nft"), std::string::npos)
      << slurp(guard_log());
  EXPECT_NE(wait_for_line(guard_log(), "removed t inet usr2 committed by nft"), std::string::npos)
      << slurp(guard_log());
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
  watcher_barrier("pod");  // a wrong watcher has had its chance
  EXPECT_NE(in(pod, {"iptables-nft-save"}).out.find("10.9.9.8"), std::string::npos)
      << "the watcher touched a pod netns";

  // Switching back: nothing of the blocker is left (the watcher has exited: nothing can undo a
  // rule any more), and rules can be added again.
  const std::string watcher = topology::StateDir(c_->prefix()).read("guard.pid");
  ASSERT_FALSE(watcher.empty()) << "no guard.pid";
  ASSERT_EQ(mode({"legacy"}).status, 0);
  EXPECT_FALSE(process_running(std::stoi(watcher))) << "the watcher outlived the blocker";
  EXPECT_FALSE(test::cgroup_setsockopt_programs().count(ours)) << "the blocker is still attached";
  EXPECT_FALSE(std::filesystem::exists(pins::root(c_->prefix())));
  EXPECT_EQ(
      in(node1().netns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.3.0.0/16", "-j", "DROP"})
          .status,
      0);
  EXPECT_EQ(in(node1().netns, {"iptables-nft", "-A", "FORWARD", "-s", "10.4.0.0/16", "-j", "DROP"})
                .status,
            0);
  EXPECT_NE(in(node1().netns, {"iptables-nft-save"}).out.find("10.4.0.0/16"), std::string::npos);
}

// The blocker's scope is the node netns of its own cluster (their cookies in guarded_netns, one
// watcher socket per node): node2 is refused like node1; the fabric netns and both nodes of a
// second cluster, up at the same time, keep both backends.
TEST_F(Guard, BlockerScopeIsTheNodesOfItsOwnCluster) {
  test::ClusterGuard other("topologies/two-node.yaml", "tg");
  ASSERT_EQ(mode({"ebpf"}).status, 0);
  if (variant() == "bpf-lsm")
    GTEST_SKIP() << "the blocker is the BPF LSM variant on this kernel (GuardLsm.* tests it); "
                    "this test is the fallback's (cgroup-sockopt + nftables watcher)";
  const auto& node2 = c_->layout().nodes[1];
  auto refused =
      in(node2.netns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.5.0.0/16", "-j", "DROP"});
  EXPECT_NE(refused.status, 0) << "node2 of the guarded cluster accepted an x_tables write";
  EXPECT_NE(refused.err.find("Operation not permitted"), std::string::npos) << refused.err;
  ASSERT_EQ(in(node2.netns, {"nft", "add table inet usr5"}).status, 0);
  EXPECT_NE(wait_for_line(guard_log(), "removed t inet usr5 committed by nft"), std::string::npos)
      << "node2's nftables write was not undone:\n"
      << slurp(guard_log());

  std::vector<std::string> elsewhere{c_->layout().fabric_netns};
  for (const auto& n : other.layout().nodes) elsewhere.push_back(n.netns);
  elsewhere.push_back(other.layout().fabric_netns);
  for (const auto& ns : elsewhere) {
    auto x = in(ns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.6.0.0/16", "-j", "DROP"});
    EXPECT_EQ(x.status, 0) << ns << ": " << x.err;
    auto n = in(ns, {"iptables-nft", "-A", "FORWARD", "-s", "10.7.0.0/16", "-j", "DROP"});
    EXPECT_EQ(n.status, 0) << ns << ": " << n.err;
  }
  watcher_barrier("scope");
  for (const auto& ns : elsewhere) {
    EXPECT_NE(in(ns, {"iptables-legacy-save"}).out.find("10.6.0.0/16"), std::string::npos) << ns;
    EXPECT_NE(in(ns, {"iptables-nft-save"}).out.find("10.7.0.0/16"), std::string::npos)
        << ns << ": the watcher undid a write outside its cluster's nodes";
  }
  auto st = test::hrbench({"status"}, c_->prefix());
  EXPECT_NE(st.out.find("x_tables writes refused 1"), std::string::npos)
      << "only node2's write counts as refused:\n"
      << st.out;
  // The second cluster's own status knows no blocker.
  auto other_st = test::hrbench({"status"}, other.prefix());
  EXPECT_EQ(other_st.out.find("x_tables writes refused"), std::string::npos) << other_st.out;
}

// The AKS-style blocker (bpf/guard_lsm.bpf.c), where the kernel lets BPF LSM programs load: a
// kernel booted with lsm=...,bpf, as scripts/kernel-matrix boots its VMs (this project's host
// refuses them with EPERM, and the test skips there, naming why). In the nodes the kernel itself
// refuses x_tables and nftables writes, so nothing is committed and no watcher runs; a pod netns
// and a scratch netns keep both backends; switching back removes it and writes work again.
class GuardLsm : public Guard {};

TEST_F(GuardLsm, KernelRefusesIptablesWritesOnlyInTheNodes) {
  ASSERT_EQ(mode({"ebpf"}).status, 0);
  const std::string v = variant();
  if (v != "bpf-lsm")
    GTEST_SKIP() << "BPF LSM programs do not load on this kernel, the blocker is " << v
                 << " (scripts/kernel-matrix runs this test in a VM booted with lsm=...,bpf)";
  const std::string prefix = c_->prefix();
  EXPECT_TRUE(topology::StateDir(prefix).read("guard.pid").empty()) << "a watcher runs too";
  EXPECT_EQ(test::guard_prog_id(prefix), 0u) << "the cgroup-sockopt fallback is attached too";
  for (const char* hook : {"lsm_guard_socket_setsockopt", "lsm_guard_netlink_send"})
    EXPECT_TRUE(std::filesystem::exists(pins::guard(prefix, hook))) << "no pinned link " << hook;

  for (const auto& n : c_->layout().nodes) {
    auto x = in(n.netns, {"iptables-legacy", "-A", "FORWARD", "-s", "10.0.0.0/8", "-j", "DROP"});
    EXPECT_NE(x.status, 0) << n.name << " accepted an x_tables write";
    EXPECT_NE(x.err.find("Operation not permitted"), std::string::npos) << x.err;
    EXPECT_EQ(in(n.netns, {"iptables-legacy-save"}).out.find("10.0.0.0/8"), std::string::npos);
    auto nf = in(n.netns, {"iptables-nft", "-A", "FORWARD", "-s", "10.1.0.0/16", "-j", "DROP"});
    EXPECT_NE(nf.status, 0) << n.name << " accepted an iptables-nft write";
    auto nt = in(n.netns, {"nft", "add table inet usr"});
    EXPECT_NE(nt.status, 0) << n.name << " accepted an nft transaction";
    EXPECT_NE(nt.err.find("Operation not permitted"), std::string::npos) << nt.err;
    auto ruleset = in(n.netns, {"nft", "list", "ruleset"});  // reads are not refused
    EXPECT_EQ(ruleset.status, 0) << ruleset.err;
    EXPECT_EQ(ruleset.out.find("10.1.0.0/16"), std::string::npos) << ruleset.out;
    EXPECT_EQ(ruleset.out.find("table inet usr"), std::string::npos) << ruleset.out;
  }
  auto st = test::hrbench({"status"}, prefix);
  EXPECT_NE(st.out.find("iptables blocker: active (bpf-lsm); x_tables writes refused 2, "
                        "nftables transactions refused "),
            std::string::npos)
      << st.out;
  EXPECT_EQ(st.out.find("nftables transactions refused 0"), std::string::npos) << st.out;

  // Elsewhere, both backends still work: a pod netns, and a scratch netns.
  const auto& pod = c_->layout().pods()[0]->netns;
  EXPECT_EQ(in(pod, {"iptables-legacy", "-A", "OUTPUT", "-d", "10.9.9.9", "-j", "DROP"}).status, 0);
  EXPECT_EQ(in(pod, {"iptables-nft", "-A", "OUTPUT", "-d", "10.9.9.8", "-j", "DROP"}).status, 0);
  EXPECT_NE(in(pod, {"iptables-nft-save"}).out.find("10.9.9.8"), std::string::npos);
  EXPECT_NE(in(pod, {"iptables-legacy-save"}).out.find("10.9.9.9"), std::string::npos);
  auto scratch = run_cmd({"sh", "-c",
                          "iptables-legacy -A OUTPUT -d 10.9.9.9 -j DROP && "
                          "nft add table inet scratch"},
                         {.check = false, .new_anon_netns = true});
  EXPECT_EQ(scratch.status, 0) << scratch.err;

  ASSERT_EQ(mode({"legacy"}).status, 0);
  EXPECT_FALSE(std::filesystem::exists(pins::root(prefix)));
  const auto& node = node1().netns;
  EXPECT_EQ(
      in(node, {"iptables-legacy", "-A", "FORWARD", "-s", "10.3.0.0/16", "-j", "DROP"}).status, 0);
  EXPECT_EQ(in(node, {"iptables-nft", "-A", "FORWARD", "-s", "10.4.0.0/16", "-j", "DROP"}).status,
            0);
  EXPECT_NE(in(node, {"iptables-nft-save"}).out.find("10.4.0.0/16"), std::string::npos);
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

// The agent's reprogramming is waited for by its log lines ("programmed N non-masquerade CIDRs":
// 169.254.0.0/16 + the file's CIDRs); each check is then one new connection, whose source
// address is decided by the rules already in place.
TEST_F(Guard, MasqAgentFollowsTheConfigInBothModes) {
  TmpDir tmp;
  const std::string dir = tmp.path, cfg = dir + "/ip-masq-agent.yaml";
  auto replace_cfg = [&](const std::string& text) {  // atomically: the agent never reads half
    std::ofstream(cfg + ".tmp") << text;
    std::filesystem::rename(cfg + ".tmp", cfg);
  };
  auto write_cfg = [&](bool external_kept) {
    replace_cfg(std::string("nonMasqueradeCIDRs: [10.244.0.0/16, 172.18.0.0/24") +
                (external_kept ? ", 192.168.200.0/24" : "") + "]\nresyncInterval: 2s\n");
  };
  write_cfg(false);
  const auto* pod = c_->layout().pods()[0];
  const auto& ext = c_->layout().externals[0];
  const auto node_ip = c_->layout().nodes[pod->node].underlay_ip;
  // The source address the external host sees on a new connection from the pod (a failed
  // attempt, e.g. a timeout on a busy machine, is retried; the address is never polled for).
  auto seen = [&]() -> std::string {
    traffic::ReachResult r;
    eventually([&] {
      r = traffic::reach({traffic::Proto::kTcp, pod->netns, ext.netns, ext.address});
      return r.ok;
    });
    return r.ok ? r.peer_seen.str() : "unreachable: " + r.error;
  };
  for (const char* m : {"legacy", "ebpf"}) {
    ASSERT_EQ(mode({m, "--masq-config", cfg}).status, 0);
    EXPECT_EQ(seen(), node_ip.str()) << m << ": masqueraded at first";
    const std::string log = dir + "/agent-" + m + ".log";
    Child agent{fork()};
    ASSERT_GE(agent.pid, 0);
    if (agent.pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      execl(HRBENCH_BIN, HRBENCH_BIN, "masq-agent", "--prefix", c_->prefix().c_str(), "--config",
            cfg.c_str(), nullptr);
      _exit(127);
    }
    write_cfg(true);
    size_t at = wait_for_line(log, "programmed 4 non-masquerade CIDRs");
    ASSERT_NE(at, std::string::npos) << m << ": the agent never applied the new file:\n"
                                     << slurp(log);
    EXPECT_EQ(seen(), pod->ip.str()) << m << ": 192.168.200.0/24 became non-masquerade";
    // A broken file changes nothing: the agent says so and keeps the rules.
    replace_cfg("nonMasqueradeCIDRs: [not-a-cidr]\n");
    at = wait_for_line(log, "invalid ip-masq-agent config", at);
    ASSERT_NE(at, std::string::npos) << m << ": the bad file was not rejected:\n" << slurp(log);
    EXPECT_EQ(seen(), pod->ip.str()) << m << ": a bad file changed it";
    write_cfg(false);
    ASSERT_NE(wait_for_line(log, "programmed 3 non-masquerade CIDRs", at), std::string::npos)
        << m << ": the agent never applied the reverted file:\n"
        << slurp(log);
    EXPECT_EQ(seen(), node_ip.str()) << m << ": masqueraded again";
    int st = agent.stop();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
}

}  // namespace
