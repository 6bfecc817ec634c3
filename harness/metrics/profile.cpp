#include "metrics/profile.hpp"

#include <algorithm>
#include <charconv>

#include "core/error.hpp"

namespace hrb::metrics {

namespace {

constexpr std::string_view kUserSuffix = "_[u]";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// "ksoftirqd/1" -> "ksoftirqd", "kworker/0:1H" -> "kworker"; spaces (a thread may have them)
// and ';' (the frame separator) become '_'.
std::string task_name(std::string_view comm) {
  if (auto slash = comm.find('/'); slash != std::string_view::npos && slash > 0)
    comm = comm.substr(0, slash);
  std::string s(comm);
  for (auto& c : s)
    if (c == ' ' || c == ';') c = '_';
  return s.empty() ? "[unknown]" : s;
}

// A symbol as a frame: "+0x1f" offsets and a trailing C++ parameter list cut off, ';' replaced.
std::string frame_name(std::string_view sym) {
  if (auto plus = sym.rfind("+0x"); plus != std::string_view::npos && plus > 0)
    sym = sym.substr(0, plus);
  if (!sym.empty() && sym.back() == ')' && sym != "[unknown]") {
    int depth = 0;
    for (size_t i = sym.size(); i-- > 0;) {
      if (sym[i] == ')') ++depth;
      if (sym[i] == '(' && --depth == 0) {
        if (i > 0) sym = sym.substr(0, i);
        break;
      }
    }
  }
  std::string s(trim(sym));
  for (auto& c : s)
    if (c == ';') c = ':';
  return s.empty() ? "[unknown]" : s;
}

bool is_header(std::string_view line) { return !line.empty() && line[0] != ' ' && line[0] != '\t'; }

// "comm… PID/TID" (comm may hold spaces): the command and the pid; false when it is not one.
bool parse_header(std::string_view line, std::string& comm, int& pid) {
  // The first token after the command of the form digits/digits.
  size_t at = 0;
  while (at < line.size()) {
    size_t sp = line.find_first_of(" \t", at);
    const std::string_view tok = line.substr(at, sp == std::string_view::npos ? sp : sp - at);
    const auto slash = tok.find('/');
    if (at > 0 && slash != std::string_view::npos && slash > 0 && slash + 1 < tok.size() &&
        std::all_of(tok.begin(), tok.end(),
                    [](char c) { return (c >= '0' && c <= '9') || c == '/'; })) {
      comm = std::string(trim(line.substr(0, at)));
      pid = 0;
      std::from_chars(tok.data(), tok.data() + slash, pid);
      return true;
    }
    if (sp == std::string_view::npos) break;
    at = line.find_first_not_of(" \t", sp);
    if (at == std::string_view::npos) break;
  }
  return false;
}

// "ffffffff81a0b1c2 ipt_do_table+0x12 ([kernel.kallsyms])": the frame name, and whether it is
// a kernel address.
bool parse_frame(std::string_view line, std::string& name, bool& kernel) {
  line = trim(line);
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  const std::string_view addr = line.substr(0, sp);
  uint64_t a = 0;
  auto [p, ec] = std::from_chars(addr.data(), addr.data() + addr.size(), a, 16);
  if (ec != std::errc() || p != addr.data() + addr.size()) return false;
  kernel = (a >> 63) != 0;
  std::string_view rest = trim(line.substr(sp + 1));
  // The DSO is the last parenthesised group: "(…)" at the end.
  if (!rest.empty() && rest.back() == ')') {
    int depth = 0;
    for (size_t i = rest.size(); i-- > 0;) {
      if (rest[i] == ')') ++depth;
      if (rest[i] == '(' && --depth == 0) {
        rest = trim(rest.substr(0, i));
        break;
      }
    }
  }
  name = frame_name(rest);
  if (!kernel) name += kUserSuffix;
  return true;
}

bool matches(std::string_view pattern, std::string_view name) {
  const bool lead = !pattern.empty() && pattern.front() == '*';
  const bool trail = pattern.size() > 1 && pattern.back() == '*';
  std::string_view core = pattern.substr(lead ? 1 : 0);
  if (trail) core.remove_suffix(1);
  if (lead && trail) return name.find(core) != std::string_view::npos;
  if (lead) return name.ends_with(core);
  if (trail) return name.starts_with(core);
  return name == core;
}

}  // namespace

std::string FoldedStacks::text() const {
  std::string s;
  for (const auto& [stack, n] : stacks) s += stack + " " + std::to_string(n) + "\n";
  return s;
}

void FoldedStacks::merge(const FoldedStacks& o) {
  for (const auto& [stack, n] : o.stacks) stacks[stack] += n;
  samples += o.samples;
  other_samples += o.other_samples;
}

FoldedStacks fold_perf_script(std::string_view text, const FoldOptions& opts) {
  FoldedStacks out;
  std::string comm;
  int pid = -1;
  bool in_sample = false;
  std::vector<std::string> frames;  // innermost first, as perf prints them
  auto flush = [&] {
    if (!in_sample) return;
    in_sample = false;
    const bool keep = opts.pids.empty() || opts.pids.count(pid) || pid == 0 ||
                      comm.starts_with("ksoftirqd") || comm.starts_with("swapper");
    if (!keep) {
      ++out.other_samples;
      return;
    }
    std::string stack = task_name(comm);
    std::string_view prev;
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      if (*it == prev && it->starts_with("[unknown]")) continue;  // unsymbolised runs: one frame
      stack += ';';
      stack += *it;
      prev = *it;
    }
    ++out.stacks[stack];
    ++out.samples;
  };
  size_t at = 0;
  while (at <= text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(at, nl - at);
    at = nl + 1;
    if (trim(line).empty()) continue;
    if (is_header(line)) {
      flush();
      frames.clear();
      in_sample = parse_header(line, comm, pid);
      continue;
    }
    std::string name;
    bool kernel = false;
    if (in_sample && parse_frame(line, name, kernel)) frames.push_back(std::move(name));
  }
  flush();
  return out;
}

