#include "results/profiles.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "results/results.hpp"

namespace hrb::results {

namespace fs = std::filesystem;

std::string profiles_path_for(const std::string& results_path) {
  const std::string base = results_path.size() > 5 && results_path.ends_with(".json")
                               ? results_path.substr(0, results_path.size() - 5)
                               : results_path;
  return base + ".profiles.json";
}

void write_profiles(const std::string& path, const ProfileDocument& d) {
  nlohmann::json j = to_json(d);
  sanitize(j);
  write_json(path, j);
}

ProfileDocument read_profiles(const std::string& path) {
  return profiles_from_json(read_json_file(path, "profiles file"), path);
}

std::optional<ProfileDocument> profiles_of(const std::string& results_file, const Run& run) {
  if (!run.profiles) return std::nullopt;
  const fs::path file(run.profiles->file);
  const std::string path =
      file.is_absolute() ? file.string() : (fs::path(results_file).parent_path() / file).string();
  try {
    return read_profiles(path);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: its profiles (\"profiles\": {{\"file\": \"{}\"}}): {}",
                            results_file, run.profiles->file, e.what()),
                ExitCode::kBadInput);
  }
}

metrics::FoldedStacks folded(const Profile& p) {
  metrics::FoldedStacks f;
  for (const auto& [stack, n] : p.stacks) {
    f.stacks[stack] = n;
    f.samples += n;
  }
  f.other_samples = p.other_samples;
  return f;
}

std::string BucketComparison::title() const {
  std::string t = scenario + " " + workload;
  if (scan) t += fmt::format(" {}={}", scan->param, scan->value);
  if (family != "ipv4") t += " " + family;
  return t;
}

std::vector<BucketComparison> bucket_comparisons(const ProfileDocument& d,
                                                 const std::vector<std::string>& mode_order) {
  std::vector<BucketComparison> out;
  auto same_cell = [](const BucketComparison& c, const Profile& p) {
    return c.scenario == p.scenario && c.workload == p.workload && c.family == p.fam() &&
           (c.scan ? p.scan && p.scan->value == c.scan->value : !p.scan);
  };
  std::vector<std::vector<const Profile*>> members;
  for (const auto& p : d.profiles) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& c) { return same_cell(c, p); });
    if (it == out.end()) {
      BucketComparison c;
      c.scenario = p.scenario;
      c.workload = p.workload;
      c.scan = p.scan;
      c.family = p.fam();
      out.push_back(std::move(c));
      members.emplace_back();
      it = out.end() - 1;
    }
    members[it - out.begin()].push_back(&p);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    auto& ps = members[i];
    auto rank = [&](const Profile* p) {
      auto at = std::find(mode_order.begin(), mode_order.end(), p->mode);
      return at - mode_order.begin();
    };
    std::stable_sort(ps.begin(), ps.end(),
                     [&](const Profile* a, const Profile* b) { return rank(a) < rank(b); });
    for (const Profile* p : ps) {
      if (std::find(out[i].modes.begin(), out[i].modes.end(), p->mode) != out[i].modes.end())
        continue;  // one profile per mode and cell (the first)
      const auto counts = metrics::bucket_samples(folded(*p));
      uint64_t total = 0;
      for (const auto& [b, n] : counts) total += n;
      std::map<std::string, double> sh;
      for (const auto& [b, n] : counts) sh[b] = total ? static_cast<double>(n) / total : 0.0;
      out[i].modes.push_back(p->mode);
      out[i].shares.push_back(std::move(sh));
      out[i].samples.push_back(total);
      out[i].profiles.push_back(p);
    }
  }
  return out;
}

std::string percent(double share) {
  const double pc = share * 100;
  if (pc == 0) return "0 %";
  if (pc > 0 && pc < 0.05) return "<0.1 %";
  return pc < 9.95 ? fmt::format("{:.1f} %", pc) : fmt::format("{:.0f} %", pc);
}

std::string bucket_sentence(const BucketComparison& c) {
  if (c.modes.empty()) return "";
  auto label = [](const std::string& id) {
    const auto* b = metrics::find_bucket(id);
    return b ? b->label : id;
  };
  if (c.modes.size() == 1) {
    std::vector<std::pair<double, std::string>> top;
    for (const auto& [b, s] : c.shares[0]) top.push_back({s, b});
    std::sort(top.rbegin(), top.rend());
    std::string s = fmt::format("{} spends its CPU in", c.modes[0]);
    for (size_t i = 0; i < std::min<size_t>(3, top.size()); ++i)
      s += fmt::format("{} {} ({})", i ? "," : "", label(top[i].second), percent(top[i].first));
    return s;
  }
  // The reference against ebpf, or against the next mode.
  size_t b = 1;
  for (size_t i = 1; i < c.modes.size(); ++i)
    if (c.modes[i] == "ebpf") b = i;
  const std::string& A = c.modes[0];
  const std::string& B = c.modes[b];
  std::vector<std::pair<double, std::string>> diffs;
  for (const auto& [id, sa] : c.shares[0]) {
    const double sb = c.shares[b].count(id) ? c.shares[b].at(id) : 0.0;
    if (std::abs(sa - sb) >= 0.01) diffs.push_back({std::abs(sa - sb), id});
  }
  std::sort(diffs.rbegin(), diffs.rend());
  if (diffs.empty())
    return fmt::format("{} and {} spend their CPU alike: no bucket differs by a percentage point",
                       A, B);
  std::string s;
  for (size_t i = 0; i < std::min<size_t>(3, diffs.size()); ++i) {
    const std::string& id = diffs[i].second;
    const double sa = c.shares[0].at(id);
    const double sb = c.shares[b].count(id) ? c.shares[b].at(id) : 0.0;
    if (i) s += "; ";
    s += sa > sb ? fmt::format("{} spends {} of its CPU in {}, {} {}", A, percent(sa), label(id), B,
                               percent(sb))
                 : fmt::format("{} cost {} {} of its CPU ({} {})", label(id), B, percent(sb), A,
                               percent(sa));
  }
  return s;
}

}  // namespace hrb::results
