// NodePort from the external host (bpf/lib/nodeport.h): the real compiled from_uplink / from_pod
// objects under BPF_PROG_TEST_RUN inside node1 of a real two-node cluster, with the maps filled
// from the cluster's one service list (4 services, each with a NodePort). A test run cannot
// redirect: the verdict is asserted, and the helper and ifindex come from the programs' record
// (record_redirects). The suite shares one cluster (SuiteCluster, tests/support).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <optional>
#include <set>

#include "core/netns.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "support/frame.hpp"
#include "support/packet.hpp"
#include "support/prog_run.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "from_pod.skel.h"
#include "from_uplink.skel.h"

using namespace hrb;
using namespace hrb::test;
using datapath::NodePrograms;

namespace {

constexpr int kPeer = 1, kFib = 2;
constexpr uint8_t kSyn = 0x02, kSynAck = 0x12, kAck = 0x10;

using RunResult = test::ProgRun;

class NodePort : public SuiteCluster<NodePort> {
 public:
  static constexpr const char* kTopology = "topologies/two-node.yaml";
  static constexpr const char* kTag = "np";

 protected:
  void SetUp() override {
    HRB_REQUIRE_ROOT();
    progs_ = std::make_unique<NodePrograms>(l(), node(), masq(), opts());
    // The FIB answers SUCCESS (neighbour known) for node2 and the external host.
    run_cmd({"ping", "-c1", "-W1", l().nodes[1].underlay_ip.str()}, {.netns = node().netns});
    run_cmd({"ping", "-c1", "-W1", ext().underlay_ip.str()}, {.netns = node().netns});
  }
  virtual int endpoints_per_service() { return 1; }
  datapath::ProgramOptions opts() {
    return {.record_redirects = true,
            .lb_services = 4,
            .lb_endpoints_per_service = endpoints_per_service()};
  }
  static datapath::MasqConfig masq() {
    return datapath::parse_masq_config_file(source_path("topologies/ip-masq-agent.yaml"));
  }
  static const topology::Layout& l() { return cluster_->layout(); }
  static const topology::NodeLayout& node() { return l().nodes[0]; }
  static const topology::PodLayout& pod(int node, int i) { return l().nodes[node].pods[i]; }
  static const topology::ExternalLayout& ext() { return l().externals[0]; }
  Ipv4 node_ip() const { return node().underlay_ip; }
  // With one endpoint each, services 0 and 1 are backed on node1, 2 and 3 on node2.
  topology::PodLayout backend(int i) { return datapath::service_endpoints(l(), i, 1)[0]; }
  uint16_t np(int i) { return *datapath::node_port(i); }

