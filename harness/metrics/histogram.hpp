#pragma once
// A log-linear latency histogram in the manner of HdrHistogram: exact below 2048 ns, then 1024
// sub-buckets per power of two, so every recorded value keeps 3 significant digits (relative
// error < 0.1 %) from 1 ns up to ~17 s. Histograms merge exactly; percentiles are read from the
// merged counts and never averaged.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace hrb::metrics {

class Histogram {
 public:
  static constexpr uint64_t kMaxValue = 17'179'869'183ull;  // 2^34 - 1 ns (~17 s)
  Histogram();

  void record(uint64_t value_ns);
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at percentile p (0 < p <= 100): the highest value equivalent to the bucket that
  // holds the p-th percentile sample; exact max for p = 100.
  uint64_t percentile(double p) const;
  uint64_t clamped() const { return clamped_; }  // values above kMaxValue (recorded as the max)

  // Sparse form: {"unit":"ns","counts":[[bucket_lower_value,count],…],…}
  nlohmann::json to_json() const;
  static Histogram from_json(const nlohmann::json& j);

  static size_t index_of(uint64_t v);
  static uint64_t lowest_of(size_t index);
  static uint64_t highest_of(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0, sum_ = 0, min_ = UINT64_MAX, max_ = 0, clamped_ = 0;
};

}  // namespace hrb::metrics
