// eBPF mode on a live two-node cluster: real programs on real veths, real packets.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/bpf.hpp"
#include "core/fd.hpp"
#include "core/netns.hpp"
#include "core/pins.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/iptables.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/reach.hpp"
#include "traffic/sockets.hpp"
#include "traffic/workload.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "verifier_reject.skel.h"

using namespace hrb;
using traffic::Proto;

namespace {

class Ebpf : public ::testing::Test {
 protected:
  void SetUp() override {
    HRB_REQUIRE_ROOT();
    cluster_ = std::make_unique<test::ClusterGuard>("topologies/two-node.yaml", "te");
  }
  void TearDown() override { cluster_.reset(); }
  const topology::Layout& l() { return cluster_->layout(); }
  void mode(const std::string& m, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"mode", m};
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = test::hrbench(a, cluster_->prefix());
    ASSERT_EQ(r.status, 0) << r.err;
  }
  // Programs attached with tcx ingress on a device of a netns (BPF_PROG_QUERY, as bpftool
  // does). A query that fails (no such device, ...) is a test failure, never "0 programs".
  // The count, or -errno.
  int64_t tcx_query(const std::string& netns, const std::string& dev) {
    return test::tcx_query(netns, dev);
  }
  uint32_t tcx_programs(const std::string& netns, const std::string& dev) {
    const int64_t n = tcx_query(netns, dev);
    EXPECT_GE(n, 0) << "BPF_PROG_QUERY (tcx ingress) of " << dev << " in " << netns << ": "
                    << std::strerror(static_cast<int>(-n));
    return n < 0 ? UINT32_MAX : static_cast<uint32_t>(n);
  }
  void all_pairs_reach(bool expect_masq_to_ext) {
    for (const auto* a : l().pods()) {
      for (const auto* b : l().pods()) {
        if (a == b) continue;
        for (Proto p : {Proto::kTcp, Proto::kUdp}) {
          auto r = traffic::reach({p, a->netns, b->netns, b->ip});
          EXPECT_TRUE(r.ok) << traffic::proto_name(p) << " " << a->name << " -> " << b->name << ": "
                            << r.error;
          EXPECT_EQ(r.peer_seen, a->ip);
        }
      }
      const auto& ext = l().externals[0];
      for (Proto p : {Proto::kTcp, Proto::kUdp}) {
        auto r = traffic::reach({p, a->netns, ext.netns, ext.address});
        EXPECT_TRUE(r.ok) << traffic::proto_name(p) << " " << a->name << " -> ext: " << r.error;
        EXPECT_EQ(r.peer_seen, expect_masq_to_ext ? l().nodes[a->node].underlay_ip : a->ip);
      }
    }
  }
  std::unique_ptr<test::ClusterGuard> cluster_;
};

TEST_F(Ebpf, ConnectivityMatrixAndMasqueradeHold) {
  mode("ebpf");
  all_pairs_reach(true);
  auto c = datapath::read_counters(l());
  ASSERT_EQ(c.size(), 2u);
  for (const auto& n : l().nodes) {
    EXPECT_GT(c[n.name]["from_pod"][HRB_R_REDIRECT_PEER], 0u) << n.name;
    EXPECT_GT(
        c[n.name]["from_pod"][HRB_R_REDIRECT_FIB] + c[n.name]["from_pod"][HRB_R_REDIRECT_NEIGH], 0u)
        << n.name;
    EXPECT_GT(c[n.name]["from_pod"][HRB_R_MASQ_NEW], 0u) << n.name;
    EXPECT_GT(c[n.name]["from_uplink"][HRB_R_REVNAT_HIT], 0u) << n.name;
    EXPECT_GT(c[n.name]["from_uplink"][HRB_R_REDIRECT_PEER], 0u) << n.name;
  }
}

TEST_F(Ebpf, IptablesIsBypassedWhileLegacyCountsTheSameTraffic) {
  // Same traffic, both modes, with kube-proxy-scale rules installed: in legacy the node's
  // netfilter counters rise; in ebpf they stay at zero (the bypass is measured, not assumed).
  for (const char* m : {"legacy", "ebpf"}) {
    mode(m, {"--services", "50"});
    const auto before = test::iptables_rule_packets(l());
    all_pairs_reach(true);
    const std::string moved = test::moved_chain_rules(before, test::iptables_rule_packets(l()));
    for (const auto& n : l().nodes) {
      const bool counted = moved.find(n.netns + " ") != std::string::npos;
      if (std::string(m) == "legacy")
        EXPECT_TRUE(counted) << "legacy: " << n.name << " counted nothing";
      else
        EXPECT_FALSE(counted) << "ebpf: " << n.name << "'s iptables saw traffic:\n"
                              << moved << "BPF counters: " << datapath::counters_json(l()).dump();
    }
  }
}

