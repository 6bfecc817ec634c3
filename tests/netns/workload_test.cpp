// Every workload between two pods of a two-node cluster: real sockets. What is asserted is what
// the machine's load cannot change: that transactions complete, how they are counted, and where
// every lost datagram went — never a rate or a latency.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <net/if.h>

#include <nlohmann/json.hpp>

#include "core/bpf.hpp"
#include "core/netns.hpp"
#include "support/cluster_fixture.hpp"
#include "traffic/pps.hpp"
#include "traffic/workload.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "drop_nth.skel.h"

using namespace hrb;
using traffic::Kind;

namespace {

class Workloads : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    cluster_ = new test::ClusterGuard("topologies/two-node.yaml", "tw");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { HRB_REQUIRE_ROOT(); }
  traffic::WorkloadSpec spec(Kind k) {
    const auto& l = cluster_->layout();
    traffic::WorkloadSpec w;
    w.kind = k;
    w.client_netns = l.nodes[0].pods[0].netns;
    w.server_netns = l.nodes[1].pods[0].netns;
    w.dst = l.nodes[1].pods[0].ip;
    w.duration_s = 1.5;
    w.warmup_s = 0.3;
    return w;
  }
  static test::ClusterGuard* cluster_;
};
test::ClusterGuard* Workloads::cluster_ = nullptr;

TEST_F(Workloads, TcpRr) {
  auto w = spec(Kind::kTcpRr);
  w.flows = 2;
  auto r = traffic::run_workload(w);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_GT(r.transactions, 0u);
  EXPECT_EQ(r.latency.count(), r.transactions) << "one latency sample per transaction";
  EXPECT_GT(r.latency.percentile(50), 0u);
  EXPECT_LE(r.latency.percentile(50), r.latency.percentile(99));
}

TEST_F(Workloads, TcpCrr) {
  auto r = traffic::run_workload(spec(Kind::kTcpCrr));
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_GT(r.transactions, 0u);
  EXPECT_EQ(r.latency.count(), r.transactions);
}

TEST_F(Workloads, TcpStream) {
  auto w = spec(Kind::kTcpStream);
  w.verify_payload = true;
  auto r = traffic::run_workload(w);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_GT(r.bytes, 0u);
  EXPECT_EQ(r.payload_errors, 0u);
}

TEST_F(Workloads, UdpRr) {
  auto r = traffic::run_workload(spec(Kind::kUdpRr));
  // A response later than the generator's 200 ms wait is counted as an error: that is the
  // machine's scheduling, so the only error tolerated is that one.
  if (r.errors) {
    EXPECT_EQ(r.first_error, "udp_rr: response lost");
  }
  EXPECT_GT(r.transactions, 0u);
  EXPECT_EQ(r.latency.count(), r.transactions);
}

