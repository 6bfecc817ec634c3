#pragma once
// Running external commands (ip, iptables, nft) without a shell: argv in, exit status and
// captured output back. A command can be run inside a named netns: the child enters it with
// setns() and keeps the root mount namespace.
#include <optional>
#include <string>
#include <vector>

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
};

CmdResult run_cmd(const std::vector<std::string>& argv, const CmdOptions& opts = {});

// "a b 'c d'": for messages and logs.
std::string shell_join(const std::vector<std::string>& argv);

// Whether `pid` is a process that has not exited. A zombie (exited, not yet reaped — a helper
// whose parent is gone waits for PID 1 to reap it, which can take seconds) counts as exited.
bool process_running(int pid);

// Waits until `pid` has exited (zombies count as exited) or `timeout_ms` pass; true if it exited.
bool wait_process_exit(int pid, int timeout_ms);

// Finds an executable on PATH (and /usr/sbin, /sbin); empty when absent.
std::string find_program(const std::string& name);

}  // namespace hrb
