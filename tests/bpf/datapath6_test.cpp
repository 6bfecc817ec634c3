// The IPv6 datapath (bpf/lib/ipv6.h, ct6.h, lb6.h, nat6.h, fwd6.h): the real compiled from_pod /
// from_uplink objects, run with BPF_PROG_TEST_RUN inside node1 of a real two-node cluster, as
// datapath_test.cpp does for IPv4. The topology has no IPv6 yet, so the suite gives the cluster's
// namespaces IPv6 addresses and routes itself (node1 and node2 on fd00:18::/64 with the external
// host, which also has an "outside" address) and hands the programs the IPv6 facts
// (datapath::Ipv6Facts) directly. Every rewritten frame is compared byte for byte with one built
// independently (support/packet6.hpp computes every checksum in full).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <cstring>
#include <optional>
#include <tuple>

#include "core/netns.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "support/cluster_fixture.hpp"
#include "support/frame.hpp"
#include "support/packet6.hpp"
#include "support/prog_run.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "from_pod.skel.h"
#include "from_uplink.skel.h"

using namespace hrb;
using namespace hrb::test;
using datapath::Ipv6Facts;
using datapath::NodePrograms;

namespace {

constexpr int kPeer = 1, kFib = 2, kNeigh = 3;
constexpr uint16_t kHttp = 80, kTarget = 8080;

// The addressing the suite adds to the cluster.
const Ipv6 kNode1 = ip6("fd00:18::1"), kNode2 = ip6("fd00:18::2"), kRouter = ip6("fd00:18::fe");
const Ipv6 kOutside = ip6("2001:db8:200::10");  // on ext1's lo; routed via kRouter
const Ipv6 kPod1 = ip6("fd00:244::a"), kPod2 = ip6("fd00:244::b");  // node1's pods
const Ipv6 kRemotePod = ip6("fd00:244:0:1::a"), kRemotePod2 = ip6("fd00:244:0:1::b");
const Ipv6 kSvcRemote = ip6("fd00:96::10");  // backend kRemotePod
const Ipv6 kSvcLocal = ip6("fd00:96::11");   // backend kPod2
// Their NodePorts on kNode1 (the same backends).
constexpr uint16_t kNpRemote = 30000, kNpLocal = 30001;

using RunResult = test::ProgRun;

class Datapath6 : public SuiteCluster<Datapath6> {
 public:
  static constexpr const char* kTopology = "topologies/two-node.yaml";
  static constexpr const char* kTag = "t6";

  static void SetUpTestSuite() {
    SuiteCluster<Datapath6>::SetUpTestSuite();
    if (!cluster_) return;
    const auto& l = cluster_->layout();
    auto ip = [](const std::string& netns, std::vector<std::string> args) {
      args.insert(args.begin(), {"ip", "-6"});
      run_cmd(args, {.netns = netns});
    };
    const auto &n1 = l.nodes[0], &n2 = l.nodes[1];
    const auto& x = l.externals[0];
    ip(n1.netns, {"addr", "add", "fd00:18::1/64", "dev", n1.uplink, "nodad"});
    ip(n2.netns, {"addr", "add", "fd00:18::2/64", "dev", n2.uplink, "nodad"});
    ip(x.netns, {"addr", "add", "fd00:18::fe/64", "dev", x.ifname, "nodad"});
    ip(x.netns, {"addr", "add", "2001:db8:200::10/128", "dev", "lo", "nodad"});
    ip(n1.netns, {"route", "add", "fd00:244:0:1::/64", "via", "fd00:18::2", "dev", n1.uplink});
    ip(n1.netns, {"route", "add", "default", "via", "fd00:18::fe", "dev", n1.uplink});
    // bpf_fib_lookup answers AF_INET6 only where the ingress device forwards.
    write_sysctl_in(n1.netns, "net.ipv6.conf.all.forwarding", "1");
  }

 protected:
  void SetUp() override {
    HRB_REQUIRE_ROOT();
    progs_ = std::make_unique<NodePrograms>(l(), node(), masq(), opts());
  }
  virtual datapath::ProgramOptions opts() { return {.record_redirects = true, .ipv6 = facts()}; }
  static Ipv6Facts facts() {
    Ipv6Facts f;
    f.node_ip = kNode1;
    f.cluster = {ip6("fd00:244::"), 48};
    f.services = {ip6("fd00:96::"), 112};
    f.pods = {{pod(0).name, kPod1}, {pod(1).name, kPod2}};
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
      f.service_list.push_back({kSvcRemote, kHttp, proto, {{kRemotePod, kTarget}}, kNpRemote});
      f.service_list.push_back({kSvcLocal, kHttp, proto, {{kPod2, kTarget}}, kNpLocal});
    }
    f.nonmasq = {{ip6("fd00:18::"), 64}};
    return f;
  }
  static datapath::MasqConfig masq() {
    return datapath::parse_masq_config_file(source_path("topologies/ip-masq-agent.yaml"));
  }
  static const topology::Layout& l() { return cluster_->layout(); }
  static const topology::NodeLayout& node() { return l().nodes[0]; }
  static const topology::PodLayout& pod(int i) { return l().nodes[0].pods[i]; }
  static const topology::ExternalLayout& ext() { return l().externals[0]; }

  static Mac mac(const std::string& netns, const std::string& dev) {
    return run_in_netns(netns, [&] { return mac_of(dev); });
  }
  unsigned ifindex(const std::string& name) {
    return run_in_netns(node().netns, [&] { return if_nametoindex(name.c_str()); });
  }

  RunResult run(int prog_fd, const Bytes& in, const std::string& ingress) {
    return test::run_program(*progs_, node().netns, prog_fd, in, ingress);
  }
  RunResult from_pod(const Bytes& b, const std::string& lxc = "lxc1") {
    return run(progs_->from_pod_fd(), b, lxc);
  }
  RunResult from_pod(const PacketSpec6& s, const std::string& lxc = "lxc1") {
    return from_pod(build6(s), lxc);
  }
  RunResult from_uplink(const Bytes& b) { return run(progs_->from_uplink_fd(), b, "eth0"); }
  RunResult from_uplink(const PacketSpec6& s) { return from_uplink(build6(s)); }
  uint64_t counter(const char* prog, int reason) { return progs_->counters(prog)[reason]; }

  void resolve_neighbours() {
    for (const char* a : {"fd00:18::2", "fd00:18::fe"})
      run_cmd({"ping", "-6", "-c1", "-W2", a}, {.netns = node().netns});
  }
  void flush_neighbours() {
    run_cmd({"ip", "-6", "neigh", "flush", "dev", node().uplink}, {.netns = node().netns});
  }

