// hrbench history: the SQLite store of past runs (add, list, show, detect; docs/history.md).
#include <iostream>
#include <map>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/ipv6.hpp"
#include "history/detect.hpp"
#include "history/store.hpp"
#include "results/results.hpp"

namespace hrb::cli {

namespace {

const char* const kDefaultDb = HRB_SOURCE_DIR "/results/history.db";

struct HistoryOptions {
  CommonOptions common;
  std::string action;
  std::string db;
  std::vector<std::string> files;
  bool json = false;
  history::SeriesFilter filter;
};

int run_history_add(const HistoryOptions& o) {
  auto store = history::Store::open_write(o.db);
  int rc = 0;
  for (const auto& f : o.files) {
    try {
      auto run = results::read_results(f);  // schema, version and types checked
      auto r = store.add(run, f);
      size_t valid = 0;
      for (const auto& t : run.trials) valid += t.is_valid();
      switch (r.status) {
        case history::Added::kAdded:
          std::cout << fmt::format("{}: added run {} ({} trials, {} valid)\n", f, r.run_id,
                                   r.trials, valid);
          break;
        case history::Added::kReplaced:
          std::cout << fmt::format(
              "{}: replaced run {} (stored incomplete; now {} trials, {} valid)\n", f, r.run_id,
              r.trials, valid);
          break;
        case history::Added::kAlreadyStored:
          std::cout << fmt::format("{}: run {} already stored, unchanged\n", f, r.run_id);
          break;
      }
    } catch (const Error& e) {
      std::cerr << e.what() << " (nothing added from " << f << ")\n";
      rc = static_cast<int>(e.code());
    }
  }
  return rc;
}

int run_history_list(const HistoryOptions& o) {
  auto store = history::Store::open_read(o.db);
  auto runs = store.runs();
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : runs)
      out.push_back({{"runId", r.run_id},
                     {"gitRevision", r.git_revision},
                     {"startedAt", r.started_at},
                     {"environment", r.environment},
                     {"complete", r.complete},
                     {"trials", r.trials},
                     {"validTrials", r.valid},
                     {"source", r.source},
                     {"addedAt", r.added_at}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{:<22} {:<21} {:<16} {:<17} {:>6} {:>6}  {}\n", "run", "started",
                           "revision", "environment", "trials", "valid", "complete");
  for (const auto& r : runs)
    std::cout << fmt::format("{:<22} {:<21} {:<16} {:<17} {:>6} {:>6}  {}\n", r.run_id,
                             r.started_at, r.git_revision, r.environment, r.trials, r.valid,
                             r.complete ? "yes" : "no");
  std::cout << fmt::format("{} run(s) in {}\n", runs.size(), store.path());
  return 0;
}

// "cpuModel A -> B, kernel C -> D": what differs between two environments' fields.
std::string environment_change(history::Store& store, const std::string& from,
                               const std::string& to) {
  auto a = store.environment(from), b = store.environment(to);
  std::string s;
  if (a.is_object() && b.is_object())
    for (const auto& [k, v] : b.items())
      if (!a.contains(k) || a[k] != v) {
        auto text = [](const nlohmann::json& j) {
          return j.is_string() ? j.get<std::string>() : j.dump();
        };
        s += fmt::format("{}{} {} -> {}", s.empty() ? "" : ", ", k,
                         a.contains(k) ? text(a[k]) : "(none)", text(v));
      }
  return s.empty() ? from + " -> " + to : s;
}

// --metric, checked against the catalogue: Error(kUsage) naming the metrics there are.
const results::Metric* metric_flag(const std::string& name) {
  if (const auto* m = results::find_metric(name)) return m;
  std::string names;
  for (const auto& m : results::metric_catalogue()) names += (names.empty() ? "" : ", ") + m.name;
  throw Error("--metric " + name + ": not a metric (" + names + ")", ExitCode::kUsage);
}

std::string percent(double ratio) { return fmt::format("{:+.1f} %", (ratio - 1) * 100); }

nlohmann::json change_json(const history::Series& s, const history::Change& c) {
  const auto& at = s.points[c.point];
  const auto& before = s.points[c.previous];
  return {{"series", s.key.label()},
          {"metric", s.key.metric},
          {"mode", s.key.mode},
          {"scenario", s.key.scenario},
          {"workload", s.key.workload},
          {"scan", s.key.scan},
          {"family", s.key.family},
          {"environment", c.environment},
          {"runId", at.run_id},
          {"gitRevision", at.git_revision},
          {"startedAt", at.started_at},
          {"previousRunId", before.run_id},
          {"previousGitRevision", before.git_revision},
          {"ratio", c.stats.ratio},
          {"ratioLow", c.stats.ratio_low},
          {"ratioHigh", c.stats.ratio_high},
          {"before", c.stats.before},
          {"after", c.stats.after},
          {"pointsBefore", c.stats.before_n},
          {"pointsAfter", c.stats.after_n},
          {"pValue", c.stats.p_value},
          {"confidence", 1 - c.stats.p_value}};
}

// "worse" / "better" for a metric with a direction.
std::string direction(const std::string& metric, double ratio) {
  const auto* m = results::find_metric(metric);
  if (!m || ratio == 1) return "";
  return (ratio > 1) == m->higher_is_better ? "better" : "worse";
}

std::string change_line(const history::Series& s, const history::Change& c) {
  const auto& at = s.points[c.point];
  const auto& before = s.points[c.previous];
  return fmt::format(
      "{}: {} [{}, {}] ({}) from {} (run {}, {}; previous {}), {} -> {} over {} and {} runs; "
      "confidence {:.1f} % (permutation p = {:.3f}); environment {}",
      s.key.label(), percent(c.stats.ratio), percent(c.stats.ratio_low),
      percent(c.stats.ratio_high), direction(s.key.metric, c.stats.ratio), at.git_revision,
      at.run_id, at.started_at, before.git_revision, fmt::format("{:.4g}", c.stats.before),
      fmt::format("{:.4g}", c.stats.after), c.stats.before_n, c.stats.after_n,
      (1 - c.stats.p_value) * 100, c.stats.p_value, c.environment);
}

int run_history_show(const HistoryOptions& o) {
  const auto& f = o.filter;
  for (const auto& [flag, v] : {std::pair<const char*, const std::string&>{"--metric", f.metric},
                                {"--mode", f.mode},
                                {"--scenario", f.scenario},
                                {"--workload", f.workload}})
    if (v.empty())
      throw Error(std::string("give ") + flag +
                      "; usage: hrbench history show --metric M --mode X --scenario S --workload W",
                  ExitCode::kUsage);
  const auto* metric = metric_flag(f.metric);
  auto store = history::Store::open_read(o.db);
  auto series = store.series(f);
  auto changes = history::detect(series);
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : series) {
      nlohmann::json pts = nlohmann::json::array();
      for (const auto& p : s.points)
        pts.push_back({{"runId", p.run_id},
                       {"gitRevision", p.git_revision},
                       {"startedAt", p.started_at},
                       {"environment", p.environment},
                       {"median", p.median},
                       {"low", p.low},
                       {"high", p.high},
                       {"values", p.values}});
      nlohmann::json ch = nlohmann::json::array();
      for (const auto& c : changes)
        if (c.key == s.key) ch.push_back(change_json(s, c));
      out.push_back({{"series", s.key.label()},
                     {"family", s.key.family},
                     {"unit", metric->unit},
                     {"points", pts},
                     {"changes", ch}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (series.empty()) {
    std::cout << fmt::format("no valid trials of {} {} {} {}{}{} in {}\n", f.mode, f.scenario,
                             f.workload, f.metric, f.family.empty() ? "" : " " + f.family,
                             f.environment.empty() ? "" : " in environment " + f.environment,
                             store.path());
    return 0;
  }
  for (const auto& s : series) {
    std::cout << fmt::format("{} ({}, {} is better)\n", s.key.label(), metric->unit,
                             metric->higher_is_better ? "higher" : "lower");
    std::cout << fmt::format("{:<21} {:<16} {:<22} {:<17} {:>3} {:>12} {:>12} {:>12}\n", "date",
                             "commit", "run", "environment", "n", "median", "low", "high");
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto& p = s.points[i];
      if (i && p.environment != s.points[i - 1].environment)
        std::cout << "--- environment changed (a break: not compared across): "
                  << environment_change(store, s.points[i - 1].environment, p.environment) << "\n";
      std::string mark;
      for (const auto& c : changes)
        if (c.key == s.key && c.point == i)
          mark = fmt::format("  <- shift {} [{}, {}], confidence {:.1f} %", percent(c.stats.ratio),
                             percent(c.stats.ratio_low), percent(c.stats.ratio_high),
                             (1 - c.stats.p_value) * 100);
      std::cout << fmt::format(
          "{:<21} {:<16} {:<22} {:<17} {:>3} {:>12.6g} {:>12.6g} {:>12.6g}{}\n", p.started_at,
          p.git_revision, p.run_id, p.environment, p.values.size(), p.median, p.low, p.high, mark);
    }
  }
  return 0;
}

int run_history_detect(const HistoryOptions& o) {
  if (!o.filter.metric.empty()) metric_flag(o.filter.metric);
  auto store = history::Store::open_read(o.db);
  auto series = store.series(o.filter);
  auto changes = history::detect(series);
  std::map<history::SeriesKey, const history::Series*> by_key;
  for (const auto& s : series) by_key[s.key] = &s;
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : changes) out.push_back(change_json(*by_key[c.key], c));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& c : changes) std::cout << change_line(*by_key[c.key], c) << "\n";
  size_t points = 0;
  for (const auto& s : series) points += s.points.size();
  std::cout << fmt::format(
      "{} change(s) in {} series ({} points) of {}; binary segmentation, permutation test "
      "p <= {} within each environment\n",
      changes.size(), series.size(), points, store.path(), history::DetectOptions{}.alpha);
  return 0;
}

const char* const kUsage =
    "hrbench history add RESULTS.json… | list | show --metric M --mode X --scenario S "
    "--workload W [--env FP] | detect [--db FILE]";

}  // namespace

