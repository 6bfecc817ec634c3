#include "traffic/workload.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/netns.hpp"
#include "traffic/sockets.hpp"

namespace hrb::traffic {

using Clock = std::chrono::steady_clock;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kTcpRr:
      return "tcp_rr";
    case Kind::kTcpCrr:
      return "tcp_crr";
    case Kind::kTcpStream:
      return "tcp_stream";
    case Kind::kUdpStream:
      return "udp_stream";
    case Kind::kUdpRr:
      return "udp_rr";
  }
  return "?";
}

Kind parse_kind(const std::string& s) {
  for (Kind k : {Kind::kTcpRr, Kind::kTcpCrr, Kind::kTcpStream, Kind::kUdpStream, Kind::kUdpRr})
    if (s == kind_name(k)) return k;
  throw Error(
      "unknown workload '" + s + "' (expected tcp_rr, tcp_crr, tcp_stream, udp_stream or udp_rr)",
      ExitCode::kUsage);
}

nlohmann::json WorkloadResult::to_json() const {
  nlohmann::json j{{"workload", kind_name(kind)}, {"seconds", seconds}, {"errors", errors}};
  if (!first_error.empty()) j["firstError"] = first_error;
  if (kind == Kind::kTcpRr || kind == Kind::kTcpCrr || kind == Kind::kUdpRr) {
    j["transactions"] = transactions;
    j["transactionsPerSecond"] = transactions_per_s();
    j["latency"] = {{"unit", "us"},
                    {"p50", latency.percentile(50) / 1e3},
                    {"p90", latency.percentile(90) / 1e3},
                    {"p99", latency.percentile(99) / 1e3},
                    {"p999", latency.percentile(99.9) / 1e3},
                    {"max", latency.max() / 1e3},
                    {"mean", latency.mean() / 1e3},
                    {"samples", latency.count()}};
    j["latencyHistogram"] = latency.to_json();
  }
  if (kind == Kind::kTcpStream || kind == Kind::kUdpStream) {
    j["bytes"] = bytes;
    j["gbitPerSecond"] = gbit_per_s();
  }
  if (kind == Kind::kTcpStream) {
    j["tcpRetransmits"] = tcp_retransmits;
    j["payloadErrors"] = payload_errors;
  }
  if (kind == Kind::kUdpStream)
    j["udp"] = {{"sent", udp_sent},
                {"received", udp_received},
                {"lost", udp_lost},
                {"reordered", udp_reordered},
                {"duplicates", udp_duplicates}};
  return j;
}

namespace {

constexpr int kIoTimeoutMs = 2000;  // a peer silent this long is an error, not a measurement

// What the datapath runs now, for counting: (sequence << 8) | (variant + 1); the low byte 0 while
// an alternated run settles after a switch (counts for no variant). Not alternated: variant 0.
constexpr uint64_t kPhaseVariant0 = 1;
int phase_variant(uint64_t phase) { return static_cast<int>(phase & 0xff) - 1; }

struct Shared {
  Clock::time_point measure_from, end;
  std::atomic<uint64_t> phase{kPhaseVariant0};
  std::mutex mu;
  WorkloadResult* res;
  void error(const std::string& e) {
    std::lock_guard g(mu);
    if (res->first_error.empty()) res->first_error = e;
    ++res->errors;
  }
};

// A workload thread: an exception it throws becomes the workload's error, not std::terminate.
template <class F, class... A>
std::thread guarded_thread(Shared& sh, F f, A... a) {
  return std::thread([&sh, f, a...] {
    try {
      f(a...);
    } catch (const std::exception& e) {
      sh.error(e.what());
    }
  });
}

void pin_cpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

bool wait_io(int fd, short ev, int ms = kIoTimeoutMs) { return wait_fd(fd, ev, ms); }

// Reads exactly n bytes (blocking socket with SO_RCVTIMEO). False on EOF/timeout/error.
bool read_full(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    got += r;
  }
  return true;
}

bool write_full(int fd, const char* buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = send(fd, buf + put, n - put, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return false;
    }
    put += w;
  }
  return true;
}

