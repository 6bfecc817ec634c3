#pragma once
// `hrbench run`: the benchmark matrix. The cluster is built once; modes are swapped between
// blocks of trials in a balanced order (ABBA…) so that drift hits every mode alike; each trial is
// one (mode, scenario, workload, repetition); node-node (no pod hop) is the ceiling, measured in
// mode none. Results go to one JSON document, written after every trial so an interrupted run
// still leaves a valid partial file.
//
// run_matrix is plan -> trial -> record: plan_matrix (the trials, in order, each with its mode
// setting decided once), TrialQueue (which planned trial runs next: invalid ones are re-queued
// later in the order, within the time budget), run_attempt (switching nothing, measuring one
// attempt of a trial) and record (a measurement as a results::Trial). Mode names stay the strings
// of --modes from the plan to the results file.
#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "datapath/mode.hpp"
#include "metrics/cpu.hpp"
#include "results/document.hpp"
#include "topology/layout.hpp"
#include "traffic/pps.hpp"
#include "traffic/workload.hpp"

namespace hrb::run {

struct RunConfig {
  std::string topology;
  std::string prefix = "hrbrun";
  std::vector<std::string> modes{"legacy", "ebpf"};
  std::vector<std::string> scenarios{"pod-pod-same-node", "pod-pod-cross-node", "pod-service",
                                     "pod-external", "node-node"};
  std::vector<std::string> workloads{"tcp_rr", "tcp_crr", "tcp_stream", "udp_stream"};
  // --families: the address families every (scenario, workload) is measured over; ipv6 needs a
  // dual-stack topology (family: dual). pps is IPv4 frames: measured over ipv4 only.
  std::vector<Family> families{Family::kIpv4};
  int repetitions = 3;
  double duration_s = 1.5;
  double warmup_s = 0.4;
  int flows = 1;
  size_t msg_size = 0;                   // 0: each workload's default
  int client_cpu = -1, server_cpu = -1;  // pin the generators' threads (-1: not pinned)
  datapath::ModeOptions mode_options;    // backend, masq config, services, …
  // Re-runs of a trial marked invalid, each re-queued later in the order (TrialQueue); the
  // budget is the real bound, this a cap per trial.
  int max_retries = 10;
  // Seconds the trials may take (from the first trial on); 0: default_budget_seconds.
  double budget_s = 0;
  // Calibration of the gate: the pseudo-mode "ebpf-delay" is ebpf mode with this many busy-loop
  // iterations injected into every program run (a deliberate, tunable slowdown).
  uint32_t calibration_delay_loops = 0;
  // More steal than this fraction marks a trial invalid; 1 (all the time stolen) or more: off.
  double max_steal_fraction = 0.10;
  std::string output;        // results file, or a directory for <run id>.json (default results/)
  std::string command_line;  // recorded in the document
  // --alternate: the modes (variants of one BPF mode: ebpf, ebpf@…, ebpf-delay) measured in the
  // same seconds, the datapath switched between them every alternate_s (0: off); settle_s after
  // each switch counts for none.
  double alternate_s = 0;
  double alternate_settle_s = 0.002;
  // Scan: one parameter varied over values (services or flows); empty: no scan.
  std::string scan_param;
  std::vector<int> scan_values;
  // --shard INDEX/COUNT: measure only the rounds results::shard_of_round deals to INDEX
  // (run/shard.hpp); absent: the whole plan.
  std::optional<results::Shard> shard;
  // --profile: after the measured trials, one more repetition of every cell with perf sampling
  // the machine, stored in the profiles file (docs/profiles.md); never one of the trials.
  bool profile = false;
};

void apply_preset(RunConfig& c, const std::string& preset);  // "quick" | "thorough"

struct Progress {
  bool tty = false;
};

// Runs the matrix; returns the document (also written to cfg.output; its `output` says where).
// `interrupted` is polled between trials: when set, the trial in flight is dropped, what
// finished is written, and the cluster is torn down.
results::Run run_matrix(const RunConfig& cfg, const std::atomic<bool>& interrupted,
                        const Progress& progress);

// The --modes names this build runs (legacy, bpf-lb, ebpf, none, ebpf-delay, and KIND@DIR /
// KIND@NAME for another build's objects: datapath::parse_mode, which resolves NAME through
// options.object_aliases); throws Error(kUsage, or kBadInput for a missing objects directory or
// file) naming the first bad one. The one place that checks mode names.
void validate_mode_names(const std::vector<std::string>& modes,
                         const datapath::ModeOptions& options = {});

// What a mode name of --modes means for one trial, decided once when the plan is made: the
// options switch_mode applies (ebpf-delay is ebpf with cfg.calibration_delay_loops; KIND@DIR
// and KIND@NAME carry the other build's objects directory) and which counters the trial reads.
struct TrialMode {
  datapath::ModeOptions options;
  bool rules = false;  // iptables rules installed (legacy, and under the BPF modes): count them
  bool bpf = false;    // BPF programs attached: read their reason counters
};
TrialMode trial_mode(const std::string& mode, const datapath::ModeOptions& run_options,
                     uint32_t calibration_delay_loops);

// One trial of the plan.
struct PlannedTrial {
  std::string mode;  // as named in --modes, and as recorded
  std::string scenario, workload;
  Family family = Family::kIpv4;
  int repetition = 0;
  std::optional<results::TrialScan> scan;  // when scanning: {RunConfig::scan_param, value}
  int flows = 1;      // the scan value when scanning flows, else RunConfig::flows
  TrialMode setting;  // services: the scan value when scanning services
  int scan_value() const { return scan ? scan->value : 0; }
};

// The order trials run in: per scan value (none: one pass) and repetition, the ceiling block
// (mode none, node-node) first when node-node is among `scenarios`, then cfg.modes, reversed on
// every odd repetition (ABBA…); within a mode its scenarios (node-node only in mode none, the
// others only outside it), within a scenario cfg.workloads (pps only in pod-pod-cross-node), and
// within a workload cfg.families (pps over ipv4 only).
// Needs no cluster: `scenarios` are those the topology holds, `scan_values` as measured,
// `run_options` the run's mode options (services raised for the service scenarios).
std::vector<PlannedTrial> plan_trials(const RunConfig& cfg,
                                      const std::vector<std::string>& scenarios,
                                      const std::vector<int>& scan_values,
                                      const datapath::ModeOptions& run_options);

// --profile: the planned trials whose cell (mode, scenario, workload, scan value) is profiled,
// as plan indices: the first trial of each cell, in plan order (so the modes come in the order
// of the first repetition, one switch each).
std::vector<size_t> profile_plan(const std::vector<PlannedTrial>& plan);

// The whole plan on a topology: the scenarios it holds (the others skipped with a warning), the
// service count raised so the service scenarios' service exists, their records, and the trials
// — with cfg.shard, only that shard's rounds (shard_plan). Throws Error(kUsage) for pps without
// pod-pod-cross-node, and for a shard that would be empty.
struct MatrixPlan {
  std::vector<std::string> scenarios;
  datapath::ModeOptions mode_options;
  std::vector<int> scan_values;  // as measured (pod-service may raise some)
  std::optional<results::ServiceTarget> pod_service, external_node_port;
  std::vector<PlannedTrial> trials;
};
MatrixPlan plan_matrix(const RunConfig& cfg, const topology::Layout& layout);

// What one attempt of a trial measured.
struct Measurement {
  std::string started_at;
  std::string client, server;
  metrics::CpuTimes cpu;
  std::optional<traffic::WorkloadResult> workload;  // a socket workload
  std::optional<traffic::PpsResult> pps;            // or pps
  std::optional<uint64_t> iptables_packets;         // rules: packets of every rule
  std::optional<uint64_t> service_rule_packets;     // and of the service's KUBE-SEP rules
  std::optional<nlohmann::json> bpf_counters;       // bpf: the reason counters that rose
};

// A measurement as the results file records it: metrics, flags, valid (no errors, something
// moved, steal within max_steal_fraction).
results::Trial record(const PlannedTrial& t, const Measurement& m, size_t order, int attempt,
                      double max_steal_fraction);

// The measurement settings of an earlier run (its `config` and topology file), so more
// repetitions of it measure the same thing (`hrbench gate --adaptive`). The matrix (modes,
// scenarios, workloads, repetitions) and the output are left for the caller to set. Throws
// Error(kBadInput) naming a setting the run did not record.
RunConfig config_of_results(const results::Run& doc);

// --- completing on noisy machines ---------------------------------------------------------
// An invalid trial is recorded (valid false, its flags, its attempt number) and its planned
// trial goes back into the queue: to the end of its own repetition round the first time (after
// the other modes' trials of that round, so the re-run stays next to the trials it is paired
// with), to the end of the following round on every later time (never back to back while other
// trials wait). Rounds are the plan's blocks of one (scan value, repetition). The run ends when
// the queue is empty (every planned trial valid, or out of re-runs) or the budget runs out.
// Pure: no cluster, no clock.
class TrialQueue {
 public:
  TrialQueue(const std::vector<PlannedTrial>& plan, int max_retries);
  // The plan index of the trial to run next; nullopt when nothing is left.
  std::optional<size_t> next() const;
  // Attempts made of planned trial `i` so far.
  int attempts(size_t i) const { return attempts_.at(i); }
  // The outcome of the attempt of next(): it leaves the queue, or goes back in when invalid and
  // it has re-runs left. Returns whether it was re-queued.
  bool done(bool valid);
  size_t size() const { return q_.size(); }
  // Queue order as plan indices (tests).
  std::vector<size_t> order() const;

