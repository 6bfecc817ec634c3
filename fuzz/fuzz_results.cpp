// Results JSON as hrbench gate, compare and report read it: read_results (the one reader), then
// every consumer of the document it returns — summary table, CSV and Google Benchmark exports,
// compare, the Markdown report, and the gate (fixture policy) with the document as the current
// run and as the baseline.
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.hpp"
#include "gate/gate.hpp"
#include "report/report.hpp"
#include "results/results.hpp"

namespace {
// read_results takes a path: the input goes through a memfd, opened by its /proc path.
struct MemFile {
  int fd = memfd_create("hrb-fuzz-results", 0);
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  void write(const uint8_t* data, size_t size) {
    if (fd < 0 || ftruncate(fd, 0) != 0 ||
        (size && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)))
      __builtin_trap();
  }
};

const hrb::results::Run& fixture_run() {
  static const hrb::results::Run doc =
      hrb::results::read_results(hrb::fuzz::source_path("tests/fixtures/gate/run.json"));
  return doc;
}
const hrb::gate::Policy& fixture_policy() {
  static const hrb::gate::Policy p = [] {
    auto p =
        hrb::gate::parse_policy_file(hrb::fuzz::source_path("tests/fixtures/gate/policy.yaml"));
    p.resamples = 10;
    return p;
  }();
  return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile file;
  const auto& other = fixture_run();
  const auto& policy = fixture_policy();
  file.write(data, size);
  hrb::results::Run doc;
  try {
    doc = hrb::results::read_results(file.path);
  } catch (const hrb::Error&) {
    return 0;
  }
  // Each consumer on its own: one rejecting the document must not hide another's crash.
  using hrb::fuzz::only_hrb_errors;
  only_hrb_errors([&] { (void)hrb::results::summary_table(doc); });
  only_hrb_errors([&] { (void)hrb::results::to_csv(doc); });
  only_hrb_errors([&] { (void)hrb::results::to_gbench(doc).dump(); });
  only_hrb_errors([&] { (void)hrb::gate::compare_runs(doc, other, false); });
  only_hrb_errors([&] { (void)hrb::gate::compare_runs(other, doc, true); });
  only_hrb_errors([&] { (void)hrb::report::markdown({{"fuzz.json", doc}}); });
  only_hrb_errors([&] {
    (void)hrb::gate::render_text(hrb::gate::evaluate(policy, doc, "fuzz.json", nullptr, ""));
  });
  only_hrb_errors([&] {
    (void)hrb::gate::render_text(hrb::gate::evaluate(policy, other, "run.json", &doc, "fuzz.json"));
  });
  return 0;
}
