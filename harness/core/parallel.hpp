#pragma once
// Runs independent jobs on up to `workers` threads; every job runs, and the first exception is
// rethrown once all have finished.
#include <functional>
#include <vector>

namespace hrb {
void parallel(const std::vector<std::function<void()>>& jobs, int workers);
}  // namespace hrb
