#include "core/perf.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/error.hpp"

namespace hrb {

namespace {
constexpr const char* kStarted = "hrb-perf-recording";
constexpr int kStartTimeoutMs = 30000;

std::string trim_message(std::string m) {
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m.empty() ? "no message" : m;
}
}  // namespace

std::string perf_program() {
  std::string p = find_program("perf");
  if (p.empty())
    throw Error(
        "perf is not installed: --profile samples with `perf record` (package linux-perf; "
        "scripts/setup installs it)",
        ExitCode::kMissingFeature);
  return p;
}

std::vector<std::string> perf_record_argv(const std::string& perf, const std::string& data_file,
                                          int frequency_hz) {
  // -N -B: no build-id cache under ~/.debug (nothing written outside the scratch directory) and
  // no build-id pass at the end; -q: no summary lines.
  return {perf, "record", "-e", "cpu-clock", "-a",     "-g", "-F", std::to_string(frequency_hz),
          "-N", "-B",     "-q", "-o",        data_file};
}

PerfRecording::PerfRecording(int frequency_hz) : perf_(perf_program()) {
  if (frequency_hz < 1 || frequency_hz > 10000)
    throw Error("perf frequency " + std::to_string(frequency_hz) + " Hz (expected 1..10000)",
                ExitCode::kUsage);
  char t[] = "/tmp/hrb-perf-XXXXXX";
  if (!mkdtemp(t)) throw_errno("mkdtemp /tmp/hrb-perf-XXXXXX");
  dir_ = t;
  argv_ = perf_record_argv(perf_, dir_ + "/perf.data", frequency_hz);
  // The workload perf starts once its events are enabled (system-wide events are enabled before
  // it is exec'd): it says so on stdout, then waits for its stdin to close (stop()).
  std::vector<std::string> argv = argv_;
  for (const char* a : {"--", "/bin/sh", "-c"}) argv.push_back(a);
  argv.push_back(std::string("echo ") + kStarted + "; read _; exit 0");
  record_.emplace(spawn(argv, {.check = false}));
  const auto line = record_->read_line(kStartTimeoutMs);
  if (line && *line == kStarted) return;
  if (line) {
    // Something else came first: keep waiting for the marker, once.
    if (const auto again = record_->read_line(kStartTimeoutMs); again && *again == kStarted) return;
  }
  record_->signal(SIGKILL);
  const CmdResult r = record_->finish();
  record_.reset();
  throw Error(
      fmt::format("`{}` did not start sampling (status {}): {}{}", shell_join(argv_), r.status,
                  trim_message(r.err.empty() ? r.out : r.err),
                  r.status == 127 ? "" : " (run as root, or lower kernel.perf_event_paranoid)"),
      r.status == 127 ? ExitCode::kMissingFeature : ExitCode::kFailure);
}

PerfRecording::~PerfRecording() {
  record_.reset();  // SIGKILL and reap, when stop() did not end it
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

void PerfRecording::stop() {
  if (!record_) throw Error("perf record: stopped twice");
  const CmdResult r = record_->finish();  // its stdin closes: the workload exits, perf writes
  record_.reset();
  if (r.status != 0)
    throw Error(fmt::format("`{}` failed with status {}: {}", shell_join(argv_), r.status,
                            trim_message(r.err)));
}

std::string PerfRecording::script() const {
  if (record_) throw Error("perf script: the recording has not been stopped");
  // No inlined frames (addr2line per frame would take minutes); comm, pid/tid and each frame's
  // address, symbol and DSO.
  const CmdResult s = run_cmd(
      {perf_, "script", "-i", dir_ + "/perf.data", "-F", "comm,pid,tid,ip,sym,dso", "--no-inline"},
      {.check = false});
  if (s.status != 0)
    throw Error(fmt::format("`perf script -i {}/perf.data` failed with status {}: {}", dir_,
                            s.status, trim_message(s.err)));
  return s.out;
}

std::string probe_perf() {
  PerfRecording rec(kPerfFrequencyHz);
  // 0.1 s of system calls of our own, so that samples land in the kernel even on a machine busy
  // in user space.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  while (std::chrono::steady_clock::now() < until) {
    const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char b[512];
      [[maybe_unused]] ssize_t n = ::read(fd, b, sizeof b);
      ::close(fd);
    }
  }
  rec.stop();
  const std::string script = rec.script();
  size_t samples = 0, kernel_frames = 0, named = 0;
  size_t at = 0;
  while (at < script.size()) {
    size_t nl = script.find('\n', at);
    if (nl == std::string::npos) nl = script.size();
    const std::string_view line(script.data() + at, nl - at);
    at = nl + 1;
    if (line.empty()) continue;
    if (line[0] != ' ' && line[0] != '\t') {
      ++samples;
      continue;
    }
    const size_t a0 = line.find_first_not_of(" \t");
    if (a0 == std::string_view::npos || line.substr(a0, 4) != "ffff") continue;
    ++kernel_frames;
    if (line.find("[unknown]") == std::string_view::npos) ++named;
  }
  if (samples == 0) throw Error("perf record -e cpu-clock -a -g recorded no samples");
  if (kernel_frames == 0)
    throw Error(fmt::format("perf recorded {} samples but no kernel call chains", samples));
  if (named == 0)
    throw Error(fmt::format(
        "perf recorded {} kernel frames but resolved none of their names (kernel.kptr_restrict "
        "hides kernel symbols: run as root, or set kernel.kptr_restrict=0)",
        kernel_frames));
  return fmt::format(
      "perf record -e cpu-clock -a -g: {} samples in 0.1 s, {} of {} kernel frames named", samples,
      named, kernel_frames);
}

}  // namespace hrb