  unsigned ifindex(const std::string& netns, const std::string& name) {
    return run_in_netns(netns, [&] { return if_nametoindex(name.c_str()); });
  }
  std::string mac(const std::string& netns, const std::string& dev) {
    return mac_str(run_in_netns(netns, [&] { return mac_of(dev); }).data());
  }
  Mac mac_of_dev(const std::string& netns, const std::string& dev) {
    return run_in_netns(netns, [&] { return mac_of(dev); });
  }
  // An outer header src -> dst as node1 sends it out of its uplink to the external host or to
  // node2 (after its hop: TTL 63), or into one of its pods.
  PacketSpec out_to(Ipv4 src, Ipv4 dst, const std::string& hop_netns) {
    PacketSpec o;
    o.src = src;
    o.dst = dst;
    o.ttl = 63;
    o.src_mac = mac_of_dev(node().netns, node().uplink);
    o.dst_mac = mac_of_dev(hop_netns, "eth0");
    return o;
  }
  PacketSpec into(Ipv4 src, const topology::PodLayout& pod) {
    PacketSpec o;
    o.src = src;
    o.dst = pod.ip;
    o.ttl = 63;
    o.src_mac = mac_of_dev(node().netns, pod.lxc);
    o.dst_mac = mac_of_dev(pod.netns, pod.ifname);
    return o;
  }
  RunResult run(int prog_fd, const Bytes& in, const std::string& ingress) {
    return test::run_program(*progs_, node().netns, prog_fd, in, ingress);
  }
  RunResult from_uplink(const PacketSpec& s) {
    return run(progs_->from_uplink_fd(), build(s), "eth0");
  }
  RunResult from_pod(const PacketSpec& s, const std::string& lxc) {
    return run(progs_->from_pod_fd(), build(s), lxc);
  }
  uint64_t counter(const char* prog, int reason) { return progs_->counters(prog)[reason]; }
  int ct() { return progs_->map_fd("ct"); }
  std::optional<hrb_ct_entry> get(const hrb_ct_key& k) {
    hrb_ct_entry v{};
    if (bpf_map_lookup_elem(ct(), &k, &v) != 0) return std::nullopt;
    return v;
  }
  // The claim of SNAT port `port` towards backend b:8080.
  static hrb_ct_key claim_key(Ipv4 b, uint16_t port, uint8_t proto = 6) {
    hrb_ct_key k{};
    k.src_ip = b.be();
    k.dst_ip = cluster_->layout().nodes[0].underlay_ip.be();
    k.src_port = htons(datapath::kServiceTargetPort);
    k.dst_port = htons(port);
    k.proto = proto;
    k.kind = HRB_CT_NAT_REV;
    return k;
  }

  // The external host (from `client`: its fabric address, or its "outside" one) to node1's IP
  // at service i's NodePort, and a backend's answer to it.
  PacketSpec to_nodeport(int i, Ipv4 client, uint16_t cport = 40000, uint8_t flags = kSyn,
                         uint8_t proto = 6) {
    PacketSpec s;
    s.proto = proto;
    s.src = client;
    s.dst = node_ip();
    s.sport = cport;
    s.dport = np(i);
    s.tcp_flags = flags;
    return s;
  }
  PacketSpec from_backend(Ipv4 b, Ipv4 dst, uint16_t dport, uint8_t flags = kSynAck,
                          uint8_t proto = 6) {
    PacketSpec r;
    r.proto = proto;
    r.src = b;
    r.dst = dst;
    r.sport = datapath::kServiceTargetPort;
    r.dport = dport;
    r.tcp_flags = flags;
    return r;
  }

  std::unique_ptr<NodePrograms> progs_;
};

#define EXPECT_CHECKSUMS_OK(pkt)                                          \
  do {                                                                    \
    EXPECT_TRUE(ip_csum_ok(pkt)) << "IP checksum: " << decode(pkt).str(); \
    EXPECT_TRUE(l4_csum_ok(pkt)) << "L4 checksum: " << decode(pkt).str(); \
  } while (0)

TEST_F(NodePort, EveryServiceOfTheListHasOneUpToTheRangesEnd) {
  EXPECT_EQ(datapath::node_port(0), 30000);
  EXPECT_EQ(datapath::node_port(2767), 32767);
  EXPECT_FALSE(datapath::node_port(2768)) << "beyond 30000-32767: no NodePort";
  EXPECT_FALSE(datapath::node_port(-1));
}

// A backend on this node: DNAT and redirect_peer; the backend's answer passes from_pod, gets the
// node IP and NodePort back as its source and leaves along the FIB — for a client in a
// nonMasqueradeCIDR (the fabric address) and one that is masqueraded (the "outside" address).
TEST_F(NodePort, ALocalBackendIsDeliveredAndItsAnswerGetsTheNodePortBack) {
  ASSERT_EQ(backend(1).name, pod(0, 1).name);
  for (Ipv4 client : {ext().underlay_ip, ext().address}) {
    SCOPED_TRACE(client.str());
    const uint16_t cport = client == ext().address ? 40001 : 40000;
    auto r = from_uplink(to_nodeport(1, client, cport));
    ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(r.redirect.helper, kPeer);
    EXPECT_EQ(r.redirect.ifindex, ifindex(node().netns, "lxc2"));
    auto d = decode(r.out);
    EXPECT_EQ(d.dst, pod(0, 1).ip) << d.str();
    EXPECT_EQ(d.dport, datapath::kServiceTargetPort);
    EXPECT_EQ(d.src, client) << "a local backend sees the client";
    EXPECT_EQ(d.sport, cport);
    EXPECT_EQ(d.dst_mac, mac(pod(0, 1).netns, "eth0"));
    EXPECT_EQ(d.ttl, 63);
    EXPECT_CHECKSUMS_OK(r.out);

    auto back = from_pod(from_backend(pod(0, 1).ip, client, cport), "lxc2");
    ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(back.redirect.helper, kFib);
    EXPECT_EQ(back.redirect.ifindex, ifindex(node().netns, "eth0"));
    auto b = decode(back.out);
    EXPECT_EQ(b.src, node_ip()) << b.str();
    EXPECT_EQ(b.sport, np(1));
    EXPECT_EQ(b.dst, client);
    EXPECT_EQ(b.dport, cport);
    EXPECT_EQ(b.dst_mac, mac(ext().netns, "eth0"));
    EXPECT_CHECKSUMS_OK(back.out);
  }
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 2u);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_LOCAL), 2u);
  EXPECT_EQ(counter("from_pod", HRB_R_LB_REVERSE), 2u);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_SKIP_REPLY), 0u) << "translated, not let through";
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 0u) << "never masqueraded";
}

