#include "results/results.hpp"

#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.hpp"
#include "core/ipv6.hpp"
#include "core/process.hpp"
#include "metrics/stats.hpp"

namespace hrb::results {

const std::vector<Metric>& metric_catalogue() {
  static const std::vector<Metric> m{
      {"transactionsPerSecond",
       "1/s",
       true,
       {"tcp_rr", "tcp_crr", "udp_rr"},
       "/transactionsPerSecond"},
      {"latencyP50", "us", false, {"tcp_rr", "tcp_crr", "udp_rr"}, "/latencyUs/p50"},
      {"latencyP90", "us", false, {"tcp_rr", "tcp_crr", "udp_rr"}, "/latencyUs/p90"},
      {"latencyP99", "us", false, {"tcp_rr", "tcp_crr", "udp_rr"}, "/latencyUs/p99"},
      {"latencyP999", "us", false, {"tcp_rr", "tcp_crr", "udp_rr"}, "/latencyUs/p999"},
      {"cpuUsPerTransaction", "us", false, {"tcp_rr", "tcp_crr", "udp_rr"}, "/cpuUsPerTransaction"},
      {"gbitPerSecond", "Gbit/s", true, {"tcp_stream", "udp_stream"}, "/gbitPerSecond"},
      {"cpuSecondsPerGB", "s/GB", false, {"tcp_stream", "udp_stream"}, "/cpuSecondsPerGB"},
      {"udpLossRatio", "1", false, {"udp_stream"}, "/udpLossRatio"},
      {"tcpRetransmits", "1", false, {"tcp_stream"}, "/tcpRetransmits"},
      {"packetsPerSecond", "1/s", true, {"pps"}, "/packetsPerSecond"},
      {"cpuNsPerPacket", "ns", false, {"pps"}, "/cpuNsPerPacket"},
  };
  return m;
}

const Metric* find_metric(const std::string& name) {
  for (const auto& m : metric_catalogue())
    if (m.name == name) return &m;
  return nullptr;
}

std::optional<double> metric_value(const Trial& trial, const Metric& m) {
  if (!trial.metrics) return std::nullopt;
  nlohmann::json::json_pointer p(m.pointer);
  if (!trial.metrics->contains(p)) return std::nullopt;
  const auto& v = (*trial.metrics)[p];
  if (!v.is_number()) return std::nullopt;
  double d = v.get<double>();
  return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}

namespace {
std::string first_line_of(const std::vector<std::string>& argv) {
  if (find_program(argv[0]).empty()) return "";
  auto r = run_cmd(argv, {.check = false});
  std::string s = r.out.empty() ? r.err : r.out;
  return s.substr(0, s.find('\n'));
}

std::string file_value(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  for (std::string l; std::getline(f, l);)
    if (l.rfind(key, 0) == 0) {
      std::string v = l.substr(l.find_first_of(":=") + 1);
      v.erase(0, v.find_first_not_of(" \t\""));
      while (!v.empty() && (v.back() == '"' || v.back() == ' ')) v.pop_back();
      return v;
    }
  return "";
}

// "kvm", "qemu" (TCG), "microsoft", … or "none"; the same for containers. systemd-detect-virt
// prints "none" (exit 1) when there is none; without it, the CPU's hypervisor flag says whether
// there is a hypervisor, but not which.
std::string detect_virt(const char* what) {
  if (!find_program("systemd-detect-virt").empty()) {
    std::string v = first_line_of({"systemd-detect-virt", what});
    if (!v.empty()) return v;
  }
  if (std::string(what) == "--container") return "unknown";
  const std::string flags = " " + file_value("/proc/cpuinfo", "flags") + " ";
  return flags.find(" hypervisor ") != std::string::npos ? "hypervisor" : "none";
}
}  // namespace

const char* hrbench_version() { return HRB_VERSION; }

std::optional<std::string> matrix_virtualization(const std::string& cmdline) {
  std::istringstream words(cmdline);
  for (std::string w; words >> w;)
    if (w == "hrbench.virt=tcg" || w == "hrbench.virt=kvm") return w.substr(w.find('=') + 1);
  return std::nullopt;
}

Environment environment() {
  utsname u{};
  uname(&u);
  Environment e;
  e.hrbench_version = hrbench_version();
  std::string cmdline;
  std::getline(std::ifstream("/proc/cmdline"), cmdline);
  const auto matrix = matrix_virtualization(cmdline);
  e.virtualization = matrix ? *matrix : detect_virt("--vm");
  e.container = detect_virt("--container");
  e.hostname = u.nodename;
  e.kernel = std::string(u.sysname) + " " + u.release;
  e.arch = u.machine;
  e.distro = file_value("/etc/os-release", "PRETTY_NAME");
  e.cpu_model = file_value("/proc/cpuinfo", "model name");
  e.cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string mem = file_value("/proc/meminfo", "MemTotal");
  e.memory_kib = std::stoull("0" + mem.substr(0, mem.find(' ')));
  e.tools.libbpf =
      std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version());
  e.tools.clang = first_line_of({"clang", "--version"});
  e.tools.iptables = first_line_of({"iptables", "--version"});
  e.tools.iproute2 = first_line_of({"ip", "-V"});
  e.tools.compiler = __VERSION__;
  return e;
}

