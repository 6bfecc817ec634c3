#include "results/results.hpp"

#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"
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

std::optional<double> metric_value(const nlohmann::json& trial, const Metric& m) {
  if (!trial.contains("metrics")) return std::nullopt;
  nlohmann::json::json_pointer p(m.pointer);
  if (!trial["metrics"].contains(p)) return std::nullopt;
  const auto& v = trial["metrics"][p];
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

nlohmann::json environment() {
  utsname u{};
  uname(&u);
  return {
      {"hrbenchVersion", hrbench_version()},
      {"virtualization", detect_virt("--vm")},
      {"container", detect_virt("--container")},
      {"hostname", u.nodename},
      {"kernel", std::string(u.sysname) + " " + u.release},
      {"arch", u.machine},
      {"distro", file_value("/etc/os-release", "PRETTY_NAME")},
      {"cpuModel", file_value("/proc/cpuinfo", "model name")},
      {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
      {"memoryKiB",
       std::stoull("0" + file_value("/proc/meminfo", "MemTotal")
                             .substr(0, file_value("/proc/meminfo", "MemTotal").find(' ')))},
      {"tools",
       {{"libbpf",
         std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version())},
        {"clang", first_line_of({"clang", "--version"})},
        {"iptables", first_line_of({"iptables", "--version"})},
        {"iproute2", first_line_of({"ip", "-V"})},
        {"compiler", __VERSION__}}},
  };
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
// series() sizes a vector by the repetition count and index.
constexpr int64_t kMaxRepetitions = 100000;

// What the readers of a results document (summary, exports, compare, gate, report) index without
// further checks, checked once here (found by fuzz/fuzz_results.cpp): the objects they open
// exist (absent ones become empty), and each field they read has the type they read it as.
void check_shape(nlohmann::json& doc, const std::string& path) {
  using nlohmann::json;
  auto bad = [&](const std::string& key, const std::string& what) {
    throw Error(fmt::format("{}: '{}': {}", path, key, what), ExitCode::kBadInput);
  };
  auto object = [&](json& parent, const char* key, const std::string& name) -> json& {
    json& v = parent[key];
    if (v.is_null()) v = json::object();
    if (!v.is_object()) bad(name, "expected an object");
    return v;
  };
  auto strings = [&](const json& o, std::initializer_list<const char*> keys,
                     const std::string& prefix) {
    for (const char* k : keys)
      if (o.contains(k) && !o[k].is_string()) bad(prefix + k, "expected a string");
  };
  auto integer = [&](const json& v, const std::string& name, int64_t lo, int64_t hi) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)) ||
        v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      bad(name, fmt::format("expected a whole number from {} to {}", lo, hi));
  };
  strings(doc, {"runId", "startedAt", "gitRevision", "command"}, "");
  if (doc.contains("complete") && !doc["complete"].is_boolean())
    bad("complete", "expected true or false");
  strings(object(doc, "topology", "topology"), {"name", "file"}, "topology.");
  json& env = object(doc, "environment", "environment");
  strings(
      env,
      {"hostname", "kernel", "distro", "cpuModel", "virtualization", "container", "hrbenchVersion"},
      "environment.");
  if (env.contains("cpus")) integer(env["cpus"], "environment.cpus", 0, 1 << 20);
  strings(object(env, "tools", "environment.tools"), {"libbpf", "clang", "iptables"},
          "environment.tools.");
  json& cfg = object(doc, "config", "config");
  if (cfg.contains("repetitions"))
    integer(cfg["repetitions"], "config.repetitions", 0, kMaxRepetitions);
  for (const char* k : {"durationSeconds", "warmupSeconds"})
    if (cfg.contains(k) && !cfg[k].is_number())
      bad(std::string("config.") + k, "expected a number");
  if (cfg.contains("pinnedCpus")) {
    const json& p = cfg["pinnedCpus"];
    if (!p.is_array() || p.size() != 2) bad("config.pinnedCpus", "expected [client, server]");
    for (const auto& c : p) integer(c, "config.pinnedCpus", 0, 1 << 20);
  }
  if (cfg.contains("scan") && !cfg["scan"].is_null()) {
    const json& sc = cfg["scan"];
    if (!sc.is_object() || !sc.contains("param") || !sc["param"].is_string() ||
        !sc.contains("values") || !sc["values"].is_array())
      bad("config.scan", "expected {param, values}");
    for (const auto& v : sc["values"]) integer(v, "config.scan.values", INT32_MIN, INT32_MAX);
  }
  if (!doc.contains("trials") || !doc["trials"].is_array()) bad("trials", "expected a list");
  for (size_t i = 0; i < doc["trials"].size(); ++i) {
    const json& t = doc["trials"][i];
    const std::string at = fmt::format("trials[{}]", i);
    if (!t.is_object()) bad(at, "expected an object");
    for (const char* k : {"mode", "scenario", "workload"})
      if (!t.contains(k) || !t[k].is_string()) bad(at + "." + k, "expected a string");
    if (t.contains("valid") && !t["valid"].is_boolean())
      bad(at + ".valid", "expected true or false");
    if (t.contains("repetition"))
      integer(t["repetition"], at + ".repetition", 0, kMaxRepetitions - 1);
    if (t.contains("metrics") && !t["metrics"].is_object())
      bad(at + ".metrics", "expected an object");
    if (t.contains("scan") && (!t["scan"].is_object() || !t["scan"].contains("value")))
      bad(at + ".scan", "expected {param, value}");
  }
}
}  // namespace

