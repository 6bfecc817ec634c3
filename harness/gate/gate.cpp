#include "gate/gate.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/hash.hpp"
#include "core/markup.hpp"
#include "metrics/stats.hpp"
#include "results/results.hpp"

namespace hrb::gate {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kFail:
      return "FAIL";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "?";
}

Verdict GateResult::overall() const {
  bool inconclusive = false;
  for (const auto& c : checks) {
    if (c.verdict == Verdict::kFail) return Verdict::kFail;
    if (c.verdict == Verdict::kInconclusive) inconclusive = true;
  }
  return inconclusive ? Verdict::kInconclusive : Verdict::kPass;
}

int exit_code(const GateResult& r, bool inconclusive_ok) {
  // A regression found by the checks that could be judged still fails; otherwise a baseline
  // that is not comparable says so, never as a failure.
  if (r.not_comparable() && r.overall() != Verdict::kFail) return 3;
  switch (r.overall()) {
    case Verdict::kPass:
      return 0;
    case Verdict::kFail:
      return 1;
    case Verdict::kInconclusive:
      return inconclusive_ok ? 0 : 2;
  }
  return 1;
}

namespace {

[[noreturn]] void bad(const std::string& label, const YAML::Node& at, const std::string& key,
                      const std::string& msg) {
  std::string where = label;
  if (at.IsDefined()) where += fmt::format(":{}:{}", at.Mark().line + 1, at.Mark().column + 1);
  throw Error(fmt::format("invalid gate policy: {}: '{}': {}", where, key, msg),
              ExitCode::kBadInput);
}

std::string str(const std::string& label, const YAML::Node& parent, const char* key,
                const std::string& path) {
  YAML::Node n = parent[key];
  if (!n.IsDefined()) bad(label, parent, path + key, "required key is missing");
  if (!n.IsScalar()) bad(label, n, path + key, "expected a string");
  return n.Scalar();
}

double num(const std::string& label, const YAML::Node& n, const std::string& key) {
  double d = 0;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, d) || !std::isfinite(d))
    bad(label, n, key, "expected a number");
  return d;
}

// A whole number in [lo, hi] (a cast of a negative or huge double to an integer type is
// undefined behaviour: found by fuzz_gate_policy with `minPairs: -13`).
double whole(const std::string& label, const YAML::Node& n, const std::string& key, double lo,
             double hi) {
  double d = num(label, n, key);
  if (d != std::floor(d) || d < lo || d > hi)
    bad(label, n, key, fmt::format("expected a whole number from {:.0f} to {:.0f}", lo, hi));
  return d;
}

void only_keys(const std::string& label, const YAML::Node& n, const std::string& path,
               const std::set<std::string>& allowed) {
  if (!n.IsMap()) bad(label, n, path, "expected a mapping");
  for (const auto& kv : n)
    if (!allowed.count(kv.first.Scalar()))
      bad(label, kv.first, path + kv.first.Scalar(), "unknown key");
}

Cell cell(const std::string& label, const YAML::Node& n, const std::string& path) {
  if (!n.IsDefined()) bad(label, n, path, "required key is missing");
  only_keys(label, n, path + ".", {"mode", "scenario"});
  return {str(label, n, "mode", path + "."), str(label, n, "scenario", path + ".")};
}

}  // namespace

