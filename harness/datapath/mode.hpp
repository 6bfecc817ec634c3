#pragma once
// datapath::Mode: a datapath configuration applied to, and removed from, a live cluster. A cluster
// does not know which mode runs on it; modes are swapped without rebuilding, so A/B runs share
// one topology. The current mode is recorded in the cluster's state directory (mode.json).
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datapath/iptables.hpp"
#include "datapath/masq_config.hpp"
#include "topology/layout.hpp"
#include "topology/state.hpp"

namespace hrb::datapath {

// What a mode is, whatever build's objects it runs.
enum class ModeKind { kNone, kLegacy, kBpfLb, kEbpf };
const char* kind_name(ModeKind k);  // "none", "legacy", "bpf-lb", "ebpf"

// How ebpf and bpf-lb attach their tc programs: tcx links (the default; what Cilium uses on
// kernels >= 6.6), or clsact filters (cls_bpf, direct action), which a large cluster applies and
// removes several times faster: each tcx attachment waits for an RCU grace period under RTNL
// (docs/scale.md). Without tcx in the kernel, clsact is used either way.
enum class Attach { kTcx, kClsact };
const char* attach_name(Attach a);          // "tcx", "clsact"
Attach parse_attach(const std::string& s);  // throws kUsage naming --attach and the choices

struct ModeOptions {
  std::string name = "none";        // none | legacy | bpf-lb | ebpf (a kind_name)
  Backend backend = Backend::kNft;  // iptables backend of legacy mode's rules
  std::string masq_config;          // ip-masq-agent config file; empty: the agent's defaults
  int services = 0;                 // kube-proxy-scale services (legacy rules)
  int endpoints_per_service = 1;
  uint32_t delay_loops = 0;  // ebpf: calibration cost per packet (the gate's power test)
  uint32_t ct_entries = 0;   // ebpf: connection-tracking table size per node; 0: the default
  bool force = false;        // ebpf: apply despite user-installed rules (not recorded)
  std::string allowlist;     // iptables monitor allowlist; empty: config/iptables-allowlist.yaml
  // ebpf, bpf-lb: the directory of another build's BPF objects (resolve_objects_dir: the
  // from_pod.bpf.o, from_uplink.bpf.o to load); empty: this build's objects.
  std::string objects_dir;
  Attach attach = Attach::kTcx;  // ebpf, bpf-lb
  // Alternation (hrbench run --alternate): more variants of this BPF mode, loaded beside the
  // first (objects_dir, delay_loops) and sharing its maps; a one-slot tail-call dispatcher is
  // attached in their place and VariantSelector (ebpf.hpp) points it at one variant after
  // another. Empty: the usual mode.
  struct Variant {
    std::string objects_dir;  // empty: this build's objects
    uint32_t delay_loops = 0;
    bool operator==(const Variant&) const = default;
  };
  std::vector<Variant> alternates;
  // Names for objects directories, so that a mode of another build has a stable name:
  // "ebpf@base" runs ebpf with object_aliases["base"] (defined by "ebpf@base=DIR").
  std::map<std::string, std::string> object_aliases;
  ModeKind kind() const;  // from name; throws kUsage for an unknown one
  nlohmann::json to_json() const;
  static ModeOptions from_json(const nlohmann::json& j);
};

// A mode name as `hrbench run --modes` takes it, and as results record it:
//   KIND               none, legacy, bpf-lb, ebpf, or the pseudo-mode ebpf-delay (ebpf with the
//                      run's calibration delay)
//   KIND@DIR           a BPF-backed kind with the objects of another build: DIR is that build's
//                      directory (its bpf/ holds the objects) or the objects directory itself;
//                      DIR contains a '/' (./build for a relative one)
//   KIND@ALIAS=DIR     the same, recorded as KIND@ALIAS (a stable name for gate policies)
//   KIND@ALIAS         an alias defined in ModeOptions::object_aliases
// ALIAS: letters, digits, '-', '_' and '.', not starting with '.'.
struct ParsedMode {
  ModeKind kind = ModeKind::kNone;
  std::string label;               // the name as results record it ("ebpf@base" for ebpf@base=DIR)
  bool calibration_delay = false;  // ebpf-delay
  std::string alias;               // ALIAS of KIND@ALIAS[=DIR]; empty otherwise
  ModeOptions options;             // `defaults` with name = kind_name(kind), objects_dir resolved
};
// Throws Error: kUsage for a malformed or unknown name ("legacy@DIR: legacy has no BPF objects",
// an undefined alias), kBadInput for a DIR that does not exist or lacks an object (named).
ParsedMode parse_mode(const std::string& name, const ModeOptions& defaults = {});
// Each KIND@ALIAS=DIR of `modes` becomes KIND@ALIAS, its directory (resolved, absolute) put in
// opts.object_aliases; each name is checked with parse_mode. A second, different definition of
// one alias is a usage error.
void define_mode_aliases(std::vector<std::string>& modes, ModeOptions& opts);
// DIR, or DIR/bpf, whichever holds every datapath object (ebpf.hpp kDatapathObjects), absolute.
std::string resolve_objects_dir(const std::string& dir, const std::string& mode_name);

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
