#include "core/interrupt.hpp"

#include <signal.h>

namespace hrb {

namespace {
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
}  // namespace

void InterruptFlag::install() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

const std::atomic<bool>& InterruptFlag::get() { return g_interrupted; }

}  // namespace hrb
