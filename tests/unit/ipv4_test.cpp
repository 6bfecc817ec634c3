#include <gtest/gtest.h>

#include "core/ipv4.hpp"

using hrb::Cidr;
using hrb::Ipv4;

TEST(Ipv4, ParsesAndFormats) {
  auto a = Ipv4::parse("10.244.1.2");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->v, 0x0af40102u);
  EXPECT_EQ(a->str(), "10.244.1.2");
  EXPECT_FALSE(Ipv4::parse("10.244.1"));
  EXPECT_FALSE(Ipv4::parse("10.244.1.256"));
  EXPECT_FALSE(Ipv4::parse("fe80::1"));
}

TEST(Cidr, ParsesStrictly) {
  std::string why;
  auto c = Cidr::parse("10.244.0.0/16", &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->size(), 65536u);
  EXPECT_EQ(c->at(257).str(), "10.244.1.1");
  EXPECT_FALSE(Cidr::parse("10.244.0.1/16", &why));
  EXPECT_NE(why.find("host bits"), std::string::npos);
  EXPECT_NE(why.find("10.244.0.0/16"), std::string::npos);  // suggests the fix
  EXPECT_FALSE(Cidr::parse("10.244.0.0/33", &why));
  EXPECT_FALSE(Cidr::parse("10.244.0.0", &why));
  EXPECT_FALSE(Cidr::parse("10.244.0.0/1x", &why));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0"));
}

TEST(Cidr, ContainsAndOverlaps) {
  auto cluster = *Cidr::parse("10.244.0.0/16");
  auto pod = *Cidr::parse("10.244.3.0/24");
  auto other = *Cidr::parse("10.245.0.0/24");
  EXPECT_TRUE(cluster.contains(pod));
  EXPECT_FALSE(pod.contains(cluster));
  EXPECT_TRUE(cluster.overlaps(pod));
  EXPECT_TRUE(pod.overlaps(cluster));
  EXPECT_FALSE(cluster.overlaps(other));
  EXPECT_TRUE(pod.contains(*Ipv4::parse("10.244.3.255")));
  EXPECT_FALSE(pod.contains(*Ipv4::parse("10.244.4.0")));
}
