#pragma once
// datapath::Mode: a datapath configuration applied to, and removed from, a live cluster. A cluster
// does not know which mode runs on it; modes are swapped without rebuilding, so A/B runs share
// one topology. The current mode is recorded in the cluster's state directory (mode.json).
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "datapath/iptables.hpp"
#include "datapath/masq_config.hpp"
#include "topology/layout.hpp"
#include "topology/state.hpp"

namespace hrb::datapath {

struct ModeOptions {
  std::string name = "none";        // none | legacy | ebpf
  Backend backend = Backend::kNft;  // iptables backend of legacy mode's rules
  std::string masq_config;          // ip-masq-agent config file; empty: the agent's defaults
  int services = 0;                 // kube-proxy-scale services (legacy rules)
  int endpoints_per_service = 1;
  uint32_t delay_loops = 0;  // ebpf: calibration cost per packet (the gate's power test)
  uint32_t ct_entries = 0;   // ebpf: connection-tracking table size per node; 0: the default
  bool force = false;        // ebpf: apply despite user-installed rules (not recorded)
  std::string allowlist;     // iptables monitor allowlist; empty: config/iptables-allowlist.yaml
  nlohmann::json to_json() const;
  static ModeOptions from_json(const nlohmann::json& j);
};

class Mode {
 public:
  virtual ~Mode() = default;
  virtual std::string name() const = 0;
  // Applies to every node. On failure, whatever was applied is removed before the error
  // propagates: a mode is all or nothing.
  virtual void apply(const topology::Layout& layout) = 0;
  // Leaves each node netns as it was before apply.
  virtual void remove(const topology::Layout& layout) = 0;
};

// Validates options (reads the masq config) before anything is touched; throws kBadInput.
// `state` is needed by modes that record objects outside the cluster's namespaces (ebpf).
std::unique_ptr<Mode> make_mode(const ModeOptions& opts, topology::StateDir* state = nullptr);

// The mode recorded for a cluster, or "none".
ModeOptions current_mode(const topology::StateDir& state);
// Removes the current mode and applies `next`, recording it. The caller holds the lock. If
// `next` fails to apply, the cluster is left in mode none and the error propagates.
void switch_mode(topology::StateDir& state, const topology::Layout& layout,
                 const ModeOptions& next);

}  // namespace hrb::datapath
