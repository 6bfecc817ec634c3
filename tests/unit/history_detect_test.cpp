// The change-point detector of the history store (history/detect.hpp) on seeded synthetic
// series, as issue #15's done-means state it: 30 points, noise CV 5 %; a 10 % step found at its
// commit (±1) in at least 90 % of series, step-free series showing a change in at most 5 %. The
// rates measured here (printed) are quoted in docs/history.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "history/detect.hpp"
#include "metrics/stats.hpp"

using namespace hrb;
using history::find_changes;

namespace {

constexpr int kSeries = 200;
constexpr size_t kPoints = 30;
constexpr double kNoise = 0.05;  // coefficient of variation

// A series of kPoints around 100 with a step of `step` (0.10: +10 %) from point `at` on (none
// when at = kPoints). Each point is the median of `repetitions` values with noise kNoise, as the
// store makes a run's point; with 1 repetition the point itself has noise kNoise.
std::vector<double> series(std::mt19937_64& rng, int repetitions, double step = 0,
                           size_t at = kPoints) {
  std::normal_distribution<double> noise(0, kNoise);
  std::vector<double> x(kPoints), reps(static_cast<size_t>(repetitions));
  for (size_t i = 0; i < kPoints; ++i) {
    for (auto& r : reps) r = 100 * (i >= at ? 1 + step : 1) * (1 + noise(rng));
    x[i] = metrics::median(reps);
  }
  return x;
}

// The split a detector that knew both levels would choose (least squares): the best any
// detector can locate a step, for comparison.
size_t oracle_split(const std::vector<double>& x, double before, double after) {
  double best = INFINITY;
  size_t at = 0;
  for (size_t k = 1; k < x.size(); ++k) {
    double ss = 0;
    for (size_t i = 0; i < x.size(); ++i) ss += std::pow(x[i] - (i >= k ? after : before), 2);
    if (ss < best) best = ss, at = k;
  }
  return at;
}

struct Rates {
  int located = 0, detected = 0, oracle = 0;
};

// kSeries series with a ±10 % step at a random point (5th to 25th: at least 5 points on each
// side), half up, half down.
Rates step_series(uint64_t seed, int repetitions) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> where(5, kPoints - 5);
  Rates r;
  for (int i = 0; i < kSeries; ++i) {
    const size_t at = where(rng);
    const double step = i % 2 ? 0.10 : -0.10;
    auto x = series(rng, repetitions, step, at);
    auto changes = find_changes(x);
    r.detected += !changes.empty();
    for (const auto& c : changes)
      if (c.index + 1 >= at && c.index <= at + 1) {
        ++r.located;
        break;
      }
    const size_t o = oracle_split(x, 100, 100 * (1 + step));
    r.oracle += o + 1 >= at && o <= at + 1;
  }
  std::printf(
      "10 %% step, %zu points, CV 5 %% per %s: at its commit ±1 in %d of %d series "
      "(%.1f %%), a change anywhere in %d; a detector knowing both levels: %d\n",
      kPoints, repetitions == 1 ? "point" : "repetition (point = median of 3)", r.located, kSeries,
      100.0 * r.located / kSeries, r.detected, r.oracle);
  return r;
}

int step_free_series(uint64_t seed, int repetitions) {
  std::mt19937_64 rng(seed);
  int false_detections = 0;
  for (int i = 0; i < kSeries; ++i)
    false_detections += !find_changes(series(rng, repetitions)).empty();
  std::printf("step-free, %zu points, CV 5 %% per %s: a change in %d of %d series (%.1f %%)\n",
              kPoints, repetitions == 1 ? "point" : "repetition", false_detections, kSeries,
              100.0 * false_detections / kSeries);
  return false_detections;
}

// Points as the store makes them: the median of a run's 3 repetitions (the default run's
// count), each repetition with noise CV 5 %.
TEST(HistoryDetect, FindsATenPercentStepAtItsCommit) {
  auto r = step_series(20261201, 3);
  EXPECT_GE(r.located, kSeries * 90 / 100);
}

TEST(HistoryDetect, StepFreeSeriesRarelyShowAChange) {
  EXPECT_LE(step_free_series(20261202, 3), kSeries * 5 / 100);
}

