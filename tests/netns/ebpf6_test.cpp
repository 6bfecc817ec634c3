// IPv6 in the BPF datapath on a live dual-stack cluster (topologies/dual-stack.yaml), with real
// sockets across real namespaces: in ebpf mode IPv6 pod traffic is routed by from_pod6 and
// from_uplink6 (the IPv6 redirect counters rise) while no ip6tables rule counts a packet,
// pod-to-external is NAT66-masqueraded to the node's IPv6 address in BPF, and IPv6 ClusterIPs
// are load-balanced in BPF, in ebpf and in bpf-lb mode; NodePort on a node's IPv6 address is
// served by from_uplink6 in ebpf mode (bpf/lib/nodeport6.h). Every check runs twice: on the
// dual-stack cluster (Ebpf6) and on a single-stack IPv6 one (Ebpf6Only, topologies/ipv6.yaml),
// which also shows that no member has an IPv4 address and no iptables (IPv4) rule exists.
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "core/fd.hpp"
#include "core/pins.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/reach.hpp"

#include "hrb_abi.h"

using namespace hrb;
using traffic::Proto;

namespace {

// The checks, on the cluster of Suite (its kTopology has IPv6: family dual or ipv6).
template <typename Suite>
class Ipv6Checks : public test::SuiteCluster<Suite> {
 protected:
  void SetUp() override { HRB_REQUIRE_ROOT(); }
  const topology::Layout& l() { return this->cluster_->layout(); }
  void mode(std::vector<std::string> args) {
    args.insert(args.begin(), "mode");
    auto r = test::hrbench(args, this->cluster_->prefix());
    ASSERT_EQ(r.status, 0) << r.err;
  }
  // Reason counter r summed over every node and both programs.
  uint64_t total(int r) {
    uint64_t n = 0;
    for (const auto& [node, progs] : datapath::read_counters(l()))
      for (const auto& [prog, c] : progs) n += c[r];
    return n;
  }
  std::map<std::string, uint64_t> ip6_rules() {
    return test::iptables_rule_packets(l(), Family::kIpv6);
  }
  void pod_traffic_is_routed_in_bpf();
  void pod_to_external_is_masqueraded();
  void cluster_ips_are_load_balanced();
  void node_port_reaches_local_and_remote_backends();
};

class Ebpf6 : public Ipv6Checks<Ebpf6> {
 public:
  static constexpr const char* kTopology = "topologies/dual-stack.yaml";
  static constexpr const char* kTag = "t6";
};

class Ebpf6Only : public Ipv6Checks<Ebpf6Only> {
 public:
  static constexpr const char* kTopology = "topologies/ipv6.yaml";
  static constexpr const char* kTag = "o6";
};

template <typename Suite>
void Ipv6Checks<Suite>::pod_traffic_is_routed_in_bpf() {
  mode({"ebpf", "--services", "4"});
  ASSERT_GT(ip6_rules().size(), 20u) << "kube-proxy's and ip-masq-agent's IPv6 rules are there";
  const auto before = ip6_rules();
  const uint64_t peer = total(HRB_R_REDIRECT_PEER6);
  const uint64_t fib = total(HRB_R_REDIRECT_FIB6) + total(HRB_R_REDIRECT_NEIGH6);
  const uint64_t v4 = total(HRB_R_REDIRECT_PEER);
  for (const auto* a : l().pods())
    for (const auto* b : l().pods()) {
      if (a == b) continue;
      for (Proto p : {Proto::kTcp, Proto::kUdp}) {
        auto r = traffic::reach({p, a->netns, b->netns, b->ip6});
        EXPECT_TRUE(r.ok) << a->name << " -> " << b->name << " " << traffic::proto_name(p) << ": "
                          << r.error;
        EXPECT_EQ(r.peer_seen6, a->ip6) << a->name << " -> " << b->name << ": not masqueraded";
      }
    }
  EXPECT_GT(total(HRB_R_REDIRECT_PEER6), peer) << "delivered into the pods by redirect_peer";
  EXPECT_GT(total(HRB_R_REDIRECT_FIB6) + total(HRB_R_REDIRECT_NEIGH6), fib)
      << "sent to the other node after an IPv6 FIB lookup";
  EXPECT_EQ(total(HRB_R_REDIRECT_PEER), v4) << "no IPv4 path counted IPv6 traffic";
  EXPECT_EQ(test::moved_chain_rules(before, ip6_rules()), "")
      << "an ip6tables rule counted a packet";
}

// NAT66: the external host sees the node's IPv6 address, the replies come back through
// from_uplink's reverse translation, and ip6tables' MASQUERADE rule stays at zero.
template <typename Suite>
void Ipv6Checks<Suite>::pod_to_external_is_masqueraded() {
  mode({"ebpf"});
  const auto& ext = l().externals[0];
  const auto before = ip6_rules();
  const uint64_t masq = total(HRB_R_MASQ_NEW), revnat = total(HRB_R_REVNAT_HIT);
  for (const auto* a : l().pods()) {
    const auto& node = l().nodes[a->node];
    for (Proto p : {Proto::kTcp, Proto::kUdp}) {
      auto r = traffic::reach({p, a->netns, ext.netns, ext.address6});
      ASSERT_TRUE(r.ok) << a->name << " " << traffic::proto_name(p) << ": " << r.error;
      EXPECT_EQ(r.peer_seen6, node.underlay_ip6) << a->name << " " << traffic::proto_name(p);
    }
  }
  EXPECT_GE(total(HRB_R_MASQ_NEW) - masq, 8u) << "a NAT66 mapping per connection";
  EXPECT_GT(total(HRB_R_REVNAT_HIT), revnat) << "replies translated back in from_uplink";
  EXPECT_EQ(test::moved_chain_rules(before, ip6_rules()), "")
      << "an ip6tables rule counted a packet";
}

// IPv6 ClusterIPs, load-balanced in BPF: in ebpf mode (host routing) and in bpf-lb (the stack
// routes after the DNAT), from a pod on each node to a backend on each node.
template <typename Suite>
void Ipv6Checks<Suite>::cluster_ips_are_load_balanced() {
  for (const char* m : {"ebpf", "bpf-lb"}) {
    mode({m, "--services", "4", "--endpoints-per-service", "1"});
    const auto before = ip6_rules();
    const uint64_t lb = total(HRB_R_LB_NEW), rev = total(HRB_R_LB_REVERSE);
    int reached = 0;
    for (int i = 0; i < 4; ++i) {
      const auto ep = datapath::service_endpoints(l(), i, 1)[0];
      for (const auto* client : l().pods()) {
        if (client->name == ep.name) continue;
        for (Proto p : {Proto::kTcp, Proto::kUdp}) {
          traffic::ReachSpec s{p, client->netns, ep.netns, datapath::service_ip6(l(), i),
                               datapath::kServiceTargetPort};
          s.dst_port = datapath::kServicePort;
          auto r = traffic::reach(s);
          EXPECT_TRUE(r.ok) << m << ": " << client->name << " -> svc-" << i << " ["
                            << datapath::service_ip6(l(), i).str() << "] (" << ep.name
                            << "): " << r.error;
          reached += r.ok;
        }
      }
    }
    EXPECT_EQ(reached, 4 * 3 * 2) << m;
    EXPECT_GE(total(HRB_R_LB_NEW) - lb, 24u) << m << ": a backend chosen per connection";
    EXPECT_GT(total(HRB_R_LB_REVERSE), rev) << m << ": replies get the service address back";
    const std::string moved = test::moved_rules(before, ip6_rules());
    EXPECT_EQ(moved.find("DNAT"), std::string::npos)
        << m << ": kube-proxy's IPv6 DNAT rules were bypassed, yet:\n"
        << moved;
  }
}

// NodePort over IPv6 in ebpf mode: ext1 connects to node1's IPv6 underlay address at each
// service's NodePort, TCP and UDP; a backend on node1 sees ext1's address (DNAT only), one on
// node2 sees node1's (DNAT + SNAT, its reply translated back in from_uplink6); no ip6tables rule
// (kube-proxy's IPv6 NodePort chains are installed underneath) counts a packet.
template <typename Suite>
void Ipv6Checks<Suite>::node_port_reaches_local_and_remote_backends() {
  mode({"ebpf", "--services", "4", "--endpoints-per-service", "1"});
  const auto& ext = l().externals[0];
  const auto& node1 = l().nodes[0];
  const auto before = ip6_rules();
  const uint64_t np_new = total(HRB_R_NODEPORT_NEW), replies = total(HRB_R_NODEPORT_REPLY);
  const uint64_t to_stack = total(HRB_R_NODEPORT_TO_STACK) + total(HRB_R_NODEPORT_REPLY_MISS);
  int local = 0, remote = 0;
  for (int i = 0; i < 4; ++i) {  // one endpoint each: services 0, 1 on node1, 2, 3 on node2
    const auto ep = datapath::service_endpoints(l(), i, 1)[0];
    for (Proto p : {Proto::kTcp, Proto::kUdp}) {
      traffic::ReachSpec s{p, ext.netns, ep.netns, node1.underlay_ip6,
                           datapath::kServiceTargetPort};
      s.dst_port = *datapath::node_port(i);
      auto r = traffic::reach(s);
      EXPECT_TRUE(r.ok) << "ext1 -> [" << node1.underlay_ip6.str() << "]:" << s.dst_port << " "
                        << traffic::proto_name(p) << " (backend " << ep.name << "): " << r.error;
      if (!r.ok) continue;
      if (ep.node == 0)
        EXPECT_EQ(r.peer_seen6, ext.underlay_ip6) << ep.name << ": a local backend sees ext1";
      else
        EXPECT_EQ(r.peer_seen6, node1.underlay_ip6) << ep.name << ": SNAT to node1's IPv6";
      (ep.node == 0 ? local : remote)++;
    }
  }
  EXPECT_EQ(local, 4);
  EXPECT_EQ(remote, 4);
  EXPECT_GE(total(HRB_R_NODEPORT_NEW) - np_new, 8u) << "a backend chosen in BPF per connection";
  EXPECT_GT(total(HRB_R_NODEPORT_REPLY), replies) << "remote replies translated back in BPF";
  EXPECT_EQ(total(HRB_R_NODEPORT_TO_STACK) + total(HRB_R_NODEPORT_REPLY_MISS), to_stack);
  EXPECT_EQ(test::moved_chain_rules(before, ip6_rules()), "")
      << "an ip6tables rule counted a packet; BPF counters: "
      << datapath::counters_json(l()).dump();
}

TEST_F(Ebpf6, PodTrafficIsRoutedInBpfAndNoIp6tablesRuleCountsIt) { pod_traffic_is_routed_in_bpf(); }
TEST_F(Ebpf6, PodToExternalIsMasqueradedToTheNodeIpv6InBpf) { pod_to_external_is_masqueraded(); }
TEST_F(Ebpf6, Ipv6ClusterIpsAreLoadBalancedInBpf) { cluster_ips_are_load_balanced(); }
TEST_F(Ebpf6, Ipv6NodePortReachesLocalAndRemoteBackendsInBpf) {
  node_port_reaches_local_and_remote_backends();
}

// An IPv6 nonMasqueradeCIDR (the IP Masquerade Agent's list, both families in one) keeps the
// pod's source, in BPF as in ip6tables.
TEST_F(Ebpf6, Ipv6NonMasqueradeCidrsKeepThePodSource) {
  mode({"ebpf", "--masq-config", test::masq_fixture("good-external-v6-not-masqueraded.yaml")});
  const auto* a = l().pods()[0];
  const auto& ext = l().externals[0];
  auto r = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address6});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.peer_seen6, a->ip6) << "fd00:192:168:200::/64 is a nonMasqueradeCIDR here";
  auto r4 = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address});
  ASSERT_TRUE(r4.ok) << r4.error;
  EXPECT_EQ(r4.peer_seen, l().nodes[0].underlay_ip) << "192.168.200.10 is still masqueraded";
}

