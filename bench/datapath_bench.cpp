// Microbenchmarks of the datapath programs: the real compiled from_pod / from_uplink objects run
// with BPF_PROG_TEST_RUN inside node1 of a real two-node cluster (brought up here, torn down at
// exit), timed by the kernel (UseManualTime + SetIterationTime from the duration that
// bpf_prog_test_run reports, which excludes the syscall).
//
// One program run per test run (repeat = 1): with repeat > 1 the kernel runs the program again
// on the packet the previous run already rewrote (TTL decremented, addresses translated), so
// after a few runs it would time a different path. The kernel's timer around a single run adds a
// constant floor, shown by BM_TestRunFloor (a program that only counts) and to be subtracted
// when comparing paths. ns_per_packet is the mean kernel-measured time per run.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <net/if.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <random>

#include "core/bpf.hpp"
#include "core/netns.hpp"
#include "core/process.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "topology/cluster.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "doctor_probe.skel.h"

using namespace hrb;

namespace {

std::unique_ptr<topology::ScopedCluster> g_cluster;

const topology::Layout& L() { return g_cluster->layout(); }
const topology::NodeLayout& N1() { return L().nodes[0]; }

// A test packet: Ethernet + IPv4 + TCP (or UDP), checksums not needed for the timing paths.
std::vector<uint8_t> packet(Ipv4 src, Ipv4 dst, uint16_t sport, uint16_t dport, uint8_t proto = 6,
                            uint16_t ethertype = 0x0800) {
  std::vector<uint8_t> b(14 + 20 + 20 + 32, 0);
  b[0] = 0x02;
  b[6] = 0x02;
  b[12] = ethertype >> 8;
  b[13] = ethertype & 0xff;
  uint8_t* ip = &b[14];
  ip[0] = 0x45;
  ip[2] = 0;
  ip[3] = 72;
  ip[8] = 64;
  ip[9] = proto;
  uint32_t s = src.be(), d = dst.be();
  memcpy(ip + 12, &s, 4);
  memcpy(ip + 16, &d, 4);
  uint16_t sp = htons(sport), dp = htons(dport);
  memcpy(ip + 20, &sp, 2);
  memcpy(ip + 22, &dp, 2);
  ip[32] = 0x50;
  ip[33] = 0x10;
  return b;
}

// The same as an IPv6 frame (Ethernet + IPv6 + TCP): a source and destination given as text.
std::vector<uint8_t> packet6(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> b(14 + 40 + 20 + 32, 0);
  b[0] = 0x02;
  b[6] = 0x02;
  b[12] = 0x86;
  b[13] = 0xdd;
  uint8_t* ip = &b[14];
  ip[0] = 0x60;
  ip[5] = 52;  // payload length
  ip[6] = 6;
  ip[7] = 64;
  inet_pton(AF_INET6, src, ip + 8);
  inet_pton(AF_INET6, dst, ip + 24);
  uint16_t sp = htons(sport), dp = htons(dport);
  memcpy(ip + 40, &sp, 2);
  memcpy(ip + 42, &dp, 2);
  ip[52] = 0x50;
  ip[53] = 0x10;
  return b;
}

struct Runner {
  std::unique_ptr<datapath::NodePrograms> progs;
  unsigned lxc1 = 0, eth0 = 0;
  explicit Runner(const datapath::MasqConfig& masq, datapath::ProgramOptions o = {}) {
    progs = std::make_unique<datapath::NodePrograms>(L(), N1(), masq, o);
    run_in_netns(N1().netns, [&] {
      lxc1 = if_nametoindex("lxc1");
      eth0 = if_nametoindex("eth0");
    });
  }
  // One test run of `repeat` packets; returns ns per packet as the kernel measured it. The
  // calling thread must be in node1's netns (see InNode).
  double run(int fd, std::vector<uint8_t>& pkt, unsigned ifindex, uint32_t repeat,
             int* verdict = nullptr) {
    return [&] {
      __sk_buff ctx{};
      ctx.ingress_ifindex = ifindex;
      ctx.ifindex = ifindex;
      std::vector<uint8_t> out(pkt.size() + 64);
      bpf_test_run_opts o{};
      o.sz = sizeof o;
      o.data_in = pkt.data();
      o.data_size_in = pkt.size();
      o.data_out = out.data();
      o.data_size_out = out.size();
      o.ctx_in = &ctx;
      o.ctx_size_in = sizeof ctx;
      o.repeat = repeat;
      if (bpf_prog_test_run_opts(fd, &o) != 0) throw_errno("bpf_prog_test_run_opts");
      if (verdict) *verdict = o.retval;
      return static_cast<double>(o.duration);
    }();
  }
};

datapath::MasqConfig masq_with(int extra_cidrs) {
  auto m = datapath::default_masq_config();
  m.non_masquerade = {L().spec.cluster_cidr, L().spec.underlay_cidr};
  // Extra /24s inside 100.64.0.0/10, never the destination used below.
  for (int i = 0; i < extra_cidrs; ++i)
    m.non_masquerade.push_back(Cidr{Ipv4{(100u << 24) | (64u << 16) | (uint32_t(i) << 8)}, 24});
  return m;
}

// A benchmark whose program gave another verdict than its path's measured something else: it is
// reported as an error (SkipWithError, "error_occurred" in the JSON output) and the process exits
// with 1 — the smoke test fails on a wrong verdict.
bool g_wrong_verdict = false;
constexpr int kRedirect = 7, kToStack = 0;  // TC_ACT_REDIRECT, TC_ACT_OK
const char* verdict_name(int v) {
  return v == kRedirect ? "redirect" : v == kToStack ? "to stack" : v == 2 ? "drop" : "other";
}
bool verdict_is(benchmark::State& st, int got, int want) {
  if (got == want) return true;
  g_wrong_verdict = true;
  st.SkipWithError(fmt::format("verdict {} ({}), expected {} ({})", got, verdict_name(got), want,
                               verdict_name(want))
                       .c_str());
  return false;
}

// Runs `pkt` once per iteration through `fd`; records the kernel's time. Every run's verdict must
// be `want`.
void time_runs(benchmark::State& st, Runner& r, int fd, std::vector<uint8_t>& pkt, unsigned ifi,
               int want) {
  double total = 0;
  for (auto _ : st) {
    int verdict = -1;
    double ns = r.run(fd, pkt, ifi, 1, &verdict);
    st.SetIterationTime(ns / 1e9);
    total += ns;
    if (!verdict_is(st, verdict, want)) break;
  }
  st.counters["ns_per_packet"] = total / std::max<double>(st.iterations(), 1);
  st.counters["packets"] = benchmark::Counter(st.iterations(), benchmark::Counter::kIsRate);
}

// Benchmarks run on Google Benchmark's thread: it enters node1's netns for the benchmark's
// duration (ifindexes and the FIB are per netns), and leaves it afterwards.
struct InNode {
  NetnsGuard g{N1().netns};
};

void resolve_neighbours() {
  run_cmd({"ping", "-c1", "-W1", L().nodes[1].underlay_ip.str()},
          {.netns = N1().netns, .check = false});
  run_cmd({"ping", "-c1", "-W1", L().externals[0].underlay_ip.str()},
          {.netns = N1().netns, .check = false});
}

// Repeated-packet paths. Arg 0: repeat; the path picks packet and program.
enum Path { kLocal, kRemote, kMasqEstablished, kRevNat, kUplinkToPod, kNonIp };

// ct: with connection tracking of pod traffic (production), or without it (load-time constant
// ct_enabled = false), to state its cost as a ratio measured in one run.
void BM_Path(benchmark::State& st, Path path, bool ct = true) {
  InNode in_node;
  resolve_neighbours();
  Runner r(masq_with(0), {.ct_enabled = ct});
  const auto& p1 = N1().pods[0];
  const auto& ext = L().externals[0];
  std::vector<uint8_t> pkt;
  int fd = r.progs->from_pod_fd();
  unsigned ifi = r.lxc1;
  switch (path) {
    case kLocal:
      pkt = packet(p1.ip, N1().pods[1].ip, 40000, 80);
      break;
    case kRemote:
      pkt = packet(p1.ip, L().nodes[1].pods[0].ip, 40000, 80);
      break;
    case kMasqEstablished:
      pkt = packet(p1.ip, ext.address, 40000, 443);
      break;
    case kRevNat: {
      auto out = packet(p1.ip, ext.address, 40000, 443);
      r.run(fd, out, r.lxc1, 1);  // creates the NAT entry (port 40000 kept)
      pkt = packet(ext.address, N1().underlay_ip, 443, 40000);
      fd = r.progs->from_uplink_fd();
      ifi = r.eth0;
      break;
    }
    case kUplinkToPod:
      pkt = packet(L().nodes[1].pods[0].ip, p1.ip, 80, 40000);
      fd = r.progs->from_uplink_fd();
      ifi = r.eth0;
      break;
    case kNonIp:
      pkt = packet(p1.ip, ext.address, 1, 2, 6, 0x0806);
      break;
  }
  const int want = path == kNonIp ? kToStack : kRedirect;
  st.SetLabel(verdict_name(want));
  time_runs(st, r, fd, pkt, ifi, want);
}

// IPv6: the cluster has no IPv6 addressing of its own yet, so the IPv6 paths' benchmarks give
// node1, node2 and ext1 the addresses tests/bpf/datapath6_test.cpp uses (once), and the programs
// the matching facts: node1's pods fd00:244::a and ::b, node2's pods in fd00:244:0:1::/64 via
// fd00:18::2, the outside (2001:db8:200::10) via ext1 at fd00:18::fe.
void ipv6_setup() {
  static bool done = false;
  if (done) return;
  auto ip = [](const std::string& netns, std::vector<std::string> args) {
    args.insert(args.begin(), {"ip", "-6"});
    run_cmd(args, {.netns = netns});
  };
  const auto &n1 = L().nodes[0], &n2 = L().nodes[1];
  const auto& x = L().externals[0];
  ip(n1.netns, {"addr", "add", "fd00:18::1/64", "dev", n1.uplink, "nodad"});
  ip(n2.netns, {"addr", "add", "fd00:18::2/64", "dev", n2.uplink, "nodad"});
  ip(x.netns, {"addr", "add", "fd00:18::fe/64", "dev", x.ifname, "nodad"});
  ip(n1.netns, {"route", "add", "fd00:244:0:1::/64", "via", "fd00:18::2", "dev", n1.uplink});
  ip(n1.netns, {"route", "add", "default", "via", "fd00:18::fe", "dev", n1.uplink});
  write_sysctl_in(n1.netns, "net.ipv6.conf.all.forwarding", "1");
  done = true;
}
datapath::Ipv6Facts ipv6_facts() {
  auto a = [](const char* t) { return *Ipv6::parse(t); };
  datapath::Ipv6Facts f;
  f.node_ip = a("fd00:18::1");
  f.cluster = {a("fd00:244::"), 48};
  f.services = {a("fd00:96::"), 112};
  f.pods = {{N1().pods[0].name, a("fd00:244::a")}, {N1().pods[1].name, a("fd00:244::b")}};
  f.nonmasq = {{a("fd00:18::"), 64}};
  return f;
}

enum Path6 { kLocal6, kRemote6, kMasqEstablished6, kRevNat6, kUplinkToPod6 };

// The IPv6 paths, to put next to BM_Path's IPv4 ones (same packet sizes but the header).
void BM_Path6(benchmark::State& st, Path6 path) {
  InNode in_node;
  ipv6_setup();
  resolve_neighbours();
  for (const char* a : {"fd00:18::2", "fd00:18::fe"})
    run_cmd({"ping", "-6", "-c1", "-W1", a}, {.netns = N1().netns, .check = false});
  Runner r(masq_with(0), {.ipv6 = ipv6_facts()});
  std::vector<uint8_t> pkt;
  int fd = r.progs->from_pod_fd();
  unsigned ifi = r.lxc1;
  switch (path) {
    case kLocal6:
      pkt = packet6("fd00:244::a", "fd00:244::b", 40000, 80);
      break;
    case kRemote6:
      pkt = packet6("fd00:244::a", "fd00:244:0:1::a", 40000, 80);
      break;
    case kMasqEstablished6:
      pkt = packet6("fd00:244::a", "2001:db8:200::10", 40000, 443);
      break;
    case kRevNat6: {
      auto out = packet6("fd00:244::a", "2001:db8:200::10", 40000, 443);
      r.run(fd, out, r.lxc1, 1);  // the NAT66 state (port 40000 kept)
      pkt = packet6("2001:db8:200::10", "fd00:18::1", 443, 40000);
      fd = r.progs->from_uplink_fd();
      ifi = r.eth0;
      break;
    }
    case kUplinkToPod6:
      pkt = packet6("fd00:244:0:1::a", "fd00:244::a", 80, 40000);
      fd = r.progs->from_uplink_fd();
      ifi = r.eth0;
      break;
  }
  st.SetLabel(verdict_name(kRedirect));
  time_runs(st, r, fd, pkt, ifi, kRedirect);
}

// New masquerade flows: every packet a new source port, one run per iteration. The flows go to 64
// destination ports: a masquerade port is claimed per (destination, port), and 20,000 flows to
// one destination would fill 71 % of its 28,232 ports, where 32 random tries all collide with a
// chance of 1 in 60,000 per flow — a benchmark that fails about once in a hundred runs. Spread,
// each destination's range stays about 1 % full: what a node with many peers sees.
void BM_MasqNewFlow(benchmark::State& st) {
  InNode in_node;
  resolve_neighbours();
  Runner r(masq_with(0));
  uint16_t sport = 1024;
  double total = 0;
  uint64_t n = 0;
  for (auto _ : st) {
    auto pkt = packet(N1().pods[0].ip, L().externals[0].address, sport,
                      static_cast<uint16_t>(443 + n % 64));
    if (++sport == 0) sport = 1024;
    int verdict = -1;
    double ns = r.run(r.progs->from_pod_fd(), pkt, r.lxc1, 1, &verdict);
    st.SetIterationTime(ns / 1e9);
    total += ns;
    ++n;
    if (!verdict_is(st, verdict, kRedirect)) {
      auto c = r.progs->counters("from_pod");
      for (int i = 0; i < HRB_R__MAX; ++i)
        if (c[i])
          fmt::print(stderr, "  after {} flows: {} = {}\n", n, datapath::reason_name(i), c[i]);
      break;
    }
  }
  st.SetLabel("a new source port every packet");
  st.counters["ns_per_packet"] = total / std::max<uint64_t>(n, 1);
  st.counters["packets"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

// Scaling: the established masquerade path with N extra non-masquerade CIDRs in the LPM trie.
void BM_MasqEstablished_LpmSize(benchmark::State& st) {
  InNode in_node;
  resolve_neighbours();
  Runner r(masq_with(st.range(1)));
  auto pkt = packet(N1().pods[0].ip, L().externals[0].address, 40000, 443);
  time_runs(st, r, r.progs->from_pod_fd(), pkt, r.lxc1, kRedirect);
}

// Scaling: the connection-tracking table filled to N % of its 65,536 entries (the size set for
// this benchmark) with unrelated flows.
void BM_MasqEstablished_NatOccupancy(benchmark::State& st) {
  InNode in_node;
  resolve_neighbours();
  Runner r(masq_with(0), {.ct_entries = 65536});
  const int fill = static_cast<int>(65536 * st.range(1) / 100);
  std::mt19937 rng(1);
  for (int i = 0; i < fill; ++i) {
    auto r32 = [&] { return static_cast<uint32_t>(rng()); };
    hrb_ct_key k{r32(),
                 r32(),
                 static_cast<uint16_t>(rng()),
                 static_cast<uint16_t>(rng()),
                 6,
                 static_cast<uint8_t>(i % 2),
                 {}};
    hrb_ct_entry v{~0ull, r32(), static_cast<uint16_t>(rng()), HRB_CT_F_MASQ, 0};
    bpf_map_update_elem(r.progs->map_fd("ct"), &k, &v, BPF_ANY);
  }
  auto pkt = packet(N1().pods[0].ip, L().externals[0].address, 40000, 443);
  time_runs(st, r, r.progs->from_pod_fd(), pkt, r.lxc1, kRedirect);
}

// The cost of connection tracking as a ratio measured in one loop: the same packet alternately
// through the programs with and without CT (ct_enabled), so that the machine's drift hits both
// alike. Arg 1: 0 the remote-pod path, 1 the local-pod path. Counters: ns of each, and ct/no_ct.
// `repeat` program runs per test run: 1 (BM_CtCost) includes the test run's own cost, the
// floor, in each; 200 (BM_CtCostAmortized, TTL 255 so that the packet stays forwardable) spreads
// it over 200 packets: the programs' own cost, the figure the ≤ 30 % target is about.
void ct_cost(benchmark::State& st, uint32_t repeat) {
  InNode in_node;
  resolve_neighbours();
  Runner with(masq_with(0)), without(masq_with(0), {.ct_enabled = false});
  const auto& p1 = N1().pods[0];
  const Ipv4 dst = st.range(1) ? N1().pods[1].ip : L().nodes[1].pods[0].ip;
  auto pkt = packet(p1.ip, dst, 40000, 80);
  if (repeat > 1) pkt[14 + 8] = 255;  // TTL: `repeat` decrements stay above 1
  double t_with = 0, t_without = 0;
  for (auto _ : st) {
    int v1 = -1, v2 = -1;
    auto a = pkt, b = pkt;  // each run rewrites its packet (TTL, MACs)
    double ns1 = with.run(with.progs->from_pod_fd(), a, with.lxc1, repeat, &v1);
    double ns2 = without.run(without.progs->from_pod_fd(), b, without.lxc1, repeat, &v2);
    st.SetIterationTime((ns1 + ns2) / 1e9);
    t_with += ns1;
    t_without += ns2;
    if (!verdict_is(st, v1, kRedirect) || !verdict_is(st, v2, kRedirect)) break;
  }
  const double n = std::max<double>(st.iterations(), 1);
  st.counters["ct_ns"] = t_with / n;
  st.counters["no_ct_ns"] = t_without / n;
  st.counters["ct_over_no_ct"] = t_without > 0 ? t_with / t_without : 0;
  st.SetLabel(fmt::format("{}{}", st.range(1) ? "local pod" : "remote pod",
                          repeat > 1 ? fmt::format(", {} repeats a run", repeat) : ""));
}
void BM_CtCost(benchmark::State& st) { ct_cost(st, 1); }
void BM_CtCostAmortized(benchmark::State& st) { ct_cost(st, 200); }

// Services in BPF: a known connection to a service (frontend lookup, CT of the connection and
// of its flow after DNAT, DNAT, FIB) with N services in the map; and a new connection per
// packet (a backend chosen, two CT entries created).
void BM_Service_Established(benchmark::State& st) {
  InNode in_node;
  resolve_neighbours();
  const int services = static_cast<int>(st.range(1));
  Runner r(masq_with(0), {.lb_services = services, .lb_endpoints_per_service = 1});
  const int svc = 2 % services;  // backed on node2 for every N used here (round-robin endpoints)
  auto pkt = packet(N1().pods[0].ip, datapath::service_ip(L(), svc), 40000, datapath::kServicePort);
  time_runs(st, r, r.progs->from_pod_fd(), pkt, r.lxc1, kRedirect);
}

void BM_Service_NewConnection(benchmark::State& st) {
  InNode in_node;
  resolve_neighbours();
  Runner r(masq_with(0), {.lb_services = 4, .lb_endpoints_per_service = 1});
  uint16_t sport = 1024;
  double total = 0;
  uint64_t n = 0;
  for (auto _ : st) {
    auto pkt =
        packet(N1().pods[0].ip, datapath::service_ip(L(), 2), sport++, datapath::kServicePort);
    int verdict = -1;
    double ns = r.run(r.progs->from_pod_fd(), pkt, r.lxc1, 1, &verdict);
    st.SetIterationTime(ns / 1e9);
    total += ns;
    ++n;
    if (!verdict_is(st, verdict, kRedirect)) break;
  }
  st.SetLabel("a new client port every packet");
  st.counters["ns_per_packet"] = total / std::max<uint64_t>(n, 1);
}

// Scaling: the local (redirect_peer) path with N endpoints in the map.
void BM_Local_Endpoints(benchmark::State& st) {
  InNode in_node;
  Runner r(masq_with(0));
  hrb_endpoint ep{};
  ep.ifindex = r.lxc1;
  for (int i = 0; i < st.range(1); ++i) {
    uint32_t ip = htonl((10u << 24) | (250u << 16) | static_cast<uint32_t>(i));
    bpf_map_update_elem(r.progs->map_fd("endpoints"), &ip, &ep, BPF_ANY);
  }
  auto pkt = packet(N1().pods[0].ip, N1().pods[1].ip, 40000, 80);
  time_runs(st, r, r.progs->from_pod_fd(), pkt, r.lxc1, kRedirect);
}

// The floor: the doctor's probe program only counts, so this is the test run's own timing cost.
void BM_TestRunFloor(benchmark::State& st) {
  InNode in_node;
  Runner r(masq_with(0));
  Skeleton<doctor_probe> probe;
  bpf_program* p;
  bpf_object__for_each_program(p, probe->obj)
      bpf_program__set_autoload(p, p == probe->progs.probe_count);
  probe.load("probe_count");
  auto pkt = packet(N1().pods[0].ip, N1().pods[1].ip, 40000, 80);
  time_runs(st, r, bpf_program__fd(probe->progs.probe_count), pkt, r.lxc1, kToStack);
}

}  // namespace

// Fixed iteration counts: the kernel-timed work per iteration is ~100 ns, so a minimum time in
// manual-time seconds would mean millions of syscalls per benchmark.
constexpr int kIters = 20000;
BENCHMARK(BM_TestRunFloor)->UseManualTime()->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_pod_local_redirect_peer, kLocal)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_pod_remote_fib, kRemote)->UseManualTime()->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_pod_remote_fib_no_ct, kRemote, false)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_pod_local_redirect_peer_no_ct, kLocal, false)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_pod_masq_established, kMasqEstablished)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_uplink_reverse_nat, kRevNat)->UseManualTime()->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_uplink_to_local_pod, kUplinkToPod)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path, from_pod_non_ip_pass, kNonIp)->UseManualTime()->Iterations(kIters);
BENCHMARK(BM_MasqNewFlow)->UseManualTime()->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path6, from_pod_local_redirect_peer, kLocal6)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path6, from_pod_remote_fib, kRemote6)->UseManualTime()->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path6, from_pod_masq_established, kMasqEstablished6)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path6, from_uplink_reverse_nat, kRevNat6)->UseManualTime()->Iterations(kIters);
BENCHMARK_CAPTURE(BM_Path6, from_uplink_to_local_pod, kUplinkToPod6)
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK(BM_MasqEstablished_LpmSize)
    ->ArgsProduct({{1}, {1, 16, 256, 4096, 16000}})
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK(BM_MasqEstablished_NatOccupancy)
    ->ArgsProduct({{1}, {0, 10, 50, 90}})
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK(BM_CtCost)->ArgsProduct({{1}, {0, 1}})->UseManualTime()->Iterations(kIters);
BENCHMARK(BM_CtCostAmortized)->ArgsProduct({{1}, {0, 1}})->UseManualTime()->Iterations(kIters / 20);
BENCHMARK(BM_Service_Established)
    ->ArgsProduct({{1}, {10, 1000, 10000}})
    ->UseManualTime()
    ->Iterations(kIters);
