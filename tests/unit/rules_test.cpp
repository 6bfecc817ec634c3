// The rules legacy mode installs, as text: checked without a kernel.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "datapath/legacy.hpp"
#include "run/run.hpp"
#include "topology/layout.hpp"

using namespace hrb;
using namespace hrb::datapath;

namespace {
topology::Layout two_node() {
  return topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/two-node.yaml"), "hrb");
}
std::vector<Rule> in_chain(const RuleSet& rs, const std::string& chain) {
  std::vector<Rule> v;
  for (const auto& r : rs.rules)
    if (r.chain == chain) v.push_back(r);
  return v;
}
}  // namespace

TEST(MasqRules, ReturnPerCidrThenMasqueradeLast) {
  auto cfg = default_masq_config();
  auto rs = masq_agent_rules(cfg);
  auto chain = in_chain(rs, "IP-MASQ-AGENT");
  ASSERT_EQ(chain.size(), cfg.non_masquerade.size() + 2);  // + link-local + MASQUERADE
  EXPECT_NE(chain.front().spec.find("-d 169.254.0.0/16"), std::string::npos);
  for (size_t i = 0; i + 1 < chain.size(); ++i)
    EXPECT_NE(chain[i].spec.find("-j RETURN"), std::string::npos) << chain[i].spec;
  EXPECT_NE(chain.back().spec.find("-j MASQUERADE"), std::string::npos);
  auto post = in_chain(rs, "POSTROUTING");
  ASSERT_EQ(post.size(), 1u);
  EXPECT_NE(post[0].spec.find("! --dst-type LOCAL -j IP-MASQ-AGENT"), std::string::npos);
}

TEST(KubeProxyRules, ChainsPerServiceAndEndpoint) {
  auto l = two_node();
  auto rs = kube_proxy_rules(l, 100, 3);
  std::set<std::string> chains(rs.chains["nat"].begin(), rs.chains["nat"].end());
  EXPECT_EQ(chains.size(), rs.chains["nat"].size()) << "chain name collision";
  auto svcs = in_chain(rs, "KUBE-SERVICES");
  // One per service and port (TCP 80, then UDP 80) + the nodeports rule, which must be last.
  ASSERT_EQ(svcs.size(), 201u);
  EXPECT_NE(svcs.back().spec.find("KUBE-NODEPORTS"), std::string::npos);
  // Service 7: three endpoints picked with probabilities 1/3, 1/2, then the rest.
  const std::string svc7 = svcs[7].spec.substr(svcs[7].spec.rfind(' ') + 1);
  auto picks = in_chain(rs, svc7);
  ASSERT_EQ(picks.size(), 4u);  // MARK-MASQ for off-cluster sources + 3 endpoints
  EXPECT_NE(picks[1].spec.find("--probability 0.33333333333"), std::string::npos);
  EXPECT_NE(picks[2].spec.find("--probability 0.50000000000"), std::string::npos);
  EXPECT_EQ(picks[3].spec.find("--probability"), std::string::npos);
  EXPECT_NE(svcs[7].spec.find("-d " + service_ip(l, 7).str() + "/32"), std::string::npos);
  for (const auto& c : rs.chains["nat"]) EXPECT_LE(c.size(), 28u) << c;  // xtables name limit
  auto fwd = in_chain(rs, "KUBE-FORWARD");
  ASSERT_FALSE(fwd.empty());
  EXPECT_NE(fwd[0].spec.find("--ctstate INVALID -j DROP"), std::string::npos);
}

TEST(KubeProxyRules, UdpPortBesideTcp) {
  auto l = two_node();
  auto rs = kube_proxy_rules(l, 100, 3);
  auto svcs = in_chain(rs, "KUBE-SERVICES");
  ASSERT_EQ(svcs.size(), 201u);
  EXPECT_NE(svcs[7].spec.find("-p tcp"), std::string::npos) << svcs[7].spec;
  EXPECT_NE(svcs[7].spec.find("-m tcp --dport 80 "), std::string::npos) << svcs[7].spec;
  const auto& udp7 = svcs[100 + 7].spec;
  EXPECT_NE(udp7.find("-d " + service_ip(l, 7).str() + "/32 -p udp"), std::string::npos) << udp7;
  EXPECT_NE(udp7.find("-m udp --dport 80 -j " + kube_svc_chain(7, service_ports()[1])),
            std::string::npos)
      << udp7;
  // Its endpoints: the same pods as TCP's, DNAT to targetPort 8080 over UDP.
  const auto ends = service_endpoints(l, 7, 3);
  ASSERT_EQ(ends.size(), 3u);
  for (const auto& ep : ends) {
    auto sep = in_chain(rs, kube_sep_chain(7, service_ports()[1], ep));
    ASSERT_EQ(sep.size(), 2u);
    EXPECT_NE(sep[1].spec.find("-p udp"), std::string::npos) << sep[1].spec;
    EXPECT_NE(sep[1].spec.find("-m udp -j DNAT --to-destination " + ep.ip.str() + ":8080"),
              std::string::npos)
        << sep[1].spec;
    EXPECT_EQ(in_chain(rs, kube_sep_chain(7, service_ports()[0], ep)).size(), 2u);
  }
}

