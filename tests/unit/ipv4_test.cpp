#include <gtest/gtest.h>

#include "core/ipv4.hpp"
#include "traffic/sockets.hpp"

using hrb::Cidr;
using hrb::Ipv4;
namespace traffic = hrb::traffic;

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

TEST(IpAddr, ParsesBothFamiliesAndBuildsSocketAddresses) {
  auto v6 = traffic::IpAddr::parse("fd00:a:2:1::2");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->str(), "fd00:a:2:1::2");
  auto v4 = traffic::IpAddr::parse("10.244.1.2");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->str(), "10.244.1.2");
  for (const char* bad : {"", "fd00::g", "10.244.1", "10.244.1.256", ":::"})
    EXPECT_FALSE(traffic::IpAddr::parse(bad)) << bad;
  traffic::SockAddr a6(*v6, 8080), a4(*v4, 53);
  EXPECT_EQ(a6.len, sizeof(sockaddr_in6));
  EXPECT_EQ(a6.port(), 8080);
  EXPECT_EQ(a4.len, sizeof(sockaddr_in));
  EXPECT_EQ(a4.port(), 53);
  EXPECT_EQ(traffic::IpAddr::any(AF_INET6).str(), "::");
  EXPECT_EQ(traffic::IpAddr::any(AF_INET).str(), "0.0.0.0");
}
