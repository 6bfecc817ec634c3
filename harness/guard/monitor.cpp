#include "guard/monitor.hpp"

#include <yaml-cpp/yaml.h>

#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/process.hpp"

namespace hrb::guard {

std::string default_allowlist_path() { return HRB_SOURCE_DIR "/config/iptables-allowlist.yaml"; }

Allowlist load_allowlist(const std::string& path) {
  Allowlist a;
  a.file = path;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error("cannot read allowlist " + path, ExitCode::kBadInput);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("invalid allowlist: {}:{}:{}: {}", path, e.mark.line + 1,
                            e.mark.column + 1, e.msg),
                ExitCode::kBadInput);
  }
  auto owners = root["owners"];
  if (!owners.IsMap())
    throw Error(
        "invalid allowlist: " + path + ": 'owners': expected a mapping of owner to patterns",
        ExitCode::kBadInput);
  for (const auto& kv : owners) {
    if (!kv.second.IsSequence())
      throw Error(fmt::format("invalid allowlist: {}:{}: 'owners.{}': expected a list of patterns",
                              path, kv.second.Mark().line + 1, kv.first.Scalar()),
                  ExitCode::kBadInput);
    for (const auto& p : kv.second) {
      try {
        a.patterns.push_back({kv.first.Scalar(), std::regex(p.Scalar())});
        a.sources.push_back({kv.first.Scalar(), p.Scalar()});
      } catch (const std::regex_error& e) {
        throw Error(fmt::format("invalid allowlist: {}:{}:{}: 'owners.{}': bad pattern '{}': {}",
                                path, p.Mark().line + 1, p.Mark().column + 1, kv.first.Scalar(),
                                p.Scalar(), e.what()),
                    ExitCode::kBadInput);
      }
    }
  }
  return a;
}

std::string Rule::text() const { return source + " " + table + " " + chain + " " + rule; }

namespace {

void classify(Rule& r, const Allowlist& a) {
  const std::string t = r.text();
  for (const auto& [owner, re] : a.patterns)
    if (std::regex_search(t, re)) {
      r.owner = owner;
      return;
    }
}

// "-A CHAIN spec" lines of iptables-save.
void from_save(const std::string& source, const std::string& text, std::vector<Rule>& out) {
  std::istringstream in(text);
  std::string table;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l[0] == '*') table = l.substr(1);
    if (l.rfind("-A ", 0) != 0) continue;
    auto sp = l.find(' ', 3);
    out.push_back(
        {source, table, l.substr(3, sp - 3), sp == std::string::npos ? "" : l.substr(sp + 1)});
  }
}

// Tables iptables-nft manages (their rules are listed from iptables-nft-save).
const std::set<std::string> kXtTables{"filter", "nat", "mangle", "raw", "security"};

// Rules of native nftables tables, from `nft -a list ruleset`.
void from_nft(const std::string& text, std::vector<Rule>& out) {
  std::istringstream in(text);
  std::string family, table, chain;
  static const std::regex handle_re(R"(^(.*\S)\s+# handle (\d+)$)");
  for (std::string l; std::getline(in, l);) {
    std::string t = l.substr(std::min(l.find_first_not_of(" \t"), l.size()));
    if (t.rfind("table ", 0) == 0) {
      std::istringstream w(t.substr(6));
      w >> family >> table;
      chain.clear();
      continue;
    }
    if (t.rfind("chain ", 0) == 0) {
      std::istringstream w(t.substr(6));
      w >> chain;
      continue;
    }
    if (t == "}" || t.empty()) continue;
    if ((family == "ip" || family == "ip6") && kXtTables.count(table)) continue;
    std::smatch m;
    if (chain.empty() || !std::regex_match(t, m, handle_re)) continue;
    std::string body = m[1];
    if (body.rfind("type ", 0) == 0 || body.rfind("policy ", 0) == 0) continue;
    out.push_back({"nft", family + " " + table, chain, body, std::stoull(m[2])});
  }
}

}  // namespace

std::vector<Rule> list_rules(const std::string& netns, const Allowlist& a) {
  std::vector<Rule> out;
  for (const char* b : {"legacy", "nft"}) {
    std::string tool = std::string("iptables-") + b;
    auto r = run_cmd({tool + "-save"}, {.netns = netns, .check = false});
    from_save(tool, r.out, out);
    auto r6 = run_cmd({std::string("ip6tables-") + b + "-save"}, {.netns = netns, .check = false});
    from_save("ip6" + tool.substr(2), r6.out, out);
  }
  auto n = run_cmd({"nft", "-a", "list", "ruleset"}, {.netns = netns, .check = false});
  from_nft(n.out, out);
  for (auto& r : out) classify(r, a);
  return out;
}

std::vector<Rule> user_rules(const std::vector<Rule>& rules) {
  std::vector<Rule> u;
  for (const auto& r : rules)
    if (!r.owned()) u.push_back(r);
  return u;
}

nlohmann::json to_json(const std::string& node, const std::vector<Rule>& rules) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : rules)
    arr.push_back({{"source", r.source},
                   {"table", r.table},
                   {"chain", r.chain},
                   {"rule", r.rule},
                   {"owner", r.owned() ? nlohmann::json(r.owner) : nlohmann::json(nullptr)}});
  return {{"node", node}, {"rules", arr}, {"userInstalled", user_rules(rules).size()}};
}

}  // namespace hrb::guard
