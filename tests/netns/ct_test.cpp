// Connection tracking and masquerade under churn, with real sockets across real namespaces: two
// pods on node1 open and close TCP connections to one ip:port of the external host, many more
// over the run than the (deliberately small) connection-tracking table holds, so the LRU evicts
// all the time and the pods' source ports collide and are reused. Expected, in legacy and in
// ebpf mode alike (and in bpf-lb, where iptables masquerades behind BPF connection tracking):
// every connection completes, and no reply reaches node1 without state (the
// from_uplink counter revnat_miss stays 0). Nothing here depends on how fast it runs: each
// flow makes a fixed number of connections, and only failures are counted. Over IPv4 and over
// IPv6 (a dual-stack cluster: NAT66 in ebpf mode, ip6tables' MASQUERADE in legacy and bpf-lb).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "core/fd.hpp"
#include "core/netns.hpp"
#include "datapath/ebpf.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/sockets.hpp"

using namespace hrb;
using namespace hrb::test;

namespace {

constexpr uint16_t kPort = 7777;
constexpr int kPods = 2, kFlowsPerPod = 4, kConnsPerFlow = 1000;  // 8,000 connections
constexpr uint32_t kCtEntries = 4096;  // 2,048 flows: each takes two entries
constexpr int kTimeoutMs = 5000;       // a lost SYN is retransmitted after 1 s; 5 s means broken

bool wait(int fd, short ev) {
  pollfd p{fd, ev, 0};
  return poll(&p, 1, kTimeoutMs) == 1 && !(p.revents & (POLLERR | POLLNVAL));
}

// Accepts, answers one byte with one byte, and closes after the client did (the client closes
// first, as tcp_crr does, so TIME_WAIT stays in the pods, where tcp_tw_reuse is on).
class Server {
 public:
  Server(const std::string& netns, int family) {
    fd_ = run_in_netns(netns, [family] {
      Fd s(socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0));
      int one = 1;
      setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      traffic::SockAddr a(traffic::IpAddr::any(family), kPort);
      if (bind(s.get(), a.ptr(), a.len) != 0) throw_errno("bind");
      if (listen(s.get(), 1024) != 0) throw_errno("listen");
      return s;
    });
    thread_ = std::thread([this] { loop(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 100) != 1) continue;
      int c = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::thread([c] {
        char b;
        if (wait(c, POLLIN) && read(c, &b, 1) == 1) {
          (void)!write(c, &b, 1);
          wait(c, POLLIN);  // the client's FIN
        }
        close(c);
      }).detach();
    }
  }
  Fd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Churn {
  std::atomic<uint64_t> ok{0}, failed{0};
  std::mutex m;
  std::string first_error;
  void fail(const std::string& why) {
    failed++;
    std::lock_guard g(m);
    if (first_error.empty()) first_error = why;
  }
};

// One client flow: connect, 1 byte, 1 byte back, close; kConnsPerFlow times.
void client(const std::string& netns, traffic::IpAddr dst, Churn& out) {
  NetnsGuard in(netns);
  for (int i = 0; i < kConnsPerFlow; ++i) {
    Fd s(socket(dst.family, SOCK_STREAM | SOCK_NONBLOCK, 0));
    traffic::SockAddr a(dst, kPort);
    int rc = connect(s.get(), a.ptr(), a.len);
    if (rc != 0 && errno != EINPROGRESS) {
      out.fail(std::string("connect: ") + strerror(errno));
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (!wait(s.get(), POLLOUT) || getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) || err) {
      out.fail(std::string("connect: ") + (err ? strerror(err) : "timed out"));
      continue;
    }
    char b = 'x';
    if (write(s.get(), &b, 1) != 1 || !wait(s.get(), POLLIN) || read(s.get(), &b, 1) != 1) {
      out.fail(std::string("exchange: ") + strerror(errno));
      continue;
    }
    out.ok++;
  }
}

// (mode, family); the dual-stack topology serves both families (its IPv4 is two-node's).
using ChurnParam = std::tuple<const char*, Family>;
class CtChurn : public SuiteCluster<CtChurn, ::testing::TestWithParam<ChurnParam>> {
 public:
  static constexpr const char* kTopology = "topologies/dual-stack.yaml";
  static constexpr const char* kTag = "tk";

