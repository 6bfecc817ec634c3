#include "report/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/markup.hpp"
#include "core/process.hpp"
#include "metrics/profile.hpp"
#include "metrics/stats.hpp"
#include "report/flamegraph.hpp"
#include "report/sections.hpp"
#include "results/profiles.hpp"
#include "results/results.hpp"

namespace hrb::report {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string>& kPodScenarios = pod_scenarios();

struct Stat {
  double median = NAN, lo = NAN, hi = NAN;
  size_t n = 0;
};

// Median with a percentile-bootstrap 95 % interval (seeded): the bars' whiskers.
Stat stat_of(const std::vector<double>& raw) {
  auto v = results::finite(raw);
  Stat s;
  s.n = v.size();
  if (v.empty()) return s;
  s.median = metrics::median(v);
  if (v.size() == 1) {
    s.lo = s.hi = s.median;
    return s;
  }
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<size_t> pick(0, v.size() - 1);
  std::vector<double> meds(1000), smp(v.size());
  for (auto& m : meds) {
    for (auto& x : smp) x = v[pick(rng)];
    m = metrics::median(smp);
  }
  std::sort(meds.begin(), meds.end());
  s.lo = meds[25];
  s.hi = meds[974];
  return s;
}

bool has(const results::Run& doc, const std::string& workload) {
  for (const auto& t : doc.trials)
    if (t.workload == workload) return true;
  return false;
}

// Renders a gnuplot script to SVG in a scratch directory; returns the <svg> element.
class Plotter {
 public:
  Plotter() {
    if (find_program("gnuplot").empty())
      throw Error("gnuplot is not installed (package gnuplot-nox; scripts/setup installs it)");
    char t[] = "/tmp/hrb-report-XXXXXX";
    dir_ = mkdtemp(t);
  }
  ~Plotter() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string plot(const std::string& data, const std::string& script) {
    const std::string n = std::to_string(count_++);
    std::ofstream(dir_ + "/d" + n + ".dat") << data;
    std::string full =
        "set terminal svg size 760,360 dynamic noenhanced font 'sans,11' background '#ffffff'\n"
        "set output '" +
        dir_ + "/p" + n +
        ".svg'\n"
        "set datafile separator '\\t'\n"
        "set border lc rgb '#555555'\nset grid ytics lc rgb '#dddddd'\n"
        "set key outside right top\n"
        "D = '" +
        dir_ + "/d" + n + ".dat'\n" + script;
    run_cmd({"gnuplot"}, {.input = full});
    std::string svg = try_read_text_file(dir_ + "/p" + n + ".svg").value_or("");
    auto at = svg.find("<svg");
    return at == std::string::npos ? "" : svg.substr(at);
  }

 private:
  std::string dir_;
  int count_ = 0;
};

// A chart and, under it, what it leaves out and why (a legend names only series with data).
std::string figure(const std::string& svg, const std::vector<std::string>& missing) {
  if (svg.empty()) return "";
  std::string s = "<figure>" + svg;
  if (!missing.empty()) {
    s += "<figcaption class=missing>Not drawn: ";
    for (size_t i = 0; i < missing.size(); ++i) s += (i ? "; " : "") + xml_escape(missing[i]);
    s += ".</figcaption>";
  }
  return s + "</figure>\n";
}

// Whether the run measured `mode` in `scenario` (any trial, valid or not).
bool measured(const results::Run& doc, const std::string& mode, const std::string& scenario,
              const std::string& workload) {
  for (const auto& t : doc.trials)
    if (t.mode == mode && t.scenario == scenario && t.workload == workload) return true;
  return false;
}
bool measured_anywhere(const results::Run& doc, const std::string& mode,
                       const std::string& workload) {
  for (const auto& t : doc.trials)
    if (t.mode == mode && t.workload == workload) return true;
  return false;
}
// Why a series has no value: its trials were all invalid, or it was not measured.
std::string why_missing(const std::string& what, bool was_measured) {
  return what + (was_measured ? " (no valid trial)" : " (not measured)");
}

}  // namespace

