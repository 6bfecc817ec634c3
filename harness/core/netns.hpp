#pragma once
// Network namespaces by name (/run/netns/<name>, as iproute2 keeps them). setns() is per thread:
// NetnsGuard switches the calling thread and always switches it back; run_in_netns runs a function
// on a fresh thread inside a namespace, keeping the root mount namespace (so bpffs stays visible,
// unlike `ip netns exec`).
#include <array>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.hpp"

namespace hrb {

std::string netns_path(const std::string& name);
bool netns_exists(const std::string& name);
std::vector<std::string> list_netns();   // names under /run/netns, sorted
Fd open_netns(const std::string& name);  // throws SysError naming the netns

class NetnsGuard {
 public:
  explicit NetnsGuard(const std::string& name);
  explicit NetnsGuard(int netns_fd);
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  void enter(int fd);
  Fd saved_;
};

// Runs fn() on a new thread that first enters netns `name`; returns its result or rethrows.
template <typename F>
auto run_in_netns(const std::string& name, F&& fn) -> decltype(fn()) {
  using R = decltype(fn());
  std::packaged_task<R()> task([&name, &fn]() -> R {
    NetnsGuard g(name);
    return fn();
  });
  auto fut = task.get_future();
  std::thread t(std::move(task));
  t.join();
  return fut.get();
}

// Writes a sysctl (dotted key, e.g. "net.ipv4.ip_forward") in netns `name`; /proc/sys/net is
// resolved against the writing thread's namespace.
void write_sysctl_in(const std::string& netns, const std::string& key, const std::string& value);
std::string read_sysctl_in(const std::string& netns, const std::string& key);
std::string sysctl_path(const std::string& key);

// The MAC address of interface `ifname` in the calling thread's netns (throws SysError).
std::array<uint8_t, 6> mac_of(const std::string& ifname);

// The netns cookie (SO_NETNS_COOKIE) of a named namespace, as BPF's bpf_get_netns_cookie sees it.
uint64_t netns_cookie(const std::string& name);

}  // namespace hrb