// A backend on node2: DNAT + SNAT to the node IP with a claimed port (the client's own when
// free), out along the FIB; the reply comes back to the uplink for that port and is reverse
// SNATed (to the client), then reverse DNATed (from the NodePort), then sent back.
TEST_F(NodePort, ARemoteBackendIsReachedThroughSnatAndItsReplyIsTranslatedBothWays) {
  ASSERT_EQ(backend(2).node, 1);
  const Ipv4 b = backend(2).ip, client = ext().address;
  for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
    SCOPED_TRACE(int(proto));
    auto r = from_uplink(to_nodeport(2, client, 41000, kSyn, proto));
    ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(r.redirect.helper, kFib);
    EXPECT_EQ(r.redirect.ifindex, ifindex(node().netns, "eth0"));
    auto d = decode(r.out);
    EXPECT_EQ(d.dst, b) << d.str();
    EXPECT_EQ(d.dport, datapath::kServiceTargetPort);
    EXPECT_EQ(d.src, node_ip()) << "SNAT: the backend answers through this node";
    EXPECT_EQ(d.sport, 41000) << "the client's port is kept when it is free and in range";
    EXPECT_EQ(d.dst_mac, mac(l().nodes[1].netns, "eth0"));
    EXPECT_EQ(d.ttl, 63);
    EXPECT_CHECKSUMS_OK(r.out);
    // The port claim: {backend, node ip, 8080, 41000} -> the client, owned by the connection.
    auto claim = get(claim_key(b, 41000, proto));
    ASSERT_TRUE(claim);
    EXPECT_EQ(claim->owner, HRB_CT_NODEPORT);
    EXPECT_EQ(claim->nat_ip, client.be());
    EXPECT_EQ(claim->nat_port, htons(41000));

    auto back = from_uplink(from_backend(b, node_ip(), 41000, kSynAck, proto));
    ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(back.redirect.helper, kFib);
    EXPECT_EQ(back.redirect.ifindex, ifindex(node().netns, "eth0"));
    auto bd = decode(back.out);
    EXPECT_EQ(bd.src, node_ip()) << bd.str();
    EXPECT_EQ(bd.sport, np(2));
    EXPECT_EQ(bd.dst, client);
    EXPECT_EQ(bd.dport, 41000);
    EXPECT_EQ(bd.dst_mac, mac(ext().netns, "eth0"));
    EXPECT_CHECKSUMS_OK(back.out);
  }
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REMOTE), 2u);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REPLY), 2u);
  EXPECT_EQ(counter("from_uplink", HRB_R_REVNAT_HIT), 0u) << "not taken for a masqueraded flow";
}