std::optional<ChartSpec> bar_chart(const results::Run& doc, const std::string& workload,
                                   const results::Metric& m) {
  std::vector<std::string> modes, missing;
  for (const auto& mode : modes_of(doc)) {
    bool any = false;
    for (const auto& s : kPodScenarios)
      any = any || stat_of(results::series(doc, mode, s, workload, m)).n > 0;
    if (any)
      modes.push_back(mode);
    else if (measured_anywhere(doc, mode, workload) ||
             (doc.config.modes &&
              std::count(doc.config.modes->begin(), doc.config.modes->end(), mode)))
      missing.push_back(why_missing(mode, measured_anywhere(doc, mode, workload)));
  }
  if (modes.empty()) return std::nullopt;
  std::string data;  // scenario, then per mode: median, low, high (no header line: gnuplot would
                     // count it as a histogram slot)
  for (const auto& s : kPodScenarios) {
    std::vector<Stat> per_mode;
    for (const auto& mode : modes)
      per_mode.push_back(stat_of(results::series(doc, mode, s, workload, m)));
    if (std::none_of(per_mode.begin(), per_mode.end(), [](const Stat& st) { return st.n > 0; }))
      continue;  // a scenario this run did not measure (pod-service in older runs)
    data += s;
    for (size_t j = 0; j < per_mode.size(); ++j) {
      const auto& st = per_mode[j];
      if (st.n == 0)
        missing.push_back(why_missing(modes[j] + " in " + s, measured(doc, modes[j], s, workload)));
      data += fmt::format("\t{}\t{}\t{}", std::isfinite(st.median) ? st.median : 0,
                          std::isfinite(st.lo) ? st.lo : 0, std::isfinite(st.hi) ? st.hi : 0);
    }
    data += "\n";
  }
  auto ceil = stat_of(results::series(doc, "none", "node-node", workload, m));
  const bool ceiling_planned =
      measured(doc, "none", "node-node", workload) ||
      (doc.config.scenarios &&
       std::count(doc.config.scenarios->begin(), doc.config.scenarios->end(), "node-node"));
  if (!std::isfinite(ceil.median) && ceiling_planned)
    missing.push_back(
        why_missing("the node-node ceiling", measured(doc, "none", "node-node", workload)));
  // yrange from 0, and a top above the highest whisker and the ceiling (gnuplot's autoscale
  // could otherwise clip the ceiling line).
  std::string script = fmt::format(
      "set title '{} {} ({})'\nset style data histogram\nset style histogram errorbars gap 1 lw 1\n"
      "set style fill solid 0.8 border -1\nset yrange [0:*]\nset ylabel '{}'\n",
      workload, m.name, m.higher_is_better ? "higher is better" : "lower is better", m.unit);
  for (size_t j = 0; j < modes.size(); ++j)
    script += fmt::format("{}{} using {}:{}:{}{} title '{}' lc rgb '{}'", j ? ", " : "plot ",
                          j ? "''" : "D", 2 + 3 * j, 3 + 3 * j, 4 + 3 * j, j ? "" : ":xtic(1)",
                          modes[j], mode_colour(modes[j]));
  if (std::isfinite(ceil.median))
    script += fmt::format(", {} with lines lw 2 dt 2 lc rgb '#333333' title 'node-node ceiling'",
                          ceil.median);
  script += "\n";
  std::vector<std::string> series = modes;
  if (std::isfinite(ceil.median)) series.push_back("node-node ceiling");
  return ChartSpec{std::move(data), std::move(script), std::move(series), std::move(missing)};
}

