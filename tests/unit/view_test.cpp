// What `hrbench status` prints of a cluster, on the planned two-node layout (no netns needed:
// which namespaces are present is given).
#include <gtest/gtest.h>

#include "topology/view.hpp"

using namespace hrb::topology;

namespace {

Layout two_node() {
  return plan(parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/two-node.yaml"), "tst");
}

bool all_but_node2_pod2(const std::string& ns) { return ns != "tst-node2-pod2"; }

}  // namespace

TEST(ClusterView, TableOfTwoNode) {
  EXPECT_EQ(
      to_table(two_node(), true, all_but_node2_pod2),
      "cluster 'two-node' (prefix tst, up), fabric netns tst-fabric\n"
      "  name             kind     address          netns                details\n"
      "  node1            node     172.18.0.1       tst-node1            podCIDR 10.244.0.0/24 "
      "router 10.244.0.1\n"
      "  node1-pod1       pod      10.244.0.2       tst-node1-pod1       lxc1 on node1\n"
      "  node1-pod2       pod      10.244.0.3       tst-node1-pod2       lxc2 on node1\n"
      "  node2            node     172.18.0.2       tst-node2            podCIDR 10.244.1.0/24 "
      "router 10.244.1.1\n"
      "  node2-pod1       pod      10.244.1.2       tst-node2-pod1       lxc1 on node2\n"
      "  node2-pod2       pod      10.244.1.3       tst-node2-pod2       lxc2 on node2  "
      "(MISSING)\n"
      "  ext1             external 192.168.200.10   tst-ext1             underlay "
      "172.18.0.254\n");
}

TEST(ClusterView, IncompleteAndMissingFabricAreShown) {
  auto t = to_table(two_node(), false, [](const std::string&) { return false; });
  EXPECT_EQ(t.substr(0, t.find('\n')),
            "cluster 'two-node' (prefix tst, INCOMPLETE: run hrbench clean), fabric netns "
            "tst-fabric  (MISSING)");
}

TEST(ClusterView, JsonOfTwoNode) {
  auto j = to_json(two_node(), true, all_but_node2_pod2);
  EXPECT_EQ(j["name"], "two-node");
  EXPECT_EQ(j["prefix"], "tst");
  EXPECT_EQ(j["complete"], true);
  EXPECT_EQ(j["fabricNetns"], "tst-fabric");
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][1]["podCIDR"], "10.244.1.0/24");
  EXPECT_EQ(j["nodes"][1]["routerIP"], "10.244.1.1");
  EXPECT_EQ(j["nodes"][1]["present"], true);
  ASSERT_EQ(j["nodes"][1]["pods"].size(), 2u);
  EXPECT_EQ(j["nodes"][1]["pods"][1], (nlohmann::json{{"name", "node2-pod2"},
                                                      {"ip", "10.244.1.3"},
                                                      {"netns", "tst-node2-pod2"},
                                                      {"lxc", "lxc2"},
                                                      {"present", false}}));
  ASSERT_EQ(j["externalHosts"].size(), 1u);
  EXPECT_EQ(j["externalHosts"][0]["address"], "192.168.200.10");
  EXPECT_EQ(j["externalHosts"][0]["underlayIP"], "172.18.0.254");
}

TEST(ClusterView, DualStackShowsEveryIpv6Address) {
  auto l =
      plan(parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/dual-stack.yaml"), "tst");
  const auto table = to_table(l, true, [](const std::string&) { return true; });
  // Each member's IPv6 address on the line under its IPv4 one.
  for (const char* line :
       {"  node1            node     172.18.0.1       tst-node1            podCIDR 10.244.0.0/24 "
        "router 10.244.0.1\n"
        "                            fd00:172:18::1 podCIDR fd00:10:244::/64 router "
        "fd00:10:244::1\n",
        "  node2-pod2       pod      10.244.1.3       tst-node2-pod2       lxc2 on node2\n"
        "                            fd00:10:244:1::3\n",
        "  ext1             external 192.168.200.10   tst-ext1             underlay "
        "172.18.0.254\n"
        "                            fd00:192:168:200::10 underlay fd00:172:18::fe\n"})
    EXPECT_NE(table.find(line), std::string::npos) << "no\n" << line << "in\n" << table;
  auto j = to_json(l, true, [](const std::string&) { return true; });
  EXPECT_EQ(j["family"], "dual");
  EXPECT_EQ(j["nodes"][1]["underlayIPv6"], "fd00:172:18::2");
  EXPECT_EQ(j["nodes"][1]["podCIDRv6"], "fd00:10:244:1::/64");
  EXPECT_EQ(j["nodes"][1]["routerIPv6"], "fd00:10:244:1::1");
  EXPECT_EQ(j["nodes"][1]["pods"][0]["ipv6"], "fd00:10:244:1::2");
  EXPECT_EQ(j["externalHosts"][0]["addressv6"], "fd00:192:168:200::10");
  EXPECT_EQ(j["externalHosts"][0]["underlayIPv6"], "fd00:172:18::fe");
  // An IPv4 cluster's JSON has no IPv6 keys.
  auto j4 = to_json(two_node(), true, all_but_node2_pod2);
  EXPECT_EQ(j4["family"], "ipv4");
  EXPECT_FALSE(j4["nodes"][0].contains("underlayIPv6"));
  EXPECT_FALSE(j4["nodes"][0]["pods"][0].contains("ipv6"));
}

// Single-stack IPv6: the IPv6 address in the address column, no IPv4 key in the JSON.
TEST(ClusterView, SingleStackIpv6ShowsTheIpv6AddressesOnly) {
  auto l = plan(parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/ipv6.yaml"), "tst");
  const auto table = to_table(l, true, [](const std::string&) { return true; });
  for (const char* line :
       {"  node1            node     fd00:172:18::1   tst-node1            podCIDR "
        "fd00:10:244::/64 router fd00:10:244::1\n",
        "  node2-pod2       pod      fd00:10:244:1::3 tst-node2-pod2       lxc2 on node2\n"})
    EXPECT_NE(table.find(line), std::string::npos) << "no\n" << line << "in\n" << table;
  EXPECT_EQ(table.find("0.0.0.0"), std::string::npos) << table;
  auto j = to_json(l, true, [](const std::string&) { return true; });
  EXPECT_EQ(j["family"], "ipv6");
  EXPECT_EQ(j["nodes"][1]["pods"][0]["ipv6"], "fd00:10:244:1::2");
  EXPECT_FALSE(j["nodes"][1]["pods"][0].contains("ip"));
  EXPECT_FALSE(j["nodes"][0].contains("underlayIP"));
  EXPECT_FALSE(j["nodes"][0].contains("podCIDR"));
  EXPECT_FALSE(j["externalHosts"][0].contains("address"));
  EXPECT_EQ(j["externalHosts"][0]["addressv6"], "fd00:192:168:200::10");
}
