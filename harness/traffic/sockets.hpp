#pragma once
// Small socket helpers shared by the reachability probe and the workloads.
#include <netinet/in.h>
#include <poll.h>

#include <cerrno>

#include "core/ipv4.hpp"

namespace hrb::traffic {

inline sockaddr_in sockaddr_v4(Ipv4 ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = ip.be();
  return a;
}

// Waits for `events` on fd; false on timeout (EINTR is retried).
inline bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

}  // namespace hrb::traffic
