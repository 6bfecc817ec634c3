#pragma once
// Running external commands (ip, iptables, nft) without a shell: argv in, exit status and
// captured output back. A command can be run inside a named netns: the child enters it with
// setns() and keeps the root mount namespace.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.hpp"

namespace hrb {

struct CmdResult {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
  bool ok() const { return status == 0; }
};

struct CmdOptions {
  std::optional<std::string> netns;  // run inside this named netns
  std::string input;                 // written to the child's stdin
  bool check = true;                 // throw Error (with stderr) when status != 0
  bool new_anon_netns = false;       // unshare(CLONE_NEWNET) first: a scratch netns that
                                     // disappears when the command exits
  std::string cgroup;                // run in this cgroup v2 directory ("": the caller's)
  std::vector<std::string> env;      // "NAME=VALUE" added to (or replacing in) the environment
};

// Every helper run_cmd starts dies with hrbench: the child sets PR_SET_PDEATHSIG(SIGKILL) and
// gives up if its parent is already gone (getppid() changed), and it does not exec before the
// spawn observer (set_spawn_observer) has been told its identity — the state journal records it,
// so a `clean` after a SIGKILL can wait for helpers that were still exiting.
CmdResult run_cmd(const std::vector<std::string>& argv, const CmdOptions& opts = {});

// A helper that runs while the caller does other work (perf record during a trial): started by
// spawn() with run_cmd's guarantees (PR_SET_PDEATHSIG, the spawn observer, no inherited
// descriptors), its stdin open until finish(). Every exit path ends it: the destructor of a
// Child not finished SIGKILLs it and reaps it.
class Child {
 public:
  Child(Child&& o) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();
  int pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return argv_; }
  // The next line of its stdout (without the newline); nullopt at end of file or when none came
  // within timeout_ms (-1: no limit). What was read beyond the line is kept for finish().
  std::optional<std::string> read_line(int timeout_ms);
  // Sends `sig` (while it has not been reaped).
  void signal(int sig);
  // Closes its stdin, reads its stdout and stderr to their end and reaps it. With opts.check,
  // throws Error as run_cmd does when its status is not 0.
  CmdResult finish();

 private:
  friend Child spawn(const std::vector<std::string>& argv, const CmdOptions& opts);
  friend CmdResult run_cmd(const std::vector<std::string>& argv, const CmdOptions& opts);
  Child() = default;
  CmdResult collect(const std::string& input);
  int pid_ = -1;
  std::vector<std::string> argv_;
  CmdOptions opts_;
  Fd in_w_, out_r_, err_r_;
  std::string out_;  // stdout read by read_line beyond the lines it returned
};

// Starts `argv` as run_cmd would (opts.input is not used: write nothing, the stdin stays open
// until finish()). Throws Error when it cannot be started.
Child spawn(const std::vector<std::string>& argv, const CmdOptions& opts = {});

// A process, robust against pid reuse: its start time (/proc/PID/stat field 22, clock ticks
// after boot) tells a recycled pid apart.
struct ProcessId {
  int pid = 0;
  uint64_t start_time = 0;
};
// The start time of `pid`, 0 when there is no such process.
uint64_t process_start_time(int pid);

// Called in the parent for each helper between fork and the child's exec, from whichever thread
// runs run_cmd (so it must be thread-safe). If it throws, the helper is killed unexec'd and
// run_cmd throws. Process-wide; an empty function removes it.
using SpawnObserver = std::function<void(const ProcessId&)>;
void set_spawn_observer(SpawnObserver observer);

// SIGKILLs `p` if that pid still is the process started at p.start_time (through a pidfd, so a
// pid recycled meanwhile is never signalled) and waits up to `timeout_ms` for it to exit.
// Returns whether it was signalled; throws Error if it did not exit in time.
bool kill_and_wait(const ProcessId& p, int timeout_ms);

// "a b 'c d'": for messages and logs.
std::string shell_join(const std::vector<std::string>& argv);

// Whether `pid` is a process that has not exited. A zombie (exited, not yet reaped — a helper
// whose parent is gone waits for PID 1 to reap it, which can take seconds) counts as exited.
bool process_running(int pid);

// Waits until `pid` has exited (zombies count as exited) or `timeout_ms` pass; true if it exited.
bool wait_process_exit(int pid, int timeout_ms);

// Test hook: with HRBENCH_FAULT_STOP_AT=<stage>, the first time `stage` is reached the process
// stops itself (SIGSTOP), so a test can SIGKILL it at an exact point without guessing with
// sleeps (waitpid WUNTRACED sees the stop). run_cmd reaches "exec:<program>" (the basename of
// argv[0]) once the helper may exec and before it is given its input.
void fault_point(const std::string& stage);

// Replaces the calling process with `argv` (looked up on PATH) inside netns `netns`: only the
// network namespace is entered (setns), the root mount namespace is kept, so bpffs stays
// visible, unlike `ip netns exec`. Returns only by throwing SysError (setns or exec failed).
[[noreturn]] void exec_in_netns(const std::string& netns, const std::vector<std::string>& argv);

// Finds an executable on PATH (and /usr/sbin, /sbin); empty when absent.
std::string find_program(const std::string& name);

}  // namespace hrb
