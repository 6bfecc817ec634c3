#include "datapath/mode.hpp"

#include "core/log.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "guard/blocker.hpp"
#include "guard/monitor.hpp"

namespace hrb::datapath {

nlohmann::json ModeOptions::to_json() const {
  return {{"mode", name},
          {"backend", backend_name(backend)},
          {"masqConfig", masq_config},
          {"services", services},
          {"endpointsPerService", endpoints_per_service},
          {"delayLoops", delay_loops},
          {"ctEntries", ct_entries}};
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
  if (cur.name != "none") {
    log::info("mode: removing {}", cur.name);
    make_mode(cur, &state)->remove(layout);
  }
  state.write("mode.json", ModeOptions{}.to_json().dump());
  if (next.name == "none") return;
  log::info("mode: applying {}", next.name);
  incoming->apply(layout);
  state.write("mode.json", next.to_json().dump(2));
}

}  // namespace hrb::datapath
