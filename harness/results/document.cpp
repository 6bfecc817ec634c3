#include "results/document.hpp"

#include <fmt/format.h>

#include <climits>

#include "core/error.hpp"
#include "core/ipv6.hpp"

namespace hrb::results {

using nlohmann::json;

namespace {

// series() sizes a vector by the repetition count and index.
constexpr int64_t kMaxRepetitions = 100000;

// Reads one object of the document: each field taken by name, its type checked (Error(kBadInput)
// "<label>: '<path>': expected …"); the keys not taken are the object's `other`.
class Reader {
 public:
  Reader(const json& o, std::string label, std::string path)
      : o_(o), label_(std::move(label)), path_(std::move(path)), rest_(json::object()) {
    if (!o_.is_object()) bad("", "expected an object");
    rest_ = o_;
  }

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    throw Error(fmt::format("{}: '{}': {}", label_, name(key), what), ExitCode::kBadInput);
  }
  std::string name(const std::string& key) const {
    if (key.empty()) return path_;
    return path_.empty() ? key : path_ + "." + key;
  }
  // The value of `key`, or nullptr when absent; marks the key as known.
  const json* find(const char* key) {
    auto it = o_.find(key);
    if (it == o_.end()) return nullptr;
    rest_.erase(key);
    return &*it;
  }

  void str(const char* key, std::optional<std::string>& out) {
    if (const json* v = find(key)) out = as_string(*v, key);
  }
  std::string required_str(const char* key) {
    const json* v = find(key);
    if (!v) bad(key, "expected a string");
    return as_string(*v, key);
  }
  void boolean(const char* key, std::optional<bool>& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) bad(key, "expected true or false");
      out = v->get<bool>();
    }
  }
  template <class T>
  void integer(const char* key, std::optional<T>& out, int64_t lo, int64_t hi) {
    if (const json* v = find(key)) out = static_cast<T>(whole(*v, key, lo, hi));
  }
  void unsigned_integer(const char* key, std::optional<uint64_t>& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0))
        bad(key, "expected a whole number from 0");
      out = v->get<uint64_t>();
    }
  }
  void number(const char* key, std::optional<double>& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) bad(key, "expected a number");
      out = v->get<double>();
    }
  }
  void strings(const char* key, std::optional<std::vector<std::string>>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) bad(key, "expected a list of strings");
      std::vector<std::string> xs;
      for (const auto& x : *v) xs.push_back(as_string(x, key));
      out = std::move(xs);
    }
  }
  void raw(const char* key, std::optional<json>& out) {
    if (const json* v = find(key)) out = *v;
  }
  int64_t whole(const json& v, const std::string& key, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)) ||
        v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      bad(key, fmt::format("expected a whole number from {} to {}", lo, hi));
    return v.get<int64_t>();
  }
  json rest() const { return rest_; }

 private:
  std::string as_string(const json& v, const std::string& key) const {
    if (!v.is_string()) bad(key, "expected a string");
    return v.get<std::string>();
  }

  const json& o_;
  std::string label_, path_;
  json rest_;
};

// An object field that read_results always makes present: absent or null read as {}.
json object_or_empty(const json* v) { return !v || v->is_null() ? json::object() : *v; }

template <class T>
void put(json& o, const char* key, const std::optional<T>& v) {
  if (v) o[key] = *v;
}

// `other` first: the known keys win over a stray duplicate.
json with_other(const json& other) { return other.is_object() ? other : json::object(); }

Tools tools_from(const json& j, const std::string& label, const std::string& path) {
  Reader r(j, label, path);
  Tools t;
  r.str("libbpf", t.libbpf);
  r.str("clang", t.clang);
  r.str("iptables", t.iptables);
  r.str("iproute2", t.iproute2);
  r.str("compiler", t.compiler);
  t.other = r.rest();
  return t;
}

json to_json(const Tools& t) {
  json o = with_other(t.other);
  put(o, "libbpf", t.libbpf);
  put(o, "clang", t.clang);
  put(o, "iptables", t.iptables);
  put(o, "iproute2", t.iproute2);
  put(o, "compiler", t.compiler);
  return o;
}