Policy parse_policy_string(const std::string& yaml, const std::string& label) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("invalid gate policy: {}:{}:{}: {}", label, e.mark.line + 1,
                            e.mark.column + 1, e.msg),
                ExitCode::kBadInput);
  }
  Policy p;
  p.file = label;
  only_keys(label, root, "", {"confidence", "resamples", "seed", "minPairs", "checks"});
  if (root["confidence"]) p.confidence = num(label, root["confidence"], "confidence");
  if (p.confidence <= 0.5 || p.confidence >= 1)
    bad(label, root["confidence"], "confidence", "must be between 0.5 and 1");
  if (root["resamples"])
    p.resamples = static_cast<int>(whole(label, root["resamples"], "resamples", 1, 1e7));
  if (root["seed"]) p.seed = static_cast<uint64_t>(whole(label, root["seed"], "seed", 0, 9e15));
  if (root["minPairs"])
    p.min_pairs = static_cast<size_t>(whole(label, root["minPairs"], "minPairs", 1, 1e6));
  YAML::Node checks = root["checks"];
  if (!checks.IsSequence() || checks.size() == 0)
    bad(label, checks, "checks", "expected a non-empty list of checks");
  std::set<std::string> names;
  for (size_t i = 0; i < checks.size(); ++i) {
    const YAML::Node c = checks[i];
    const std::string path = fmt::format("checks[{}].", i);
    only_keys(label, c, path,
              {"name", "kind", "metric", "workload", "a", "b", "mode", "scenario", "ratio",
               "maxRegression"});
    Check k;
    k.name = str(label, c, "name", path);
    if (!names.insert(k.name).second) bad(label, c["name"], path + "name", "duplicate name");
    k.kind = str(label, c, "kind", path);
    k.metric = str(label, c, "metric", path);
    k.workload = str(label, c, "workload", path);
    const auto* m = results::find_metric(k.metric);
    if (!m) bad(label, c["metric"], path + "metric", "unknown metric '" + k.metric + "'");
    if (std::find(m->workloads.begin(), m->workloads.end(), k.workload) == m->workloads.end())
      bad(label, c["workload"], path + "workload",
          "metric " + k.metric + " is not measured by workload '" + k.workload + "'");
    if (k.kind == "relative") {
      k.a = cell(label, c["a"], path + "a");
      k.b = cell(label, c["b"], path + "b");
      YAML::Node r = c["ratio"];
      if (!r.IsDefined()) bad(label, c, path + "ratio", "required key is missing");
      only_keys(label, r, path + "ratio.", {"min", "max"});
      if (r["min"]) k.min_ratio = num(label, r["min"], path + "ratio.min");
      if (r["max"]) k.max_ratio = num(label, r["max"], path + "ratio.max");
      if (!k.min_ratio && !k.max_ratio)
        bad(label, r, path + "ratio", "give min and/or max (bounds on b / a)");
    } else if (k.kind == "baseline") {
      k.cell = {str(label, c, "mode", path), str(label, c, "scenario", path)};
      if (c["maxRegression"])
        k.max_regression = num(label, c["maxRegression"], path + "maxRegression");
      if (k.max_regression < 0 || k.max_regression >= 1)
        bad(label, c["maxRegression"], path + "maxRegression", "must be in [0, 1)");
    } else {
      bad(label, c["kind"], path + "kind", "expected relative or baseline");
    }
    p.checks.push_back(k);
  }
  return p;
}

Policy parse_policy_file(const std::string& path) {
  return parse_policy_string(read_text_file(path, "gate policy"), path);
}