TEST(KubeProxyRules, CountPerServicePortAndEndpoint) {
  // 12 fixed rules; per service and port: the KUBE-SERVICES match, the SVC chain's MARK-MASQ,
  // and per endpoint its pick and the SEP chain's two rules; per service and port with a
  // NodePort (the first 2,768 services): the KUBE-NODEPORTS match and the EXT chain's two.
  auto l = two_node();
  for (int eps : {1, 2, 3})
    EXPECT_EQ(kube_proxy_rules(l, 1000, eps).size(),
              12u + 1000u * service_ports().size() * (2 + 3 * eps + 3))
        << eps;
  EXPECT_EQ(kube_proxy_rules(l, 3000, 1).size(),
            12u + 3000u * service_ports().size() * 5 + 2768u * service_ports().size() * 3);
  EXPECT_EQ(service_ports().size(), 2u);
}

// kube-proxy's large-cluster mode: above 1,000 endpoint chains (counted per service port) the
// KUBE-SVC -> KUBE-SEP picks and the KUBE-SEP rules carry no comment; every other rule keeps its.
TEST(KubeProxyRules, LargeClusterModeDropsTheEndpointRulesComments) {
  auto l = two_node();
  auto endpoint_rules_with_comments = [](const RuleSet& rs) {
    size_t with = 0, sep = 0;
    for (const auto& r : rs.rules) {
      const bool endpoint_rule =
          r.chain.rfind("KUBE-SEP-", 0) == 0 ||
          (r.chain.rfind("KUBE-SVC-", 0) == 0 && r.spec.find("-j KUBE-SEP-") != std::string::npos);
      if (!endpoint_rule) continue;
      ++sep;
      if (r.spec.find("-m comment") != std::string::npos) ++with;
    }
    return std::pair{with, sep};
  };
  // 250 services x 2 ports x 2 endpoints = 1,000 chains: still commented.
  auto [with_small, all_small] = endpoint_rules_with_comments(kube_proxy_rules(l, 250, 2));
  EXPECT_EQ(all_small, 250u * 2 * 2 * 3);
  EXPECT_EQ(with_small, all_small);
  // 251 x 2 x 2 = 1,004: none of them is; the services' own rules still are.
  const auto large = kube_proxy_rules(l, 251, 2);
  auto [with_large, all_large] = endpoint_rules_with_comments(large);
  EXPECT_EQ(all_large, 251u * 2 * 2 * 3);
  EXPECT_EQ(with_large, 0u);
  for (const auto& r : in_chain(large, "KUBE-SERVICES"))
    EXPECT_NE(r.spec.find("-m comment"), std::string::npos) << r.spec;
  EXPECT_EQ(large.size(), 12u + 251u * service_ports().size() * (2 + 3 * 2 + 3));  // no rule less
}