Environment environment_from(const json& j, const std::string& label, const std::string& path) {
  Reader r(j, label, path);
  Environment e;
  r.str("hrbenchVersion", e.hrbench_version);
  r.str("virtualization", e.virtualization);
  r.str("container", e.container);
  r.str("hostname", e.hostname);
  r.str("kernel", e.kernel);
  r.str("arch", e.arch);
  r.str("distro", e.distro);
  r.str("cpuModel", e.cpu_model);
  r.integer("cpus", e.cpus, 0, 1 << 20);
  r.unsigned_integer("memoryKiB", e.memory_kib);
  e.tools = tools_from(object_or_empty(r.find("tools")), label, r.name("tools"));
  e.other = r.rest();
  return e;
}

Topology topology_from(const json& j, const std::string& label) {
  Reader r(j, label, "topology");
  Topology t;
  r.str("file", t.file);
  r.str("name", t.name);
  r.integer("nodes", t.nodes, 0, INT32_MAX);
  r.integer("podsPerNode", t.pods_per_node, 0, INT32_MAX);
  r.str("yaml", t.yaml);
  t.other = r.rest();
  return t;
}

json to_json(const Topology& t) {
  json o = with_other(t.other);
  put(o, "file", t.file);
  put(o, "name", t.name);
  put(o, "nodes", t.nodes);
  put(o, "podsPerNode", t.pods_per_node);
  put(o, "yaml", t.yaml);
  return o;
}

std::vector<int> ints(Reader& r, const json& v, const std::string& key) {
  if (!v.is_array()) r.bad(key, "expected a list of whole numbers");
  std::vector<int> out;
  for (const auto& x : v) out.push_back(static_cast<int>(r.whole(x, key, INT32_MIN, INT32_MAX)));
  return out;
}

Scan scan_from(const json& j, const std::string& label) {
  Reader r(j, label, "config.scan");
  const json* param = r.find("param");
  const json* values = r.find("values");
  if (!param || !param->is_string() || !values || !values->is_array())
    r.bad("", "expected {param, values}");
  Scan s;
  s.param = param->get<std::string>();
  s.values = ints(r, *values, "values");
  if (const json* req = r.find("requestedValues"))
    s.requested_values = ints(r, *req, "requestedValues");
  s.other = r.rest();
  return s;
}

json to_json(const Scan& s) {
  json o = with_other(s.other);
  o["param"] = s.param;
  o["values"] = s.values;
  put(o, "requestedValues", s.requested_values);
  return o;
}

ServiceTarget service_from(const json& j, const std::string& label, const std::string& path,
                           const char* ip_key) {
  Reader r(j, label, path);
  auto need_int = [&](const char* key, int64_t lo, int64_t hi) {
    const json* v = r.find(key);
    if (!v) r.bad(key, "required key is missing");
    return r.whole(*v, key, lo, hi);
  };
  ServiceTarget s;
  s.service_index = static_cast<int>(need_int("serviceIndex", 0, INT32_MAX));
  s.ip = r.required_str(ip_key);
  s.port = static_cast<int>(need_int("port", 0, 65535));
  s.target_port = static_cast<int>(need_int("targetPort", 0, 65535));
  s.backends = need_int("backends", 0, INT32_MAX);
  r.str("server", s.server);
  s.services_requested = static_cast<int>(need_int("servicesRequested", INT32_MIN, INT32_MAX));
  s.minimum_services = static_cast<int>(need_int("minimumServices", 0, INT32_MAX));
  s.other = r.rest();
  return s;
}

json to_json(const ServiceTarget& s, const char* ip_key) {
  json o = with_other(s.other);
  o["serviceIndex"] = s.service_index;
  o[ip_key] = s.ip;
  o["port"] = s.port;
  o["targetPort"] = s.target_port;
  o["backends"] = s.backends;
  put(o, "server", s.server);
  o["servicesRequested"] = s.services_requested;
  o["minimumServices"] = s.minimum_services;
  return o;
}

