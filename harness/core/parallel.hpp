#pragma once
// Runs independent jobs on up to `workers` threads; every job runs, and the first exception is
// rethrown once all have finished.
#include <functional>
#include <vector>

namespace hrb {
void parallel(const std::vector<std::function<void()>>& jobs, int workers);
// The CPUs this process may run on (its affinity mask; at least 1): a worker count for CPU-bound
// jobs, where more threads than CPUs only add switching.
int usable_cpus();
}  // namespace hrb