TEST(KubeProxyRules, NodePortsGoThroughExtChainsToTheService) {
  auto l = two_node();
  auto rs = kube_proxy_rules(l, 3000, 2);
  auto nodeports = in_chain(rs, "KUBE-NODEPORTS");
  ASSERT_EQ(nodeports.size(), 2u * 2768u) << "TCP and UDP of the first 2,768 services";
  for (size_t p = 0; p < service_ports().size(); ++p) {
    const auto& sp = service_ports()[p];
    const auto& r = nodeports[p * 2768 + 7];
    EXPECT_EQ(r.spec, std::string("-p ") + sp.protocol +
                          " -m comment --comment \"default/svc-7:" + sp.name + "\" -m " +
                          sp.protocol + " --dport 30007 -j " + kube_ext_chain(7, sp));
    auto ext = in_chain(rs, kube_ext_chain(7, sp));
    ASSERT_EQ(ext.size(), 2u);
    EXPECT_NE(ext[0].spec.find("external destinations\" -j KUBE-MARK-MASQ"), std::string::npos)
        << ext[0].spec;
    EXPECT_EQ(ext[1].spec, "-j " + kube_svc_chain(7, sp));
    // The same hash as the service's chain, as kube-proxy names them.
    EXPECT_EQ(kube_ext_chain(7, sp).substr(9), kube_svc_chain(7, sp).substr(9));
  }
  EXPECT_TRUE(in_chain(rs, kube_ext_chain(2768, service_ports()[0])).empty());
  EXPECT_EQ(node_port(0), 30000);
  EXPECT_EQ(node_port(2767), 32767);
  EXPECT_FALSE(node_port(2768));
  // The masquerade mark is honoured in POSTROUTING (MASQUERADE to the node IP).
  auto post = in_chain(rs, "KUBE-POSTROUTING");
  ASSERT_EQ(post.size(), 3u);
  EXPECT_NE(post[2].spec.find("-j MASQUERADE"), std::string::npos);
}

TEST(PodService, ServiceWithEveryEndpointOnNode2) {
  auto l = two_node();  // 2 nodes x 2 pods: endpoint k of service i is pod (i * eps + k) % 4
  EXPECT_EQ(run::pod_service_index(l, 1), 2);
  EXPECT_EQ(run::pod_service_index(l, 2), 1);
  EXPECT_EQ(run::pod_service_index(l, 3), -1);  // node2 has 2 pods
  for (int eps : {1, 2})
    for (const auto& ep : service_endpoints(l, run::pod_service_index(l, eps), eps))
      EXPECT_EQ(ep.node, 1) << ep.name;
  auto big = topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/scale-8x16.yaml"),
      "hrb");
  for (int eps : {1, 3, 16}) {
    const int i = run::pod_service_index(big, eps);
    ASSERT_GE(i, 0) << eps;
    for (const auto& ep : service_endpoints(big, i, eps)) EXPECT_EQ(ep.node, 1) << ep.name;
  }
}

TEST(KubeProxyRules, NoServicesNoRules) {
  EXPECT_EQ(kube_proxy_rules(two_node(), 0, 1).size(), 0u);
}

TEST(RuleSet, RemoveUndoesApply) {
  RuleSet rs;
  rs.chains["nat"] = {"B-CHAIN", "A-CHAIN"};
  rs.rules = {{"nat", "POSTROUTING", "-j A-CHAIN"}, {"nat", "A-CHAIN", "-j RETURN"}};
  EXPECT_EQ(rs.restore_apply(),
            "*nat\n:A-CHAIN - [0:0]\n:B-CHAIN - [0:0]\n-A POSTROUTING -j A-CHAIN\n"
            "-A A-CHAIN -j RETURN\nCOMMIT\n");
  EXPECT_EQ(rs.restore_remove(),
            "*nat\n-D POSTROUTING -j A-CHAIN\n-F A-CHAIN\n-F B-CHAIN\n-X A-CHAIN\n-X B-CHAIN\n"
            "COMMIT\n");
}

namespace {
topology::Layout ipv6_only() {
  return topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/ipv6.yaml"), "tst");
}

topology::Layout dual_stack() {
  return topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/dual-stack.yaml"),
      "hrb");
}
}  // namespace

