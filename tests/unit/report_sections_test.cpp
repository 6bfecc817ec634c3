// The report's pieces: the headline table it opens with, the bar charts' zero-based axis and
// legends that name only series with data (what is missing said under the chart), and the CPU
// section made from profiles.
#include <gtest/gtest.h>

#include "core/process.hpp"
#include "report/report.hpp"
#include "report/sections.hpp"

using namespace hrb;

namespace {

results::Trial trial(const std::string& mode, const std::string& scenario, int rep, double tps,
                     double cpu_us, bool valid = true) {
  results::Trial t;
  t.mode = mode;
  t.scenario = scenario;
  t.workload = "tcp_crr";
  t.repetition = rep;
  t.valid = valid;
  t.metrics = nlohmann::json{{"transactionsPerSecond", tps},
                             {"cpuUsPerTransaction", cpu_us},
                             {"stealFraction", 0.0},
                             {"cpuBusySeconds", 1.0}};
  return t;
}

// legacy and ebpf in pod-pod-cross-node, 3 repetitions; ebpf 10 % faster at 20 % less CPU; the
// node-node ceiling planned but every one of its trials invalid.
results::Run run_without_ceiling() {
  results::Run r;
  r.config.modes = std::vector<std::string>{"legacy", "ebpf"};
  r.config.scenarios = std::vector<std::string>{"pod-pod-cross-node", "node-node"};
  r.config.workloads = std::vector<std::string>{"tcp_crr"};
  r.config.repetitions = 3;
  for (int i = 0; i < 3; ++i) {
    r.trials.push_back(trial("legacy", "pod-pod-cross-node", i, 1000 + i, 100 + i));
    r.trials.push_back(trial("ebpf", "pod-pod-cross-node", i, 1100 + 1.1 * i, 80 + 0.8 * i));
    r.trials.push_back(trial("none", "node-node", i, 2000, 50, false));
  }
  return r;
}

}  // namespace

TEST(ReportHeadline, RatiosWithIntervalsAndTheSentence) {
  auto r = run_without_ceiling();
  for (int i = 0; i < 3; ++i) r.trials[3 * i + 2].valid = true;  // the ceiling this time
  results::BucketComparison c;
  c.scenario = "pod-pod-cross-node";
  c.workload = "tcp_crr";
  c.modes = {"legacy", "ebpf"};
  c.shares = {{{"netfilter", 0.18}, {"bpf", 0.0}}, {{"netfilter", 0.0}, {"bpf", 0.04}}};
  const std::string md = report::headline(r, {c}, true);
  EXPECT_NE(md.find("| ebpf/legacy rate | ebpf/legacy CPU per unit |"), std::string::npos) << md;
  EXPECT_NE(md.find("| pod-pod-cross-node | tcp_crr | 1.100 [1.100, 1.100] | 0.800 [0.800, 0.800]"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("2000 1/s: legacy 50 %, ebpf 55 %"), std::string::npos) << md;
  EXPECT_NE(md.find("legacy spends 18 % of its CPU in netfilter/iptables rule walk, ebpf 0 %"),
            std::string::npos)
      << md;
  const std::string html = report::headline(r, {c}, false);
  EXPECT_NE(html.find("<td class=better>1.100"), std::string::npos) << "faster: better\n" << html;
  EXPECT_NE(html.find("<td class=better>0.800"), std::string::npos) << "less CPU: better\n" << html;
}

TEST(ReportHeadline, NoSentenceColumnWithoutProfilesAndNoCeilingWithoutData) {
  const std::string md = report::headline(run_without_ceiling(), {}, true);
  EXPECT_EQ(md.find("where the CPU went"), std::string::npos) << md;
  EXPECT_NE(md.find("| - |"), std::string::npos) << "no ceiling value\n" << md;
}

TEST(ReportCharts, BarsStartAtZeroAndTheLegendNamesOnlySeriesWithData) {
  auto r = run_without_ceiling();
  for (auto& t : r.trials)
    if (t.mode == "ebpf") t.valid = false;
  const auto spec = report::bar_chart(r, "tcp_crr", *results::find_metric("cpuUsPerTransaction"));
  ASSERT_TRUE(spec);
  EXPECT_NE(spec->script.find("set yrange [0:*]"), std::string::npos) << spec->script;
  EXPECT_EQ(spec->series, std::vector<std::string>{"legacy"});
  EXPECT_EQ(spec->script.find("title 'ebpf'"), std::string::npos) << spec->script;
  EXPECT_EQ(spec->script.find("ceiling"), std::string::npos) << spec->script;
  EXPECT_EQ(spec->missing, (std::vector<std::string>{"ebpf (no valid trial)",
                                                     "the node-node ceiling (no valid trial)"}));
}

TEST(ReportCharts, RenderedBarChartAxisStartsAtZeroAndMissingSeriesIsExplained) {
  if (find_program("gnuplot").empty()) GTEST_SKIP() << "gnuplot (gnuplot-nox) is not installed";
  auto r = run_without_ceiling();
  // Values far from zero: an autoscaled axis would start near 80.
  const std::string html = report::html({{"run.json", r}});
  const auto title = html.find("tcp_crr cpuUsPerTransaction");
  ASSERT_NE(title, std::string::npos);
  const auto at = html.rfind("<svg", title);
  const auto svg_end = html.find("</svg>", title);
  const std::string svg = html.substr(at, svg_end - at);
  EXPECT_NE(svg.find("<text> 0</text>"), std::string::npos) << "a tick at 0 on the y axis";
  EXPECT_EQ(svg.find("node-node ceiling"), std::string::npos) << "not in the legend";
  const auto caption = html.find("<figcaption class=missing>", svg_end);
  ASSERT_NE(caption, std::string::npos);
  EXPECT_NE(html.find("the node-node ceiling (no valid trial)", caption), std::string::npos);
}

TEST(ReportCpuSection, BucketTableDifferenceAndFlameGraphs) {
  results::ProfileDocument d;
  d.frequency_hz = 999;
  auto add = [&](const std::string& mode, std::map<std::string, uint64_t> stacks) {
    results::Profile p;
    p.mode = mode;
    p.scenario = "pod-pod-cross-node";
    p.workload = "tcp_crr";
    p.stacks = std::move(stacks);
    d.profiles.push_back(std::move(p));
  };
  add("legacy",
      {{"hrbench;ip_forward;nf_hook_slow;ipt_do_table", 25}, {"hrbench;tcp_sendmsg", 75}});
  add("ebpf", {{"hrbench;tcx_run;bpf_prog_aa_from_pod", 5}, {"hrbench;tcp_sendmsg", 95}});
  const auto cs = results::bucket_comparisons(d, {"legacy", "ebpf"});
  const std::string md = report::cpu_section(cs, true);
  EXPECT_NE(md.find("| netfilter/iptables rule walk | 25 % | 0 % | -25.0 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| BPF programs | 0 % | 5.0 % | +5.0 |"), std::string::npos) << md;
  const std::string html = report::cpu_section(cs, false);
  EXPECT_EQ(std::count(html.begin(), html.end(), '<') > 0, true);
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++svgs;
  EXPECT_EQ(svgs, 2u) << "a flame graph per mode";
  EXPECT_NE(html.find("<title>ipt_do_table (25 samples, 25.00 %)</title>"), std::string::npos);
  EXPECT_EQ(report::cpu_section({}, false), "");
}