size_t sanitize(nlohmann::json& j) {
  size_t n = 0;
  if (j.is_number_float() && !std::isfinite(j.get<double>())) {
    j = nullptr;
    return 1;
  }
  if (j.is_structured())
    for (auto& v : j) n += sanitize(v);
  return n;
}

void write_json(const std::string& path, const nlohmann::json& doc) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << doc.dump(1) << "\n";
    if (!f) throw Error("cannot write " + tmp);
  }
  fs::rename(tmp, path);
}

namespace {
// Deeper documents are rejected while parsing: dump, == and the readers recurse per level.
constexpr int kMaxDepth = 64;
}  // namespace

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  std::ifstream f(path);
  if (!f) throw Error("cannot read " + what + " " + path, ExitCode::kBadInput);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(f, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > kMaxDepth)
        throw Error(fmt::format("{}: nested deeper than {} levels", path, kMaxDepth),
                    ExitCode::kBadInput);
      return true;
    });
  } catch (const nlohmann::json::exception& e) {  // syntax, and numbers out of range (1e400)
    throw Error(path + ": not JSON: " + e.what(), ExitCode::kBadInput);
  }
  return doc;
}

Run read_results(const std::string& path) {
  return from_json(read_json_file(path, "results file"), path);
}

void write_results(const std::string& path, const Run& run) {
  nlohmann::json doc = to_json(run);
  sanitize(doc);
  write_json(path, doc);
}

std::vector<double> series(const Run& doc, const std::string& mode, const std::string& scenario,
                           const std::string& workload, const Metric& metric,
                           std::optional<int> scan_value) {
  std::vector<double> v(std::max(1, doc.config.repetitions.value_or(1)), NAN);
  for (const auto& t : doc.trials) {
    if (!t.is_valid() || t.mode != mode || t.scenario != scenario || t.workload != workload)
      continue;
    if (scan_value && (!t.scan || t.scan->value != *scan_value)) continue;
    auto x = metric_value(t, metric);
    size_t rep = t.rep();
    if (!x) continue;
    if (rep >= v.size()) v.resize(rep + 1, NAN);
    v[rep] = *x;
  }
  return v;
}

std::vector<double> finite(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v)
    if (std::isfinite(x)) out.push_back(x);
  return out;
}