 private:
  struct Entry {
    size_t planned;
    int round;  // the round it runs at the end of (its own round for first attempts)
  };
  std::deque<Entry> q_;
  std::vector<int> attempts_;
  int max_retries_;
};

// The repetition round of each planned trial: 0, 1, … per (scan value, repetition) block.
std::vector<int> plan_rounds(const std::vector<PlannedTrial>& plan);

// --- alternation (--alternate) --------------------------------------------------------------
// The trials measured together: per round, scenario, workload and family, one trial of each mode
// (plan indices, in the round's mode order: ABBA across rounds, and the order the segments start
// in). In order of each group's first trial. Every planned trial is in exactly one group.
std::vector<std::vector<size_t>> alternation_groups(const std::vector<PlannedTrial>& plan);
// The one mode that holds every variant: the first mode's options, the others' objects and
// calibration delays as ModeOptions::alternates (variant i = cfg.modes[i]). Throws Error(kUsage)
// unless the modes are 2 or more variants of one BPF kind (ebpf, bpf-lb) that differ only in their
// objects or calibration delay.
datapath::ModeOptions alternated_mode(const RunConfig& cfg,
                                      const datapath::ModeOptions& run_options);

// --budget's default: twice the measured time of the plan (trials x (warm-up + duration)) plus
// 60 s for mode switches and the like: room for every trial to be measured twice.
double default_budget_seconds(const RunConfig& cfg, size_t planned_trials);
// Whether one more attempt, expected to take `expected_s`, ends within the budget.
bool fits_budget(double elapsed_s, double expected_s, double budget_s);
// --budget SECONDS, or with a unit: 90s, 10m, 1h; throws Error(kUsage).
double parse_budget(const std::string& v);

// HRB_FAULT_INVALID (tests of the re-queue): "FRACTION[,SEED]" marks that fraction of attempts
// invalid (a seeded draw per attempt, in run order), "@N,M,…" the attempts of those orders
// (trials[].order). The flag is "fault injected".
struct FaultInjection {
  double fraction = 0;
  uint64_t seed = 1;
  std::set<int64_t> orders;
  // Whether attempt number `order` (1-based, in run order) is marked; deterministic.
  bool hits(int64_t order) const;
};
std::optional<FaultInjection> parse_fault_injection(const std::string& v);  // throws Error(kUsage)
constexpr const char* kFaultFlag = "fault injected";

// pod-service's service: the lowest index i whose `eps` endpoints (datapath::service_endpoints)
// all are pods of node2 (l.nodes[1]); -1 when there is none (fewer than eps pods on node2, or
// the round-robin never lands eps of them there). The client is node1's first pod.
int pod_service_index(const topology::Layout& l, int eps);

// Checks names before anything is built; throws Error(kUsage) naming the bad value.
void validate(const RunConfig& cfg);
// --families ipv4,ipv6: each once; throws Error(kUsage) naming the bad one.
std::vector<Family> parse_families(const std::vector<std::string>& names);

// A results file's run id: YYYYMMDD-HHMMSS-xxxx (UTC now, a random suffix).
std::string make_run_id();

// Where a run's results go: `output` itself, <output>/<run id>.json when it is an existing
// directory, results/<run id>.json when it is empty.
std::string results_path(const std::string& output, const std::string& run_id);

}  // namespace hrb::run
