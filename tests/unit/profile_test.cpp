// Kernel profiles: folding `perf script` output (a real capture as fixture), the bucket table
// and how a stack is classified, and the profiles file's reader.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/file.hpp"
#include "metrics/profile.hpp"
#include "results/profiles.hpp"

using namespace hrb;
using metrics::stack_bucket;

namespace {
std::string fixture(const std::string& name) {
  return read_text_file(std::string(HRB_SOURCE_DIR) + "/tests/fixtures/profiles/" + name,
                        "fixture");
}
}  // namespace

// --- folding ---------------------------------------------------------------------------------

TEST(Fold, HeaderAndFramesBecomeOneStackOutermostFirst) {
  const std::string text =
      "hrbench 4242/4243\n"
      "\tffffffff81a0b1c2 ipt_do_table+0x12 ([kernel.kallsyms])\n"
      "\tffffffff81a0a000 nf_hook_slow+0x44 ([kernel.kallsyms])\n"
      "\tffffffff819f0000 ip_forward+0x1f0 ([kernel.kallsyms])\n"
      "\t7f00deadbeef __libc_send+0x10 (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
      "\t55aa00001111 hrb::traffic::(anonymous namespace)::tcp_rr_client(hrb::traffic::"
      "WorkloadSpec const&, int) (/work/build/harness/hrbench)\n"
      "\n"
      "swapper     0/0\n"
      "\tffffffff81000001 pv_native_safe_halt+0xb ([kernel.kallsyms])\n"
      "\tffffffff81000002 default_idle+0x9 ([kernel.kallsyms])\n"
      "\tffffffff81000003 do_idle+0x1d ([kernel.kallsyms])\n"
      "\n"
      "ksoftirqd/1    22/22\n"
      "\tffffffff81000004 net_rx_action+0x1 ([kernel.kallsyms])\n"
      "\n"
      "othertool 999/999\n"
      "\tffffffff81000005 tcp_sendmsg+0x1 ([kernel.kallsyms])\n";
  const auto f = metrics::fold_perf_script(text, {.pids = {4242}});
  EXPECT_EQ(f.samples, 3u);
  EXPECT_EQ(f.other_samples, 1u) << "othertool is neither us nor a kernel task";
  EXPECT_EQ(f.stacks.at("hrbench;hrb::traffic::(anonymous namespace)::tcp_rr_client_[u];"
                        "__libc_send_[u];ip_forward;nf_hook_slow;ipt_do_table"),
            1u)
      << f.text();
  EXPECT_EQ(f.stacks.at("swapper;do_idle;default_idle;pv_native_safe_halt"), 1u);
  EXPECT_EQ(f.stacks.at("ksoftirqd;net_rx_action"), 1u);
  // Without a pid filter every sample is kept.
  EXPECT_EQ(metrics::fold_perf_script(text).samples, 4u);
}

TEST(Fold, RealCaptureOfLegacyTcpCrr) {
  // perf record -e cpu-clock -a -g -F 999 during `hrbench traffic tcp_crr` (pid 3191) from
  // node1-pod1 to node2-pod1 in legacy mode (iptables-nft) on a machine busy compiling, then
  // perf script -F comm,pid,tid,ip,sym,dso --no-inline; cut to 244 samples of hrbench and the
  // kernel's tasks and 10 of the compiler (cc1plus).
  const auto f =
      metrics::fold_perf_script(fixture("legacy-tcp_crr.perf-script.txt"), {.pids = {3191}});
  EXPECT_EQ(f.other_samples, 10u) << "the compiler's samples are left out";
  ASSERT_EQ(f.samples, 244u);
  const auto b = metrics::bucket_samples(f);
  EXPECT_GT(b.at("netfilter"), 0u) << "nft_do_chain / nf_hook_slow frames";
  EXPECT_GT(b.at("conntrack"), 0u) << "nf_conntrack_in frames";
  EXPECT_GT(b.at("tcp_udp"), 0u);
  EXPECT_EQ(b.at("bpf"), 0u) << "no BPF program runs in legacy mode";
  uint64_t sum = 0;
  for (const auto& [id, n] : b) sum += n;
  EXPECT_EQ(sum, f.samples) << "every sample is in exactly one bucket";
  // Folded text parses back to the same stacks.
  const auto back = metrics::parse_folded(f.text(), "folded");
  EXPECT_EQ(back.stacks, f.stacks);
  EXPECT_EQ(back.samples, f.samples);
}

