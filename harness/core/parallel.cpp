#include "core/parallel.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

namespace hrb {

void parallel(const std::vector<std::function<void()>>& jobs, int workers) {
  std::atomic<size_t> next{0};
  std::exception_ptr first;
  std::mutex mu;
  std::vector<std::thread> ts;
  for (int w = 0; w < workers && static_cast<size_t>(w) < jobs.size(); ++w)
    ts.emplace_back([&] {
      for (size_t i; (i = next++) < jobs.size();) {
        try {
          jobs[i]();
        } catch (...) {
          std::lock_guard g(mu);
          if (!first) first = std::current_exception();
        }
      }
    });
  for (auto& t : ts) t.join();
  if (first) std::rethrow_exception(first);
}

int usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace hrb
