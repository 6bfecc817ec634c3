#pragma once
// Level shifts in a series of per-run points (docs/history.md, "Detection"): binary
// segmentation with a permutation test. In a segment, the split k with the largest two-sample t
// statistic (pooled variance) of its two sides is a change when that maximum is larger than in
// all but a fraction `alpha` of random permutations of the segment (the permutation p-value,
// which needs no assumption about the noise's distribution); then both sides are searched again.
// Seeded: the same series and options give the same answer.
#include <cstdint>
#include <string>
#include <vector>

#include "history/store.hpp"

namespace hrb::history {

struct DetectOptions {
  double alpha = 0.02;       // the permutation p-value at or below which a split is a change
  int permutations = 999;    // per test; the smallest p-value is 1 / (permutations + 1)
  size_t min_segment = 3;    // points on each side of a change
  int resamples = 2000;      // bootstrap of the shift's interval
  double confidence = 0.95;  // of that interval
  uint64_t seed = 1;
};

// A change between x[index - 1] and x[index]: x[index] is the first point of the new level.
struct ChangePoint {
  size_t index = 0;
  double p_value = 1;
  size_t before_n = 0, after_n = 0;  // the segments on either side (to the next changes)
  double before = 0, after = 0;      // their means
  double ratio = 1, ratio_low = 1, ratio_high = 1;  // after / before, bootstrap interval
};

// The changes of `x`, by index.
std::vector<ChangePoint> find_changes(const std::vector<double>& x, const DetectOptions& o = {});

// A change in a stored series, found among the points of one environment only.
struct Change {
  SeriesKey key;
  std::string environment;
  size_t point = 0;     // index into the series' points of the first point of the new level
  size_t previous = 0;  // index of the last point of the old level (same environment)
  ChangePoint stats;
};

// The changes of each series, each environment's points on their own (a change of environment is
// a break, never a shift), by series then point.
std::vector<Change> detect(const std::vector<Series>& series, const DetectOptions& o = {});

}  // namespace hrb::history
