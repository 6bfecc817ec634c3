#include "core/pins.hpp"

#include <sys/mount.h>
#include <sys/statfs.h>

#include <filesystem>

#include "core/error.hpp"

namespace hrb::pins {

std::string parent() { return std::string(kBpffs) + "/hrbench"; }
std::string root(const std::string& prefix) { return parent() + "/" + prefix; }
std::string node_dir(const std::string& prefix, const std::string& node) {
  return root(prefix) + "/" + node;
}
std::string map(const std::string& prefix, const std::string& node, const std::string& name) {
  return node_dir(prefix, node) + "/" + name;
}
std::string variant(const std::string& name, size_t v) {
  return v == 0 ? name : name + "_v" + std::to_string(v);  // bpffs refuses names with a dot
}
std::string tc_link(const std::string& prefix, const std::string& node, const std::string& ifname,
                    bool egress) {
  return node_dir(prefix, node) + (egress ? "/link_egress_" : "/link_") + ifname;
}
std::string guard_dir(const std::string& prefix) { return root(prefix) + "/guard"; }
std::string guard(const std::string& prefix, const std::string& name) {
  return guard_dir(prefix) + "/" + name;
}

void ensure_bpffs() {
  struct statfs st {};
  if (statfs(kBpffs, &st) == 0 && st.f_type == kBpffsMagic) return;
  std::filesystem::create_directories(kBpffs);
  if (mount("bpf", kBpffs, "bpf", 0, nullptr) != 0)
    throw_errno(std::string("mount bpffs at ") + kBpffs + " (scripts/setup does this)");
}

}  // namespace hrb::pins
