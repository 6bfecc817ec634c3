#include "report/sections.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/markup.hpp"
#include "metrics/profile.hpp"
#include "metrics/stats.hpp"
#include "report/flamegraph.hpp"

namespace hrb::report {

std::vector<std::string> modes_of(const results::Run& doc) {
  bool ladder = false;
  for (const auto& t : doc.trials) ladder = ladder || t.mode == "bpf-lb";
  std::vector<std::string> modes{"legacy", "ebpf"};
  if (ladder) modes = {"legacy", "bpf-lb", "ebpf"};
  for (const auto& t : doc.trials)
    if (t.mode != "none" && !t.mode.empty() &&
        std::find(modes.begin(), modes.end(), t.mode) == modes.end())
      modes.push_back(t.mode);
  return modes;
}

const char* mode_colour(const std::string& m) {
  if (m == "legacy") return "#d08c2e";
  if (m == "bpf-lb") return "#6a9a3a";
  if (m == "ebpf") return "#2e7dd0";
  return "#8a8a8a";  // another build (KIND@NAME), ebpf-delay
}

const std::vector<std::string>& pod_scenarios() {
  static const std::vector<std::string> s{"pod-pod-same-node", "pod-pod-cross-node", "pod-service",
                                          "pod-external", "external-nodeport"};
  return s;
}

namespace {

// The rate and the CPU per unit of work of a workload.
std::pair<const char*, const char*> headline_metrics(const std::string& workload) {
  if (workload == "tcp_stream" || workload == "udp_stream")
    return {"gbitPerSecond", "cpuSecondsPerGB"};
  if (workload == "pps") return {"packetsPerSecond", "cpuNsPerPacket"};
  return {"transactionsPerSecond", "cpuUsPerTransaction"};
}

double median_of(const std::vector<double>& xs) {
  auto f = results::finite(xs);
  return f.empty() ? NAN : metrics::median(f);
}

std::string number(double x) {
  if (!std::isfinite(x)) return "-";
  if (std::abs(x) >= 1000) return fmt::format("{:.0f}", x);
  if (std::abs(x) >= 10) return fmt::format("{:.1f}", x);
  return fmt::format("{:.3g}", x);
}

// A ratio with its interval, and whether the interval says better, worse or neither.
struct RatioCell {
  std::string text = "-";
  std::string verdict = "none";  // better | worse | same | none
};
RatioCell ratio_cell(const std::vector<double>& base, const std::vector<double>& x,
                     bool higher_is_better) {
  RatioCell c;
  const auto r = metrics::paired_ratio(base, x);
  if (!r) return c;
  if (r->pairs < 2) {
    c.text = fmt::format("{:.3f} (1 pair)", r->ratio);
    return c;
  }
  c.text = fmt::format("{:.3f} [{:.3f}, {:.3f}]", r->ratio, r->ci_low, r->ci_high);
  const bool up = r->ci_low > 1, down = r->ci_high < 1;
  c.verdict = up || down ? ((up == higher_is_better) ? "better" : "worse") : "same";
  return c;
}

bool has_value(const results::Run& doc, const std::string& mode, const std::string& scenario,
               const std::string& workload, const results::Metric& m, std::optional<int> scan) {
  return !results::finite(results::series(doc, mode, scenario, workload, m, scan)).empty();
}

const results::BucketComparison* find_comparison(const std::vector<results::BucketComparison>& cs,
                                                 const std::string& scenario,
                                                 const std::string& workload,
                                                 std::optional<int> scan) {
  for (const auto& c : cs)
    if (c.scenario == scenario && c.workload == workload &&
        (scan ? c.scan && c.scan->value == *scan : !c.scan))
      return &c;
  return nullptr;
}

}  // namespace

std::string headline(const results::Run& doc,
                     const std::vector<results::BucketComparison>& profiles, bool md) {
  // Workloads in the run's order, then any other one its trials have.
  std::vector<std::string> workloads = doc.config.workloads.value_or(std::vector<std::string>{});
  for (const auto& t : doc.trials)
    if (std::find(workloads.begin(), workloads.end(), t.workload) == workloads.end())
      workloads.push_back(t.workload);
  std::vector<std::optional<int>> scans{std::nullopt};
  if (const auto* sc = doc.config.scan()) {
    scans.clear();
    for (int v : sc->values) scans.push_back(v);
  }
  // The reference: legacy when measured, else the first mode with a value.
  std::vector<std::string> modes;
  for (const auto& mode : modes_of(doc))
    for (const auto& t : doc.trials)
      if (t.mode == mode && t.is_valid()) {
        modes.push_back(mode);
        break;
      }
  if (modes.empty()) return "";
  const std::string ref = modes[0];
  const std::vector<std::string> others(modes.begin() + 1, modes.end());

  struct Row {
    std::string scenario, workload, scan;
    std::vector<RatioCell> rate, cpu;
    std::string ceiling, sentence;
  };
  std::vector<Row> rows;
  for (const auto& scan : scans)
    for (const auto& s : pod_scenarios())
      for (const auto& w : workloads) {
        const auto [rate_name, cpu_name] = headline_metrics(w);
        const auto* rate = results::find_metric(rate_name);
        const auto* cpu = results::find_metric(cpu_name);
        bool any = false;
        for (const auto& mode : modes) any = any || has_value(doc, mode, s, w, *rate, scan);
        if (!any) continue;
        Row r{s,  w, scan ? fmt::format("{}={}", doc.config.scan()->param, *scan) : "", {}, {},
              "", ""};
        const auto base_rate = results::series(doc, ref, s, w, *rate, scan);
        const auto base_cpu = results::series(doc, ref, s, w, *cpu, scan);
        for (const auto& mode : others) {
          r.rate.push_back(ratio_cell(base_rate, results::series(doc, mode, s, w, *rate, scan),
                                      rate->higher_is_better));
          r.cpu.push_back(ratio_cell(base_cpu, results::series(doc, mode, s, w, *cpu, scan),
                                     cpu->higher_is_better));
        }
        const double ceiling = median_of(results::series(doc, "none", "node-node", w, *rate, scan));
        if (std::isfinite(ceiling) && ceiling > 0) {
          r.ceiling = number(ceiling) + " " + rate->unit + ":";
          for (size_t i = 0; i < modes.size(); ++i) {
            const double v = median_of(results::series(doc, modes[i], s, w, *rate, scan));
            if (std::isfinite(v))
              r.ceiling += fmt::format("{} {} {:.0f} %", i ? "," : "", modes[i], 100 * v / ceiling);
          }
        } else {
          r.ceiling = "-";
        }
        if (const auto* c = find_comparison(profiles, s, w, scan))
          r.sentence = results::bucket_sentence(*c);
        rows.push_back(std::move(r));
      }
  if (rows.empty()) return "";
  const bool with_scan = doc.config.scan() != nullptr;
  const bool with_sentence =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return !r.sentence.empty(); });

  std::string out;
  if (md) {
    out += "| scenario | workload |";
    if (with_scan) out += " scan |";
    for (const auto& m : others)
      out += fmt::format(" {0}/{1} rate | {0}/{1} CPU per unit |", m, ref);
    out += " ceiling (node-node) |";
    if (with_sentence) out += " where the CPU went |";
    out += "\n|---|---|";
    if (with_scan) out += "---|";
    for (size_t i = 0; i < others.size(); ++i) out += "---|---|";
    out += "---|";
    if (with_sentence) out += "---|";
    out += "\n";
    for (const auto& r : rows) {
      out += fmt::format("| {} | {} |", r.scenario, r.workload);
      if (with_scan) out += " " + r.scan + " |";
      for (size_t i = 0; i < others.size(); ++i)
        out += fmt::format(" {} | {} |", r.rate[i].text, r.cpu[i].text);
      out += " " + r.ceiling + " |";
      if (with_sentence) out += " " + r.sentence + " |";
      out += "\n";
    }
    return out;
  }
  out += "<table class=headline><tr><th>scenario</th><th>workload</th>";
  if (with_scan) out += "<th>scan</th>";
  for (const auto& m : others)
    out += fmt::format("<th>{0}/{1}<br>rate</th><th>{0}/{1}<br>CPU per unit</th>", xml_escape(m),
                       xml_escape(ref));
  out += "<th>ceiling (node-node)</th>";
  if (with_sentence) out += "<th>where the CPU went</th>";
  out += "</tr>\n";
  for (const auto& r : rows) {
    out +=
        fmt::format("<tr><td>{}</td><td>{}</td>", xml_escape(r.scenario), xml_escape(r.workload));
    if (with_scan) out += "<td>" + xml_escape(r.scan) + "</td>";
    for (size_t i = 0; i < others.size(); ++i)
      out += fmt::format("<td class={}>{}</td><td class={}>{}</td>", r.rate[i].verdict,
                         xml_escape(r.rate[i].text), r.cpu[i].verdict, xml_escape(r.cpu[i].text));
    out += "<td>" + xml_escape(r.ceiling) + "</td>";
    if (with_sentence) out += "<td class=sentence>" + xml_escape(r.sentence) + "</td>";
    out += "</tr>\n";
  }
  out += "</table>\n";
  return out;
}

