#pragma once
// Small socket helpers shared by the reachability probe and the workloads.
#include <netinet/in.h>
#include <poll.h>

#include <cerrno>
#include <optional>
#include <string>

#include <cstring>

#include "core/ipv4.hpp"
#include "core/ipv6.hpp"

namespace hrb::traffic {

// A workload's destination: IPv4 or IPv6.
struct IpAddr {
  int family = AF_INET;
  in_addr v4{};
  in6_addr v6{};
  IpAddr() = default;
  IpAddr(Ipv4 ip) { v4.s_addr = ip.be(); }     // NOLINT: an IPv4 address is an address
  IpAddr(const Ipv6& ip) : family(AF_INET6) {  // NOLINT: so is an IPv6 one
    std::memcpy(v6.s6_addr, ip.b.data(), 16);
  }
  static std::optional<IpAddr> parse(const std::string& s);
  static IpAddr any(int family);  // 0.0.0.0 or ::
  std::string str() const;
  std::string host_port(uint16_t port) const;  // a.b.c.d:port or [x::y]:port
};

// A socket address of either family, ready for bind/connect.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  SockAddr() = default;
  SockAddr(const IpAddr& ip, uint16_t port);
  sockaddr* ptr() { return reinterpret_cast<sockaddr*>(&ss); }
  uint16_t port() const;
};

// Waits for `events` on fd; false on timeout (EINTR is retried).
inline bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

}  // namespace hrb::traffic
