#include "datapath/status.hpp"

#include <fmt/format.h>

namespace hrb::datapath {

std::string describe_mode(const ModeOptions& m) {
  if (m.name != "legacy") return m.name;
  return fmt::format("{} (iptables-{}, {} services x {} endpoints, masq config {})", m.name,
                     backend_name(m.backend), m.services, m.endpoints_per_service,
                     m.masq_config.empty() ? "agent defaults" : m.masq_config);
}

bool has_bpf_counters(const ModeOptions& m) { return m.name == "ebpf" || m.name == "bpf-lb"; }

std::string render_counters(
    const std::map<std::string, std::map<std::string, ReasonCounters>>& counters) {
  std::string out;
  for (const auto& [node, progs] : counters)
    for (const auto& [prog, c] : progs) {
      std::string line;
      for (int r = 0; r < HRB_R__MAX; ++r)
        if (c[r]) line += fmt::format(" {}={}", reason_name(r), c[r]);
      out += fmt::format("  {} {}:{}\n", node, prog, line.empty() ? " (nothing yet)" : line);
    }
  return out;
}

}  // namespace hrb::datapath
