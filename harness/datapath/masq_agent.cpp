#include "datapath/masq_agent.hpp"

#include <chrono>
#include <thread>

#include "core/file.hpp"
#include "core/log.hpp"
#include "datapath/ebpf.hpp"
#include "datapath/legacy.hpp"
#include "datapath/mode.hpp"
#include "guard/blocker.hpp"

namespace hrb::datapath {

namespace {
// A missing config file reads as empty: the agent's built-in defaults (as ip-masq-agent does).
std::string slurp(const std::string& path) { return try_read_text_file(path).value_or(""); }
}  // namespace

void apply_masq_config(const topology::Layout& l, const topology::StateDir& state,
                       const std::string& config) {
  MasqConfig cfg = parse_masq_config_string(slurp(config), config);  // throws: nothing changed
  ModeOptions mode = current_mode(state);
  if (mode.name != "legacy" && mode.name != "ebpf" && mode.name != "bpf-lb") {
    log::info("masq-agent: mode {} has no masquerade; nothing to program", mode.name);
    return;
  }
  guard::OwnerWrite owner(const_cast<topology::StateDir&>(state));  // the blocker lets us write
  // IPv4, and on a dual-stack cluster the ip6tables chain too (what LegacyMode installed).
  for (Family f : LegacyMode::families(l)) {
    std::string batch = "*nat\n-F IP-MASQ-AGENT\n";
    for (const auto& r : masq_agent_rules(cfg, f).rules)
      if (r.chain == "IP-MASQ-AGENT") batch += "-A " + r.chain + " " + r.spec + "\n";
    batch += "COMMIT\n";
    for (const auto& n : l.nodes) restore(n.netns, mode.backend, batch, owner.cgroup(), f);
  }
  if (mode.name == "ebpf") swap_nonmasq(l, cfg);  // the tries of the cluster's families
  const std::string v6 =
      l.has_ipv6() ? fmt::format(" and {} IPv6 ones", ipv6_nonmasq(cfg).size()) : std::string();
  log::info("masq-agent: programmed {} non-masquerade CIDRs{} from {} ({} mode)",
            cfg.return_cidrs().size(), v6, config, mode.name);
}

int run_masq_agent(const topology::Layout& l, const topology::StateDir& state,
                   const MasqAgentOptions& o, const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  std::string applied, rejected;
  auto next_resync = Clock::now();
  while (!stop) {
    std::string text = slurp(o.config);
    bool changed = text != applied && text != rejected;
    if (changed || Clock::now() >= next_resync) {
      int resync_ms = 60000;
      try {
        resync_ms = parse_masq_config_string(text, o.config).resync_interval_ms;
        apply_masq_config(l, state, o.config);
        applied = text;
        rejected.clear();
      } catch (const std::exception& e) {
        if (text != rejected)
          log::error("masq-agent: {} (keeping the rules as they are)", e.what());
        rejected = text;
        // --once: 3 for a bad config file, 1 when programming the nodes failed.
        const auto* err = dynamic_cast<const Error*>(&e);
        if (o.once) return err && err->code() == ExitCode::kBadInput ? 3 : 1;
      }
      next_resync = Clock::now() + std::chrono::milliseconds(resync_ms);
      if (o.once) return 0;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.poll_seconds));
  }
  return 0;
}

}  // namespace hrb::datapath
