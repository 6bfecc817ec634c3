// Histogram JSON (a trial's latencyHistogram in a results file): Histogram::from_json, then what
// is read from a histogram. An accepted histogram survives a round trip unchanged.
#include "fuzz.hpp"
#include "metrics/histogram.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Syntax errors are nlohmann's (the callers parse the whole file); the histogram reader gets
  // any well-formed JSON value.
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  hrb::fuzz::only_hrb_errors([&] {
    using hrb::metrics::Histogram;
    auto h = Histogram::from_json(j);
    for (double p : {0.001, 50.0, 99.0, 99.9, 100.0}) (void)h.percentile(p);
    (void)h.mean();
    auto out = h.to_json();
    if (Histogram::from_json(out).to_json() != out) __builtin_trap();
    Histogram m;
    m.record(1000);
    m.merge(h);
    (void)m.percentile(50);
  });
  return 0;
}
