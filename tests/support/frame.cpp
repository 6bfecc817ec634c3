#include "support/frame.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "support/pcap.hpp"

namespace hrb::test {

namespace {

uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) { return uint32_t(get16(p)) << 16 | get16(p + 2); }

std::string hex(const uint8_t* p, size_t n, size_t max = 16) {
  std::string s;
  for (size_t i = 0; i < n && i < max; ++i) s += fmt::format("{:02x}", p[i]);
  if (n > max) s += "…";
  return s;
}

std::string tcp_flags(uint8_t f) {
  static const char* names[] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  std::string s;
  for (int i = 0; i < 8; ++i)
    if (f & (1 << i)) s += (s.empty() ? "" : "|") + std::string(names[i]);
  return fmt::format("{:#04x} {}", f, s.empty() ? "none" : s);
}

std::string icmp_type(uint8_t t) {
  switch (t) {
    case 0:
      return "0 echo-reply";
    case 3:
      return "3 dest-unreachable";
    case 4:
      return "4 source-quench";
    case 5:
      return "5 redirect";
    case 8:
      return "8 echo-request";
    case 11:
      return "11 time-exceeded";
    case 12:
      return "12 parameter-problem";
    case 13:
      return "13 timestamp";
    case 14:
      return "14 timestamp-reply";
    default:
      return std::to_string(t);
  }
}

bool icmp_is_error(uint8_t t) { return t == 3 || t == 4 || t == 5 || t == 11 || t == 12; }

// Appends the fields of an IPv4 packet of n bytes at p (frame offset `base`) under `pre`.
// `quoted`: inside an ICMP error (the L4 header may be cut after 8 bytes, no payload listed).
class Dissector {
 public:
  explicit Dissector(std::vector<Field>& out) : out_(out) {}

  void add(const std::string& pre, const std::string& name, std::string value, size_t off,
           size_t len) {
    out_.push_back({pre + name, std::move(value), off, len});
  }
  // False (and a "truncated" field) when fewer than `need` bytes are left at `at`.
  bool have(const std::string& pre, size_t n, size_t at, size_t need, size_t base,
            const char* what) {
    if (at + need <= n) return true;
    add(pre, "truncated", fmt::format("{} needs {} bytes, {} left", what, need, n - at), base + at,
        n - at);
    return false;
  }

  void ipv4(const uint8_t* p, size_t n, size_t base, const std::string& pre, bool quoted) {
    const std::string ip = pre + "ip.";
    if (!have(ip, n, 0, 20, base, "IPv4 header")) return;
    const size_t ihl = (p[0] & 0xf) * 4u;
    const uint16_t tot = get16(p + 2);
    add(ip, "version", std::to_string(p[0] >> 4), base, 1);
    add(ip, "ihl", fmt::format("{} ({} bytes)", p[0] & 0xf, ihl), base, 1);
    add(ip, "tos", fmt::format("{:#04x}", p[1]), base + 1, 1);
    add(ip, "tot_len", std::to_string(tot), base + 2, 2);
    add(ip, "id", fmt::format("{:#06x}", get16(p + 4)), base + 4, 2);
    const uint16_t frag = get16(p + 6);
    add(ip, "frag",
        fmt::format("{}{}{}offset {}", frag & 0x8000 ? "RES " : "", frag & 0x4000 ? "DF " : "",
                    frag & 0x2000 ? "MF " : "", (frag & 0x1fff) * 8),
        base + 6, 2);
    add(ip, "ttl", std::to_string(p[8]), base + 8, 1);
    add(ip, "proto", std::to_string(p[9]), base + 9, 1);
    const bool hdr_there = ihl >= 20 && ihl <= n;
    add(ip, "csum",
        fmt::format("{:#06x}{}", get16(p + 10),
                    hdr_there ? (csum16(p, ihl) == 0 ? " ok" : " bad") : ""),
        base + 10, 2);
    add(ip, "src", Ipv4{get32(p + 12)}.str(), base + 12, 4);
    add(ip, "dst", Ipv4{get32(p + 16)}.str(), base + 16, 4);
    if (ihl < 20) {
      add(ip, "truncated", "ihl below 5", base, 1);
      return;
    }
    if (!have(ip, n, 20, ihl - 20, base, "IPv4 options")) return;
    if (ihl > 20) add(ip, "options", hex(p + 20, ihl - 20, 40), base + 20, ihl - 20);
    // The IP packet's own length bounds L4 (outer packet); a quote is what was quoted.
    size_t end = quoted ? n : std::min<size_t>(n, tot);
    if (!quoted && tot > n)
      add(ip, "truncated", fmt::format("tot_len {} but {} bytes", tot, n), base + n, 0);
    if (!quoted && n > tot && tot >= ihl)
      add(pre, "trailer", fmt::format("{} bytes {}", n - tot, hex(p + tot, n - tot)), base + tot,
          n - tot);
    if (frag & 0x1fff) {
      add(pre, "fragment", fmt::format("{} bytes {}", end - ihl, hex(p + ihl, end - ihl)),
          base + ihl, end - ihl);
      return;
    }
    const uint8_t* l4 = p + ihl;
    const size_t l4n = end > ihl ? end - ihl : 0;
    const size_t l4base = base + ihl;
    // L4 checksums verify only over the whole L4 packet of an unfragmented datagram.
    const bool whole = !(frag & 0x2000) && tot >= ihl && end == tot;
    uint32_t pseudo = 0;
    for (int i = 12; i < 20; i += 2) pseudo += get16(p + i);
    pseudo += p[9] + static_cast<uint32_t>(l4n);
    switch (p[9]) {
      case 6:
        tcp(l4, l4n, l4base, pre, quoted, whole, pseudo);
        break;
      case 17:
        udp(l4, l4n, l4base, pre, quoted, whole, pseudo);
        break;
      case 1:
        icmp(l4, l4n, l4base, pre, quoted, whole);
        break;
      default:
        add(pre, "l4", fmt::format("{} bytes {}", l4n, hex(l4, l4n)), l4base, l4n);
    }
  }

