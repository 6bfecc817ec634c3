#pragma once
// IPv6 addresses and CIDRs (network byte order, as the kernel keeps them), with strict parsing
// for validation messages, and the address family as a word (ipv4 | ipv6): a run dimension.
#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace hrb {

struct Ipv6 {
  std::array<uint8_t, 16> b{};  // network byte order
  static std::optional<Ipv6> parse(const std::string& s);
  std::string str() const;  // RFC 5952 (inet_ntop)
  bool is_zero() const;
  auto operator<=>(const Ipv6&) const = default;
};

Ipv6 masked(Ipv6 a, int len);  // every bit after the first `len` cleared
Ipv6 netmask6(int len);        // the first `len` bits set

struct Cidr6 {
  Ipv6 net;
  int len = 0;
  // Accepts "x::/len"; rejects host bits set and IPv4 text (why: in why_not, if given).
  static std::optional<Cidr6> parse(const std::string& s, std::string* why_not = nullptr);
  bool contains(const Ipv6& ip) const;
  bool contains(const Cidr6& o) const { return o.len >= len && contains(o.net); }
  bool overlaps(const Cidr6& o) const { return contains(o.net) || o.contains(net); }
  // The address `offset` above the network address (added to its low 64 bits).
  Ipv6 at(uint64_t offset) const;
  // The index-th sub-prefix of length `sublen` (sublen >= len, sublen - len < 64).
  Cidr6 subnet(uint64_t index, int sublen) const;
  // How many /sublen prefixes this one holds (saturated at 2^63).
  uint64_t count(int sublen) const;
  std::string str() const;
  auto operator<=>(const Cidr6&) const = default;
};

enum class Family { kIpv4, kIpv6 };
const char* family_name(Family f);                         // "ipv4" | "ipv6"
std::optional<Family> parse_family(const std::string& s);  // nullopt unless ipv4 or ipv6

}  // namespace hrb
