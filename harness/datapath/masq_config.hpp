#pragma once
// The ip-masq-agent configuration, as the upstream agent reads it (YAML or JSON):
//   nonMasqueradeCIDRs: [CIDR…]   destinations that keep the pod source address (IPv4 and IPv6
//                                  CIDRs in one list, as the agent takes them)
//   masqLinkLocal: bool            masquerade 169.254.0.0/16 too (default false)
//   masqLinkLocalIPv6: bool        the same for fe80::/10 (default false)
//   resyncInterval: duration       how often the agent re-reads the file ("60s", "1m", "500ms")
// Keys left out take the agent's defaults. One parser serves legacy mode (iptables chain),
// ebpf mode (LPM map) and the agent (issue 7).
#include <string>
#include <vector>

#include "core/ipv4.hpp"
#include "core/ipv6.hpp"

namespace hrb::datapath {

struct MasqConfig {
  std::string source;                  // file it came from, or "(defaults)"
  std::vector<Cidr> non_masquerade;    // the IPv4 entries of nonMasqueradeCIDRs
  std::vector<Cidr6> non_masquerade6;  // its IPv6 entries (the agent's defaults have none)
  bool masq_link_local = false;
  bool masq_link_local_ipv6 = false;
  int resync_interval_ms = 60000;

  // Destinations that RETURN from IP-MASQ-AGENT, in the agent's order: link-local first (unless
  // masqLinkLocal), then nonMasqueradeCIDRs.
  std::vector<Cidr> return_cidrs() const;
  bool masquerades(Ipv4 dst) const;
  // The same for ip6tables' IP-MASQ-AGENT chain: fe80::/10 first (unless masqLinkLocalIPv6),
  // then the IPv6 nonMasqueradeCIDRs — as the agent syncs its IPv6 rules.
  std::vector<Cidr6> return_cidrs6() const;
  bool masquerades(const Ipv6& dst) const;
};

// The agent's built-in nonMasqueradeCIDRs (RFC 1918, RFC 6598 and the other reserved ranges).
std::vector<Cidr> default_non_masquerade_cidrs();
MasqConfig default_masq_config();

// Throws Error(kBadInput) naming the file, line and key on any problem.
MasqConfig parse_masq_config_file(const std::string& path);
MasqConfig parse_masq_config_string(const std::string& text, const std::string& label);

}  // namespace hrb::datapath
