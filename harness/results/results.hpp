#pragma once
// The results file: one JSON document per run (schema in docs/results-schema.md and
// results/schema.json), and what is derived from it — the metric catalogue, the Google
// Benchmark export (so its compare.py reads our runs) and CSV. Everything here works on files:
// a report or a verdict can be re-made later from the same document. The document's types and
// its one reader and writer are in results/document.hpp.
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "results/document.hpp"

namespace hrb::results {

// One figure of a trial, as every consumer (summary, exports, gate) names and reads it.
struct Metric {
  std::string name;  // "transactionsPerSecond"
  std::string unit;  // "1/s"
  bool higher_is_better;
  std::vector<std::string> workloads;  // where it exists
  // JSON pointer into a trial's metrics, e.g. "/latencyUs/p99"
  std::string pointer;
};
const std::vector<Metric>& metric_catalogue();
const Metric* find_metric(const std::string& name);
std::optional<double> metric_value(const Trial& trial, const Metric& m);

// Host, kernel, CPU, virtualisation (VM and container), distribution, tool and hrbench versions,
// for the document's "environment". gate::environment_differences says which of them make two
// runs' absolute figures incomparable.
Environment environment();

// The accelerator of a scripts/kernel-matrix VM, from its kernel command line's
// `hrbench.virt=tcg|kvm` (the matrix passes it): environment() records it as the
// virtualisation, so figures measured in such a VM are never compared with another
// environment's, and TCG's (function, never speed) never pass for a machine's. nullopt when the
// command line has no such word or another value.
std::optional<std::string> matrix_virtualization(const std::string& cmdline);

// The project version and the git revision it was configured from ("0.1.0+g1a2b3c4").
const char* hrbench_version();

// Replaces NaN and infinities by null (JSON has neither); returns how many it replaced.
size_t sanitize(nlohmann::json& j);

// Writes atomically (temporary file + rename); parent directories are created.
void write_json(const std::string& path, const nlohmann::json& doc);
// to_json, sanitize, write_json.
void write_results(const std::string& path, const Run& run);
// Parses a JSON file (nesting bounded); throws Error(kBadInput) "cannot read <what> <path>" or
// "<path>: not JSON: …".
nlohmann::json read_json_file(const std::string& path, const std::string& what);
// Parses the file and reads it with from_json (schema, version and types checked); throws
// Error(kBadInput) naming the file.
Run read_results(const std::string& path);

// The values of one metric for one (mode, scenario, workload), indexed by repetition (NaN where
// a repetition has no valid trial). With a scan, only trials of that scan value.
std::vector<double> series(const Run& doc, const std::string& mode, const std::string& scenario,
                           const std::string& workload, const Metric& metric,
                           std::optional<int> scan_value = std::nullopt);
// Drops NaNs.
std::vector<double> finite(const std::vector<double>& v);

nlohmann::json to_gbench(const Run& doc);
std::string to_csv(const Run& doc);

// --- families (`run --families ipv4,ipv6`): every trial records its family; a trial without one
// (files before families) is ipv4. Summaries, charts and gate checks are made per family: the
// grouping below (series, the summary's cells, short cells) is over one family's trials.
// The families of a document, in order: config.families, then any other its trials have.
std::vector<std::string> families(const Run& doc);
// The document with only the trials of `family`; config.families says just it (if it was set).
Run only_family(const Run& doc, const std::string& family);
// `--family F` of gate, compare and report: only_family, after checking F is ipv4 or ipv6
// (Error(kUsage)) and that `doc` (read from `label`) has trials of it (Error(kBadInput) naming
// the families it has). A document without trials is returned as it is.
Run select_family(const Run& doc, const std::string& family, const std::string& label);

// The comparison table printed at the end of a run: per scenario, workload and metric the
// median of each mode, the ceiling (node-node), and ebpf/legacy with its bootstrap interval.
// With more than one family, one table per family, each under a "family F:" line.
std::string summary_table(const Run& doc);

// --- shards (`hrbench run --shard I/N`, `hrbench merge`; docs/gate.md "Spreading a run over
// runners") ---------------------------------------------------------------------------------
// A plan's rounds are its blocks of one scan value and one repetition, in the order run_matrix
// measures them: round = scan value index × repetitions + repetition (no scan: the repetition).
// Every comparison the gate makes is inside one round (the pairs of one repetition, the ceiling
// included), so a round is what is dealt out: round r to shard (r mod count) + 1. The one
// definition of which shard measures what; `run` splits its plan with it, `merge` and
// short_cells read files with it.
int round_index(int scan_index, int repetition, int repetitions);
int shard_of_round(int round, int count);
// The round a trial of `doc` belongs to (its scan value's first index in config.scan.values, its
// repetition); nullopt when its scan value is not among them.
std::optional<int> round_of(const Config& config, const Trial& t);
// The environments a document's trials were measured in, each with a label for messages: a
// merged file's shards' ("shard 2"), otherwise the one `environment` (label "").
std::vector<std::pair<std::string, const Environment*>> environments(const Run& doc);

// A cell (mode, scenario, workload, scan value) with fewer repetitions of valid trials than
// config.repetitions, and why: its invalid attempts' flags, counted (steal flags as one, with
// the largest steal seen), and "budget ran out" / "interrupted" / "not measured".
struct ShortCell {
  std::string mode, scenario, workload;
  std::optional<int> scan_value;
  int valid = 0, needed = 0;
  std::vector<std::string> reasons;
  std::string family = "ipv4";
  std::string line() const;  // "ebpf pod-pod-cross-node tcp_crr: 2 of 3 valid (steal 14% > 10% ×3)"
};
// The cells are those the config names (modes x scenarios x workloads x scan values, mode none
// in node-node only, pps in pod-pod-cross-node only) and those trials were recorded for; old
// files without a config name only the latter. In a shard's file a cell needs the repetitions
// of the rounds that shard measures (config.shard), and a scan value it has no round of is no
// cell of it.
// Per family (ShortCell::family; an ipv6 cell's line names it).
std::vector<ShortCell> short_cells(const Run& doc);
// "" when no cell is short; else a heading line and one line per short cell.
std::string short_cells_text(const Run& doc);

}  // namespace hrb::results