TEST(Fold, RealCaptureOfEbpfTcpCrrShowsTheProgramsAndNoRuleWalk) {
  // The same in ebpf mode (hrbench's pid 3275).
  const auto f =
      metrics::fold_perf_script(fixture("ebpf-tcp_crr.perf-script.txt"), {.pids = {3275}});
  EXPECT_EQ(f.other_samples, 10u);
  ASSERT_EQ(f.samples, 237u);
  const auto b = metrics::bucket_samples(f);
  EXPECT_GT(b.at("bpf"), 0u) << "bpf_prog_*_from_pod frames";
  EXPECT_EQ(b.at("netfilter"), 0u) << f.text();
}

TEST(Fold, MalformedFoldedLineIsNamed) {
  try {
    metrics::parse_folded("a;b 3\nno-count-here\n", "x.folded");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("x.folded:2"), std::string::npos) << e.what();
  }
}

// --- buckets ---------------------------------------------------------------------------------

TEST(Buckets, TableHasEveryBucketOfTheIssueOnce) {
  std::vector<std::string> ids;
  for (const auto& b : metrics::bucket_table()) ids.push_back(b.id);
  EXPECT_EQ(
      ids, (std::vector<std::string>{"nat", "conntrack", "netfilter", "bpf", "veth_xmit", "routing",
                                     "tcp_udp", "softirq", "sched_idle", "user", "other"}));
}

