#include "core/bpf.hpp"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstdarg>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/fd.hpp"

namespace hrb {
namespace {
std::mutex g_capture_mu;
std::string g_captured;

// Whole messages: libbpf prints a rejected program's verifier log as one "%s", often far over
// any fixed buffer (a 4 KiB one kept the log's first lines and cut the reason at its end).
int capture_print(enum libbpf_print_level, const char* fmt, va_list args) {
  va_list again;
  va_copy(again, args);
  int n = vsnprintf(nullptr, 0, fmt, args);
  if (n > 0) {
    std::string buf(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(buf.data(), buf.size(), fmt, again);
    buf.resize(static_cast<size_t>(n));
    g_captured += buf;
  }
  va_end(again);
  return 0;
}

int quiet_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, args);
}
}  // namespace

LibbpfLogCapture::LibbpfLogCapture() {
  g_capture_mu.lock();
  g_captured.clear();
  libbpf_set_print(capture_print);
}

LibbpfLogCapture::~LibbpfLogCapture() {
  libbpf_set_print(quiet_print);
  g_capture_mu.unlock();
}

std::string LibbpfLogCapture::text() const { return g_captured; }

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
