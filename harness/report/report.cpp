#include "report/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/markup.hpp"
#include "core/process.hpp"
#include "metrics/stats.hpp"
#include "results/results.hpp"

namespace hrb::report {

namespace fs = std::filesystem;

namespace {

// The ladder, in order: legacy, bpf-lb (when the run measured it), ebpf; then any other mode the
// run measured (ebpf-delay, another build's KIND@NAME), in the order first measured; and their
// bar colours.
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
// The scenarios a mode is compared in (node-node is the ceiling line), in the order they are
// drawn; external-nodeport: the external host to a NodePort, not in the default run.
const std::vector<std::string> kPodScenarios{"pod-pod-same-node", "pod-pod-cross-node",
                                             "pod-service", "pod-external", "external-nodeport"};

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

// Bars per scenario and mode with 95 % whiskers, and the node-node ceiling as a line.
std::string bars(Plotter& pl, const results::Run& doc, const std::string& workload,
                 const results::Metric& m) {
  std::string data;  // scenario, then per mode: median, low, high (no header line: gnuplot would
                     // count it as a histogram slot)
  bool any = false;
  const auto modes = modes_of(doc);
  for (const auto& s : kPodScenarios) {
    std::vector<Stat> per_mode;
    for (const auto& mode : modes)
      per_mode.push_back(stat_of(results::series(doc, mode, s, workload, m)));
    if (std::none_of(per_mode.begin(), per_mode.end(), [](const Stat& st) { return st.n > 0; }))
      continue;  // a scenario this run did not measure (pod-service in older runs)
    data += s;
    for (const auto& st : per_mode) {
      any = true;
      data += fmt::format("\t{}\t{}\t{}", std::isfinite(st.median) ? st.median : 0,
                          std::isfinite(st.lo) ? st.lo : 0, std::isfinite(st.hi) ? st.hi : 0);
    }
    data += "\n";
  }
  if (!any) return "";
  auto ceil = stat_of(results::series(doc, "none", "node-node", workload, m));
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
  return pl.plot(data, script);
}

// Latency percentiles per mode (log scale), per scenario.
std::string latency(Plotter& pl, const results::Run& doc, const std::string& workload,
                    const std::string& scenario) {
  const char* ps[] = {"latencyP50", "latencyP90", "latencyP99", "latencyP999"};
  const char* labels[] = {"p50", "p90", "p99", "p99.9"};
  std::string data;  // percentile, legacy, ebpf, ceiling
  bool any = false;
  for (int i = 0; i < 4; ++i) {
    const auto* m = results::find_metric(ps[i]);
    auto l = stat_of(results::series(doc, "legacy", scenario, workload, *m));
    auto e = stat_of(results::series(doc, "ebpf", scenario, workload, *m));
    auto c = stat_of(results::series(doc, "none", "node-node", workload, *m));
    any |= l.n + e.n > 0;
    auto v = [](double x) { return std::isfinite(x) ? fmt::format("{}", x) : std::string("NaN"); };
    data += fmt::format("{}\t{}\t{}\t{}\n", labels[i], v(l.median), v(e.median), v(c.median));
  }
  if (!any) return "";
  std::string script = fmt::format(
      "set title '{} latency, {} (median over repetitions)'\nset logscale y\nset ylabel 'us'\n"
      "plot D using 0:2:xtic(1) with linespoints lw 2 pt 7 lc rgb '#d08c2e' title 'legacy', "
      "'' using 0:3 with linespoints lw 2 pt 7 lc rgb '#2e7dd0' title 'ebpf', "
      "'' using 0:4 with lines lw 1 dt 2 lc rgb '#333333' title 'node-node'\n",
      workload, scenario);
  return pl.plot(data, script);
}

// A scan: the metric against the scanned parameter, one line per mode.
std::string scan_curve(Plotter& pl, const results::Run& doc, const std::string& workload,
                       const results::Metric& m, const std::string& scenario) {
  const auto& scan = *doc.config.scan();
  std::string data;  // value, legacy, ebpf
  bool any = false;
  for (int x : scan.values) {
    auto l = stat_of(results::series(doc, "legacy", scenario, workload, m, x));
    auto e = stat_of(results::series(doc, "ebpf", scenario, workload, m, x));
    any |= l.n + e.n > 0;
    auto f = [](double y) { return std::isfinite(y) ? fmt::format("{}", y) : std::string("NaN"); };
    data += fmt::format("{}\t{}\t{}\n", x, f(l.median), f(e.median));
  }
  if (!any) return "";
  std::string script = fmt::format(
      "set title '{} {} vs {} ({})'\nset xlabel '{}'\nset ylabel '{}'\nset yrange [0:*]\n"
      "plot D using 1:2 with linespoints lw 2 pt 7 lc rgb '#d08c2e' title 'legacy', "
      "'' using 1:3 with linespoints lw 2 pt 7 lc rgb '#2e7dd0' title 'ebpf'\n",
      workload, m.name, scan.param, scenario, scan.param, m.unit);
  return pl.plot(data, script);
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
    s += fmt::format("\n## {}\n\n| | |\n|---|---|\n{}\n", file, env_rows(doc, true));
    s += "```\n" + results::summary_table(doc) + "```\n";
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
    body += fmt::format("<h2>{}</h2>\n<table class=env>\n{}</table>\n", xml_escape(file),
                        env_rows(doc, false));
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
