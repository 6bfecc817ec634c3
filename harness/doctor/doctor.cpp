#include "doctor/doctor.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "core/bpf.hpp"
#include "core/fd.hpp"
#include "core/perf.hpp"
#include "core/pins.hpp"
#include "core/process.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "doctor_probe.skel.h"

namespace hrb::doctor {
namespace {

constexpr unsigned kXdpLiveFrames = 1u << 1;  // BPF_F_TEST_XDP_LIVE_FRAMES

using Probe = std::function<std::string()>;  // returns detail on success, throws on failure

Check probe(std::string id, std::string feature, bool required, std::string fix, const Probe& fn) {
  Check c{std::move(id), std::move(feature), required, false, "", std::move(fix)};
  try {
    c.detail = fn();
    c.ok = true;
    c.fix.clear();
  } catch (const std::exception& e) {
    c.detail = e.what();
  }
  return c;
}

// Opens the probe object with only program `prog` set to load.
Skeleton<doctor_probe> probe_skeleton(bpf_program* (*pick)(doctor_probe*), uint32_t ifindex = 1) {
  Skeleton<doctor_probe> s;
  bpf_program* keep = pick(s.get());
  bpf_program* p;
  bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, p == keep);
  s->rodata->target_ifindex = ifindex;
  s.load(bpf_program__name(keep));
  return s;
}

// Sends one UDP datagram to 127.0.0.1 in the current netns (it crosses lo's ingress).
void send_one_on_lo() {
  Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) throw_errno("socket");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char b[32] = {};
  if (sendto(s.get(), b, sizeof b, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
    throw_errno("sendto 127.0.0.1");
}

bool has_cap(int cap) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> cap) & 1;
  return false;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

Probe program_loads(bpf_program* (*pick)(doctor_probe*), std::string what) {
  return [pick, what] {
    auto s = probe_skeleton(pick);
    return "a program calling " + what + " passed the verifier";
  };
}

Probe command_in_scratch_netns(std::vector<std::string> argv) {
  return [argv] {
    if (find_program(argv[0]).empty()) throw Error(argv[0] + " is not installed");
    auto r = run_cmd(argv, {.new_anon_netns = true});
    return "`" + shell_join(argv) + "` works in a scratch netns";
  };
}

Probe on_path(std::string prog, std::vector<std::string> version_argv) {
  return [prog, version_argv] {
    std::string p = find_program(prog);
    if (p.empty()) throw Error(prog + " is not on PATH");
    auto r = run_cmd(version_argv, {.check = false});
    std::string v = first_line(r.out.empty() ? r.err : r.out);
    return p + (v.empty() ? "" : " (" + v + ")");
  };
}

}  // namespace

bool kernel_has_csum_ipv6_flag() {
  static const bool has = [] {
    auto s = probe_skeleton([](doctor_probe* d) { return d->progs.probe_csum_ipv6; });
    unsigned char frame[128] = {};  // Ethernet, IPv6 (next header TCP), TCP: zeros but these
    frame[12] = 0x86;
    frame[13] = 0xdd;
    frame[14] = 0x60;
    frame[14 + 6] = 6;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame);
    if (bpf_prog_test_run_opts(bpf_program__fd(s->progs.probe_csum_ipv6), &opts) != 0)
      throw_errno("bpf_prog_test_run_opts(probe_csum_ipv6)");
    return opts.retval == 0;
  }();
  return has;
}