  // Frames: a pod's packet, and what the programs make of it.
  static PacketSpec6 spec(const Ipv6& src, const Ipv6& dst, uint8_t proto = 6) {
    PacketSpec6 s;
    s.src = src;
    s.dst = dst;
    s.proto = proto;
    return s;
  }
  static PacketSpec6 delivered(PacketSpec6 s, int pod_index) {  // into node1's pod
    s.hop_limit--;
    s.dst_mac = mac(pod(pod_index).netns, pod(pod_index).ifname);
    s.src_mac = mac(node().netns, pod(pod_index).lxc);
    return s;
  }
  static PacketSpec6 forwarded(PacketSpec6 s, const std::string& netns, const std::string& dev) {
    s.hop_limit--;
    s.dst_mac = mac(netns, dev);
    s.src_mac = mac(node().netns, node().uplink);
    return s;
  }
  static PacketSpec6 to_node2(PacketSpec6 s) {
    return forwarded(s, l().nodes[1].netns, l().nodes[1].uplink);
  }
  static PacketSpec6 to_router(PacketSpec6 s) { return forwarded(s, ext().netns, ext().ifname); }
  int ct6() { return progs_->map_fd("ct6"); }
  std::optional<hrb_ct6_entry> get(const hrb_ct6_key& k) {
    hrb_ct6_entry v{};
    if (bpf_map_lookup_elem(ct6(), &k, &v) != 0) return std::nullopt;
    return v;
  }
  static hrb_ip6 key_ip(const Ipv6& a) {
    hrb_ip6 r;
    std::memcpy(&r, a.b.data(), 16);
    return r;
  }
  static hrb_ct6_key flow_key(const Ipv6& src, const Ipv6& dst, uint16_t sport, uint16_t dport,
                              uint8_t proto = 6, uint8_t kind = HRB_CT_FLOW) {
    return {key_ip(src), key_ip(dst), htons(sport), htons(dport), proto, kind, {}};
  }

  std::unique_ptr<NodePrograms> progs_;
};

#define EXPECT_FRAME(run_result, expected_bytes) \
  EXPECT_TRUE(same_frame(expected_bytes, (run_result).out, (run_result).in))
#define EXPECT_UNCHANGED(run_result) EXPECT_FRAME(run_result, (run_result).in)

// ---- Forwarding ----

TEST_F(Datapath6, ALocalPodIsReachedWithRedirectPeer) {
  const auto s = spec(kPod1, kPod2);
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.helper, kPeer);
  EXPECT_EQ(r.redirect.ifindex, ifindex("lxc2"));
  EXPECT_FRAME(r, build6(delivered(s, 1)));  // the hop limit decremented, the pod's MACs
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_PEER6), 1u);
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_PEER), 0u);  // the IPv4 counter stays
  EXPECT_EQ(counter("from_pod", HRB_R_CT_CREATED), 1u);
}

// Single-stack IPv6 (family: ipv6): the loader turns ipv4_enabled off, and an IPv4 packet —
// here a pod's TCP packet to a remote pod, which an IPv4 node routes in BPF — goes to the stack
// untouched from both programs (with the flag on, the IPv4 maps of such a node being empty, the
// pod's packet would be dropped as spoofed); IPv6 is handled as before.
TEST_F(Datapath6, OnASingleStackIpv6NodeIpv4GoesToTheStackUntouched) {
  auto l6 = l();
  l6.spec.family = topology::StackFamily::kIpv6;
  progs_ = std::make_unique<NodePrograms>(l6, node(), masq(), opts());
  PacketSpec s4;
  s4.src = pod(0).ip;
  s4.dst = l().nodes[1].pods[0].ip;
  const auto r = from_pod(build(s4));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  PacketSpec reply = s4;
  std::swap(reply.src, reply.dst);
  const auto u = from_uplink(build(reply));
  EXPECT_EQ(u.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(u);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_IPV4_OFF), 1u);
  EXPECT_EQ(counter("from_uplink", HRB_R_TO_STACK_IPV4_OFF), 1u);
  EXPECT_EQ(counter("from_pod", HRB_R_DROP_SOURCE), 0u);
  const auto r6 = from_pod(spec(kPod1, kPod2));
  EXPECT_EQ(r6.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_PEER6), 1u);
}

TEST_F(Datapath6, ARemotePodIsReachedAlongTheFib) {
  resolve_neighbours();
  const auto s = spec(kPod1, kRemotePod);
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.helper, kFib);
  EXPECT_EQ(r.redirect.ifindex, ifindex(node().uplink));
  EXPECT_FRAME(r, build6(to_node2(s)));  // pod-to-pod keeps the pod source
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_FIB6), 1u);
}

TEST_F(Datapath6, AnUnresolvedNextHopGoesToRedirectNeigh) {
  flush_neighbours();
  auto s = spec(kPod1, kRemotePod2);
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.helper, kNeigh);
  EXPECT_EQ(r.redirect.ifindex, ifindex(node().uplink));
  s.hop_limit--;  // bpf_redirect_neigh fills in the MACs
  EXPECT_FRAME(r, build6(s));
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_NEIGH6), 1u);
}

TEST_F(Datapath6, FromTheUplinkALocalPodIsReachedWithRedirectPeer) {
  const auto s = spec(kRemotePod, kPod2);
  const auto r = from_uplink(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.ifindex, ifindex("lxc2"));
  EXPECT_FRAME(r, build6(delivered(s, 1)));
  EXPECT_EQ(counter("from_uplink", HRB_R_REDIRECT_PEER6), 1u);
}

TEST_F(Datapath6, HopLimitOneGoesToTheStack) {
  for (const auto& dst : {kPod2, kRemotePod, kOutside}) {
    auto s = spec(kPod1, dst);
    s.hop_limit = 1;
    const auto r = from_pod(s);
    EXPECT_EQ(r.verdict, TC_ACT_OK) << dst.str();
    EXPECT_UNCHANGED(r);
  }
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_TTL), 3u);
}

TEST_F(Datapath6, TooBigForTheUplinkGoesToTheStack) {
  resolve_neighbours();
  auto s = spec(kPod1, kRemotePod);
  s.payload = 1600;  // over eth0's 1500: the stack sends Packet Too Big
  const auto r = from_pod(s);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_FRAG_NEEDED), 1u);
}

TEST_F(Datapath6, APodSendsWithItsOwnAddressOnly) {
  const auto r = from_pod(spec(kPod2, kRemotePod));  // pod 2's address from pod 1's veth
  EXPECT_EQ(r.verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter("from_pod", HRB_R_DROP_SOURCE), 1u);
}

// ---- What goes to the stack untouched ----

TEST_F(Datapath6, NeighbourAndRouterDiscoveryGoToTheStack) {
  const Ipv6 ll = ip6("fe80::1"), all_routers = ip6("ff02::2");
  for (uint8_t type : {133, 134, 135, 136, 137, 143}) {  // RS, RA, NS, NA, redirect, MLDv2
    auto s = spec(ll, type == 135 ? kPod2 : all_routers, 58);
    s.icmp_type = type;
    s.hop_limit = 255;
    const auto r = from_pod(s);
    EXPECT_EQ(r.verdict, TC_ACT_OK) << int(type);
    EXPECT_UNCHANGED(r);
    const auto u = from_uplink(s);
    EXPECT_EQ(u.verdict, TC_ACT_OK) << int(type);
    EXPECT_UNCHANGED(u);
  }
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_ICMP6_NDISC), 6u);
  EXPECT_EQ(counter("from_uplink", HRB_R_TO_STACK_ICMP6_NDISC), 6u);
}

