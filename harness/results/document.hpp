#pragma once
// The results document as types, after google/benchmark's BenchmarkReporter::Run: one struct
// per object of the schema (docs/results-schema.md, results/schema.json), one writer (to_json)
// and one reader (from_json), both in document.cpp; nothing else indexes a results document by
// string keys.
//
// Every field a file may lack is a std::optional, absent stays absent: a document re-serializes
// byte for byte as it was read (read_results only adds the objects topology, environment,
// environment.tools and config, empty when missing). Keys this build does not know are kept in
// `other` for the same reason. What other stages write with their own to_json (the workload's
// `result`, the CPU times, the BPF counters, datapath's `modeOptions`) and the figures of
// `metrics` (read through the metric catalogue, results.hpp) stay JSON values here: results sits
// below traffic and datapath and does not know their types.
//
// Mode names are plain strings throughout ("ebpf", "ebpf-delay", "ebpf@/other/build"): results
// never interprets them.
#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace hrb::results {

constexpr int kSchemaVersion = 1;
constexpr const char* kResultsSchema = "hostroute-bench/results";
constexpr const char* kLabSchema = "hostroute-bench/lab";
constexpr const char* kProfilesSchema = "hostroute-bench/profiles";

struct Tools {
  std::optional<std::string> libbpf, clang, iptables, iproute2, compiler;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Tools&) const = default;
};

// "environment": what makes two runs' absolute figures comparable (gate::environment_differences).
struct Environment {
  std::optional<std::string> hrbench_version, virtualization, container, hostname, kernel, arch,
      distro, cpu_model;
  std::optional<int64_t> cpus;
  std::optional<uint64_t> memory_kib;
  Tools tools;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Environment&) const = default;
};

// "topology": the file the cluster was built from and what it held.
struct Topology {
  std::optional<std::string> file, name;
  std::optional<int64_t> nodes, pods_per_node;
  std::optional<std::string> yaml;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Topology&) const = default;
};

// "config.scan": the parameter varied and its values as measured.
struct Scan {
  std::string param;                                 // services | flows
  std::vector<int> values;                           // as measured
  std::optional<std::vector<int>> requested_values;  // when pod-service raised some
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Scan&) const = default;
};

// "config.podService" / "config.externalNodePort": the service a service scenario measures.
struct ServiceTarget {
  int service_index = 0;
  std::string ip;  // serviceIP (the ClusterIP) or nodeIP (node1's address)
  int port = 0, target_port = 0;
  int64_t backends = 0;
  std::optional<std::string> server;
  int services_requested = 0, minimum_services = 0;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const ServiceTarget&) const = default;
};

// "config.shard": which of `count` parts of the run's plan this run measured (`hrbench run
// --shard INDEX/COUNT`); the plan's rounds are dealt to the parts by results::shard_of_round.
struct Shard {
  int index = 1, count = 1;  // 1 <= index <= count
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Shard&) const = default;
};

// "config": how the run measured.
struct Config {
  std::optional<std::vector<std::string>> modes, scenarios, workloads;
  std::optional<std::vector<std::string>> families;  // --families; absent: ipv4
  std::optional<int> repetitions;
  std::optional<double> duration_seconds, warmup_seconds;
  std::optional<int> flows;
  std::optional<uint64_t> message_size;
  std::optional<int> max_retries;
  std::optional<double> max_steal_fraction;
  std::optional<double> budget_seconds;  // --budget: the time the run's trials may take
  // --alternate: the modes measured in the same seconds, switched every this many seconds
  std::optional<double> alternate_seconds;
  // datapath::ModeOptions::to_json (datapath owns its writer and reader).
  std::optional<nlohmann::json> mode_options;
  std::optional<uint32_t> calibration_delay_loops;
  // Absent (hand-made files), null (a run without a scan: run_matrix writes "scan": null), or
  // the scan. scan() says which scan there is.
  std::optional<std::optional<Scan>> scan_field;
  std::optional<double> cpu_tick_seconds;
  std::optional<std::array<int, 2>> pinned_cpus;  // [client, server]
  std::optional<ServiceTarget> pod_service, external_node_port;
  std::optional<Shard> shard;  // absent: the whole plan (a merged file has "shards" instead)
  nlohmann::json other = nlohmann::json::object();

  const Scan* scan() const { return scan_field && *scan_field ? &**scan_field : nullptr; }
  bool operator==(const Config&) const = default;
};

// "trials[].scan".
struct TrialScan {
  std::string param;
  int value = 0;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const TrialScan&) const = default;
};

// One element of "trials": one (mode, scenario, workload, family, repetition), as run.
struct Trial {
  std::string mode, scenario, workload;
  std::optional<std::string> family;  // ipv4 | ipv6; absent (files before families): ipv4
  std::optional<int> repetition;
  std::optional<int64_t> order;
  std::optional<int> attempt;
  std::optional<std::string> started_at, client, server;
  std::optional<int> flows;
  std::optional<bool> valid;
  std::optional<std::vector<std::string>> flags;
  std::optional<TrialScan> scan;
  std::optional<nlohmann::json> metrics;  // an object; read with results::metric_value
  std::optional<nlohmann::json> cpu;      // metrics::CpuTimes::to_json
  std::optional<nlohmann::json> result;   // the workload's own record (traffic's to_json)
  std::optional<uint64_t> iptables_packets, service_rule_packets;
  std::optional<nlohmann::json> bpf_counters;  // node -> program -> reason -> count
  // --alternate: {segmentSeconds, settleSeconds, segments, modes}: measured in the same seconds
  // as the trials of `modes` (this one's included), in alternating segments
  std::optional<nlohmann::json> alternation;
  std::optional<int> shard;  // in a merged file: the shard (config.shard.index) that measured it
  nlohmann::json other = nlohmann::json::object();

