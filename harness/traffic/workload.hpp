#pragma once
// The workloads: a server and a client per flow, each on its own thread, each socket opened inside
// its namespace (setns on that thread; never `ip netns exec` on the measured path).
//   tcp_rr      one request/response of msg_size at a time per flow (netperf TCP_RR)
//   tcp_crr     connect, request, response, close per transaction (netperf TCP_CRR)
//   tcp_stream  bulk send; Gbit/s; retransmits from TCP_INFO
//   udp_stream  sequence-numbered datagrams at a target rate or flat out; lost/reordered/dups
//   udp_rr      one datagram request/response at a time
// Samples taken during warm-up are discarded.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ipv4.hpp"
#include "metrics/cpu.hpp"
#include "metrics/histogram.hpp"
#include "traffic/sockets.hpp"

namespace hrb::traffic {

enum class Kind { kTcpRr, kTcpCrr, kTcpStream, kUdpStream, kUdpRr };
const char* kind_name(Kind k);
Kind parse_kind(const std::string& s);  // throws Error(kUsage)

struct WorkloadSpec {
  Kind kind = Kind::kTcpRr;
  std::string client_netns, server_netns;
  IpAddr dst;         // address the client sends to (IPv4 or IPv6)
  uint16_t port = 0;  // server port (0: picked)
  // The port the servers bind when it is not the one the client sends to (a service's targetPort
  // behind its port); 0: `port`. With it, every UDP flow shares that one port (SO_REUSEPORT).
  uint16_t server_port = 0;
  // More netns running the same servers (a service's other backends): connections land on
  // whichever one the datapath picks.
  std::vector<std::string> more_server_netns;
  int flows = 1;
  // 0: the kind's default (1 byte rr/crr, 128 KiB tcp_stream as iperf3, 1400 udp_stream)
  size_t msg_size = 0;
  double duration_s = 5;
  double warmup_s = 1;
  uint64_t udp_rate_pps = 0;             // udp_stream: 0 = flat out
  bool verify_payload = false;           // tcp_stream: server checks every byte of a known pattern
  int client_cpu = -1, server_cpu = -1;  // pin threads (-1: no pinning)
  // Alternation (hrbench run --alternate): while the workload runs, `select` switches the
  // datapath between `variants` variants every `segment_s`, in ABBA order (0 1 1 0 …), warm-up
  // included. A transaction (rr, crr, udp_rr) counts for the variant it ran on when it started
  // and finished inside one segment; a received byte (tcp_stream) for the variant of the
  // segment it arrived in; `settle_s` after each switch counts for none. Not for udp_stream.
  struct Alternation {
    int variants = 0;  // < 2: not alternated
    double segment_s = 0.05;
    double settle_s = 0.002;
    std::function<void(int)> select;
  };
  Alternation alternation;
};

struct WorkloadResult {
  Kind kind;
  double seconds = 0;         // measured interval (after warm-up)
  uint64_t transactions = 0;  // rr, crr
  uint64_t bytes = 0;         // payload bytes received by the server (stream)
  uint64_t udp_sent = 0, udp_received = 0, udp_lost = 0, udp_reordered = 0, udp_duplicates = 0;
  uint64_t tcp_retransmits = 0;  // stream: sum of tcpi_total_retrans of the senders
  uint64_t payload_errors = 0;   // verify_payload: bytes that differed from the pattern
  uint64_t errors = 0;           // failed connects, timeouts, short reads
  std::string first_error;
  metrics::Histogram latency;  // per transaction (rr, crr, udp_rr)
  // Alternated: one result per variant, each with the seconds its segments were measured, the
  // CPU time of those segments, and what counted for it (errors and retransmits are the whole
  // workload's); the fields above are the sums. `segments`: measured segments of all variants.
  std::vector<WorkloadResult> variants;
  metrics::CpuTimes cpu;
  int segments = 0;
  double transactions_per_s() const { return seconds > 0 ? transactions / seconds : 0; }
  double gbit_per_s() const { return seconds > 0 ? bytes * 8 / seconds / 1e9 : 0; }
  nlohmann::json to_json() const;
};

WorkloadResult run_workload(const WorkloadSpec& spec);

// Throws Error(kUsage) unless `cpu` is -1 (not pinned) or a CPU this process may run on;
// `what` names the option in the message.
void check_cpu(int cpu, const std::string& what);

// The lowest-numbered CPU this process may run on (to colocate client and server threads).
int first_allowed_cpu();

}  // namespace hrb::traffic