TEST_F(Datapath6, LinkLocalAndMulticastGoToTheStack) {
  for (const auto& [src, dst] :
       {std::pair{ip6("fe80::1"), kPod2}, {kPod1, ip6("ff02::1")}, {kPod1, ip6("fe80::2")}}) {
    const auto r = from_pod(spec(src, dst, 17));
    EXPECT_EQ(r.verdict, TC_ACT_OK) << src.str() << " -> " << dst.str();
    EXPECT_UNCHANGED(r);
  }
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_IPV6_SCOPE), 3u);
}

TEST_F(Datapath6, ExtensionHeadersAreWalkedWhereThatIsSafe) {
  // Destination options and a routing header with no segments left: walked, delivered.
  for (auto ext : {std::vector<Ext6>{{60}}, {{43, 0}}, {{60}, {43, 0}, {60}}}) {
    auto s = spec(kPod1, kPod2);
    s.ext = ext;
    const auto r = from_pod(s);
    EXPECT_EQ(r.verdict, TC_ACT_REDIRECT) << ext.size();
    EXPECT_FRAME(r, build6(delivered(s, 1)));
  }
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_PEER6), 3u);
  // ... and masqueraded behind one: the L4 checksum is found and updated.
  resolve_neighbours();
  auto m = spec(kPod1, kOutside);
  m.sport = 41500;
  m.dport = 443;
  m.ext = {{60}};
  const auto r = from_pod(m);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  auto out = m;
  out.src = kNode1;
  EXPECT_FRAME(r, build6(to_router(out)));
  EXPECT_TRUE(l4_csum6_ok(r.out));
}

TEST_F(Datapath6, ExtensionHeadersThatAreNotWalkedGoToTheStack) {
  struct Case {
    std::vector<Ext6> ext;
    int reason;
  };
  const std::vector<Case> cases = {
      {{{0}}, HRB_R_TO_STACK_IPV6_EXTHDR},      // hop-by-hop: every hop reads it
      {{{43, 1}}, HRB_R_TO_STACK_IPV6_EXTHDR},  // routing, a segment left
      {{{60}, {60}, {60}, {60}, {60}}, HRB_R_TO_STACK_IPV6_EXTHDR},    // more than 4
      {{{.type = 44, .frag = 0x0001}}, HRB_R_TO_STACK_IPV6_FRAGMENT},  // the first fragment
      {{{60}, {.type = 44, .frag = 0x0100}},
       HRB_R_TO_STACK_IPV6_FRAGMENT},  // a later one, after options
  };
  for (const auto& c : cases) {
    auto s = spec(kPod1, kOutside);
    s.ext = c.ext;
    const auto r = from_pod(s);
    EXPECT_EQ(r.verdict, TC_ACT_OK) << c.ext.size() << " headers, first " << int(c.ext[0].type);
    EXPECT_UNCHANGED(r);
  }
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_IPV6_EXTHDR), 3u);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_IPV6_FRAGMENT), 2u);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 0u);
}

TEST_F(Datapath6, TruncatedHeadersAreDropped) {
  auto b = build6(spec(kPod1, kPod2));
  b.resize(14 + 40 + 10);
  EXPECT_EQ(from_pod(b).verdict, TC_ACT_SHOT);
  auto s = spec(kPod1, kPod2);
  s.ext = {{60}};
  auto e = build6(s);
  e.resize(14 + 40 + 4);
  EXPECT_EQ(from_pod(e).verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter("from_pod", HRB_R_DROP_MALFORMED), 2u);
}

// ---- Connection tracking ----

TEST_F(Datapath6, AFlowIsTrackedNewEstablishedAndReply) {
  auto syn = spec(kPod1, kPod2);
  syn.tcp_flags = 0x02;
  ASSERT_EQ(from_pod(syn).verdict, TC_ACT_REDIRECT);
  const auto k = flow_key(kPod1, kPod2, syn.sport, syn.dport);
  auto e = get(k);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->flags & HRB_CT_F_ESTABLISHED, 0);
  EXPECT_EQ(counter("from_pod", HRB_R_CT_CREATED), 1u);

  auto synack = spec(kPod2, kPod1);  // the reply, from pod 2's veth
  synack.sport = syn.dport;
  synack.dport = syn.sport;
  synack.tcp_flags = 0x12;
  ASSERT_EQ(from_pod(synack, "lxc2").verdict, TC_ACT_REDIRECT);
  e = get(k);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->flags & HRB_CT_F_SEEN_REPLY);
  EXPECT_FALSE(get(flow_key(kPod2, kPod1, syn.dport, syn.sport))) << "a reply makes no entry";

  auto ack = syn;
  ack.tcp_flags = 0x10;
  ASSERT_EQ(from_pod(ack).verdict, TC_ACT_REDIRECT);
  e = get(k);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->flags & HRB_CT_F_ESTABLISHED);
  EXPECT_EQ(counter("from_pod", HRB_R_CT_HIT), 2u);

  auto rst = ack;
  rst.tcp_flags = 0x04;
  from_pod(rst);
  EXPECT_TRUE(get(k)->flags & HRB_CT_F_CLOSED);
  EXPECT_EQ(counter("from_pod", HRB_R_CT_CLOSED), 1u);
  // The IPv4 table is not touched.
  hrb_ct_key k4{};
  EXPECT_NE(bpf_map_get_next_key(progs_->map_fd("ct"), nullptr, &k4), 0);
}

// ---- Services ----

TEST_F(Datapath6, AnUnknownServicePortGoesToTheStack) {
  auto s = spec(kPod1, kSvcRemote);
  s.dport = 443;
  const auto r = from_pod(s);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_SERVICE), 1u);  // lb off: no lb_services
}

// ---- NAT66 ----

class Nat66 : public Datapath6 {
 protected:
  PacketSpec6 out(uint16_t sport, uint8_t proto = 6) {
    auto s = spec(kPod1, kOutside, proto);
    s.sport = sport;
    s.dport = proto == 58 ? 0 : 443;
    return s;
  }
  PacketSpec6 reply(uint16_t nat_port, uint8_t proto = 6) {
    auto s = spec(kOutside, kNode1, proto);
    s.sport = proto == 58 ? nat_port : 443;
    s.dport = proto == 58 ? 0 : nat_port;
    s.tcp_flags = 0x12;
    if (proto == 58) s.icmp_type = 129;
    return s;
  }
};

TEST_F(Nat66, ThePodSourceBecomesTheNodesAndTheReplyIsTranslatedBack) {
  resolve_neighbours();
  const auto s = out(41000);  // in the NAT range and free: kept
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  auto m = s;
  m.src = kNode1;
  EXPECT_FRAME(r, build6(to_router(m)));
  EXPECT_TRUE(l4_csum6_ok(r.out));
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 1u);
  EXPECT_EQ(counter("from_pod", HRB_R_REDIRECT_FIB6), 1u);
  EXPECT_EQ(from_pod(s).verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_HIT), 1u);

  auto rep = reply(41000);
  const auto back = from_uplink(rep);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(back.redirect.ifindex, ifindex("lxc1"));
  rep.dst = kPod1;
  EXPECT_FRAME(back, build6(delivered(rep, 0)));
  EXPECT_TRUE(l4_csum6_ok(back.out));
  EXPECT_EQ(counter("from_uplink", HRB_R_REVNAT_HIT), 1u);
}

