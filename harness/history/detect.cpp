#include "history/detect.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

namespace hrb::history {

namespace {

// The two-sample t statistic (pooled variance) of two groups given their sums, sums of
// squares and sizes; 0 when the means are equal, infinite when both groups are constant.
double t_statistic(double sum_a, double sq_a, size_t n_a, double sum_b, double sq_b, size_t n_b) {
  const double na = static_cast<double>(n_a), nb = static_cast<double>(n_b);
  const double ma = sum_a / na, mb = sum_b / nb;
  const double diff = std::fabs(ma - mb);
  if (diff == 0) return 0;
  const double ss = std::max(0.0, (sq_a - sum_a * ma) + (sq_b - sum_b * mb));
  const double se = std::sqrt(ss / (na + nb - 2) * (1 / na + 1 / nb));
  return se > 0 ? diff / se : INFINITY;
}

// The best split of a segment of n points: the k (at least m points on each side) with the
// largest two-sample t statistic of [0, k) against [k, n) — the likelihood-ratio split of a mean
// shift with unknown variance.
struct Candidate {
  double stat = 0;
  size_t k = 0;
};

Candidate best_split(const double* x, size_t n, size_t m, std::vector<double>& s1,
                     std::vector<double>& s2) {
  // Prefix sums of the values about their mean (t does not change; the sums of squares lose no
  // precision to large figures such as transactions per second).
  double mu = 0;
  for (size_t k = 0; k < n; ++k) mu += x[k];
  mu /= static_cast<double>(n);
  s1.assign(n + 1, 0);
  s2.assign(n + 1, 0);
  for (size_t k = 0; k < n; ++k) {
    const double v = x[k] - mu;
    s1[k + 1] = s1[k] + v;
    s2[k + 1] = s2[k] + v * v;
  }
  Candidate best;
  best.stat = -1;
  for (size_t k = m; k + m <= n; ++k) {
    const double t = t_statistic(s1[k], s2[k], k, s1[n] - s1[k], s2[n] - s2[k], n - k);
    if (t > best.stat) best = {t, k};
  }
  return best;
}

double mean(const std::vector<double>& x, size_t a, size_t b) {
  return std::accumulate(x.begin() + a, x.begin() + b, 0.0) / static_cast<double>(b - a);
}

struct Found {
  size_t index;
  double p;
};

// Binary segmentation of x[a, b). Each segment's permutations have their own generator, seeded
// from the options' seed and the segment, so the answer does not depend on the search order.
// A test stops early once more than alpha of the permutations it may run were as extreme (its
// p-value can then only exceed alpha).
void segment(const std::vector<double>& x, size_t a, size_t b, const DetectOptions& o,
             std::vector<Found>& out) {
  const size_t n = b - a;
  if (n < 2 * o.min_segment) return;
  std::vector<double> s1, s2;
  const auto obs = best_split(x.data() + a, n, o.min_segment, s1, s2);
  if (obs.stat <= 0) return;  // a flat segment
  std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ull + a * 1000003ull + b);
  std::vector<double> perm(x.begin() + a, x.begin() + b);
  const double limit = o.alpha * (1.0 + o.permutations) - 1;  // as_large above it: p > alpha
  int as_large = 0;
  for (int r = 0; r < o.permutations && as_large <= limit; ++r) {
    std::shuffle(perm.begin(), perm.end(), rng);
    // A tolerance, so that a permutation equal to the observed order counts as "as large".
    if (best_split(perm.data(), n, o.min_segment, s1, s2).stat >= obs.stat * (1 - 1e-12))
      ++as_large;
  }
  if (as_large > limit) return;
  const double p = (1.0 + as_large) / (1.0 + o.permutations);
  out.push_back({a + obs.k, p});
  segment(x, a, a + obs.k, o, out);
  segment(x, a + obs.k, b, o, out);
}

}  // namespace

std::vector<ChangePoint> find_changes(const std::vector<double>& x, const DetectOptions& o) {
  std::vector<Found> found;
  segment(x, 0, x.size(), o, found);
  std::sort(found.begin(), found.end(),
            [](const Found& l, const Found& r) { return l.index < r.index; });
  std::vector<ChangePoint> out;
  for (size_t i = 0; i < found.size(); ++i) {
    const size_t lo = i ? found[i - 1].index : 0;
    const size_t at = found[i].index;
    const size_t hi = i + 1 < found.size() ? found[i + 1].index : x.size();
    ChangePoint c;
    c.index = at;
    c.p_value = found[i].p;
    c.before_n = at - lo;
    c.after_n = hi - at;
    c.before = mean(x, lo, at);
    c.after = mean(x, at, hi);
    c.ratio = c.before != 0 ? c.after / c.before : NAN;
    // Percentile bootstrap of after / before, each side resampled on its own.
    std::mt19937_64 rng(o.seed ^ (at * 0x2545f4914f6cdd1dull));
    std::uniform_int_distribution<size_t> pick_b(lo, at - 1), pick_a(at, hi - 1);
    std::vector<double> ratios;
    ratios.reserve(static_cast<size_t>(o.resamples));
    for (int r = 0; r < o.resamples; ++r) {
      double sb = 0, sa = 0;
      for (size_t j = 0; j < c.before_n; ++j) sb += x[pick_b(rng)];
      for (size_t j = 0; j < c.after_n; ++j) sa += x[pick_a(rng)];
      if (sb != 0)
        ratios.push_back((sa / static_cast<double>(c.after_n)) /
                         (sb / static_cast<double>(c.before_n)));
    }
    std::sort(ratios.begin(), ratios.end());
    if (!ratios.empty()) {
      const double tail = (1 - o.confidence) / 2;
      auto q = [&](double f) {
        return ratios[std::min(ratios.size() - 1,
                               static_cast<size_t>(f * static_cast<double>(ratios.size())))];
      };
      c.ratio_low = q(tail);
      c.ratio_high = q(1 - tail);
    }
    out.push_back(c);
  }
  return out;
}

std::vector<Change> detect(const std::vector<Series>& series, const DetectOptions& o) {
  std::vector<Change> out;
  for (const auto& s : series) {
    // Each environment's points, in the series' order.
    std::map<std::string, std::vector<size_t>> by_env;
    for (size_t i = 0; i < s.points.size(); ++i) by_env[s.points[i].environment].push_back(i);
    std::vector<Change> mine;
    for (const auto& [env, idx] : by_env) {
      std::vector<double> x;
      for (size_t i : idx) x.push_back(s.points[i].median);
      for (const auto& c : find_changes(x, o))
        mine.push_back({s.key, env, idx[c.index], idx[c.index - 1], c});
    }
    std::sort(mine.begin(), mine.end(),
              [](const Change& a, const Change& b) { return a.point < b.point; });
    out.insert(out.end(), mine.begin(), mine.end());
  }
  return out;
}

}  // namespace hrb::history