 protected:
};

TEST_P(CtChurn, EveryConnectionCompletesAndNoReplyArrivesWithoutState) {
  HRB_REQUIRE_ROOT();
  const std::string mode = std::get<0>(GetParam());
  const bool v6 = std::get<1>(GetParam()) == Family::kIpv6;
  const auto& l = cluster_->layout();
  auto node_ports = [&] {  // the sysctl reads "61000\t65535"; kNodePortRange is "61000 65535"
    auto v = read_sysctl_in(l.nodes[0].netns, "net.ipv4.ip_local_port_range");
    std::replace(v.begin(), v.end(), '\t', ' ');
    return v;
  };
  std::vector<std::string> args{"mode", mode};
  if (mode != "legacy") args.insert(args.end(), {"--ct-entries", std::to_string(kCtEntries)});
  auto r = hrbench(args, cluster_->prefix());
  ASSERT_EQ(r.status, 0) << r.err;
  if (mode == "ebpf") {
    EXPECT_EQ(node_ports(), datapath::kNodePortRange)
        << "the node's own ports lie outside the masquerade range";
  }
  const auto& node = l.nodes[0];
  for (const auto& p : node.pods) write_sysctl_in(p.netns, "net.ipv4.tcp_tw_reuse", "1");

  Churn churn;
  {
    const auto& ext = l.externals[0];
    const traffic::IpAddr dst = v6 ? traffic::IpAddr(ext.address6) : traffic::IpAddr(ext.address);
    Server server(ext.netns, dst.family);
    std::vector<std::thread> clients;
    for (int i = 0; i < kPods; ++i)
      for (int f = 0; f < kFlowsPerPod; ++f)
        clients.emplace_back(client, node.pods[i].netns, dst, std::ref(churn));
    for (auto& t : clients) t.join();
  }
  EXPECT_EQ(churn.ok.load(), uint64_t{kPods * kFlowsPerPod * kConnsPerFlow});
  EXPECT_EQ(churn.failed.load(), 0u) << churn.first_error << " (" << churn.ok << " completed)";
  if (mode == "bpf-lb") {
    auto c = datapath::read_counters(l);
    EXPECT_GT(c[node.name]["from_pod"][HRB_R_CT_CREATED], uint64_t{kCtEntries})
        << "more flows than the table holds";
    EXPECT_EQ(c[node.name]["from_pod"][HRB_R_DROP_CT_FULL], 0u);
  }
  if (mode == "ebpf") {
    auto c = datapath::read_counters(l);
    const auto& up = c[node.name]["from_uplink"];
    const auto& pod = c[node.name]["from_pod"];
    EXPECT_EQ(up[HRB_R_REVNAT_MISS], 0u)
        << "replies without state; counters: " << datapath::counters_json(l).dump();
    EXPECT_EQ(pod[HRB_R_DROP_NO_PORT] + pod[HRB_R_DROP_CT_FULL], 0u);
    EXPECT_GT(pod[HRB_R_MASQ_NEW], 0u);
    EXPECT_GT(up[HRB_R_REVNAT_HIT], 0u);
  }
  ASSERT_EQ(hrbench({"mode", "none"}, cluster_->prefix()).status, 0);
  if (mode == "ebpf") {
    EXPECT_NE(node_ports(), datapath::kNodePortRange) << "restored";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CtChurn,
                         ::testing::Combine(::testing::Values("legacy", "bpf-lb", "ebpf"),
                                            ::testing::Values(Family::kIpv4, Family::kIpv6)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param);
                           std::replace(n.begin(), n.end(), '-', '_');
                           if (std::get<1>(info.param) == Family::kIpv6) n += "_ipv6";
                           return n;
                         });

}  // namespace