TEST_F(Nat66, AUdpFlowIsMasqueraded) {
  resolve_neighbours();
  const auto s = out(45353, 17);
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  auto m = s;
  m.src = kNode1;
  EXPECT_FRAME(r, build6(to_router(m)));
  EXPECT_TRUE(l4_csum6_ok(r.out));
}

TEST_F(Nat66, NoMasqueradeInsideTheClusterOrTowardsANonMasqueradePrefix) {
  resolve_neighbours();
  const auto r = from_pod(spec(kPod1, kRouter));  // fd00:18::/64: nonmasq
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(decode6(r.out).src, kPod1);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 0u);
}

// The exclusions are read through nonmasq6_active: a new trie swapped in (what the IP Masquerade
// Agent does, datapath::swap_nonmasq) decides the next packet's masquerade, with the same
// programs; swapping the old list back masquerades again.
TEST_F(Nat66, ASwappedInTrieDecidesTheNextPacket) {
  resolve_neighbours();
  const int outer = progs_->map_fd("nonmasq6_active");
  const auto first = from_pod(out(41000));
  ASSERT_EQ(first.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(decode6(first.out).src, kNode1) << "2001:db8:200::10 is masqueraded at first";

  const auto kept = datapath::new_nonmasq6_trie({{ip6("2001:db8:200::"), 48}});
  datapath::set_active_trie(outer, kept.get(), "the test's trie");
  const auto r = from_pod(out(41001));
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_FRAME(r, build6(to_router(out(41001))));  // the pod's source, forwarded unchanged
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 1u) << "only the first packet was masqueraded";

  const auto back = datapath::new_nonmasq6_trie(facts().nonmasq);
  datapath::set_active_trie(outer, back.get(), "the first list");
  const auto again = from_pod(out(41002));
  ASSERT_EQ(again.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(decode6(again.out).src, kNode1);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 2u);
  // The kernel keeps the families apart: an IPv4 trie (another key) does not go in.
  const auto v4 = datapath::new_nonmasq_trie({*Cidr::parse("10.0.0.0/8")});
  EXPECT_THROW(datapath::set_active_trie(outer, v4.get(), "an IPv4 trie"), Error);
  EXPECT_EQ(decode6(from_pod(out(41003)).out).src, kNode1) << "the failed swap changed nothing";
}

TEST_F(Nat66, ATakenPortIsNeverReusedAndEachReplyReachesItsOwnPod) {
  resolve_neighbours();
  // Pod 1 and pod 2 both use source port 41000 towards the same outside address and port.
  const auto a = out(41000);
  auto b = a;
  b.src = kPod2;
  const auto ra = from_pod(a);
  const auto rb = from_pod(b, "lxc2");
  ASSERT_EQ(ra.verdict, TC_ACT_REDIRECT);
  ASSERT_EQ(rb.verdict, TC_ACT_REDIRECT);
  const uint16_t pa = decode6(ra.out).sport, pb = decode6(rb.out).sport;
  EXPECT_EQ(pa, 41000);
  EXPECT_NE(pb, 41000) << "the second flow must not take the first one's port";
  EXPECT_GE(pb, datapath::kNatPortMin);
  EXPECT_LE(pb, datapath::kNatPortMax);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_PORT_CHANGED), 1u);
  EXPECT_TRUE(l4_csum6_ok(rb.out));
  // Each claim names its own pod.
  for (auto [port, pod_ip, pod_index] : {std::tuple{pa, kPod1, 0}, {pb, kPod2, 1}}) {
    auto rep = reply(port);
    const auto back = from_uplink(rep);
    ASSERT_EQ(back.verdict, TC_ACT_REDIRECT) << port;
    rep.dst = pod_ip;
    rep.dport = 41000;
    EXPECT_FRAME(back, build6(delivered(rep, pod_index)));
  }
}

TEST_F(Nat66, AReplyToAMasqueradePortWithoutStateGoesToTheStack) {
  const auto r = from_uplink(reply(42424));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_uplink", HRB_R_REVNAT_MISS), 1u);
}

TEST_F(Nat66, AnEchoIdentifierIsTranslatedAndRestored) {
  resolve_neighbours();
  auto ping = out(0x4242, 58);  // the identifier, below the NAT range: replaced
  const auto r = from_pod(ping);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  const uint16_t id = decode6(r.out).sport;
  EXPECT_GE(id, datapath::kNatPortMin);
  EXPECT_LE(id, datapath::kNatPortMax);
  auto m = ping;
  m.src = kNode1;
  m.sport = id;
  EXPECT_FRAME(r, build6(to_router(m)));
  EXPECT_TRUE(l4_csum6_ok(r.out));

  auto pong = reply(id, 58);
  const auto back = from_uplink(pong);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  pong.dst = kPod1;
  pong.sport = 0x4242;
  EXPECT_FRAME(back, build6(delivered(pong, 0)));
  EXPECT_TRUE(l4_csum6_ok(back.out));
}

TEST_F(Nat66, APacketWithoutPortsGoesToTheStack) {
  auto s = spec(kPod1, kOutside);
  s.proto = 47;  // GRE
  const auto r = from_pod(s);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_NO_PORTS), 1u);
}

// ICMPv6 errors about a masqueraded flow: translated back with the quoted packet, every
// checksum recomputed in full by the test.
TEST_F(Nat66, AnErrorAboutAMasqueradedFlowReachesThePodQuotingItsOwnPacket) {
  resolve_neighbours();
  for (uint8_t proto : {uint8_t{17}, uint8_t{6}, uint8_t{58}}) {
    SCOPED_TRACE(int(proto));
    progs_ = std::make_unique<NodePrograms>(l(), node(), masq(), opts());
    const auto s = out(proto == 58 ? 0x9042 : 45000, proto);  // kept: in the range
    const auto r = from_pod(s);
    ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
    // A router answers the packet as it left the node with Packet Too Big.
    PacketSpec6 outer = spec(kRouter, kNode1, 58);
    const auto err = icmp6_error(outer, 2, 0, r.out);
    ASSERT_TRUE(l4_csum6_ok(err));
    const auto back = from_uplink(err);
    ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(back.redirect.ifindex, ifindex("lxc1"));
    // Expected: to the pod, quoting the packet as the pod sent it (with the hop limit it left
    // with).
    auto quoted = s;
    quoted.hop_limit--;
    auto to_pod = outer;
    to_pod.dst = kPod1;
    to_pod = delivered(to_pod, 0);
    EXPECT_FRAME(back, icmp6_error(to_pod, 2, 0, build6(quoted)));
    EXPECT_TRUE(l4_csum6_ok(back.out)) << "the ICMPv6 checksum (pseudo-header: outer addresses)";
    EXPECT_TRUE(quoted_csum6_ok(back.out)) << "the quoted packet's checksum";
    EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_REVNAT), 1u);
  }
}