TEST_F(Workloads, UdpStreamCountsEveryTenthDroppedAsLost) {
  auto w = spec(Kind::kUdpStream);
  w.port = 47000;
  w.udp_rate_pps = 4000;
  w.warmup_s = 0;
  // A BPF program on the server pod's eth0 drops every 10th datagram to that port.
  Skeleton<drop_nth> prog;
  prog->rodata->every = 10;
  prog->rodata->port = w.port;
  prog.load("drop_nth");
  const auto& pod = cluster_->layout().nodes[1].pods[0];
  run_in_netns(pod.netns, [&] {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = if_nametoindex("eth0");
    hook.attach_point = BPF_TC_INGRESS;
    ASSERT_EQ(bpf_tc_hook_create(&hook), 0);
    bpf_tc_opts o{};
    o.sz = sizeof o;
    o.prog_fd = bpf_program__fd(prog->progs.drop_nth);
    ASSERT_EQ(bpf_tc_attach(&hook, &o), 0);
  });
  auto snmp0 = test::udp_snmp(pod.netns);
  auto backlog0 = test::softnet_dropped();
  auto r = traffic::run_workload(w);
  auto snmp1 = test::udp_snmp(pod.netns);
  const uint64_t backlog = test::softnet_dropped() - backlog0;
  run_in_netns(pod.netns, [&] {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = if_nametoindex("eth0");
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
  });
  // Every loss is accounted for: the program's drops (exactly every 10th datagram it saw), plus
  // what the machine's load may lose — before the program (input backlogs, machine-wide) or at
  // the receiving socket (buffer full, or arrived after it closed: kernel counters of the pod).
  const uint64_t seen = prog->bss->seen, dropped = prog->bss->dropped;
  const uint64_t at_socket =
      (snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"]) + (snmp1["NoPorts"] - snmp0["NoPorts"]);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  ASSERT_GT(dropped, 0u) << "the program dropped nothing: the test would prove nothing";
  EXPECT_EQ(dropped, seen / 10);
  ASSERT_LE(seen, r.udp_sent);
  EXPECT_LE(r.udp_sent - seen, backlog) << "datagrams vanished before the server's veth";
  EXPECT_EQ(r.udp_lost, dropped + (r.udp_sent - seen) + at_socket)
      << dropped << " dropped by the program, " << r.udp_sent - seen << " before it, " << at_socket
      << " at the socket";
  EXPECT_EQ(r.udp_received + r.udp_lost, r.udp_sent);
  EXPECT_EQ(r.udp_duplicates, 0u);
}

TEST_F(Workloads, PpsInjectsFramesThatTheNodeForwardsToThePod) {
  const auto& l = cluster_->layout();
  traffic::PpsSpec ps;
  ps.node = &l.nodes[1];
  ps.pod = &l.nodes[1].pods[0];
  ps.src = l.externals[0].address;
  ps.duration_s = 0.5;
  auto r = traffic::run_pps(l, ps);
  EXPECT_GT(r.sent, 0u) << "no XDP live frame was sent";
  EXPECT_GT(r.received, 0u) << "nothing reached the pod";
  EXPECT_LE(r.received, r.sent);
  // The receiving veth's GRO setting is restored (off by default on veth).
  auto k = run_cmd({"ethtool", "-k", "eth0"}, {.netns = l.nodes[1].netns}).out;
  EXPECT_NE(k.find("generic-receive-offload: off"), std::string::npos);
}

// `hrbench traffic` itself: it runs the workload between the named members of the cluster and
// prints the result as JSON (--json adds the latency histogram); bad names are refused.
TEST_F(Workloads, TrafficCliRunsTheWorkloadBetweenNamedMembers) {
  const auto& l = cluster_->layout();
  const auto& a = l.nodes[0].pods[0];
  const auto& b = l.nodes[1].pods[0];
  auto traffic = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "traffic");
    return test::hrbench(args, cluster_->prefix());
  };
  auto r = traffic(
      {"tcp_rr", "--from", a.name, "--to", b.name, "--duration", "0.3", "--warmup", "0", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["workload"], "tcp_rr");
  EXPECT_EQ(j["from"], a.name);
  EXPECT_EQ(j["to"], b.name);
  EXPECT_EQ(j["dst"], b.ip.str());
  EXPECT_EQ(j["mode"], "none");
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GT(j["transactions"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["latency"]["samples"], j["transactions"]);
  EXPECT_TRUE(j.contains("latencyHistogram")) << "--json has the histogram";
  EXPECT_TRUE(j.contains("cpu"));

  auto u = traffic({"udp_stream", "--from", a.name, "--to", b.name, "--duration", "0.3", "--warmup",
                    "0", "--rate", "500"});
  ASSERT_EQ(u.status, 0) << u.err;
  auto k = nlohmann::json::parse(u.out);
  EXPECT_EQ(k["workload"], "udp_stream");
  EXPECT_FALSE(k.contains("latencyHistogram"));
  EXPECT_GT(k["udp"]["sent"].get<uint64_t>(), 0u);
  EXPECT_EQ(k["udp"]["received"].get<uint64_t>() + k["udp"]["lost"].get<uint64_t>(),
            k["udp"]["sent"].get<uint64_t>());

  auto nobody = traffic({"tcp_rr", "--from", a.name, "--to", "node9-pod9"});
  EXPECT_EQ(nobody.status, static_cast<int>(ExitCode::kNotFound)) << nobody.err;
  EXPECT_NE(nobody.err.find("--to node9-pod9: no such pod"), std::string::npos) << nobody.err;
  auto bad = traffic({"tcp_maerts", "--from", a.name, "--to", b.name});
  EXPECT_EQ(bad.status, static_cast<int>(ExitCode::kUsage)) << bad.err;
  EXPECT_NE(bad.err.find("unknown workload 'tcp_maerts'"), std::string::npos) << bad.err;
  auto no_from = traffic({"tcp_rr", "--to", b.name});
  EXPECT_EQ(no_from.status, static_cast<int>(ExitCode::kUsage)) << no_from.err;
}

TEST_F(Workloads, BadSpecIsRejected) {
  // Each is a usage error whose message names what is wrong.
  auto rejects = [](auto f, const std::string& says) {
    try {
      f();
      ADD_FAILURE() << "accepted; expected: " << says;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << e.what();
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  auto w = spec(Kind::kUdpStream);
  w.msg_size = 8;
  rejects([&] { traffic::run_workload(w); }, "msg_size >= 16");
  w = spec(Kind::kTcpRr);
  w.flows = 0;
  rejects([&] { traffic::run_workload(w); }, "flows must be 1..256");
  w = spec(Kind::kTcpRr);
  w.duration_s = 0;
  rejects([&] { traffic::run_workload(w); }, "duration must be > 0");
  rejects([] { traffic::parse_kind("tcp_maerts"); }, "unknown workload 'tcp_maerts'");
}

}  // namespace
