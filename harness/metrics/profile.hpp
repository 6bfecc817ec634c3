#pragma once
// Kernel profiles: `perf script` output folded into stacks ("root;…;leaf" -> samples, the format
// of Brendan Gregg's stackcollapse-perf.pl), and each stack put in one bucket of where the CPU
// went (netfilter, conntrack, NAT, BPF programs, …). The one table mapping function names to
// buckets is bucket_table(); docs/profiles.md shows it and says how a stack is classified.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hrb::metrics {

// Stack -> samples. A stack's first frame is the sampled task's command (threads' names without
// their "/N" CPU suffix: hrbench, swapper (the idle task, and interrupts taken in it), ksoftirqd,
// …), then its frames from the outermost to the sampled one. Frames of user space carry the
// suffix "_[u]"; C++ parameter lists and "+0x…" offsets are cut off.
struct FoldedStacks {
  std::map<std::string, uint64_t> stacks;
  uint64_t samples = 0;        // in `stacks`
  uint64_t other_samples = 0;  // of processes left out (FoldOptions::pids)
  // "a;b;c 12" lines, sorted, as flamegraph.pl reads them.
  std::string text() const;
  // Adds another profile's stacks and counts.
  void merge(const FoldedStacks& o);
};

struct FoldOptions {
  // Keep only samples of these processes (the generators: hrbench itself) and of the kernel's
  // own tasks that do their packets' work (pid 0: idle and interrupts; ksoftirqd); the others
  // (another program on the machine, perf itself) are counted in other_samples. Empty: keep
  // every sample.
  std::set<int> pids;
};

// Folds `perf script -F comm,pid,tid,ip,sym,dso` output: a sample is a header line ("comm
// pid/tid") and one indented line per frame ("addr symbol (dso)"), innermost first. A frame is
// kernel when its address has the top bit set (x86-64, arm64), whatever perf names its DSO
// ([kernel.kallsyms], a BPF program's). Unknown symbols stay "[unknown]" (repeats collapsed).
FoldedStacks fold_perf_script(std::string_view text, const FoldOptions& opts = {});

// Parses "a;b;c 12" lines (FoldedStacks::text); throws Error(kBadInput) naming `label` and the
// line of a malformed one.
FoldedStacks parse_folded(std::string_view text, const std::string& label);

// --- buckets ---------------------------------------------------------------------------------
struct Bucket {
  std::string id;     // key in the profiles file: "netfilter"
  std::string label;  // what a reader sees: "netfilter/iptables rule walk"
  // Function-name patterns: "name" exactly, "prefix*", "*suffix" or "*infix*".
  std::vector<std::string> patterns;
};
// In the order of the report's tables; a frame matching patterns of two buckets takes the
// first. Ends with "user" (the generators' user space: a sample taken in user mode) and
// "other" (nothing matched), which have no patterns.
const std::vector<Bucket>& bucket_table();
const Bucket* find_bucket(std::string_view id);

// The bucket whose pattern matches the function `frame` (a kernel frame), or "" for none.
std::string frame_bucket(std::string_view frame);

// The bucket of a stack read from its outermost frame inwards (after the task): push() each
// frame, bucket() is the bucket of the stack cut there (stack_bucket's rule). Netfilter,
// conntrack and NAT called from the bridge's br_netfilter (the fabric's bridge, the same in
// every mode) count as the bridge's: veth/xmit.
class StackClassifier {
 public:
  void push(std::string_view frame);
  std::string bucket() const { return user_leaf_ ? "user" : matched_; }

 private:
  std::string matched_ = "other";
  bool user_leaf_ = false, bridge_nf_ = false;
};
// A stack's bucket: "user" when the sample was taken in user space (its innermost frame has
// "_[u]"); otherwise the bucket of its innermost kernel frame that matches a pattern (a generic
// function such as memcpy or _raw_spin_lock takes the bucket of the nearest caller that has
// one); "other" when none does. The first frame (the command) is not a function and never
// matches.
std::string stack_bucket(std::string_view stack);

// Samples per bucket id (every bucket of the table present, zeros included).
std::map<std::string, uint64_t> bucket_samples(const FoldedStacks& f);

// A profile's summary (`hrbench traffic --profile`): {"event": "cpu-clock", "frequencyHz",
// "seconds", "samples", "otherSamples", "buckets": {id: {"label", "samples", "share"}}}.
nlohmann::json profile_json(const FoldedStacks& f, int frequency_hz, double seconds);

}  // namespace hrb::metrics