  void tcp(const uint8_t* p, size_t n, size_t base, const std::string& pre, bool quoted, bool whole,
           uint32_t pseudo) {
    const std::string t = pre + "tcp.";
    if (!have(t, n, 0, quoted ? 8 : 20, base, "TCP header")) return;
    add(t, "sport", std::to_string(get16(p)), base, 2);
    add(t, "dport", std::to_string(get16(p + 2)), base + 2, 2);
    add(t, "seq", std::to_string(get32(p + 4)), base + 4, 4);
    if (n < 20) return;  // a quote of 8 bytes
    const size_t doff = (p[12] >> 4) * 4u;
    add(t, "ack", std::to_string(get32(p + 8)), base + 8, 4);
    add(t, "doff", fmt::format("{} ({} bytes)", p[12] >> 4, doff), base + 12, 1);
    add(t, "flags", tcp_flags(p[13]), base + 13, 1);
    add(t, "window", std::to_string(get16(p + 14)), base + 14, 2);
    add(t, "csum",
        fmt::format("{:#06x}{}", get16(p + 16),
                    whole ? (csum16(p, n, pseudo) == 0 ? " ok" : " bad") : ""),
        base + 16, 2);
    add(t, "urg", std::to_string(get16(p + 18)), base + 18, 2);
    if (doff > 20 && doff <= n) add(t, "options", hex(p + 20, doff - 20, 40), base + 20, doff - 20);
    if (!quoted) payload(pre, p, n, std::max<size_t>(20, std::min(doff, n)), base);
  }

  void udp(const uint8_t* p, size_t n, size_t base, const std::string& pre, bool quoted, bool whole,
           uint32_t pseudo) {
    const std::string u = pre + "udp.";
    if (!have(u, n, 0, 8, base, "UDP header")) return;
    add(u, "sport", std::to_string(get16(p)), base, 2);
    add(u, "dport", std::to_string(get16(p + 2)), base + 2, 2);
    add(u, "len", std::to_string(get16(p + 4)), base + 4, 2);
    const uint16_t c = get16(p + 6);
    add(u, "csum",
        c == 0 ? std::string("0x0000 none")
               : fmt::format("{:#06x}{}", c,
                             whole ? (csum16(p, n, pseudo) == 0 ? " ok" : " bad") : ""),
        base + 6, 2);
    if (!quoted) payload(pre, p, n, 8, base);
  }

  void icmp(const uint8_t* p, size_t n, size_t base, const std::string& pre, bool quoted,
            bool whole) {
    const std::string i = pre + "icmp.";
    if (!have(i, n, 0, 8, base, "ICMP header")) return;
    add(i, "type", icmp_type(p[0]), base, 1);
    add(i, "code", std::to_string(p[1]), base + 1, 1);
    add(i, "csum",
        fmt::format("{:#06x}{}", get16(p + 2),
                    whole && !quoted ? (csum16(p, n) == 0 ? " ok" : " bad") : ""),
        base + 2, 2);
    if (icmp_is_error(p[0]) && !quoted) {
      add(i, "rest", fmt::format("{:#010x}", get32(p + 4)), base + 4, 4);
      ipv4(p + 8, n - 8, base + 8, i + "quote.", true);
      return;
    }
    add(i, "id", fmt::format("{} ({:#06x})", get16(p + 4), get16(p + 4)), base + 4, 2);
    add(i, "seq", std::to_string(get16(p + 6)), base + 6, 2);
    if (!quoted) payload(pre, p, n, 8, base);
  }

