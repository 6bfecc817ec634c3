#include "core/ipv4.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace hrb {

std::optional<Ipv4> Ipv4::parse(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return Ipv4{ntohl(a.s_addr)};
}

std::string Ipv4::str() const {
  char buf[INET_ADDRSTRLEN];
  in_addr a{htonl(v)};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

uint32_t Ipv4::be() const { return htonl(v); }

std::optional<Cidr> Cidr::parse(const std::string& s, std::string* why_not) {
  auto fail = [&](std::string w) -> std::optional<Cidr> {
    if (why_not) *why_not = std::move(w);
    return std::nullopt;
  };
  auto slash = s.find('/');
  if (slash == std::string::npos) return fail("expected an IPv4 CIDR like 10.244.0.0/16");
  auto ip = Ipv4::parse(s.substr(0, slash));
  if (!ip) return fail("'" + s.substr(0, slash) + "' is not an IPv4 address");
  int len = -1;
  const char* b = s.data() + slash + 1;
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, len);
  if (ec != std::errc() || p != e || len < 0 || len > 32)
    return fail("prefix length '" + s.substr(slash + 1) + "' is not a number from 0 to 32");
  Cidr c{*ip, len};
  if ((ip->v & c.mask()) != ip->v)
    return fail("host bits are set (did you mean " + Cidr{Ipv4{ip->v & c.mask()}, len}.str() +
                "?)");
  return c;
}

std::string Cidr::str() const { return net.str() + "/" + std::to_string(len); }

}  // namespace hrb