// Noise CV 5 % on the points themselves: a 10 % step is then 2 standard deviations, and no
// detector locates it within ±1 in 90 % of series — least squares knowing both levels manages
// about 87 % (and 84 % not knowing them) at the middle of the series. Asserted: false
// detections at most 5 %, and locating within 90 % of that oracle's rate.
TEST(HistoryDetect, PointNoiseOfFivePercent) {
  auto r = step_series(20261203, 1);
  EXPECT_GE(r.located, r.oracle * 90 / 100);
  EXPECT_GE(r.detected, kSeries * 85 / 100);
  EXPECT_LE(step_free_series(20261204, 1), kSeries * 5 / 100);
}

TEST(HistoryDetect, SizeAndIntervalOfAShift) {
  std::mt19937_64 rng(7);
  auto x = series(rng, 3, -0.10, 15);
  auto changes = find_changes(x);
  ASSERT_EQ(changes.size(), 1u);
  const auto& c = changes[0];
  EXPECT_NEAR(static_cast<double>(c.index), 15, 1);
  EXPECT_EQ(c.before_n + c.after_n, kPoints);
  EXPECT_LT(c.ratio_low, c.ratio);
  EXPECT_GT(c.ratio_high, c.ratio);
  EXPECT_LT(c.ratio_low, 0.90 + 0.04);
  EXPECT_GT(c.ratio_high, 0.90 - 0.04);
  EXPECT_LT(c.ratio_high, 1.0);  // the interval excludes "no change"
  EXPECT_LE(c.p_value, history::DetectOptions{}.alpha);
}

TEST(HistoryDetect, SeededAndDeterministic) {
  std::mt19937_64 rng(11);
  auto x = series(rng, 1, 0.08, 12);
  auto a = find_changes(x), b = find_changes(x);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index);
    EXPECT_EQ(a[i].p_value, b[i].p_value);
    EXPECT_EQ(a[i].ratio_low, b[i].ratio_low);
  }
}

TEST(HistoryDetect, TwoStepsAreBothFound) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.02);
  std::vector<double> x;
  for (double level : {100.0, 120.0, 135.0})
    for (int i = 0; i < 10; ++i) x.push_back(level * (1 + noise(rng)));
  auto changes = find_changes(x);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].index, 10u);
  EXPECT_EQ(changes[1].index, 20u);
  EXPECT_NEAR(changes[0].ratio, 1.2, 0.03);
  EXPECT_NEAR(changes[1].ratio, 135.0 / 120, 0.03);
}

TEST(HistoryDetect, FlatAndShortSeriesHaveNoChange) {
  EXPECT_TRUE(find_changes(std::vector<double>(30, 5.0)).empty());
  EXPECT_TRUE(find_changes({1, 1, 1, 9, 9}).empty());  // fewer than 2 x min_segment points
  EXPECT_TRUE(find_changes({}).empty());
}

// A series whose environment changes: the two environments' points are never compared, so a
// level difference between them is no shift; the same values in one environment are one.
TEST(HistoryDetect, AnEnvironmentChangeIsABreakNotAShift) {
  history::Series s;
  s.key = {"transactionsPerSecond", "ebpf", "pod-pod-cross-node", "tcp_rr", ""};
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 0.02);
  for (int i = 0; i < 20; ++i) {
    history::Point p;
    p.run_id = "run" + std::to_string(i);
    p.environment = i < 10 ? "aaaa" : "bbbb";
    p.median = (i < 10 ? 100 : 150) * (1 + noise(rng));
    s.points.push_back(p);
  }
  EXPECT_TRUE(history::detect({s}).empty());
  for (auto& p : s.points) p.environment = "aaaa";
  auto changes = history::detect({s});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].point, 10u);
  EXPECT_EQ(changes[0].previous, 9u);
  EXPECT_EQ(changes[0].environment, "aaaa");
}

// Points of another environment in between: the change is found among one environment's points
// and reported at that environment's points on either side.
TEST(HistoryDetect, InterleavedEnvironmentsAreSeparated) {
  history::Series s;
  s.key = {"transactionsPerSecond", "ebpf", "pod-pod-cross-node", "tcp_rr", ""};
  std::mt19937_64 rng(9);
  std::normal_distribution<double> noise(0, 0.02);
  for (int i = 0; i < 40; ++i) {
    history::Point p;
    p.run_id = "run" + std::to_string(i);
    p.environment = i % 2 ? "odd" : "even";
    // "even" steps down at run 20; "odd" is twice as fast and flat.
    p.median = (i % 2 ? 200 : (i >= 20 ? 90 : 100)) * (1 + noise(rng));
    s.points.push_back(p);
  }
  auto changes = history::detect({s});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].environment, "even");
  EXPECT_EQ(changes[0].point, 20u);
  EXPECT_EQ(changes[0].previous, 18u);
}

}  // namespace
