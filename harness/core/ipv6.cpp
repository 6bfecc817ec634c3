#include "core/ipv6.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace hrb {

std::optional<Ipv6> Ipv6::parse(const std::string& s) {
  Ipv6 a;
  if (inet_pton(AF_INET6, s.c_str(), a.b.data()) != 1) return std::nullopt;
  return a;
}

std::string Ipv6::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, b.data(), buf, sizeof buf);
  return buf;
}

bool Ipv6::is_zero() const { return *this == Ipv6{}; }

Ipv6 masked(Ipv6 a, int len) {
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(len - 8 * i, 0, 8);
    a.b[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  return a;
}

Ipv6 netmask6(int len) {
  Ipv6 all;
  all.b.fill(0xff);
  return masked(all, len);
}

namespace {
// Adds `v` shifted left by `shift` bits (0..127) to `a`, carrying upwards.
Ipv6 add_shifted(Ipv6 a, uint64_t v, int shift) {
  // As two 64-bit halves: hi = bytes 0..7, lo = bytes 8..15.
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = hi << 8 | a.b[i];
  for (int i = 8; i < 16; ++i) lo = lo << 8 | a.b[i];
  uint64_t add_lo = 0, add_hi = 0;
  if (shift == 0) {
    add_lo = v;
  } else if (shift < 64) {
    add_lo = v << shift;
    add_hi = v >> (64 - shift);
  } else {
    add_hi = v << (shift - 64);
  }
  const uint64_t new_lo = lo + add_lo;
  hi += add_hi + (new_lo < lo ? 1 : 0);
  lo = new_lo;
  for (int i = 7; i >= 0; --i, hi >>= 8) a.b[i] = static_cast<uint8_t>(hi);
  for (int i = 15; i >= 8; --i, lo >>= 8) a.b[i] = static_cast<uint8_t>(lo);
  return a;
}
}  // namespace

std::optional<Cidr6> Cidr6::parse(const std::string& s, std::string* why_not) {
  auto fail = [&](std::string w) -> std::optional<Cidr6> {
    if (why_not) *why_not = std::move(w);
    return std::nullopt;
  };
  auto slash = s.find('/');
  if (slash == std::string::npos) return fail("expected an IPv6 CIDR like fd00:10:244::/56");
  auto ip = Ipv6::parse(s.substr(0, slash));
  if (!ip) return fail("'" + s.substr(0, slash) + "' is not an IPv6 address");
  int len = -1;
  const char* b = s.data() + slash + 1;
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, len);
  if (ec != std::errc() || p != e || len < 0 || len > 128)
    return fail("prefix length '" + s.substr(slash + 1) + "' is not a number from 0 to 128");
  if (masked(*ip, len) != *ip)
    return fail("host bits are set (did you mean " + Cidr6{masked(*ip, len), len}.str() + "?)");
  return Cidr6{*ip, len};
}

bool Cidr6::contains(const Ipv6& ip) const { return masked(ip, len) == masked(net, len); }

Ipv6 Cidr6::at(uint64_t offset) const { return add_shifted(net, offset, 0); }

Cidr6 Cidr6::subnet(uint64_t index, int sublen) const {
  return Cidr6{add_shifted(net, index, 128 - sublen), sublen};
}

uint64_t Cidr6::count(int sublen) const {
  if (sublen < len) return 0;
  const int bits = sublen - len;
  return bits >= 63 ? (1ull << 63) : (1ull << bits);
}

std::string Cidr6::str() const { return net.str() + "/" + std::to_string(len); }

const char* family_name(Family f) { return f == Family::kIpv4 ? "ipv4" : "ipv6"; }

std::optional<Family> parse_family(const std::string& s) {
  if (s == "ipv4") return Family::kIpv4;
  if (s == "ipv6") return Family::kIpv6;
  return std::nullopt;
}

}  // namespace hrb
