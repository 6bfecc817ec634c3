#pragma once
// The iptables blocker, active while ebpf mode is on. Two halves:
//  - kernel-enforced: a cgroup/setsockopt program on the cgroup v2 root refuses x_tables writes
//    (iptables-legacy & co.) with EPERM in the node netns only (bpf/guard_sockopt.bpf.c);
//  - nftables writes (iptables-nft, nft) arrive over NETLINK_NETFILTER, which no cgroup hook sees:
//    a watcher process subscribes to NFNLGRP_NFTABLES in every node netns and, after each commit
//    by a process that is not hrbench, deletes every table, chain and rule that was not there
//    when the blocker started, logging what it removed and who committed it.
// Where the kernel allows BPF LSM, the blocker is instead the AKS-style pair of LSM programs
// (socket_setsockopt + netlink_send, bpf/guard_lsm.bpf.c); it is tried first, and on this kernel
// (EPERM, as doctor reports) the two halves above are the fallback.
#include <cstdint>
#include <string>

#include "topology/layout.hpp"
#include "topology/state.hpp"

namespace hrb::guard {

void start_blocker(const topology::Layout& l, topology::StateDir& state);
void stop_blocker(const topology::Layout& l, topology::StateDir& state);

struct BlockerCounters {
  bool active = false;
  uint64_t refused_setsockopt = 0;  // x_tables writes refused by the kernel
  uint64_t undone_nft = 0;          // nftables objects deleted by the watcher
  uint64_t refused_nft = 0;         // nftables transactions refused by the kernel (BPF LSM)
  bool lsm = false;                 // the BPF LSM variant is the one active
  std::string variant;              // "bpf-lsm", or the fallback and why
};
BlockerCounters read_blocker_counters(const topology::StateDir& state);

// The watcher's main loop (`hrbench guard watch`, started by start_blocker for the nodes of the
// layout it was given): writes one byte to ready_fd once subscribed, runs until SIGTERM.
int run_watcher(const topology::Layout& l, topology::StateDir& state, int ready_fd);

// While alive, rule writes in the guarded nodes are this process's own (the IP Masquerade Agent
// reprogramming its chain). nftables: the watcher accepts them even when the committing child
// has already exited by the time it looks. x_tables: the kernel half lets through writers in the
// blocker's owner cgroup (a cgroup v2 directory of its own, created with the blocker): run the
// writing command there (CmdOptions::cgroup = cgroup()). The BPF LSM variant lets writers in
// that cgroup through for both x_tables and nftables.
class OwnerWrite {
 public:
  explicit OwnerWrite(topology::StateDir& state);
  ~OwnerWrite();
  OwnerWrite(const OwnerWrite&) = delete;
  OwnerWrite& operator=(const OwnerWrite&) = delete;
  // The owner cgroup's directory, or "" when the blocker is not active.
  const std::string& cgroup() const { return cgroup_; }

 private:
  topology::StateDir& state_;
  std::string cgroup_;
};

}  // namespace hrb::guard
