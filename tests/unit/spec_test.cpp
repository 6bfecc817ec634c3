#include <gtest/gtest.h>

#include <map>
#include <set>

#include "topology/spec.hpp"

using namespace hrb::topology;

namespace {
std::string src(const std::string& rel) { return std::string(HRB_SOURCE_DIR) + "/" + rel; }
// A rejection's messages by key (the last one of a key).
std::map<std::string, std::string> by_key(const SpecError& e) {
  std::map<std::string, std::string> m;
  for (const auto& d : e.diagnostics()) m[d.key] = d.message;
  return m;
}
}  // namespace

TEST(Spec, ShippedTopologiesAreValid) {
  for (const char* f :
       {"two-node.yaml", "single-node.yaml", "scale-8x16.yaml", "dual-stack.yaml", "ipv6.yaml"}) {
    EXPECT_NO_THROW(parse_spec_file(src(std::string("topologies/") + f))) << f;
  }
  auto s = parse_spec_file(src("topologies/two-node.yaml"));
  EXPECT_EQ(s.name, "two-node");
  EXPECT_EQ(s.node_count, 2);
  EXPECT_EQ(s.pods_per_node, 2);
  ASSERT_EQ(s.pod_cidrs.size(), 2u);
  EXPECT_EQ(s.pod_cidrs[0].str(), "10.244.0.0/24");
  EXPECT_EQ(s.pod_cidrs[1].str(), "10.244.1.0/24");
  ASSERT_EQ(s.externals.size(), 1u);
  EXPECT_EQ(s.externals[0].address.str(), "192.168.200.10");
  EXPECT_EQ(s.node_sysctls.at("net.ipv4.conf.all.rp_filter"), "0");
}

struct BadCase {
  const char* fixture;
  int line;
  int column;
  const char* key;
  const char* message_part;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.fixture; }

class SpecRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(SpecRejects, WithFileLineKeyAndReason) {
  const BadCase& c = GetParam();
  const std::string path = src(std::string("tests/fixtures/topologies/") + c.fixture);
  try {
    parse_spec_file(path);
    FAIL() << c.fixture << " was accepted";
  } catch (const SpecError& e) {
    ASSERT_FALSE(e.diagnostics().empty());
    bool found = false;
    for (const auto& d : e.diagnostics()) {
      if (d.line == c.line && d.key == c.key &&
          d.message.find(c.message_part) != std::string::npos) {
        EXPECT_EQ(d.file, path);
        if (c.column) {
          EXPECT_EQ(d.column, c.column) << d.str();
        }
        found = true;
      }
    }
    EXPECT_TRUE(found) << "wanted line " << c.line << " key '" << c.key << "' with '"
                       << c.message_part << "', got:\n"
                       << e.what();
    EXPECT_EQ(e.code(), hrb::ExitCode::kBadInput);
    // The rendered message names file:line:column.
    EXPECT_NE(std::string(e.what()).find(path + ":" + std::to_string(c.line) + ":"),
              std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, SpecRejects,
    ::testing::Values(
        BadCase{"unknown-key.yaml", 6, 3, "nodes.podsPerNod", "unknown key"},
        BadCase{"bad-cidr.yaml", 2, 14, "clusterCIDR", "prefix length '33'"},
        BadCase{"overlapping-cidrs.yaml", 3, 14, "serviceCIDR", "overlaps clusterCIDR"},
        BadCase{"podcidr-outside.yaml", 9, 7, "nodes.podCIDRs[1]", "outside clusterCIDR"},
        BadCase{"overlapping-podcidrs.yaml", 7, 0, "nodes.podCIDRs[1]",
                "overlaps nodes.podCIDRs[0]"},
        BadCase{"too-many-pods.yaml", 6, 16, "nodes.podsPerNode", "20 pods do not fit"},
        BadCase{"duplicate-names.yaml", 12, 11, "externalHosts[1].name", "duplicate name 'ext1'"},
        BadCase{"negative-count.yaml", 5, 10, "nodes.count", "-1 is out of range"},
        BadCase{"yaml-syntax.yaml", 3, 0, "", "YAML syntax error"},
        BadCase{"missing-key.yaml", 1, 1, "clusterCIDR", "required key is missing"},
        // Dual stack (family: dual): the IPv6 keys are checked like the IPv4 ones.
        BadCase{"v6-key-without-dual.yaml", 4, 16, "clusterCIDRv6", "set family: dual"},
        BadCase{"dual-missing-v6.yaml", 11, 0, "underlay.cidrv6",
                "required key is missing (family: dual)"},
        BadCase{"dual-bad-v6-cidr.yaml", 4, 16, "clusterCIDRv6", "host bits are set"},
        BadCase{"dual-overlapping-v6.yaml", 6, 16, "serviceCIDRv6", "overlaps clusterCIDRv6"},
        BadCase{"dual-external-inside.yaml", 16, 16, "externalHosts.ext1.addressv6",
                "is inside underlay.cidrv6"},
        BadCase{"dual-too-many-nodes.yaml", 4, 16, "clusterCIDRv6",
                "3 nodes do not fit: fd00:10:244::/63 holds only 2 /64 pod prefixes"},
        // Single-stack IPv6: an IPv4 key is refused where it stands.
        BadCase{"family-ipv6.yaml", 3, 14, "clusterCIDR",
                "is for IPv4: the cluster is family: ipv6"}),
    [](const auto& info) {
      std::string n = info.param.fixture;
      n = n.substr(0, n.find('.'));
      for (auto& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

TEST(Spec, ReportsEveryProblemAtOnce) {
  const std::string yaml =
      "name: Bad_Name\n"
      "clusterCIDR: 10.244.0.1/16\n"
      "serviceCIDR: nope\n"
      "nodes: {count: 0, podsPerNode: 2}\n"
      "underlay: {cidr: 172.18.0.0/24, kind: vxlan, mtu: 10}\n"
      "colour: blue\n";
  try {
    parse_spec_string(yaml, "inline.yaml");
    FAIL();
  } catch (const SpecError& e) {
    std::set<std::string> keys;
    for (const auto& d : e.diagnostics()) keys.insert(d.key);
    for (const char* k : {"name", "clusterCIDR", "serviceCIDR", "nodes.count", "underlay.kind",
                          "underlay.mtu", "colour"})
      EXPECT_TRUE(keys.count(k)) << "no diagnostic for " << k << " in:\n" << e.what();
  }
}

TEST(Spec, MissingFileIsBadInput) {
  try {
    parse_spec_file("/nonexistent/topology.yaml");
    FAIL();
  } catch (const hrb::Error& e) {
    EXPECT_EQ(e.code(), hrb::ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/topology.yaml"), std::string::npos);
  }
}

TEST(Spec, ExternalAddressMustBeOutsideTheCluster) {
  const std::string yaml =
      "name: x\nclusterCIDR: 10.244.0.0/16\nserviceCIDR: 10.96.0.0/16\n"
      "nodes: {count: 1, podsPerNode: 1}\nunderlay: {cidr: 172.18.0.0/24}\n"
      "externalHosts: [{name: ext1, address: 10.244.9.9}]\n";
  try {
    parse_spec_string(yaml, "x.yaml");
    FAIL() << "an external address inside clusterCIDR was accepted";
  } catch (const SpecError& e) {
    EXPECT_EQ(e.code(), hrb::ExitCode::kBadInput);
    ASSERT_EQ(e.diagnostics().size(), 1u) << e.what();
    const auto& d = e.diagnostics()[0];
    EXPECT_EQ(d.file, "x.yaml");
    EXPECT_EQ(d.key, "externalHosts.ext1.address");
    EXPECT_EQ(d.line, 6) << "the line of the external host";
    EXPECT_NE(d.message.find("10.244.9.9 is inside clusterCIDR"), std::string::npos) << d.message;
  }
}

TEST(Spec, FamilyDefaultsToIpv4AndDualCarvesAPrefixPerNode) {
  auto v4 = parse_spec_file(src("topologies/two-node.yaml"));
  EXPECT_FALSE(v4.dual());
  EXPECT_TRUE(v4.pod_cidrs6.empty());
  auto s = parse_spec_file(src("topologies/dual-stack.yaml"));
  ASSERT_TRUE(s.dual());
  EXPECT_EQ(s.cluster_cidr6.str(), "fd00:10:244::/56");
  EXPECT_EQ(s.service_cidr6.str(), "fd00:10:96::/112");
  EXPECT_EQ(s.underlay_cidr6.str(), "fd00:172:18::/64");
  ASSERT_EQ(s.pod_cidrs6.size(), 2u);
  EXPECT_EQ(s.pod_cidrs6[0].str(), "fd00:10:244::/64");
  EXPECT_EQ(s.pod_cidrs6[1].str(), "fd00:10:244:1::/64");
  EXPECT_EQ(s.externals.at(0).address6.str(), "fd00:192:168:200::10");
  // The IPv4 half is two-node.yaml's.
  EXPECT_EQ(s.pod_cidrs, v4.pod_cidrs);
  EXPECT_EQ(s.underlay_cidr, v4.underlay_cidr);
  EXPECT_EQ(s.externals.at(0).address, v4.externals.at(0).address);
}

// family: ipv6 — only the IPv6 ranges: no IPv4 pod CIDR, the same /64 per node as dual stack.
TEST(Spec, SingleStackIpv6HasOnlyTheIpv6Ranges) {
  auto s = parse_spec_file(src("topologies/ipv6.yaml"));
  EXPECT_EQ(s.family, StackFamily::kIpv6);
  EXPECT_FALSE(s.has_ipv4());
  EXPECT_TRUE(s.has_ipv6());
  EXPECT_FALSE(s.dual());
  EXPECT_TRUE(s.pod_cidrs.empty());
  EXPECT_EQ(s.cluster_cidr.len, 0);
  EXPECT_EQ(s.cluster_cidr.net, hrb::Ipv4{});
  auto d = parse_spec_file(src("topologies/dual-stack.yaml"));
  EXPECT_EQ(s.pod_cidrs6, d.pod_cidrs6);
  EXPECT_EQ(s.underlay_cidr6, d.underlay_cidr6);
  EXPECT_EQ(s.externals.at(0).address6, d.externals.at(0).address6);
  EXPECT_EQ(s.externals.at(0).address, hrb::Ipv4{});
}

// Every IPv4 key of a family: ipv6 file is named, and so is every missing IPv6 one.
TEST(Spec, SingleStackIpv6RefusesEveryIpv4KeyAndNeedsTheIpv6Ones) {
  const std::string yaml =
      "name: x\nfamily: ipv6\nclusterCIDR: 10.244.0.0/16\nserviceCIDR: 10.96.0.0/16\n"
      "nodes: {count: 1, podsPerNode: 1, podCIDRMaskSize: 24}\n"
      "underlay: {cidr: 172.18.0.0/24, cidrv6: fd00:172:18::/64}\n"
      "externalHosts: [{name: ext1, address: 192.168.200.10, addressv6: fd00:1::10}]\n";
  try {
    parse_spec_string(yaml, "x.yaml");
    FAIL();
  } catch (const SpecError& e) {
    auto messages = by_key(e);
    for (const char* k : {"clusterCIDR", "serviceCIDR", "nodes.podCIDRMaskSize", "underlay.cidr",
                          "externalHosts[0].address"})
      EXPECT_NE(messages[k].find("is for IPv4: the cluster is family: ipv6"), std::string::npos)
          << k << ": " << e.what();
    for (const char* k : {"clusterCIDRv6", "serviceCIDRv6"})
      EXPECT_NE(messages[k].find("required key is missing (family: ipv6)"), std::string::npos)
          << k << ": " << e.what();
    EXPECT_FALSE(messages.count("underlay.cidrv6")) << e.what();
  }
}

TEST(Spec, DualStackProblemsAreAllReported) {
  const std::string yaml =
      "name: x\nfamily: dual\nclusterCIDR: 10.244.0.0/16\nserviceCIDR: 10.96.0.0/16\n"
      "clusterCIDRv6: 10.0.0.0/8\n"
      "serviceCIDRv6: fd00:10::/32\n"
      "nodes: {count: 1, podsPerNode: 1}\nunderlay: {cidr: 172.18.0.0/24, cidrv6: fd00::/121}\n"
      "externalHosts: [{name: ext1, address: 192.168.200.10, addressv6: nope}]\n";
  try {
    parse_spec_string(yaml, "x.yaml");
    FAIL();
  } catch (const SpecError& e) {
    auto messages = by_key(e);
    EXPECT_NE(messages["clusterCIDRv6"].find("'10.0.0.0' is not an IPv6 address"),
              std::string::npos)
        << e.what();
    EXPECT_NE(messages["serviceCIDRv6"].find("/32 is out of range: expected /64 to /124"),
              std::string::npos)
        << e.what();
    EXPECT_NE(messages["underlay.cidrv6"].find("/121 is out of range"), std::string::npos)
        << e.what();
    EXPECT_NE(messages["externalHosts[0].addressv6"].find("'nope' is not an IPv6 address"),
              std::string::npos)
        << e.what();
  }
}
