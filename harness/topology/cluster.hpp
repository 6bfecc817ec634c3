#pragma once
// topology::Cluster: bringing a Layout up as real namespaces, veths, a bridge, addresses, routes
// and sysctls, and taking it down again. A cluster does not know which datapath mode runs on it.
#include <functional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "topology/layout.hpp"
#include "topology/state.hpp"

namespace hrb::topology {

using Progress = std::function<void(const std::string& stage)>;

// Creates the cluster. The caller holds the prefix's lock. On any failure everything made so far
// is removed before the error propagates.
void bring_up(const Layout& layout, StateDir& state, const std::string& topology_yaml,
              const Progress& progress = {});

// Removes every object the journal records — first killing the helpers and processes it names
// that still run, then detaching the BPF attachments it holds — plus what carries the prefix (so
// a journal torn by SIGKILL, or a lost state dir, still cleans): netns "<prefix>-…" (after
// killing processes inside them), `hrbench guard watch --prefix P`, pins::root(P),
// swept_cgroups(P). Idempotent. Test hooks (HRBENCH_FAULT_STOP_AT): "down:processes",
// "down:netns" once each step is done.
struct TeardownReport {
  int netns_removed = 0;
  int processes_killed = 0;
  int helpers_killed = 0;  // journalled helpers a dead holder left running
};
TeardownReport tear_down(StateDir& state);

// What the prefix sweep removes besides netns and the pin root: the blocker's owner cgroup under
// either cgroup v2 mount point.
std::vector<std::string> swept_cgroups(const std::string& prefix);

// Loads the layout of a recorded cluster (re-planned from its saved topology.yaml).
Layout load_layout(const StateDir& state);

// A cluster for the lifetime of an object (benchmarks, tools): up in the constructor (holding the
// prefix's lock throughout), torn down in the destructor whatever happened in between.
class ScopedCluster {
 public:
  ScopedCluster(const std::string& topology_file, const std::string& prefix);
  ~ScopedCluster();
  ScopedCluster(const ScopedCluster&) = delete;
  ScopedCluster& operator=(const ScopedCluster&) = delete;
  const Layout& layout() const { return layout_; }
  StateDir& state() { return state_; }

 private:
  StateDir state_;
  Fd lock_;
  Layout layout_;
};

}  // namespace hrb::topology