nlohmann::json to_gbench(const Run& doc) {
  // Google Benchmark's JSON reporter format: context + benchmarks[]; one entry per valid trial
  // and metric, named mode/scenario/workload/metric, repetitions as aggregate-free iterations.
  const auto& env = doc.environment;
  nlohmann::json out{{"context",
                      {{"date", doc.started_at.value_or("")},
                       {"host_name", env.hostname.value_or("")},
                       {"executable", "hrbench run"},
                       {"num_cpus", env.cpus.value_or(0)},
                       {"mhz_per_cpu", 0},
                       {"cpu_scaling_enabled", false},
                       {"caches", nlohmann::json::array()},
                       {"load_avg", nlohmann::json::array()},
                       {"library_build_type", "release"},
                       {"hrbench_run_id", doc.run_id.value_or("")},
                       {"kernel", env.kernel.value_or("")}}},
                     {"benchmarks", nlohmann::json::array()}};
  for (const auto& t : doc.trials) {
    if (!t.is_valid()) continue;
    for (const auto& m : metric_catalogue()) {
      auto v = metric_value(t, m);
      if (!v) continue;
      // An IPv6 trial's workload carries its family (tcp_rr:ipv6): IPv4 names are as before.
      const std::string workload = t.fam() == "ipv4" ? t.workload : t.workload + ":" + t.fam();
      std::string name = t.mode + "/" + t.scenario + "/" + workload + "/" + m.name;
      // compare.py compares real_time/cpu_time, lower is better: a higher-is-better rate is
      // exported as nanoseconds per unit (1e9 / rate), a lower-is-better figure as itself.
      double time = m.higher_is_better ? (*v > 0 ? 1e9 / *v : 0) : *v;
      std::string unit = m.higher_is_better ? "ns"
                         : m.unit == "us"   ? "us"
                         : m.unit == "s/GB" ? "s"
                                            : "ns";
      nlohmann::json b{{"name", name},
                       {"family_index", 0},
                       {"per_family_instance_index", 0},
                       {"run_name", name},
                       {"run_type", "iteration"},
                       {"repetitions", doc.config.repetitions.value_or(1)},
                       {"repetition_index", t.rep()},
                       {"threads", 1},
                       {"iterations", 1},
                       {"real_time", time},
                       {"cpu_time", time},
                       {"time_unit", unit},
                       {m.name, *v}};
      out["benchmarks"].push_back(b);
    }
  }
  return out;
}

std::string to_csv(const Run& doc) {
  // family: the last column, so the columns before it are where they always were.
  std::string s = "run_id,mode,scenario,workload,repetition,valid,metric,unit,value,family\n";
  for (const auto& t : doc.trials)
    for (const auto& m : metric_catalogue()) {
      auto v = metric_value(t, m);
      if (!v) continue;
      s += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", doc.run_id.value_or(""), t.mode,
                       t.scenario, t.workload, t.rep(), t.is_valid() ? 1 : 0, m.name, m.unit, *v,
                       t.fam());
    }
  return s;
}

std::vector<std::string> families(const Run& doc) {
  std::vector<std::string> out;
  auto add = [&](const std::string& f) {
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  };
  if (doc.config.families)
    for (const auto& f : *doc.config.families) add(f);
  for (const auto& t : doc.trials) add(t.fam());
  if (out.empty()) out.push_back("ipv4");
  return out;
}

Run only_family(const Run& doc, const std::string& family) {
  Run out = doc;
  out.trials.clear();
  for (const auto& t : doc.trials)
    if (t.fam() == family) out.trials.push_back(t);
  if (doc.config.families) out.config.families = std::vector<std::string>{family};
  return out;
}

Run select_family(const Run& doc, const std::string& family, const std::string& label) {
  if (!parse_family(family))
    throw Error("--family: '" + family + "' (expected ipv4 or ipv6)", ExitCode::kUsage);
  Run out = only_family(doc, family);
  if (!doc.trials.empty() && out.trials.empty()) {
    std::string have;
    for (const auto& f : families(doc)) have += (have.empty() ? "" : ", ") + f;
    throw Error(fmt::format("{}: no {} trials (its families: {}); choose one with --family", label,
                            family, have),
                ExitCode::kBadInput);
  }
  return out;
}

