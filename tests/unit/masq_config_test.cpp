#include <gtest/gtest.h>

#include "core/error.hpp"
#include "datapath/masq_config.hpp"

using namespace hrb;
using namespace hrb::datapath;

namespace {
std::string fixture(const std::string& f) {
  return std::string(HRB_SOURCE_DIR) + "/tests/fixtures/masq/" + f;
}
}  // namespace

TEST(MasqConfig, DefaultsAreTheAgents) {
  auto c = default_masq_config();
  EXPECT_FALSE(c.masq_link_local);
  EXPECT_EQ(c.resync_interval_ms, 60000);
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("10.1.2.3")));
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("192.168.200.10")));
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("169.254.1.1")));  // link-local kept by default
  EXPECT_TRUE(c.masquerades(*Ipv4::parse("8.8.8.8")));
}

TEST(MasqConfig, ShippedConfigMasqueradesTheExternalHost) {
  auto c = parse_masq_config_file(std::string(HRB_SOURCE_DIR) + "/topologies/ip-masq-agent.yaml");
  EXPECT_TRUE(c.masquerades(*Ipv4::parse("192.168.200.10")));
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("10.244.1.2")));
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("172.18.0.2")));
}

TEST(MasqConfig, JsonWithEveryKey) {
  auto c = parse_masq_config_file(fixture("good-external-not-masqueraded.json"));
  EXPECT_EQ(c.non_masquerade.size(), 3u);
  EXPECT_TRUE(c.masq_link_local);
  EXPECT_EQ(c.resync_interval_ms, 90000);
  EXPECT_TRUE(c.masquerades(*Ipv4::parse("169.254.1.1")));  // masqLinkLocal: true
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("192.168.200.10")));
  EXPECT_EQ(c.return_cidrs().size(), 3u);  // no link-local RETURN
}

TEST(MasqConfig, EmptyFileMeansDefaults) {
  auto c = parse_masq_config_string("", "empty.yaml");
  EXPECT_EQ(c.non_masquerade, default_non_masquerade_cidrs());
}

TEST(MasqConfig, Durations) {
  EXPECT_EQ(parse_masq_config_string("resyncInterval: 500ms", "x").resync_interval_ms, 500);
  EXPECT_EQ(parse_masq_config_string("resyncInterval: 2m", "x").resync_interval_ms, 120000);
  EXPECT_THROW(parse_masq_config_string("resyncInterval: soon", "x"), Error);
  EXPECT_THROW(parse_masq_config_string("resyncInterval: 0s", "x"), Error);
  EXPECT_EQ(parse_masq_config_string("resyncInterval: 1.5s", "x").resync_interval_ms, 1500);
  EXPECT_EQ(parse_masq_config_string("resyncInterval: 1h0m2s5ms", "x").resync_interval_ms, 3602005);
  for (const char* bad : {"s", "1.s", "10x", "5", "1m30", "-1s", "1e3s", "25h"})
    EXPECT_THROW(parse_masq_config_string(std::string("resyncInterval: ") + bad, "x"), Error)
        << bad;
}

struct BadMasq {
  const char* file;
  const char* key;
  const char* where;  // ":line:col"
};
void PrintTo(const BadMasq& b, std::ostream* os) { *os << b.file; }
class MasqRejects : public ::testing::TestWithParam<BadMasq> {};

TEST_P(MasqRejects, NamingFileLineAndKey) {
  const auto& b = GetParam();
  try {
    parse_masq_config_file(fixture(b.file));
    FAIL() << b.file << " accepted";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(m.find(fixture(b.file) + b.where), std::string::npos) << m;
    EXPECT_NE(m.find(std::string("'") + b.key + "'"), std::string::npos) << m;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, MasqRejects,
    ::testing::Values(BadMasq{"bad-cidr.yaml", "nonMasqueradeCIDRs[1]", ":3:5"},
                      BadMasq{"bad-unknown-key.yaml", "resync", ":3:1"},
                      BadMasq{"bad-wrong-type.yaml", "masqLinkLocal", ":2:16"},
                      BadMasq{"bad-not-a-list.json", "nonMasqueradeCIDRs", ":1:24"},
                      BadMasq{"bad-duration-overflow.yaml", "resyncInterval", ":3:17"},
                      BadMasq{"bad-ipv6-cidr.yaml", "nonMasqueradeCIDRs[1]", ":3:5"},
                      BadMasq{"bad-link-local-ipv6.yaml", "masqLinkLocalIPv6", ":2:20"}));

TEST(MasqConfig, Ipv6AsTheAgentSyncsIt) {
  // The agent's defaults hold no IPv6 range: every IPv6 destination is masqueraded but fe80::/10.
  auto d = default_masq_config();
  EXPECT_TRUE(d.non_masquerade6.empty());
  EXPECT_TRUE(d.masquerades(*Ipv6::parse("fd00:192:168:200::10")));
  EXPECT_FALSE(d.masquerades(*Ipv6::parse("fe80::1")));
  ASSERT_EQ(d.return_cidrs6().size(), 1u);
  EXPECT_EQ(d.return_cidrs6()[0].str(), "fe80::/10");
  // One list of both families, split by family; masqLinkLocalIPv6 drops the fe80::/10 RETURN.
  auto c = parse_masq_config_string(
      "nonMasqueradeCIDRs: [10.244.0.0/16, 'fd00:10:244::/56', 172.18.0.0/24]\n"
      "masqLinkLocalIPv6: true\n",
      "x.yaml");
  EXPECT_EQ(c.non_masquerade.size(), 2u);
  ASSERT_EQ(c.non_masquerade6.size(), 1u);
  EXPECT_TRUE(c.masq_link_local_ipv6);
  EXPECT_FALSE(c.masq_link_local);
  EXPECT_TRUE(c.masquerades(*Ipv6::parse("fe80::1")));
  EXPECT_FALSE(c.masquerades(*Ipv6::parse("fd00:10:244:1::2")));
  EXPECT_TRUE(c.masquerades(*Ipv6::parse("fd00:192:168:200::10")));
  EXPECT_FALSE(c.masquerades(*Ipv4::parse("169.254.1.1")));  // IPv4 link-local still kept
  // The shipped config keeps the dual-stack topology's IPv6 pod and node ranges too.
  auto shipped =
      parse_masq_config_file(std::string(HRB_SOURCE_DIR) + "/topologies/ip-masq-agent.yaml");
  EXPECT_FALSE(shipped.masquerades(*Ipv6::parse("fd00:10:244:1::2")));
  EXPECT_FALSE(shipped.masquerades(*Ipv6::parse("fd00:172:18::2")));
  EXPECT_TRUE(shipped.masquerades(*Ipv6::parse("fd00:192:168:200::10")));
}