void set_timeouts(int fd) {
  timeval tv{kIoTimeoutMs / 1000, (kIoTimeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Fd tcp_socket(int family) {
  Fd s(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) throw_errno("socket");
  int one = 1;
  setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_timeouts(s.get());
  return s;
}

uint8_t pattern(uint64_t offset) { return static_cast<uint8_t>(offset * 131 + 7); }

// Binds a server socket in `netns` (one of the server netns); returns it with its port.
// `reuse_port`: several sockets share the port (the kernel spreads flows over them).
Fd server_socket(const WorkloadSpec& s, const std::string& netns, int type, uint16_t port,
                 uint16_t* bound, bool reuse_port = false) {
  return run_in_netns(netns, [&] {
    const int family = s.dst.family;
    Fd fd(socket(family, type | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno("server socket in " + netns);
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (type == SOCK_DGRAM && family == AF_INET)
      setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    if (type == SOCK_DGRAM && family == AF_INET6)
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    int big = 4 << 20;
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    SockAddr a(IpAddr::any(family), port);
    if (bind(fd.get(), a.ptr(), a.len) != 0)
      throw_errno("bind port " + std::to_string(port) + " in " + netns);
    if (type == SOCK_STREAM && listen(fd.get(), 1024) != 0) throw_errno("listen");
    a.len = sizeof a.ss;
    getsockname(fd.get(), a.ptr(), &a.len);
    *bound = a.port();
    return fd;
  });
}

// UDP reply from the address the request was sent to (see reach.cpp for why).
ssize_t udp_echo_recv(int fd, char* buf, size_t n, sockaddr_storage* peer, char* cbuf, size_t clen,
                      msghdr* out) {
  iovec iov{buf, n};
  *out = {};
  out->msg_name = peer;
  out->msg_namelen = sizeof *peer;
  out->msg_iov = &iov;
  out->msg_iovlen = 1;
  out->msg_control = cbuf;
  out->msg_controllen = clen;
  ssize_t r = recvmsg(fd, out, 0);
  for (cmsghdr* c = CMSG_FIRSTHDR(out); c; c = CMSG_NXTHDR(out, c))
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      auto* pi = reinterpret_cast<in_pktinfo*>(CMSG_DATA(c));
      pi->ipi_spec_dst = pi->ipi_addr;
      pi->ipi_ifindex = 0;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      reinterpret_cast<in6_pktinfo*>(CMSG_DATA(c))->ipi6_ifindex = 0;  // keep ipi6_addr
    }
  return r;
}

ssize_t udp_echo_send(int fd, const char* buf, size_t n, msghdr* in) {
  iovec iov{const_cast<char*>(buf), n};
  in->msg_iov = &iov;
  in->msg_iovlen = 1;
  return sendmsg(fd, in, 0);
}

// ---- TCP request/response and connect/request/response ----------------------------------

// Counts one transaction that ran from t0 (phase p0) to t1 for its variant, when measured.
void count_transaction(const Shared& sh, uint64_t p0, Clock::time_point t0, Clock::time_point t1,
                       std::vector<metrics::Histogram>& h, std::vector<uint64_t>& tx) {
  if (t0 < sh.measure_from) return;
  const int v = phase_variant(p0);
  if (v < 0 || sh.phase.load(std::memory_order_relaxed) != p0) return;  // settling, or switched
  h[v].record(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  ++tx[v];
}

void tcp_rr_client(const WorkloadSpec& s, Shared& sh, uint16_t port,
                   std::vector<metrics::Histogram>& h, std::vector<uint64_t>& tx, bool crr) {
  NetnsGuard ns(s.client_netns);
  pin_cpu(s.client_cpu);
  std::vector<char> buf(s.msg_size, 'q'), resp(s.msg_size);
  SockAddr dst(s.dst, port);
  Fd conn;
  auto connect_once = [&]() -> bool {
    conn = tcp_socket(s.dst.family);
    if (connect(conn.get(), dst.ptr(), dst.len) != 0) {
      sh.error(std::string("connect: ") + strerror(errno));
      return false;
    }
    return true;
  };
  if (!crr && !connect_once()) return;
  while (true) {
    const uint64_t p0 = sh.phase.load(std::memory_order_relaxed);
    auto t0 = Clock::now();
    if (t0 >= sh.end) break;
    if (crr && !connect_once()) continue;
    if (!write_full(conn.get(), buf.data(), buf.size()) ||
        !read_full(conn.get(), resp.data(), resp.size())) {
      sh.error(std::string("request/response: ") + (errno ? strerror(errno) : "closed"));
      if (!crr) return;
      continue;
    }
    if (crr) conn.reset();  // close: FIN, the server closes too
    count_transaction(sh, p0, t0, Clock::now(), h, tx);
  }
}

void tcp_rr_server(const WorkloadSpec& s, int listener, std::atomic<bool>& stop) {
  pin_cpu(s.server_cpu);
  std::vector<char> buf(s.msg_size);
  while (!stop) {
    if (!wait_io(listener, POLLIN, 50)) continue;
    Fd c(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    int one = 1;
    setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeouts(c.get());
    while (read_full(c.get(), buf.data(), buf.size()))
      if (!write_full(c.get(), buf.data(), buf.size())) break;
  }
}

// ---- TCP stream ------------------------------------------------------------------------------

void tcp_stream_client(const WorkloadSpec& s, Shared& sh, uint16_t port, uint64_t& retrans) {
  NetnsGuard ns(s.client_netns);
  pin_cpu(s.client_cpu);
  Fd c = tcp_socket(s.dst.family);
  SockAddr dst(s.dst, port);
  if (connect(c.get(), dst.ptr(), dst.len) != 0) {
    sh.error(std::string("connect: ") + strerror(errno));
    return;
  }
  std::vector<char> buf(s.msg_size);
  uint64_t off = 0;
  if (!s.verify_payload) std::memset(buf.data(), 's', buf.size());
  while (Clock::now() < sh.end) {
    if (s.verify_payload)
      for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(pattern(off + i));
    if (!write_full(c.get(), buf.data(), buf.size())) {
      sh.error(std::string("send: ") + strerror(errno));
      break;
    }
    off += buf.size();
  }
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (getsockopt(c.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) retrans = ti.tcpi_total_retrans;
  shutdown(c.get(), SHUT_WR);
  char tmp[64];
  while (recv(c.get(), tmp, sizeof tmp, 0) > 0) {  // wait for the server's close
  }
}

// `spare`: one of several backends' servers (a service), where no connection may come: it waits
// until `stop` instead of reporting the absence.
void tcp_stream_server(const WorkloadSpec& s, Shared& sh, int listener,
                       std::vector<uint64_t>& bytes, uint64_t& bad, bool spare,
                       std::atomic<bool>& stop) {
  pin_cpu(s.server_cpu);
  if (spare) {
    while (!stop && !wait_io(listener, POLLIN, 50)) {
    }
    if (stop) return;
  } else if (!wait_io(listener, POLLIN, kIoTimeoutMs + 1000)) {
    sh.error("tcp_stream: no connection arrived");
    return;
  }
  Fd c(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!c) return;
  set_timeouts(c.get());
  std::vector<char> buf(1 << 18);
  uint64_t off = 0;
  for (;;) {
    ssize_t r = recv(c.get(), buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (s.verify_payload)
      for (ssize_t i = 0; i < r; ++i)
        if (static_cast<uint8_t>(buf[i]) != pattern(off + i)) ++bad;
    off += r;
    if (Clock::now() >= sh.measure_from)
      if (const int v = phase_variant(sh.phase.load(std::memory_order_relaxed)); v >= 0)
        bytes[v] += r;
  }
}

// ---- UDP -----------------------------------------------------------------------------------

struct UdpFlowState {
  std::vector<bool> seen;
  uint64_t received = 0, reordered = 0, dups = 0, max_seq = 0, sent = 0, measured_sent = 0,
           measured_received = 0, first_measured_seq = UINT64_MAX;
};

// Each datagram: the sequence number, then the flow's number (servers that share a port tell the
// flows apart by it).
void udp_stream_client(const WorkloadSpec& s, Shared& sh, uint16_t port, UdpFlowState& st,
                       uint64_t rate, uint64_t flow) {
  NetnsGuard ns(s.client_netns);
  pin_cpu(s.client_cpu);
  Fd c(socket(s.dst.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!c) throw_errno("udp socket");
  int big = 4 << 20;
  setsockopt(c.get(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  SockAddr dst(s.dst, port);
  if (connect(c.get(), dst.ptr(), dst.len) != 0) throw_errno("udp connect");
  std::vector<char> buf(std::max<size_t>(s.msg_size, 16), 'u');
  std::memcpy(buf.data() + 8, &flow, 8);
  const auto interval =
      rate ? std::chrono::nanoseconds(1'000'000'000ull / rate) : std::chrono::nanoseconds(0);
  auto next = Clock::now();
  for (uint64_t seq = 0;; ++seq) {
    auto now = Clock::now();
    if (now >= sh.end) break;
    if (rate) {
      if (now < next) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(next - now).count();
        timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        nanosleep(&ts, nullptr);
      }
      next += interval;
    }
    bool measured = Clock::now() >= sh.measure_from;
    if (measured && st.first_measured_seq == UINT64_MAX) st.first_measured_seq = seq;
    std::memcpy(buf.data(), &seq, 8);
    ssize_t w = send(c.get(), buf.data(), buf.size(), 0);
    if (w < 0) {
      if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) {
        --seq;  // not sent: the same number again
        continue;
      }
      sh.error(std::string("udp send: ") + strerror(errno));
      break;
    }
    ++st.sent;
  }
}

// `own`: the flow whose socket this is; -1: a socket shared by the flows (the flow's number in
// each datagram picks its state; one flow's datagrams all reach one socket).
void udp_stream_server(const WorkloadSpec& s, int fd, std::vector<UdpFlowState>& flows, int own,
                       std::atomic<bool>& stop) {
  pin_cpu(s.server_cpu);
  std::vector<char> buf(65536);
  while (!stop) {
    if (!wait_io(fd, POLLIN, 20)) continue;
    for (;;) {
      ssize_t r = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r < 8) break;
      uint64_t seq, flow = 0;
      std::memcpy(&seq, buf.data(), 8);
      if (own < 0 && r >= 16) std::memcpy(&flow, buf.data() + 8, 8);
      if (own < 0 && flow >= flows.size()) continue;  // not one of ours
      UdpFlowState& st = flows[own < 0 ? flow : own];
      if (seq >= st.seen.size()) st.seen.resize(std::max<size_t>(seq + 1, st.seen.size() * 2));
      if (st.seen[seq]) {
        ++st.dups;
        continue;
      }
      st.seen[seq] = true;
      if (st.received && seq < st.max_seq) ++st.reordered;
      st.max_seq = std::max(st.max_seq, seq);
      ++st.received;
    }
  }
}

void udp_rr_client(const WorkloadSpec& s, Shared& sh, uint16_t port,
                   std::vector<metrics::Histogram>& h, std::vector<uint64_t>& tx) {
  NetnsGuard ns(s.client_netns);
  pin_cpu(s.client_cpu);
  Fd c(socket(s.dst.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!c) throw_errno("udp socket");
  SockAddr dst(s.dst, port);
  if (connect(c.get(), dst.ptr(), dst.len) != 0) throw_errno("udp connect");
  std::vector<char> buf(std::max<size_t>(s.msg_size, 8)), resp(buf.size() + 1);
  for (uint64_t seq = 0;; ++seq) {
    const uint64_t p0 = sh.phase.load(std::memory_order_relaxed);
    auto t0 = Clock::now();
    if (t0 >= sh.end) break;
    std::memcpy(buf.data(), &seq, 8);
    if (send(c.get(), buf.data(), buf.size(), 0) < 0) {
      sh.error(std::string("udp_rr send: ") + strerror(errno));
      continue;
    }
    bool got = false;
    while (wait_io(c.get(), POLLIN, 200)) {  // a lost datagram costs 200 ms, counted as error
      ssize_t r = recv(c.get(), resp.data(), resp.size(), 0);
      uint64_t back;
      std::memcpy(&back, resp.data(), 8);
      if (r == static_cast<ssize_t>(buf.size()) && back == seq) {
        got = true;
        break;
      }
    }
    if (!got) {
      sh.error("udp_rr: response lost");
      continue;
    }
    count_transaction(sh, p0, t0, Clock::now(), h, tx);
  }
}

void udp_rr_server(const WorkloadSpec& s, int fd, std::atomic<bool>& stop) {
  pin_cpu(s.server_cpu);
  std::vector<char> buf(65536);
  char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))];  // the larger of the two families' pktinfo
  sockaddr_storage peer{};
  while (!stop) {
    if (!wait_io(fd, POLLIN, 20)) continue;
    msghdr m;
    ssize_t r = udp_echo_recv(fd, buf.data(), buf.size(), &peer, cbuf, sizeof cbuf, &m);
    if (r > 0) udp_echo_send(fd, buf.data(), r, &m);
  }
}

// ---- alternation ----------------------------------------------------------------------------

// Per variant: the seconds its segments were measured (inside [measure_from, end), settling
// left out) and their CPU time.
struct VariantTime {
  double seconds = 0;
  metrics::CpuTimes cpu;
  int segments = 0;
};

// Switches the datapath between the variants every segment (ABBA: 0 1 … k-1 k-1 … 1 0, again)
// from the start of the warm-up until the end.
void alternate(const WorkloadSpec& s, Shared& sh, std::vector<VariantTime>& out) {
  const auto& a = s.alternation;
  std::vector<int> order;
  for (int v = 0; v < a.variants; ++v) order.push_back(v);
  for (int v = a.variants - 1; v >= 0; --v) order.push_back(v);
  auto secs = [](double x) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(x));
  };
  const auto segment = secs(a.segment_s), settle = secs(a.settle_s);
  uint64_t seq = 0;
  int current = -1;  // the variant of the open window
  Clock::time_point from;
  metrics::CpuTimes cpu0;
  auto close = [&](Clock::time_point to) {
    if (current < 0) return;
    const auto lo = std::max(from, sh.measure_from), hi = std::min(to, sh.end);
    if (hi <= lo) return;
    auto& t = out[current];
    t.seconds += std::chrono::duration<double>(hi - lo).count();
    t.cpu = t.cpu + (metrics::read_cpu_times() - cpu0);
    ++t.segments;
  };
  auto t = Clock::now();
  for (size_t i = 0; t < sh.end; ++i) {
    const int v = order[i % order.size()];
    sh.phase.store(++seq << 8, std::memory_order_relaxed);  // settling: counts for none
    close(Clock::now());
    current = -1;
    a.select(v);
    std::this_thread::sleep_until(std::min(t + settle, sh.end));
    cpu0 = metrics::read_cpu_times();
    from = Clock::now();
    current = v;
    sh.phase.store((++seq << 8) | static_cast<uint64_t>(v + 1), std::memory_order_relaxed);
    t += segment;
    std::this_thread::sleep_until(std::min(t, sh.end));
  }
  sh.phase.store(++seq << 8, std::memory_order_relaxed);
  close(Clock::now());
}

}  // namespace

namespace {
// The CPUs this process may run on.
cpu_set_t allowed_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) throw_errno("sched_getaffinity");
  return allowed;
}
}  // namespace

void check_cpu(int cpu, const std::string& what) {
  if (cpu == -1) return;
  const cpu_set_t allowed = allowed_cpus();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
    std::string usable;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &allowed)) usable += (usable.empty() ? "" : ",") + std::to_string(c);
    throw Error(
        fmt::format("{}: CPU {} is not one this process may run on ({})", what, cpu, usable),
        ExitCode::kUsage);
  }
}

