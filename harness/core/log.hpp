#pragma once
// Minimal leveled logging to stderr with a monotonic timestamp since start.
#include <fmt/format.h>

#include <string>

namespace hrb::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
void set_level(Level level);
Level level();
void write(Level level, const std::string& msg);

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
  if (level() <= Level::kDebug) write(Level::kDebug, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
  if (level() <= Level::kInfo) write(Level::kInfo, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kWarn, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
  write(Level::kError, fmt::format(f, std::forward<Args>(a)...));
}

// The wall-clock time now, ISO 8601 in UTC to the second ("2026-12-01T17:10:11Z"): the
// timestamps results files and the history store record.
std::string iso_now();

}  // namespace hrb::log
