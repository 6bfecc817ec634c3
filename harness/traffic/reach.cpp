#include "traffic/reach.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/netns.hpp"
#include "traffic/sockets.hpp"

namespace hrb::traffic {

const char* proto_name(Proto p) { return p == Proto::kTcp ? "tcp" : "udp"; }

namespace {

std::string errstr(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

ReachResult reach(const ReachSpec& s) {
  ReachResult res;
  const int type = s.proto == Proto::kTcp ? SOCK_STREAM : SOCK_DGRAM;
  const int family = s.dst.family;
  const bool v6 = family == AF_INET6;
  uint16_t port = s.port;
  Fd server = run_in_netns(s.server_netns, [&] {
    Fd fd(socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_errno("server socket in " + s.server_netns);
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    SockAddr a(IpAddr::any(family), port);
    if (bind(fd.get(), a.ptr(), a.len) != 0) throw_errno("bind in " + s.server_netns);
    if (s.proto == Proto::kTcp && listen(fd.get(), 4) != 0) throw_errno("listen");
    // A UDP server bound to the wildcard must answer from the address it was asked on (the host
    // may have several), or NAT on the way back cannot match the reply to its flow.
    if (s.proto == Proto::kUdp) {
      if (v6)
        setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
      else
        setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    }
    a.len = sizeof a.ss;
    getsockname(fd.get(), a.ptr(), &a.len);
    port = a.port();
    return fd;
  });
  Fd client = run_in_netns(s.client_netns, [&] {
    Fd fd(socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_errno("client socket in " + s.client_netns);
    return fd;
  });

  const char request[] = "hrbench-reach";
  SockAddr dst(s.dst, s.dst_port ? s.dst_port : port);
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  Fd conn;
  int srv = server.get();
  if (s.proto == Proto::kTcp) {
    if (connect(client.get(), dst.ptr(), dst.len) != 0 && errno != EINPROGRESS) {
      res.error = errstr("connect");
      return res;
    }
    if (!wait_fd(client.get(), POLLOUT, s.timeout_ms)) {
      res.error = "connect timed out";
      return res;
    }
    int soerr = 0;
    socklen_t el = sizeof soerr;
    getsockopt(client.get(), SOL_SOCKET, SO_ERROR, &soerr, &el);
    if (soerr) {
      res.error = std::string("connect: ") + std::strerror(soerr);
      return res;
    }
    if (send(client.get(), request, sizeof request, MSG_NOSIGNAL) < 0) {
      res.error = errstr("send");
      return res;
    }
    if (!wait_fd(srv, POLLIN, s.timeout_ms)) {
      res.error = "server saw no connection";
      return res;
    }
    conn.reset(accept4(srv, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC));
    if (!conn) {
      res.error = errstr("accept");
      return res;
    }
    srv = conn.get();
  } else {
    if (sendto(client.get(), request, sizeof request, 0, dst.ptr(), dst.len) < 0) {
      res.error = errstr("sendto");
      return res;
    }
  }
  char buf[64] = {};
  if (!wait_fd(srv, POLLIN, s.timeout_ms)) {
    res.error = "server received nothing";
    return res;
  }
  iovec iov{buf, sizeof buf};
  char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (s.proto == Proto::kUdp) {
    msg.msg_name = &peer;
    msg.msg_namelen = plen;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
  }
  ssize_t n = recvmsg(srv, &msg, 0);
  if (n != sizeof request || std::memcmp(buf, request, sizeof request) != 0) {
    res.error = "server received a wrong request";
    return res;
  }
  if (v6)
    std::memcpy(res.peer_seen6.b.data(), reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr.s6_addr,
                16);
  else
    res.peer_seen = Ipv4{ntohl(reinterpret_cast<sockaddr_in*>(&peer)->sin_addr.s_addr)};
  // The reply carries the address the server saw, so the client proves the return path too.
  std::string reply = v6 ? res.peer_seen6.str() : res.peer_seen.str();
  iovec riov{reply.data(), reply.size()};
  msghdr rmsg{};
  rmsg.msg_iov = &riov;
  rmsg.msg_iovlen = 1;
  if (s.proto == Proto::kUdp) {
    rmsg.msg_name = &peer;
    rmsg.msg_namelen = msg.msg_namelen;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        auto* pi = reinterpret_cast<in_pktinfo*>(CMSG_DATA(c));
        pi->ipi_spec_dst = pi->ipi_addr;  // answer from the address that was asked
        pi->ipi_ifindex = 0;
        rmsg.msg_control = cbuf;
        rmsg.msg_controllen = msg.msg_controllen;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        // The same for IPv6: ipi6_addr (the address asked) is the reply's source.
        reinterpret_cast<in6_pktinfo*>(CMSG_DATA(c))->ipi6_ifindex = 0;
        rmsg.msg_control = cbuf;
        rmsg.msg_controllen = msg.msg_controllen;
      }
    }
  }
  if (sendmsg(srv, &rmsg, MSG_NOSIGNAL) < 0) {
    res.error = errstr("server reply");
    return res;
  }
  if (!wait_fd(client.get(), POLLIN, s.timeout_ms)) {
    res.error = "the reply never came back";
    return res;
  }
  n = recv(client.get(), buf, sizeof buf, 0);
  if (n != static_cast<ssize_t>(reply.size()) || std::memcmp(buf, reply.data(), n) != 0) {
    res.error = "the client received a wrong reply";
    return res;
  }
  res.ok = true;
  return res;
}

}  // namespace hrb::traffic
