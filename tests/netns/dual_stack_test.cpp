// Dual stack (topologies/dual-stack.yaml) on a live cluster: the IPv6 the topology assigns, in
// mode none (kernel forwarding, no rules) and in legacy mode (ip6tables with kube-proxy's IPv6
// service chains and ip-masq-agent's IPv6 chain) on both backends, with real sockets.
#include <gtest/gtest.h>

#include "core/netns.hpp"
#include "core/process.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/reach.hpp"

using namespace hrb;
using datapath::Backend;
using traffic::Proto;

namespace {

// One dual-stack cluster for the suite; each test sets the mode it needs with `hrbench mode`.
class DualStack : public test::SuiteCluster<DualStack, ::testing::TestWithParam<Backend>> {
 public:
  static constexpr const char* kTopology = "topologies/dual-stack.yaml";
  static constexpr const char* kTag = "td";

 protected:
  void SetUp() override { HRB_REQUIRE_ROOT(); }
  const topology::Layout& l() { return cluster_->layout(); }
  std::string backend() { return datapath::backend_name(GetParam()); }
  CmdResult mode(std::vector<std::string> args) {
    args.insert(args.begin(), "mode");
    if (args.size() > 1 && args[1] != "none") args.insert(args.end(), {"--backend", backend()});
    return test::hrbench(args, cluster_->prefix());
  }
  void set_mode(const std::vector<std::string>& args) {
    auto r = mode(args);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  traffic::ReachResult reach6(Proto p, const std::string& from, const std::string& to,
                              const Ipv6& dst) {
    return traffic::reach({p, from, to, dst});
  }
  uint64_t ip6_rule_packets(const std::string& netns, const std::string& chain,
                            const std::string& needle) {
    uint64_t n = 0;
    for (const auto& c : datapath::rule_counters(netns, GetParam(), {chain}, Family::kIpv6))
      if (c.spec.find(needle) != std::string::npos) n += c.packets;
    return n;
  }
};

TEST_P(DualStack, StatusShowsTheIpv6OfEveryMember) {
  auto r = test::hrbench({"status", "--json"}, cluster_->prefix());
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["family"], "dual");
  EXPECT_EQ(j["nodes"][1]["pods"][0]["ipv6"], l().nodes[1].pods[0].ip6.str());
  EXPECT_EQ(j["externalHosts"][0]["addressv6"], "fd00:192:168:200::10");
  // What `up` assigned is what the layout says: the pod's address, the node's forwarding.
  auto a = run_cmd({"ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"},
                   {.netns = l().nodes[1].pods[0].netns});
  EXPECT_NE(a.out.find(l().nodes[1].pods[0].ip6.str() + "/128"), std::string::npos) << a.out;
  EXPECT_EQ(read_sysctl_in(l().nodes[0].netns, "net.ipv6.conf.all.forwarding"), "1");
}

// Mode none: the kernel forwards IPv6 on routes alone; nothing is translated.
TEST_P(DualStack, NoneModeRoutesIpv6EverywhereWithTheSourceKept) {
  set_mode({"none"});
  const auto& n1 = l().nodes[0];
  const auto& n2 = l().nodes[1];
  const auto& ext = l().externals[0];
  struct Flow {
    const char* what;
    const topology::PodLayout& from;
    std::string to_netns;
    Ipv6 dst;
  };
  const std::vector<Flow> flows{
      {"same node", n1.pods[0], n1.pods[1].netns, n1.pods[1].ip6},
      {"other node", n1.pods[0], n2.pods[0].netns, n2.pods[0].ip6},
      {"other node, back", n2.pods[1], n1.pods[1].netns, n1.pods[1].ip6},
      {"external", n2.pods[0], ext.netns, ext.address6},
  };
  for (const auto& f : flows)
    for (Proto p : {Proto::kTcp, Proto::kUdp}) {
      auto r = reach6(p, f.from.netns, f.to_netns, f.dst);
      ASSERT_TRUE(r.ok) << f.what << " " << traffic::proto_name(p) << ": " << r.error;
      EXPECT_EQ(r.peer_seen6, f.from.ip6) << f.what << ": mode none translates nothing";
    }
  auto nn = reach6(Proto::kTcp, n1.netns, n2.netns, n2.underlay_ip6);
  EXPECT_TRUE(nn.ok) << "node to node over the IPv6 underlay: " << nn.error;
}

TEST_P(DualStack, LegacyPodToPodKeepsThePodIpv6Source) {
  set_mode({"legacy"});
  for (const auto* a : l().pods())
    for (const auto* b : l().pods()) {
      if (a == b) continue;
      for (Proto p : {Proto::kTcp, Proto::kUdp}) {
        auto r = reach6(p, a->netns, b->netns, b->ip6);
        EXPECT_TRUE(r.ok) << a->name << " -> " << b->name << ": " << r.error;
        EXPECT_EQ(r.peer_seen6, a->ip6) << "pod-to-pod must not be masqueraded";
      }
    }
}

TEST_P(DualStack, LegacyMasqueradesPodToExternalToTheNodeIpv6) {
  set_mode({"legacy"});
  const auto& ext = l().externals[0];
  for (const auto* a : l().pods()) {
    const auto& node = l().nodes[a->node];
    const uint64_t before = ip6_rule_packets(node.netns, "IP-MASQ-AGENT", "-j MASQUERADE");
    for (Proto p : {Proto::kTcp, Proto::kUdp}) {
      auto r = reach6(p, a->netns, ext.netns, ext.address6);
      ASSERT_TRUE(r.ok) << a->name << ": " << r.error;
      EXPECT_EQ(r.peer_seen6, node.underlay_ip6) << a->name << " " << traffic::proto_name(p);
    }
    // One NEW connection each: ip6tables' MASQUERADE rule counted both.
    EXPECT_EQ(ip6_rule_packets(node.netns, "IP-MASQ-AGENT", "-j MASQUERADE") - before, 2u)
        << a->name;
  }
  // IPv4 is masqueraded as before, beside it.
  auto r4 = traffic::reach({Proto::kTcp, l().pods()[0]->netns, ext.netns, ext.address});
  ASSERT_TRUE(r4.ok) << r4.error;
  EXPECT_EQ(r4.peer_seen, l().nodes[0].underlay_ip);
}

TEST_P(DualStack, LegacyHonoursIpv6NonMasqueradeCidrs) {
  set_mode(
      {"legacy", "--masq-config", test::masq_fixture("good-external-v6-not-masqueraded.yaml")});
  const auto* a = l().pods()[0];
  const auto& ext = l().externals[0];
  auto r = reach6(Proto::kTcp, a->netns, ext.netns, ext.address6);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.peer_seen6, a->ip6) << "fd00:192:168:200::/64 is a nonMasqueradeCIDR here";
  auto r4 = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address});
  ASSERT_TRUE(r4.ok) << r4.error;
  EXPECT_EQ(r4.peer_seen, l().nodes[0].underlay_ip) << "192.168.200.10 is still masqueraded";
}

