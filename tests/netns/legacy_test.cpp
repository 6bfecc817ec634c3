// Legacy mode on a live two-node cluster: real iptables rules in real netfilter.
#include <gtest/gtest.h>

#include "core/netns.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/reach.hpp"

using namespace hrb;
using datapath::Backend;
using traffic::Proto;

namespace {

// One cluster per backend; each test switches modes on it with `hrbench mode`.
class Legacy : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    HRB_REQUIRE_ROOT();
    cluster_ = std::make_unique<test::ClusterGuard>("topologies/two-node.yaml", "tg");
  }
  void TearDown() override { cluster_.reset(); }
  const topology::Layout& l() { return cluster_->layout(); }
  std::string backend() { return datapath::backend_name(GetParam()); }
  CmdResult mode(std::vector<std::string> args) {
    args.insert(args.begin(), "mode");
    args.insert(args.end(), {"--backend", backend()});
    return test::hrbench(args, cluster_->prefix());
  }
  void legacy(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a{"legacy"};
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = mode(a);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  uint64_t masquerade_packets(const std::string& netns) {
    for (const auto& c : datapath::rule_counters(netns, GetParam(), {"IP-MASQ-AGENT"}))
      if (c.spec.find("-j MASQUERADE") != std::string::npos) return c.packets;
    ADD_FAILURE() << "no MASQUERADE rule in IP-MASQ-AGENT of " << netns;
    return 0;
  }
  std::unique_ptr<test::ClusterGuard> cluster_;
};

TEST_P(Legacy, ConnectivityMatrixHoldsAndPodToPodKeepsThePodSource) {
  legacy();
  for (const auto* a : l().pods())
    for (const auto* b : l().pods()) {
      if (a == b) continue;
      for (Proto p : {Proto::kTcp, Proto::kUdp}) {
        auto r = traffic::reach({p, a->netns, b->netns, b->ip});
        EXPECT_TRUE(r.ok) << a->name << " -> " << b->name << ": " << r.error;
        EXPECT_EQ(r.peer_seen, a->ip) << "pod-to-pod must not be masqueraded";
      }
    }
}

TEST_P(Legacy, PodToExternalIsMasqueradedToTheNodeIp) {
  legacy();
  const auto& ext = l().externals[0];
  for (const auto* a : l().pods())
    for (Proto p : {Proto::kTcp, Proto::kUdp}) {
      auto r = traffic::reach({p, a->netns, ext.netns, ext.address});
      ASSERT_TRUE(r.ok) << a->name << ": " << r.error;
      EXPECT_EQ(r.peer_seen, l().nodes[a->node].underlay_ip) << a->name;
    }
}

TEST_P(Legacy, NonMasqueradeCidrsAreHonoured) {
  legacy({"--masq-config", test::masq_fixture("good-external-not-masqueraded.json")});
  const auto* a = l().pods()[0];
  const auto& ext = l().externals[0];
  auto r = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.peer_seen, a->ip) << "192.168.200.0/24 is a nonMasqueradeCIDR in this config";
}

TEST_P(Legacy, MasqueradeCounterRisesByTheConnectionsSent) {
  legacy();
  const auto* a = l().nodes[1].pods[0].netns.empty() ? nullptr : &l().nodes[1].pods[0];
  ASSERT_TRUE(a);
  const auto& node = l().nodes[1].netns;
  const auto& ext = l().externals[0];
  uint64_t before = masquerade_packets(node);
  const int n = 7;
  for (int i = 0; i < n; ++i) {
    auto r = traffic::reach({i % 2 ? Proto::kUdp : Proto::kTcp, a->netns, ext.netns, ext.address});
    ASSERT_TRUE(r.ok) << r.error;
  }
  // nat rules see the first packet of each connection (conntrack NEW), so: exactly one per flow.
  EXPECT_EQ(masquerade_packets(node) - before, static_cast<uint64_t>(n));
  EXPECT_GT(datapath::conntrack_count(node), 0u);
  EXPECT_EQ(masquerade_packets(l().nodes[0].netns), 0u) << "node1 carried none of it";
}

TEST_P(Legacy, ClusterIpReachesAnEndpoint) {
  legacy({"--services", "6", "--endpoints-per-service", "1"});
  for (int i = 0; i < 6; ++i) {
    auto eps = datapath::service_endpoints(l(), i, 1);
    ASSERT_EQ(eps.size(), 1u);
    const auto* client = l().pods()[(i + 1) % l().pods().size()];
    traffic::ReachSpec s{Proto::kTcp, client->netns, eps[0].netns, datapath::service_ip(l(), i),
                         datapath::kServiceTargetPort};
    s.dst_port = datapath::kServicePort;
    auto r = traffic::reach(s);
    EXPECT_TRUE(r.ok) << "svc-" << i << " " << datapath::service_ip(l(), i).str() << ":80 from "
                      << client->name << " to " << eps[0].name << ": " << r.error;
  }
}

TEST_P(Legacy, SwitchingBackAndForthLeavesIdenticalStateAndRemoveRestoresTheNode) {
  std::vector<std::string> before;
  for (const auto& n : l().nodes) before.push_back(datapath::netns_snapshot(n.netns));
  legacy({"--services", "20", "--endpoints-per-service", "2"});
  std::vector<std::string> applied;
  for (const auto& n : l().nodes) applied.push_back(datapath::netns_snapshot(n.netns));
  EXPECT_NE(applied[0], before[0]) << "legacy mode installed nothing?";
  ASSERT_EQ(mode({"none"}).status, 0);
  for (size_t i = 0; i < l().nodes.size(); ++i)
    EXPECT_EQ(datapath::netns_snapshot(l().nodes[i].netns), before[i])
        << "removing legacy mode did not restore " << l().nodes[i].name;
  legacy({"--services", "20", "--endpoints-per-service", "2"});
  for (size_t i = 0; i < l().nodes.size(); ++i)
    EXPECT_EQ(datapath::netns_snapshot(l().nodes[i].netns), applied[i]);
  // legacy -> ebpf -> legacy: the same rule sets again.
  ASSERT_EQ(mode({"ebpf", "--services", "20", "--endpoints-per-service", "2"}).status, 0);
  legacy({"--services", "20", "--endpoints-per-service", "2"});
  for (size_t i = 0; i < l().nodes.size(); ++i)
    EXPECT_EQ(datapath::netns_snapshot(l().nodes[i].netns), applied[i])
        << "legacy -> ebpf -> legacy changed " << l().nodes[i].name;
}

TEST_P(Legacy, BadMasqConfigChangesNothing) {
  legacy();
  auto snap = datapath::netns_snapshot(l().nodes[0].netns);
  auto mode_before = test::hrbench({"mode"}, cluster_->prefix()).out;
  for (const char* f :
       {"bad-cidr.yaml", "bad-unknown-key.yaml", "bad-wrong-type.yaml", "bad-not-a-list.json"}) {
    auto r = mode({"legacy", "--masq-config", test::masq_fixture(f), "--services", "5"});
    EXPECT_EQ(r.status, static_cast<int>(ExitCode::kBadInput)) << f << ": " << r.err;
    EXPECT_NE(r.err.find(test::masq_fixture(f) + ":"), std::string::npos) << r.err;
    EXPECT_EQ(datapath::netns_snapshot(l().nodes[0].netns), snap) << f << " changed the rules";
    EXPECT_EQ(test::hrbench({"mode"}, cluster_->prefix()).out, mode_before);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Legacy, ::testing::Values(Backend::kNft, Backend::kLegacy),
                         [](const auto& info) { return datapath::backend_name(info.param); });

}  // namespace
