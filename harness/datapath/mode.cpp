#include "datapath/mode.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>

#include "core/log.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "guard/blocker.hpp"
#include "guard/monitor.hpp"

namespace hrb::datapath {

const char* kind_name(ModeKind k) {
  switch (k) {
    case ModeKind::kNone:
      return "none";
    case ModeKind::kLegacy:
      return "legacy";
    case ModeKind::kBpfLb:
      return "bpf-lb";
    case ModeKind::kEbpf:
      return "ebpf";
  }
  return "?";
}

namespace {
std::optional<ModeKind> kind_of(const std::string& name) {
  for (auto k : {ModeKind::kNone, ModeKind::kLegacy, ModeKind::kBpfLb, ModeKind::kEbpf})
    if (name == kind_name(k)) return k;
  return std::nullopt;
}

bool valid_alias(const std::string& a) {
  if (a.empty() || a[0] == '.') return false;
  return std::all_of(a.begin(), a.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}
}  // namespace

ModeKind ModeOptions::kind() const {
  if (auto k = kind_of(name)) return *k;
  throw Error("unknown mode '" + name + "' (expected none, legacy, bpf-lb or ebpf)",
              ExitCode::kUsage);
}

std::string resolve_objects_dir(const std::string& dir, const std::string& mode_name) {
  namespace fs = std::filesystem;
  const std::string expected =
      "expected a build directory, whose bpf/ holds from_pod.bpf.o and from_uplink.bpf.o, or "
      "that objects directory itself";
  if (dir.empty())
    throw Error(mode_name + ": no objects directory after '@' (" + expected + ")",
                ExitCode::kUsage);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(mode_name + ": objects directory " + dir + " does not exist (" + expected + ")",
                ExitCode::kBadInput);
  auto has_all = [&](const fs::path& d) {
    return std::all_of(std::begin(kDatapathObjects), std::end(kDatapathObjects),
                       [&](const char* o) { return fs::exists(object_file(d, o), ec); });
  };
  for (const fs::path& d : {fs::path(dir), fs::path(dir) / "bpf"})
    if (has_all(d)) return fs::absolute(d).lexically_normal().string();
  // Name the first object missing where the objects were looked for: DIR/bpf when there is one.
  const fs::path where =
      fs::is_directory(fs::path(dir) / "bpf", ec) ? fs::path(dir) / "bpf" : fs::path(dir);
  std::string missing;
  for (const char* o : kDatapathObjects)
    if (!fs::exists(object_file(where, o), ec)) {
      missing = object_file(where, o);
      break;
    }
  throw Error(mode_name + ": " + missing + " is missing (" + expected +
                  "; build them with: cmake --build BUILD --target from_pod_skel "
                  "from_uplink_skel)",
              ExitCode::kBadInput);
}

ParsedMode parse_mode(const std::string& name, const ModeOptions& defaults) {
  ParsedMode p;
  p.label = name;
  p.options = defaults;
  p.options.objects_dir.clear();
  const auto at = name.find('@');
  const std::string base = name.substr(0, at);
  if (base == "ebpf-delay") {
    p.kind = ModeKind::kEbpf;
    p.calibration_delay = true;
  } else if (auto k = kind_of(base)) {
    p.kind = *k;
  } else {
    throw Error("unknown mode '" + name + "' (legacy, bpf-lb, ebpf, none, ebpf-delay)",
                ExitCode::kUsage);
  }
  p.options.name = kind_name(p.kind);
  if (at == std::string::npos) return p;
  if (p.kind == ModeKind::kNone || p.kind == ModeKind::kLegacy)
    throw Error(name + ": " + base +
                    " has no BPF objects (@DIR takes the objects of another build: ebpf, "
                    "ebpf-delay and bpf-lb only)",
                ExitCode::kUsage);
  const std::string rest = name.substr(at + 1);
  auto check_alias = [&](const std::string& a) {
    if (!valid_alias(a))
      throw Error(name + ": '" + a +
                      "' is not a name for an objects directory (letters, digits, '-', '_', "
                      "'.'; a directory needs a '/', e.g. " +
                      base + "@./DIR)",
                  ExitCode::kUsage);
  };
  std::string dir;  // empty (nothing after '@'): resolve_objects_dir says so
  if (const auto eq = rest.find('='); eq != std::string::npos) {  // KIND@ALIAS=DIR
    p.alias = rest.substr(0, eq);
    check_alias(p.alias);
    dir = rest.substr(eq + 1);
    p.label = base + "@" + p.alias;
  } else if (rest.find('/') != std::string::npos) {  // KIND@DIR
    dir = rest;
  } else if (!rest.empty()) {  // KIND@ALIAS
    p.alias = rest;
    check_alias(p.alias);
    const auto it = defaults.object_aliases.find(rest);
    if (it == defaults.object_aliases.end())
      throw Error(name + ": no objects directory named '" + rest + "' (define it with " + base +
                      "@" + rest + "=DIR; a directory needs a '/', e.g. " + base + "@./" + rest +
                      ")",
                  ExitCode::kUsage);
    dir = it->second;
  }
  p.options.objects_dir = resolve_objects_dir(dir, name);
  return p;
}

void define_mode_aliases(std::vector<std::string>& modes, ModeOptions& opts) {
  for (auto& m : modes) {
    auto p = parse_mode(m, opts);
    if (!p.alias.empty() && m.find('=') != std::string::npos) {
      auto [it, added] = opts.object_aliases.emplace(p.alias, p.options.objects_dir);
      if (!added && it->second != p.options.objects_dir)
        throw Error(m + ": '" + p.alias + "' already names " + it->second, ExitCode::kUsage);
      m = p.label;
    }
  }
}

const char* attach_name(Attach a) { return a == Attach::kClsact ? "clsact" : "tcx"; }

Attach parse_attach(const std::string& s) {
  if (s == "tcx") return Attach::kTcx;
  if (s == "clsact") return Attach::kClsact;
  throw Error("--attach: expected tcx or clsact, got '" + s + "'", ExitCode::kUsage);
}

nlohmann::json ModeOptions::to_json() const {
  nlohmann::json j = {{"mode", name},
                      {"backend", backend_name(backend)},
                      {"masqConfig", masq_config},
                      {"services", services},
                      {"endpointsPerService", endpoints_per_service},
                      {"delayLoops", delay_loops},
                      {"ctEntries", ct_entries}};
  if (!objects_dir.empty()) j["objectsDir"] = objects_dir;
  if (attach != Attach::kTcx) j["attach"] = attach_name(attach);
  if (!object_aliases.empty()) j["objectAliases"] = object_aliases;
  for (const auto& v : alternates)
    j["alternates"].push_back({{"objectsDir", v.objects_dir}, {"delayLoops", v.delay_loops}});
  return j;
}

ModeOptions ModeOptions::from_json(const nlohmann::json& j) {
  ModeOptions o;
  o.name = j.value("mode", "none");
  o.backend = parse_backend(j.value("backend", "nft"));
  o.masq_config = j.value("masqConfig", "");
  o.services = j.value("services", 0);
  o.endpoints_per_service = j.value("endpointsPerService", 1);
  o.delay_loops = j.value("delayLoops", 0u);
  o.ct_entries = j.value("ctEntries", 0u);
  o.objects_dir = j.value("objectsDir", "");
  o.attach = parse_attach(j.value("attach", "tcx"));
  if (j.contains("objectAliases"))
    o.object_aliases = j["objectAliases"].get<std::map<std::string, std::string>>();
  if (j.contains("alternates"))
    for (const auto& v : j["alternates"])
      o.alternates.push_back({v.value("objectsDir", ""), v.value("delayLoops", 0u)});
  return o;
}

namespace {
class NoneMode : public Mode {
 public:
  std::string name() const override { return "none"; }
  void apply(const topology::Layout&) override {}
  void remove(const topology::Layout&) override {}
};

// ebpf mode's guard (docs/acns.md): the iptables monitor refuses enablement over user-installed
// rules that host routing would silently bypass, and the blocker keeps new ones out while it is
// on. Composed here, the one place every mode is made, so that neither EbpfMode nor guard/ knows
// the other.
class IptablesGuard : public BypassGuard {
 public:
  IptablesGuard(std::string allowlist, bool force)
      : allowlist_(std::move(allowlist)), force_(force) {}

