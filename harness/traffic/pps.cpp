#include "traffic/pps.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <net/if.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/bpf.hpp"
#include "core/fd.hpp"
#include "core/netns.hpp"
#include "core/process.hpp"
#include "traffic/sockets.hpp"

// Generated skeleton.
#include "pktgen.skel.h"

namespace hrb::traffic {

nlohmann::json PpsResult::to_json() const {
  // errors: as for the socket workloads; a pps run has no per-packet errors (a failure throws).
  return {
      {"workload", "pps"},    {"seconds", seconds},          {"sent", sent},
      {"received", received}, {"sentPerSecond", sent_pps()}, {"receivedPerSecond", received_pps()},
      {"errors", 0}};
}

namespace {

uint16_t ip_checksum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// A 60-byte Ethernet/IPv4/UDP frame (UDP without checksum).
std::vector<uint8_t> frame(const std::array<uint8_t, 6>& dst_mac,
                           const std::array<uint8_t, 6>& src_mac, Ipv4 src, Ipv4 dst,
                           uint16_t port) {
  std::vector<uint8_t> b(60, 0);
  std::memcpy(&b[0], dst_mac.data(), 6);
  std::memcpy(&b[6], src_mac.data(), 6);
  b[12] = 0x08;
  uint8_t* ip = &b[14];
  ip[0] = 0x45;
  ip[3] = 46;  // total length: 20 + 8 + 18
  ip[8] = 64;
  ip[9] = 17;
  uint32_t s = src.be(), d = dst.be();
  std::memcpy(ip + 12, &s, 4);
  std::memcpy(ip + 16, &d, 4);
  uint16_t c = htons(ip_checksum(ip, 20));
  std::memcpy(ip + 10, &c, 2);
  uint16_t sp = htons(40000), dp = htons(port), len = htons(26);
  std::memcpy(ip + 20, &sp, 2);
  std::memcpy(ip + 22, &dp, 2);
  std::memcpy(ip + 24, &len, 2);
  return b;
}

}  // namespace

Ipv4 pps_source(const topology::Layout& l) {
  return l.externals.empty() ? l.nodes.at(0).underlay_ip : l.externals[0].address;
}

PpsSpec pps_spec_for_pod(const topology::Layout& l, const std::string& pod) {
  PpsSpec ps;
  for (const auto& n : l.nodes)
    for (const auto& p : n.pods)
      if (p.name == pod) {
        ps.node = &n;
        ps.pod = &p;
      }
  if (!ps.pod) throw Error("pps: no pod named '" + pod + "'", ExitCode::kNotFound);
  ps.src = pps_source(l);
  return ps;
}

PpsResult run_pps(const topology::Layout& l, const PpsSpec& s) {
  if (!s.node || !s.pod) throw Error("pps: node and pod are required", ExitCode::kUsage);
  const auto& node = *s.node;
  // GRO on the receiving veth for the run.
  auto gro = run_cmd({"ethtool", "-k", node.uplink}, {.netns = node.netns}).out;
  const bool gro_was_on = gro.find("generic-receive-offload: on") != std::string::npos;
  run_cmd({"ethtool", "-K", node.uplink, "gro", "on"}, {.netns = node.netns});
  struct RestoreGro {
    const topology::NodeLayout& n;
    bool was_on;
    ~RestoreGro() {
      if (!was_on)
        run_cmd({"ethtool", "-K", n.uplink, "gro", "off"}, {.netns = n.netns, .check = false});
    }
  } restore{node, gro_was_on};

  // The receiver: a UDP socket in the pod.
  Fd rx = run_in_netns(s.pod->netns, [&] {
    Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int big = 8 << 20;
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    SockAddr a(Ipv4{0}, s.port);
    if (bind(fd.get(), a.ptr(), a.len) != 0) throw_errno("bind pps receiver in " + s.pod->netns);
    return fd;
  });
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> received{0};
  std::thread counter([&] {
    mmsghdr msgs[64];
    char bufs[64][64];
    iovec iov[64];
    for (int i = 0; i < 64; ++i) {
      iov[i] = {bufs[i], sizeof bufs[i]};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop) {
      if (!wait_fd(rx.get(), POLLIN, 50)) continue;
      int n;
      while ((n = recvmmsg(rx.get(), msgs, 64, MSG_DONTWAIT, nullptr)) > 0) received += n;
    }
  });
  struct JoinCounter {  // on every exit path, also when the generator throws
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinCounter() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_counter{stop, counter};

  // The generator, in the fabric netns.
  const std::string port_dev = node.fabric_port;
  auto dst_mac = run_in_netns(node.netns, [&] { return mac_of(node.uplink); });
  auto src_mac = run_in_netns(l.fabric_netns, [&] { return mac_of(port_dev); });
  auto pkt = frame(dst_mac, src_mac, s.src, s.pod->ip, s.port);
  Skeleton<pktgen> gen;
  unsigned ifindex = run_in_netns(l.fabric_netns, [&] { return if_nametoindex(port_dev.c_str()); });
  gen->rodata->target_ifindex = ifindex;
  static_assert(sizeof(gen->rodata->header) == 42);
  std::memcpy(const_cast<uint8_t*>(gen->rodata->header), pkt.data(), 42);
  gen.load("pktgen");
  PpsResult r;
  auto t0 = std::chrono::steady_clock::now();
  auto end = t0 + std::chrono::duration<double>(s.duration_s);
  run_in_netns(l.fabric_netns, [&] {
    xdp_md ctx{};
    ctx.data_end = static_cast<__u32>(pkt.size());  // the kernel wants data_end == data size
    ctx.ingress_ifindex = ifindex;
    while (std::chrono::steady_clock::now() < end) {
      bpf_test_run_opts o{};
      o.sz = sizeof o;
      o.data_in = pkt.data();
      o.data_size_in = pkt.size();
      o.ctx_in = &ctx;
      o.ctx_size_in = sizeof ctx;
      o.repeat = s.batch;
      o.batch_size = 256;  // frames per kernel batch (the default is 64)
      o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
      // The kernel stops a test run early with EINTR when a signal is pending for the thread
      // (bpf_test_timer_continue); the frames sent until then are counted (bss frames): go on.
      if (bpf_prog_test_run_opts(bpf_program__fd(gen->progs.pktgen), &o) != 0 && errno != EINTR)
        throw_errno("bpf_prog_test_run_opts(XDP live frames)");
    }
  });
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.sent = gen->bss->frames;
  // Drain: until nothing more arrives for 100 ms.
  for (uint64_t last = UINT64_MAX; received != last;) {
    last = received;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  counter.join();
  r.received = received;
  return r;
}

}  // namespace hrb::traffic
