// hrbench guard: the iptables/nftables monitor (and the blocker's watcher, internal).
#include <algorithm>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "guard/blocker.hpp"
#include "guard/monitor.hpp"
#include "topology/cluster.hpp"

namespace hrb::cli {

namespace {

struct GuardOptions {
  CommonOptions common;
  std::string action;
  boost::optional<std::string> node;
  bool json = false;
  boost::optional<std::string> allowlist;
  boost::optional<int> ready_fd;
};

// guard watch (started by ebpf mode): the blocker's watcher of the nodes named by --node.
int run_guard_watch(const GuardOptions& o, topology::Layout l, topology::StateDir& st) {
  if (!o.ready_fd) throw Error("guard watch is internal", ExitCode::kUsage);
  if (o.node) {  // the nodes the blocker guards (a comma-separated list)
    auto names = split_list(*o.node);
    std::erase_if(l.nodes, [&](const auto& n) {
      return std::find(names.begin(), names.end(), n.name) == names.end();
    });
  }
  return guard::run_watcher(l, st, *o.ready_fd);
}

int run_guard_monitor(const GuardOptions& o, const topology::Layout& l) {
  auto allow = guard::load_allowlist(o.allowlist ? *o.allowlist : guard::default_allowlist_path());
  nlohmann::json out = nlohmann::json::array();
  size_t user = 0;
  for (const auto& n : l.nodes) {
    if (o.node && *o.node != n.name) continue;
    auto rules = guard::list_rules(n.netns, allow);
    user += guard::user_rules(rules).size();
    if (o.json) {
      out.push_back(guard::to_json(n.name, rules));
      continue;
    }
    std::cout << fmt::format("{}: {} rules, {} user-installed\n", n.name, rules.size(),
                             guard::user_rules(rules).size());
    for (const auto& r : rules)
      std::cout << fmt::format("  {:<14} {}\n", r.owned() ? r.owner : "USER", r.text());
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  return user ? static_cast<int>(ExitCode::kRefused) : 0;
}

int run_guard(const GuardOptions& o) {
  topology::StateDir st = existing_cluster(o.common);
  auto l = topology::load_layout(st);
  if (o.action == "watch") return run_guard_watch(o, std::move(l), st);
  if (o.action != "monitor") throw Error("usage: hrbench guard monitor", ExitCode::kUsage);
  return run_guard_monitor(o, l);
}

}  // namespace

int cmd_guard(const Args& args) {
  GuardOptions o;
  po::options_description d(
      "hrbench guard monitor: list every iptables/nftables rule in the node netns and which are "
      "user-installed (the check ebpf mode runs first); exit 7 when there are any");
  d.add_options()("action", po::value(&o.action), "monitor")(
      "node", po::value(&o.node), "one node (default: all)")("json", po::bool_switch(&o.json),
                                                             "print JSON")(
      "allowlist", po::value(&o.allowlist), "allowlist file")("ready-fd", po::value(&o.ready_fd),
                                                              "(internal, guard watch)");
  po::positional_options_description pos;
  pos.add("action", 1);
  if (!parse(args, d, "hrbench guard monitor [--node N] [--json]", o.common, pos)) return 0;
  return run_guard(o);
}

}  // namespace hrb::cli