Config config_from(const json& j, const std::string& label) {
  Reader r(j, label, "config");
  Config c;
  r.strings("modes", c.modes);
  r.strings("scenarios", c.scenarios);
  r.strings("workloads", c.workloads);
  r.strings("families", c.families);
  if (c.families)
    for (const auto& f : *c.families)
      if (!parse_family(f)) r.bad("families", "'" + f + "' is not a family (ipv4, ipv6)");
  r.integer("repetitions", c.repetitions, 0, kMaxRepetitions);
  r.number("durationSeconds", c.duration_seconds);
  r.number("warmupSeconds", c.warmup_seconds);
  r.integer("flows", c.flows, 0, INT32_MAX);
  r.unsigned_integer("messageSize", c.message_size);
  r.integer("maxRetries", c.max_retries, 0, INT32_MAX);
  r.number("maxStealFraction", c.max_steal_fraction);
  r.number("budgetSeconds", c.budget_seconds);
  r.number("alternateSeconds", c.alternate_seconds);
  if (const json* mo = r.find("modeOptions")) {
    if (!mo->is_object()) r.bad("modeOptions", "expected an object");
    c.mode_options = *mo;
  }
  r.integer("calibrationDelayLoops", c.calibration_delay_loops, 0, UINT32_MAX);
  if (const json* sc = r.find("scan"))
    c.scan_field = sc->is_null() ? std::optional<Scan>() : scan_from(*sc, label);
  r.number("cpuTickSeconds", c.cpu_tick_seconds);
  if (const json* p = r.find("pinnedCpus")) {
    if (!p->is_array() || p->size() != 2) r.bad("pinnedCpus", "expected [client, server]");
    c.pinned_cpus =
        std::array<int, 2>{static_cast<int>(r.whole((*p)[0], "pinnedCpus", 0, 1 << 20)),
                           static_cast<int>(r.whole((*p)[1], "pinnedCpus", 0, 1 << 20))};
  }
  if (const json* ps = r.find("podService"))
    c.pod_service = service_from(*ps, label, "config.podService", "serviceIP");
  if (const json* en = r.find("externalNodePort"))
    c.external_node_port = service_from(*en, label, "config.externalNodePort", "nodeIP");
  if (const json* sh = r.find("shard")) {
    Reader s(*sh, label, "config.shard");
    auto need = [&](const char* key) {
      const json* v = s.find(key);
      if (!v) s.bad(key, "required key is missing");
      return static_cast<int>(s.whole(*v, key, 1, INT32_MAX));
    };
    Shard shard;
    shard.index = need("index");
    shard.count = need("count");
    if (shard.index > shard.count)
      s.bad("index", fmt::format("{} is larger than count {}", shard.index, shard.count));
    shard.other = s.rest();
    c.shard = shard;
  }
  c.other = r.rest();
  return c;
}

json to_json(const Config& c) {
  json o = with_other(c.other);
  put(o, "modes", c.modes);
  put(o, "scenarios", c.scenarios);
  put(o, "workloads", c.workloads);
  put(o, "families", c.families);
  put(o, "repetitions", c.repetitions);
  put(o, "durationSeconds", c.duration_seconds);
  put(o, "warmupSeconds", c.warmup_seconds);
  put(o, "flows", c.flows);
  put(o, "messageSize", c.message_size);
  put(o, "maxRetries", c.max_retries);
  put(o, "maxStealFraction", c.max_steal_fraction);
  put(o, "budgetSeconds", c.budget_seconds);
  put(o, "alternateSeconds", c.alternate_seconds);
  put(o, "modeOptions", c.mode_options);
  put(o, "calibrationDelayLoops", c.calibration_delay_loops);
  if (c.scan_field) o["scan"] = *c.scan_field ? to_json(**c.scan_field) : json(nullptr);
  put(o, "cpuTickSeconds", c.cpu_tick_seconds);
  if (c.pinned_cpus) o["pinnedCpus"] = {(*c.pinned_cpus)[0], (*c.pinned_cpus)[1]};
  if (c.pod_service) o["podService"] = to_json(*c.pod_service, "serviceIP");
  if (c.external_node_port) o["externalNodePort"] = to_json(*c.external_node_port, "nodeIP");
  if (c.shard) {
    json s = with_other(c.shard->other);
    s["index"] = c.shard->index;
    s["count"] = c.shard->count;
    o["shard"] = s;
  }
  return o;
}

