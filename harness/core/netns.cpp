#include "core/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace hrb {

std::string netns_path(const std::string& name) { return "/run/netns/" + name; }

bool netns_exists(const std::string& name) {
  std::error_code ec;
  return std::filesystem::exists(netns_path(name), ec);
}

std::vector<std::string> list_netns() {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/run/netns", ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

Fd open_netns(const std::string& name) {
  int fd = ::open(netns_path(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open network namespace '" + name + "' (" + netns_path(name) + ")");
  return Fd(fd);
}

NetnsGuard::NetnsGuard(const std::string& name) {
  Fd target = open_netns(name);
  enter(target.get());
}

NetnsGuard::NetnsGuard(int netns_fd) { enter(netns_fd); }

void NetnsGuard::enter(int fd) {
  int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) throw_errno("open /proc/thread-self/ns/net");
  saved_.reset(self);
  if (::setns(fd, CLONE_NEWNET) != 0) throw_errno("setns(CLONE_NEWNET)");
}

NetnsGuard::~NetnsGuard() {
  // Never continue in the wrong netns.
  if (saved_ && ::setns(saved_.get(), CLONE_NEWNET) != 0) std::terminate();
}

std::string sysctl_path(const std::string& key) {
  std::string p = "/proc/sys/" + key;
  std::replace(p.begin() + 10, p.end(), '.', '/');
  return p;
}

void write_sysctl_in(const std::string& netns, const std::string& key, const std::string& value) {
  run_in_netns(netns, [&] {
    std::ofstream f(sysctl_path(key));
    f << value << '\n';
    f.flush();
    if (!f) throw Error("cannot write sysctl " + key + "=" + value + " in netns " + netns);
  });
}

std::string read_sysctl_in(const std::string& netns, const std::string& key) {
  return run_in_netns(netns, [&] {
    std::ifstream f(sysctl_path(key));
    std::string v;
    if (!std::getline(f, v)) throw Error("cannot read sysctl " + key + " in netns " + netns);
    return v;
  });
}

uint64_t netns_cookie(const std::string& name) {
  return run_in_netns(name, [&] {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) throw_errno("socket in netns " + name);
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (::getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
      throw_errno("getsockopt(SO_NETNS_COOKIE) in netns " + name);
    return cookie;
  });
}

std::array<uint8_t, 6> mac_of(const std::string& ifname) {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) throw_errno("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0) throw_errno("SIOCGIFHWADDR " + ifname);
  std::array<uint8_t, 6> m{};
  std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, 6);
  return m;
}

}  // namespace hrb
