#pragma once
// The bpffs pin layout, the one place that knows it. Everything a cluster pins lives under its
// root, so `down`/`clean` remove it by directory and scripts/kill-test counts it:
//   /sys/fs/bpf/hrbench/                 shared by every prefix (removed once empty)
//     <prefix>/                          root(prefix)
//       <node>/                          node_dir: ebpf mode's maps (map()) and tc links
//         counters_from_pod, ct, …       maps
//         slot_<program>                 alternated runs: the dispatcher's one-slot prog array
//         prog_<program>[_vN]            … each variant's programs; counters_<program>_vN the
//                                        counters of variant N >= 1 (variant(): the suffix)
//         link_<ifname>                  tcx link on the device's ingress (tc_link())
//         link_egress_<ifname>           tcx link on its egress (bpf-lb's to_pod)
//       guard/                           guard_dir: the iptables blocker's links and counters
//         link_setsockopt, counters      cgroup/setsockopt variant
//         lsm_<program>, counters_lsm    BPF LSM variant
// What is attached is not read back from these names: each attachment is journalled
// (core/attach.hpp, topology::StateDir); old_layout_attachments() reads them only for the journal
// of a cluster made by the version before attachments were journalled.
#include <cstddef>
#include <cstdint>
#include <string>

namespace hrb::pins {

inline constexpr const char* kBpffs = "/sys/fs/bpf";  // where bpffs is mounted
inline constexpr uint32_t kBpffsMagic = 0xcafe4a11;   // statfs f_type of bpffs

std::string parent();                         // /sys/fs/bpf/hrbench
std::string root(const std::string& prefix);  // /sys/fs/bpf/hrbench/<prefix>
std::string node_dir(const std::string& prefix, const std::string& node);
std::string map(const std::string& prefix, const std::string& node, const std::string& name);
// An alternated run's name of variant `v` of a pinned object: `name` for 0, `name_vN` after.
std::string variant(const std::string& name, size_t v);
std::string tc_link(const std::string& prefix, const std::string& node, const std::string& ifname,
                    bool egress);
std::string guard_dir(const std::string& prefix);
std::string guard(const std::string& prefix, const std::string& name);  // guard_dir/<name>

// Mounts bpffs at kBpffs when it is not there (as scripts/setup does).
void ensure_bpffs();

}  // namespace hrb::pins
