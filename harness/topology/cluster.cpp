#include "topology/cluster.hpp"

#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>

#include "core/attach.hpp"
#include "core/fd.hpp"
#include "core/file.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/parallel.hpp"
#include "core/pins.hpp"
#include "core/process.hpp"

namespace hrb::topology {
namespace {

std::string ip_bin() {
  static const std::string p = find_program("ip");
  if (p.empty()) throw Error("the `ip` command (iproute2) is not installed; run scripts/setup");
  return p;
}

// Runs an `ip -batch` script, in the root netns or inside `netns`.
// With `force`, a failing line does not stop the lines after it (teardown wants all of them).
void ip_batch(const std::string& script, const std::string& netns = "", bool force = false) {
  std::vector<std::string> argv{ip_bin()};
  if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
  if (force) argv.push_back("-force");
  argv.insert(argv.end(), {"-batch", "-"});
  run_cmd(argv, {.input = script});
}

std::string mtu(const Layout& l) { return std::to_string(l.spec.mtu); }

std::string fabric_script(const Layout& l) {
  std::string s = "link set lo up\n";
  // Dual stack: no multicast snooping, so neighbour solicitations reach every port whatever MLD
  // reports the bridge saw (a member whose report it missed would never be solicited).
  s += "link add " + l.bridge + " type bridge" + (l.has_ipv6() ? " mcast_snooping 0" : "") + "\n";
  s += "link set " + l.bridge + " mtu " + mtu(l) + " up\n";
  for (const auto& n : l.nodes)
    s += "link set " + n.fabric_port + " master " + l.bridge + " mtu " + mtu(l) + " up\n";
  for (const auto& e : l.externals)
    s += "link set " + e.fabric_port + " master " + l.bridge + " mtu " + mtu(l) + " up\n";
  return s;
}

// Dual stack, the IPv6 half of each script (the layout's addresses; nodad: usable at once).
std::string node_script6(const Layout& l, const NodeLayout& n) {
  const std::string len = std::to_string(l.spec.underlay_cidr6.len);
  std::string s = "addr add " + n.router_ip6.str() + "/128 dev lo\n";
  s += "addr add " + n.underlay_ip6.str() + "/" + len + " dev " + n.uplink + " nodad\n";
  for (const auto& pod : n.pods) {
    s += "addr add " + n.router_ip6.str() + "/128 dev " + pod.lxc + " nodad\n";
    s += "route add " + pod.ip6.str() + "/128 dev " + pod.lxc + " src " + n.router_ip6.str() + "\n";
  }
  for (const auto& other : l.nodes)
    if (&other != &n)
      s += "route add " + other.pod_cidr6.str() + " via " + other.underlay_ip6.str() + " dev " +
           n.uplink + "\n";
  if (!l.externals.empty())
    s += "route add default via " + l.externals.front().underlay_ip6.str() + " dev " + n.uplink +
         "\n";
  return s;
}

std::string pod_script6(const NodeLayout& n, const PodLayout& pod) {
  std::string s = "addr add " + pod.ip6.str() + "/128 dev " + pod.ifname + " nodad\n";
  s += "route add " + n.router_ip6.str() + "/128 dev " + pod.ifname + "\n";
  s += "route add default via " + n.router_ip6.str() + " dev " + pod.ifname + "\n";
  return s;
}

std::string external_script6(const Layout& l, const ExternalLayout& e) {
  std::string s = "addr add " + e.address6.str() + "/128 dev lo\n";
  s += "addr add " + e.underlay_ip6.str() + "/" + std::to_string(l.spec.underlay_cidr6.len) +
       " dev " + e.ifname + " nodad\n";
  for (const auto& n : l.nodes)
    s += "route add " + n.pod_cidr6.str() + " via " + n.underlay_ip6.str() + "\n";
  return s;
}

// Each script: the links first (both families), then the IPv4 half (unless single-stack IPv6),
// then the IPv6 half (with IPv6).
std::string node_script(const Layout& l, const NodeLayout& n) {
  std::string s = "link set lo up\n";
  s += "link set " + n.uplink + " mtu " + mtu(l) + " up\n";
  for (const auto& pod : n.pods) s += "link set " + pod.lxc + " mtu " + mtu(l) + " up\n";
  if (l.has_ipv4()) {
    s += "addr add " + n.router_ip.str() + "/32 dev lo\n";
    s += "addr add " + n.underlay_ip.str() + "/" + std::to_string(l.spec.underlay_cidr.len) +
         " dev " + n.uplink + "\n";
    for (const auto& pod : n.pods)
      s += "route add " + pod.ip.str() + "/32 dev " + pod.lxc + " scope link src " +
           n.router_ip.str() + "\n";
    for (const auto& other : l.nodes)
      if (&other != &n)
        s += "route add " + other.pod_cidr.str() + " via " + other.underlay_ip.str() + " dev " +
             n.uplink + "\n";
    // Anything outside the cluster leaves through the first external host, the node's gateway.
    if (!l.externals.empty())
      s += "route add default via " + l.externals.front().underlay_ip.str() + " dev " + n.uplink +
           "\n";
  }
  if (l.has_ipv6()) s += node_script6(l, n);
  return s;
}

std::string pod_script(const Layout& l, const NodeLayout& n, const PodLayout& pod) {
  std::string s = "link set lo up\n";
  s += "link set " + pod.ifname + " mtu " + mtu(l) + " up\n";
  if (l.has_ipv4()) {
    s += "addr add " + pod.ip.str() + "/32 dev " + pod.ifname + "\n";
    s += "route add " + n.router_ip.str() + "/32 dev " + pod.ifname + " scope link\n";
    s += "route add default via " + n.router_ip.str() + " dev " + pod.ifname + "\n";
  }
  if (l.has_ipv6()) s += pod_script6(n, pod);
  return s;
}

std::string external_script(const Layout& l, const ExternalLayout& e) {
  std::string s = "link set lo up\n";
  s += "link set " + e.ifname + " mtu " + mtu(l) + " up\n";
  if (l.has_ipv4()) {
    s += "addr add " + e.address.str() + "/32 dev lo\n";
    s += "addr add " + e.underlay_ip.str() + "/" + std::to_string(l.spec.underlay_cidr.len) +
         " dev " + e.ifname + "\n";
    // Like a VNet route table: the pod CIDRs are reachable through their nodes.
    for (const auto& n : l.nodes)
      s += "route add " + n.pod_cidr.str() + " via " + n.underlay_ip.str() + "\n";
  }
  if (l.has_ipv6()) s += external_script6(l, e);
  return s;
}

// After `ip link set up`, a veth transmits into the noop qdisc (dropping everything) until the
// kernel's linkwatch work activates it, which can take up to a second. Wait for every interface
// to be operationally up (IFF_RUNNING) so that the first packets of a test or trial are not lost.
void wait_running(const std::string& netns, const std::vector<std::string>& ifnames,
                  std::chrono::milliseconds limit) {
  run_in_netns(netns, [&] {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket in " + netns);
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (const auto& name : ifnames) {
      for (;;) {
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
        if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) throw_errno(name + " in " + netns);
        if (ifr.ifr_flags & IFF_RUNNING) break;
        if (std::chrono::steady_clock::now() > deadline)
          throw Error(
              fmt::format("{} in {} is still not running after {} ms", name, netns, limit.count()));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  });
}

// Dual stack: no duplicate address detection on the interfaces of a netns (`ifnames`, and any
// made later), so the link-local addresses neighbour discovery sends from are usable as soon as
// the links are up — the addresses the harness assigns carry nodad themselves.
std::map<std::string, std::string> no_dad(const std::vector<std::string>& ifnames) {
  std::map<std::string, std::string> kv{{"net.ipv6.conf.all.accept_dad", "0"},
                                        {"net.ipv6.conf.default.accept_dad", "0"}};
  for (const auto& i : ifnames) kv["net.ipv6.conf." + i + ".accept_dad"] = "0";
  return kv;
}

void apply_sysctls(const std::string& netns, const std::map<std::string, std::string>& kv) {
  if (kv.empty()) return;
  run_in_netns(netns, [&] {
    for (const auto& [k, v] : kv) {
      std::FILE* f = std::fopen(sysctl_path(k).c_str(), "w");
      if (!f) throw Error("cannot set sysctl " + k + " in netns " + netns + ": no such key");
      bool ok = std::fputs((v + "\n").c_str(), f) >= 0;
      ok = (std::fclose(f) == 0) && ok;
      if (!ok) throw Error("cannot set sysctl " + k + "=" + v + " in netns " + netns);
    }
  });
}

// Inode of a named netns, to find processes inside it.
ino_t netns_inode(const std::string& name) {
  struct stat st {};
  return ::stat(netns_path(name).c_str(), &st) == 0 ? st.st_ino : 0;
}

int kill_processes_in(const std::set<ino_t>& inodes) {
  if (inodes.empty()) return 0;
  int killed = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (::stat(("/proc/" + pid + "/ns/net").c_str(), &st) != 0) continue;
    if (inodes.count(st.st_ino) && std::stoi(pid) != ::getpid()) {
      if (::kill(std::stoi(pid), SIGKILL) == 0) ++killed;
    }
  }
  return killed;
}

// Whether `pid` runs `hrbench guard watch` for `prefix` (what the ebpf mode starts).
bool is_prefix_process(int pid, const std::string& prefix) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::replace(cmd.begin(), cmd.end(), '\0', ' ');
  return cmd.find("hrbench") != std::string::npos &&
         cmd.find(" guard watch ") != std::string::npos &&
         cmd.find(" --prefix " + prefix + " ") != std::string::npos;
}

std::vector<int> prefix_processes(const std::string& prefix) {
  std::vector<int> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (is_prefix_process(std::stoi(pid), prefix)) out.push_back(std::stoi(pid));
  }
  return out;
}

}  // namespace

