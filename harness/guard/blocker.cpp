#include "guard/blocker.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/attach.hpp"
#include "core/bpf.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/pins.hpp"
#include "core/process.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "guard_lsm.skel.h"
#include "guard_sockopt.skel.h"

namespace fs = std::filesystem;

namespace hrb::guard {

namespace {

bool is_lsm(const Attachment& a) { return a.kind == Attachment::Kind::kLsm; }
bool is_cgroup(const Attachment& a) { return a.kind == Attachment::Kind::kCgroup; }

std::string cgroup2_root() {
  for (const char* c : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs st {};
    if (statfs(c, &st) == 0 && st.f_type == 0x63677270) return c;
  }
  throw Error(
      "no cgroup v2 mount (/sys/fs/cgroup/unified or /sys/fs/cgroup): the iptables "
      "blocker needs one");
}

// The blocker's owner cgroup: x_tables writers in it are let through (OwnerWrite).
std::string owner_cgroup(const std::string& prefix) {
  return cgroup2_root() + "/hrbench-" + prefix + "-owner";
}

// Puts every node's netns cookie into a program's guarded_netns map.
void guard_nodes(int map_fd, const topology::Layout& l) {
  for (const auto& n : l.nodes) {
    uint64_t cookie = netns_cookie(n.netns);
    uint8_t one = 1;
    if (bpf_map_update_elem(map_fd, &cookie, &one, BPF_ANY) != 0)
      throw_errno("guarded_netns update for " + n.name);
  }
}

// The owner cgroup (journalled first: `down`/`clean` remove it even after a crash), its id put
// into a program's owner_cgroups map; on cgroup v2 a cgroup's id is its directory's inode number.
void make_owner_cgroup(int owner_map_fd, const std::string& prefix, topology::StateDir& state) {
  const std::string owner = owner_cgroup(prefix);
  state.record({{"cgroup", owner}});
  std::error_code ec;
  fs::create_directory(owner, ec);
  if (ec) throw Error("create the owner cgroup " + owner + ": " + ec.message());
  struct stat st {};
  if (stat(owner.c_str(), &st) != 0) throw_errno("stat " + owner);
  const uint64_t owner_id = st.st_ino;
  const uint8_t one = 1;
  if (bpf_map_update_elem(owner_map_fd, &owner_id, &one, BPF_ANY) != 0)
    throw_errno("owner_cgroups update");
}

// Empty once its writers have exited; rmdir is what removes a cgroup.
void remove_owner_cgroup(const std::string& prefix) {
  const std::string owner = owner_cgroup(prefix);
  if (rmdir(owner.c_str()) != 0 && errno != ENOENT)
    log::warn("remove the owner cgroup {}: {}", owner, std::strerror(errno));
}

void attach_sockopt(const topology::Layout& l, topology::StateDir& state) {
  fs::create_directories(pins::guard_dir(l.prefix));
  Skeleton<guard_sockopt> s;
  s.load("guard_sockopt");
  guard_nodes(bpf_map__fd(s->maps.guarded_netns), l);
  make_owner_cgroup(bpf_map__fd(s->maps.owner_cgroups), l.prefix, state);
  const std::string root = cgroup2_root();
  Fd cg(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) throw_errno("open " + root);
  // On the root cgroup, outside every netns: journalled before it is made.
  const Attachment a{.kind = Attachment::Kind::kCgroup,
                     .target = root,
                     .hook = "setsockopt",
                     .pin = pins::guard(l.prefix, "link_setsockopt")};
  state.record_attached({a});
  Fd link(bpf_link_create(bpf_program__fd(s->progs.guard_setsockopt), cg.get(),
                          BPF_CGROUP_SETSOCKOPT, nullptr));
  if (!link) throw_errno("attach cgroup/setsockopt to " + root);
  if (bpf_obj_pin(link.get(), a.pin.c_str()) != 0) throw_errno("pin " + a.pin);
  const std::string counters = pins::guard(l.prefix, "counters");
  if (bpf_obj_pin(bpf_map__fd(s->maps.bss), counters.c_str()) != 0) throw_errno("pin " + counters);
}

// Undoes attach_sockopt: the journalled cgroup link, the guard's pins, the owner cgroup.
void detach_sockopt(topology::StateDir& state) {
  topology::detach_journalled(state, is_cgroup);
  std::error_code ec;
  fs::remove_all(pins::guard_dir(state.prefix()), ec);
  remove_owner_cgroup(state.prefix());
}

// The nftables state as a set of keys: "t family table", "c family table chain",
// "r family table chain handle".
std::set<std::string> nft_state(const std::string& netns) {
  std::set<std::string> keys;
  auto r = run_cmd({"nft", "-a", "list", "ruleset"}, {.netns = netns, .check = false});
  std::istringstream in(r.out);
  std::string family, table, chain;
  for (std::string l; std::getline(in, l);) {
    std::string t = l.substr(std::min(l.find_first_not_of(" \t"), l.size()));
    auto h = t.rfind("# handle ");
    if (t.rfind("table ", 0) == 0) {
      std::istringstream w(t.substr(6));
      w >> family >> table;
      keys.insert("t " + family + " " + table);
    } else if (t.rfind("chain ", 0) == 0) {
      std::istringstream w(t.substr(6));
      w >> chain;
      keys.insert("c " + family + " " + table + " " + chain);
    } else if (h != std::string::npos && !chain.empty() && t.rfind("type ", 0) != 0 &&
               t.rfind("policy ", 0) != 0 && t.rfind("set ", 0) != 0) {
      keys.insert("r " + family + " " + table + " " + chain + " " + t.substr(h + 9));
    }
  }
  return keys;
}

// The committing process (from the NEWGEN message) or one of its ancestors is hrbench, or the
// process that started the watcher (a test or another program using the library).
bool is_owner(uint32_t pid, uint32_t starter) {
  for (int depth = 0; pid > 1 && depth < 16; ++depth) {
    if (pid == starter) return true;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string c;
    if (!std::getline(comm, c)) return false;
    if (c == "hrbench") return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(stat, s);
    auto rp = s.rfind(')');
    if (rp == std::string::npos) return false;
    std::istringstream w(s.substr(rp + 2));
    char state;
    w >> state >> pid;
  }
  return false;
}

std::atomic<bool> g_stop{false};

bool owner_writing(const topology::StateDir& state) {
  std::string pid = state.read("guard.owner");
  return !pid.empty() && process_running(std::stoi(pid));
}

}  // namespace

// The AKS-style variant: BPF LSM on socket_setsockopt and netlink_send. Returns false (with the
// reason logged) where the kernel refuses BPF LSM programs, as this project's VM does.
bool attach_lsm(const topology::Layout& l, topology::StateDir& state, std::string* why) {
  try {
    Skeleton<guard_lsm> s;
    s.load("guard_lsm");
    guard_nodes(bpf_map__fd(s->maps.guarded_netns), l);
    fs::create_directories(pins::guard_dir(l.prefix));
    for (auto* prog : {s->progs.guard_socket_setsockopt, s->progs.guard_netlink_send}) {
      const std::string name = bpf_program__name(prog);
      const Attachment a{.kind = Attachment::Kind::kLsm,
                         .hook = name,
                         .pin = pins::guard(l.prefix, "lsm_" + name)};
      state.record_attached({a});
      bpf_link* link = bpf_program__attach_lsm(prog);
      if (!link) throw_errno("attach " + name);
      int e = bpf_link__pin(link, a.pin.c_str());
      bpf_link__destroy(link);  // the pin keeps it attached
      if (e) throw SysError(-e, "pin " + a.pin);
    }
    const std::string counters = pins::guard(l.prefix, "counters_lsm");
    if (bpf_obj_pin(bpf_map__fd(s->maps.bss), counters.c_str()) != 0)
      throw_errno("pin the LSM counters");
    make_owner_cgroup(bpf_map__fd(s->maps.owner_cgroups), l.prefix, state);
    return true;
  } catch (const std::exception& e) {
    *why = e.what();
    *why = why->substr(0, why->find('\n'));
    topology::detach_journalled(state, is_lsm);
    std::error_code ec;
    fs::remove_all(pins::guard_dir(l.prefix), ec);
    remove_owner_cgroup(l.prefix);
    return false;
  }
}

void start_blocker(const topology::Layout& l, topology::StateDir& state) {
  std::string why;
  if (attach_lsm(l, state, &why)) {
    state.write("guard.variant", "bpf-lsm");
    log::info("iptables blocker: BPF LSM (socket_setsockopt + netlink_send)");
    return;
  }
  log::debug(
      "iptables blocker: BPF LSM unavailable ({}); using cgroup/setsockopt and the "
      "nftables watcher",
      why);
  state.write("guard.variant", "cgroup-sockopt+nft-watcher (BPF LSM unavailable: " + why + ")");
  attach_sockopt(l, state);
  // The watcher: this same binary, detached, reporting readiness through a pipe.
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
  Fd rd(p[0]), wr(p[1]);
  // The watcher is `hrbench guard watch`: this binary when it is hrbench, else (tests, benches,
  // other programs linking the library) the hrbench of this build.
  std::string self = fs::read_symlink("/proc/self/exe").string();
  if (fs::path(self).filename() != "hrbench") self = HRB_BINARY_DIR "/harness/hrbench";
  if (access(self.c_str(), X_OK) != 0) throw Error("cannot find the hrbench binary at " + self);
  const std::string logf = state.path() + "/guard.log";
  pid_t pid = fork();
  if (pid < 0) throw_errno("fork the guard watcher");
  if (pid == 0) {
    setsid();
    int fd = open(logf.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    int keep = dup(wr.get());  // without O_CLOEXEC
    std::string fdarg = std::to_string(keep);
    std::string nodes;
    for (const auto& n : l.nodes) nodes += (nodes.empty() ? "" : ",") + n.name;
    execl(self.c_str(), "hrbench", "guard", "watch", "--prefix", l.prefix.c_str(), "--ready-fd",
          fdarg.c_str(), "--node", nodes.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  state.record({{"process", std::to_string(pid)}});
  wr.reset();
  pollfd pf{rd.get(), POLLIN, 0};
  char b = 0;
  if (poll(&pf, 1, 10000) != 1 || read(rd.get(), &b, 1) != 1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    detach_sockopt(state);
    throw Error("the guard watcher did not start; see " + logf);
  }
  state.write("guard.pid", std::to_string(pid));
}

void stop_blocker(const topology::Layout&, topology::StateDir& state) {
  // LSM links, as the journal has them: detached now (unpinning alone defers the release).
  topology::detach_journalled(state, is_lsm);
  std::string pid_s = state.read("guard.pid");
  if (!pid_s.empty()) {
    pid_t pid = std::stoi(pid_s);
    if (kill(pid, SIGTERM) == 0) {
      if (!wait_process_exit(pid, 5000))
        log::warn("guard watcher {} did not stop within 5 s of SIGTERM", pid);
      waitpid(pid, nullptr, WNOHANG);  // reap it when this process started it
    }
    fs::remove(state.path() + "/guard.pid");
  }
  detach_sockopt(state);
}

OwnerWrite::OwnerWrite(topology::StateDir& state) : state_(state) {
  state_.write("guard.owner", std::to_string(getpid()));
  if (fs::exists(pins::guard(state.prefix(), "link_setsockopt")) ||
      fs::exists(pins::guard(state.prefix(), "counters_lsm")))
    cgroup_ = owner_cgroup(state.prefix());
}

OwnerWrite::~OwnerWrite() {
  std::error_code ec;
  fs::remove(state_.path() + "/guard.owner", ec);
}

BlockerCounters read_blocker_counters(const topology::StateDir& state) {
  BlockerCounters c;
  Fd bss(bpf_obj_get(pins::guard(state.prefix(), "counters").c_str()));
  if (bss) {
    c.active = true;
    // .bss layout of guard_sockopt: refused, allowed_owner (two u64, in declaration order).
    uint32_t key = 0;
    uint64_t vals[2] = {};
    if (bpf_map_lookup_elem(bss.get(), &key, vals) == 0) c.refused_setsockopt = vals[0];
  }
  Fd lsm(bpf_obj_get(pins::guard(state.prefix(), "counters_lsm").c_str()));
  if (lsm) {
    c.active = true;
    // .bss layout of guard_lsm: refused_setsockopt, refused_netlink, allowed_owner.
    uint32_t key = 0;
    uint64_t vals[3] = {};
    if (bpf_map_lookup_elem(lsm.get(), &key, vals) == 0) {
      c.refused_setsockopt = vals[0];
      c.refused_nft = vals[1];
    }
    c.lsm = true;
  }
  auto j = state.read("guard.json");
  if (!j.empty()) c.undone_nft = nlohmann::json::parse(j).value("undone", 0ull);
  c.variant = state.read("guard.variant");
  return c;
}

int run_watcher(const topology::Layout& l, topology::StateDir& state, int ready_fd) {
  const uint32_t starter = static_cast<uint32_t>(getppid());
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  struct Node {
    std::string name, netns;
    Fd sock;
    std::set<std::string> allowed;
    bool dirty = false;
  };
  std::vector<Node> nodes;
  for (const auto& n : l.nodes) {
    Node w{n.name, n.netns, {}, {}, false};
    w.sock = run_in_netns(n.netns, [&] {
      Fd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
      if (!s) throw_errno("netlink socket in " + n.netns);
      sockaddr_nl sa{};
      sa.nl_family = AF_NETLINK;
      if (bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw_errno("bind");
      int grp = NFNLGRP_NFTABLES;
      if (setsockopt(s.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof grp) != 0)
        throw_errno("join NFNLGRP_NFTABLES");
      return s;
    });
    w.allowed = nft_state(n.netns);  // everything present now is allowed
    nodes.push_back(std::move(w));
  }
  uint64_t undone = 0;
  auto save = [&] { state.write("guard.json", nlohmann::json{{"undone", undone}}.dump()); };
  save();
  char one = 1;
  if (write(ready_fd, &one, 1) != 1) return 1;
  close(ready_fd);
  log::info("guard: watching nftables in {} node(s)", nodes.size());

  std::vector<char> buf(1 << 16);
  while (!g_stop) {
    std::vector<pollfd> pfs;
    for (auto& n : nodes) pfs.push_back({n.sock.get(), POLLIN, 0});
    if (poll(pfs.data(), pfs.size(), 200) <= 0) continue;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!(pfs[i].revents & POLLIN)) continue;
      auto& n = nodes[i];
      ssize_t len = recv(n.sock.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (len <= 0) continue;
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
           NLMSG_OK(h, static_cast<uint32_t>(len)); h = NLMSG_NEXT(h, len)) {
        if (NFNL_SUBSYS_ID(h->nlmsg_type) != NFNL_SUBSYS_NFTABLES) continue;
        int msg = NFNL_MSG_TYPE(h->nlmsg_type);
        if (msg == NFT_MSG_NEWTABLE || msg == NFT_MSG_NEWCHAIN || msg == NFT_MSG_NEWRULE ||
            msg == NFT_MSG_NEWSET || msg == NFT_MSG_NEWSETELEM || msg == NFT_MSG_NEWOBJ) {
          n.dirty = true;
          continue;
        }
        if (msg != NFT_MSG_NEWGEN || !n.dirty) continue;
        // End of a transaction: who committed it?
        uint32_t pid = 0;
        std::string comm;
        auto* a = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(NLMSG_DATA(h)) +
                                            NLMSG_ALIGN(sizeof(nfgenmsg)));
        int rem = h->nlmsg_len - NLMSG_LENGTH(sizeof(nfgenmsg));
        while (rem >= static_cast<int>(sizeof(nlattr)) && a->nla_len >= sizeof(nlattr) &&
               a->nla_len <= rem) {
          const char* data = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
          if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_PROC_PID && a->nla_len >= NLA_HDRLEN + 4) {
            uint32_t be;
            std::memcpy(&be, data, 4);
            pid = ntohl(be);
          }
          if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_PROC_NAME)
            comm.assign(data, strnlen(data, a->nla_len - NLA_HDRLEN));
          rem -= NLA_ALIGN(a->nla_len);
          a = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(a) + NLA_ALIGN(a->nla_len));
        }
        n.dirty = false;
        if (is_owner(pid, starter) || owner_writing(state)) {
          n.allowed = nft_state(n.netns);
          log::info("guard: {}: change by owner {} (pid {}) accepted", n.name, comm, pid);
          continue;
        }
        // Undo: rules first, then chains, then tables that were not there before.
        auto now = nft_state(n.netns);
        std::vector<std::string> extra;
        for (const auto& k : now)
          if (!n.allowed.count(k)) extra.push_back(k);
        std::stable_sort(extra.begin(), extra.end(), [](const auto& x, const auto& y) {
          auto rank = [](char c) { return c == 'r' ? 0 : c == 'c' ? 1 : 2; };
          return rank(x[0]) < rank(y[0]);
        });
        for (const auto& k : extra) {
          std::istringstream w(k);
          std::string kind, fam, tab, ch, handle;
          w >> kind >> fam >> tab >> ch >> handle;
          std::vector<std::string> argv{"nft", "delete"};
          if (kind == "r") argv.insert(argv.end(), {"rule", fam, tab, ch, "handle", handle});
          if (kind == "c") argv.insert(argv.end(), {"chain", fam, tab, ch});
          if (kind == "t") argv.insert(argv.end(), {"table", fam, tab});
          auto r = run_cmd(argv, {.netns = n.netns, .check = false});
          if (r.ok()) ++undone;
          log::warn("guard: {}: removed {} committed by {} (pid {}){}", n.name, k, comm, pid,
                    r.ok() ? "" : ": " + r.err);
        }
        save();
      }
    }
  }
  log::info("guard: stopped ({} objects undone)", undone);
  return 0;
}

}  // namespace hrb::guard
