// The datapath of a running cluster: mode (switch or show), masq-agent.
#include <chrono>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/log.hpp"
#include "datapath/legacy.hpp"
#include "datapath/masq_agent.hpp"
#include "topology/cluster.hpp"

namespace hrb::cli {

namespace {

struct ModeCmdOptions {
  CommonOptions common;
  boost::optional<std::string> name;  // none: print the current mode
  bool print_rules = false;
  ModeFlags mode_flags;
};

int run_mode(const ModeCmdOptions& o) {
  topology::StateDir st = existing_cluster(o.common);
  Fd lock = st.lock();
  auto layout = topology::load_layout(st);  // not found, should it have gone meanwhile
  if (!o.name) {
    std::cout << datapath::current_mode(st).to_json().dump(2) << "\n";
    return 0;
  }
  auto opts = mode_options(o.mode_flags, *o.name, layout.spec);
  if (o.print_rules) {
    auto mode = datapath::make_mode(opts);
    auto* legacy = dynamic_cast<datapath::LegacyMode*>(mode.get());
    if (!legacy) throw Error("--print-rules applies to legacy mode", ExitCode::kUsage);
    // One iptables-restore input per family: ip6tables' after a comment line on dual stack.
    for (Family f : datapath::LegacyMode::families(layout)) {
      if (f == Family::kIpv6) std::cout << "# ip6tables-restore input\n";
      std::cout << legacy->rules(layout, f).restore_apply();
    }
    return 0;
  }
  auto t0 = std::chrono::steady_clock::now();
  datapath::switch_mode(st, layout, opts);
  log::info("mode {} applied in {:.2f} s", opts.name,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

struct MasqAgentCmdOptions {
  CommonOptions common;
  boost::optional<std::string> config;  // default: the running mode's --masq-config
  bool once = false;
};

int run_masq_agent(const MasqAgentCmdOptions& o) {
  topology::StateDir st = existing_cluster(o.common);
  auto l = topology::load_layout(st);
  datapath::MasqAgentOptions a;
  a.config = o.config ? *o.config : datapath::current_mode(st).masq_config;
  if (a.config.empty()) throw Error("no config file: pass --config FILE", ExitCode::kUsage);
  a.once = o.once;
  InterruptFlag::install();
  log::info("masq-agent: watching {}", a.config);
  return datapath::run_masq_agent(l, st, a, InterruptFlag::get());
}

}  // namespace

int cmd_mode(const Args& args) {
  ModeCmdOptions o;
  po::options_description d(
      "hrbench mode NAME: switch the running cluster's datapath (none | legacy | bpf-lb | ebpf) "
      "without rebuilding it; without NAME, print the current mode");
  d.add_options()("name", po::value(&o.name), "none | legacy | bpf-lb | ebpf")(
      "print-rules", po::bool_switch(&o.print_rules),
      "print the iptables-restore input legacy mode would install, change nothing");
  add_mode_options(d, o.mode_flags);
  po::positional_options_description pos;
  pos.add("name", 1);
  if (!parse(args, d,
             "hrbench mode [NAME] [--backend nft|legacy] [--masq-config FILE] [--services N]",
             o.common, pos))
    return 0;
  return run_mode(o);
}

int cmd_masq_agent(const Args& args) {
  MasqAgentCmdOptions o;
  po::options_description d(
      "hrbench masq-agent: the IP Masquerade Agent; watches the config and reprograms the "
      "IP-MASQ-AGENT chains (and in ebpf mode the BPF non-masquerade tries) on change and every "
      "resyncInterval, until stopped");
  d.add_options()("config", po::value(&o.config),
                  "ip-masq-agent config (default: the running mode's --masq-config)")(
      "once", po::bool_switch(&o.once),
      "apply once and exit (3 when the file is invalid, 1 when programming failed)");
  if (!parse(args, d, "hrbench masq-agent [--config FILE] [--once]", o.common)) return 0;
  return run_masq_agent(o);
}

}  // namespace hrb::cli