void bring_up(const Layout& l, StateDir& state, const std::string& topology_yaml,
              const Progress& progress) {
  // Test hook (fault_point): HRBENCH_FAULT_STOP_AT=<stage> stops the process (SIGSTOP) once that
  // stage is done, so a test can SIGKILL `up` at an exact point without guessing with sleeps.
  auto done = [](const char* stage) { fault_point(stage); };
  auto step = [&](const std::string& s) {
    log::debug("up: {}", s);
    if (progress) progress(s);
  };
  for (const auto& ns : l.all_netns())
    if (netns_exists(ns))
      throw Error("network namespace " + ns + " already exists and is not ours to reuse; " +
                      "remove it, run `hrbench clean --prefix " + l.prefix +
                      "`, or choose another --prefix",
                  ExitCode::kBusy);
  state.begin(topology_yaml);
  try {
    // 1. Journal first, then every netns and veth pair in one root-level batch. Veths are created
    //    directly inside their namespaces: nothing ever appears in the root netns.
    std::vector<JournalEntry> entries;
    for (const auto& ns : l.all_netns()) entries.push_back({"netns", ns});
    state.record(entries);
    done("journal");
    step(fmt::format("creating {} namespaces", entries.size()));
    std::string root;
    for (const auto& ns : l.all_netns()) root += "netns add " + ns + "\n";
    for (const auto& n : l.nodes) {
      root += "link add name " + n.uplink + " netns " + n.netns + " type veth peer name " +
              n.fabric_port + " netns " + l.fabric_netns + "\n";
      for (const auto& pod : n.pods)
        root += "link add name " + pod.lxc + " netns " + n.netns + " type veth peer name " +
                pod.ifname + " netns " + pod.netns + "\n";
    }
    for (const auto& e : l.externals)
      root += "link add name " + e.ifname + " netns " + e.netns + " type veth peer name " +
              e.fabric_port + " netns " + l.fabric_netns + "\n";
    ip_batch(root);
    done("netns");

    // 2. Sysctls: forwarding on in nodes (new namespaces start with ip_forward=0), then the
    //    spec's own, before any address exists.
    step("setting sysctls");
    //    Dual stack: IPv6 forwarding in nodes, and no duplicate address detection anywhere.
    std::vector<std::function<void()>> jobs;
    for (const auto& n : l.nodes) {
      jobs.push_back([&l, &n] {
        std::map<std::string, std::string> kv;
        if (l.has_ipv4()) kv["net.ipv4.ip_forward"] = "1";
        if (l.has_ipv6()) {
          std::vector<std::string> links{n.uplink};
          for (const auto& pod : n.pods) links.push_back(pod.lxc);
          kv.merge(no_dad(links));
          kv["net.ipv6.conf.all.forwarding"] = "1";
        }
        for (const auto& [k, v] : l.spec.node_sysctls) kv[k] = v;
        apply_sysctls(n.netns, kv);
        for (const auto& pod : n.pods) {
          auto pkv = l.has_ipv6() ? no_dad({pod.ifname}) : std::map<std::string, std::string>{};
          for (const auto& [k, v] : l.spec.pod_sysctls) pkv[k] = v;
          apply_sysctls(pod.netns, pkv);
        }
      });
    }
    if (l.has_ipv6()) {
      jobs.push_back([&l] {
        std::vector<std::string> ports;
        for (const auto& n : l.nodes) ports.push_back(n.fabric_port);
        for (const auto& e : l.externals) ports.push_back(e.fabric_port);
        apply_sysctls(l.fabric_netns, no_dad(ports));
        for (const auto& e : l.externals) apply_sysctls(e.netns, no_dad({e.ifname}));
      });
    }
    parallel(jobs, 2);
    done("sysctls");

    // 3. Links, addresses and routes: one `ip -n NS -batch` per namespace, a few at a time.
    step("configuring links, addresses and routes");
    jobs.clear();
    jobs.push_back([&l] { ip_batch(fabric_script(l), l.fabric_netns); });
    for (const auto& n : l.nodes) {
      jobs.push_back([&l, &n] { ip_batch(node_script(l, n), n.netns); });
      for (const auto& pod : n.pods)
        jobs.push_back([&l, &n, &pod] { ip_batch(pod_script(l, n, pod), pod.netns); });
    }
    for (const auto& e : l.externals)
      jobs.push_back([&l, &e] { ip_batch(external_script(l, e), e.netns); });
    parallel(jobs, 4);

    step("waiting for links to come up");
    jobs.clear();
    const auto limit = std::chrono::milliseconds(10000);
    jobs.push_back([&] {
      std::vector<std::string> ports{l.bridge};
      for (const auto& n : l.nodes) ports.push_back(n.fabric_port);
      for (const auto& e : l.externals) ports.push_back(e.fabric_port);
      wait_running(l.fabric_netns, ports, limit);
    });
    for (const auto& n : l.nodes) {
      jobs.push_back([&] {
        std::vector<std::string> links{n.uplink};
        for (const auto& pod : n.pods) links.push_back(pod.lxc);
        wait_running(n.netns, links, limit);
      });
      for (const auto& pod : n.pods)
        jobs.push_back([&] { wait_running(pod.netns, {pod.ifname}, limit); });
    }
    for (const auto& e : l.externals)
      jobs.push_back([&] { wait_running(e.netns, {e.ifname}, limit); });
    parallel(jobs, 4);
    done("links");
    state.mark_complete();
    step("up");
  } catch (...) {
    log::warn("bring-up failed; removing what was created");
    try {
      tear_down(state);
    } catch (const std::exception& e) {
      log::error("cleanup after failed bring-up also failed: {}", e.what());
    }
    throw;
  }
}

