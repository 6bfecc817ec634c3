#pragma once
// CPU time of the whole machine between two points, from /proc/stat (the "cpu" line). The kernel
// counts in USER_HZ ticks (1/100 s here), so a trial's CPU figures have 10 ms resolution per CPU:
// run trials long enough (seconds) for them to mean something. Steal is reported so a trial on a
// noisy shared VM can be rejected.
#include <cstdint>
#include <nlohmann/json.hpp>

namespace hrb::metrics {

struct CpuTimes {
  // Seconds, summed over CPUs.
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  double busy() const { return user + nice + system + irq + softirq; }
  double total() const { return busy() + idle + iowait + steal; }
  CpuTimes operator-(const CpuTimes& o) const;
  CpuTimes operator+(const CpuTimes& o) const;
  nlohmann::json to_json() const;
};

CpuTimes read_cpu_times();  // now, from /proc/stat
double tick_seconds();      // 1 / sysconf(_SC_CLK_TCK)
int online_cpus();

}  // namespace hrb::metrics