Trial trial_from(const json& j, const std::string& label, size_t i) {
  Reader r(j, label, fmt::format("trials[{}]", i));
  Trial t;
  t.mode = r.required_str("mode");
  t.scenario = r.required_str("scenario");
  t.workload = r.required_str("workload");
  r.str("family", t.family);
  if (t.family && !parse_family(*t.family))
    r.bad("family", "'" + *t.family + "' is not a family (ipv4, ipv6)");
  r.integer("repetition", t.repetition, 0, kMaxRepetitions - 1);
  r.integer("order", t.order, 0, INT64_MAX);
  r.integer("attempt", t.attempt, 0, INT32_MAX);
  r.str("startedAt", t.started_at);
  r.str("client", t.client);
  r.str("server", t.server);
  r.integer("flows", t.flows, 0, INT32_MAX);
  r.boolean("valid", t.valid);
  r.strings("flags", t.flags);
  if (const json* sc = r.find("scan")) {
    if (!sc->is_object() || !sc->contains("value") || !sc->contains("param") ||
        !(*sc)["param"].is_string())
      r.bad("scan", "expected {param, value}");
    Reader s(*sc, label, r.name("scan"));
    TrialScan ts;
    ts.param = s.required_str("param");
    ts.value = static_cast<int>(s.whole(*s.find("value"), "value", INT32_MIN, INT32_MAX));
    ts.other = s.rest();
    t.scan = ts;
  }
  if (const json* m = r.find("metrics")) {
    if (!m->is_object()) r.bad("metrics", "expected an object");
    t.metrics = *m;
  }
  r.raw("cpu", t.cpu);
  r.raw("result", t.result);
  r.unsigned_integer("iptablesPackets", t.iptables_packets);
  r.unsigned_integer("serviceRulePackets", t.service_rule_packets);
  r.raw("bpfCounters", t.bpf_counters);
  if (const json* a = r.find("alternation")) {
    if (!a->is_object()) r.bad("alternation", "expected an object");
    t.alternation = *a;
  }
  r.integer("shard", t.shard, 1, INT32_MAX);
  t.other = r.rest();
  return t;
}

json to_json(const Trial& t) {
  json o = with_other(t.other);
  o["mode"] = t.mode;
  o["scenario"] = t.scenario;
  o["workload"] = t.workload;
  put(o, "family", t.family);
  put(o, "repetition", t.repetition);
  put(o, "order", t.order);
  put(o, "attempt", t.attempt);
  put(o, "startedAt", t.started_at);
  put(o, "client", t.client);
  put(o, "server", t.server);
  put(o, "flows", t.flows);
  put(o, "valid", t.valid);
  put(o, "flags", t.flags);
  if (t.scan) {
    json s = with_other(t.scan->other);
    s["param"] = t.scan->param;
    s["value"] = t.scan->value;
    o["scan"] = s;
  }
  put(o, "metrics", t.metrics);
  put(o, "cpu", t.cpu);
  put(o, "result", t.result);
  put(o, "iptablesPackets", t.iptables_packets);
  put(o, "serviceRulePackets", t.service_rule_packets);
  put(o, "bpfCounters", t.bpf_counters);
  put(o, "alternation", t.alternation);
  put(o, "shard", t.shard);
  return o;
}

ShardRun shard_run_from(const json& j, const std::string& label, size_t i) {
  Reader r(j, label, fmt::format("shards[{}]", i));
  ShardRun s;
  const json* index = r.find("index");
  if (!index) r.bad("index", "required key is missing");
  s.index = static_cast<int>(r.whole(*index, "index", 1, INT32_MAX));
  r.str("file", s.file);
  r.str("runId", s.run_id);
  r.str("startedAt", s.started_at);
  r.str("finishedAt", s.finished_at);
  r.str("command", s.command);
  r.boolean("complete", s.complete);
  r.boolean("interrupted", s.interrupted);
  r.boolean("budgetExhausted", s.budget_exhausted);
  r.number("budgetSeconds", s.budget_seconds);
  s.environment =
      environment_from(object_or_empty(r.find("environment")), label, r.name("environment"));
  s.other = r.rest();
  return s;
}

