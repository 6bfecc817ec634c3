#include "metrics/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/error.hpp"

namespace hrb::metrics {

namespace {
constexpr int kSubBits = 10;                          // 1024 sub-buckets per power of two
constexpr uint64_t kLinear = 1ull << (kSubBits + 1);  // values below 2048 are exact
constexpr size_t kBuckets = kLinear + (34 - kSubBits - 1) * (1ull << kSubBits);
}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

size_t Histogram::index_of(uint64_t v) {
  if (v < kLinear) return v;
  int e = 63 - std::countl_zero(v) - kSubBits;  // shift that leaves 1024..2047
  uint64_t sub = v >> e;
  return kLinear + static_cast<size_t>(e - 1) * (1ull << kSubBits) + (sub - (1ull << kSubBits));
}

uint64_t Histogram::lowest_of(size_t i) {
  if (i < kLinear) return i;
  size_t k = i - kLinear;
  int e = static_cast<int>(k >> kSubBits) + 1;
  uint64_t sub = (k & ((1ull << kSubBits) - 1)) + (1ull << kSubBits);
  return sub << e;
}

uint64_t Histogram::highest_of(size_t i) {
  if (i < kLinear) return i;
  int e = static_cast<int>((i - kLinear) >> kSubBits) + 1;
  return lowest_of(i) + (1ull << e) - 1;
}

void Histogram::record(uint64_t v) {
  if (v > kMaxValue) {
    ++clamped_;
    v = kMaxValue;
  }
  ++counts_[index_of(v)];
  ++count_;
  sum_ += v;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void Histogram::merge(const Histogram& o) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  clamped_ += o.clamped_;
}

void Histogram::reset() { *this = Histogram(); }

uint64_t Histogram::percentile(double p) const {
  if (!count_) return 0;
  if (p >= 100.0) return max_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * count_));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_of(i), max_);
  }
  return max_;
}

nlohmann::json Histogram::to_json() const {
  nlohmann::json counts = nlohmann::json::array();
  for (size_t i = 0; i < kBuckets; ++i)
    if (counts_[i]) counts.push_back({lowest_of(i), counts_[i]});
  return {{"unit", "ns"}, {"count", count_},     {"min", min()},    {"max", max_},
          {"sum", sum_},  {"clamped", clamped_}, {"counts", counts}};
}

// A field of the wrong type (found by fuzz/fuzz_histogram.cpp) is bad input like any other.
Histogram Histogram::from_json(const nlohmann::json& j) try {
  auto u64 = [](const nlohmann::json& v, const char* what) {
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
      throw Error(fmt::format("histogram: {} must be a whole number >= 0", what),
                  ExitCode::kBadInput);
    return v.get<uint64_t>();
  };
  auto field = [&](const char* key, uint64_t absent) {
    return j.contains(key) ? u64(j[key], key) : absent;
  };
  Histogram h;
  if (!j.is_object() || j.value("unit", "") != "ns")
    throw Error("histogram: unit must be ns", ExitCode::kBadInput);
  for (const auto& c : j.at("counts")) {
    uint64_t lo = u64(c.at(0), "a bucket's value"), n = u64(c.at(1), "a bucket's count");
    if (lo > kMaxValue || index_of(lo) >= kBuckets || lowest_of(index_of(lo)) != lo)
      throw Error("histogram: " + std::to_string(lo) + " is not a bucket boundary",
                  ExitCode::kBadInput);
    h.counts_[index_of(lo)] += n;
    h.count_ += n;
  }
  if (h.count_ != field("count", h.count_))
    throw Error("histogram: counts do not add up to count", ExitCode::kBadInput);
  h.sum_ = field("sum", 0);
  h.max_ = field("max", 0);
  h.min_ = h.count_ ? field("min", 0) : UINT64_MAX;
  h.clamped_ = field("clamped", 0);
  return h;
} catch (const nlohmann::json::exception& e) {
  throw Error(std::string("histogram: ") + e.what(), ExitCode::kBadInput);
}

}  // namespace hrb::metrics