TeardownReport tear_down(StateDir& state) {
  TeardownReport r;
  const auto journal = state.journal();
  // 1. Helpers (ip, iptables-restore, …) a SIGKILLed holder left behind: they die with it
  //    (PR_SET_PDEATHSIG), but one may still be finishing a system call — creating a netns after
  //    the sweep below has listed them. Kill and wait for each that is still the recorded process
  //    (start time: a recycled pid is left alone). Only the journal knows them: they run in the
  //    root netns and carry no prefix.
  for (const auto& e : journal) {
    if (e.kind != "helper") continue;
    ProcessId p;
    if (std::sscanf(e.name.c_str(), "%d %" SCNu64, &p.pid, &p.start_time) != 2) continue;
    // Killed already by lock() (they held the lock); a zombie until its new parent reaps it.
    const auto& by_lock = state.helpers_killed_by_lock();
    if (std::any_of(by_lock.begin(), by_lock.end(), [&](const ProcessId& k) {
          return k.pid == p.pid && k.start_time == p.start_time;
        }))
      continue;
    if (kill_and_wait(p, 10000)) ++r.helpers_killed;
  }
  r.helpers_killed += static_cast<int>(state.helpers_killed_by_lock().size());
  // 2. Processes the cluster started (the ebpf mode's guard watcher, `hrbench guard watch
  //    --prefix P`): the journalled pids, and (a journal torn or lost) any such process.
  std::set<int> pids;
  for (const auto& e : journal)
    if (e.kind == "process") pids.insert(std::atoi(e.name.c_str()));
  for (int pid : prefix_processes(state.prefix())) pids.insert(pid);
  for (int pid : pids) {
    if (pid <= 0 || pid == ::getpid() || !is_prefix_process(pid, state.prefix())) continue;
    if (::kill(pid, SIGKILL) == 0) {
      ++r.processes_killed;
      if (!wait_process_exit(pid, 10000)) log::warn("process {} survived SIGKILL", pid);
    }
  }
  fault_point("down:processes");
  // 3. BPF attachments, as the journal has them (pin names only for a journal of the version
  //    before): detached now, synchronously — the deletion of a netns frees what is attached
  //    inside it only later, and the guard's cgroup link is outside every netns. Not recorded:
  //    the journal goes below, and detaching again is harmless.
  const auto attached = state.attachments();
  for (auto it = attached.rbegin(); it != attached.rend(); ++it) detach(*it);
  // 4. Network namespaces: the journal's, and anything carrying our prefix (a journal entry may
  //    be torn, or the state dir lost), after killing what still runs inside them.
  std::set<std::string> names;
  for (const auto& e : journal)
    if (e.kind == "netns") names.insert(e.name);
  for (const auto& ns : list_netns())
    if (ns.rfind(netns_prefix(state.prefix()), 0) == 0) names.insert(ns);
  std::set<ino_t> inodes;
  std::string script;
  for (const auto& ns : names) {
    if (!netns_exists(ns)) continue;
    if (ino_t ino = netns_inode(ns)) inodes.insert(ino);
    script += "netns del " + ns + "\n";
    ++r.netns_removed;
  }
  r.processes_killed += kill_processes_in(inodes);
  if (!script.empty()) ip_batch(script, "", /*force=*/true);
  fault_point("down:netns");
  // 5. bpffs pins (ebpf mode's links and maps, the guard's): removing them releases what is left.
  std::set<std::string> pin_dirs;
  for (const auto& e : journal)
    if (e.kind == "bpffs") pin_dirs.insert(e.name);
  pin_dirs.insert(pins::root(state.prefix()));
  for (const auto& dir : pin_dirs) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) continue;
    std::filesystem::remove_all(dir, ec);
    if (ec) log::warn("cannot remove {}: {}", dir, ec.message());
    // The shared parent (pins::parent()) goes too once no cluster uses it.
    std::filesystem::remove(std::filesystem::path(dir).parent_path(), ec);
  }
  // 6. cgroups (the blocker's owner cgroup): empty once its short-lived writers have exited.
  std::set<std::string> cgroups;
  for (const auto& e : journal)
    if (e.kind == "cgroup") cgroups.insert(e.name);
  for (const auto& c : swept_cgroups(state.prefix())) cgroups.insert(c);
  for (const auto& c : cgroups)
    if (rmdir(c.c_str()) != 0 && errno != ENOENT)
      log::warn("cannot remove cgroup {}: {}", c, std::strerror(errno));
  state.remove();
  return r;
}

std::vector<std::string> swept_cgroups(const std::string& prefix) {
  std::vector<std::string> v;
  for (const char* root : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"})
    v.push_back(std::string(root) + "/hrbench-" + prefix + "-owner");
  return v;
}

ScopedCluster::ScopedCluster(const std::string& topology_file, const std::string& prefix)
    : state_(prefix) {
  const std::string yaml = read_text_file(topology_file, "topology file");
  layout_ = plan(parse_spec_string(yaml, topology_file), prefix);
  lock_ = state_.lock();
  if (state_.exists())
    throw Error(
        "a cluster with prefix '" + prefix + "' exists; run hrbench clean --prefix " + prefix,
        ExitCode::kBusy);
  bring_up(layout_, state_, yaml);
}

ScopedCluster::~ScopedCluster() {
  try {
    tear_down(state_);
  } catch (const std::exception& e) {
    log::error("teardown of {}: {}", state_.prefix(), e.what());
  }
}

Layout load_layout(const StateDir& state) {
  Spec s = parse_spec_string(state.topology_yaml(), state.path() + "/topology.yaml");
  return plan(s, state.prefix());
}

}  // namespace hrb::topology