nlohmann::json read_results(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot read results file " + path, ExitCode::kBadInput);
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
  if (!doc.is_object() || doc["schema"] != "hostroute-bench/results" ||
      !doc.contains("schemaVersion"))
    throw Error(path + ": not a hostroute-bench results file (no schema/schemaVersion)",
                ExitCode::kBadInput);
  if (doc["schemaVersion"] != kSchemaVersion)
    throw Error(path + ": schemaVersion " + doc["schemaVersion"].dump() + ", this build reads " +
                    std::to_string(kSchemaVersion),
                ExitCode::kBadInput);
  check_shape(doc, path);
  return doc;
}

std::vector<double> series(const nlohmann::json& doc, const std::string& mode,
                           const std::string& scenario, const std::string& workload,
                           const Metric& metric, std::optional<int> scan_value) {
  std::vector<double> v(std::max(1, doc["config"].value("repetitions", 1)), NAN);
  for (const auto& t : doc["trials"]) {
    if (!t.value("valid", false) || t["mode"] != mode || t["scenario"] != scenario ||
        t["workload"] != workload)
      continue;
    if (scan_value && (!t.contains("scan") || t["scan"]["value"] != *scan_value)) continue;
    auto x = metric_value(t, metric);
    size_t rep = t.value("repetition", 0);
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

nlohmann::json to_gbench(const nlohmann::json& doc) {
  // Google Benchmark's JSON reporter format: context + benchmarks[]; one entry per valid trial
  // and metric, named mode/scenario/workload/metric, repetitions as aggregate-free iterations.
  const auto& env = doc["environment"];
  nlohmann::json out{{"context",
                      {{"date", doc.value("startedAt", "")},
                       {"host_name", env.value("hostname", "")},
                       {"executable", "hrbench run"},
                       {"num_cpus", env.value("cpus", 0)},
                       {"mhz_per_cpu", 0},
                       {"cpu_scaling_enabled", false},
                       {"caches", nlohmann::json::array()},
                       {"load_avg", nlohmann::json::array()},
                       {"library_build_type", "release"},
                       {"hrbench_run_id", doc.value("runId", "")},
                       {"kernel", env.value("kernel", "")}}},
                     {"benchmarks", nlohmann::json::array()}};
  for (const auto& t : doc["trials"]) {
    if (!t.value("valid", false)) continue;
    for (const auto& m : metric_catalogue()) {
      auto v = metric_value(t, m);
      if (!v) continue;
      std::string name = t["mode"].get<std::string>() + "/" + t["scenario"].get<std::string>() +
                         "/" + t["workload"].get<std::string>() + "/" + m.name;
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
                       {"repetitions", doc["config"].value("repetitions", 1)},
                       {"repetition_index", t.value("repetition", 0)},
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

std::string to_csv(const nlohmann::json& doc) {
  std::string s = "run_id,mode,scenario,workload,repetition,valid,metric,unit,value\n";
  for (const auto& t : doc["trials"])
    for (const auto& m : metric_catalogue()) {
      auto v = metric_value(t, m);
      if (!v) continue;
      s += fmt::format("{},{},{},{},{},{},{},{},{}\n", doc.value("runId", ""),
                       t["mode"].get<std::string>(), t["scenario"].get<std::string>(),
                       t["workload"].get<std::string>(), t.value("repetition", 0),
                       t.value("valid", false) ? 1 : 0, m.name, m.unit, *v);
    }
  return s;
}

std::string summary_table(const nlohmann::json& doc) {
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
  for (const auto& t : doc["trials"]) {
    scenarios.insert(t["scenario"].get<std::string>());
    workloads.insert(t["workload"].get<std::string>());
    ladder = ladder || t["mode"] == "bpf-lb";
    const std::string mode = t["mode"];
    if (mode.find('@') != std::string::npos &&
        std::find(builds.begin(), builds.end(), mode) == builds.end())
      builds.push_back(mode);
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

}  // namespace hrb::results
