#pragma once
// The process's one interrupt flag. SIGINT and SIGTERM set it once InterruptFlag::install() has
// run; long operations (run_matrix, lab::run, the masq agent) poll it between steps and stop
// cleanly, leaving partial results and no cluster behind.
#include <atomic>

namespace hrb {

class InterruptFlag {
 public:
  // Installs the one handler for SIGINT and SIGTERM (idempotent). It only sets the flag.
  static void install();
  // The flag: false until a signal arrived after install().
  static const std::atomic<bool>& get();
  static bool raised() { return get().load(); }
};

}  // namespace hrb