std::vector<Check> run_checks() {
  std::vector<Check> out;
  const std::string setup = "run scripts/setup (it installs every package and mounts bpffs)";

  out.push_back(
      probe("root", "root with CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF", true,
            "run hrbench as root (sudo)", [] {
              if (geteuid() != 0) throw Error("not running as root");
              for (auto [cap, name] :
                   {std::pair{12, "CAP_NET_ADMIN"}, {21, "CAP_SYS_ADMIN"}, {39, "CAP_BPF"}})
                if (!has_cap(cap)) throw Error(std::string(name) + " is missing");
              return std::string("uid 0, capabilities present");
            }));
  out.push_back(probe("kernel", "kernel and distribution", false, "", [] {
    utsname u{};
    uname(&u);
    std::string distro;
    std::ifstream f("/etc/os-release");
    for (std::string l; std::getline(f, l);)
      if (l.rfind("PRETTY_NAME=", 0) == 0) distro = l.substr(13, l.size() - 14);
    return std::string(u.sysname) + " " + u.release + " " + u.machine + ", " + distro;
  }));
  const std::string bpffs = pins::kBpffs;
  out.push_back(probe("bpffs", "bpffs mounted at " + bpffs, true,
                      "mount -t bpf bpf " + bpffs + " (" + setup + ")", [bpffs] {
                        struct statfs st {};
                        if (statfs(bpffs.c_str(), &st) != 0 || st.f_type != pins::kBpffsMagic)
                          throw Error(bpffs + " is not a bpf filesystem");
                        return std::string("mounted");
                      }));
  out.push_back(probe("btf", "kernel BTF (/sys/kernel/btf/vmlinux)", true,
                      "a kernel built with CONFIG_DEBUG_INFO_BTF=y", [] {
                        btf* b = btf__load_vmlinux_btf();
                        if (!b) throw_errno("btf__load_vmlinux_btf");
                        size_t n = btf__type_cnt(b);
                        btf__free(b);
                        return fmt::format("{} types", n);
                      }));
  out.push_back(probe("iproute2", "iproute2 (ip netns, veth, bridge)", true, setup, [] {
    if (find_program("ip").empty()) throw Error("`ip` is not installed");
    run_cmd({"ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"},
            {.new_anon_netns = true});
    return std::string("veth pair created in a scratch netns");
  }));
  out.push_back(probe(
      "tcx_attach", "tcx attach (BPF_TCX_INGRESS link)", false,
      "kernel >= 6.6; without it hrbench falls back to clsact", [] {
        auto s = probe_skeleton([](doctor_probe* d) { return d->progs.probe_count; });
        return run_in_scratch_netns([&] {
          Fd link(bpf_link_create(bpf_program__fd(s->progs.probe_count), 1, kTcxIngress, nullptr));
          if (!link) throw_errno("bpf_link_create(BPF_TCX_INGRESS) on lo");
          uint64_t before = s->bss->stats.packets;
          send_one_on_lo();
          if (s->bss->stats.packets <= before)
            throw Error("attached, but the program saw no packet");
          return std::string("attached to lo in a scratch netns and counted a packet");
        });
      }));
  out.push_back(
      probe("clsact_attach", "clsact + tc BPF attach", true, "kernel with CONFIG_NET_CLS_ACT", [] {
        auto s = probe_skeleton([](doctor_probe* d) { return d->progs.probe_count; });
        return run_in_scratch_netns([&] {
          bpf_tc_hook hook{};
          hook.sz = sizeof hook;
          hook.ifindex = 1;
          hook.attach_point = BPF_TC_INGRESS;
          if (int e = bpf_tc_hook_create(&hook); e && e != -EEXIST)
            throw SysError(-e, "bpf_tc_hook_create(clsact) on lo");
          bpf_tc_opts opts{};
          opts.sz = sizeof opts;
          opts.prog_fd = bpf_program__fd(s->progs.probe_count);
          if (int e = bpf_tc_attach(&hook, &opts)) throw SysError(-e, "bpf_tc_attach on lo");
          uint64_t before = s->bss->stats.packets;
          send_one_on_lo();
          hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
          bpf_tc_hook_destroy(&hook);
          if (s->bss->stats.packets <= before)
            throw Error("attached, but the program saw no packet");
          return std::string("attached to lo in a scratch netns and counted a packet");
        });
      }));
  {
    // The attach ebpf mode makes (datapath/ebpf.cpp): tcx links where the kernel has them, clsact
    // filters otherwise; the fallback named when it is the one in use.
    const Check& tcx = out[out.size() - 2];
    const Check& clsact = out.back();
    Check c{"tc_attach", "tc attach ebpf mode uses", false, tcx.ok || clsact.ok, "", ""};
    c.detail = tcx.ok ? "tcx links"
               : clsact.ok
                   ? "clsact (the fallback: tcx is missing on this kernel; bpf-lb mode needs tcx)"
                   : "neither tcx nor clsact attaches";
    if (!c.ok) c.fix = clsact.fix;
    out.push_back(std::move(c));
  }
  out.push_back(probe("redirect_peer", "bpf_redirect_peer helper", true, "kernel >= 5.10",
                      program_loads([](doctor_probe* d) { return d->progs.probe_redirect_peer; },
                                    "bpf_redirect_peer")));
  out.push_back(probe("redirect_neigh", "bpf_redirect_neigh helper", true, "kernel >= 5.10",
                      program_loads([](doctor_probe* d) { return d->progs.probe_redirect_neigh; },
                                    "bpf_redirect_neigh")));
  out.push_back(probe(
      "fib_lookup", "bpf_fib_lookup helper (tc)", true, "kernel >= 5.3",
      program_loads([](doctor_probe* d) { return d->progs.probe_fib_lookup; }, "bpf_fib_lookup")));
  out.push_back(
      probe("csum_ipv6", "IPv6 checksum flag of bpf_l4_csum_replace (BPF_F_IPV6)", false,
            "kernel >= 6.16 (or a stable kernel with the fix backported: Debian's 6.1.0-57 has "
            "it); without it NAT66 and IPv6 service rewrites leave skb->csum "
            "of a CHECKSUM_COMPLETE packet stale, as kernels before the flag did",
            [] {
              if (!kernel_has_csum_ipv6_flag())
                throw Error("the kernel refuses BPF_F_IPV6 (-EINVAL)");
              return std::string("bpf_l4_csum_replace took BPF_F_IPV6 on a test frame");
            }));
  out.push_back(
      probe("xdp_live_frames", "XDP live frames (BPF_F_TEST_XDP_LIVE_FRAMES)", false,
            "kernel >= 5.18; needed only by the pps workload", [] {
              auto s = probe_skeleton([](doctor_probe* d) { return d->progs.probe_xdp_live; });
              return run_in_scratch_netns([&] {
                unsigned char frame[64] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                                           0,    0,    0,    0,    1,    0x08, 0x00};
                LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame,
                            .repeat = 16, .flags = kXdpLiveFrames);
                if (bpf_prog_test_run_opts(bpf_program__fd(s->progs.probe_xdp_live), &opts) != 0)
                  throw_errno("bpf_prog_test_run_opts(BPF_F_TEST_XDP_LIVE_FRAMES)");
                if (s->bss->stats.packets != 16)
                  throw Error(fmt::format("ran, but the program saw {} of 16 frames",
                                          s->bss->stats.packets));
                return std::string("16 live frames run through an XDP program");
              });
            }));
  out.push_back(
      probe("cgroup_sockopt", "cgroup-BPF setsockopt hook (iptables blocker)", false,
            "cgroup v2 mounted (/sys/fs/cgroup/unified or /sys/fs/cgroup)", [] {
              auto s = probe_skeleton([](doctor_probe* d) { return d->progs.probe_setsockopt; });
              std::string base;
              for (const char* cand : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
                struct statfs st {};
                if (statfs(cand, &st) == 0 && st.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */) {
                  base = cand;
                  break;
                }
              }
              if (base.empty()) throw Error("no cgroup v2 mount found");
              std::string dir = base + "/hrb-doctor-" + std::to_string(getpid());
              if (mkdir(dir.c_str(), 0755) != 0) throw_errno("mkdir " + dir);
              struct Rm {
                std::string d;
                ~Rm() { rmdir(d.c_str()); }
              } rm{dir};
              Fd cg(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
              if (!cg) throw_errno("open " + dir);
              int pfd = bpf_program__fd(s->progs.probe_setsockopt);
              if (bpf_prog_attach(pfd, cg.get(), BPF_CGROUP_SETSOCKOPT, 0) != 0)
                throw_errno("bpf_prog_attach(BPF_CGROUP_SETSOCKOPT)");
              bpf_prog_detach2(pfd, cg.get(), BPF_CGROUP_SETSOCKOPT);
              return "attached to and detached from a scratch cgroup under " + base;
            }));
  out.push_back(
      probe("bpf_lsm", "BPF LSM (AKS-style iptables blocker)", false,
            "boot with lsm=...,bpf; hrbench falls back to cgroup-BPF + an nftables watcher",
            program_loads([](doctor_probe* d) { return d->progs.probe_lsm; },
                          "an lsm/socket_setsockopt hook")));
  out.push_back(probe("iptables_nft", "iptables (nft backend)", true, setup,
                      command_in_scratch_netns({"iptables-nft", "-w", "-t", "nat", "-S"})));
  out.push_back(probe("iptables_legacy", "iptables-legacy", false, setup,
                      command_in_scratch_netns({"iptables-legacy", "-w", "-t", "nat", "-S"})));
  out.push_back(probe("nft", "nft (nftables)", false, setup,
                      command_in_scratch_netns({"nft", "list", "ruleset"})));
  out.push_back(probe("iperf3", "iperf3 (cross-check)", false, setup,
                      on_path("iperf3", {"iperf3", "--version"})));
  out.push_back(probe("sockperf", "sockperf (cross-check)", false, setup,
                      on_path("sockperf", {"sockperf", "--version"})));
  out.push_back(probe("perf", "perf record -e cpu-clock -a -g (--profile)", false,
                      "package linux-perf (scripts/setup installs it); run as root", probe_perf));
  out.push_back(probe("bpf_stats", "kernel.bpf_stats_enabled (per-program run time)", false,
                      "a kernel with CONFIG_BPF_SYSCALL; run as root", [] {
                        std::ifstream r("/proc/sys/kernel/bpf_stats_enabled");
                        std::string v;
                        if (!std::getline(r, v)) throw Error("cannot read the sysctl");
                        if (access("/proc/sys/kernel/bpf_stats_enabled", W_OK) != 0)
                          throw_errno("the sysctl is not writable");
                        return "readable and writable (now " + v + ")";
                      }));
  return out;
}