TEST_F(Nat66, APodsErrorAboutAReplyLeavesWithTheNodesAddress) {
  resolve_neighbours();
  const auto s = out(46000, 17);
  ASSERT_EQ(from_pod(s).verdict, TC_ACT_REDIRECT);
  auto rep = reply(46000, 17);
  const auto in = from_uplink(rep);
  ASSERT_EQ(in.verdict, TC_ACT_REDIRECT);
  // The pod answers the reply it got with port unreachable.
  PacketSpec6 outer = spec(kPod1, kOutside, 58);
  const auto err = icmp6_error(outer, 1, 4, in.out);
  const auto r = from_pod(err);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  auto o = outer;
  o.src = kNode1;
  o = to_router(o);
  auto q = rep;  // quoted as the outside host sent it, with the hop limit it arrived with
  q.hop_limit--;
  EXPECT_FRAME(r, icmp6_error(o, 1, 4, build6(q)));
  EXPECT_TRUE(l4_csum6_ok(r.out));
  EXPECT_TRUE(quoted_csum6_ok(r.out));
  EXPECT_EQ(counter("from_pod", HRB_R_ICMP_ERROR_NAT), 1u);
}

// RFC 8200 8.1: a UDP checksum that computes to 0 is sent as 0xffff (0 means "no checksum",
// which IPv6 forbids). Each packet here is crafted so that its translated checksum computes to 0.
uint16_t udp_csum_at(const Bytes& b, size_t udp) {
  return uint16_t(b.at(udp + 6) << 8 | b.at(udp + 7));
}
constexpr size_t kUdp = 14 + 40, kQuotedUdp = kUdp + 8 + 40;

TEST_F(Nat66, AUdpChecksumThatTranslatesToZeroIsSentAsAllOnes) {
  resolve_neighbours();
  auto s = out(45353, 17);  // kept: in the range
  auto m = s;
  m.src = kNode1;
  s.payload_word = m.payload_word = udp_zero_csum_word6(m);
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_FRAME(r, build6(to_router(m)));
  EXPECT_EQ(udp_csum_at(r.out, kUdp), 0xffff);
  EXPECT_TRUE(l4_csum6_ok(r.out));

  auto rep = reply(45353, 17), to_pod = rep;
  to_pod.dst = kPod1;
  rep.payload_word = to_pod.payload_word = udp_zero_csum_word6(to_pod);
  const auto back = from_uplink(rep);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  EXPECT_FRAME(back, build6(delivered(to_pod, 0)));
  EXPECT_EQ(udp_csum_at(back.out, kUdp), 0xffff);
  EXPECT_TRUE(l4_csum6_ok(back.out));
}

// The same for the UDP header quoted in an ICMPv6 error, both ways.
TEST_F(Nat66, AQuotedUdpChecksumThatTranslatesToZeroIsSentAsAllOnes) {
  resolve_neighbours();
  // In: an error about the pod's packet quotes it as it left (node:nat); the pod gets its own.
  auto s = out(45000, 17);
  s.payload_word = udp_zero_csum_word6(s);
  const auto r = from_pod(s);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  PacketSpec6 outer = spec(kRouter, kNode1, 58);
  const auto back = from_uplink(icmp6_error(outer, 1, 4, r.out));
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  auto quoted = s;
  quoted.hop_limit--;
  auto to_pod = outer;
  to_pod.dst = kPod1;
  EXPECT_FRAME(back, icmp6_error(delivered(to_pod, 0), 1, 4, build6(quoted)));
  EXPECT_EQ(udp_csum_at(back.out, kQuotedUdp), 0xffff);
  EXPECT_TRUE(quoted_csum6_ok(back.out, false));
  EXPECT_TRUE(l4_csum6_ok(back.out));

  // Out: the pod's error about a reply it got quotes it as delivered (to the pod); it leaves
  // quoting the reply as the outside host sent it (to node:nat).
  auto rep = reply(45000, 17);
  rep.payload_word = udp_zero_csum_word6(rep);
  const auto in = from_uplink(rep);
  ASSERT_EQ(in.verdict, TC_ACT_REDIRECT);
  PacketSpec6 pod_outer = spec(kPod1, kOutside, 58);
  const auto err = from_pod(icmp6_error(pod_outer, 1, 4, in.out));
  ASSERT_EQ(err.verdict, TC_ACT_REDIRECT);
  auto o = pod_outer;
  o.src = kNode1;
  auto q = rep;
  q.hop_limit--;
  EXPECT_FRAME(err, icmp6_error(to_router(o), 1, 4, build6(q)));
  EXPECT_EQ(udp_csum_at(err.out, kQuotedUdp), 0xffff);
  EXPECT_TRUE(quoted_csum6_ok(err.out, false));
  EXPECT_TRUE(l4_csum6_ok(err.out));
}

TEST_F(Nat66, APodsErrorAboutNoFlowIsDropped) {
  PacketSpec6 outer = spec(kPod1, kOutside, 58);
  auto about = spec(kOutside, kPod1, 17);
  const auto r = from_pod(icmp6_error(outer, 1, 4, build6(about)));
  EXPECT_EQ(r.verdict, TC_ACT_SHOT);
  EXPECT_EQ(counter("from_pod", HRB_R_DROP_ICMP_ERROR_NO_STATE), 1u);
}

// ---- Services, load-balanced in BPF ----

class Services6 : public Datapath6 {
 protected:
  datapath::ProgramOptions opts() override {
    return {.record_redirects = true, .lb_services = 1, .ipv6 = facts()};
  }
};

// A service packet the stack must handle — hop limit 1 (local or remote backend), or too big for
// the uplink towards the remote backend — goes there untranslated: kube-proxy's rules underneath
// DNAT it, and netfilter translates the stack's ICMPv6 error back to the service address, which
// the client's socket knows. (Translated first, the error quoted the backend's address, which
// the client's socket does not match: path-MTU discovery to a service failed.)
TEST_F(Services6, AServicePacketTheStackMustAnswerGoesThereUntranslated) {
  resolve_neighbours();
  for (const Ipv6& svc : {kSvcRemote, kSvcLocal}) {
    auto s = spec(kPod1, svc);
    s.dport = kHttp;
    s.hop_limit = 1;
    const auto r = from_pod(s);
    EXPECT_EQ(r.verdict, TC_ACT_OK) << svc.str();
    EXPECT_UNCHANGED(r);
  }
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_TTL), 2u);
  auto big = spec(kPod1, kSvcRemote);
  big.dport = kHttp;
  big.sport = 45100;
  big.payload = 1600;  // over eth0's 1500
  const auto r = from_pod(big);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_FRAG_NEEDED), 1u);
  // The connection's next packet that fits goes to the backend chosen for it, in BPF.
  big.payload = 100;
  const auto ok = from_pod(big);
  ASSERT_EQ(ok.verdict, TC_ACT_REDIRECT);
  auto dnat = big;
  dnat.dst = kRemotePod;
  dnat.dport = kTarget;
  EXPECT_FRAME(ok, build6(to_node2(dnat)));
}

