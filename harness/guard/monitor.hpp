#pragma once
// The iptables monitor: every rule of every table (nat, mangle, filter, raw, security) in a node
// netns, from both iptables backends and from native nftables tables, classified against an
// allowlist of owners. With user-installed rules present, ebpf mode is refused (they would be
// silently bypassed) unless forced.
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace hrb::guard {

struct Allowlist {
  std::string file;
  std::vector<std::pair<std::string, std::regex>> patterns;  // owner, pattern
  std::vector<std::pair<std::string, std::string>> sources;  // owner, pattern text
};
Allowlist load_allowlist(const std::string& path);  // throws Error(kBadInput) with file:line
std::string default_allowlist_path();

struct Rule {
  std::string source;  // iptables-legacy | iptables-nft | nft
  std::string table;   // nat, filter, … (nft: "<family> <table>")
  std::string chain;
  std::string rule;     // as the tool prints it
  uint64_t handle = 0;  // nft only
  std::string owner;    // matching owner, empty when user-installed
  bool owned() const { return !owner.empty(); }
  std::string text() const;  // "<source> <table> <chain> <rule>"
};

// All rules of the netns, classified.
std::vector<Rule> list_rules(const std::string& netns, const Allowlist& allow);
std::vector<Rule> user_rules(const std::vector<Rule>& rules);
nlohmann::json to_json(const std::string& node, const std::vector<Rule>& rules);

}  // namespace hrb::guard