namespace {

std::vector<double> values_of(const results::Run& doc, const std::string& file, const Cell& c,
                              const Check& k) {
  const auto* m = results::find_metric(k.metric);
  auto v = results::series(doc, c.mode, c.scenario, k.workload, *m);
  if (results::finite(v).empty())
    throw Error(fmt::format("{}: check '{}': no valid {} values for {}/{}/{}", file, k.name,
                            k.metric, c.mode, c.scenario, k.workload),
                ExitCode::kBadInput);
  return v;
}

void decide(CheckResult& r, double lo_bound_or_nan, double hi_bound_or_nan, size_t min_pairs) {
  const bool has_min = std::isfinite(lo_bound_or_nan), has_max = std::isfinite(hi_bound_or_nan);
  std::string b;
  if (has_min) b += fmt::format(">= {:.3f}", lo_bound_or_nan);
  if (has_max) b += fmt::format("{}<= {:.3f}", has_min ? ", " : "", hi_bound_or_nan);
  r.bound_text = b;
  r.bound = has_min ? lo_bound_or_nan : hi_bound_or_nan;
  if (r.pairs < min_pairs) {
    r.verdict = Verdict::kInconclusive;
    r.message = fmt::format("too few pairs: {} < minPairs {}", r.pairs, min_pairs);
    return;
  }
  bool fail = (has_min && r.ci_high < lo_bound_or_nan) || (has_max && r.ci_low > hi_bound_or_nan);
  bool pass =
      (!has_min || r.ci_low >= lo_bound_or_nan) && (!has_max || r.ci_high <= hi_bound_or_nan);
  r.verdict = fail ? Verdict::kFail : pass ? Verdict::kPass : Verdict::kInconclusive;
  r.message = fail   ? "the whole interval is past the bound"
              : pass ? "the whole interval is within the bound"
                     : "the interval straddles the bound";
  if (r.verdict == Verdict::kInconclusive) {
    // The distance from the ratio to the bound(s) its interval straddles.
    double d = INFINITY;
    if (has_min && r.ci_low < lo_bound_or_nan)
      d = std::min(d, std::fabs(r.ratio - lo_bound_or_nan));
    if (has_max && r.ci_high > hi_bound_or_nan)
      d = std::min(d, std::fabs(r.ratio - hi_bound_or_nan));
    const double half = (r.ci_high - r.ci_low) / 2;
    if (std::isfinite(d) && d > 1e-3 && half > 0)
      r.pairs_to_resolve = static_cast<size_t>(
          std::min(1e6, std::ceil(static_cast<double>(r.pairs) * (half / d) * (half / d))));
  }
}

// The interval's half-width relative to the ratio (CheckResult::resolution).
double resolution_of(const CheckResult& r) {
  return r.ratio > 0 ? (r.ci_high - r.ci_low) / 2 / r.ratio : 0;
}

// A setting as the messages show it: its JSON value, null when not recorded.
template <class T>
nlohmann::json recorded(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
nlohmann::json mode_option(const results::Run& r, const char* key) {
  const auto& mo = r.config.mode_options;
  return mo && mo->contains(key) ? (*mo)[key] : nlohmann::json(nullptr);
}

// Settings that change what a trial measures: a baseline run taken with other values is not a
// baseline of this run (e.g. colocated generator threads run tcp_rr ten times faster). Named by
// their place in the document.
struct Comparable {
  const char* key;
  nlohmann::json (*of)(const results::Run&);
};
const Comparable kComparable[] = {
    {"/topology/name", [](const results::Run& r) { return recorded(r.topology.name); }},
    {"/config/pinnedCpus", [](const results::Run& r) { return recorded(r.config.pinned_cpus); }},
    {"/config/flows", [](const results::Run& r) { return recorded(r.config.flows); }},
    {"/config/messageSize", [](const results::Run& r) { return recorded(r.config.message_size); }},
    {"/config/calibrationDelayLoops",
     [](const results::Run& r) { return recorded(r.config.calibration_delay_loops); }},
    // modeOptions is datapath's record (datapath::ModeOptions::to_json).
    {"/config/modeOptions/backend",
     [](const results::Run& r) { return mode_option(r, "backend"); }},
    {"/config/modeOptions/services",
     [](const results::Run& r) { return mode_option(r, "services"); }},
    {"/config/modeOptions/endpointsPerService",
     [](const results::Run& r) { return mode_option(r, "endpointsPerService"); }},
};

}  // namespace

void require_comparable(const results::Run& a, const std::string& a_file, const results::Run& b,
                        const std::string& b_file) {
  for (const auto& [key, of] : kComparable) {
    auto at = of;
    if (at(a) != at(b))
      throw Error(fmt::format("{} and {} are not comparable: {} is {} in {} and {} in {} (measure "
                              "both with the same settings)",
                              a_file, b_file, key, at(a).dump(), a_file, at(b).dump(), b_file),
                  ExitCode::kBadInput);
  }
}

namespace {
// The environment fields that change absolute figures (environment_differences), each as text.
std::string text(const std::optional<std::string>& v) { return v.value_or("(not recorded)"); }
using Env = results::Environment;
const std::pair<const char*, std::string (*)(const Env&)> kEnvironmentFields[] = {
    {"cpuModel", [](const Env& e) { return text(e.cpu_model); }},
    {"cpus", [](const Env& e) { return e.cpus ? std::to_string(*e.cpus) : text(std::nullopt); }},
    {"arch", [](const Env& e) { return text(e.arch); }},
    {"kernel", [](const Env& e) { return text(e.kernel); }},
    {"virtualization", [](const Env& e) { return text(e.virtualization); }},
    {"container", [](const Env& e) { return text(e.container); }},
};
}  // namespace

std::vector<EnvironmentDifference> environment_differences(const results::Environment& base,
                                                           const results::Environment& cur) {
  std::vector<EnvironmentDifference> out;
  for (const auto& [f, of] : kEnvironmentFields) {
    std::string b = of(base), c = of(cur);
    if (b != c) out.push_back({f, b, c});
  }
  return out;
}

Fingerprint environment_fingerprint(const results::Run& r) {
  Fingerprint fp;
  fp.fields = nlohmann::json::object();
  for (const auto& [f, of] : kEnvironmentFields) fp.fields[f] = of(r.environment);
  for (const auto& [key, of] : kComparable) fp.fields[key] = of(r);
  fp.id = fmt::format("{:016x}", fnv1a(fp.fields.dump()));
  return fp;
}

GateResult evaluate(const Policy& p, const results::Run& cur, const std::string& cur_file,
                    const results::Run* base, const std::string& base_file,
                    const EvaluateOptions& options) {
  GateResult out;
  out.baseline_file = base_file;
  if (base && std::any_of(p.checks.begin(), p.checks.end(),
                          [](const Check& k) { return k.kind == "baseline"; })) {
    require_comparable(*base, base_file, cur, cur_file);
    // A merged file's trials were measured in its shards' environments: each one is compared
    // (results::environments), so a baseline is comparable only with every runner's figures.
    for (const auto& [bl, be] : results::environments(*base))
      for (const auto& [cl, ce] : results::environments(cur))
        for (auto d : environment_differences(*be, *ce)) {
          if (!bl.empty() || !cl.empty())
            d.field += fmt::format(" ({}{}{})", bl.empty() ? "" : "baseline " + bl,
                                   !bl.empty() && !cl.empty() ? ", " : "",
                                   cl.empty() ? "" : "this run's " + cl);
          out.other_environment.push_back(std::move(d));
        }
    out.other_environment_allowed = options.allow_other_environment;
  }
  for (const auto& k : p.checks) {
    CheckResult r;
    r.check = k;
    const auto* m = results::find_metric(k.metric);
    if (k.kind == "relative") {
      auto a = values_of(cur, cur_file, k.a, k);
      auto b = values_of(cur, cur_file, k.b, k);
      r.a_values = results::finite(a);
      r.b_values = results::finite(b);
      auto est = metrics::paired_ratio(a, b, p.resamples, p.seed, p.confidence);
      if (!est)
        throw Error(
            fmt::format("{}: check '{}': no repetition has both {}/{} and {}/{} for {}", cur_file,
                        k.name, k.a.mode, k.a.scenario, k.b.mode, k.b.scenario, k.metric),
            ExitCode::kBadInput);
      r.pairs = est->pairs;
      r.ratio = est->ratio;
      r.ci_low = est->ci_low;
      r.ci_high = est->ci_high;
      decide(r, k.min_ratio.value_or(NAN), k.max_ratio.value_or(NAN), p.min_pairs);
    } else {
      if (!base) {
        out.skipped.push_back(k.name);
        continue;
      }
      if (out.not_comparable()) {
        out.not_judged.push_back(k.name);
        continue;
      }
      r.a_values = results::finite(values_of(*base, base_file, k.cell, k));
      r.b_values = results::finite(values_of(cur, cur_file, k.cell, k));
      auto est = metrics::unpaired_ratio(r.a_values, r.b_values, p.resamples, p.seed, p.confidence);
      r.pairs = est.pairs;
      r.ratio = est.ratio;
      r.ci_low = est.ci_low;
      r.ci_high = est.ci_high;
      if (m->higher_is_better)
        decide(r, 1 - k.max_regression, NAN, p.min_pairs);
      else
        decide(r, NAN, 1 + k.max_regression, p.min_pairs);
    }
    r.mann_whitney_p = metrics::mann_whitney_p(r.a_values, r.b_values);
    r.resolution = resolution_of(r);
    out.checks.push_back(std::move(r));
  }
  return out;
}

namespace {
std::string describe(const Check& k) {
  if (k.kind == "relative")
    return fmt::format("{} {}: {}/{} / {}/{}", k.workload, k.metric, k.b.mode, k.b.scenario,
                       k.a.mode, k.a.scenario);
  return fmt::format("{} {}: {}/{} now / baseline", k.workload, k.metric, k.cell.mode,
                     k.cell.scenario);
}

// "kernel: 'A' (baseline) vs 'B' (this run); cpus: …"
std::string differences(const GateResult& r) {
  std::string s;
  for (const auto& d : r.other_environment)
    s += fmt::format("{}{}: '{}' (baseline) vs '{}' (this run)", s.empty() ? "" : "; ", d.field,
                     d.baseline, d.current);
  return s;
}

// Empty when the baseline's environment is this run's.
std::string environment_note(const GateResult& r) {
  if (r.other_environment.empty()) return "";
  if (r.other_environment_allowed)
    return fmt::format(
        "baseline {} is from another environment ({}); its checks were judged anyway because of "
        "--allow-other-environment: absolute figures differ up to 5x between machines of one kind",
        r.baseline_file, differences(r));
  return fmt::format(
      "baseline not comparable: {} was measured in another environment ({}); its checks were "
      "not judged (exit 3). Measure the baseline on this runner, or pass "
      "--allow-other-environment",
      r.baseline_file, differences(r));
}

std::string samples(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ", ") + fmt::format("{:.4g}", x);
  return "[" + s + "]";
}
}  // namespace

