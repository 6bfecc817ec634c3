#pragma once
// The state of one cluster on this machine, in /run/hrbench/<prefix>/ (HRBENCH_STATE_DIR
// overrides /run/hrbench):
//   lock           flock'ed by whichever hrbench is changing the cluster; holds its pid
//   topology.yaml  the spec the cluster was made from (status and exec re-plan from it)
//   journal        one line per object, written and fsync'ed BEFORE the object is created,
//                  so `down`/`clean` can remove everything even after SIGKILL; also one line
//                  ("helper PID STARTTIME") per helper process (ip, iptables-restore, …) before
//                  it may exec, so `clean` kills helpers a SIGKILLed holder left running; and
//                  one line per BPF attachment ("attach tcx netns=… target=lxc1 …", before it
//                  is made; "detach …" once it is undone), which removal replays
//   complete       present once `up` finished
#include <functional>
#include <string>
#include <vector>

#include "core/attach.hpp"
#include "core/fd.hpp"
#include "core/process.hpp"

namespace hrb::topology {

struct JournalEntry {
  std::string kind;  // "netns", "bpffs", "cgroup", "process", "helper", "attach", "detach"
  std::string name;
};

class StateDir {
 public:
  explicit StateDir(std::string prefix);
  static std::string root();  // /run/hrbench or $HRBENCH_STATE_DIR

  const std::string& prefix() const { return prefix_; }
  std::string path() const;
  bool exists() const;  // a cluster (complete or not) is recorded
  bool complete() const;

  // Takes the prefix's lock for the lifetime of the returned Fd; throws Error(kBusy) naming the
  // holder's pid when another hrbench has it. When the recorded holder is dead (SIGKILLed), waits
  // for the lock: its helpers, which share the lock's open file until they exec or die, are
  // dying with it; a journalled helper still holding it after 200 ms (stopped, or without
  // PR_SET_PDEATHSIG) is killed (helpers_killed_by_lock()). From then on every helper this
  // process starts (run_cmd) is journalled here, as long as the journal exists (until remove(),
  // or another lock() in this process).
  Fd lock() const;
  const std::vector<ProcessId>& helpers_killed_by_lock() const { return helpers_killed_by_lock_; }

  void begin(const std::string& topology_yaml);           // creates the dir and an empty journal
  void record(const std::vector<JournalEntry>& entries);  // append + fsync
  std::vector<JournalEntry> journal() const;
  // BPF attachments: record_attached before attaching (one fsync for the batch), record_detached
  // once undone (a no-op when the journal is gone).
  void record_attached(const std::vector<Attachment>& attachments);
  void record_detached(const Attachment& a);
  // The journal replayed: what is attached — recorded and not detached since — oldest first. A
  // journal without any attach line was made by the version before attachments were journalled
  // (or is lost): there the pin names under pins::root(prefix) stand for the attach lines it did
  // not write (old_layout_attachments).
  std::vector<Attachment> attachments() const;
  std::string topology_yaml() const;
  void mark_complete();
  // Small named files beside the journal (mode.json, …): read() gives "" when absent; write()
  // replaces atomically (write to a temporary, rename).
  std::string read(const std::string& name) const;
  void write(const std::string& name, const std::string& text);
  void remove();  // the whole directory (the lock file goes last)

  static std::vector<std::string> all_prefixes();

 private:
  mutable std::vector<ProcessId> helpers_killed_by_lock_;
  std::string prefix_;
};

// Undoes the attachments state.attachments() holds that `which` selects (every one when empty),
// newest first, recording each as detached. Idempotent: what is gone already is skipped.
void detach_journalled(StateDir& state, const std::function<bool(const Attachment&)>& which = {});

}  // namespace hrb::topology