  void refuse_bypassed_rules(const topology::Layout& l) override {
    auto allow =
        guard::load_allowlist(allowlist_.empty() ? guard::default_allowlist_path() : allowlist_);
    std::string offending;
    for (const auto& n : l.nodes)
      for (const auto& r : guard::user_rules(guard::list_rules(n.netns, allow)))
        offending += "\n  " + n.name + ": " + r.text();
    if (offending.empty()) return;
    if (!force_)
      throw Error(
          "ebpf mode refused: user-installed rules in the node netns would be silently "
          "bypassed by eBPF host routing (not matched by " +
              allow.file + "):" + offending +
              "\nremove them, extend the allowlist, or pass --force",
          ExitCode::kRefused);
    log::warn("--force: enabling ebpf mode although these rules will be bypassed:{}", offending);
  }
  void start(const topology::Layout& l, topology::StateDir& state) override {
    guard::start_blocker(l, state);
  }
  void stop(const topology::Layout& l, topology::StateDir& state) override {
    guard::stop_blocker(l, state);
  }

 private:
  std::string allowlist_;
  bool force_;
};
}  // namespace

std::unique_ptr<Mode> make_mode(const ModeOptions& o, topology::StateDir* state) {
  if (o.services < 0 || o.endpoints_per_service < 1)
    throw Error("services must be >= 0 and endpointsPerService >= 1", ExitCode::kUsage);
  if (o.ct_entries && (o.ct_entries < 256 || o.ct_entries > (1u << 24)))
    throw Error(
        "--ct-entries must be between 256 and 16777216 (got " + std::to_string(o.ct_entries) + ")",
        ExitCode::kUsage);
  if (!o.objects_dir.empty()) {
    if (o.name != "ebpf" && o.name != "bpf-lb")
      throw Error(o.name + " has no BPF objects (objects directory " + o.objects_dir + ")",
                  ExitCode::kUsage);
    check_objects(o.objects_dir);  // ABI version and layout, before anything changes
  }
  if (!o.alternates.empty() && o.name != "ebpf" && o.name != "bpf-lb")
    throw Error(o.name + " cannot be alternated (only variants of ebpf or bpf-lb)",
                ExitCode::kUsage);
  for (const auto& v : o.alternates)
    if (!v.objects_dir.empty()) check_objects(v.objects_dir);
  if (o.name == "none") return std::make_unique<NoneMode>();
  MasqConfig masq =
      o.masq_config.empty() ? default_masq_config() : parse_masq_config_file(o.masq_config);
  if (o.name == "legacy") return std::make_unique<LegacyMode>(o, std::move(masq));
  if (o.name == "ebpf" || o.name == "bpf-lb") {
    if (!state) return std::make_unique<LegacyMode>(o, std::move(masq));  // validation only
    std::unique_ptr<BypassGuard> guard;
    if (o.name == "ebpf") guard = std::make_unique<IptablesGuard>(o.allowlist, o.force);
    return std::make_unique<EbpfMode>(o, std::move(masq), state, std::move(guard));
  }
  throw Error("unknown mode '" + o.name + "' (expected none, legacy, bpf-lb or ebpf)",
              ExitCode::kUsage);
}

ModeOptions current_mode(const topology::StateDir& state) {
  auto text = state.read("mode.json");
  if (text.empty()) return {};
  return ModeOptions::from_json(nlohmann::json::parse(text));
}

void switch_mode(topology::StateDir& state, const topology::Layout& layout,
                 const ModeOptions& next) {
  auto incoming = make_mode(next, &state);  // bad input fails here, before anything changes
  ModeOptions cur = current_mode(state);
  cur.objects_dir.clear();  // removal loads nothing: another build's objects may be gone by now
  cur.alternates.clear();
  if (cur.name != "none") {
    log::info("mode: removing {}", cur.name);
    make_mode(cur, &state)->remove(layout);
  }
  state.write("mode.json", ModeOptions{}.to_json().dump());
  if (next.name == "none") return;
  log::info("mode: applying {}{}{}", next.name,
            next.objects_dir.empty() ? "" : " with the objects of " + next.objects_dir,
            next.alternates.empty()
                ? ""
                : fmt::format(" and {} alternated variant(s)", next.alternates.size()));
  incoming->apply(layout);
  state.write("mode.json", next.to_json().dump(2));
}

}  // namespace hrb::datapath
