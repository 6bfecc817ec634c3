#include <gtest/gtest.h>

#include "core/ipv6.hpp"
#include "traffic/sockets.hpp"

using hrb::Cidr6;
using hrb::Family;
using hrb::Ipv6;

TEST(Ipv6, ParsesAndFormats) {
  auto a = Ipv6::parse("fd00:10:244:0::2");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->str(), "fd00:10:244::2");  // RFC 5952
  EXPECT_EQ(a->b[0], 0xfd);
  EXPECT_EQ(a->b[15], 0x02);
  EXPECT_FALSE(Ipv6::parse("10.244.1.2"));
  EXPECT_FALSE(Ipv6::parse("fd00::g"));
  EXPECT_TRUE(Ipv6{}.is_zero());
  EXPECT_FALSE(a->is_zero());
  EXPECT_EQ(hrb::traffic::IpAddr(*a).str(), "fd00:10:244::2");
  EXPECT_EQ(hrb::traffic::IpAddr(*a).host_port(80), "[fd00:10:244::2]:80");
}

TEST(Cidr6, ParsesStrictly) {
  std::string why;
  auto c = Cidr6::parse("fd00:10:244::/56", &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->len, 56);
  EXPECT_FALSE(Cidr6::parse("fd00:10:244::1/56", &why));
  EXPECT_NE(why.find("host bits"), std::string::npos);
  EXPECT_NE(why.find("fd00:10:244::/56"), std::string::npos);  // suggests the fix
  EXPECT_FALSE(Cidr6::parse("fd00::/129", &why));
  EXPECT_FALSE(Cidr6::parse("fd00::", &why));
  EXPECT_FALSE(Cidr6::parse("10.0.0.0/8", &why));
  EXPECT_NE(why.find("not an IPv6 address"), std::string::npos);
  EXPECT_TRUE(Cidr6::parse("::/0"));
  // A prefix that is not on a byte boundary.
  EXPECT_TRUE(Cidr6::parse("fe80::/10"));
  EXPECT_FALSE(Cidr6::parse("fe81::/10"));
}

TEST(Cidr6, SubnetsAtAndContains) {
  auto c = *Cidr6::parse("fd00:10:244::/56");
  EXPECT_EQ(c.subnet(0, 64).str(), "fd00:10:244::/64");
  EXPECT_EQ(c.subnet(1, 64).str(), "fd00:10:244:1::/64");
  EXPECT_EQ(c.subnet(255, 64).str(), "fd00:10:244:ff::/64");
  EXPECT_EQ(c.count(64), 256u);
  EXPECT_EQ(c.count(56), 1u);
  EXPECT_EQ(c.count(40), 0u);
  auto n = c.subnet(3, 64);
  EXPECT_EQ(n.at(1).str(), "fd00:10:244:3::1");
  EXPECT_EQ(n.at(0x10002).str(), "fd00:10:244:3::1:2");
  EXPECT_TRUE(c.contains(n));
  EXPECT_TRUE(n.contains(n.at(12345)));
  EXPECT_FALSE(n.contains(c.subnet(4, 64).at(1)));
  EXPECT_TRUE(c.overlaps(n));
  EXPECT_FALSE(n.overlaps(c.subnet(4, 64)));
  // The carry crosses from the low half into the high half.
  auto lo = *Cidr6::parse("fd00::ffff:ffff:ffff:ffff/128");
  EXPECT_EQ(lo.at(1).str(), "fd00:0:0:1::");
}

TEST(Family, Names) {
  EXPECT_STREQ(hrb::family_name(Family::kIpv4), "ipv4");
  EXPECT_STREQ(hrb::family_name(Family::kIpv6), "ipv6");
  EXPECT_EQ(hrb::parse_family("ipv6"), Family::kIpv6);
  EXPECT_FALSE(hrb::parse_family("IPv6"));
  EXPECT_FALSE(hrb::parse_family("dual"));
}