TEST_F(Services6, AServiceIsDnatedAndTheReplyReverseTranslated) {
  resolve_neighbours();
  auto syn = spec(kPod1, kSvcRemote);
  syn.sport = 45000;
  syn.dport = kHttp;
  syn.tcp_flags = 0x02;
  const auto r = from_pod(syn);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  auto dnat = syn;
  dnat.dst = kRemotePod;
  dnat.dport = kTarget;
  EXPECT_FRAME(r, build6(to_node2(dnat)));
  EXPECT_TRUE(l4_csum6_ok(r.out));
  EXPECT_EQ(counter("from_pod", HRB_R_LB_NEW), 1u);
  EXPECT_TRUE(get(flow_key(kPod1, kSvcRemote, 45000, kHttp, 6, HRB_CT_SERVICE)));
  EXPECT_EQ(from_pod(syn).verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(counter("from_pod", HRB_R_LB_HIT), 1u);

  auto reply = spec(kRemotePod, kPod1);
  reply.sport = kTarget;
  reply.dport = 45000;
  reply.tcp_flags = 0x12;
  const auto back = from_uplink(reply);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  auto rev = reply;
  rev.src = kSvcRemote;
  rev.sport = kHttp;
  EXPECT_FRAME(back, build6(delivered(rev, 0)));
  EXPECT_TRUE(l4_csum6_ok(back.out));
  EXPECT_EQ(counter("from_uplink", HRB_R_LB_REVERSE), 1u);

  // An error from the backend about the request reaches the client quoting the service.
  PacketSpec6 outer = spec(kRemotePod, kPod1, 58);
  const auto err = from_uplink(icmp6_error(outer, 1, 4, build6(to_node2(dnat))));
  ASSERT_EQ(err.verdict, TC_ACT_REDIRECT);
  auto o = outer;
  o.src = kSvcRemote;
  auto quoted = syn;
  quoted.hop_limit--;
  EXPECT_FRAME(err, icmp6_error(delivered(o, 0), 1, 4, build6(quoted)));
  EXPECT_TRUE(l4_csum6_ok(err.out));
  EXPECT_TRUE(quoted_csum6_ok(err.out));
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 1u);
}

TEST_F(Services6, AUdpServiceWithALocalBackend) {
  auto q = spec(kPod1, kSvcLocal, 17);
  q.sport = 53000;
  q.dport = kHttp;
  const auto r = from_pod(q);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.ifindex, ifindex("lxc2"));
  auto dnat = q;
  dnat.dst = kPod2;
  dnat.dport = kTarget;
  EXPECT_FRAME(r, build6(delivered(dnat, 1)));
  auto a = spec(kPod2, kPod1, 17);
  a.sport = kTarget;
  a.dport = 53000;
  const auto back = from_pod(a, "lxc2");
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  auto rev = a;
  rev.src = kSvcLocal;
  rev.sport = kHttp;
  EXPECT_FRAME(back, build6(delivered(rev, 0)));
}

TEST_F(Services6, AnUnknownServicePortGoesToTheStack) {
  auto s = spec(kPod1, kSvcRemote);
  s.dport = 443;
  const auto r = from_pod(s);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_NO_SERVICE), 1u);
}

class BpfLb6 : public Datapath6 {
 protected:
  datapath::ProgramOptions opts() override {
    return {.record_redirects = true, .lb_services = 1, .host_routing = false, .ipv6 = facts()};
  }
};

TEST_F(BpfLb6, AServiceIsDnatedAndTheStackRoutes) {
  auto syn = spec(kPod1, kSvcRemote);
  syn.dport = kHttp;
  syn.tcp_flags = 0x02;
  const auto r = from_pod(syn);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  auto dnat = syn;
  dnat.dst = kRemotePod;
  dnat.dport = kTarget;
  EXPECT_FRAME(r, build6(dnat));  // the stack forwards: hop limit and MACs untouched
  EXPECT_EQ(counter("from_pod", HRB_R_LB_NEW), 1u);
  // What the stack delivers into the pod: to_pod gives the reply its service address back.
  auto reply = spec(kRemotePod, kPod1);
  reply.sport = kTarget;
  reply.dport = syn.sport;
  reply.tcp_flags = 0x12;
  const auto back = run(progs_->to_pod_fd(), build6(reply), "lxc1");
  EXPECT_EQ(back.verdict, TC_ACT_OK);
  auto rev = reply;
  rev.src = kSvcRemote;
  rev.sport = kHttp;
  EXPECT_FRAME(back, build6(rev));
  EXPECT_EQ(counter("from_pod", HRB_R_TO_POD), 1u);
}

// ---- NodePort on the node's IPv6 address (bpf/lib/nodeport6.h) ----

class NodePort6 : public Services6 {
 protected:
  // A client's packet to kNode1 at a NodePort, as it arrives on eth0.
  static PacketSpec6 to_nodeport(const Ipv6& client, uint16_t np, uint8_t proto = 6,
                                 uint16_t sport = 40000, uint8_t flags = 0x02) {
    auto s = spec(client, kNode1, proto);
    s.sport = sport;
    s.dport = np;
    s.tcp_flags = flags;
    return s;
  }
};

// A local backend: DNAT only, redirect_peer, the client's address kept; the backend's answer
// leaves from_pod6 with the node's address and the NodePort as its source — towards a client
// that would be masqueraded (the outside) and one that would not (the underlay's prefix).
TEST_F(NodePort6, ALocalBackendGetsTheClientsAddressAndAnswersAsTheNodePort) {
  resolve_neighbours();
  int n = 0;
  for (const auto& client : {kOutside, kRouter})
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
      SCOPED_TRACE(client.str() + " " + std::to_string(proto));
      ++n;
      const auto syn = to_nodeport(client, kNpLocal, proto);
      const auto r = from_uplink(syn);
      ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
      EXPECT_EQ(r.redirect.helper, kPeer);
      EXPECT_EQ(r.redirect.ifindex, ifindex("lxc2"));
      auto dnat = syn;
      dnat.dst = kPod2;
      dnat.dport = kTarget;
      EXPECT_FRAME(r, build6(delivered(dnat, 1)));
      EXPECT_TRUE(l4_csum6_ok(r.out));
      EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), unsigned(n));
      EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_LOCAL), unsigned(n));
      auto e = get(flow_key(client, kPod2, 40000, kTarget, proto));
      ASSERT_TRUE(e);
      EXPECT_EQ(e->flags & (HRB_CT_F_SVC | HRB_CT_F_FROM_OUTSIDE),
                HRB_CT_F_SVC | HRB_CT_F_FROM_OUTSIDE);

      auto ans = spec(kPod2, client, proto);
      ans.sport = kTarget;
      ans.dport = 40000;
      ans.tcp_flags = 0x12;
      const auto back = from_pod(ans, "lxc2");
      ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
      EXPECT_EQ(back.redirect.helper, kFib);
      auto rev = ans;
      rev.src = kNode1;
      rev.sport = kNpLocal;
      EXPECT_FRAME(back, build6(to_router(rev)));
      EXPECT_TRUE(l4_csum6_ok(back.out));
    }
  EXPECT_EQ(counter("from_pod", HRB_R_LB_REVERSE), 4u);
  EXPECT_EQ(counter("from_pod", HRB_R_MASQ_NEW), 0u) << "an answer is never masqueraded";
}

