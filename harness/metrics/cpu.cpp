#include "metrics/cpu.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace hrb::metrics {

double tick_seconds() { return 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK)); }
int online_cpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

CpuTimes read_cpu_times() {
  std::ifstream f("/proc/stat");
  std::string line;
  if (!std::getline(f, line) || line.rfind("cpu ", 0) != 0)
    throw Error("cannot read the cpu line of /proc/stat");
  std::istringstream in(line.substr(4));
  uint64_t v[8] = {};
  for (auto& x : v) in >> x;
  const double t = tick_seconds();
  CpuTimes c;
  c.user = v[0] * t;
  c.nice = v[1] * t;
  c.system = v[2] * t;
  c.idle = v[3] * t;
  c.iowait = v[4] * t;
  c.irq = v[5] * t;
  c.softirq = v[6] * t;
  c.steal = v[7] * t;
  return c;
}

CpuTimes CpuTimes::operator-(const CpuTimes& o) const {
  return {user - o.user,     nice - o.nice, system - o.system,   idle - o.idle,
          iowait - o.iowait, irq - o.irq,   softirq - o.softirq, steal - o.steal};
}

CpuTimes CpuTimes::operator+(const CpuTimes& o) const {
  return {user + o.user,     nice + o.nice, system + o.system,   idle + o.idle,
          iowait + o.iowait, irq + o.irq,   softirq + o.softirq, steal + o.steal};
}

nlohmann::json CpuTimes::to_json() const {
  return {{"unit", "s"},
          {"user", user},
          {"nice", nice},
          {"system", system},
          {"idle", idle},
          {"iowait", iowait},
          {"irq", irq},
          {"softirq", softirq},
          {"steal", steal},
          {"busy", busy()},
          {"tickSeconds", tick_seconds()}};
}

}  // namespace hrb::metrics
