#pragma once
// Sampling the whole machine with Linux perf while a trial runs (`--profile`): `perf record -e
// cpu-clock -a -g` at a bounded frequency into a scratch directory, and `perf script` of what it
// recorded. We never sample ourselves: perf does, we only fold its output (metrics/profile.hpp).
//
// perf is never left running: the recording is a Child (core/process.hpp) — PR_SET_PDEATHSIG
// ends it with hrbench, the PerfRecording's destructor SIGKILLs and reaps it on every other exit
// path (an exception, an interrupted trial), and the scratch directory goes with it.
#include <optional>
#include <string>
#include <vector>

#include "core/process.hpp"

namespace hrb {

// Samples per second per CPU: bounded, so a profile costs the same on every machine, and odd,
// so it does not beat in step with a periodic timer.
constexpr int kPerfFrequencyHz = 999;

// The perf binary, or throws Error(kMissingFeature) naming the package (linux-perf).
std::string perf_program();

// The command line of a recording into `data_file` at `frequency_hz` (no workload): for the
// results' record of how profiles were taken.
std::vector<std::string> perf_record_argv(const std::string& perf, const std::string& data_file,
                                          int frequency_hz);

class PerfRecording {
 public:
  // Starts perf record (system-wide, cpu-clock, call graphs) into a fresh scratch directory and
  // returns once it samples. Throws Error naming perf's own message when perf is missing
  // (kMissingFeature) or refuses (permissions, perf_event_paranoid, no such event).
  explicit PerfRecording(int frequency_hz = kPerfFrequencyHz);
  ~PerfRecording();  // kills perf if still running, removes the scratch directory
  PerfRecording(const PerfRecording&) = delete;
  PerfRecording& operator=(const PerfRecording&) = delete;

  // Ends the recording (sampling stops). Throws Error when perf failed.
  void stop();
  // `perf script` of what was recorded (comm, pid/tid, and each sample's call chain with symbol
  // and DSO, the format metrics::fold_perf_script reads); after stop(). Throws Error when perf
  // failed.
  std::string script() const;
  const std::vector<std::string>& argv() const { return argv_; }

 private:
  std::string perf_, dir_;
  std::vector<std::string> argv_;
  std::optional<Child> record_;
};

// `hrbench doctor`: a 0.1 s recording of the machine and its perf script, as --profile makes
// them. Returns what it saw; throws Error with perf's message.
std::string probe_perf();

}  // namespace hrb