int first_allowed_cpu() {
  const cpu_set_t allowed = allowed_cpus();
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) return c;
  throw Error("no CPU in this process's affinity mask");
}

WorkloadResult run_workload(const WorkloadSpec& in) {
  WorkloadSpec s = in;
  check_cpu(s.client_cpu, "client CPU");
  check_cpu(s.server_cpu, "server CPU");
  if (s.flows < 1 || s.flows > 256) throw Error("flows must be 1..256", ExitCode::kUsage);
  if (s.duration_s <= 0 || s.warmup_s < 0)
    throw Error("duration must be > 0 and warm-up >= 0", ExitCode::kUsage);
  if (!s.msg_size)
    s.msg_size = s.kind == Kind::kTcpStream ? 131072 : s.kind == Kind::kUdpStream ? 1400 : 1;
  if (s.kind == Kind::kUdpStream && s.msg_size < 16)
    throw Error("udp_stream needs msg_size >= 16 (it carries a sequence number)", ExitCode::kUsage);
  const bool alternated = s.alternation.variants >= 2;
  if (alternated &&
      (s.kind == Kind::kUdpStream || !s.alternation.select || s.alternation.variants > 16 ||
       !(s.alternation.segment_s > 0) || !(s.alternation.settle_s >= 0) ||
       s.alternation.settle_s >= s.alternation.segment_s))
    throw Error(
        "alternation: tcp_rr, tcp_crr, tcp_stream or udp_rr, 2..16 variants, a segment longer "
        "than its settling time",
        ExitCode::kUsage);
  const size_t K = alternated ? s.alternation.variants : 1;

  WorkloadResult res;
  res.kind = s.kind;
  Shared sh;
  sh.res = &res;
  std::atomic<bool> stop{false};
  std::vector<std::thread> servers, clients;
  const bool tcp = s.kind == Kind::kTcpRr || s.kind == Kind::kTcpCrr || s.kind == Kind::kTcpStream;

  // The servers: in server_netns and in every one of more_server_netns (a service's backends).
  std::vector<std::string> nets{s.server_netns};
  nets.insert(nets.end(), s.more_server_netns.begin(), s.more_server_netns.end());
  const uint16_t bind_port = s.server_port ? s.server_port : s.port;
  const bool shared_port = s.server_port != 0;  // UDP: every flow to the one (service) port
  if (nets.size() > 1 && !shared_port)
    throw Error("servers in several netns need a server port (WorkloadSpec::server_port)",
                ExitCode::kUsage);
  uint16_t port = 0;  // where the clients send to
  std::vector<Fd> udp_socks;
  std::vector<int> udp_owner;  // the flow whose socket it is; -1: shared by the flows
  std::vector<uint16_t> udp_ports;
  std::vector<Fd> listeners;
  if (tcp) {
    for (const auto& n : nets)
      listeners.push_back(server_socket(s, n, SOCK_STREAM, bind_port, &port));
    if (shared_port) port = s.port ? s.port : s.server_port;
  } else if (shared_port) {
    // Per netns one socket per flow on the same port: the kernel spreads the flows over them.
    for (const auto& n : nets)
      for (int f = 0; f < s.flows; ++f) {
        uint16_t p = 0;
        udp_socks.push_back(server_socket(s, n, SOCK_DGRAM, bind_port, &p, true));
        udp_owner.push_back(-1);
      }
    udp_ports.assign(s.flows, s.port ? s.port : s.server_port);
  } else {
    for (int f = 0; f < s.flows; ++f) {
      uint16_t p = 0;
      udp_socks.push_back(
          server_socket(s, s.server_netns, SOCK_DGRAM, s.port ? s.port + f : 0, &p));
      udp_owner.push_back(f);
      udp_ports.push_back(p);
    }
  }
  if (s.kind == Kind::kTcpCrr) {
    // Short connections leave TIME_WAIT behind on the client: allow their reuse and the whole
    // port range in the client netns (a pod netns the harness owns) so a long run cannot run out.
    write_sysctl_in(s.client_netns, "net.ipv4.tcp_tw_reuse", "1");
    write_sysctl_in(s.client_netns, "net.ipv4.ip_local_port_range", "1024 65535");
  }

  // Per flow (and server slot) one counter per variant (one when not alternated).
  std::vector<std::vector<metrics::Histogram>> hist(s.flows, std::vector<metrics::Histogram>(K));
  std::vector<std::vector<uint64_t>> tx(s.flows, std::vector<uint64_t>(K, 0));
  std::vector<uint64_t> retrans(s.flows, 0);
  // Server side: one slot per (server netns, flow).
  std::vector<std::vector<uint64_t>> bytes(nets.size() * s.flows, std::vector<uint64_t>(K, 0));
  std::vector<uint64_t> bad(nets.size() * s.flows, 0);
  std::vector<VariantTime> times(K);
  std::thread alternator;
  std::vector<UdpFlowState> udp(s.flows);

  auto start = Clock::now();
  sh.measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(s.warmup_s));
  sh.end = sh.measure_from +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.duration_s));
  if (alternated) {
    sh.phase = 0;  // nothing counts before the first segment's variant is in place
    alternator = guarded_thread(sh, alternate, std::cref(s), std::ref(sh), std::ref(times));
  }
  for (size_t j = 0; j < listeners.size(); ++j)
    for (int f = 0; f < s.flows; ++f) {
      const int listener = listeners[j].get();
      const size_t slot = j * s.flows + f;
      if (s.kind == Kind::kTcpStream)
        servers.push_back(guarded_thread(sh, tcp_stream_server, std::cref(s), std::ref(sh),
                                         listener, std::ref(bytes[slot]), std::ref(bad[slot]),
                                         nets.size() > 1, std::ref(stop)));
      else
        servers.push_back(
            guarded_thread(sh, tcp_rr_server, std::cref(s), listener, std::ref(stop)));
    }
  for (size_t j = 0; j < udp_socks.size(); ++j) {
    const int fd = udp_socks[j].get();
    if (s.kind == Kind::kUdpStream)
      servers.push_back(guarded_thread(sh, udp_stream_server, std::cref(s), fd, std::ref(udp),
                                       udp_owner[j], std::ref(stop)));
    else
      servers.push_back(guarded_thread(sh, udp_rr_server, std::cref(s), fd, std::ref(stop)));
  }
  for (int f = 0; f < s.flows; ++f) {
    switch (s.kind) {
      case Kind::kTcpRr:
      case Kind::kTcpCrr:
        clients.push_back(guarded_thread(sh, tcp_rr_client, std::cref(s), std::ref(sh), port,
                                         std::ref(hist[f]), std::ref(tx[f]),
                                         s.kind == Kind::kTcpCrr));
        break;
      case Kind::kTcpStream:
        clients.push_back(guarded_thread(sh, tcp_stream_client, std::cref(s), std::ref(sh), port,
                                         std::ref(retrans[f])));
        break;
      case Kind::kUdpStream:
        clients.push_back(guarded_thread(sh, udp_stream_client, std::cref(s), std::ref(sh),
                                         udp_ports[f], std::ref(udp[f]), s.udp_rate_pps / s.flows,
                                         static_cast<uint64_t>(f)));
        break;
      case Kind::kUdpRr:
        clients.push_back(guarded_thread(sh, udp_rr_client, std::cref(s), std::ref(sh),
                                         udp_ports[f], std::ref(hist[f]), std::ref(tx[f])));
        break;
    }
  }
  for (auto& t : clients) t.join();
  if (alternator.joinable()) alternator.join();
  if (s.kind == Kind::kUdpStream) {
    // Drain: let datagrams still queued arrive (until none came for 100 ms, at most 2 s).
    auto deadline = Clock::now() + std::chrono::seconds(2);
    uint64_t last = UINT64_MAX;
    while (Clock::now() < deadline) {
      uint64_t now_recv = 0;
      for (auto& u : udp) now_recv += u.received;
      if (now_recv == last) break;
      last = now_recv;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  stop = true;
  for (auto& t : servers) t.join();

  res.seconds = s.duration_s;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (auto b : bytes[i]) res.bytes += b;
    res.payload_errors += bad[i];
  }
  for (int f = 0; f < s.flows; ++f) {
    for (size_t v = 0; v < K; ++v) {
      res.latency.merge(hist[f][v]);
      res.transactions += tx[f][v];
    }
    res.tcp_retransmits += retrans[f];
    const auto& u = udp[f];
    res.udp_sent += u.sent;
    res.udp_received += u.received;
    res.udp_reordered += u.reordered;
    res.udp_duplicates += u.dups;
  }
  if (s.kind == Kind::kUdpStream) {
    res.udp_lost = res.udp_sent > res.udp_received ? res.udp_sent - res.udp_received : 0;
    res.bytes = res.udp_received * s.msg_size;
    res.seconds = s.duration_s + s.warmup_s;  // udp counts cover the whole run, warm-up included
  }
  if (alternated)
    for (size_t v = 0; v < K; ++v) {
      WorkloadResult r;
      r.kind = res.kind;
      r.seconds = times[v].seconds;
      r.cpu = times[v].cpu;
      r.segments = times[v].segments;
      res.segments += r.segments;
      for (const auto& b : bytes) r.bytes += b[v];
      for (int f = 0; f < s.flows; ++f) {
        r.latency.merge(hist[f][v]);
        r.transactions += tx[f][v];
      }
      r.tcp_retransmits = res.tcp_retransmits;
      r.payload_errors = res.payload_errors;
      r.errors = res.errors;
      r.first_error = res.first_error;
      res.variants.push_back(std::move(r));
    }
  return res;
}

}  // namespace hrb::traffic