namespace {

// Bars per scenario and mode with 95 % whiskers, and the node-node ceiling as a line
// (bar_chart), what is missing said under it.
std::string bars(Plotter& pl, const results::Run& doc, const std::string& workload,
                 const results::Metric& m) {
  const auto spec = bar_chart(doc, workload, m);
  return spec ? figure(pl.plot(spec->data, spec->script), spec->missing) : "";
}

// Latency percentiles per mode (log scale), per scenario; only series with data are lines.
std::string latency(Plotter& pl, const results::Run& doc, const std::string& workload,
                    const std::string& scenario) {
  const char* ps[] = {"latencyP50", "latencyP90", "latencyP99", "latencyP999"};
  const char* labels[] = {"p50", "p90", "p99", "p99.9"};
  struct Series {
    std::string mode, scenario, title, colour;
    std::vector<double> medians;
  };
  std::vector<Series> all;
  for (const auto& mode : modes_of(doc))
    all.push_back({mode, scenario, mode, mode_colour(mode), {}});
  all.push_back({"none", "node-node", "node-node", "#333333", {}});
  std::vector<Series> drawn;
  std::vector<std::string> missing;
  bool pod_data = false;
  for (auto& se : all) {
    bool any = false;
    for (int i = 0; i < 4; ++i) {
      auto st = stat_of(
          results::series(doc, se.mode, se.scenario, workload, *results::find_metric(ps[i])));
      se.medians.push_back(st.median);
      any = any || st.n > 0;
    }
    if (any) {
      pod_data = pod_data || se.mode != "none";
      drawn.push_back(se);
    } else if (measured(doc, se.mode, se.scenario, workload) ||
               (se.mode == "none"
                    ? doc.config.scenarios && std::count(doc.config.scenarios->begin(),
                                                         doc.config.scenarios->end(), "node-node")
                    : doc.config.modes && std::count(doc.config.modes->begin(),
                                                     doc.config.modes->end(), se.mode))) {
      missing.push_back(why_missing(se.title, measured(doc, se.mode, se.scenario, workload)));
    }
  }
  if (!pod_data) return "";
  std::string data;  // percentile, then one column per drawn series
  for (int i = 0; i < 4; ++i) {
    data += labels[i];
    for (const auto& se : drawn)
      data += std::isfinite(se.medians[i]) ? fmt::format("\t{}", se.medians[i]) : "\tNaN";
    data += "\n";
  }
  std::string script = fmt::format(
      "set title '{} latency, {} (median over repetitions)'\nset logscale y\nset ylabel 'us'\n",
      workload, scenario);
  for (size_t j = 0; j < drawn.size(); ++j) {
    const bool ceiling = drawn[j].mode == "none";
    script += fmt::format("{}{} using 0:{}{} with {} lc rgb '{}' title '{}'", j ? ", " : "plot ",
                          j ? "''" : "D", 2 + j, j ? "" : ":xtic(1)",
                          ceiling ? "lines lw 1 dt 2" : "linespoints lw 2 pt 7", drawn[j].colour,
                          drawn[j].title);
  }
  script += "\n";
  return figure(pl.plot(data, script), missing);
}

// A scan: the metric against the scanned parameter, one line per mode with data.
std::string scan_curve(Plotter& pl, const results::Run& doc, const std::string& workload,
                       const results::Metric& m, const std::string& scenario) {
  const auto& scan = *doc.config.scan();
  std::vector<std::string> modes, missing;
  std::vector<std::vector<double>> medians;
  for (const auto& mode : modes_of(doc)) {
    std::vector<double> ys;
    bool any = false;
    for (int x : scan.values) {
      auto st = stat_of(results::series(doc, mode, scenario, workload, m, x));
      ys.push_back(st.median);
      any = any || st.n > 0;
    }
    if (any) {
      modes.push_back(mode);
      medians.push_back(std::move(ys));
    } else if (measured(doc, mode, scenario, workload)) {
      missing.push_back(why_missing(mode, true));
    }
  }
  if (modes.empty()) return "";
  std::string data;  // value, then one column per mode
  for (size_t i = 0; i < scan.values.size(); ++i) {
    data += std::to_string(scan.values[i]);
    for (const auto& ys : medians)
      data += std::isfinite(ys[i]) ? fmt::format("\t{}", ys[i]) : "\tNaN";
    data += "\n";
  }
  std::string script = fmt::format(
      "set title '{} {} vs {} ({})'\nset xlabel '{}'\nset ylabel '{}'\nset yrange [0:*]\n",
      workload, m.name, scan.param, scenario, scan.param, m.unit);
  for (size_t j = 0; j < modes.size(); ++j)
    script +=
        fmt::format("{}{} using 1:{} with linespoints lw 2 pt 7 lc rgb '{}' title '{}'",
                    j ? ", " : "plot ", j ? "''" : "D", 2 + j, mode_colour(modes[j]), modes[j]);
  script += "\n";
  return figure(pl.plot(data, script), missing);
}

// --- history: trend charts -------------------------------------------------------------------

// The metrics drawn as trends, in this order (a run's headline figure and its CPU cost).
const char* const kTrendMetrics[] = {"transactionsPerSecond", "gbitPerSecond",   "packetsPerSecond",
                                     "cpuUsPerTransaction",   "cpuSecondsPerGB", "cpuNsPerPacket"};

// One chart: a metric of one (scenario, workload, scan value), a line per mode.
struct TrendGroup {
  std::string metric, scenario, workload, scan;
  std::vector<const history::Series*> series;
};

std::vector<TrendGroup> trend_groups(const History& h) {
  std::vector<TrendGroup> out;
  for (const char* metric : kTrendMetrics)
    for (const auto& sc : kPodScenarios)
      for (const auto& s : h.series) {
        const auto& k = s.key;
        if (k.metric != metric || k.scenario != sc) continue;
        auto it = std::find_if(out.begin(), out.end(), [&](const TrendGroup& g) {
          return g.metric == k.metric && g.scenario == k.scenario && g.workload == k.workload &&
                 g.scan == k.scan;
        });
        if (it == out.end())
          it = out.insert(out.end(), {k.metric, k.scenario, k.workload, k.scan, {}});
        it->series.push_back(&s);
      }
  return out;
}

std::string short_revision(const std::string& r) {
  return r.substr(0, std::min<size_t>(r.size(), 8));
}

std::string trend_chart(Plotter& pl, const TrendGroup& g, const History& h) {
  // The runs of the chart, in the series' order (startedAt, runId): x = 0, 1, …
  struct Run {
    std::string started_at, run_id, revision, environment;
    auto operator<=>(const Run&) const = default;
  };
  std::set<Run> runs;
  for (const auto* s : g.series)
    for (const auto& p : s->points)
      runs.insert({p.started_at, p.run_id, p.git_revision, p.environment});
  std::map<std::string, size_t> x_of;
  std::vector<Run> order(runs.begin(), runs.end());
  for (size_t i = 0; i < order.size(); ++i) x_of[order[i].run_id] = i;

  // One data block per mode (index j); a blank line breaks its line where the environment changes.
  std::vector<const history::Series*> drawn;
  for (const auto& m : {"legacy", "bpf-lb", "ebpf"})
    for (const auto* s : g.series)
      if (s->key.mode == m) drawn.push_back(s);
  for (const auto* s : g.series)
    if (std::find(drawn.begin(), drawn.end(), s) == drawn.end()) drawn.push_back(s);
  std::string data;
  for (size_t j = 0; j < drawn.size(); ++j) {
    if (j) data += "\n\n";
    const auto& pts = drawn[j]->points;
    for (size_t i = 0; i < pts.size(); ++i) {
      if (i && pts[i].environment != pts[i - 1].environment) data += "\n";
      data += fmt::format("{}\t{}\t{}\t{}\n", x_of[pts[i].run_id], pts[i].median, pts[i].low,
                          pts[i].high);
    }
  }
  const auto* m = results::find_metric(g.metric);
  std::string script = fmt::format(
      "set title '{} {} {}{} ({} is better)'\nset ylabel '{}'\nset xrange [-0.5:{}]\n"
      "set key outside right top\nset bmargin 6\n",
      g.scenario, g.workload, g.metric, g.scan.empty() ? "" : ", " + g.scan,
      m && m->higher_is_better ? "higher" : "lower", m ? m->unit : "", order.size() - 0.5);
  // Commits as x labels (every k-th when there are many).
  const size_t step = std::max<size_t>(1, (order.size() + 39) / 40);
  std::string tics;
  for (size_t i = 0; i < order.size(); i += step)
    tics +=
        fmt::format("{}\"{}\" {}", tics.empty() ? "" : ", ", short_revision(order[i].revision), i);
  script += "set xtics (" + tics +
            ") rotate by 90 right font ',8'\nset xlabel 'commit (one run each, by date)'\n";
  int n = 1;
  // Environment changes: a break (solid grey), never compared across.
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i].environment != order[i - 1].environment)
      script += fmt::format(
          "set arrow {0} from {1}, graph 0 to {1}, graph 1 nohead lw 3 lc rgb '#999999'\n"
          "set label {0} 'environment changed' at {1}, graph 1.03 center font ',8' "
          "textcolor rgb '#666666'\n",
          n, i - 0.5),
          ++n;
  // Detected level shifts: dashed, in the mode's colour, with their size.
  for (const auto& c : h.changes)
    for (const auto* s : drawn)
      if (c.key == s->key) {
        const double x =
            (x_of[s->points[c.previous].run_id] + x_of[s->points[c.point].run_id]) / 2.0;
        script += fmt::format(
            "set arrow {0} from {1}, graph 0 to {1}, graph 1 nohead lw 2 dt 2 lc rgb '{2}'\n"
            "set label {0} '{3} {4:+.1f} %' at {1}, graph 0.95 left offset 0.5,0 font ',9' "
            "textcolor rgb '{2}'\n",
            n, x, mode_colour(s->key.mode), s->key.mode, (c.stats.ratio - 1) * 100);
        ++n;
      }
  for (size_t j = 0; j < drawn.size(); ++j)
    script += fmt::format(
        "{}D index {} using 1:2:3:4 with yerrorlines lw 2 pt 7 ps 0.5 lc rgb '{}' title '{}'",
        j ? ", " : "plot ", j, mode_colour(drawn[j]->key.mode), drawn[j]->key.mode);
  script += "\n";
  return pl.plot(data, script);
}

