#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>

namespace hrb::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
const auto g_start = std::chrono::steady_clock::now();
}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

void write(Level l, const std::string& msg) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
  std::fputs(fmt::format("[{:8.3f}] {:5} {}\n", t, names[static_cast<int>(l)], msg).c_str(),
             stderr);
}

}  // namespace hrb::log