// The SNAT port comes from the masquerade's claims: a port a masqueraded pod flow holds is
// never given to a NodePort connection, and each reply goes to its own flow.
TEST_F(NodePort, ASnatPortNeverCollidesWithAMasqueradedFlow) {
  const Ipv4 b = backend(2).ip;
  // A live claim of port 42000 towards b:8080 held by a masqueraded flow of pod 1.
  hrb_ct_entry held{~0ull >> 1, pod(0, 0).ip.be(), htons(42000), 0, HRB_CT_FLOW};
  const hrb_ct_key held_key = claim_key(b, 42000);
  ASSERT_EQ(bpf_map_update_elem(ct(), &held_key, &held, BPF_ANY), 0);
  auto r = from_uplink(to_nodeport(2, ext().address, 42000));
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  const uint16_t sp = decode(r.out).sport;
  EXPECT_NE(sp, 42000) << "the masqueraded flow's port";
  EXPECT_GE(sp, datapath::kNatPortMin);
  EXPECT_LE(sp, datapath::kNatPortMax);
  EXPECT_EQ(counter("from_uplink", HRB_R_MASQ_PORT_CHANGED), 0u);
  auto claim = get(claim_key(b, sp));
  ASSERT_TRUE(claim);
  EXPECT_EQ(claim->owner, HRB_CT_NODEPORT);
  auto still = get(claim_key(b, 42000));
  ASSERT_TRUE(still);
  EXPECT_EQ(still->nat_ip, pod(0, 0).ip.be()) << "the pod flow's claim is untouched";
  EXPECT_EQ(still->owner, HRB_CT_FLOW);
  // The reply to the NodePort's port reaches the external client ...
  auto back = from_uplink(from_backend(b, node_ip(), sp));
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(decode(back.out).dst, ext().address);
  EXPECT_EQ(decode(back.out).dport, 42000);
  // ... and a packet to the pod flow's port is that flow's, never the NodePort connection's.
  auto other = from_uplink(from_backend(b, node_ip(), 42000, kAck));
  EXPECT_NE(decode(other.out).dst, ext().address) << decode(other.out).str();
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REPLY), 1u);
}

// A reply for a NodePort SNAT port whose connection entry is gone is not translated.
TEST_F(NodePort, AReplyWithoutItsConnectionIsNotTranslated) {
  const Ipv4 b = backend(2).ip;
  ASSERT_EQ(from_uplink(to_nodeport(2, ext().address, 43000)).verdict, TC_ACT_REDIRECT);
  hrb_ct_key k{};
  k.src_ip = ext().address.be();
  k.dst_ip = b.be();
  k.src_port = htons(43000);
  k.dst_port = htons(datapath::kServiceTargetPort);
  k.proto = 6;
  k.kind = HRB_CT_NODEPORT;
  ASSERT_TRUE(get(k)) << "the connection's entry, keyed after DNAT";
  EXPECT_EQ(get(k)->node_port, htons(np(2)));
  ASSERT_EQ(bpf_map_delete_elem(ct(), &k), 0);
  auto in = build(from_backend(b, node_ip(), 43000));
  auto r = run(progs_->from_uplink_fd(), in, "eth0");
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out, in) << "untouched, to the stack";
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REPLY_MISS), 1u);
}

