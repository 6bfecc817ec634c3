#pragma once
// Statistics for comparisons of two modes: per-pair log-ratios (same run) or a ratio of medians
// (two runs), with seeded (reproducible) bootstrap confidence intervals, and the Mann–Whitney U
// test.
#include <cstdint>
#include <optional>
#include <vector>

namespace hrb::metrics {

struct RatioEstimate {
  size_t pairs = 0;
  double ratio = 0;   // exp(median log-ratio): B / A
  double ci_low = 0;  // bootstrap 95 % interval of the same
  double ci_high = 0;
};

// Pairs a[i] with b[i] (same repetition); pairs with a non-positive or non-finite value are
// skipped. nullopt when no pair is left.
std::optional<RatioEstimate> paired_ratio(const std::vector<double>& a,
                                          const std::vector<double>& b, int resamples = 2000,
                                          uint64_t seed = 1, double confidence = 0.95);

// Ratio of medians of two independent samples (B / A) with a bootstrap interval (each sample
// resampled on its own); `pairs` is the smaller sample size. Samples must not be empty.
RatioEstimate unpaired_ratio(const std::vector<double>& a, const std::vector<double>& b,
                             int resamples = 2000, uint64_t seed = 1, double confidence = 0.95);

double median(std::vector<double> v);

// Two-sided Mann–Whitney U p-value (normal approximation with tie correction).
double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace hrb::metrics