std::string cpu_section(const std::vector<results::BucketComparison>& profiles, bool md) {
  std::string out;
  bool first = true;
  for (const auto& c : profiles) {
    if (c.modes.empty()) continue;
    const std::string& ref = c.modes[0];
    if (md) {
      out += fmt::format("\n#### {}\n\n{}.\n\n| bucket |", c.title(), results::bucket_sentence(c));
      for (const auto& m : c.modes) out += " " + m + " |";
      for (size_t i = 1; i < c.modes.size(); ++i) out += fmt::format(" {} − {} |", c.modes[i], ref);
      out += "\n|---|";
      for (size_t i = 0; i < 2 * c.modes.size() - 1; ++i) out += "---|";
      out += "\n";
    } else {
      out += fmt::format(
          "<h4>{}</h4>\n<p class=sentence>{}.</p>\n<table class=buckets><tr>"
          "<th>bucket</th>",
          xml_escape(c.title()), xml_escape(results::bucket_sentence(c)));
      for (const auto& m : c.modes) out += "<th>" + xml_escape(m) + "</th>";
      for (size_t i = 1; i < c.modes.size(); ++i)
        out += fmt::format("<th>{} − {}<br>(points)</th>", xml_escape(c.modes[i]), xml_escape(ref));
      out += "</tr>\n";
    }
    for (const auto& b : metrics::bucket_table()) {
      std::vector<double> sh;
      for (const auto& m : c.shares) sh.push_back(m.count(b.id) ? m.at(b.id) : 0.0);
      if (md) {
        out += "| " + b.label + " |";
        for (double x : sh) out += " " + results::percent(x) + " |";
        for (size_t i = 1; i < sh.size(); ++i)
          out += fmt::format(" {:+.1f} |", 100 * (sh[i] - sh[0]));
        out += "\n";
      } else {
        out += fmt::format("<tr><td><span class=swatch style=\"background:{}\"></span>{}</td>",
                           bucket_colour(b.id), xml_escape(b.label));
        for (double x : sh) out += "<td>" + results::percent(x) + "</td>";
        for (size_t i = 1; i < sh.size(); ++i) {
          const double d = 100 * (sh[i] - sh[0]);
          out += fmt::format("<td class={}>{:+.1f}</td>",
                             std::abs(d) < 1 ? "same" : (d < 0 ? "less" : "more"), d);
        }
        out += "</tr>\n";
      }
    }
    // Samples, and what was left out.
    std::string samples_row = md ? "| samples (other processes left out) |"
                                 : "<tr class=samples><td>samples (other processes left out)</td>";
    for (size_t i = 0; i < c.modes.size(); ++i) {
      const auto* p = c.profiles[i];
      std::string cell = fmt::format("{} ({})", c.samples[i], p->other_samples);
      if (p->valid && !*p->valid && p->flags && !p->flags->empty())
        cell += " — repetition flagged: " + p->flags->front();
      samples_row += md ? " " + cell + " |" : "<td>" + xml_escape(cell) + "</td>";
    }
    for (size_t i = 1; i < c.modes.size(); ++i) samples_row += md ? " |" : "<td></td>";
    out += samples_row + (md ? "\n" : "</tr>\n</table>\n");
    if (md) continue;
    out += fmt::format(
        "<details{}><summary>flame graphs of {} (hover a frame for its name and samples; "
        "colours are the buckets above)</summary>\n<div class=flames>\n",
        first ? " open" : "", xml_escape(c.title()));
    for (size_t i = 0; i < c.modes.size(); ++i)
      out +=
          flame_graph_svg(results::folded(*c.profiles[i]),
                          fmt::format("{} — {} ({} samples)", c.modes[i], c.title(), c.samples[i]));
    out += "</div></details>\n";
    first = false;
  }
  if (out.empty()) return "";
  const std::string intro =
      "Each cell was profiled in one more repetition after the measured trials (perf record -e "
      "cpu-clock -a -g at a bounded frequency; never one of the trials above). A bucket's share "
      "is its samples over all samples of the generators and the kernel's own tasks (idle "
      "included, as scheduler/idle); a sample's bucket is that of its innermost kernel frame "
      "that matches the bucket table (docs/profiles.md).";
  return md ? "\n### Where the CPU goes\n\n" + intro + "\n" + out
            : "<h3>Where the CPU goes</h3>\n<p>" + xml_escape(intro) + "</p>\n" + out;
}

}  // namespace hrb::report