std::string CheckResult::resolution_text() const {
  if (pairs == 0) return "no pairs: nothing resolved";
  std::string s =
      fmt::format("this run resolves ±{:.1f} %; the bound is {}", resolution * 100, bound_text);
  if (verdict == Verdict::kInconclusive && pairs_to_resolve > pairs)
    s += fmt::format("; about {} pairs would resolve it", pairs_to_resolve);
  else if (verdict == Verdict::kInconclusive && pairs_to_resolve == 0)
    s += "; the ratio sits on the bound: more pairs alone may not resolve it";
  return s;
}

std::string render_text(const GateResult& r) {
  std::string s = fmt::format("{:<13} {:<44} {:>7} {:>19} {:>16} {:>6} {:>7}\n", "verdict", "check",
                              "ratio", "95% CI", "bound", "pairs", "U p");
  for (const auto& c : r.checks)
    s += fmt::format("{:<13} {:<44} {:>7.3f} {:>19} {:>16} {:>6} {:>7.3f}\n",
                     verdict_name(c.verdict), c.check.name.substr(0, 44), c.ratio,
                     fmt::format("[{:.3f}, {:.3f}]", c.ci_low, c.ci_high), c.bound_text, c.pairs,
                     c.mann_whitney_p);
  for (const auto& c : r.checks)
    s += fmt::format("resolution — {}: {}\n", c.check.name, c.resolution_text());
  for (const auto& c : r.checks)
    if (c.verdict != Verdict::kPass)
      s += fmt::format("\n{} — {}: {}\n  {}\n  a {}\n  b {}\n", verdict_name(c.verdict),
                       c.check.name, c.message, describe(c.check), samples(c.a_values),
                       samples(c.b_values));
  for (const auto& k : r.skipped)
    s += fmt::format("\nskipped — {}: a baseline check, and no --baseline run was given\n", k);
  for (const auto& k : r.not_judged)
    s += fmt::format("\nnot judged — {}: the baseline is not comparable\n", k);
  if (auto note = environment_note(r); !note.empty()) s += "\n" + note + "\n";
  s += fmt::format("\ngate: {}\n", r.not_comparable() && r.overall() != Verdict::kFail
                                       ? "not comparable"
                                       : verdict_name(r.overall()));
  return s;
}