FoldedStacks parse_folded(std::string_view text, const std::string& label) {
  FoldedStacks out;
  size_t at = 0;
  int line_no = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = trim(text.substr(at, nl - at));
    at = nl + 1;
    ++line_no;
    if (line.empty()) continue;
    const size_t sp = line.rfind(' ');
    uint64_t n = 0;
    const bool ok = sp != std::string_view::npos && sp > 0 &&
                    std::from_chars(line.data() + sp + 1, line.data() + line.size(), n).ptr ==
                        line.data() + line.size();
    if (!ok)
      throw Error(fmt::format("{}:{}: expected 'frame;frame;… COUNT', got '{}'", label, line_no,
                              line.substr(0, 120)),
                  ExitCode::kBadInput);
    out.stacks[std::string(line.substr(0, sp))] += n;
    out.samples += n;
  }
  return out;
}

const std::vector<Bucket>& bucket_table() {
  // Real kernel function names (6.x). Order matters only where a name would match two buckets:
  // NAT before conntrack and netfilter (nft_nat_eval, nf_nat_*), conntrack before netfilter.
  static const std::vector<Bucket> table{
      {"nat",
       "NAT",
       {"nf_nat_*", "nft_nat_*", "nft_masq_*", "masquerade_*", "nf_xfrm_me_harder", "*_nat_fn",
        "nf_nat_ipv4_*", "iptable_nat_*", "ip6table_nat_*"}},
      {"conntrack",
       "conntrack",
       {"nf_conntrack_*",
        "__nf_conntrack_*",
        "nf_ct_*",
        "__nf_ct_*",
        "ipv4_conntrack_*",
        "ipv6_conntrack_*",
        "nf_confirm",
        "__nf_confirm",
        "ipv4_confirm",
        "ipv6_confirm",
        "init_conntrack",
        "destroy_conntrack",
        "hash_conntrack*",
        "nf_ct_get_tuple*",
        "resolve_normal_ct",
        "nf_conntrack_in",
        "tcp_packet",
        "nf_conntrack_tcp_packet",
        "nf_conntrack_udp_packet",
        "conntrack_mt",
        "nft_ct_*",
        "nf_ct_seq_adjust"}},
      {"netfilter",
       "netfilter/iptables rule walk",
       {"ipt_do_table",
        "ip6t_do_table",
        "nft_do_chain*",
        "nft_*_eval*",
        "nft_immediate_*",
        "nft_meta_*",
        "nft_cmp_*",
        "nft_payload_*",
        "nft_lookup_*",
        "nft_counter_*",
        "nft_compat_*",
        "nft_match_*",
        "nft_target_*",
        "nft_rhash_*",
        "nft_hash_*",
        "nft_bitmap_*",
        "nf_hook_slow",
        "nf_hook_slow_list",
        "xt_*",
        "*_mt",
        "*_mt4",
        "*_mt6",
        "*_tg",
        "*_tg4",
        "*_tg6",
        "ipt_*",
        "iptable_*",
        "nf_iterate",
        "nf_tables_*",
        "nft_chain_*",
        "nf_reject_*",
        "statistic_mt",
        "mark_mt",
        "comment_mt",
        "addrtype_mt_v1",
        "physdev_mt",
        "nf_ip_checksum",
        "nf_checksum"}},
      {"bpf",
       "BPF programs",
       {"bpf_prog_*", "bpf_trampoline_*", "__bpf_prog_run*", "bpf_dispatcher_*", "tcx_run",
        "tcf_classify", "sch_handle_ingress", "sch_handle_egress", "bpf_test_run",
        "__cgroup_bpf_run_*"}},
      {"veth_xmit",
       "veth/xmit",
       {"veth_*",           "dev_queue_xmit*",    "__dev_queue_xmit",        "dev_hard_start_xmit",
        "__dev_xmit_skb",   "sch_direct_xmit",    "validate_xmit_skb*",      "netdev_core_pick_tx",
        "skb_do_redirect",  "__bpf_redirect*",    "bpf_out_neigh_v4",        "bpf_out_neigh_v6",
        "dev_forward_skb*", "__dev_forward_skb*", "____dev_forward_skb",     "br_*",
        "eth_type_trans",   "netdev_pick_tx",     "skb_csum_hwoffload_help", "dev_qdisc_enqueue",
        "pfifo_fast_*",     "noqueue_*"}},
      {"routing",
       "routing (IP layer)",
       {"fib_table_lookup",
        "fib_lookup*",
        "__fib_lookup",
        "fib_validate_source*",
        "__fib_validate_source",
        "fib4_*",
        "fib6_*",
        "fib_*",
        "ip_route_*",
        "ip_rcv*",
        "ip_forward*",
        "ip_output",
        "ip_finish_output*",
        "__ip_finish_output",
        "ip_local_out",
        "__ip_local_out",
        "ip_local_deliver*",
        "ip_protocol_deliver_rcu",
        "ip_sublist_rcv*",
        "ip_list_rcv*",
        "ip_mkroute_*",
        "__mkroute_*",
        "rt_dst_alloc",
        "ip_queue_xmit",
        "__ip_queue_xmit",
        "ip_send_check",
        "ip6_*",
        "ipv6_rcv",
        "ip6_rcv*",
        "neigh_*",
        "__neigh_*",
        "dst_release*",
        "dst_alloc",
        "rt_set_nexthop",
        "ip_rt_*",
        "__ip_route_output_key*",
        "ip_route_output_*",
        "inet_addr_type*",
        "l3mdev_*"}},
      {"tcp_udp",
       "TCP/UDP stack",
       {"tcp_*",
        "__tcp_*",
        "tcp4_*",
        "tcp6_*",
        "tcp_v4_*",
        "tcp_v6_*",
        "inet_*",
        "__inet_*",
        "inet6_*",
        "__inet6_*",
        "inet_csk_*",
        "udp_*",
        "__udp*",
        "udpv6_*",
        "udp4_*",
        "udp6_*",
        "sock_*",
        "__sock_*",
        "sk_*",
        "__sk_*",
        "sock_def_*",
        "sockfd_lookup*",
        "__sys_sendto",
        "__sys_recvfrom",
        "__sys_connect*",
        "__sys_accept4*",
        "__sys_socket*",
        "__sys_bind",
        "__sys_listen",
        "__sys_shutdown",
        "__sys_setsockopt",
        "__sys_getsockopt",
        "__sys_sendmsg",
        "__sys_recvmsg",
        "__x64_sys_sendto",
        "__x64_sys_recvfrom",
        "__x64_sys_connect",
        "__x64_sys_accept4",
        "__x64_sys_socket",
        "__x64_sys_setsockopt",
        "__x64_sys_shutdown",
        "sock_close",
        "__sock_release",
        "secure_tcp_*",
        "secure_tcpv6_*",
        "skb_copy_datagram_*",
        "__skb_datagram_iter",
        "release_sock",
        "lock_sock_nested",
        "__release_sock",
        "raw_v4_input",
        "icmp_*",
        "security_socket_*",
        "security_sk_*",
        "move_addr_to_*"}},
      {"softirq",
       "softirq/backlog",
       {"__do_softirq",
        "do_softirq*",
        "handle_softirqs",
        "net_rx_action",
        "__napi_poll*",
        "napi_*",
        "process_backlog",
        "__netif_receive_skb*",
        "netif_receive_skb*",
        "__netif_rx",
        "netif_rx*",
        "enqueue_to_backlog",
        "__local_bh_enable_ip",
        "local_bh_enable*",
        "irq_exit_rcu",
        "__irq_exit_rcu",
        "run_ksoftirqd",
        "net_tx_action",
        "__netif_receive_skb_core*",
        "gro_*",
        "dev_gro_receive",
        "napi_gro_*",
        "rps_*",
        "get_rps_cpu"}},
      {"sched_idle",
       "scheduler/idle",
       {"schedule",
        "__schedule",
        "schedule_*",
        "do_idle",
        "cpu_startup_entry",
        "default_idle*",
        "cpuidle_*",
        "arch_cpu_idle*",
        "pv_native_safe_halt",
        "native_safe_halt",
        "acpi_idle_*",
        "intel_idle*",
        "mwait_idle*",
        "poll_idle",
        "try_to_wake_up",
        "ttwu_*",
        "wake_up_*",
        "__wake_up*",
        "finish_task_switch*",
        "pick_next_task*",
        "__pick_next_task*",
        "enqueue_task*",
        "dequeue_task*",
        "update_curr*",
        "__switch_to*",
        "context_switch",
        "native_send_call_func_*",
        "x2apic_send_IPI*",
        "__smp_call_single_queue",
        "sched_ttwu_pending",
        "flush_smp_call_function_queue",
        "__flush_smp_call_function_queue",
        "sysvec_call_function_single",
        "select_task_rq*",
        "update_load_avg",
        "psi_task_change",
        "psi_group_change",
        "tick_nohz_*",
        "hrtimer_start_range_ns",
        "schedule_hrtimeout_range*",
        "do_nanosleep",
        "hrtimer_nanosleep"}},
      {"user", "generators' user space", {}},
      {"other", "other", {}},
  };
  return table;
}

