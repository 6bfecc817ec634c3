#include "core/attach.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"

namespace fs = std::filesystem;

namespace hrb {

namespace {
constexpr std::pair<Attachment::Kind, const char*> kKinds[] = {
    {Attachment::Kind::kTcx, "tcx"},
    {Attachment::Kind::kClsact, "clsact"},
    {Attachment::Kind::kCgroup, "cgroup"},
    {Attachment::Kind::kLsm, "lsm"},
};

bool has_space(const std::string& s) { return s.find_first_of(" \t\r\n") != std::string::npos; }

bool detach_clsact(const Attachment& a) {
  if (!a.netns.empty() && !netns_exists(a.netns)) return false;  // the device went with it
  auto body = [&] {
    const unsigned ifindex = if_nametoindex(a.target.c_str());
    if (!ifindex) return false;
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = static_cast<int>(ifindex);
    hook.attach_point = a.hook == "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS;
    if (a.hook == "qdisc") {  // the clsact qdisc itself, which the harness created
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      const int e = bpf_tc_hook_destroy(&hook);
      if (e == -ENOENT || e == -EINVAL) return false;
      if (e) log::warn("clsact qdisc on {} in {}: {}", a.target, a.netns, std::strerror(-e));
      return e == 0;
    }
    bpf_tc_opts o{};
    o.sz = sizeof o;
    o.handle = a.handle;
    o.priority = a.priority;
    const int e = bpf_tc_detach(&hook, &o);
    if (e == -ENOENT || e == -EINVAL) return false;  // no such filter (or no clsact qdisc)
    if (e) log::warn("tc detach on {} in {}: {}", a.target, a.netns, std::strerror(-e));
    return e == 0;
  };
  return a.netns.empty() ? body() : run_in_netns(a.netns, body);
}

bool detach_link(const Attachment& a) {
  Fd link(bpf_obj_get(a.pin.c_str()));
  if (!link) {
    if (errno != ENOENT) log::warn("open {}: {}", a.pin, std::strerror(errno));
    return false;
  }
  bool detached = bpf_link_detach(link.get()) == 0;
  // ENOLINK: the link is already defunct (its device or netns went first). EOPNOTSUPP: a link
  // kind without detach (LSM on older kernels): unpinning below releases it.
  if (!detached && errno != ENOLINK && errno != EOPNOTSUPP)
    log::warn("detach {}: {}", a.pin, std::strerror(errno));
  if (::unlink(a.pin.c_str()) != 0 && errno != ENOENT)
    log::warn("unpin {}: {}", a.pin, std::strerror(errno));
  return detached;
}
}  // namespace

const char* kind_name(Attachment::Kind k) {
  for (const auto& [kind, name] : kKinds)
    if (kind == k) return name;
  return "?";
}

std::string Attachment::str() const {
  const bool link = kind != Kind::kClsact;
  if (hook.empty() || (link && pin.empty()) ||
      ((kind == Kind::kTcx || kind == Kind::kClsact) && (netns.empty() || target.empty())))
    throw Error(
        fmt::format("incomplete {} attachment (netns '{}', target '{}', hook '{}', pin '{}')",
                    kind_name(kind), netns, target, hook, pin));
  for (const auto* f : {&netns, &target, &hook, &pin})
    if (has_space(*f))
      throw Error(fmt::format("{} attachment: '{}' holds white space", kind_name(kind), *f));
  std::string s = kind_name(kind);
  if (!netns.empty()) s += " netns=" + netns;
  if (!target.empty()) s += " target=" + target;
  s += " hook=" + hook;
  if (!pin.empty()) s += " pin=" + pin;
  if (kind == Kind::kClsact) s += fmt::format(" handle={:#x} prio={}", handle, priority);
  return s;
}

std::optional<Attachment> Attachment::parse(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  if (!(in >> word)) return std::nullopt;
  Attachment a;
  bool known = false;
  for (const auto& [kind, name] : kKinds)
    if (word == name) a.kind = kind, known = true;
  if (!known) return std::nullopt;
  // A number torn mid-write ("0x", "4") does not parse whole, or leaves the other one missing.
  auto number = [](const std::string& v) -> std::optional<uint32_t> {
    size_t end = 0;
    try {
      const unsigned long n = std::stoul(v, &end, 0);
      if (end == v.size() && n <= UINT32_MAX) return static_cast<uint32_t>(n);
    } catch (const std::exception&) {
    }
    return std::nullopt;
  };
  bool handle = false, prio = false;
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) return std::nullopt;
    const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "netns") a.netns = value;
    if (key == "target") a.target = value;
    if (key == "hook") a.hook = value;
    if (key == "pin") a.pin = value;
    if (key == "handle" || key == "prio") {
      auto n = number(value);
      if (!n) return std::nullopt;
      (key == "handle" ? a.handle : a.priority) = *n;
      (key == "handle" ? handle : prio) = true;
    }
  }
  if (a.hook.empty()) return std::nullopt;
  if (a.kind == Kind::kClsact ? !(handle && prio) : a.pin.empty()) return std::nullopt;
  return a;
}

bool detach(const Attachment& a) {
  return a.kind == Attachment::Kind::kClsact ? detach_clsact(a) : detach_link(a);
}

std::vector<Attachment> old_layout_attachments(
    const std::string& pin_root, const std::function<std::string(const std::string&)>& netns_of) {
  std::vector<Attachment> out;
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(pin_root, ec)) {
    if (!dir.is_directory(ec)) continue;
    const std::string sub = dir.path().filename().string();
    for (const auto& e : fs::directory_iterator(dir.path(), ec)) {
      const std::string f = e.path().filename().string(), path = e.path().string();
      auto starts = [&](const char* p) { return f.rfind(p, 0) == 0; };
      if (sub == "guard") {
        if (f == "link_setsockopt")
          out.push_back({.kind = Attachment::Kind::kCgroup, .hook = "setsockopt", .pin = path});
        else if (starts("lsm_"))
          out.push_back({.kind = Attachment::Kind::kLsm, .hook = f.substr(4), .pin = path});
      } else if (starts("link_egress_")) {
        out.push_back(
            {.netns = netns_of(sub), .target = f.substr(12), .hook = "egress", .pin = path});
      } else if (starts("link_")) {
        out.push_back(
            {.netns = netns_of(sub), .target = f.substr(5), .hook = "ingress", .pin = path});
      } else if (starts("clsact_")) {
        out.push_back({.kind = Attachment::Kind::kClsact,
                       .netns = netns_of(sub),
                       .target = f.substr(7),
                       .hook = "ingress",
                       .handle = kClsactHandle,
                       .priority = kClsactPriority});
      }
    }
  }
  return out;
}

}  // namespace hrb