std::string change_rows(const History& h, bool md) {
  std::string s;
  for (const auto& c : h.changes) {
    const history::Series* ser = nullptr;
    for (const auto& x : h.series)
      if (x.key == c.key) ser = &x;
    if (!ser) continue;
    const auto& at = ser->points[c.point];
    const auto& before = ser->points[c.previous];
    const auto* m = results::find_metric(c.key.metric);
    const bool worse = m && (c.stats.ratio > 1) != m->higher_is_better;
    std::vector<std::string> cells{
        c.key.label(),
        fmt::format("{:+.1f} % [{:+.1f}, {:+.1f}]", (c.stats.ratio - 1) * 100,
                    (c.stats.ratio_low - 1) * 100, (c.stats.ratio_high - 1) * 100),
        worse ? "worse" : "better",
        at.git_revision + " (" + at.started_at + ")",
        before.git_revision,
        fmt::format("{:.1f} %", (1 - c.stats.p_value) * 100),
        c.environment};
    if (md) {
      s += "|";
      for (const auto& x : cells) s += " " + x + " |";
      s += "\n";
    } else {
      s += "<tr>";
      for (size_t i = 0; i < cells.size(); ++i)
        s += i == 2 ? fmt::format("<td class={}>{}</td>", worse ? "bad" : "ok", cells[i])
                    : "<td>" + xml_escape(cells[i]) + "</td>";
      s += "</tr>\n";
    }
  }
  return s;
}

