// The limitation lab's scenarios, each asserting its verdict in both modes.
#include <gtest/gtest.h>

#include <atomic>

#include "lab/lab.hpp"
#include "support/cluster_fixture.hpp"

using namespace hrb;

namespace {

std::vector<lab::Verdict> run_one(const std::string& scenario) {
  lab::LabOptions o;
  o.topology = test::source_path("topologies/two-node.yaml");
  o.prefix = test::unique_prefix("tl");
  std::atomic<bool> stop{false};
  auto v = lab::run({scenario}, o, stop);
  EXPECT_TRUE(test::netns_with_prefix(o.prefix).empty()) << "the lab left its cluster";
  return v;
}

const lab::Verdict& find(const std::vector<lab::Verdict>& v, const std::string& mode) {
  for (const auto& x : v)
    if (x.mode == mode) return x;
  throw std::runtime_error("no verdict for " + mode);
}

TEST(Lab, UserRuleBypass) {
  HRB_REQUIRE_ROOT();
  auto v = run_one("user-rule-bypass");
  const auto& legacy = find(v, "legacy");
  const auto& ebpf = find(v, "ebpf");
  EXPECT_TRUE(legacy.works) << legacy.summary;  // the DROP is enforced
  EXPECT_GT(legacy.evidence["userRulePackets"].get<uint64_t>(), 0u);
  EXPECT_FALSE(ebpf.works) << ebpf.summary;  // bypassed
  EXPECT_EQ(ebpf.evidence["userRulePackets"].get<uint64_t>(), 0u);
  EXPECT_TRUE(ebpf.evidence["attempt"]["ok"].get<bool>());
  EXPECT_NE(ebpf.evidence["monitor"].get<std::string>().find("refused"), std::string::npos);
}

TEST(Lab, IstioLikeRedirect) {
  HRB_REQUIRE_ROOT();
  auto v = run_one("istio-like-redirect");
  // Node-level capture works in legacy and is bypassed in ebpf mode …
  EXPECT_TRUE(find(v, "legacy (node-level)").works) << find(v, "legacy (node-level)").summary;
  EXPECT_FALSE(find(v, "ebpf (node-level)").works) << find(v, "ebpf (node-level)").summary;
  EXPECT_TRUE(find(v, "ebpf (node-level)").evidence["acceptedByServer"].get<bool>());
  EXPECT_EQ(find(v, "ebpf (node-level)").evidence["captureRulePackets"].get<uint64_t>(), 0u);
  // … while capture inside the pod's own netns is untouched by host routing.
  EXPECT_TRUE(find(v, "legacy (pod-level)").works);
  EXPECT_TRUE(find(v, "ebpf (pod-level)").works) << find(v, "ebpf (pod-level)").summary;
}

TEST(Lab, HybridNodes) {
  HRB_REQUIRE_ROOT();
  auto v = run_one("hybrid-nodes");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(find(v, "legacy").works) << find(v, "legacy").summary;
  EXPECT_TRUE(find(v, "ebpf").works) << find(v, "ebpf").summary;
  // The hybrid cluster works too (docs/lab.md: "all 12 flows work"), explained flow by flow:
  // pod-to-pod both ways (TCP, UDP), pod-to-external from both nodes, 4 services from the pod of
  // each node that is not the endpoint.
  const auto& h = find(v, "hybrid");
  EXPECT_TRUE(h.works) << h.summary;
  EXPECT_EQ(h.evidence["attempts"].size(), 12u) << h.evidence["attempts"].dump(1);
  for (const auto& a : h.evidence["attempts"]) EXPECT_TRUE(a["ok"].get<bool>()) << a.dump();
  EXPECT_TRUE(h.evidence.contains("bpfCounters"));
}

TEST(Lab, DualStack) {
  HRB_REQUIRE_ROOT();
  auto v = run_one("dual-stack");  // on topologies/dual-stack.yaml: --topology is IPv4-only
  for (const char* m : {"legacy", "ebpf"}) {
    EXPECT_TRUE(find(v, m).works) << m << ": " << find(v, m).summary;
    // The topology's IPv6 (the layout's addresses, assigned by up), not one bolted on.
    EXPECT_EQ(find(v, m).evidence["server"], "node2-pod1 fd00:10:244:1::2");
    EXPECT_GT(find(v, m).evidence["pingRttUs"]["ipv6"].get<double>(), 0);
    // The generators over IPv6 (udp_rr answers from the asked address: IPV6_PKTINFO).
    for (const char* wl : {"tcp_rr", "udp_rr"})
      for (const char* fam : {"ipv4", "ipv6"}) {
        const auto& r = find(v, m).evidence["rr"][wl][fam];
        // Transactions completed: the reply path works (a broken one completes none). udp_rr
        // errors are replies later than the generator's 200 ms wait — the machine's load, not
        // the path — so only TCP's are asserted.
        EXPECT_GT(r["transactionsPerSecond"].get<double>(), 0) << m << " " << wl << " " << fam;
        if (std::string(wl) == "tcp_rr") {
          EXPECT_EQ(r["errors"].get<uint64_t>(), 0u) << m << " " << wl << " " << fam;
        }
      }
  }
  // In ebpf mode IPv6 is forwarded by BPF: the IPv6 redirect counters rose with the pings and no
  // ip6tables rule counted one; in legacy the stack's ip6tables rules did.
  const auto& e = find(v, "ebpf").evidence;
  EXPECT_GT(e["bpfIpv6RedirectsDuringPings"].get<uint64_t>(), 0u) << e.dump();
  EXPECT_EQ(e["ip6tablesRulePacketsDuringPings"].get<uint64_t>(), 0u) << e.dump();
  EXPECT_EQ(e["bpfCountersAfterPings"]["node1"]["from_pod"].value("to_stack_non_ipv4", 0), 0)
      << "no IPv6 packet handed to the stack as not IPv4";
  EXPECT_GT(find(v, "legacy").evidence["ip6tablesRulePacketsDuringPings"].get<uint64_t>(), 0u);
}

TEST(Lab, UnknownScenarioIsRejected) {
  lab::LabOptions o;
  o.prefix = test::unique_prefix("tl");
  std::atomic<bool> stop{false};
  try {
    lab::run({"dual-stack", "moon-landing"}, o, stop);
    FAIL() << "an unknown scenario was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage) << e.what();
    EXPECT_NE(std::string(e.what()).find("unknown lab scenario 'moon-landing'"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(test::netns_with_prefix(o.prefix).empty()) << "checked before anything is built";
}

}  // namespace
