#pragma once
// The harness's error type: what was being done, the errno if the kernel said no, and where in
// our code it happened. Thrown inside the library, mapped to documented exit codes at the CLI.
#include <fmt/format.h>

#include <source_location>
#include <stdexcept>
#include <string>

namespace hrb {

// Exit codes of hrbench; the README ("hrbench") documents them.
enum class ExitCode : int {
  kOk = 0,
  kFailure = 1,         // a runtime step failed (kernel, command, traffic)
  kUsage = 2,           // bad command line
  kBadInput = 3,        // a file (topology, config) is invalid; nothing was changed
  kMissingFeature = 4,  // doctor: something a default run needs is missing
  kBusy = 5,            // another hrbench holds the prefix, or a cluster already exists
  kNotFound = 6,        // no cluster / no such pod, node or host
  kRefused = 7,         // ebpf mode refused: user-installed iptables/nft rules would be bypassed
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string what, ExitCode code = ExitCode::kFailure)
      : std::runtime_error(std::move(what)), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// A failed system call: "<what>: <strerror> (errno N) [file:line]".
class SysError : public Error {
 public:
  SysError(int err, const std::string& what,
           std::source_location where = std::source_location::current());
  int err() const { return err_; }

 private:
  int err_;
};

// Throws SysError with the current errno.
[[noreturn]] void throw_errno(const std::string& what,
                              std::source_location where = std::source_location::current());

}  // namespace hrb