const char* const kChangeHeader[] = {"series",      "shift [95 % interval]", "",
                                     "from commit", "after commit",          "confidence",
                                     "environment"};

std::string history_html(Plotter& pl, const History& h) {
  std::string body = fmt::format(
      "<h2>History: {}</h2>\n<p>{} runs. One point per run: the median of its valid repetitions; "
      "whiskers: its lowest and highest repetition. Dashed lines: level shifts found by "
      "<code>hrbench history detect</code> (binary segmentation with a permutation test, "
      "p &le; {}, among the points of one environment only); solid grey lines: the environment "
      "changed (CPU, kernel, VM or the run's settings: a break, not compared across).</p>\n",
      xml_escape(h.file), h.runs, history::DetectOptions{}.alpha);
  if (!h.changes.empty()) {
    body += "<table class=lab><tr>";
    for (const char* c : kChangeHeader) body += std::string("<th>") + c + "</th>";
    body += "</tr>\n" + change_rows(h, false) + "</table>\n";
  } else {
    body += "<p>No level shift detected.</p>\n";
  }
  body += "<div class=charts>\n";
  for (const auto& g : trend_groups(h)) body += trend_chart(pl, g, h);
  return body + "</div>\n";
}

std::string env_rows(const results::Run& doc, bool md) {
  const auto& e = doc.environment;
  const auto& c = doc.config;
  std::vector<std::pair<std::string, std::string>> rows{
      {"run", doc.run_id.value_or("")},
      {"started", doc.started_at.value_or("")},
      {"revision", doc.git_revision.value_or("")},
      {"command", doc.command.value_or("")},
      {"topology", doc.topology.name.value_or("") + " (" + doc.topology.file.value_or("") + ")"},
      {"kernel", e.kernel.value_or("")},
      {"distribution", e.distro.value_or("")},
      {"CPU", fmt::format("{} × {}", e.cpus.value_or(0), e.cpu_model.value_or(""))},
      {"libbpf / clang / iptables", e.tools.libbpf.value_or("") + " / " +
                                        e.tools.clang.value_or("") + " / " +
                                        e.tools.iptables.value_or("")},
      {"trials", fmt::format("{} ({} repetitions of {} s after {} s warm-up){}", doc.trials.size(),
                             c.repetitions.value_or(0), c.duration_seconds.value_or(0.0),
                             c.warmup_seconds.value_or(0.0),
                             doc.complete.value_or(false) ? "" : ", INCOMPLETE")}};
  if (const auto& p = c.pinned_cpus) {
    rows.push_back({"generator threads",
                    (*p)[0] == (*p)[1]
                        ? fmt::format("colocated on CPU {}", (*p)[0])
                        : fmt::format("client on CPU {}, server on CPU {}", (*p)[0], (*p)[1])});
  }
  if (const auto& sh = c.shard)
    rows.push_back({"shard", fmt::format("{} of {} (one part of a run; hrbench merge joins the "
                                         "parts)",
                                         sh->index, sh->count)});
  // A merged file: each shard's runner (the rows above are shard 1's).
  for (const auto& sh : doc.shards)
    rows.push_back(
        {fmt::format("shard {} of {}", sh.index, doc.shards.size()),
         fmt::format("run {}: {} × {}, kernel {}, {}", sh.run_id.value_or(""),
                     sh.environment.cpus.value_or(0), sh.environment.cpu_model.value_or(""),
                     sh.environment.kernel.value_or(""),
                     sh.environment.virtualization.value_or(""))});
  std::string s;
  for (const auto& [k, v] : rows)
    s += md ? fmt::format("| {} | {} |\n", k, v)
            : fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", xml_escape(k), xml_escape(v));
  return s;
}

}  // namespace