  void payload(const std::string& pre, const uint8_t* p, size_t n, size_t from, size_t base) {
    if (n > from)
      add(pre, "payload", fmt::format("{} bytes {}", n - from, hex(p + from, n - from)),
          base + from, n - from);
  }

 private:
  std::vector<Field>& out_;
};

}  // namespace

std::vector<Field> dissect(const Bytes& b) {
  std::vector<Field> out;
  Dissector d(out);
  if (!d.have("eth.", b.size(), 0, 14, 0, "Ethernet header")) return out;
  d.add("eth.", "dst", mac_str(&b[0]), 0, 6);
  d.add("eth.", "src", mac_str(&b[6]), 6, 6);
  const uint16_t type = get16(&b[12]);
  const char* tname = type == 0x0800   ? " IPv4"
                      : type == 0x0806 ? " ARP"
                      : type == 0x86dd ? " IPv6"
                                       : "";
  d.add("eth.", "type", fmt::format("{:#06x}{}", type, tname), 12, 2);
  if (type == 0x0800) {
    d.ipv4(&b[14], b.size() - 14, 14, "", false);
  } else if (b.size() > 14) {
    d.add("eth.", "payload", fmt::format("{} bytes {}", b.size() - 14, hex(&b[14], b.size() - 14)),
          14, b.size() - 14);
  }
  return out;
}

std::string frame_diff(const Bytes& expected, const Bytes& actual) {
  if (expected == actual) return {};
  const auto e = dissect(expected), a = dissect(actual);
  size_t first = 0;
  while (first < expected.size() && first < actual.size() && expected[first] == actual[first])
    ++first;
  std::string where = "past the end";
  for (const auto* fs : {&e, &a}) {
    for (const auto& f : *fs) {
      if (first >= f.offset && first < f.offset + f.len) {
        where = f.name;
        break;
      }
    }
    if (where != "past the end") break;
  }
  if (first < 14 && where == "past the end") where = "Ethernet header";
  std::string s = fmt::format(
      "frames differ: expected {} bytes, actual {} bytes; first difference at byte {} ({})\n",
      expected.size(), actual.size(), first, where);
  std::map<std::string, const Field*> by_name;
  for (const auto& f : a) by_name[f.name] = &f;
  size_t w = 5;
  for (const auto* fs : {&e, &a})
    for (const auto& f : *fs) w = std::max(w, f.name.size());
  size_t vw = 8;
  for (const auto& f : e) vw = std::max(vw, std::min<size_t>(f.value.size(), 48));
  s += fmt::format("  {:<{}}  {:<{}}  {}\n", "field", w, "expected", vw, "actual");
  std::map<std::string, bool> seen;
  for (const auto& f : e) {
    seen[f.name] = true;
    auto it = by_name.find(f.name);
    const std::string av = it == by_name.end() ? "-" : it->second->value;
    s += fmt::format("{} {:<{}}  {:<{}}  {}\n", av == f.value ? ' ' : '*', f.name, w, f.value, vw,
                     av);
  }
  for (const auto& f : a)
    if (!seen.count(f.name))
      s += fmt::format("* {:<{}}  {:<{}}  {}\n", f.name, w, "-", vw, f.value);
  return s;
}

std::filesystem::path test_output_dir() {
  const char* env = std::getenv("HRB_TEST_OUTPUT_DIR");
  if (env && *env) return env;
  return std::filesystem::path(HRB_BINARY_DIR) / "test-output";
}

::testing::AssertionResult same_frame(const Bytes& expected, const Bytes& actual,
                                      const Bytes& input) {
  const std::string diff = frame_diff(expected, actual);
  if (diff.empty()) return ::testing::AssertionSuccess();
  std::string name = "no-test";
  if (const auto* t = ::testing::UnitTest::GetInstance()->current_test_info())
    name = std::string(t->test_suite_name()) + "." + t->name();
  std::replace(name.begin(), name.end(), '/', '.');
  static std::map<std::string, int> failures;  // several mismatches in one test: -2, -3, ...
  const int n = ++failures[name];
  const auto path = test_output_dir() / (name + (n > 1 ? fmt::format("-{}", n) : "") + ".pcap");
  std::string written;
  try {
    write_pcap(path, {input, expected, actual});
    written = fmt::format("pcap (input, expected, actual): {}", path.string());
  } catch (const std::exception& ex) {
    written = fmt::format("no pcap: {}", ex.what());
  }
  return ::testing::AssertionFailure() << diff << written;
}

}  // namespace hrb::test