BENCHMARK(BM_Service_NewConnection)->UseManualTime()->Iterations(kIters);
BENCHMARK(BM_Local_Endpoints)
    ->ArgsProduct({{1}, {1, 64, 1024, 4000}})
    ->UseManualTime()
    ->Iterations(kIters);

// SIGINT/SIGTERM: take the cluster down (by exec'ing `hrbench clean`, which is safe from a
// signal handler) instead of leaving namespaces behind.
char g_clean_prefix[32];
void on_signal(int) {
  pid_t pid = fork();
  if (pid == 0) {
    execl(HRB_BINARY_DIR "/harness/hrbench", "hrbench", "clean", "--prefix", g_clean_prefix,
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int st;
  if (pid > 0) waitpid(pid, &st, 0);
  _exit(130);
}

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (geteuid() != 0) {
    fprintf(stderr, "datapath_bench: needs root (BPF, network namespaces)\n");
    return 4;
  }
  utsname u{};
  uname(&u);
  benchmark::AddCustomContext("kernel", u.release);
  benchmark::AddCustomContext("libbpf", std::to_string(libbpf_major_version()) + "." +
                                            std::to_string(libbpf_minor_version()));
  benchmark::AddCustomContext("clang", HRB_BPF_CLANG_VERSION);
  benchmark::AddCustomContext("topology", "two-node.yaml, programs of node1");
  const std::string prefix = "hrbb" + std::to_string(getpid() % 100000);
  snprintf(g_clean_prefix, sizeof g_clean_prefix, "%s", prefix.c_str());
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  try {
    g_cluster = std::make_unique<topology::ScopedCluster>(
        HRB_SOURCE_DIR "/topologies/two-node.yaml", prefix);
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    fprintf(stderr, "datapath_bench: %s\n", e.what());
    g_cluster.reset();
    return 1;
  }
  g_cluster.reset();
  benchmark::Shutdown();
  if (g_wrong_verdict) {
    fprintf(stderr, "datapath_bench: a program gave a wrong verdict (see the errors above)\n");
    return 1;
  }
  return 0;
}