  bool is_valid() const { return valid.value_or(false); }
  int rep() const { return repetition.value_or(0); }
  std::string fam() const { return family.value_or("ipv4"); }
  bool operator==(const Trial&) const = default;
};

// One element of a merged file's "shards" (`hrbench merge`): a shard's own record of its run,
// its environment above all (each shard may have run on another machine).
struct ShardRun {
  int index = 1;
  std::optional<std::string> file, run_id, started_at, finished_at, command;
  std::optional<bool> complete, interrupted, budget_exhausted;
  std::optional<double> budget_seconds;
  Environment environment;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const ShardRun&) const = default;
};

// "profiles": where `hrbench run --profile` stored the run's kernel profiles (docs/profiles.md).
struct ProfilesRef {
  std::string file;  // the profiles file, relative to the results file's directory
  std::optional<std::string> event;
  std::optional<int> frequency_hz;
  std::optional<int64_t> cells;  // profiles written so far
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const ProfilesRef&) const = default;
};

// The whole document ("schema" and "schemaVersion" are implied: kResultsSchema, kSchemaVersion).
struct Run {
  std::optional<std::string> run_id, started_at, finished_at, git_revision, command;
  std::optional<bool> complete, interrupted;
  // true when the run stopped because its time budget (config.budgetSeconds) ran out.
  std::optional<bool> budget_exhausted;
  // Where run_matrix wrote the run: set on the value it returns, never in the file.
  std::optional<std::string> output;
  Environment environment;
  Topology topology;
  Config config;
  // A merged file: one per shard, by index; empty otherwise. `environment` is shard 1's.
  std::vector<ShardRun> shards;
  std::vector<Trial> trials;
  std::optional<ProfilesRef> profiles;  // --profile: the profiles file
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Run&) const = default;
};

nlohmann::json to_json(const Environment& e);
nlohmann::json to_json(const Run& r);
// Checks the schema and version and the type of every field it reads; throws Error(kBadInput)
// naming `label` (the file) and the field.
Run from_json(const nlohmann::json& doc, const std::string& label);
Environment environment_from_json(const nlohmann::json& j, const std::string& label);

// The limitation lab's document (`hrbench lab -o`, read by `hrbench report`).
struct LabVerdict {
  std::string scenario;
  std::string mode;  // legacy | ebpf | hybrid | (os-support: the feature)
  bool works = false;
  std::string summary;      // one line a platform engineer reads
  nlohmann::json evidence;  // what was measured
  bool operator==(const LabVerdict&) const = default;
};

struct LabDocument {
  std::optional<int> schema_version;
  std::optional<std::string> started_at, command;
  std::optional<Environment> environment;
  std::vector<LabVerdict> verdicts;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const LabDocument&) const = default;
};

nlohmann::json to_json(const LabDocument& d);
// A document whose "schema" is kLabSchema; a verdict's missing fields read as empty / false.
LabDocument lab_from_json(const nlohmann::json& doc, const std::string& label);

// --- the profiles file (`hrbench run --profile`, docs/profiles.md) ----------------------------
// One profiled cell: a separate repetition with perf sampling the machine, never one of the
// run's trials (gate, summary and pairing do not see it).
struct Profile {
  std::string mode, scenario, workload;
  std::optional<TrialScan> scan;
  std::optional<std::string> family;  // ipv4 | ipv6 (run --families); absent: ipv4
  std::string fam() const { return family.value_or("ipv4"); }
  std::optional<std::string> started_at;
  double seconds = 0;  // sampled
  uint64_t samples = 0, other_samples = 0;
  std::optional<bool> valid;
  std::optional<std::vector<std::string>> flags;
  std::optional<nlohmann::json> metrics;  // of the profiled repetition (perf running)
  // Derived from stacks with metrics::bucket_table when written (readers recompute).
  std::map<std::string, uint64_t> buckets;
  std::map<std::string, uint64_t> stacks;  // folded: "task;outer;…;inner" -> samples
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const Profile&) const = default;
};

struct ProfileDocument {
  std::optional<std::string> run_id;
  std::string event = "cpu-clock";
  int frequency_hz = 0;
  std::optional<std::vector<std::string>> command;  // perf record's command line
  std::vector<Profile> profiles;
  nlohmann::json other = nlohmann::json::object();
  bool operator==(const ProfileDocument&) const = default;
};

nlohmann::json to_json(const ProfileDocument& d);
// Checks the schema and the type of every field; throws Error(kBadInput) naming `label`.
ProfileDocument profiles_from_json(const nlohmann::json& doc, const std::string& label);

}  // namespace hrb::results