json to_json(const ShardRun& s) {
  json o = with_other(s.other);
  o["index"] = s.index;
  put(o, "file", s.file);
  put(o, "runId", s.run_id);
  put(o, "startedAt", s.started_at);
  put(o, "finishedAt", s.finished_at);
  put(o, "command", s.command);
  put(o, "complete", s.complete);
  put(o, "interrupted", s.interrupted);
  put(o, "budgetExhausted", s.budget_exhausted);
  put(o, "budgetSeconds", s.budget_seconds);
  o["environment"] = to_json(s.environment);
  return o;
}

}  // namespace

json to_json(const Environment& e) {
  json o = with_other(e.other);
  put(o, "hrbenchVersion", e.hrbench_version);
  put(o, "virtualization", e.virtualization);
  put(o, "container", e.container);
  put(o, "hostname", e.hostname);
  put(o, "kernel", e.kernel);
  put(o, "arch", e.arch);
  put(o, "distro", e.distro);
  put(o, "cpuModel", e.cpu_model);
  put(o, "cpus", e.cpus);
  put(o, "memoryKiB", e.memory_kib);
  o["tools"] = to_json(e.tools);
  return o;
}

Environment environment_from_json(const json& j, const std::string& label) {
  return environment_from(j, label, "environment");
}

json to_json(const Run& run) {
  json o = with_other(run.other);
  o["schema"] = kResultsSchema;
  o["schemaVersion"] = kSchemaVersion;
  put(o, "runId", run.run_id);
  put(o, "startedAt", run.started_at);
  put(o, "finishedAt", run.finished_at);
  put(o, "gitRevision", run.git_revision);
  put(o, "command", run.command);
  put(o, "complete", run.complete);
  put(o, "interrupted", run.interrupted);
  put(o, "budgetExhausted", run.budget_exhausted);
  put(o, "output", run.output);
  o["environment"] = to_json(run.environment);
  o["topology"] = to_json(run.topology);
  o["config"] = to_json(run.config);
  if (!run.shards.empty()) {
    json shards = json::array();
    for (const auto& s : run.shards) shards.push_back(to_json(s));
    o["shards"] = std::move(shards);
  }
  json trials = json::array();
  for (const auto& t : run.trials) trials.push_back(to_json(t));
  o["trials"] = std::move(trials);
  if (run.profiles) {
    json p = with_other(run.profiles->other);
    p["file"] = run.profiles->file;
    put(p, "event", run.profiles->event);
    put(p, "frequencyHz", run.profiles->frequency_hz);
    put(p, "cells", run.profiles->cells);
    o["profiles"] = std::move(p);
  }
  return o;
}

Run from_json(const json& doc, const std::string& label) {
  if (!doc.is_object() || !doc.contains("schema") || doc["schema"] != kResultsSchema ||
      !doc.contains("schemaVersion"))
    throw Error(label + ": not a hostroute-bench results file (no schema/schemaVersion)",
                ExitCode::kBadInput);
  if (doc["schemaVersion"] != kSchemaVersion)
    throw Error(label + ": schemaVersion " + doc["schemaVersion"].dump() + ", this build reads " +
                    std::to_string(kSchemaVersion),
                ExitCode::kBadInput);
  Reader r(doc, label, "");
  r.find("schema");
  r.find("schemaVersion");
  Run run;
  r.str("runId", run.run_id);
  r.str("startedAt", run.started_at);
  r.str("finishedAt", run.finished_at);
  r.str("gitRevision", run.git_revision);
  r.str("command", run.command);
  r.boolean("complete", run.complete);
  r.boolean("interrupted", run.interrupted);
  r.boolean("budgetExhausted", run.budget_exhausted);
  r.str("output", run.output);
  run.topology = topology_from(object_or_empty(r.find("topology")), label);
  run.environment = environment_from(object_or_empty(r.find("environment")), label, "environment");
  run.config = config_from(object_or_empty(r.find("config")), label);
  if (const json* shards = r.find("shards")) {
    if (!shards->is_array()) r.bad("shards", "expected a list");
    for (size_t i = 0; i < shards->size(); ++i)
      run.shards.push_back(shard_run_from((*shards)[i], label, i));
  }
  const json* trials = r.find("trials");
  if (!trials || !trials->is_array()) r.bad("trials", "expected a list");
  for (size_t i = 0; i < trials->size(); ++i)
    run.trials.push_back(trial_from((*trials)[i], label, i));
  if (const json* p = r.find("profiles")) {
    Reader pr(*p, label, "profiles");
    ProfilesRef ref;
    ref.file = pr.required_str("file");
    pr.str("event", ref.event);
    pr.integer("frequencyHz", ref.frequency_hz, 1, 1000000);
    pr.integer("cells", ref.cells, 0, INT64_MAX);
    ref.other = pr.rest();
    run.profiles = std::move(ref);
  }
  run.other = r.rest();
  return run;
}

