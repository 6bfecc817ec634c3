// The cluster from two-node.yaml: every pod reaches every other pod (same node and cross node)
// and the external host over TCP and UDP with real sockets; `down` leaves nothing behind.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/netns.hpp"
#include "support/cluster_fixture.hpp"
#include "topology/state.hpp"
#include "traffic/reach.hpp"

using namespace hrb;
using hrb::traffic::Proto;

namespace {

class TwoNode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    root_veths_before_ = new std::vector<std::string>(test::root_veths());
    cluster_ = new test::ClusterGuard("topologies/two-node.yaml", "tc");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete root_veths_before_;
  }
  void SetUp() override { HRB_REQUIRE_ROOT(); }
  static test::ClusterGuard* cluster_;
  static std::vector<std::string>* root_veths_before_;
};
test::ClusterGuard* TwoNode::cluster_ = nullptr;
std::vector<std::string>* TwoNode::root_veths_before_ = nullptr;

TEST_F(TwoNode, EveryPodReachesEveryPodOverTcpAndUdp) {
  const auto& l = cluster_->layout();
  int pairs = 0;
  for (const auto* a : l.pods())
    for (const auto* b : l.pods()) {
      if (a == b) continue;
      for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
        auto r = traffic::reach({proto, a->netns, b->netns, b->ip});
        EXPECT_TRUE(r.ok) << traffic::proto_name(proto) << " " << a->name << " -> " << b->name
                          << ": " << r.error;
        // Plain routing: no translation, the server sees the pod's own address.
        EXPECT_EQ(r.peer_seen, a->ip) << a->name << " -> " << b->name;
        ++pairs;
      }
    }
  EXPECT_EQ(pairs, 4 * 3 * 2);
}

TEST_F(TwoNode, EveryPodReachesTheExternalHost) {
  const auto& l = cluster_->layout();
  const auto& ext = l.externals.at(0);
  for (const auto* a : l.pods())
    for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
      auto r = traffic::reach({proto, a->netns, ext.netns, ext.address});
      EXPECT_TRUE(r.ok) << traffic::proto_name(proto) << " " << a->name << " -> ext: " << r.error;
    }
}

TEST_F(TwoNode, NodesReachEachOtherOnTheUnderlay) {
  const auto& l = cluster_->layout();
  auto r =
      traffic::reach({Proto::kTcp, l.nodes[0].netns, l.nodes[1].netns, l.nodes[1].underlay_ip});
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.peer_seen, l.nodes[0].underlay_ip);
}

TEST_F(TwoNode, UnknownDestinationFailsCleanly) {
  // Negative control: an address nobody has is not reachable (and stays inside our netns: the
  // nodes' default route leads to the external host, which does not forward).
  const auto& l = cluster_->layout();
  auto r = traffic::reach({Proto::kTcp, l.pods()[0]->netns, l.externals[0].netns,
                           *Ipv4::parse("10.244.0.200"), 0, 300});
  EXPECT_FALSE(r.ok);
}

TEST_F(TwoNode, NodeForwardingIsOnAndRootIsUntouched) {
  const auto& l = cluster_->layout();
  EXPECT_EQ(read_sysctl_in(l.nodes[0].netns, "net.ipv4.ip_forward"), "1");
  EXPECT_EQ(read_sysctl_in(l.pods()[0]->netns, "net.ipv4.ip_forward"), "0");
  EXPECT_EQ(test::root_veths(), *root_veths_before_) << "a veth appeared in the root netns";
}

TEST(TwoNodeDown, LeavesNoNamespacesLinksOrState) {
  HRB_REQUIRE_ROOT();
  auto before = test::root_veths();
  std::string prefix;
  {
    test::ClusterGuard c("topologies/two-node.yaml", "td");
    prefix = c.prefix();
    EXPECT_EQ(test::netns_with_prefix(prefix).size(), 8u);
    EXPECT_TRUE(std::filesystem::exists(topology::StateDir(prefix).path() + "/journal"));
    auto st = test::hrbench({"status", "--json"}, prefix);
    EXPECT_EQ(st.status, 0) << st.err;
    EXPECT_NE(st.out.find("\"complete\": true"), std::string::npos) << st.out;
  }
  EXPECT_TRUE(test::netns_with_prefix(prefix).empty());
  EXPECT_FALSE(std::filesystem::exists(topology::StateDir(prefix).path()));
  EXPECT_EQ(test::root_veths(), before);
  auto st = test::hrbench({"status"}, prefix);
  EXPECT_EQ(st.status, static_cast<int>(ExitCode::kNotFound));
}

}  // namespace
