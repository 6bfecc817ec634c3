#pragma once
// Killing hrbench at an exact point: it stops itself at its HRBENCH_FAULT_STOP_AT stage
// (core/process.hpp fault_point), the test sees the stop through waitpid WUNTRACED (no sleeps)
// and SIGKILLs it.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace hrb::test {

// Starts hrbench with `args` and extra environment (its stderr to /dev/null), and waits until it
// stops itself. Returns the stopped pid, or -1 with a test failure if it exited instead.
pid_t start_stopped(const std::vector<std::string>& args,
                    const std::vector<std::pair<std::string, std::string>>& env);

// SIGKILLs a stopped process and reaps it (a test failure unless it died of the signal).
void kill_stopped(pid_t pid);

}  // namespace hrb::test
