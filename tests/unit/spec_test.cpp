#include <gtest/gtest.h>

#include <set>

#include "topology/spec.hpp"

using namespace hrb::topology;

namespace {
std::string src(const std::string& rel) { return std::string(HRB_SOURCE_DIR) + "/" + rel; }
}  // namespace

TEST(Spec, ShippedTopologiesAreValid) {
  for (const char* f : {"two-node.yaml", "single-node.yaml", "scale-8x16.yaml"}) {
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
        BadCase{"missing-key.yaml", 1, 1, "clusterCIDR", "required key is missing"}),
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
