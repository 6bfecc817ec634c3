#pragma once
// The IP Masquerade Agent: watches the ip-masq-agent config file and, when it changes (and every
// resyncInterval), reprograms the IP-MASQ-AGENT chain of every node (one iptables-restore batch
// per node: flush and refill the chain, committed atomically per table) and, in ebpf mode, swaps
// in a new non-masquerade trie (one map update per node). A bad file changes nothing and is
// reported. In ebpf mode the chain stays installed, bypassed, so a switch back to legacy needs no
// reconfiguration.
#include <atomic>
#include <string>

#include "topology/layout.hpp"
#include "topology/state.hpp"

namespace hrb::datapath {

struct MasqAgentOptions {
  std::string config;  // the file to watch
  double poll_seconds = 0.2;
  bool once = false;  // apply once and return
};

// Applies `config` to the running cluster's mode; throws on a bad file (nothing changed).
void apply_masq_config(const topology::Layout& l, const topology::StateDir& state,
                       const std::string& config);

// Runs until `stop`; returns 0, or 3 when --once met a bad file.
int run_masq_agent(const topology::Layout& l, const topology::StateDir& state,
                   const MasqAgentOptions& o, const std::atomic<bool>& stop);

}  // namespace hrb::datapath
