#pragma once
// C++ around libbpf: a move-only skeleton owner, capture of libbpf's log (the verifier's log
// included) so a rejected program's error carries it, and a scratch network namespace.
#include <bpf/libbpf.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace hrb {

// BPF_TCX_INGRESS / _EGRESS (kernel >= 6.6): newer than libbpf 1.1's headers, named here, once.
inline constexpr auto kTcxIngress = static_cast<bpf_attach_type>(46);
inline constexpr auto kTcxEgress = static_cast<bpf_attach_type>(47);

// While alive, libbpf's messages (warnings and the verifier log) on this thread go into text(),
// not stderr. Per thread: captures on different threads do not see each other's messages.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;
  std::string text() const;

 private:
  std::string text_;
  std::string* outer_;  // the capture this one is nested in, on this thread
};

// The last `max_lines` lines of a verifier log: the rejection reason is at the end.
std::string log_tail(const std::string& log, size_t max_lines = 40);

// The ABI version an object carries (its .rodata global `hrb_abi_version`, from HRB_ABI_VERSION
// in bpf/include/hrb_abi.h); nullopt for an object without one.
std::optional<uint32_t> object_abi_version(const bpf_object* obj);

// Throws Error(kBadInput), naming `file` and both values, unless `theirs` (opened from `file`)
// carries the ABI version of `ours` (this build's embedded object) and the same .rodata and .bss
// layout (each variable's name, offset and size), which this build's skeleton writes and reads.
void check_same_abi(const bpf_object* ours, const bpf_object* theirs, const std::string& file);

// Re-opens skeleton `s` (opened from its embedded object) from the object file `file`, kept in
// `data` while the skeleton lives, after check_same_abi. Throws Error(kBadInput) naming the file.
void reopen_skeleton_from_file(bpf_object_skeleton* s, const std::string& file,
                               std::vector<char>& data);

// Owns a generated skeleton (bpftool's C++ statics T::open/load/destroy).
template <typename T>
class Skeleton {
 public:
  Skeleton() {
    skel_ = T::open();
    if (!skel_) throw_errno("open BPF skeleton");
  }
  // The same skeleton on another build's object file (an A/B of two builds: the same loader,
  // other objects); empty: this build's embedded object. Refused unless the file has this
  // build's ABI version and layout (check_same_abi).
  explicit Skeleton(const std::string& object_file) : Skeleton() {
    if (object_file.empty()) return;
    try {
      reopen_skeleton_from_file(skel_->skeleton, object_file, data_);
    } catch (...) {
      T::destroy(std::exchange(skel_, nullptr));
      throw;
    }
  }
  Skeleton(Skeleton&& o) noexcept
      : skel_(std::exchange(o.skel_, nullptr)), data_(std::move(o.data_)) {}
  Skeleton(const Skeleton&) = delete;
  Skeleton& operator=(const Skeleton&) = delete;
  ~Skeleton() {
    if (skel_) T::destroy(skel_);
  }
  T* operator->() const { return skel_; }
  T* get() const { return skel_; }

  // Loads into the kernel; on failure the error carries the verifier's log.
  void load(const std::string& what) {
    LibbpfLogCapture cap;
    int err = T::load(skel_);
    if (err) {
      throw Error(fmt::format("loading BPF object {} failed: {} (errno {})\n{}", what,
                              strerror(-err), -err, log_tail(cap.text())));
    }
  }

 private:
  T* skel_ = nullptr;
  std::vector<char> data_;  // another build's object file, read by libbpf until load
};

// Runs fn() on a thread inside a brand-new, anonymous network namespace with `lo` up. The
// namespace disappears with the thread: nothing is left behind.
void run_in_scratch_netns_impl(const std::function<void()>& fn);
template <typename F>
auto run_in_scratch_netns(F&& fn) -> decltype(fn()) {
  if constexpr (std::is_void_v<decltype(fn())>) {
    run_in_scratch_netns_impl(fn);
  } else {
    decltype(fn()) out{};
    run_in_scratch_netns_impl([&] { out = fn(); });
    return out;
  }
}

}  // namespace hrb