// ICMP errors about NodePort connections (RFC 5508): the client sees the node's address and
// NodePort, the backend what it sent or got — for a local backend, with both kinds of client
// address (the fabric one is in a nonMasqueradeCIDR, the "outside" one is masqueraded) ...
TEST_F(NodePort, ErrorsOfALocalBackendsConnectionAreTranslatedBothWays) {
  for (Ipv4 client : {ext().underlay_ip, ext().address}) {
    SCOPED_TRACE(client.str());
    const uint16_t cport = client == ext().address ? 40101 : 40100;
    auto req = to_nodeport(1, client, cport, 0, 17);
    auto got = from_uplink(req);
    ASSERT_EQ(got.verdict, TC_ACT_REDIRECT);
    // The backend's port unreachable about the request: out to the client from the node,
    // quoting the request as the client sent it (after its hop).
    auto in = icmp_error(pod(0, 1).ip, client, 3, 3, got.out);
    auto r = run(progs_->from_pod_fd(), in, "lxc2");
    ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(r.redirect.helper, kFib);
    req.ttl--;
    EXPECT_TRUE(same_frame(icmp_error(out_to(node_ip(), client, ext().netns), 3, 3, build(req)),
                           r.out, in));
    // The client's port unreachable about the backend's answer: into the backend, quoting the
    // answer as the backend sent it.
    auto answer = from_backend(pod(0, 1).ip, client, cport, 0, 17);
    auto back = from_pod(answer, "lxc2");
    ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
    auto in2 = icmp_error(client, node_ip(), 3, 3, back.out);
    auto b = run(progs_->from_uplink_fd(), in2, "eth0");
    ASSERT_EQ(b.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(b.redirect.helper, kPeer);
    EXPECT_EQ(b.redirect.ifindex, ifindex(node().netns, "lxc2"));
    answer.ttl--;
    EXPECT_TRUE(same_frame(icmp_error(into(client, pod(0, 1)), 3, 3, build(answer)), b.out, in2));
  }
  EXPECT_EQ(counter("from_pod", HRB_R_ICMP_ERROR_LB), 2u);
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 2u);
  EXPECT_EQ(counter("from_pod", HRB_R_DROP_ICMP_ERROR_NO_STATE), 0u);
}

// ... and for a remote backend, where the request and the answer were SNATed too.
TEST_F(NodePort, ErrorsOfARemoteBackendsConnectionAreTranslatedBothWays) {
  const Ipv4 b = backend(2).ip, client = ext().address;
  auto req = to_nodeport(2, client, 41100, 0, 17);
  auto sent = from_uplink(req);
  ASSERT_EQ(sent.verdict, TC_ACT_REDIRECT);
  req.ttl--;
  // The backend's port unreachable about the request (to the node IP, quoting node:snat ->
  // backend): back out to the client, from the node, quoting what the client sent.
  auto in = icmp_error(b, node_ip(), 3, 3, sent.out);
  auto r = run(progs_->from_uplink_fd(), in, "eth0");
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.helper, kFib);
  EXPECT_TRUE(
      same_frame(icmp_error(out_to(node_ip(), client, ext().netns), 3, 3, build(req)), r.out, in));
  // A router on the way (node2's address; time exceeded, an 8-byte quote): the client sees the
  // node as the sender too — it only ever talks to the node.
  auto in_hop = icmp_error(l().nodes[1].underlay_ip, node_ip(), 11, 0, sent.out, 28);
  auto h = run(progs_->from_uplink_fd(), in_hop, "eth0");
  ASSERT_EQ(h.verdict, TC_ACT_REDIRECT);
  EXPECT_TRUE(same_frame(icmp_error(out_to(node_ip(), client, ext().netns), 11, 0, build(req), 28),
                         h.out, in_hop));
  // The client's port unreachable about the answer: to the backend, from the node, quoting the
  // answer as the backend sent it (to the SNAT port).
  auto answer = from_backend(b, node_ip(), 41100, 0, 17);
  auto back = from_uplink(answer);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  auto in2 = icmp_error(client, node_ip(), 3, 3, back.out);
  auto e = run(progs_->from_uplink_fd(), in2, "eth0");
  ASSERT_EQ(e.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(e.redirect.helper, kFib);
  answer.ttl--;
  EXPECT_TRUE(same_frame(icmp_error(out_to(node_ip(), b, l().nodes[1].netns), 3, 3, build(answer)),
                         e.out, in2));
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 3u);
}