// A remote backend: DNAT and SNAT to the node's address (the client's port kept where it is
// free and in the NAT range), out along the FIB; the backend's reply is rev-SNATed and
// rev-DNATed back to the client; later packets keep the backend and the port.
TEST_F(NodePort6, ARemoteBackendIsReachedSnatedAndItsReplyTranslatedBack) {
  resolve_neighbours();
  for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
    SCOPED_TRACE(int(proto));
    progs_ = std::make_unique<NodePrograms>(l(), node(), masq(), opts());
    const auto syn = to_nodeport(kOutside, kNpRemote, proto);
    const auto r = from_uplink(syn);
    ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(r.redirect.helper, kFib);
    EXPECT_EQ(r.redirect.ifindex, ifindex(node().uplink));
    auto fwd = syn;
    fwd.src = kNode1;  // port 40000: in the NAT range and free, kept
    fwd.dst = kRemotePod;
    fwd.dport = kTarget;
    EXPECT_FRAME(r, build6(to_node2(fwd)));
    EXPECT_TRUE(l4_csum6_ok(r.out));
    EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 1u);
    EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REMOTE), 1u);
    // One state in two keys: the connection (SNAT port, NodePort) and its claim.
    const auto e = get(flow_key(kOutside, kRemotePod, 40000, kTarget, proto, HRB_CT_NODEPORT));
    ASSERT_TRUE(e);
    EXPECT_EQ(ntohs(e->nat_port), 40000);
    EXPECT_EQ(ntohs(e->node_port), kNpRemote);
    const auto c = get(flow_key(kRemotePod, kNode1, kTarget, 40000, proto, HRB_CT_NAT_REV));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->owner, HRB_CT_NODEPORT);
    const hrb_ip6 client = key_ip(kOutside);
    EXPECT_EQ(std::memcmp(&c->nat_ip, &client, sizeof client), 0) << "the claim names the client";

    auto rep = spec(kRemotePod, kNode1, proto);
    rep.sport = kTarget;
    rep.dport = 40000;
    rep.tcp_flags = 0x12;
    const auto back = from_uplink(rep);
    ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
    EXPECT_EQ(back.redirect.helper, kFib);
    auto rev = rep;
    rev.src = kNode1;
    rev.sport = kNpRemote;
    rev.dst = kOutside;
    EXPECT_FRAME(back, build6(to_router(rev)));
    EXPECT_TRUE(l4_csum6_ok(back.out));
    EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REPLY), 1u);
    EXPECT_EQ(counter("from_uplink", HRB_R_REVNAT_HIT), 0u) << "no masqueraded flow's";

    auto ack = syn;
    ack.tcp_flags = 0x10;
    const auto again = from_uplink(ack);
    ASSERT_EQ(again.verdict, TC_ACT_REDIRECT);
    auto fwd2 = fwd;
    fwd2.tcp_flags = 0x10;
    EXPECT_FRAME(again, build6(to_node2(fwd2)));
    EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_HIT), 1u);
  }
}

// A client port outside the NAT range gets a claimed one; the reply to it finds its client.
TEST_F(NodePort6, AClientPortOutsideTheNatRangeIsReplacedAndTheReplyFindsItsClient) {
  resolve_neighbours();
  const auto syn = to_nodeport(kOutside, kNpRemote, 6, 20000);
  const auto r = from_uplink(syn);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  const uint16_t sp = decode6(r.out).sport;
  EXPECT_GE(sp, datapath::kNatPortMin);
  EXPECT_LE(sp, datapath::kNatPortMax);
  auto fwd = syn;
  fwd.src = kNode1;
  fwd.sport = sp;
  fwd.dst = kRemotePod;
  fwd.dport = kTarget;
  EXPECT_FRAME(r, build6(to_node2(fwd)));
  auto rep = spec(kRemotePod, kNode1);
  rep.sport = kTarget;
  rep.dport = sp;
  rep.tcp_flags = 0x12;
  const auto back = from_uplink(rep);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  auto rev = rep;
  rev.src = kNode1;
  rev.sport = kNpRemote;
  rev.dst = kOutside;
  rev.dport = 20000;
  EXPECT_FRAME(back, build6(to_router(rev)));
}

TEST_F(NodePort6, WhatIsNoNewNodePortConnectionGoesToTheStackUntouched) {
  // TCP without SYN and without state: perhaps a reply to a flow the stack masqueraded.
  const auto ack = from_uplink(to_nodeport(kOutside, kNpRemote, 6, 40000, 0x10));
  EXPECT_EQ(ack.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(ack);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_TO_STACK), 1u);
  // Hop limit 1: the stack sends time exceeded.
  auto hl = to_nodeport(kOutside, kNpLocal);
  hl.hop_limit = 1;
  const auto h = from_uplink(hl);
  EXPECT_EQ(h.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(h);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_TO_STACK), 2u);
  // A port that is no NodePort.
  const auto other = from_uplink(to_nodeport(kOutside, 30999));
  EXPECT_EQ(other.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(other);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_NEW), 0u);
}

TEST_F(NodePort6, AReplyWhoseConnectionIsGoneGoesToTheStack) {
  resolve_neighbours();
  ASSERT_EQ(from_uplink(to_nodeport(kOutside, kNpRemote)).verdict, TC_ACT_REDIRECT);
  auto k = flow_key(kOutside, kRemotePod, 40000, kTarget, 6, HRB_CT_NODEPORT);
  ASSERT_EQ(bpf_map_delete_elem(ct6(), &k), 0);
  auto rep = spec(kRemotePod, kNode1);
  rep.sport = kTarget;
  rep.dport = 40000;
  const auto r = from_uplink(rep);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_uplink", HRB_R_NODEPORT_REPLY_MISS), 1u);
}

// ICMPv6 errors about NodePort connections, both ways (nodeport.h's cases for IPv6): what the
// client gets quotes what it sent (client -> [node]:NodePort) and comes from the node; what a
// backend gets quotes what it sent. Every checksum is recomputed in full by the test.
TEST_F(NodePort6, ErrorsOfALocalBackendsConnectionAreTranslatedBothWays) {
  resolve_neighbours();
  const auto syn = to_nodeport(kOutside, kNpLocal, 17);
  const auto in = from_uplink(syn);
  ASSERT_EQ(in.verdict, TC_ACT_REDIRECT);
  // The backend's port unreachable about the request: from the node, quoting the NodePort.
  PacketSpec6 outer = spec(kPod2, kOutside, 58);
  const auto err = from_pod(icmp6_error(outer, 1, 4, in.out), "lxc2");
  ASSERT_EQ(err.verdict, TC_ACT_REDIRECT);
  auto o = outer;
  o.src = kNode1;
  auto quoted = syn;
  quoted.hop_limit--;  // as it arrived at the backend
  EXPECT_FRAME(err, icmp6_error(to_router(o), 1, 4, build6(quoted)));
  EXPECT_TRUE(l4_csum6_ok(err.out));
  EXPECT_TRUE(quoted_csum6_ok(err.out));
  EXPECT_EQ(counter("from_pod", HRB_R_ICMP_ERROR_LB), 1u);
  // The client's port unreachable about the answer: into the backend, quoting the answer as the
  // backend sent it.
  auto ans = spec(kPod2, kOutside, 17);
  ans.sport = kTarget;
  ans.dport = 40000;
  const auto back = from_pod(ans, "lxc2");
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  PacketSpec6 cl = spec(kOutside, kNode1, 58);
  const auto e = from_uplink(icmp6_error(cl, 1, 4, back.out));
  ASSERT_EQ(e.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(e.redirect.ifindex, ifindex("lxc2"));
  auto to_backend = cl;
  to_backend.dst = kPod2;
  ans.hop_limit--;
  EXPECT_FRAME(e, icmp6_error(delivered(to_backend, 1), 1, 4, build6(ans)));
  EXPECT_TRUE(l4_csum6_ok(e.out));
  EXPECT_TRUE(quoted_csum6_ok(e.out));
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 1u);
}