TEST_P(DualStack, LegacyIpv6ClusterIpReachesItsEndpointThroughIp6tables) {
  set_mode({"legacy", "--services", "6", "--endpoints-per-service", "1"});
  for (int i = 0; i < 6; ++i) {
    auto eps = datapath::service_endpoints(l(), i, 1);
    ASSERT_EQ(eps.size(), 1u);
    const auto* client = l().pods()[(i + 1) % l().pods().size()];
    const auto& node = l().nodes[client->node];
    const auto sep =
        datapath::kube_sep_chain(i, datapath::service_ports()[0], eps[0], Family::kIpv6);
    const uint64_t before = ip6_rule_packets(node.netns, sep, "DNAT");
    traffic::ReachSpec s{Proto::kTcp, client->netns, eps[0].netns, datapath::service_ip6(l(), i),
                         datapath::kServiceTargetPort};
    s.dst_port = datapath::kServicePort;
    auto r = traffic::reach(s);
    EXPECT_TRUE(r.ok) << "svc-" << i << " [" << datapath::service_ip6(l(), i).str() << "]:80 from "
                      << client->name << " to " << eps[0].name << ": " << r.error;
    EXPECT_EQ(ip6_rule_packets(node.netns, sep, "DNAT") - before, 1u)
        << "kube-proxy's IPv6 DNAT rule of svc-" << i << " on " << node.name;
  }
}

TEST_P(DualStack, LegacyRulesOfBothFamiliesAreRemovedWithoutATrace) {
  set_mode({"none"});
  std::vector<std::string> before;
  for (const auto& n : l().nodes) before.push_back(datapath::netns_snapshot(n.netns));
  set_mode({"legacy", "--services", "20", "--endpoints-per-service", "2"});
  const std::string v6 = datapath::save(l().nodes[0].netns, GetParam(), false, Family::kIpv6);
  EXPECT_NE(v6.find("KUBE-SERVICES"), std::string::npos) << v6;
  EXPECT_NE(v6.find("IP-MASQ-AGENT"), std::string::npos) << v6;
  EXPECT_NE(v6.find("fd00:10:96::1/128"), std::string::npos) << v6;
  set_mode({"none"});
  for (size_t i = 0; i < l().nodes.size(); ++i)
    EXPECT_EQ(datapath::netns_snapshot(l().nodes[i].netns), before[i])
        << "removing legacy mode did not restore " << l().nodes[i].name;
}

TEST_P(DualStack, PrintRulesShowsBothFamilies) {
  auto r = mode({"legacy", "--print-rules", "--services", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto v6 = r.out.find("# ip6tables-restore input\n");
  ASSERT_NE(v6, std::string::npos) << r.out;
  EXPECT_NE(r.out.substr(0, v6).find("-d 10.96.0.1/32"), std::string::npos);
  EXPECT_NE(r.out.substr(v6).find("-d fd00:10:96::1/128"), std::string::npos);
  EXPECT_NE(r.out.substr(v6).find("-d fe80::/10"), std::string::npos);
  EXPECT_EQ(r.out.substr(v6).find("10.96.0.1"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, DualStack, ::testing::Values(Backend::kNft, Backend::kLegacy),
                         [](const auto& info) { return datapath::backend_name(info.param); });

}  // namespace
