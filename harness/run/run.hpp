#pragma once
// `hrbench run`: the benchmark matrix. The cluster is built once; modes are swapped between
// blocks of trials in a balanced order (ABBA…) so that drift hits every mode alike; each trial is
// one (mode, scenario, workload, repetition); node-node (no pod hop) is the ceiling, measured in
// mode none. Results go to one JSON document, written after every trial so an interrupted run
// still leaves a valid partial file.
#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datapath/mode.hpp"
#include "topology/layout.hpp"

namespace hrb::run {

struct RunConfig {
  std::string topology;
  std::string prefix = "hrbrun";
  std::vector<std::string> modes{"legacy", "ebpf"};
  std::vector<std::string> scenarios{"pod-pod-same-node", "pod-pod-cross-node", "pod-service",
                                     "pod-external", "node-node"};
  std::vector<std::string> workloads{"tcp_rr", "tcp_crr", "tcp_stream", "udp_stream"};
  int repetitions = 3;
  double duration_s = 1.5;
  double warmup_s = 0.4;
  int flows = 1;
  size_t msg_size = 0;                   // 0: each workload's default
  int client_cpu = -1, server_cpu = -1;  // pin the generators' threads (-1: not pinned)
  datapath::ModeOptions mode_options;    // backend, masq config, services, …
  int max_retries = 1;                   // re-runs of a trial marked invalid
  // Calibration of the gate: the pseudo-mode "ebpf-delay" is ebpf mode with this many busy-loop
  // iterations injected into every program run (a deliberate, tunable slowdown).
  uint32_t calibration_delay_loops = 0;
  // More steal than this fraction marks a trial invalid; 1 (all the time stolen) or more: off.
  double max_steal_fraction = 0.10;
  std::string output;        // results file, or a directory for <run id>.json (default results/)
  std::string command_line;  // recorded in the document
  // Scan: one parameter varied over values (services or flows); empty: no scan.
  std::string scan_param;
  std::vector<int> scan_values;
};

void apply_preset(RunConfig& c, const std::string& preset);  // "quick" | "thorough"

struct Progress {
  bool tty = false;
};

// Runs the matrix; returns the document (also written to cfg.output). `interrupted` is polled
// between trials: when set, the trial in flight is dropped, what finished is written, and the
// cluster is torn down.
nlohmann::json run_matrix(const RunConfig& cfg, const std::atomic<bool>& interrupted,
                          const Progress& progress);

// The measurement settings of an earlier run (its `config` and topology file), so more
// repetitions of it measure the same thing (`hrbench gate --adaptive`). The matrix (modes,
// scenarios, workloads, repetitions) and the output are left for the caller to set.
RunConfig config_of_results(const nlohmann::json& doc);

// pod-service's service: the lowest index i whose `eps` endpoints (datapath::service_endpoints)
// all are pods of node2 (l.nodes[1]); -1 when there is none (fewer than eps pods on node2, or
// the round-robin never lands eps of them there). The client is node1's first pod.
int pod_service_index(const topology::Layout& l, int eps);

// Checks names before anything is built; throws Error(kUsage) naming the bad value.
void validate(const RunConfig& cfg);

// Where a run's results go: `output` itself, <output>/<run id>.json when it is an existing
// directory, results/<run id>.json when it is empty.
std::string results_path(const std::string& output, const std::string& run_id);

}  // namespace hrb::run
