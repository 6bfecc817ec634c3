#include "metrics/stats.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <utility>

namespace hrb::metrics {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

namespace {
// The two-sided percentile interval of bootstrap estimates (sorted in place).
std::pair<double, double> percentile_interval(std::vector<double>& estimates, double confidence) {
  std::sort(estimates.begin(), estimates.end());
  const double alpha = (1 - confidence) / 2, last = estimates.size() - 1.0;
  auto at = [&](double q) {
    return estimates[static_cast<size_t>(std::clamp(q * last, 0.0, last))];
  };
  return {at(alpha), at(1 - alpha)};
}
}  // namespace

std::optional<RatioEstimate> paired_ratio(const std::vector<double>& a,
                                          const std::vector<double>& b, int resamples,
                                          uint64_t seed, double confidence) {
  std::vector<double> logs;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (std::isfinite(a[i]) && std::isfinite(b[i]) && a[i] > 0 && b[i] > 0)
      logs.push_back(std::log(b[i] / a[i]));
  if (logs.empty()) return std::nullopt;
  RatioEstimate r;
  r.pairs = logs.size();
  r.ratio = std::exp(median(logs));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, logs.size() - 1);
  std::vector<double> meds(resamples), sample(logs.size());
  for (int k = 0; k < resamples; ++k) {
    for (auto& x : sample) x = logs[pick(rng)];
    meds[k] = median(sample);
  }
  auto [lo, hi] = percentile_interval(meds, confidence);
  r.ci_low = std::exp(lo);
  r.ci_high = std::exp(hi);
  return r;
}

RatioEstimate unpaired_ratio(const std::vector<double>& a, const std::vector<double>& b,
                             int resamples, uint64_t seed, double confidence) {
  RatioEstimate r;
  r.pairs = std::min(a.size(), b.size());
  r.ratio = median(b) / median(a);
  std::mt19937_64 rng(seed);
  std::vector<double> ratios(resamples), sa(a.size()), sb(b.size());
  std::uniform_int_distribution<size_t> pa(0, a.size() - 1), pb(0, b.size() - 1);
  for (int k = 0; k < resamples; ++k) {
    for (auto& x : sa) x = a[pa(rng)];
    for (auto& x : sb) x = b[pb(rng)];
    ratios[k] = median(sb) / median(sa);
  }
  std::tie(r.ci_low, r.ci_high) = percentile_interval(ratios, confidence);
  return r;
}

double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n1 = a.size(), n2 = b.size();
  if (!n1 || !n2) return 1.0;
  std::vector<std::pair<double, int>> all;
  for (double x : a) all.push_back({x, 0});
  for (double x : b) all.push_back({x, 1});
  std::sort(all.begin(), all.end());
  std::vector<double> rank(all.size());
  double tie_term = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    double r = (i + 1 + j) / 2.0;  // average rank of the tie group (1-based)
    for (size_t k = i; k < j; ++k) rank[k] = r;
    double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  double r1 = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].second == 0) r1 += rank[i];
  double u1 = r1 - n1 * (n1 + 1) / 2.0;
  double mu = n1 * n2 / 2.0;
  double n = static_cast<double>(n1 + n2);
  double sigma = std::sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))));
  if (sigma == 0) return 1.0;
  double z = (std::abs(u1 - mu) - 0.5) / sigma;  // continuity correction
  if (z < 0) z = 0;
  return std::erfc(z / std::sqrt(2.0));
}

}  // namespace hrb::metrics
