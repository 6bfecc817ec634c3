#include "core/bpf.hpp"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <bpf/btf.h>

#include <cstdarg>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "core/log.hpp"

namespace hrb {
namespace {
// libbpf calls its print hook on the thread that called it: each thread's capture collects its
// own messages, so objects load in parallel (EbpfMode loads the nodes' programs on a worker pool).
thread_local std::string* t_sink = nullptr;

// Whole messages: libbpf prints a rejected program's verifier log as one "%s", often far over
// any fixed buffer (a 4 KiB one kept the log's first lines and cut the reason at its end).
void append(std::string& out, const char* fmt, va_list args) {
  va_list again;
  va_copy(again, args);
  int n = vsnprintf(nullptr, 0, fmt, args);
  if (n > 0) {
    std::string buf(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(buf.data(), buf.size(), fmt, again);
    buf.resize(static_cast<size_t>(n));
    out += buf;
  }
  va_end(again);
}

// The one print hook, installed once: into the calling thread's capture, else warnings to stderr.
int print_hook(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (t_sink) {
    append(*t_sink, fmt, args);
    return 0;
  }
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, args);
}
}  // namespace

LibbpfLogCapture::LibbpfLogCapture() : outer_(t_sink) {
  static std::once_flag installed;
  std::call_once(installed, [] { libbpf_set_print(print_hook); });
  t_sink = &text_;
}

LibbpfLogCapture::~LibbpfLogCapture() { t_sink = outer_; }

std::string LibbpfLogCapture::text() const { return text_; }

std::string log_tail(const std::string& log, size_t max_lines) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i + 1 < log.size(); ++i)
    if (log[i] == '\n') starts.push_back(i + 1);
  if (starts.size() <= max_lines) return log;
  return "… (" + std::to_string(starts.size() - max_lines) + " earlier lines)\n" +
         log.substr(starts[starts.size() - max_lines]);
}

void run_in_scratch_netns_impl(const std::function<void()>& fn) {
  std::exception_ptr err;
  std::thread t([&] {
    try {
      if (unshare(CLONE_NEWNET) != 0) throw_errno("unshare(CLONE_NEWNET)");
      Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!s) throw_errno("socket");
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
      if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) throw_errno("SIOCGIFFLAGS lo");
      ifr.ifr_flags |= IFF_UP;
      if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) throw_errno("SIOCSIFFLAGS lo up");
      fn();
    } catch (...) {
      err = std::current_exception();
    }
  });
  t.join();
  if (err) std::rethrow_exception(err);
}

}  // namespace hrb

namespace hrb {
namespace {
// One variable of a data section (.rodata, .bss) as the object's BTF describes it.
struct DataVar {
  std::string name;
  uint32_t offset, size;
  bool operator==(const DataVar&) const = default;
};

std::vector<DataVar> data_vars(const bpf_object* obj, const char* section) {
  std::vector<DataVar> out;
  const btf* b = bpf_object__btf(obj);
  if (!b) return out;
  const int id = btf__find_by_name_kind(b, section, BTF_KIND_DATASEC);
  if (id < 0) return out;
  const btf_type* t = btf__type_by_id(b, id);
  const btf_var_secinfo* v = btf_var_secinfos(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++v)
    out.push_back(
        {btf__name_by_offset(b, btf__type_by_id(b, v->type)->name_off), v->offset, v->size});
  return out;
}

std::string describe(const std::vector<DataVar>& vars) {
  std::string s;
  for (const auto& v : vars)
    s += fmt::format("{}{}@{}:{}", s.empty() ? "" : " ", v.name, v.offset, v.size);
  return s.empty() ? "(none)" : s;
}

std::string version_str(std::optional<uint32_t> v) {
  return v ? std::to_string(*v) : std::string("none (no hrb_abi_version)");
}
}  // namespace

std::optional<uint32_t> object_abi_version(const bpf_object* obj) {
  for (const auto& v : data_vars(obj, ".rodata")) {
    if (v.name != "hrb_abi_version" || v.size != sizeof(uint32_t)) continue;
    for (bpf_map* m = bpf_object__next_map(obj, nullptr); m; m = bpf_object__next_map(obj, m)) {
      const std::string name = bpf_map__name(m);
      if (!bpf_map__is_internal(m) || !name.ends_with(".rodata")) continue;
      size_t size = 0;
      const auto* data = static_cast<const char*>(bpf_map__initial_value(m, &size));
      if (!data || v.offset + sizeof(uint32_t) > size) return std::nullopt;
      uint32_t version;
      std::memcpy(&version, data + v.offset, sizeof version);
      return version;
    }
  }
  return std::nullopt;
}

void check_same_abi(const bpf_object* ours, const bpf_object* theirs, const std::string& file) {
  const auto mine = object_abi_version(ours), other = object_abi_version(theirs);
  if (mine != other)
    throw Error(fmt::format("{}: BPF ABI version {}, this build's is {}: the loader refuses an "
                            "object of another ABI (HRB_ABI_VERSION, bpf/include/hrb_abi.h); "
                            "build both from revisions with the same ABI version",
                            file, version_str(other), version_str(mine)),
                ExitCode::kBadInput);
  for (const char* sec : {".rodata", ".bss"}) {
    const auto a = data_vars(ours, sec), b = data_vars(theirs, sec);
    if (a != b)
      throw Error(fmt::format("{}: BPF ABI version {} as this build, but its {} layout differs "
                              "(this build: {}; {}: {}) — HRB_ABI_VERSION should have been "
                              "bumped (bpf/include/hrb_abi.h)",
                              file, version_str(mine), sec, describe(a), file, describe(b)),
                  ExitCode::kBadInput);
  }
}

void reopen_skeleton_from_file(bpf_object_skeleton* s, const std::string& file,
                               std::vector<char>& data) {
  {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      throw Error(file + ": cannot read the BPF object (" + strerror(errno) + ")",
                  ExitCode::kBadInput);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // This build's object stays open for the comparison; the skeleton is re-pointed at the file's.
  std::unique_ptr<bpf_object, void (*)(bpf_object*)> ours(*s->obj, bpf_object__close);
  *s->obj = nullptr;
  s->data = data.data();
  s->data_sz = data.size();
  LibbpfLogCapture cap;
  if (int err = bpf_object__open_skeleton(s, nullptr))
    throw Error(fmt::format("{}: not a usable BPF object for {} ({}):\n{}", file, s->name,
                            strerror(-err), log_tail(cap.text(), 10)),
                ExitCode::kBadInput);
  check_same_abi(ours.get(), *s->obj, file);
}

}  // namespace hrb
