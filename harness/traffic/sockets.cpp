#include "traffic/sockets.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace hrb::traffic {

std::optional<IpAddr> IpAddr::parse(const std::string& s) {
  IpAddr a;
  if (s.find(':') == std::string::npos) {
    auto v4 = Ipv4::parse(s);
    if (!v4) return std::nullopt;
    return IpAddr(*v4);
  }
  a.family = AF_INET6;
  if (inet_pton(AF_INET6, s.c_str(), &a.v6) != 1) return std::nullopt;
  return a;
}

IpAddr IpAddr::any(int family) {
  IpAddr a;
  a.family = family;
  a.v6 = in6addr_any;
  return a;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, family == AF_INET6 ? static_cast<const void*>(&v6) : &v4, buf, sizeof buf);
  return buf;
}

std::string IpAddr::host_port(uint16_t port) const {
  return (family == AF_INET6 ? "[" + str() + "]" : str()) + ":" + std::to_string(port);
}

SockAddr::SockAddr(const IpAddr& ip, uint16_t port) {
  if (ip.family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = ip.v6;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr = ip.v4;
    len = sizeof *a;
  }
}

uint16_t SockAddr::port() const {
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

}  // namespace hrb::traffic