std::string render_markdown(const GateResult& r, const std::string& title) {
  static const char* icon[] = {"✅ pass", "❌ **fail**", "⚠️ inconclusive"};
  std::string s = fmt::format("### {} — {}\n\n", title,
                              r.not_comparable() && r.overall() != Verdict::kFail
                                  ? "⚠️ baseline not comparable"
                                  : icon[static_cast<int>(r.overall())]);
  s += "| check | what | ratio | 95% CI | bound | pairs | Mann–Whitney p | verdict |\n";
  s += "|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : r.checks)
    s += fmt::format("| {} | {} | {:.3f} | [{:.3f}, {:.3f}] | {} | {} | {:.3f} | {} |\n",
                     c.check.name, describe(c.check), c.ratio, c.ci_low, c.ci_high, c.bound_text,
                     c.pairs, c.mann_whitney_p, icon[static_cast<int>(c.verdict)]);
  for (const auto& k : r.skipped)
    s += fmt::format("\n- *{}*: skipped (baseline check, no baseline run given)", k);
  for (const auto& k : r.not_judged)
    s += fmt::format("\n- *{}*: not judged (the baseline is not comparable)", k);
  if (!r.skipped.empty() || !r.not_judged.empty()) s += "\n";
  if (auto note = environment_note(r); !note.empty()) s += "\n> " + note + "\n";
  bool any = false;
  for (const auto& c : r.checks)
    if (c.verdict != Verdict::kPass) {
      if (!any) s += "\n";
      any = true;
      s += fmt::format("- **{}**: {}. a = {}, b = {}\n", c.check.name, c.message,
                       samples(c.a_values), samples(c.b_values));
    }
  s += "\n";
  for (const auto& c : r.checks)
    s += fmt::format("- resolution — {}: {}\n", c.check.name, c.resolution_text());
  return s;
}