namespace {
std::string lab_table(const results::LabDocument& doc, bool md) {
  std::string s = md ? "| scenario | mode | verdict | what happened |\n|---|---|---|---|\n"
                     : "<table class=lab><tr><th>scenario</th><th>mode</th><th>verdict</th>"
                       "<th>what happened</th></tr>\n";
  for (const auto& v : doc.verdicts) {
    const bool works = v.works;
    const std::string &sc = v.scenario, &mode = v.mode, &sum = v.summary;
    s += md ? fmt::format("| {} | {} | {} | {} |\n", sc, mode, works ? "works" : "**breaks**", sum)
            : fmt::format("<tr><td>{}</td><td>{}</td><td class={}>{}</td><td>{}</td></tr>\n",
                          xml_escape(sc), xml_escape(mode), works ? "ok" : "bad",
                          works ? "works" : "breaks", xml_escape(sum));
  }
  return md ? s : s + "</table>\n";
}
}  // namespace

namespace {
// A run's profiles, grouped for the report; a note instead when its profiles file is missing or
// bad (the rest of the report is still made).
struct RunProfiles {
  std::vector<results::BucketComparison> comparisons;
  std::optional<results::ProfileDocument> doc;
  std::string note;
};
RunProfiles run_profiles(const std::string& file, const results::Run& run) {
  RunProfiles p;
  try {
    p.doc = results::profiles_of(file, run);
  } catch (const Error& e) {
    p.note = std::string("Profiles not shown: ") + e.what();
    return p;
  }
  if (p.doc) {
    auto order = modes_of(run);
    order.push_back("none");
    p.comparisons = results::bucket_comparisons(*p.doc, order);
    // The pod scenarios first, the ceiling (node-node, one mode) last.
    std::stable_partition(p.comparisons.begin(), p.comparisons.end(),
                          [](const auto& c) { return c.scenario != "node-node"; });
  }
  return p;
}

std::string headline_intro() {
  return "<h3>The answer first</h3>\n<p>Each mode against the reference: the ratio of medians "
         "paired by repetition with its bootstrap 95 % interval, for the rate and for the CPU "
         "per unit of work (green: the interval is on the better side of 1, red: on the worse "
         "side); the ceiling is node-node (no pod hop) and how close each mode gets to it.</p>\n";
}
}  // namespace

