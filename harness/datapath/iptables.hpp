#pragma once
// iptables in a node netns: the backend choice, a set of rules that can be installed in one
// iptables-restore batch and removed again exactly, per-rule counters, and a snapshot of a
// netns's netfilter/routing state for before/after diffs.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/ipv6.hpp"

namespace hrb::datapath {

enum class Backend { kNft, kLegacy };
const char* backend_name(Backend b);          // "nft" | "legacy"
Backend parse_backend(const std::string& s);  // throws Error(kUsage)
// tool: "", "-save", "-restore"; ip6tables-… for Family::kIpv6.
std::string iptables_bin(Backend b, const std::string& tool, Family f = Family::kIpv4);

struct Rule {
  std::string table;  // nat | filter | mangle | raw
  std::string chain;
  std::string spec;  // everything after "-A CHAIN "
};

// Rules owned by one component (legacy mode's masq + kube-proxy rules). Chains listed here are
// created and deleted with it; rules in built-in chains (the jumps) are appended and deleted.
struct RuleSet {
  std::map<std::string, std::vector<std::string>> chains;  // table -> own chains, in order
  std::vector<Rule> rules;
  size_t size() const { return rules.size(); }
  std::string restore_apply() const;   // iptables-restore --noflush input
  std::string restore_remove() const;  // undoes restore_apply
};

// `cgroup`: run the restore there (the blocker's owner cgroup, see guard::OwnerWrite).
// `check` false: a failure is returned (false), not thrown. Each node has its own xtables lock
// (xtables_lock_env), as separate machines would: nodes restore in parallel.
bool restore(const std::string& netns, Backend b, const std::string& input,
             const std::string& cgroup = "", Family f = Family::kIpv4, bool check = true);
// The environment that gives an iptables command in `netns` that netns's own xtables lock —
// the netns file itself (/run/netns/NAME, flock()ed by iptables -w), instead of the machine's
// /run/xtables.lock, which every node of a cluster on one machine would otherwise queue on.
std::vector<std::string> xtables_lock_env(const std::string& netns);
std::string save(const std::string& netns, Backend b, bool counters = false,
                 Family f = Family::kIpv4);

struct RuleCounter {
  std::string table, chain, spec;
  uint64_t packets = 0, bytes = 0;
};
// Counters of every rule in `chains` (all chains when empty), from iptables-save -c.
std::vector<RuleCounter> rule_counters(const std::string& netns, Backend b,
                                       const std::vector<std::string>& chains = {},
                                       Family f = Family::kIpv4);
uint64_t conntrack_count(const std::string& netns);  // 0 when conntrack is not loaded there
void conntrack_flush(const std::string& netns);

// A comparable text of a netns's state: both iptables backends, IPv4 and IPv6 (normalised: no
// counters, no comments, no empty tables of default policies — the kernel cannot unload an xt table
// from a netns once touched), the nftables ruleset, routes, rules, and the forwarding/rp_filter
// sysctls.
std::string netns_snapshot(const std::string& netns);

}  // namespace hrb::datapath