TEST_F(Ebpf, SwitchingModesLeavesNoProgramBehind) {
  mode("ebpf");
  const auto& n1 = l().nodes[0];
  EXPECT_EQ(tcx_programs(n1.netns, "eth0"), 1u);
  EXPECT_EQ(tcx_programs(n1.netns, "lxc1"), 1u);
  mode("legacy");
  for (const auto& n : l().nodes) {
    EXPECT_EQ(tcx_programs(n.netns, n.uplink), 0u) << n.name;
    for (const auto& p : n.pods) EXPECT_EQ(tcx_programs(n.netns, p.lxc), 0u) << p.lxc;
  }
  EXPECT_FALSE(std::filesystem::exists(pins::root(cluster_->prefix())));
  EXPECT_EQ(tcx_query(n1.netns, "no-such-dev"), -ENODEV) << "a failed query must not read as 0";
  all_pairs_reach(true);  // legacy works right after the switch: nothing stale in the way
  mode("ebpf");
  EXPECT_EQ(tcx_programs(n1.netns, "eth0"), 1u);
  all_pairs_reach(true);
  mode("none");
  EXPECT_EQ(tcx_programs(n1.netns, "eth0"), 0u);
  all_pairs_reach(false);  // no masquerade without a mode: the external host sees pod IPs
}

// --attach clsact (docs/scale.md): the same datapath as cls_bpf filters instead of tcx links;
// removal takes the filters and the clsact qdiscs the harness created, and keeps one that was
// there before.
TEST_F(Ebpf, ClsactAttachmentWorksAndLeavesTheDevicesAsTheyWere) {
  const auto& n1 = l().nodes[0];
  auto qdiscs = [&](const std::string& dev) {
    auto r = run_cmd({"tc", "qdisc", "show", "dev", dev}, {.netns = n1.netns});
    EXPECT_TRUE(r.ok()) << r.err;
    return r.out;
  };
  auto filters = [&](const std::string& dev, const char* hook) {
    return run_cmd({"tc", "filter", "show", "dev", dev, hook}, {.netns = n1.netns}).out;
  };
  ASSERT_TRUE(run_cmd({"tc", "qdisc", "add", "dev", "lxc2", "clsact"}, {.netns = n1.netns}).ok());
  for (const char* m : {"ebpf", "bpf-lb"}) {
    SCOPED_TRACE(m);
    mode(m, {"--attach", "clsact"});
    EXPECT_EQ(tcx_programs(n1.netns, "lxc1"), 0u) << "no tcx link";
    EXPECT_NE(filters("lxc1", "ingress").find("from_pod"), std::string::npos);
    if (std::string(m) == "ebpf")
      EXPECT_NE(filters("eth0", "ingress").find("from_uplink"), std::string::npos);
    else
      EXPECT_NE(filters("lxc1", "egress").find("to_pod"), std::string::npos);
    all_pairs_reach(true);
    auto c = datapath::read_counters(l());
    EXPECT_GT(
        c[n1.name]["from_pod"][std::string(m) == "ebpf" ? HRB_R_REDIRECT_PEER : HRB_R_STACK_ROUTES],
        0u);
  }
  mode("none");
  EXPECT_EQ(qdiscs("lxc1").find("clsact"), std::string::npos) << qdiscs("lxc1");
  EXPECT_EQ(qdiscs(n1.uplink).find("clsact"), std::string::npos) << qdiscs(n1.uplink);
  EXPECT_NE(qdiscs("lxc2").find("clsact"), std::string::npos) << "the qdisc that was there stays";
  EXPECT_EQ(filters("lxc2", "ingress").find("from_pod"), std::string::npos);
  auto bad = test::hrbench({"mode", "ebpf", "--attach", "bogus"}, cluster_->prefix());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--attach: expected tcx or clsact"), std::string::npos) << bad.err;
}

