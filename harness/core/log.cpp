#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

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

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

}  // namespace hrb::log