json to_json(const LabDocument& d) {
  json o = with_other(d.other);
  o["schema"] = kLabSchema;
  put(o, "schemaVersion", d.schema_version);
  put(o, "startedAt", d.started_at);
  put(o, "command", d.command);
  if (d.environment) o["environment"] = to_json(*d.environment);
  json vs = json::array();
  for (const auto& v : d.verdicts)
    vs.push_back({{"scenario", v.scenario},
                  {"mode", v.mode},
                  {"works", v.works},
                  {"summary", v.summary},
                  {"evidence", v.evidence}});
  o["verdicts"] = std::move(vs);
  return o;
}

LabDocument lab_from_json(const json& doc, const std::string& label) {
  Reader r(doc, label, "");
  if (const json* s = r.find("schema"); !s || *s != kLabSchema)
    r.bad("schema", std::string("expected \"") + kLabSchema + "\"");
  LabDocument d;
  r.integer("schemaVersion", d.schema_version, 0, INT32_MAX);
  r.str("startedAt", d.started_at);
  r.str("command", d.command);
  if (const json* e = r.find("environment"))
    d.environment = environment_from(*e, label, "environment");
  if (const json* vs = r.find("verdicts")) {
    if (!vs->is_array()) r.bad("verdicts", "expected a list");
    for (size_t i = 0; i < vs->size(); ++i) {
      Reader v((*vs)[i], label, fmt::format("verdicts[{}]", i));
      std::optional<std::string> scenario, mode, summary;
      std::optional<bool> works;
      std::optional<json> evidence;
      v.str("scenario", scenario);
      v.str("mode", mode);
      v.boolean("works", works);
      v.str("summary", summary);
      v.raw("evidence", evidence);
      d.verdicts.push_back({scenario.value_or(""), mode.value_or(""), works.value_or(false),
                            summary.value_or(""), evidence.value_or(json())});
    }
  }
  d.other = r.rest();
  return d;
}

// --- the profiles file ------------------------------------------------------------------------

namespace {
json counts_json(const std::map<std::string, uint64_t>& m) {
  json o = json::object();
  for (const auto& [k, n] : m) o[k] = n;
  return o;
}
std::map<std::string, uint64_t> counts_from(Reader& r, const char* key, bool required) {
  std::map<std::string, uint64_t> out;
  const json* v = r.find(key);
  if (!v) {
    if (required) r.bad(key, "expected an object of counts");
    return out;
  }
  if (!v->is_object()) r.bad(key, "expected an object of counts");
  for (const auto& [k, n] : v->items()) {
    if (!n.is_number_unsigned() && !(n.is_number_integer() && n.get<int64_t>() >= 0))
      r.bad(std::string(key) + "[\"" + k.substr(0, 80) + "\"]", "expected a whole number from 0");
    out[k] = n.get<uint64_t>();
  }
  return out;
}
}  // namespace

