#pragma once
// One BPF attachment the harness made, as the cluster's journal records it — BEFORE attaching,
// so `clean` can undo it after a crash — and as removal reads it back, instead of working it out
// from pin file names. After libbpf-bootstrap's tc example: remove exactly what was made.
// One journal line each (str()):
//   tcx     netns=<netns> target=<ifname> hook=ingress|egress pin=<link pin>
//   clsact  netns=<netns> target=<ifname> hook=ingress|egress handle=<n> prio=<n>  (no link: the
//           filter lives with the device); hook=qdisc handle=0 prio=0: the clsact qdisc, when the
//           harness created it (destroyed after its filters)
//   cgroup  target=<cgroup directory> hook=setsockopt pin=<link pin>
//   lsm     hook=<LSM program> pin=<link pin>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hrb {

// The clsact filter ebpf mode installs where the kernel has no tcx.
inline constexpr uint32_t kClsactHandle = 0x4842;  // "HB"
inline constexpr uint32_t kClsactPriority = 1;

struct Attachment {
  enum class Kind { kTcx, kClsact, kCgroup, kLsm };
  Kind kind = Kind::kTcx;
  std::string netns;                  // tcx, clsact: the device's netns
  std::string target;                 // tcx, clsact: the device; cgroup: the cgroup directory
  std::string hook;                   // ingress | egress; setsockopt; the LSM program's name
  std::string pin;                    // the link's pin (tcx, cgroup, lsm)
  uint32_t handle = 0, priority = 0;  // clsact filter

  // The journal line; throws Error when a field is empty where it is needed or holds white space.
  std::string str() const;
  // nullopt for a line that is torn or of a kind this version does not know.
  static std::optional<Attachment> parse(const std::string& line);
  bool operator==(const Attachment&) const = default;
};
const char* kind_name(Attachment::Kind k);  // "tcx", "clsact", "cgroup", "lsm"

// Undoes it. A link is detached (BPF_LINK_DETACH is synchronous; unpinning alone would leave the
// program attached until the kernel's deferred release runs) and unpinned; a clsact filter is
// deleted in its netns. What is already gone — never attached, device or netns deleted, pin
// removed — is no error: returns false. Logs what it cannot undo and returns false.
bool detach(const Attachment& a);

// What the version before journalling had attached, read from its pin names under `pin_root`
// (pins::root): link_<ifname>, link_egress_<ifname> and clsact_<ifname> in each node directory
// (netns_of(node) names the node's netns), guard/link_setsockopt and guard/lsm_<program>.
std::vector<Attachment> old_layout_attachments(
    const std::string& pin_root, const std::function<std::string(const std::string&)>& netns_of);

}  // namespace hrb