int cmd_history(const Args& args) {
  HistoryOptions o;
  Args rest = args;
  if (!rest.empty() && !rest.front().empty() && rest.front()[0] != '-') {
    o.action = rest.front();
    rest.erase(rest.begin());
  }
  static const std::map<std::string, std::string> kAbout{
      {"",
       "hrbench history: the SQLite store of past runs, for trends and change points across "
       "commits (docs/history.md). Actions: add RESULTS.json… (idempotent by runId), list, "
       "show (one series by commit and date), detect (level shifts within each "
       "environment); hrbench history ACTION --help for each"},
      {"add",
       "hrbench history add RESULTS.json…: store runs, each file in one transaction "
       "(idempotent by runId; an invalid file adds nothing)"},
      {"list", "hrbench history list: one line per stored run"},
      {"show",
       "hrbench history show: one series (a metric of one cell) by date and commit: the "
       "median of each run's valid repetitions, their lowest and highest, shifts and "
       "environment changes marked"},
      {"detect",
       "hrbench history detect: level shifts in every matching series, among the "
       "points of one environment (binary segmentation, permutation test)"}};
  auto about = kAbout.find(o.action);
  if (about == kAbout.end())
    throw Error("unknown action '" + o.action + "'; usage: " + kUsage, ExitCode::kUsage);
  po::options_description d(about->second);
  d.add_options()("db", po::value(&o.db)->default_value(kDefaultDb), "the history store (SQLite)");
  po::positional_options_description pos;
  std::string usage = kUsage;
  auto filters = [&](bool required) {
    const char* req = required ? " (required)" : "";
    d.add_options()("metric", po::value(&o.filter.metric),
                    (std::string("metric, e.g. transactionsPerSecond") + req).c_str())(
        "mode", po::value(&o.filter.mode), (std::string("mode, e.g. ebpf") + req).c_str())(
        "scenario", po::value(&o.filter.scenario),
        (std::string("scenario, e.g. pod-pod-cross-node") + req).c_str())(
        "workload", po::value(&o.filter.workload),
        (std::string("workload, e.g. tcp_rr") + req).c_str())(
        "env", po::value(&o.filter.environment),
        "only runs of this environment fingerprint (or a prefix of it; `history list` shows them)")(
        "family", po::value(&o.filter.family),
        "only trials of this address family (ipv4 | ipv6; default: both, each its own series)")(
        "json", po::bool_switch(&o.json), "print JSON");
  };
  if (o.action == "add") {
    d.add_options()("files", po::value(&o.files), "results files");
    pos.add("files", -1);
    usage = "hrbench history add RESULTS.json… [--db FILE]";
  } else if (o.action == "list") {
    d.add_options()("json", po::bool_switch(&o.json), "print JSON");
    usage = "hrbench history list [--db FILE] [--json]";
  } else if (o.action == "show") {
    filters(true);
    usage =
        "hrbench history show --metric M --mode X --scenario S --workload W [--env FP] "
        "[--family F] [--db FILE] [--json]";
  } else if (o.action == "detect") {
    filters(false);
    usage =
        "hrbench history detect [--metric M] [--mode X] [--scenario S] [--workload W] [--env FP] "
        "[--family F] [--db FILE] [--json]";
  }
  if (!parse(rest, d, usage, o.common, pos)) return 0;
  if (o.action.empty())
    throw Error(std::string("give an action; usage: ") + kUsage, ExitCode::kUsage);
  if (o.action == "add") {
    if (o.files.empty())
      throw Error("give at least one results file; usage: " + usage, ExitCode::kUsage);
    return run_history_add(o);
  }
  if (o.action == "list") return run_history_list(o);
  if (!o.filter.family.empty() && !parse_family(o.filter.family))
    throw Error("--family: expected ipv4 or ipv6, got '" + o.filter.family + "'", ExitCode::kUsage);
  if (o.action == "show") return run_history_show(o);
  return run_history_detect(o);
}

}  // namespace hrb::cli
