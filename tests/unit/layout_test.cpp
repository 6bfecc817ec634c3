#include <gtest/gtest.h>

#include <set>

#include "topology/layout.hpp"

using namespace hrb::topology;

namespace {
Layout two_node(const std::string& prefix = "hrb") {
  return plan(parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/two-node.yaml"), prefix);
}
}  // namespace

TEST(Layout, NamesAndAddressesOfTwoNode) {
  auto l = two_node("tst");
  EXPECT_EQ(l.fabric_netns, "tst-fabric");
  ASSERT_EQ(l.nodes.size(), 2u);
  EXPECT_EQ(l.nodes[0].netns, "tst-node1");
  EXPECT_EQ(l.nodes[0].underlay_ip.str(), "172.18.0.1");
  EXPECT_EQ(l.nodes[1].underlay_ip.str(), "172.18.0.2");
  EXPECT_EQ(l.nodes[0].router_ip.str(), "10.244.0.1");
  ASSERT_EQ(l.nodes[1].pods.size(), 2u);
  EXPECT_EQ(l.nodes[1].pods[1].name, "node2-pod2");
  EXPECT_EQ(l.nodes[1].pods[1].netns, "tst-node2-pod2");
  EXPECT_EQ(l.nodes[1].pods[1].lxc, "lxc2");
  EXPECT_EQ(l.nodes[1].pods[1].ip.str(), "10.244.1.3");
  ASSERT_EQ(l.externals.size(), 1u);
  EXPECT_EQ(l.externals[0].underlay_ip.str(), "172.18.0.254");
  EXPECT_EQ(l.all_netns().size(), 8u);
}

TEST(Layout, EveryNetnsCarriesThePrefixAndIsUnique) {
  auto l =
      plan(parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/scale-8x16.yaml"), "abc");
  std::set<std::string> seen;
  for (const auto& ns : l.all_netns()) {
    EXPECT_TRUE(l.owns_netns(ns)) << ns;
    EXPECT_TRUE(seen.insert(ns).second) << "duplicate " << ns;
  }
  EXPECT_EQ(seen.size(), 1u + 8 + 128 + 1);
  for (const auto* p : l.pods()) EXPECT_LE(p->lxc.size(), 15u);  // IFNAMSIZ - 1
}

TEST(Layout, FindResolvesEveryKind) {
  auto l = two_node();
  EXPECT_EQ(l.find("node2")->netns, "hrb-node2");
  EXPECT_EQ(l.find("node1-pod2")->ip.str(), "10.244.0.3");
  EXPECT_EQ(l.find("ext1")->ip.str(), "192.168.200.10");
  EXPECT_EQ(l.find("fabric")->netns, "hrb-fabric");
  EXPECT_FALSE(l.find("node3"));
}

TEST(Layout, IPv4OnlyTopologiesHaveNoIPv6) {
  auto l = two_node();
  EXPECT_FALSE(l.dual());
  EXPECT_TRUE(l.nodes[0].pods[0].ip6.is_zero());
  EXPECT_TRUE(l.nodes[0].underlay_ip6.is_zero());
  EXPECT_TRUE(l.find("node1-pod1")->ip6.is_zero());
}

TEST(Layout, AddressesOfDualStack) {
  auto l =
      plan(parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/dual-stack.yaml"), "tst");
  ASSERT_TRUE(l.dual());
  ASSERT_EQ(l.nodes.size(), 2u);
  // The IPv4 rules as for two-node.yaml …
  EXPECT_EQ(l.nodes[1].pods[1].ip.str(), "10.244.1.3");
  // … and their IPv6 counterparts: node i's /64, router ::1, pods from ::2, underlay ::(i+1).
  EXPECT_EQ(l.nodes[0].underlay_ip6.str(), "fd00:172:18::1");
  EXPECT_EQ(l.nodes[1].underlay_ip6.str(), "fd00:172:18::2");
  EXPECT_EQ(l.nodes[0].pod_cidr6.str(), "fd00:10:244::/64");
  EXPECT_EQ(l.nodes[1].pod_cidr6.str(), "fd00:10:244:1::/64");
  EXPECT_EQ(l.nodes[0].router_ip6.str(), "fd00:10:244::1");
  EXPECT_EQ(l.nodes[1].router_ip6.str(), "fd00:10:244:1::1");
  EXPECT_EQ(l.nodes[0].pods[0].ip6.str(), "fd00:10:244::2");
  EXPECT_EQ(l.nodes[1].pods[1].ip6.str(), "fd00:10:244:1::3");
  ASSERT_EQ(l.externals.size(), 1u);
  EXPECT_EQ(l.externals[0].underlay_ip6.str(), "fd00:172:18::fe");
  EXPECT_EQ(l.externals[0].address6.str(), "fd00:192:168:200::10");
  for (const auto* p : l.pods()) EXPECT_TRUE(l.nodes[p->node].pod_cidr6.contains(p->ip6));
  EXPECT_EQ(l.find("node2-pod1")->ip6.str(), "fd00:10:244:1::2");
  EXPECT_EQ(l.find("node2")->ip6.str(), "fd00:172:18::2");
  EXPECT_EQ(l.find("ext1")->ip6.str(), "fd00:192:168:200::10");
}

// family: ipv6: the IPv6 addresses of dual-stack.yaml, every IPv4 field zero.
TEST(Layout, SingleStackIpv6HasTheDualStackIpv6AddressesAndNoIpv4) {
  const std::string dir = std::string(HRB_SOURCE_DIR) + "/topologies/";
  auto l = plan(parse_spec_file(dir + "ipv6.yaml"), "tst");
  auto d = plan(parse_spec_file(dir + "dual-stack.yaml"), "tst");
  EXPECT_FALSE(l.has_ipv4());
  EXPECT_TRUE(l.has_ipv6());
  EXPECT_TRUE(l.has(hrb::Family::kIpv6));
  EXPECT_FALSE(l.has(hrb::Family::kIpv4));
  ASSERT_EQ(l.nodes.size(), d.nodes.size());
  for (size_t i = 0; i < l.nodes.size(); ++i) {
    EXPECT_EQ(l.nodes[i].underlay_ip6, d.nodes[i].underlay_ip6);
    EXPECT_EQ(l.nodes[i].router_ip6, d.nodes[i].router_ip6);
    EXPECT_EQ(l.nodes[i].underlay_ip, hrb::Ipv4{});
    EXPECT_EQ(l.nodes[i].router_ip, hrb::Ipv4{});
    EXPECT_EQ(l.nodes[i].pod_cidr.len, 0);
    for (size_t j = 0; j < l.nodes[i].pods.size(); ++j) {
      EXPECT_EQ(l.nodes[i].pods[j].ip6, d.nodes[i].pods[j].ip6);
      EXPECT_EQ(l.nodes[i].pods[j].ip, hrb::Ipv4{});
    }
  }
  EXPECT_EQ(l.externals.at(0).address6, d.externals.at(0).address6);
  EXPECT_EQ(l.externals.at(0).underlay_ip6, d.externals.at(0).underlay_ip6);
  EXPECT_EQ(l.externals.at(0).address, hrb::Ipv4{});
  EXPECT_EQ(l.find("node2-pod1")->ip6.str(), "fd00:10:244:1::2");
  EXPECT_EQ(l.find("node2-pod1")->ip, hrb::Ipv4{});
}

TEST(Layout, PrefixRules) {
  EXPECT_TRUE(valid_prefix("hrb"));
  EXPECT_TRUE(valid_prefix("t123x4"));
  EXPECT_FALSE(valid_prefix(""));
  EXPECT_FALSE(valid_prefix("Hrb"));
  EXPECT_FALSE(valid_prefix("a-b"));
  EXPECT_FALSE(valid_prefix("abcdefghijklm"));
  EXPECT_THROW(two_node("bad prefix"), hrb::Error);
}
