#pragma once
// `hrbench doctor`: each prerequisite probed by really doing it (load, attach, run), never by
// reading a version number.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hrb::doctor {

struct Check {
  std::string id;        // stable key for --json, e.g. "tcx_attach"
  std::string feature;   // what a reader sees
  bool required = true;  // does a default run need it?
  bool ok = false;
  std::string detail;  // what happened
  std::string fix;     // how to get it, when missing
};

std::vector<Check> run_checks();
// True when every required check passed.
// Whether this kernel's bpf_l4_csum_replace takes BPF_F_IPV6 (6.16 and later): run once on a
// test frame, then remembered. The IPv6 datapath sets it where it can (bpf/lib/common.h,
// csum_flag_ipv6). Throws when the probe cannot run at all (no BPF).
bool kernel_has_csum_ipv6_flag();
bool all_required_ok(const std::vector<Check>& checks);
std::string render_table(const std::vector<Check>& checks);
nlohmann::json to_json(const std::vector<Check>& checks);

}  // namespace hrb::doctor