// The IP Masquerade Agent in ebpf mode swaps the IPv6 exclusions as it does the IPv4 ones: a
// config whose nonMasqueradeCIDRs take in ext1's IPv6 prefix keeps the pod's IPv6 source from
// the next connection on, with no mode switch — the same tcx links and programs, only the trie
// behind nonmasq6_active replaced — and ip6tables' IP-MASQ-AGENT chain (bypassed) follows too; a
// bad file changes nothing; the default file masquerades again.
TEST_F(Ebpf6, MasqAgentSwapsTheIpv6ExclusionsWithoutReloading) {
  mode({"ebpf"});
  const auto* a = l().pods()[0];
  const auto& ext = l().externals[0];
  const auto& node = l().nodes[a->node];
  auto seen6 = [&]() -> std::string {
    auto r = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address6});
    return r.ok ? r.peer_seen6.str() : "unreachable: " + r.error;
  };
  auto seen4 = [&]() -> std::string {
    auto r = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address});
    return r.ok ? r.peer_seen.str() : "unreachable: " + r.error;
  };
  auto agent = [&](const std::string& config) {
    return test::hrbench({"masq-agent", "--once", "--config", config}, cluster_->prefix());
  };
  // The id of the IPv6 trie the programs read now (the outer map's one slot, on every node).
  auto active_tries = [&] {
    std::vector<uint32_t> ids;
    for (const auto& n : l().nodes) {
      Fd outer(bpf_obj_get(pins::map(cluster_->prefix(), n.name, "nonmasq6_active").c_str()));
      uint32_t zero = 0, id = 0;
      if (outer) bpf_map_lookup_elem(outer.get(), &zero, &id);
      ids.push_back(id);
    }
    return ids;
  };
  auto ip6_chain = [&] {
    return datapath::save(node.netns, datapath::Backend::kNft, false, Family::kIpv6);
  };
  const std::string ext_prefix = "fd00:192:168:200::/64";
  const auto links = test::pinned_links(cluster_->prefix());
  ASSERT_FALSE(links.empty()) << "ebpf mode's tcx links are pinned";
  const auto tries = active_tries();
  ASSERT_EQ(std::count(tries.begin(), tries.end(), 0u), 0) << "every node has an IPv6 trie";

  EXPECT_EQ(seen6(), node.underlay_ip6.str()) << "the default config masquerades ext1's IPv6";
  auto r = agent(test::masq_fixture("good-external-v6-not-masqueraded.yaml"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("and 4 IPv6 ones"), std::string::npos) << r.err;  // fe80::/10 + 3
  EXPECT_EQ(seen6(), a->ip6.str()) << ext_prefix << " became a nonMasqueradeCIDR";
  EXPECT_EQ(seen4(), node.underlay_ip.str()) << "192.168.200.10 is still masqueraded";
  EXPECT_NE(ip6_chain().find(ext_prefix), std::string::npos) << ip6_chain();
  const auto swapped = active_tries();
  for (size_t i = 0; i < tries.size(); ++i)
    EXPECT_NE(swapped[i], tries[i]) << l().nodes[i].name << ": its IPv6 trie was not swapped";

  // A bad file (an IPv6 CIDR with host bits) is refused, naming it, and changes nothing.
  const std::string bad = test::masq_fixture("bad-ipv6-cidr.yaml");
  r = agent(bad);
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  EXPECT_EQ(active_tries(), swapped) << "a bad file swapped a trie";
  EXPECT_EQ(seen6(), a->ip6.str()) << "a bad file changed the IPv6 exclusions";
  EXPECT_NE(ip6_chain().find(ext_prefix), std::string::npos) << ip6_chain();

  r = agent(test::source_path("topologies/ip-masq-agent.yaml"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(seen6(), node.underlay_ip6.str()) << "masqueraded again";
  EXPECT_EQ(ip6_chain().find(ext_prefix), std::string::npos) << ip6_chain();
  EXPECT_EQ(test::pinned_links(cluster_->prefix()), links)
      << "a program was reloaded or re-attached: the agent must only swap the tries";
}

// Single-stack IPv6 (topologies/ipv6.yaml): the same checks, and the cluster really has no
// IPv4 — no member has an IPv4 address besides loopback's, and no iptables (IPv4) rule exists
// in legacy or in ebpf mode (kube-proxy's and ip-masq-agent's rules are ip6tables' only).
TEST_F(Ebpf6Only, NoMemberHasAnIpv4AddressAndNoIptablesRuleExists) {
  for (const auto& ns : l().all_netns()) {
    std::istringstream out(run_cmd({"ip", "-4", "-o", "addr", "show"}, {.netns = ns}).out);
    for (std::string line; std::getline(out, line);)
      EXPECT_NE(line.find(" lo "), std::string::npos) << ns << ": " << line;
  }
  for (const char* m : {"legacy", "ebpf"}) {
    mode({m, "--services", "4"});
    EXPECT_EQ(test::iptables_rule_packets(l(), Family::kIpv4).size(), 0u) << m;
    EXPECT_GT(ip6_rules().size(), 20u) << m;
  }
}
// Legacy mode on the single-stack IPv6 cluster: ip6tables masquerades pod-to-external
// (ip-masq-agent's MASQUERADE counts) and DNATs a ClusterIP (kube-proxy's KUBE-SEP DNAT counts).
TEST_F(Ebpf6Only, LegacyMasqueradesAndLoadBalancesThroughIp6tables) {
  mode({"legacy", "--services", "4", "--endpoints-per-service", "1"});
  const auto before = ip6_rules();
  const auto* a = &l().nodes[0].pods.at(0);
  const auto& ext = l().externals[0];
  auto r = traffic::reach({Proto::kTcp, a->netns, ext.netns, ext.address6});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.peer_seen6, l().nodes[0].underlay_ip6) << "masqueraded to node1's IPv6";
  const auto ep = datapath::service_endpoints(l(), 2, 1)[0];  // on node2
  traffic::ReachSpec s{Proto::kTcp, a->netns, ep.netns, datapath::service_ip6(l(), 2),
                       datapath::kServiceTargetPort};
  s.dst_port = datapath::kServicePort;
  auto rs = traffic::reach(s);
  ASSERT_TRUE(rs.ok) << rs.error;
  EXPECT_EQ(rs.peer_seen6, a->ip6) << "a ClusterIP keeps the pod's source";
  const std::string moved = test::moved_rules(before, ip6_rules());
  EXPECT_NE(moved.find("-j MASQUERADE"), std::string::npos) << moved;
  EXPECT_NE(moved.find("DNAT --to-destination [" + ep.ip6.str() + "]"), std::string::npos) << moved;
}

TEST_F(Ebpf6Only, PodTrafficIsRoutedInBpfAndNoIp6tablesRuleCountsIt) {
  pod_traffic_is_routed_in_bpf();
}
TEST_F(Ebpf6Only, PodToExternalIsMasqueradedToTheNodeIpv6InBpf) {
  pod_to_external_is_masqueraded();
}
TEST_F(Ebpf6Only, Ipv6ClusterIpsAreLoadBalancedInBpf) { cluster_ips_are_load_balanced(); }
TEST_F(Ebpf6Only, Ipv6NodePortReachesLocalAndRemoteBackendsInBpf) {
  node_port_reaches_local_and_remote_backends();
}

}  // namespace