std::string markdown(const std::vector<std::pair<std::string, Input>>& runs,
                     const History* history) {
  std::string s = "# hostroute-bench report\n";
  if (history) {
    s += fmt::format("\n## History: {}\n\n{} runs, {} series, {} level shift(s) detected.\n",
                     history->file, history->runs, history->series.size(), history->changes.size());
    if (!history->changes.empty()) {
      s += "\n|";
      for (const char* c : kChangeHeader) s += std::string(" ") + c + " |";
      s += "\n|---|---|---|---|---|---|---|\n" + change_rows(*history, true);
    }
  }
  for (const auto& [file, input] : runs) {
    if (const auto* lab = std::get_if<results::LabDocument>(&input)) {
      s += fmt::format("\n## Limitation lab: {}\n\n`{}`\n\n{}", file, lab->command.value_or(""),
                       lab_table(*lab, true));
      continue;
    }
    const auto& doc = std::get<results::Run>(input);
    const RunProfiles prof = run_profiles(file, doc);
    s += fmt::format("\n## {}\n\n", file);
    s += headline(doc, prof.comparisons, true);
    if (!prof.note.empty()) s += "\n" + prof.note + "\n";
    s += fmt::format("\n| | |\n|---|---|\n{}\n", env_rows(doc, true));
    s += cpu_section(prof.comparisons, true);
    s += "\n```\n" + results::summary_table(doc) + "```\n";
    if (const auto cells = results::short_cells(doc); !cells.empty()) {
      s += fmt::format("\n**{} cell(s) short of valid repetitions:**\n\n", cells.size());
      for (const auto& c : cells) s += "- " + c.line() + "\n";
    }
  }
  return s;
}