TEST_F(NodePort6, ErrorsOfARemoteBackendsConnectionAreTranslatedBothWays) {
  resolve_neighbours();
  auto req = to_nodeport(kOutside, kNpRemote, 17, 41100);
  const auto sent = from_uplink(req);
  ASSERT_EQ(sent.verdict, TC_ACT_REDIRECT);
  req.hop_limit--;  // as the quotes carry it
  // The backend's port unreachable about the request (to the node, quoting node:snat ->
  // backend): out to the client, from the node, quoting what the client sent.
  const auto r = from_uplink(icmp6_error(spec(kRemotePod, kNode1, 58), 1, 4, sent.out));
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(r.redirect.helper, kFib);
  PacketSpec6 to_client = spec(kNode1, kOutside, 58);
  EXPECT_FRAME(r, icmp6_error(to_router(to_client), 1, 4, build6(req)));
  EXPECT_TRUE(l4_csum6_ok(r.out));
  EXPECT_TRUE(quoted_csum6_ok(r.out));
  // A router on the way (node2's address; time exceeded, 8 bytes of UDP quoted): the client sees
  // the node as the sender too — it only ever talks to the node.
  const auto h = from_uplink(icmp6_error(spec(kNode2, kNode1, 58), 3, 0, sent.out, 48));
  ASSERT_EQ(h.verdict, TC_ACT_REDIRECT);
  EXPECT_FRAME(h, icmp6_error(to_router(to_client), 3, 0, build6(req), 48));
  EXPECT_TRUE(l4_csum6_ok(h.out));
  // The client's port unreachable about the answer: to the backend, from the node, quoting the
  // answer as the backend sent it (to the SNAT port).
  auto answer = spec(kRemotePod, kNode1, 17);
  answer.sport = kTarget;
  answer.dport = 41100;
  const auto back = from_uplink(answer);
  ASSERT_EQ(back.verdict, TC_ACT_REDIRECT);
  const auto e = from_uplink(icmp6_error(spec(kOutside, kNode1, 58), 1, 4, back.out));
  ASSERT_EQ(e.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(e.redirect.helper, kFib);
  answer.hop_limit--;
  EXPECT_FRAME(e, icmp6_error(to_node2(spec(kNode1, kRemotePod, 58)), 1, 4, build6(answer)));
  EXPECT_TRUE(l4_csum6_ok(e.out));
  EXPECT_TRUE(quoted_csum6_ok(e.out));
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 3u);
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_REVNAT), 0u) << "no pod flow's";
}

// An error quoting a NodePort connection that does not exist is not translated.
TEST_F(NodePort6, AnErrorAboutNoConnectionGoesToTheStackUntouched) {
  auto answer = spec(kNode1, kOutside, 17);
  answer.sport = kNpRemote;
  answer.dport = 41999;
  const auto r = from_uplink(icmp6_error(spec(kOutside, kNode1, 58), 1, 4, build6(answer)));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_UNCHANGED(r);
  EXPECT_EQ(counter("from_uplink", HRB_R_ICMP_ERROR_LB), 0u);
}

// ---- Without IPv6 facts: IPv6 goes to the stack as before ----

class NoIpv6 : public Datapath6 {
 protected:
  datapath::ProgramOptions opts() override { return {.record_redirects = true}; }
};

TEST_F(NoIpv6, EveryIpv6PacketGoesToTheStack) {
  for (const auto& dst : {kPod2, kRemotePod, kOutside}) {
    const auto r = from_pod(spec(kPod1, dst));
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_UNCHANGED(r);
  }
  EXPECT_EQ(from_uplink(spec(kOutside, kPod1)).verdict, TC_ACT_OK);
  EXPECT_EQ(counter("from_pod", HRB_R_TO_STACK_NON_IPV4), 3u);
  EXPECT_EQ(counter("from_uplink", HRB_R_TO_STACK_NON_IPV4), 1u);
}

// ---- Bad facts change nothing ----

TEST(Ipv6Facts, BadFactsAreRefusedNamingTheField) {
  topology::NodeLayout n;
  n.name = "node1";
  topology::PodLayout p;
  p.name = "node1-pod1";
  n.pods.push_back(p);
  auto good = [] {
    Ipv6Facts f;
    f.node_ip = ip6("fd00:18::1");
    f.cluster = {ip6("fd00:244::"), 48};
    f.services = {ip6("fd00:96::"), 112};
    f.pods = {{"node1-pod1", ip6("fd00:244::a")}};
    f.service_list = {{ip6("fd00:96::1"), 80, 6, {}}};
    return f;
  };
  EXPECT_NO_THROW(datapath::check_ipv6_facts(good(), n));
  auto refused = [&](Ipv6Facts f, const std::string& needle) {
    try {
      datapath::check_ipv6_facts(f, n);
      ADD_FAILURE() << "accepted; expected: " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("node1"), std::string::npos) << e.what();
    }
  };
  auto f = good();
  f.cluster.len = 0;
  refused(f, "cluster");
  f = good();
  f.node_ip = Ipv6{};
  refused(f, "node_ip: unspecified");
  f = good();
  f.node_ip = ip6("fd00:244::1");
  refused(f, "node_ip: fd00:244::1 is inside the cluster prefix");
  f = good();
  f.services.len = 129;
  refused(f, "services: prefix length 129");
  f = good();
  f.pods[0].name = "node2-pod1";
  refused(f, "pods[0] (node2-pod1): no such pod");
  f = good();
  f.pods[0].ip = ip6("fd01::1");
  refused(f, "outside the cluster prefix");
  f = good();
  f.service_list[0].ip = ip6("fd00:97::1");
  refused(f, "service_list[0] (fd00:97::1): outside the service range");
  f = good();
  f.service_list[0].proto = 132;
  refused(f, "protocol 132");
  f = good();
  f.service_list[0].node_port = 8080;
  refused(f, "service_list[0] (fd00:96::1): NodePort 8080 outside 30000..32767");
  f = good();
  f.service_list[0].node_port = 30000;
  f.service_list.push_back({ip6("fd00:96::2"), 80, 6, {}, 30000});
  refused(f, "service_list[1] (fd00:96::2): NodePort 30000 is service_list[0]'s too");
  f.service_list[1].proto = 17;  // the same number for another protocol is allowed
  EXPECT_NO_THROW(datapath::check_ipv6_facts(f, n));
}

}  // namespace