TEST(KubeProxyRules, Ipv6ChainsMirrorIpv4OnADualStackCluster) {
  auto l = dual_stack();
  auto v4 = kube_proxy_rules(l, 100, 3);
  auto v6 = kube_proxy_rules(l, 100, 3, Family::kIpv6);
  // The same structure: as many rules, the same SVC chains (each family has its own tables).
  EXPECT_EQ(v6.size(), v4.size());
  EXPECT_EQ(in_chain(v6, "KUBE-SERVICES").size(), 201u);
  EXPECT_EQ(service_ip6(l, 7).str(), "fd00:10:96::8");
  const auto svcs = in_chain(v6, "KUBE-SERVICES");
  EXPECT_NE(svcs[7].spec.find("-d fd00:10:96::8/128 -p tcp"), std::string::npos) << svcs[7].spec;
  EXPECT_NE(svcs[7].spec.find("-j " + kube_svc_chain(7, service_ports()[0])), std::string::npos);
  auto picks = in_chain(v6, kube_svc_chain(7, service_ports()[0]));
  ASSERT_EQ(picks.size(), 4u);
  EXPECT_NE(picks[0].spec.find("! -s fd00:10:244::/56 -d fd00:10:96::8/128"), std::string::npos)
      << picks[0].spec;
  for (const auto& ep : service_endpoints(l, 7, 3)) {
    // The endpoint's chain is named from its IPv6 host:port, so it differs from IPv4's.
    EXPECT_NE(kube_sep_chain(7, service_ports()[0], ep, Family::kIpv6),
              kube_sep_chain(7, service_ports()[0], ep));
    auto sep = in_chain(v6, kube_sep_chain(7, service_ports()[0], ep, Family::kIpv6));
    ASSERT_EQ(sep.size(), 2u);
    EXPECT_NE(sep[0].spec.find("-s " + ep.ip6.str() + "/128 "), std::string::npos) << sep[0].spec;
    EXPECT_NE(sep[1].spec.find("-j DNAT --to-destination [" + ep.ip6.str() + "]:8080"),
              std::string::npos)
        << sep[1].spec;
  }
  // No IPv4 text in the IPv6 rules.
  const std::regex v4_addr(R"(\b\d+\.\d+\.\d+\.\d+\b)");
  for (const auto& r : v6.rules) EXPECT_FALSE(std::regex_search(r.spec, v4_addr)) << r.spec;
  // An IPv4-only cluster has no IPv6 rules.
  EXPECT_EQ(kube_proxy_rules(two_node(), 100, 3, Family::kIpv6).size(), 0u);
}

TEST(MasqRules, Ipv6ChainAsTheAgentWritesIt) {
  auto cfg = parse_masq_config_string("nonMasqueradeCIDRs: [10.244.0.0/16, 'fd00:10:244::/56']\n",
                                      "x.yaml");
  auto rs = masq_agent_rules(cfg, Family::kIpv6);
  auto chain = in_chain(rs, "IP-MASQ-AGENT");
  ASSERT_EQ(chain.size(), 3u);  // fe80::/10, the IPv6 CIDR, MASQUERADE
  EXPECT_NE(chain[0].spec.find("-d fe80::/10 "), std::string::npos) << chain[0].spec;
  EXPECT_NE(chain[1].spec.find("-d fd00:10:244::/56 "), std::string::npos) << chain[1].spec;
  EXPECT_NE(chain[2].spec.find("-j MASQUERADE"), std::string::npos);
  ASSERT_EQ(in_chain(rs, "POSTROUTING").size(), 1u);
  // masqLinkLocalIPv6: no fe80::/10 RETURN; the IPv4 chain is unchanged by IPv6 entries.
  cfg.masq_link_local_ipv6 = true;
  EXPECT_EQ(in_chain(masq_agent_rules(cfg, Family::kIpv6), "IP-MASQ-AGENT").size(), 2u);
  EXPECT_EQ(in_chain(masq_agent_rules(cfg), "IP-MASQ-AGENT").size(), 3u);  // 169.254/16, 10.244/16
}

TEST(LegacyMode, FamiliesOfTheCluster) {
  EXPECT_EQ(LegacyMode::families(two_node()), std::vector<Family>{Family::kIpv4});
  EXPECT_EQ(LegacyMode::families(dual_stack()),
            (std::vector<Family>{Family::kIpv4, Family::kIpv6}));
  EXPECT_EQ(LegacyMode::families(ipv6_only()), std::vector<Family>{Family::kIpv6});
}

// Single-stack IPv6: kube-proxy's and ip-masq-agent's IPv6 rules (those of the dual-stack
// cluster, whose IPv6 addressing is the same), and no IPv4 rule at all.
TEST(LegacyMode, SingleStackIpv6InstallsOnlyTheIpv6Rules) {
  ModeOptions o;
  o.services = 3;
  LegacyMode m(o, MasqConfig{});
  EXPECT_EQ(m.rules(ipv6_only(), Family::kIpv4).size(), 0u);
  EXPECT_EQ(kube_proxy_rules(ipv6_only(), 3, 1, Family::kIpv4).size(), 0u);
  const auto v6 = m.rules(ipv6_only(), Family::kIpv6);
  EXPECT_GT(v6.size(), 20u);
  EXPECT_EQ(v6.restore_apply(), m.rules(dual_stack(), Family::kIpv6).restore_apply());
  EXPECT_EQ(v6.restore_apply().find("10.244."), std::string::npos);
  EXPECT_NE(v6.restore_apply().find("fd00:10:96::1/128"), std::string::npos);
}
