#pragma once
// The profiles file of a run (`hrbench run --profile`, docs/profiles.md): next to the results
// file, named <results>.profiles.json, referenced by the results' "profiles". Its types are in
// results/document.hpp; here are its file, and what is read from it: each bucket's CPU share by
// mode and the sentence that says where the difference went.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metrics/profile.hpp"
#include "results/document.hpp"

namespace hrb::results {

// "<dir>/<run>.profiles.json" for "<dir>/<run>.json" (any other name: "<name>.profiles.json").
std::string profiles_path_for(const std::string& results_path);
void write_profiles(const std::string& path, const ProfileDocument& d);
// Throws Error(kBadInput) naming the file (missing, not JSON, wrong schema or types).
ProfileDocument read_profiles(const std::string& path);
// The profiles `run` (read from `results_file`) references: nullopt when it references none;
// throws Error(kBadInput) naming both files when the profiles file cannot be read.
std::optional<ProfileDocument> profiles_of(const std::string& results_file, const Run& run);

// A profile as folded stacks (its counts from the file).
metrics::FoldedStacks folded(const Profile& p);

// One (scenario, workload, scan value): each mode's profile, as shares of its samples per
// bucket (recomputed from the stacks with metrics::bucket_table).
struct BucketComparison {
  std::string scenario, workload;
  std::optional<TrialScan> scan;
  std::string family = "ipv4";                        // each family its own comparison
  std::vector<std::string> modes;                     // reference first: legacy when profiled
  std::vector<std::map<std::string, double>> shares;  // per mode: bucket id -> 0..1
  std::vector<uint64_t> samples;                      // per mode
  std::vector<const Profile*> profiles;               // per mode, into the document
  // "pod-pod-cross-node tcp_crr" (+ " services=1000", + " ipv6" for IPv6)
  std::string title() const;
};
// Grouped in the order first profiled; within one, modes in `mode_order` first (then any other).
std::vector<BucketComparison> bucket_comparisons(const ProfileDocument& d,
                                                 const std::vector<std::string>& mode_order);

// The sentence a reader wants, from the table: the buckets whose shares differ most (at least
// one percentage point) between the reference mode and ebpf (or the next mode), e.g. "legacy
// spends 18 % of its CPU in netfilter/iptables rule walk, ebpf 0 %; BPF programs cost ebpf 4 %
// of its CPU (legacy 0 %)". A comparison of one mode only: its largest buckets.
std::string bucket_sentence(const BucketComparison& c);

// "18 %", "0.4 %", "0 %": a share as the report prints it.
std::string percent(double share);

}  // namespace hrb::results
