#pragma once
// Pieces of the report (report.hpp puts them together), each testable without gnuplot: the
// headline table the report opens with, the CPU section made from a run's profiles (bucket
// table, sentence, flame graphs), and the bar charts' gnuplot input.
#include <optional>
#include <string>
#include <vector>

#include "results/document.hpp"
#include "results/profiles.hpp"
#include "results/results.hpp"

namespace hrb::report {

// The ladder, in order: legacy, bpf-lb (when the run measured it), ebpf; then any other mode the
// run measured (ebpf-delay, another build's KIND@NAME), in the order first measured.
std::vector<std::string> modes_of(const results::Run& doc);
// A mode's colour in every chart and table.
const char* mode_colour(const std::string& mode);
// The scenarios a mode is compared in (node-node is the ceiling), in the order they are drawn;
// external-nodeport: the external host to a NodePort, not in the default run.
const std::vector<std::string>& pod_scenarios();

// The table the report opens with: per scenario and workload (and scan value), each mode's
// ratio to the reference (legacy, else the first mode measured) of the rate and of the CPU per
// unit of work, with bootstrap 95 % intervals (paired by repetition, as the summary), the
// node-node ceiling and how close each mode gets to it, and — when the run was profiled — the
// sentence of where the CPU went (results::bucket_sentence). Markdown or HTML.
std::string headline(const results::Run& doc,
                     const std::vector<results::BucketComparison>& profiles, bool markdown);

// "Where the CPU goes": per profiled (scenario, workload) the share of each bucket by mode and
// each mode's difference to the reference in percentage points, the sentence, and (HTML) a
// flame graph per mode. "" without profiles.
std::string cpu_section(const std::vector<results::BucketComparison>& profiles, bool markdown);

// A bar chart's gnuplot input: per scenario and mode median and 95 % whiskers, the ceiling as a
// line. `series` are the legend's entries (modes with a value in some scenario, then "node-node
// ceiling" when it has one); `missing` says what is not drawn and why ("node-node ceiling (no
// valid trial)", "bpf-lb in pod-service (not measured)"). The y axis starts at zero. nullopt
// when no mode has a value.
struct ChartSpec {
  std::string data, script;
  std::vector<std::string> series, missing;
};
std::optional<ChartSpec> bar_chart(const results::Run& doc, const std::string& workload,
                                   const results::Metric& m);

}  // namespace hrb::report