// Path-MTU discovery to a ClusterIP: node1's uplink MTU lowered to 1400, a pod sends a 1450-byte
// datagram with DF to a service backed on node2. BPF hands it to the stack untranslated
// (to_stack_frag_needed), kube-proxy's rules underneath DNAT it, the stack answers
// "fragmentation needed" and netfilter gives the quoted header the service address back: the
// pod's socket, connected to the service address, takes the error and its path MTU becomes 1400.
// (While BPF DNATed before its MTU check, the error quoted the backend and no socket took it.)
TEST_F(Ebpf, PathMtuDiscoveryToAClusterIpWorks) {
  mode("ebpf", {"--services", "4", "--endpoints-per-service", "1"});
  const auto ep = datapath::service_endpoints(l(), 2, 1)[0];
  ASSERT_EQ(ep.node, 1) << "svc-2's endpoint is on node2";
  const auto& n1 = l().nodes[0];
  run_cmd({"ip", "link", "set", n1.uplink, "mtu", "1400"}, {.netns = n1.netns});
  auto frag_needed = [&] {
    uint64_t n = 0;
    const auto all = datapath::read_counters(l());
    for (const auto& [prog, c] : all.at(n1.name)) n += c[HRB_R_TO_STACK_FRAG_NEEDED];
    return n;
  };
  const uint64_t before = frag_needed();
  struct Seen {
    int polled = 0, error = 0, mtu = 0;
  };
  const Seen seen = run_in_netns(n1.pods[0].netns, [&] {
    Seen r;
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    int v = IP_PMTUDISC_DO, one = 1;
    ::setsockopt(s.get(), IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
    ::setsockopt(s.get(), IPPROTO_IP, IP_RECVERR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(datapath::kServicePort);
    a.sin_addr.s_addr = datapath::service_ip(l(), 2).be();
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return r;
    std::vector<char> payload(1450, 'x');
    if (::send(s.get(), payload.data(), payload.size(), 0) != 1450) return r;
    pollfd p{s.get(), POLLERR, 0};
    r.polled = ::poll(&p, 1, 3000);  // the ICMP error, queued on the socket (a bound, no sleep)
    socklen_t len = sizeof r.error;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &r.error, &len);
    len = sizeof r.mtu;
    ::getsockopt(s.get(), IPPROTO_IP, IP_MTU, &r.mtu, &len);
    return r;
  });
  EXPECT_GT(frag_needed(), before) << "BPF handed the datagram to the stack";
  EXPECT_EQ(seen.polled, 1) << "no ICMP error reached the socket connected to the service";
  EXPECT_EQ(seen.error, EMSGSIZE);
  EXPECT_EQ(seen.mtu, 1400);
}

TEST_F(Ebpf, ClusterIpWorksWithLocalAndRemoteEndpointsAndTouchesNoIptablesRule) {
  // Services are load-balanced in BPF (kube-proxy replacement): DNAT at the client's veth, the
  // replies reversed before delivery. kube-proxy's chains stay installed underneath, bypassed:
  // no rule of their chains in any node netns moves, neither for service nor for pod-to-pod
  // traffic (test::moved_chain_rules says why the built-in chains' jumps are left out).
  mode("ebpf", {"--services", "8"});
  ASSERT_GT(datapath::rule_counters(l().nodes[0].netns, datapath::Backend::kNft).size(), 40u)
      << "kube-proxy's rules are installed";
  const auto before = test::iptables_rule_packets(l());
  int local = 0, remote = 0;
  for (int i = 0; i < 8; ++i) {
    auto ep = datapath::service_endpoints(l(), i, 1)[0];
    for (const auto* client : l().pods()) {
      if (client->name == ep.name) continue;
      traffic::ReachSpec s{Proto::kTcp, client->netns, ep.netns, datapath::service_ip(l(), i),
                           datapath::kServiceTargetPort};
      s.dst_port = datapath::kServicePort;
      auto r = traffic::reach(s);
      EXPECT_TRUE(r.ok) << client->name << " -> svc-" << i << " (endpoint " << ep.name
                        << "): " << r.error;
      (client->node == ep.node ? local : remote)++;
    }
  }
  EXPECT_GT(local, 0);
  EXPECT_GT(remote, 0);
  all_pairs_reach(true);  // pod-to-pod (and pod-to-external, masqueraded in BPF)
  uint64_t lb_new = 0, reversed = 0, to_stack = 0;
  for (const auto& [node, progs] : datapath::read_counters(l()))
    for (const auto& [prog, c] : progs) {
      lb_new += c[HRB_R_LB_NEW];
      reversed += c[HRB_R_LB_REVERSE];
      to_stack += c[HRB_R_TO_STACK_SERVICE] + c[HRB_R_TO_STACK_NO_SERVICE] +
                  c[HRB_R_TO_STACK_SERVICE_REPLY];
    }
  EXPECT_GT(lb_new, 0u);
  EXPECT_GT(reversed, 0u);
  EXPECT_EQ(to_stack, 0u);
  EXPECT_EQ(test::moved_chain_rules(before, test::iptables_rule_packets(l())), "")
      << "an iptables rule counted a packet; BPF counters: " << datapath::counters_json(l()).dump();
}

// bpf-lb: the DNAT in BPF at the client's veth, the stack routes, and the reply gets its service
// address back at the client's lxc egress (to_pod), after the stack's forwarding — also when
// client and backend share a node (a reply reversed before the stack would be INVALID to
// netfilter's conntrack, which knows the connection by the backend's address).
TEST_F(Ebpf, BpfLbClusterIpReachesLocalAndRemoteEndpoints) {
  mode("bpf-lb", {"--services", "4"});
  int local = 0, remote = 0;
  for (int i = 0; i < 4; ++i) {
    auto ep = datapath::service_endpoints(l(), i, 1)[0];
    for (const auto* client : l().pods()) {
      if (client->name == ep.name) continue;
      for (Proto p : {Proto::kTcp, Proto::kUdp}) {
        traffic::ReachSpec s{p, client->netns, ep.netns, datapath::service_ip(l(), i),
                             datapath::kServiceTargetPort};
        s.dst_port = datapath::kServicePort;
        auto r = traffic::reach(s);
        EXPECT_TRUE(r.ok) << client->name << " -> svc-" << i << " " << traffic::proto_name(p)
                          << " (endpoint " << ep.name << "): " << r.error;
        if (r.ok) (client->node == ep.node ? local : remote)++;
      }
    }
  }
  EXPECT_EQ(local, 4 * 1 * 2);
  EXPECT_EQ(remote, 4 * 2 * 2);
  uint64_t lb_new = 0, reversed_at_pod = 0;
  for (const auto& [node, progs] : datapath::read_counters(l())) {
    lb_new += progs.at("from_pod")[HRB_R_LB_NEW];
    reversed_at_pod += progs.at("from_pod")[HRB_R_LB_REVERSE];
  }
  EXPECT_GE(lb_new, 24u);
  EXPECT_GT(reversed_at_pod, 0u);
}

TEST_F(Ebpf, DownRemovesThePins) {
  mode("ebpf");
  std::string pin_root = pins::root(cluster_->prefix());
  EXPECT_TRUE(std::filesystem::exists(pin_root));
  cluster_.reset();
  EXPECT_FALSE(std::filesystem::exists(pin_root));
}

// Through the BPF masquerade both ways: every byte of a stream arrives as sent, and no UDP
// datagram is lost on the path. A datagram may still be lost where the machine's load, not the
// datapath, decides (a full receive buffer, a full input backlog): those are counted by the
// kernel and every loss must be one of them.
TEST_F(Ebpf, StreamThroughMasqueradeArrivesByteExactAndUdpIsNotLost) {
  mode("ebpf");
  const auto* pod = l().pods()[0];
  const auto& ext = l().externals[0];
  traffic::WorkloadSpec w;
  w.kind = traffic::Kind::kTcpStream;
  w.client_netns = pod->netns;
  w.server_netns = ext.netns;
  w.dst = ext.address;
  w.duration_s = 1;
  w.warmup_s = 0;
  w.verify_payload = true;
  auto r = traffic::run_workload(w);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_GT(r.bytes, 0u) << "nothing arrived";
  EXPECT_EQ(r.payload_errors, 0u);

  traffic::WorkloadSpec u;
  u.kind = traffic::Kind::kUdpStream;
  u.client_netns = pod->netns;
  u.server_netns = ext.netns;
  u.dst = ext.address;
  u.duration_s = 1;
  u.warmup_s = 0;
  u.udp_rate_pps = 2000;
  for (const char* m : {"legacy", "ebpf"}) {
    mode(m);
    auto snmp0 = test::udp_snmp(ext.netns);
    auto backlog0 = test::softnet_dropped();
    auto res = traffic::run_workload(u);
    auto snmp1 = test::udp_snmp(ext.netns);
    const uint64_t at_socket =
        (snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"]) + (snmp1["NoPorts"] - snmp0["NoPorts"]);
    const uint64_t backlog = test::softnet_dropped() - backlog0;  // machine-wide
    EXPECT_EQ(res.errors, 0u) << m << ": " << res.first_error;
    EXPECT_GT(res.udp_sent, 0u) << m;
    EXPECT_EQ(res.udp_received + res.udp_lost, res.udp_sent) << m;
    EXPECT_GE(res.udp_lost, at_socket) << m;
    EXPECT_LE(res.udp_lost, at_socket + backlog)
        << m << ": datagrams lost on the path (" << at_socket << " at the receiving socket, "
        << backlog << " in input backlogs)";
    EXPECT_EQ(res.udp_duplicates, 0u) << m;
  }
}

// A pod closing a masqueraded flow to the external host: its FIN and its RST arrive translated
// like the data before them (the server's socket matches them: an untranslated one would be
// ignored or answered with a RST of the server's own), and the server's FIN comes back. Legacy
// and ebpf mode alike; real sockets, timeouts only to detect a failure.
TEST_F(Ebpf, FinAndRstFromAPodCloseAMasqueradedFlow) {
  const auto* pod = l().pods()[0];
  const auto& ext = l().externals[0];
  const std::string masq = l().nodes[pod->node].underlay_ip.str();
  auto timeouts = [](int fd) {
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  };
  Fd listener = run_in_netns(ext.netns, [&] {
    Fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    traffic::SockAddr a(ext.address, 0);
    if (!s || bind(s.get(), a.ptr(), a.len) != 0 || listen(s.get(), 4) != 0)
      throw_errno("listen in " + ext.netns);
    return s;
  });
  traffic::SockAddr bound;
  getsockname(listener.get(), bound.ptr(), &bound.len);
  const uint16_t port = bound.port();
  // Connects pod -> ext, checks the flow is masqueraded and carries a byte; returns both ends.
  auto open_flow = [&](const char* m) {
    Fd c =
        run_in_netns(pod->netns, [] { return Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); });
    timeouts(c.get());
    traffic::SockAddr dst(ext.address, port);
    EXPECT_EQ(connect(c.get(), dst.ptr(), dst.len), 0)
        << m << ": connect: " << std::strerror(errno);
    EXPECT_TRUE(traffic::wait_fd(listener.get(), POLLIN, 10000)) << m << ": no connection";
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    Fd srv(accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC));
    EXPECT_TRUE(srv) << m << ": accept: " << std::strerror(errno);
    timeouts(srv.get());
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    EXPECT_EQ(std::string(ip), masq) << m << ": the flow is not masqueraded";
    char b = 'x';
    EXPECT_EQ(send(c.get(), &b, 1, 0), 1) << m;
    EXPECT_EQ(recv(srv.get(), &b, 1, 0), 1) << m << ": " << std::strerror(errno);
    return std::pair{std::move(c), std::move(srv)};
  };
  for (const char* m : {"legacy", "ebpf"}) {
    mode(m);
    {  // FIN: the server reads end-of-file, closes, and the pod reads the server's FIN.
      auto [c, srv] = open_flow(m);
      ASSERT_EQ(shutdown(c.get(), SHUT_WR), 0);
      char b;
      EXPECT_EQ(recv(srv.get(), &b, 1, 0), 0)
          << m << ": the pod's FIN did not arrive (" << std::strerror(errno) << ")";
      srv.reset();
      EXPECT_EQ(recv(c.get(), &b, 1, 0), 0)
          << m << ": the server's FIN did not come back (" << std::strerror(errno) << ")";
    }
    {  // RST: an abortive close (SO_LINGER 0) resets the server's connection.
      auto [c, srv] = open_flow(m);
      linger lg{1, 0};
      ASSERT_EQ(setsockopt(c.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
      c.reset();
      char b;
      errno = 0;
      EXPECT_EQ(recv(srv.get(), &b, 1, 0), -1) << m;
      EXPECT_EQ(errno, ECONNRESET)
          << m << ": the pod's RST did not arrive (" << std::strerror(errno) << ")";
    }
  }
}

TEST(EbpfLoad, VerifierRejectionCarriesTheVerifierLog) {
  HRB_REQUIRE_ROOT();
  try {
    Skeleton<verifier_reject> s;
    s.load("verifier_reject");
    FAIL() << "the verifier accepted an unchecked packet read";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("verifier_reject"), std::string::npos) << m;
    EXPECT_NE(m.find("invalid access to packet"), std::string::npos)
        << "the verifier's own words are missing:\n"
        << m;
  }
}

}  // namespace
