#include "datapath/masq_config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <set>

#include "core/error.hpp"
#include "core/file.hpp"

namespace hrb::datapath {

std::vector<Cidr> default_non_masquerade_cidrs() {
  std::vector<Cidr> v;
  for (const char* s : {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
                        "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"})
    v.push_back(*Cidr::parse(s));
  return v;
}

MasqConfig default_masq_config() {
  MasqConfig c;
  c.source = "(ip-masq-agent defaults)";
  c.non_masquerade = default_non_masquerade_cidrs();
  return c;
}

std::vector<Cidr> MasqConfig::return_cidrs() const {
  std::vector<Cidr> v;
  if (!masq_link_local) v.push_back(*Cidr::parse("169.254.0.0/16"));
  v.insert(v.end(), non_masquerade.begin(), non_masquerade.end());
  return v;
}

bool MasqConfig::masquerades(Ipv4 dst) const {
  for (const auto& c : return_cidrs())
    if (c.contains(dst)) return false;
  return true;
}

std::vector<Cidr6> MasqConfig::return_cidrs6() const {
  std::vector<Cidr6> v;
  if (!masq_link_local_ipv6) v.push_back(*Cidr6::parse("fe80::/10"));
  v.insert(v.end(), non_masquerade6.begin(), non_masquerade6.end());
  return v;
}

bool MasqConfig::masquerades(const Ipv6& dst) const {
  for (const auto& c : return_cidrs6())
    if (c.contains(dst)) return false;
  return true;
}

namespace {

[[noreturn]] void fail(const std::string& label, const YAML::Node& at, const std::string& key,
                       const std::string& msg) {
  std::string where = label;
  if (at.IsDefined()) where += fmt::format(":{}:{}", at.Mark().line + 1, at.Mark().column + 1);
  throw Error(fmt::format("invalid ip-masq-agent config: {}: '{}': {}", where, key, msg),
              ExitCode::kBadInput);
}

bool as_bool(const std::string& label, const YAML::Node& n, const std::string& key) {
  bool b = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, b))
    fail(label, n, key, "expected true or false");
  return b;
}

// Go-style durations as the agent takes them: "60s", "1m30s", "500ms", "2h" — parts of digits
// (with an optional fraction) and a unit. Scanned by hand: std::regex backtracked on long inputs
// (fuzz_masq_config ran at ~60 inputs/s), and 400 digits are infinite here, then out of range.
int parse_duration_ms(const std::string& label, const YAML::Node& n) {
  if (!n.IsScalar()) fail(label, n, "resyncInterval", "expected a duration such as \"60s\"");
  const std::string s = n.Scalar();
  auto digit = [&](size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
  double total = 0;
  size_t pos = 0;
  bool ok = !s.empty();
  while (ok && pos < s.size()) {
    const size_t start = pos;
    while (digit(pos)) ++pos;
    if (pos == start) {
      ok = false;
      break;
    }
    if (pos < s.size() && s[pos] == '.' && digit(pos + 1))
      for (++pos; digit(pos);) ++pos;
    const double v = std::strtod(s.substr(start, pos - start).c_str(), nullptr);
    double unit = 0;
    if (s.compare(pos, 2, "ms") == 0) {
      unit = 1;
      pos += 2;
    } else if (pos < s.size() && (s[pos] == 's' || s[pos] == 'm' || s[pos] == 'h')) {
      unit = s[pos] == 's' ? 1000 : s[pos] == 'm' ? 60000 : 3600000;
      ++pos;
    } else {
      ok = false;
    }
    total += v * unit;
  }
  if (!ok) fail(label, n, "resyncInterval", "'" + s + "' is not a duration (e.g. 60s, 1m, 500ms)");
  if (!(total >= 1 && total <= 86400000.0))
    fail(label, n, "resyncInterval", "must be between 1ms and 24h");
  return static_cast<int>(total);
}

}  // namespace

MasqConfig parse_masq_config_string(const std::string& text, const std::string& label) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("invalid ip-masq-agent config: {}:{}:{}: syntax error: {}", label,
                            e.mark.line + 1, e.mark.column + 1, e.msg),
                ExitCode::kBadInput);
  }
  MasqConfig c = default_masq_config();
  c.source = label;
  if (!root.IsDefined() || root.IsNull()) return c;  // an empty file: all defaults
  if (!root.IsMap()) fail(label, root, "", "expected a mapping");
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const std::string k = kv.first.Scalar();
    const YAML::Node v = kv.second;
    if (!seen.insert(k).second) fail(label, kv.first, k, "duplicate key");
    if (k == "nonMasqueradeCIDRs") {
      if (!v.IsSequence()) fail(label, v, k, "expected a list of CIDRs");
      c.non_masquerade.clear();
      for (size_t i = 0; i < v.size(); ++i) {
        std::string key = fmt::format("{}[{}]", k, i);
        if (!v[i].IsScalar()) fail(label, v[i], key, "expected a CIDR string");
        std::string why;
        // An IPv6 CIDR has a colon; the agent puts it in its ip6tables chain.
        if (v[i].Scalar().find(':') != std::string::npos) {
          auto cidr = Cidr6::parse(v[i].Scalar(), &why);
          if (!cidr) fail(label, v[i], key, "bad IPv6 CIDR '" + v[i].Scalar() + "': " + why);
          c.non_masquerade6.push_back(*cidr);
          continue;
        }
        auto cidr = Cidr::parse(v[i].Scalar(), &why);
        if (!cidr) fail(label, v[i], key, "bad CIDR '" + v[i].Scalar() + "': " + why);
        c.non_masquerade.push_back(*cidr);
      }
    } else if (k == "masqLinkLocal") {
      c.masq_link_local = as_bool(label, v, k);
    } else if (k == "masqLinkLocalIPv6") {
      c.masq_link_local_ipv6 = as_bool(label, v, k);
    } else if (k == "resyncInterval") {
      c.resync_interval_ms = parse_duration_ms(label, v);
    } else {
      fail(label, kv.first, k,
           "unknown key (expected nonMasqueradeCIDRs, masqLinkLocal, masqLinkLocalIPv6, "
           "resyncInterval)");
    }
  }
  return c;
}

MasqConfig parse_masq_config_file(const std::string& path) {
  return parse_masq_config_string(read_text_file(path, "ip-masq-agent config"), path);
}

}  // namespace hrb::datapath