namespace {
std::string summary_table_of(const Run& doc);
std::vector<ShortCell> short_cells_of(const Run& doc);
}  // namespace

std::string summary_table(const Run& doc) {
  const auto fams = families(doc);
  if (fams.size() == 1) return summary_table_of(doc);
  std::string out;
  for (const auto& f : fams)
    out +=
        (out.empty() ? "" : "\n") + ("family " + f + ":\n") + summary_table_of(only_family(doc, f));
  return out;
}

std::vector<ShortCell> short_cells(const Run& doc) {
  const auto fams = families(doc);
  std::vector<ShortCell> out;
  for (const auto& f : fams) {
    auto cells = short_cells_of(fams.size() == 1 ? doc : only_family(doc, f));
    for (auto& c : cells) c.family = f;
    out.insert(out.end(), cells.begin(), cells.end());
  }
  return out;
}

namespace {
std::string summary_table_of(const Run& doc) {
  auto num = [](double x) {
    if (!std::isfinite(x)) return std::string("-");
    if (std::abs(x) >= 1000) return fmt::format("{:.0f}", x);
    if (std::abs(x) >= 10) return fmt::format("{:.1f}", x);
    return fmt::format("{:.3g}", x);
  };
  auto med = [](const std::vector<double>& xs) {
    auto f = finite(xs);
    return f.empty() ? NAN : metrics::median(f);
  };
  std::set<std::string> scenarios, workloads;
  bool ladder = false;  // bpf-lb measured too: its column and its ratio to legacy
  // Modes of another build (KIND@NAME, KIND@DIR): a column each, and KIND's ratio to it.
  std::vector<std::string> builds;
  for (const auto& t : doc.trials) {
    scenarios.insert(t.scenario);
    workloads.insert(t.workload);
    ladder = ladder || t.mode == "bpf-lb";
    if (t.mode.find('@') != std::string::npos &&
        std::find(builds.begin(), builds.end(), t.mode) == builds.end())
      builds.push_back(t.mode);
  }
  auto kind_of = [](const std::string& b) { return b.substr(0, b.find('@')); };
  auto ratio_of = [](const std::vector<double>& base, const std::vector<double>& x) {
    std::string ratio = "-";
    if (auto r = metrics::paired_ratio(base, x))
      ratio = r->pairs > 1 ? fmt::format("{:.3f} [{:.3f}, {:.3f}]", r->ratio, r->ci_low, r->ci_high)
                           : fmt::format("{:.3f} (1 pair)", r->ratio);
    return ratio;
  };
  std::string out =
      fmt::format("{:<20} {:<11} {:<30} {:>10} ", "scenario", "workload", "metric", "legacy");
  if (ladder) out += fmt::format("{:>10} ", "bpf-lb");
  out += fmt::format("{:>10} {:>10} ", "ebpf", "ceiling");
  if (ladder) out += fmt::format("{:>22} ", "bpf-lb/legacy [95% CI]");
  out += fmt::format("{:>22}", "ebpf/legacy [95% CI]");
  for (const auto& b : builds)
    out += fmt::format(" {:>12} {:>24}", b, kind_of(b) + "/" + b + " [95% CI]");
  out += "\n";
  for (const auto& scen : scenarios) {
    if (scen == "node-node") continue;
    for (const auto& wl : workloads)
      for (const auto& m : metric_catalogue()) {
        if (std::find(m.workloads.begin(), m.workloads.end(), wl) == m.workloads.end()) continue;
        auto legacy = series(doc, "legacy", scen, wl, m);
        auto bpflb = series(doc, "bpf-lb", scen, wl, m);
        auto ebpf = series(doc, "ebpf", scen, wl, m);
        auto ceiling = series(doc, "none", "node-node", wl, m);
        std::vector<std::vector<double>> other;
        bool any = false;
        for (const auto& b : builds) {
          other.push_back(series(doc, b, scen, wl, m));
          any = any || !finite(other.back()).empty();
        }
        if (finite(legacy).empty() && finite(ebpf).empty() && finite(bpflb).empty() && !any)
          continue;
        out += fmt::format("{:<20} {:<11} {:<30} {:>10} ", scen, wl, m.name + " (" + m.unit + ")",
                           num(med(legacy)));
        if (ladder) out += fmt::format("{:>10} ", num(med(bpflb)));
        out += fmt::format("{:>10} {:>10} ", num(med(ebpf)), num(med(ceiling)));
        if (ladder) out += fmt::format("{:>22} ", ratio_of(legacy, bpflb));
        out += fmt::format("{:>22}", ratio_of(legacy, ebpf));
        for (size_t i = 0; i < builds.size(); ++i)
          out += fmt::format(" {:>12} {:>24}", num(med(other[i])),
                             ratio_of(other[i], series(doc, kind_of(builds[i]), scen, wl, m)));
        out += "\n";
      }
  }
  return out;
}

}  // namespace