TEST(Buckets, RealKernelFunctionNames) {
  struct Case {
    const char* frame;
    const char* bucket;
  } cases[] = {
      {"ipt_do_table", "netfilter"},
      {"nft_do_chain", "netfilter"},
      {"nft_do_chain_ipv4", "netfilter"},
      {"nft_immediate_eval", "netfilter"},
      {"nf_hook_slow", "netfilter"},
      {"nf_conntrack_in", "conntrack"},
      {"__nf_conntrack_find_get", "conntrack"},
      {"nf_conntrack_tcp_packet", "conntrack"},
      {"ipv4_confirm", "conntrack"},
      {"nf_nat_ipv4_fn", "nat"},
      {"nf_nat_inet_fn", "nat"},
      {"nft_masq_eval", "nat"},
      {"bpf_prog_6deef7357e7b4530_from_pod", "bpf"},
      {"tcx_run", "bpf"},
      {"veth_xmit", "veth_xmit"},
      {"__dev_queue_xmit", "veth_xmit"},
      {"br_handle_frame", "veth_xmit"},
      {"skb_do_redirect", "veth_xmit"},
      {"fib_table_lookup", "routing"},
      {"ip_forward", "routing"},
      {"ip_rcv", "routing"},
      {"neigh_resolve_output", "routing"},
      {"tcp_v4_rcv", "tcp_udp"},
      {"tcp_sendmsg", "tcp_udp"},
      {"__inet_lookup_established", "tcp_udp"},
      {"udp_sendmsg", "tcp_udp"},
      {"__do_softirq", "softirq"},
      {"handle_softirqs", "softirq"},
      {"net_rx_action", "softirq"},
      {"process_backlog", "softirq"},
      {"__netif_receive_skb_core", "softirq"},
      {"schedule", "sched_idle"},
      {"__schedule", "sched_idle"},
      {"do_idle", "sched_idle"},
      {"pv_native_safe_halt", "sched_idle"},
      {"try_to_wake_up", "sched_idle"},
      {"crr_client_[u]", "user"},
      {"memcpy_orig", ""},
      {"_raw_spin_lock", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(metrics::frame_bucket(c.frame), c.bucket) << c.frame;
}

TEST(Buckets, AStackTakesItsInnermostMatchingKernelFrame) {
  // A generic leaf (a lock, a copy) belongs to the nearest caller that has a bucket.
  EXPECT_EQ(stack_bucket("hrbench;entry_SYSCALL_64;__x64_sys_connect;tcp_v4_connect;"
                         "__ip_queue_xmit;ip_output;nf_hook_slow;nft_do_chain_ipv4;"
                         "nft_do_chain;_raw_spin_lock"),
            "netfilter");
  // Conntrack called from the netfilter hook: conntrack, not the hook.
  EXPECT_EQ(stack_bucket("swapper;do_idle;net_rx_action;__netif_receive_skb_core;ip_rcv;"
                         "nf_hook_slow;ipv4_conntrack_in;nf_conntrack_in;__nf_conntrack_find_get"),
            "conntrack");
  // Interrupt work taken while idle is that work, not idle.
  EXPECT_EQ(stack_bucket("swapper;cpu_startup_entry;do_idle;default_idle;"
                         "asm_sysvec_apic_timer_interrupt;handle_softirqs;net_rx_action;"
                         "process_backlog;__netif_receive_skb_core;tcx_run;"
                         "bpf_prog_6deef7357e7b4530_from_pod;bpf_map_lookup_elem"),
            "bpf");
  // A helper the program calls with a bucket of its own: that bucket.
  EXPECT_EQ(stack_bucket("hrbench;tcx_run;bpf_prog_aa_from_pod;bpf_fib_lookup;fib_table_lookup"),
            "routing");
  // Sampled in user space: the generators' user space, whatever the kernel frames above.
  EXPECT_EQ(stack_bucket("hrbench;main_[u];tcp_rr_client_[u]"), "user");
  // In the kernel with nothing matched, not the user frames that called it: other.
  EXPECT_EQ(stack_bucket("hrbench;tcp_rr_client_[u];entry_SYSCALL_64;do_syscall_64;memcpy_orig"),
            "other");
  // The fabric's bridge filtering (br_netfilter) is the fabric's, the same in every mode: it is
  // the bridge's (veth/xmit), not the node's rule walk.
  EXPECT_EQ(stack_bucket("hrbench;net_rx_action;__netif_receive_skb_core;br_handle_frame;"
                         "br_nf_pre_routing;br_nf_hook_thresh;br_handle_frame_finish;"
                         "__br_forward;nf_hook_slow"),
            "veth_xmit");
  // LSM hooks' BPF stubs run for every security hook: not our programs.
  EXPECT_EQ(stack_bucket("hrbench;__x64_sys_close;__fput;security_file_free;"
                         "bpf_lsm_file_free_security"),
            "other");
  // The task's name is not a function.
  EXPECT_EQ(stack_bucket("schedule"), "other");
  EXPECT_EQ(stack_bucket("ksoftirqd;run_ksoftirqd"), "softirq");
}

TEST(Buckets, SamplesPerBucketCountEveryStackOnce) {
  metrics::FoldedStacks f;
  f.stacks = {{"hrbench;ip_forward;nf_hook_slow;ipt_do_table", 5},
              {"hrbench;tcx_run;bpf_prog_aa_from_pod", 3},
              {"swapper;do_idle", 2},
              {"hrbench;x_[u]", 1}};
  f.samples = 11;
  const auto b = metrics::bucket_samples(f);
  EXPECT_EQ(b.at("netfilter"), 5u);
  EXPECT_EQ(b.at("bpf"), 3u);
  EXPECT_EQ(b.at("sched_idle"), 2u);
  EXPECT_EQ(b.at("user"), 1u);
  EXPECT_EQ(b.at("nat"), 0u) << "every bucket is present";
  EXPECT_EQ(b.size(), metrics::bucket_table().size());
}

// --- the profiles file and what is read from it --------------------------------------------

namespace {
results::Profile profile(const std::string& mode, std::map<std::string, uint64_t> stacks) {
  results::Profile p;
  p.mode = mode;
  p.scenario = "pod-pod-cross-node";
  p.workload = "tcp_crr";
  p.stacks = std::move(stacks);
  for (const auto& [s, n] : p.stacks) p.samples += n;
  return p;
}
}  // namespace

TEST(Profiles, SentenceSaysWhereTheDifferenceWent) {
  results::ProfileDocument d;
  d.frequency_hz = 999;
  // ebpf listed first: the reference is still legacy (mode order).
  d.profiles.push_back(
      profile("ebpf", {{"hrbench;tcx_run;bpf_prog_aa_from_pod", 10}, {"hrbench;tcp_sendmsg", 90}}));
  d.profiles.push_back(profile("legacy", {{"hrbench;nf_hook_slow;ipt_do_table", 18},
                                          {"hrbench;nf_hook_slow;nf_conntrack_in", 10},
                                          {"hrbench;tcp_sendmsg", 72}}));
  const auto cs = results::bucket_comparisons(d, {"legacy", "bpf-lb", "ebpf"});
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].modes, (std::vector<std::string>{"legacy", "ebpf"}));
  EXPECT_DOUBLE_EQ(cs[0].shares[0].at("netfilter"), 0.18);
  EXPECT_DOUBLE_EQ(cs[0].shares[1].at("bpf"), 0.10);
  const std::string s = results::bucket_sentence(cs[0]);
  EXPECT_EQ(s,
            "TCP/UDP stack cost ebpf 90 % of its CPU (legacy 72 %); legacy spends 18 % of its "
            "CPU in netfilter/iptables rule walk, ebpf 0 %; legacy spends 10 % of its CPU in "
            "conntrack, ebpf 0 %");
  // Without conntrack in legacy, BPF programs come third.
  d.profiles[1].stacks.erase("hrbench;nf_hook_slow;nf_conntrack_in");
  d.profiles[1].stacks["hrbench;tcp_sendmsg"] = 82;
  const auto cs2 = results::bucket_comparisons(d, {"legacy", "ebpf"});
  EXPECT_NE(
      results::bucket_sentence(cs2[0]).find("BPF programs cost ebpf 10 % of its CPU (legacy 0 %)"),
      std::string::npos)
      << results::bucket_sentence(cs2[0]);
}

