#pragma once
// IPv4 addresses and CIDRs in host byte order, with strict parsing (for validation messages).
#include <cstdint>
#include <optional>
#include <string>

namespace hrb {

struct Ipv4 {
  uint32_t v = 0;  // host byte order
  static std::optional<Ipv4> parse(const std::string& s);
  std::string str() const;
  uint32_t be() const;  // network byte order
  auto operator<=>(const Ipv4&) const = default;
};

struct Cidr {
  Ipv4 net;
  int len = 0;
  // Accepts "a.b.c.d/len"; rejects host bits set (why: in why_not, if given).
  static std::optional<Cidr> parse(const std::string& s, std::string* why_not = nullptr);
  uint32_t mask() const { return len == 0 ? 0 : 0xffffffffu << (32 - len); }
  uint64_t size() const { return 1ull << (32 - len); }
  bool contains(Ipv4 ip) const { return (ip.v & mask()) == net.v; }
  bool contains(const Cidr& o) const { return o.len >= len && contains(o.net); }
  bool overlaps(const Cidr& o) const { return contains(o.net) || o.contains(net); }
  Ipv4 at(uint64_t offset) const { return Ipv4{net.v + static_cast<uint32_t>(offset)}; }
  std::string str() const;
  auto operator<=>(const Cidr&) const = default;
};

}  // namespace hrb
