#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.hpp"
#include "metrics/histogram.hpp"

using hrb::metrics::Histogram;

namespace {
// Within the bucket error: 3 significant digits (relative error < 1/1024) plus one unit.
void expect_close(uint64_t got, double want) {
  EXPECT_LE(std::abs(static_cast<double>(got) - want), want / 1024.0 + 1.0)
      << "got " << got << " want " << want;
}
}  // namespace

TEST(Histogram, BucketsAreContiguousAndPrecise) {
  for (size_t i = 0; i + 1 < 25600; ++i) {
    ASSERT_EQ(Histogram::highest_of(i) + 1, Histogram::lowest_of(i + 1)) << i;
    double width = Histogram::highest_of(i) - Histogram::lowest_of(i) + 1;
    if (i < 2048)
      ASSERT_EQ(width, 1.0) << "exact below 2048 ns: " << i;
    else
      ASSERT_LE(width / Histogram::lowest_of(i), 1.0 / 1024 + 1e-12) << i;
  }
  for (uint64_t v :
       std::initializer_list<uint64_t>{0, 1, 2047, 2048, 2049, 123456789, Histogram::kMaxValue}) {
    size_t i = Histogram::index_of(v);
    EXPECT_LE(Histogram::lowest_of(i), v);
    EXPECT_GE(Histogram::highest_of(i), v);
  }
}

TEST(Histogram, UniformDistributionPercentiles) {
  Histogram h;
  for (uint64_t v = 1; v <= 1'000'000; ++v) h.record(v * 10);  // 10 ns .. 10 ms
  EXPECT_EQ(h.count(), 1'000'000u);
  expect_close(h.percentile(50), 5'000'000);
  expect_close(h.percentile(90), 9'000'000);
  expect_close(h.percentile(99), 9'900'000);
  expect_close(h.percentile(99.9), 9'990'000);
  EXPECT_EQ(h.percentile(100), 10'000'000u);
  EXPECT_EQ(h.min(), 10u);
  EXPECT_NEAR(h.mean(), 5'000'005.0, 1e-6);
}

TEST(Histogram, ExponentialDistributionPercentiles) {
  std::mt19937_64 rng(42);
  std::exponential_distribution<double> exp(1.0 / 50'000.0);  // mean 50 us
  Histogram h;
  std::vector<uint64_t> all;
  for (int i = 0; i < 200'000; ++i) {
    uint64_t v = static_cast<uint64_t>(exp(rng)) + 1000;
    h.record(v);
    all.push_back(v);
  }
  std::sort(all.begin(), all.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    uint64_t exact = all[static_cast<size_t>(std::ceil(p / 100 * all.size())) - 1];
    expect_close(h.percentile(p), exact);
  }
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50'000; ++i) {
    uint64_t v = rng() % 5'000'000'000ull;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {1.0, 50.0, 99.0, 99.99}) EXPECT_EQ(a.percentile(p), all.percentile(p));
  EXPECT_EQ(a.to_json(), all.to_json());
}

TEST(Histogram, JsonRoundTripAndRejectsGarbage) {
  Histogram h;
  for (uint64_t v : {5ull, 3000ull, 3001ull, 77'000'000ull}) h.record(v);
  auto back = Histogram::from_json(h.to_json());
  EXPECT_EQ(back.to_json(), h.to_json());
  auto bad = h.to_json();
  bad["counts"][2][0] = 3001;  // not a bucket boundary
  EXPECT_THROW(Histogram::from_json(bad), hrb::Error);
  auto wrong = h.to_json();
  wrong["count"] = 99;
  EXPECT_THROW(Histogram::from_json(wrong), hrb::Error);
}

TEST(Histogram, ClampsAboveTheRange) {
  Histogram h;
  h.record(Histogram::kMaxValue + 5);
  EXPECT_EQ(h.clamped(), 1u);
  EXPECT_EQ(h.max(), Histogram::kMaxValue);
  Histogram empty;
  EXPECT_EQ(empty.percentile(99), 0u);
  EXPECT_EQ(empty.mean(), 0.0);
}