std::string ShortCell::line() const {
  std::string s = mode + " " + scenario + " " + workload;
  if (family != "ipv4") s += " " + family;
  if (scan_value) s += fmt::format(" (scan value {})", *scan_value);
  s += fmt::format(": {} of {} valid", valid, needed);
  if (!reasons.empty()) {
    s += " (";
    for (size_t i = 0; i < reasons.size(); ++i) s += (i ? "; " : "") + reasons[i];
    s += ")";
  }
  return s;
}

int round_index(int scan_index, int repetition, int repetitions) {
  return scan_index * std::max(1, repetitions) + repetition;
}

int shard_of_round(int round, int count) { return round % std::max(1, count) + 1; }

std::optional<int> round_of(const Config& config, const Trial& t) {
  int scan_index = 0;
  if (const Scan* sc = config.scan()) {
    if (!t.scan) return std::nullopt;
    auto it = std::find(sc->values.begin(), sc->values.end(), t.scan->value);
    if (it == sc->values.end()) return std::nullopt;
    scan_index = static_cast<int>(it - sc->values.begin());
  }
  return round_index(scan_index, t.rep(), config.repetitions.value_or(1));
}

std::vector<std::pair<std::string, const Environment*>> environments(const Run& doc) {
  std::vector<std::pair<std::string, const Environment*>> out;
  for (const auto& s : doc.shards)
    out.push_back({fmt::format("shard {}", s.index), &s.environment});
  if (out.empty()) out.push_back({"", &doc.environment});
  return out;
}

