// Gate policy YAML (hrbench gate --policy): parse_policy_string, then the policy evaluated on the
// fixture run (tests/fixtures/gate/run.json) and rendered as text, Markdown and JUnit.
#include <algorithm>

#include "fuzz.hpp"
#include "gate/gate.hpp"
#include "results/results.hpp"

namespace {
const hrb::results::Run& fixture_run() {
  static const hrb::results::Run doc =
      hrb::results::read_results(hrb::fuzz::source_path("tests/fixtures/gate/run.json"));
  return doc;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& run = fixture_run();
  hrb::fuzz::only_hrb_errors([&] {
    auto p = hrb::gate::parse_policy_string(hrb::fuzz::text(data, size), "fuzz.yaml");
    if (p.checks.empty()) __builtin_trap();
    // Bootstrap cost grows with resamples (a policy may ask for millions, legitimately): keep
    // each execution short, the code paths are the same.
    p.resamples = std::min(p.resamples, 10);
    auto r = hrb::gate::evaluate(p, run, "run.json", &run, "baseline.json");
    (void)hrb::gate::render_text(r);
    (void)hrb::gate::render_markdown(r, "fuzz");
    (void)hrb::gate::render_junit(r, "fuzz");
    (void)hrb::gate::exit_code(r, false);
  });
  return 0;
}