const Bucket* find_bucket(std::string_view id) {
  for (const auto& b : bucket_table())
    if (b.id == id) return &b;
  return nullptr;
}

std::string frame_bucket(std::string_view frame) {
  if (frame.ends_with(kUserSuffix)) return "user";
  for (const auto& b : bucket_table())
    for (const auto& p : b.patterns)
      if (matches(p, frame)) return b.id;
  return "";
}

void StackClassifier::push(std::string_view frame) {
  if (frame.ends_with(kUserSuffix)) {
    user_leaf_ = true;
    return;
  }
  user_leaf_ = false;
  if (frame.starts_with("br_nf_")) bridge_nf_ = true;
  std::string b = frame_bucket(frame);
  if (b.empty()) return;
  if (bridge_nf_ && (b == "netfilter" || b == "conntrack" || b == "nat")) b = "veth_xmit";
  matched_ = std::move(b);
}

std::string stack_bucket(std::string_view stack) {
  StackClassifier c;
  size_t at = stack.find(';');  // the task is not a function
  if (at == std::string_view::npos) return c.bucket();
  ++at;
  while (at <= stack.size()) {
    size_t semi = stack.find(';', at);
    if (semi == std::string_view::npos) semi = stack.size();
    c.push(stack.substr(at, semi - at));
    at = semi + 1;
  }
  return c.bucket();
}

std::map<std::string, uint64_t> bucket_samples(const FoldedStacks& f) {
  std::map<std::string, uint64_t> out;
  for (const auto& b : bucket_table()) out[b.id] = 0;
  for (const auto& [stack, n] : f.stacks) out[stack_bucket(stack)] += n;
  return out;
}

nlohmann::json profile_json(const FoldedStacks& f, int frequency_hz, double seconds) {
  nlohmann::json b = nlohmann::json::object();
  const auto counts = bucket_samples(f);
  for (const auto& bucket : bucket_table()) {
    const uint64_t n = counts.at(bucket.id);
    b[bucket.id] = {{"label", bucket.label},
                    {"samples", n},
                    {"share", f.samples ? static_cast<double>(n) / f.samples : 0.0}};
  }
  return {{"event", "cpu-clock"}, {"frequencyHz", frequency_hz},     {"seconds", seconds},
          {"samples", f.samples}, {"otherSamples", f.other_samples}, {"buckets", b}};
}

}  // namespace hrb::metrics
