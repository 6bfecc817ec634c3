#pragma once
// One request/response over a real socket from one netns to another: does the path work, and
// which source address did the server see (the pod IP, or the node IP after masquerade)?
// Sockets keep the netns they were created in, so both ends are opened inside their namespaces
// and then driven from the calling thread.
#include <string>

#include "core/ipv4.hpp"
#include "core/ipv6.hpp"
#include "traffic/sockets.hpp"

namespace hrb::traffic {

enum class Proto { kTcp, kUdp };
const char* proto_name(Proto p);

struct ReachResult {
  bool ok = false;
  std::string error;  // why not, when !ok
  Ipv4 peer_seen;     // source address as the server saw it (IPv4 destinations)
  Ipv6 peer_seen6;    // the same for an IPv6 destination
};

struct ReachSpec {
  Proto proto = Proto::kTcp;
  std::string client_netns;
  std::string server_netns;
  IpAddr dst;             // address the client sends to (IPv4 or IPv6)
  uint16_t port = 0;      // server's port; 0: pick a free one in the server netns
  int timeout_ms = 2000;  // failure detection only, never a measurement
  uint16_t dst_port = 0;  // port the client sends to, when a DNAT maps it (0: same as port)
};

ReachResult reach(const ReachSpec& spec);

}  // namespace hrb::traffic