std::string html(const std::vector<std::pair<std::string, Input>>& runs, const History* history) {
  Plotter pl;
  std::string body;
  if (history) body += history_html(pl, *history);
  for (const auto& [file, input] : runs) {
    if (const auto* lab = std::get_if<results::LabDocument>(&input)) {
      body +=
          fmt::format("<h2>Limitation lab: {}</h2>\n<p><code>{}</code></p>\n{}", xml_escape(file),
                      xml_escape(lab->command.value_or("")), lab_table(*lab, false));
      continue;
    }
    const auto& doc = std::get<results::Run>(input);
    const RunProfiles prof = run_profiles(file, doc);
    body += fmt::format("<h2>{}</h2>\n", xml_escape(file));
    body += headline_intro() + headline(doc, prof.comparisons, false);
    if (!prof.note.empty()) body += "<p class=missing>" + xml_escape(prof.note) + "</p>\n";
    body += cpu_section(prof.comparisons, false);
    body += fmt::format("<h3>Run</h3>\n<table class=env>\n{}</table>\n", env_rows(doc, false));
    body += "<h3>Throughput and transaction rate</h3>\n<div class=charts>\n";
    for (const char* wl : {"tcp_rr", "tcp_crr", "udp_rr"})
      if (has(doc, wl)) body += bars(pl, doc, wl, *results::find_metric("transactionsPerSecond"));
    for (const char* wl : {"tcp_stream", "udp_stream"})
      if (has(doc, wl)) body += bars(pl, doc, wl, *results::find_metric("gbitPerSecond"));
    if (has(doc, "pps")) body += bars(pl, doc, "pps", *results::find_metric("packetsPerSecond"));
    body += "</div>\n<h3>Latency percentiles</h3>\n<div class=charts>\n";
    for (const char* wl : {"tcp_rr", "tcp_crr"})
      if (has(doc, wl))
        for (const auto& sc : kPodScenarios) body += latency(pl, doc, wl, sc);
    body += "</div>\n<h3>CPU per unit of work</h3>\n<div class=charts>\n";
    for (const char* wl : {"tcp_rr", "tcp_crr"})
      if (has(doc, wl)) body += bars(pl, doc, wl, *results::find_metric("cpuUsPerTransaction"));
    for (const char* wl : {"tcp_stream", "udp_stream"})
      if (has(doc, wl)) body += bars(pl, doc, wl, *results::find_metric("cpuSecondsPerGB"));
    if (has(doc, "pps")) body += bars(pl, doc, "pps", *results::find_metric("cpuNsPerPacket"));
    body += "</div>\n";
    if (doc.config.scan()) {
      body += "<h3>Scan</h3>\n<div class=charts>\n";
      for (const char* sc : {"pod-pod-cross-node", "pod-service", "external-nodeport"})
        for (const char* wl : {"tcp_crr", "tcp_rr"})
          if (has(doc, wl))
            body += scan_curve(pl, doc, wl, *results::find_metric("transactionsPerSecond"), sc);
      body += "</div>\n";
    }
    body +=
        "<h3>Comparison table</h3>\n<pre>" + xml_escape(results::summary_table(doc)) + "</pre>\n";
    if (const auto cells = results::short_cells(doc); !cells.empty()) {
      body += fmt::format("<h3 class=short>{} cell(s) short of valid repetitions</h3>\n<ul>\n",
                          cells.size());
      for (const auto& c : cells) body += "<li>" + xml_escape(c.line()) + "</li>\n";
      body += "</ul>\n";
    }
  }
  return "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
         "<title>hostroute-bench report</title><style>"
         "body{font-family:sans-serif;margin:2em;color:#222}"
         "table.env th{text-align:left;padding-right:1em;color:#555;font-weight:normal}"
         ".charts{display:flex;flex-wrap:wrap;gap:1em}.charts svg{border:1px solid #eee}"
         "pre{font-size:12px;background:#f7f7f7;padding:1em;overflow-x:auto}"
         "table.lab td,table.lab th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}"
         "td.ok{color:#1a7f37}td.bad{color:#c0392b;font-weight:bold}"
         "table.headline,table.buckets{border-collapse:collapse;margin:0.5em 0 1em}"
         "table.headline td,table.headline th,table.buckets td,table.buckets th{border-bottom:1px "
         "solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}"
         "td.better{color:#1a7f37;font-weight:bold}td.worse{color:#c0392b;font-weight:bold}"
         "td.same{color:#666}td.less{color:#1a7f37}td.more{color:#c0392b}"
         "td.sentence,p.sentence{max-width:34em}p.sentence{font-weight:bold}"
         ".swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border:1px "
         "solid #999}figure{margin:0;width:760px}figure "
         "svg{width:760px;height:360px}figcaption.missing,p.missing{color:#8a5a00;font-size:12px;"
         "max-width:760px}.flames svg{display:block;margin:0.5em 0;border:1px solid #eee}"
         "</style></head><body>\n<h1>hostroute-bench report</h1>\n<p>Bars: median over "
         "repetitions, whiskers: bootstrap 95 % interval of the median; dashed line: the "
         "node-node ceiling (no pod hop).</p>\n" +
         body + "</body></html>\n";
}

Input read_input(const std::string& path) {
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("schema") &&
      j["schema"] == results::kLabSchema)
    return results::lab_from_json(j, path);
  return results::read_results(path);
}

History read_history(const std::string& db) {
  auto store = history::Store::open_read(db);
  History h;
  h.file = db;
  h.runs = store.runs().size();
  h.series = store.series({});
  h.changes = history::detect(h.series);
  return h;
}

std::vector<std::pair<std::string, Input>> read_inputs(const std::vector<std::string>& files) {
  std::vector<std::pair<std::string, Input>> runs;
  for (const auto& f : files) runs.push_back({f, read_input(f)});
  return runs;
}

}  // namespace hrb::report
