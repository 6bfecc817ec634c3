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
};

CmdResult run_cmd(const std::vector<std::string>& argv, const CmdOptions& opts = {});

// "a b 'c d'": for messages and logs.
std::string shell_join(const std::vector<std::string>& argv);

// Finds an executable on PATH (and /usr/sbin, /sbin); empty when absent.
std::string find_program(const std::string& name);

}  // namespace hrb