// run --families ipv4,ipv6 --profile: each family's cell is its own comparison, titled with its
// family, and the family round-trips through the file; a bad one is named.
TEST(Profiles, EachFamilyIsItsOwnComparison) {
  results::ProfileDocument d;
  d.frequency_hz = 999;
  d.profiles.push_back(profile("legacy", {{"hrbench;nf_hook_slow;ipt_do_table", 20}}));
  d.profiles.push_back(profile("ebpf", {{"hrbench;tcx_run;bpf_prog_aa_from_pod", 10}}));
  d.profiles.push_back(profile("legacy", {{"hrbench;nf_hook_slow;ip6t_do_table", 30}}));
  d.profiles.back().family = "ipv6";
  d.profiles.push_back(profile("ebpf", {{"hrbench;tcx_run;bpf_prog_aa_from_pod", 5}}));
  d.profiles.back().family = "ipv6";
  const auto cs = results::bucket_comparisons(d, {"legacy", "ebpf"});
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].title(), "pod-pod-cross-node tcp_crr");
  EXPECT_EQ(cs[1].title(), "pod-pod-cross-node tcp_crr ipv6");
  EXPECT_EQ(cs[1].samples, (std::vector<uint64_t>{30, 5}));
  auto j = results::to_json(d);
  EXPECT_FALSE(j["profiles"][0].contains("family")) << "IPv4 as before: no field";
  EXPECT_EQ(j["profiles"][2]["family"], "ipv6");
  EXPECT_EQ(results::profiles_from_json(j, "p.json"), d);
  j["profiles"][2]["family"] = "ipv5";
  try {
    results::profiles_from_json(j, "p.json");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("profiles[2].family"), std::string::npos) << e.what();
  }
}

TEST(Profiles, FileRoundTripsAndBadOneIsNamed) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hrb-profiles-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Rm {
    std::filesystem::path d;
    ~Rm() { std::filesystem::remove_all(d); }
  } rm{dir};
  results::ProfileDocument d;
  d.run_id = "20261201-120000-abcd";
  d.frequency_hz = 999;
  d.profiles.push_back(profile("legacy", {{"hrbench;nf_hook_slow;ipt_do_table", 3}}));
  const std::string results_file = (dir / "run.json").string();
  const std::string path = results::profiles_path_for(results_file);
  EXPECT_EQ(path, (dir / "run.profiles.json").string());
  results::write_profiles(path, d);
  EXPECT_EQ(results::read_profiles(path), d);

  results::Run run;
  run.profiles = results::ProfilesRef{.file = "run.profiles.json"};
  ASSERT_TRUE(results::profiles_of(results_file, run));
  EXPECT_EQ(results::profiles_of(results_file, run)->profiles.size(), 1u);
  EXPECT_FALSE(results::profiles_of(results_file, results::Run{}));

  write_text_file(path, R"({"schema": "hostroute-bench/profiles", "schemaVersion": 1,
    "event": "cpu-clock", "frequencyHz": 999,
    "profiles": [{"mode": "legacy", "scenario": "s", "workload": "w", "stacks": {"a;b": -1}}]})");
  try {
    results::profiles_of(results_file, run);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(m.find("run.profiles.json"), std::string::npos) << m;
    EXPECT_NE(m.find("profiles[0].stacks"), std::string::npos) << m;
  }
}
