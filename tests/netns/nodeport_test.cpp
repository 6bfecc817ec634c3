// NodePort from the external host, with real sockets across real namespaces: ext1 connects to
// node1's IP at each service's NodePort (TCP and UDP) and is answered by the backend — on node2
// and on node1 itself — in legacy mode (kube-proxy's KUBE-NODEPORTS/KUBE-EXT chains), bpf-lb
// (the same chains: bpf-lb leaves NodePort to kube-proxy, docs/datapath.md) and ebpf mode
// (from_uplink, bpf/lib/nodeport.h), where no rule of kube-proxy's chains in a node netns moves.
#include <gtest/gtest.h>

#include "datapath/ebpf.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/reach.hpp"

#include "hrb_abi.h"

using namespace hrb;
using traffic::Proto;

namespace {

class NodePortNetns : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    cluster_ = new test::ClusterGuard("topologies/two-node.yaml", "tn");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { HRB_REQUIRE_ROOT(); }
  static const topology::Layout& l() { return cluster_->layout(); }
  void mode(const std::string& m, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"mode", m};
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = test::hrbench(a, cluster_->prefix());
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static test::ClusterGuard* cluster_;
};
test::ClusterGuard* NodePortNetns::cluster_ = nullptr;

TEST_P(NodePortNetns, TheExternalHostReachesLocalAndRemoteBackends) {
  const std::string m = GetParam();
  mode(m, {"--services", "4"});
  const auto& ext = l().externals[0];
  const auto& node1 = l().nodes[0];
  const auto before = test::iptables_rule_packets(l());
  int local = 0, remote = 0;
  for (int i = 0; i < 4; ++i) {  // one endpoint each: services 0, 1 on node1, 2, 3 on node2
    const auto ep = datapath::service_endpoints(l(), i, 1)[0];
    for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
      traffic::ReachSpec s{proto, ext.netns, ep.netns, node1.underlay_ip,
                           datapath::kServiceTargetPort};
      s.dst_port = *datapath::node_port(i);
      auto r = traffic::reach(s);
      EXPECT_TRUE(r.ok) << m << ": ext1 -> " << node1.underlay_ip.str() << ":" << s.dst_port << " "
                        << traffic::proto_name(proto) << " (backend " << ep.name
                        << "): " << r.error;
      if (!r.ok) continue;
      // externalTrafficPolicy Cluster: kube-proxy masquerades every NodePort connection (to a
      // local backend with an address MASQUERADE picks for the lxc device); the BPF datapath
      // SNATs only towards another node, as Cilium does.
      const bool on_node2 = ep.node == 1;
      if (on_node2)
        EXPECT_EQ(r.peer_seen, node1.underlay_ip) << m << " " << ep.name << ": SNAT to node1";
      else if (m == "ebpf")
        EXPECT_EQ(r.peer_seen, ext.underlay_ip) << ep.name << ": a local backend sees the client";
      else
        EXPECT_NE(r.peer_seen, ext.underlay_ip) << m << " " << ep.name << ": masqueraded";
      (ep.node == 0 ? local : remote)++;
    }
  }
  EXPECT_EQ(local, 4);
  EXPECT_EQ(remote, 4);
  if (m == "ebpf") {
    EXPECT_EQ(test::moved_chain_rules(before, test::iptables_rule_packets(l())), "")
        << "an iptables rule counted a packet; BPF counters: "
        << datapath::counters_json(l()).dump();
    uint64_t nodeport_new = 0, replies = 0, to_stack = 0;
    for (const auto& [node, progs] : datapath::read_counters(l()))
      for (const auto& [prog, c] : progs) {
        nodeport_new += c[HRB_R_NODEPORT_NEW];
        replies += c[HRB_R_NODEPORT_REPLY];
        to_stack += c[HRB_R_NODEPORT_TO_STACK] + c[HRB_R_NODEPORT_REPLY_MISS];
      }
    EXPECT_GE(nodeport_new, 8u);
    EXPECT_GT(replies, 0u);
    EXPECT_EQ(to_stack, 0u);
  } else {
    EXPECT_NE(test::moved_chain_rules(before, test::iptables_rule_packets(l())), "")
        << "kube-proxy's NodePort rules translated the connections";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, NodePortNetns, ::testing::Values("legacy", "bpf-lb", "ebpf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