bool all_required_ok(const std::vector<Check>& checks) {
  for (const auto& c : checks)
    if (c.required && !c.ok) return false;
  return true;
}

std::string render_table(const std::vector<Check>& checks) {
  size_t w = 7;
  for (const auto& c : checks) w = std::max(w, c.feature.size());
  std::string s = fmt::format("{:<{}}  {:<8}  {}\n", "feature", w, "status", "detail");
  for (const auto& c : checks) {
    std::string status = c.ok ? "ok" : (c.required ? "MISSING" : "missing");
    s += fmt::format("{:<{}}  {:<8}  {}\n", c.feature, w, status, first_line(c.detail));
    if (!c.ok && !c.fix.empty()) s += fmt::format("{:<{}}  {:<8}  fix: {}\n", "", w, "", c.fix);
  }
  s += all_required_ok(checks) ? "\nEverything a default run needs is here.\n"
                               : "\nSomething a default run needs is MISSING (see above).\n";
  return s;
}

nlohmann::json to_json(const std::vector<Check>& checks) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : checks)
    arr.push_back({{"id", c.id},
                   {"feature", c.feature},
                   {"required", c.required},
                   {"ok", c.ok},
                   {"detail", c.detail},
                   {"fix", c.fix}});
  return {{"ok", all_required_ok(checks)}, {"checks", arr}};
}

}  // namespace hrb::doctor