namespace {
std::vector<ShortCell> short_cells_of(const Run& doc) {
  using Key = std::tuple<std::string, std::string, std::string, std::optional<int>>;
  const int repetitions = std::max(1, doc.config.repetitions.value_or(1));
  // The repetitions a cell of scan value `value` needs: all of them, or in a shard's file those
  // of the rounds the shard measures.
  auto needed_of = [&](std::optional<int> value) {
    const auto& shard = doc.config.shard;
    if (!shard) return repetitions;
    std::vector<int> indices{0};
    if (const Scan* sc = doc.config.scan()) {
      indices.clear();
      for (size_t i = 0; i < sc->values.size(); ++i)
        if (value && sc->values[i] == *value) indices.push_back(static_cast<int>(i));
    }
    std::set<int> reps;
    for (int i : indices)
      for (int rep = 0; rep < repetitions; ++rep)
        if (shard_of_round(round_index(i, rep, repetitions), shard->count) == shard->index)
          reps.insert(rep);
    return static_cast<int>(reps.size());
  };
  std::vector<Key> keys;  // in a stable order: the config's, then the trials'
  auto add = [&](Key k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
  };
  const auto& cfg = doc.config;
  if (cfg.modes && cfg.scenarios && cfg.workloads) {
    std::vector<std::optional<int>> values{std::nullopt};
    if (const Scan* sc = cfg.scan()) values.assign(sc->values.begin(), sc->values.end());
    std::vector<std::string> modes = *cfg.modes;
    const bool ceiling = std::find(cfg.scenarios->begin(), cfg.scenarios->end(), "node-node") !=
                         cfg.scenarios->end();
    if (ceiling) modes.insert(modes.begin(), "none");
    for (const auto& v : values)
      for (const auto& m : modes)
        for (const auto& sc : *cfg.scenarios) {
          if ((m == "none") != (sc == "node-node")) continue;
          for (const auto& w : *cfg.workloads)
            if (w != "pps" || sc == "pod-pod-cross-node") add({m, sc, w, v});
        }
  }
  for (const auto& t : doc.trials)
    add({t.mode, t.scenario, t.workload,
         t.scan ? std::optional<int>(t.scan->value) : std::optional<int>()});
  std::vector<ShortCell> out;
  for (const auto& [mode, scenario, workload, value] : keys) {
    std::set<int> valid_reps;
    std::vector<std::pair<std::string, int>> counts;  // reason, count (first seen first)
    double max_steal = -1;
    std::string steal_limit;
    int attempts = 0;
    for (const auto& t : doc.trials) {
      if (t.mode != mode || t.scenario != scenario || t.workload != workload) continue;
      if ((t.scan ? std::optional<int>(t.scan->value) : std::optional<int>()) != value) continue;
      ++attempts;
      if (t.is_valid()) {
        valid_reps.insert(t.rep());
        continue;
      }
      for (const auto& f : t.flags.value_or(std::vector<std::string>{})) {
        std::string key = f;
        double pct = 0;
        char limit[32] = {0};
        if (std::sscanf(f.c_str(), "steal %lf%% > %31s", &pct, limit) == 2) {
          key = "steal";
          max_steal = std::max(max_steal, pct);
          steal_limit = limit;
        } else if (f.starts_with("errors:")) {
          key = "errors";
        }
        auto it = std::find_if(counts.begin(), counts.end(),
                               [&](const auto& c) { return c.first == key; });
        if (it == counts.end())
          counts.push_back({key, 1});
        else
          ++it->second;
      }
    }
    const int valid = static_cast<int>(valid_reps.size());
    const int needed = needed_of(value);
    if (valid >= needed) continue;
    ShortCell c{mode, scenario, workload, value, valid, needed, {}, "ipv4"};
    for (const auto& [key, n] : counts) {
      std::string r =
          key == "steal" ? fmt::format("steal up to {:.0f}% > {}", max_steal, steal_limit) : key;
      c.reasons.push_back(n > 1 ? fmt::format("{} ×{}", r, n) : r);
    }
    if (!attempts) c.reasons.push_back("not measured");
    if (doc.budget_exhausted.value_or(false))
      c.reasons.push_back(cfg.budget_seconds
                              ? fmt::format("budget of {:.0f} s ran out", *cfg.budget_seconds)
                          : doc.shards.empty() ? std::string("budget ran out")
                                               : std::string("a shard's budget ran out"));
    else if (doc.interrupted.value_or(false))
      c.reasons.push_back("interrupted");
    else if (attempts && cfg.max_retries)
      c.reasons.push_back(fmt::format("re-runs used up (--max-retries {})", *cfg.max_retries));
    out.push_back(std::move(c));
  }
  return out;
}
}  // namespace

std::string short_cells_text(const Run& doc) {
  const auto cells = short_cells(doc);
  if (cells.empty()) return "";
  std::string s = fmt::format("{} cell(s) short of valid repetitions:\n", cells.size());
  for (const auto& c : cells) s += "  " + c.line() + "\n";
  return s;
}

}  // namespace hrb::results