// An error quoting a NodePort connection that does not exist is not translated.
TEST_F(NodePort, AnErrorAboutNoConnectionGoesToTheStackUntouched) {
  auto answer = from_backend(backend(2).ip, node_ip(), 41999, 0, 17);
  answer.src = node_ip();
  answer.sport = np(2);
  answer.dst = ext().address;
  auto in = icmp_error(ext().address, node_ip(), 3, 3, build(answer));
  auto r = run(progs_->from_uplink_fd(), in, "eth0");
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 0u);
}

class TwoBackends : public NodePort {
 protected:
  int endpoints_per_service() override { return 2; }
};

// Every packet of a connection goes to the backend its first packet chose, with its SNAT port.
TEST_F(TwoBackends, EveryPacketOfAConnectionKeepsItsBackendAndPort) {
  const auto eps = datapath::service_endpoints(l(), 1, 2);  // node2's two pods
  ASSERT_EQ(eps.size(), 2u);
  ASSERT_EQ(eps[0].node, 1);
  ASSERT_EQ(eps[1].node, 1);
  std::set<uint32_t> chosen;
  for (uint16_t port = 46000; port < 46032; ++port) {
    auto first = decode(from_uplink(to_nodeport(1, ext().address, port)).out);
    EXPECT_TRUE(first.dst == eps[0].ip || first.dst == eps[1].ip) << first.str();
    chosen.insert(first.dst.v);
    for (int i = 0; i < 3; ++i) {
      auto later = decode(from_uplink(to_nodeport(1, ext().address, port, kAck)).out);
      EXPECT_EQ(later.dst, first.dst) << port;
      EXPECT_EQ(later.sport, first.sport) << port;
    }
  }
  EXPECT_EQ(chosen.size(), 2u) << "32 connections, both backends chosen";
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 32u);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_HIT), 96u);
}

TEST_F(NodePort, AnUnknownNodePortGoesToTheStack) {
  auto s = to_nodeport(2, ext().address);
  s.dport = 30099;  // no service 99
  auto in = build(s);
  auto r = run(progs_->from_uplink_fd(), in, "eth0");
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(counter("from_uplink", HRB_R_TO_STACK_NOT_OURS), 1u);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 0u);
}

TEST_F(NodePort, NoBackendDrops) {
  hrb_lb_key k{node_ip().be(), htons(np(3)), 6, 0, 0};
  hrb_lb_value front{0, 0, 0, 4};
  ASSERT_EQ(bpf_map_update_elem(progs_->map_fd("lb"), &k, &front, BPF_ANY), 0);
  EXPECT_EQ(from_uplink(to_nodeport(3, ext().address)).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter("from_uplink", HRB_R_DROP_NO_BACKEND), 1u);
}

// A TCP connection starts with a SYN: a packet without one and without state at a NodePort (say
// a reply to a flow the stack's MASQUERADE gave a source port in the NodePort range) goes to the
// stack untranslated; UDP has no such sign and opens a connection with any packet.
TEST_F(NodePort, TcpWithoutSynAndStateGoesToTheStack) {
  for (uint8_t flags : {kAck, kSynAck}) {
    auto in = build(to_nodeport(2, ext().address, 44000, flags));
    auto r = run(progs_->from_uplink_fd(), in, "eth0");
    EXPECT_EQ(r.verdict, TC_ACT_OK) << int(flags);
    EXPECT_EQ(r.out, in);
  }
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_TO_STACK), 2u);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 0u);
  EXPECT_EQ(from_uplink(to_nodeport(2, ext().address, 44000, 0, 17)).verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 1u);
}

// TTL 1: untranslated to the stack, where kube-proxy's rules DNAT and the kernel answers.
TEST_F(NodePort, TtlOneGoesToTheStackUntranslated) {
  auto s = to_nodeport(2, ext().address);
  s.ttl = 1;
  auto in = build(s);
  auto r = run(progs_->from_uplink_fd(), in, "eth0");
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_TO_STACK), 1u);
}

}  // namespace