std::string render_junit(const GateResult& r, const std::string& suite) {
  size_t failures = 0, skipped = 0;
  for (const auto& c : r.checks) {
    failures += c.verdict == Verdict::kFail;
    skipped += c.verdict == Verdict::kInconclusive;
  }
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += fmt::format("<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
                   xml_escape(suite), r.checks.size() + r.not_judged.size(), failures,
                   skipped + r.not_judged.size());
  const std::string note = environment_note(r);
  if (!note.empty())
    s += fmt::format(
        "  <properties><property name=\"baselineEnvironment\" value=\"{}\"/></properties>\n",
        xml_escape(note));
  for (const auto& k : r.not_judged)
    s += fmt::format(
        "  <testcase classname=\"hrbench.gate.baseline\" name=\"{}\">\n    <skipped "
        "message=\"{}\"/>\n  </testcase>\n",
        xml_escape(k), xml_escape(note));
  for (const auto& c : r.checks) {
    s += fmt::format("  <testcase classname=\"hrbench.gate.{}\" name=\"{}\">\n", c.check.kind,
                     xml_escape(c.check.name));
    const std::string detail = fmt::format(
        "{}; ratio {:.3f}, 95% CI [{:.3f}, {:.3f}], bound {}, {} pairs, Mann-Whitney p {:.3f}; "
        "{}; a {} b {}",
        describe(c.check), c.ratio, c.ci_low, c.ci_high, c.bound_text, c.pairs, c.mann_whitney_p,
        c.resolution_text(), samples(c.a_values), samples(c.b_values));
    if (c.verdict == Verdict::kFail)
      s += fmt::format("    <failure message=\"{}\">{}</failure>\n", xml_escape(c.message),
                       xml_escape(detail));
    else if (c.verdict == Verdict::kInconclusive)
      s += fmt::format("    <skipped message=\"{}\"/>\n", xml_escape(c.message + "; " + detail));
    else
      s += fmt::format("    <system-out>{}</system-out>\n", xml_escape(detail));
    s += "  </testcase>\n";
  }
  s += "</testsuite>\n";
  return s;
}

std::string compare_runs(const results::Run& a, const results::Run& b, bool md) {
  std::set<std::tuple<std::string, std::string, std::string>> cells;
  for (const auto& t : a.trials) cells.emplace(t.mode, t.scenario, t.workload);
  std::string s = md ? "| mode | scenario | workload | metric | A | B | B/A | U p |\n"
                       "|---|---|---|---|---|---|---|---|\n"
                     : fmt::format("{:<7} {:<19} {:<11} {:<22} {:>10} {:>10} {:>7} {:>6}\n", "mode",
                                   "scenario", "workload", "metric", "A", "B", "B/A", "U p");
  for (const auto& [mode, scen, wl] : cells)
    for (const auto& m : results::metric_catalogue()) {
      auto va = results::finite(results::series(a, mode, scen, wl, m));
      auto vb = results::finite(results::series(b, mode, scen, wl, m));
      if (va.empty() || vb.empty()) continue;
      double ma = metrics::median(va), mb = metrics::median(vb);
      double p = metrics::mann_whitney_p(va, vb);
      std::string ratio = ma != 0 ? fmt::format("{:.3f}", mb / ma) : "-";
      s += md ? fmt::format("| {} | {} | {} | {} | {:.4g} | {:.4g} | {} | {:.3f} |\n", mode, scen,
                            wl, m.name, ma, mb, ratio, p)
              : fmt::format("{:<7} {:<19} {:<11} {:<22} {:>10.4g} {:>10.4g} {:>7} {:>6.3f}\n", mode,
                            scen, wl, m.name, ma, mb, ratio, p);
    }
  return s;
}

Policy only_workloads(Policy p, const std::vector<std::string>& workloads) {
  std::erase_if(p.checks, [&](const Check& k) {
    return std::find(workloads.begin(), workloads.end(), k.workload) == workloads.end();
  });
  return p;
}

}  // namespace hrb::gate