json to_json(const ProfileDocument& d) {
  json o = with_other(d.other);
  o["schema"] = kProfilesSchema;
  o["schemaVersion"] = kSchemaVersion;
  put(o, "runId", d.run_id);
  o["event"] = d.event;
  o["frequencyHz"] = d.frequency_hz;
  put(o, "command", d.command);
  json ps = json::array();
  for (const auto& p : d.profiles) {
    json j = with_other(p.other);
    j["mode"] = p.mode;
    j["scenario"] = p.scenario;
    j["workload"] = p.workload;
    put(j, "family", p.family);
    if (p.scan) {
      json sc = with_other(p.scan->other);
      sc["param"] = p.scan->param;
      sc["value"] = p.scan->value;
      j["scan"] = std::move(sc);
    }
    put(j, "startedAt", p.started_at);
    j["seconds"] = p.seconds;
    j["samples"] = p.samples;
    j["otherSamples"] = p.other_samples;
    put(j, "valid", p.valid);
    put(j, "flags", p.flags);
    put(j, "metrics", p.metrics);
    j["buckets"] = counts_json(p.buckets);
    j["stacks"] = counts_json(p.stacks);
    ps.push_back(std::move(j));
  }
  o["profiles"] = std::move(ps);
  return o;
}

ProfileDocument profiles_from_json(const json& doc, const std::string& label) {
  if (!doc.is_object() || !doc.contains("schema") || doc["schema"] != kProfilesSchema)
    throw Error(label + ": not a hostroute-bench profiles file (schema is not \"" +
                    std::string(kProfilesSchema) + "\")",
                ExitCode::kBadInput);
  if (!doc.contains("schemaVersion") || doc["schemaVersion"] != kSchemaVersion)
    throw Error(label + ": profiles schemaVersion " + doc.value("schemaVersion", json()).dump() +
                    ", this build reads " + std::to_string(kSchemaVersion),
                ExitCode::kBadInput);
  Reader r(doc, label, "");
  r.find("schema");
  r.find("schemaVersion");
  ProfileDocument d;
  r.str("runId", d.run_id);
  d.event = r.required_str("event");
  std::optional<int> hz;
  r.integer("frequencyHz", hz, 1, 1000000);
  if (!hz) r.bad("frequencyHz", "expected a whole number from 1");
  d.frequency_hz = *hz;
  r.strings("command", d.command);
  const json* ps = r.find("profiles");
  if (!ps || !ps->is_array()) r.bad("profiles", "expected a list");
  for (size_t i = 0; i < ps->size(); ++i) {
    Reader pr((*ps)[i], label, fmt::format("profiles[{}]", i));
    Profile p;
    p.mode = pr.required_str("mode");
    p.scenario = pr.required_str("scenario");
    p.workload = pr.required_str("workload");
    pr.str("family", p.family);
    if (p.family && !parse_family(*p.family))
      pr.bad("family", "'" + *p.family + "' is not a family (ipv4, ipv6)");
    if (const json* s = pr.find("scan")) {
      Reader sr(*s, label, fmt::format("profiles[{}].scan", i));
      TrialScan sc;
      sc.param = sr.required_str("param");
      std::optional<int> v;
      sr.integer("value", v, INT_MIN, INT_MAX);
      if (!v) sr.bad("value", "expected a whole number");
      sc.value = *v;
      sc.other = sr.rest();
      p.scan = std::move(sc);
    }
    pr.str("startedAt", p.started_at);
    std::optional<double> secs;
    pr.number("seconds", secs);
    p.seconds = secs.value_or(0);
    std::optional<uint64_t> n;
    pr.unsigned_integer("samples", n);
    p.samples = n.value_or(0);
    n.reset();
    pr.unsigned_integer("otherSamples", n);
    p.other_samples = n.value_or(0);
    pr.boolean("valid", p.valid);
    pr.strings("flags", p.flags);
    pr.raw("metrics", p.metrics);
    p.buckets = counts_from(pr, "buckets", false);
    p.stacks = counts_from(pr, "stacks", true);
    p.other = pr.rest();
    d.profiles.push_back(std::move(p));
  }
  d.other = r.rest();
  return d;
}

}  // namespace hrb::results
