#include "core/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string_view>

#include "core/error.hpp"
#include "core/fd.hpp"
#include "core/netns.hpp"

namespace hrb {

std::string shell_join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$*?|&;<>()") == std::string::npos;
    if (plain) {
      s += a;
      continue;
    }
    s += '\'';
    for (char c : a) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    s += '\'';
  }
  return s;
}

void exec_in_netns(const std::string& netns, const std::vector<std::string>& argv) {
  if (argv.empty()) throw Error("exec in " + netns + ": no command", ExitCode::kUsage);
  Fd ns = open_netns(netns);
  if (setns(ns.get(), CLONE_NEWNET) != 0) throw_errno("setns into " + netns);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  execvp(cargv[0], cargv.data());
  throw_errno("exec " + argv[0]);
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      std::string cand = dir + "/" + name;
      if (access(cand.c_str(), X_OK) == 0) return cand;
    }
    start = end + 1;
  }
  return "";
}

namespace {
void make_pipe(Fd& r, Fd& w) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
  r.reset(p[0]);
  w.reset(p[1]);
}

std::mutex g_observer_mu;
std::shared_ptr<const SpawnObserver> g_observer;

std::shared_ptr<const SpawnObserver> spawn_observer() {
  std::lock_guard<std::mutex> g(g_observer_mu);
  return g_observer;
}
}  // namespace

void set_spawn_observer(SpawnObserver observer) {
  std::lock_guard<std::mutex> g(g_observer_mu);
  g_observer = observer ? std::make_shared<const SpawnObserver>(std::move(observer)) : nullptr;
}

void fault_point(const std::string& stage) {
  static const char* const stop_at = getenv("HRBENCH_FAULT_STOP_AT");
  static std::atomic<bool> stopped{false};
  if (stop_at && stage == stop_at && !stopped.exchange(true)) ::raise(SIGSTOP);
}

uint64_t process_start_time(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count from the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

bool kill_and_wait(const ProcessId& p, int timeout_ms) {
  if (p.pid <= 0) return false;
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, p.pid, 0)));
  if (!pidfd) return false;  // gone
  // The pidfd names one process from here on; if its start time is not the recorded one, the pid
  // was recycled by an unrelated process.
  if (process_start_time(p.pid) != p.start_time) return false;
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) {
    if (errno == ESRCH) return false;
    throw_errno("kill helper process " + std::to_string(p.pid));
  }
  pollfd pf{pidfd.get(), POLLIN, 0};
  int n;
  do n = poll(&pf, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    throw Error(
        fmt::format("helper process {} did not exit within {} ms of SIGKILL", p.pid, timeout_ms));
  return true;
}

Child spawn(const std::vector<std::string>& argv, const CmdOptions& opts) {
  if (argv.empty()) throw Error("run_cmd: empty argv");
  Fd ns;
  if (opts.netns) ns = open_netns(*opts.netns);
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);
  Fd procs;  // the cgroup's member list: the child writes "0" (itself) into it
  if (!opts.cgroup.empty()) {
    procs.reset(open((opts.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs) throw_errno("open " + opts.cgroup + "/cgroup.procs");
  }
  Fd go_r, go_w;  // the child execs only after reading a byte: once it is journalled
  make_pipe(go_r, go_w);
  if (go_r.get() < 3) go_r.reset(fcntl(go_r.get(), F_DUPFD_CLOEXEC, 3));  // dup2 below owns 0-2
  if (!go_r) throw_errno("fcntl F_DUPFD_CLOEXEC");
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  // The child's environment, made here: after fork only async-signal-safe calls.
  std::vector<char*> cenv;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    if (std::none_of(opts.env.begin(), opts.env.end(),
                     [&](const std::string& x) { return x.rfind(name, 0) == 0; }))
      cenv.push_back(*e);
  }
  for (const auto& x : opts.env) cenv.push_back(const_cast<char*>(x.c_str()));
  cenv.push_back(nullptr);
  // Test hook: a helper that outlives hrbench, as one would without PR_SET_PDEATHSIG.
  static const bool no_pdeathsig = getenv("HRBENCH_FAULT_NO_PDEATHSIG") != nullptr;
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) throw_errno("fork for " + argv[0]);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on. Die with the parent; if it died before
    // prctl took effect, getppid() is no longer the original parent.
    if (!no_pdeathsig && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) _exit(124);
    if (getppid() != parent) _exit(124);
    if (ns && setns(ns.get(), CLONE_NEWNET) != 0) _exit(126);
    if (opts.new_anon_netns && unshare(CLONE_NEWNET) != 0) _exit(126);
    if (procs && write(procs.get(), "0", 1) != 1) _exit(125);
    dup2(in_r.get(), 0);
    dup2(out_w.get(), 1);
    dup2(err_w.get(), 2);
    // Keep nothing else the parent had open: not the prefix's lock, not other helpers' pipes
    // (whose end-of-file their children wait for), nor a descriptor opened without O_CLOEXEC.
    const unsigned go = static_cast<unsigned>(go_r.get());
    if (go > 3) syscall(SYS_close_range, 3u, go - 1, 0u);
    syscall(SYS_close_range, go + 1, ~0u, 0u);
    char b = 0;
    if (read(static_cast<int>(go), &b, 1) != 1) _exit(124);  // the parent died or gave up
    close(static_cast<int>(go));
    execvpe(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  go_r.reset();
  if (auto obs = spawn_observer()) {
    try {
      (*obs)({pid, process_start_time(pid)});
    } catch (...) {
      ::kill(pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      throw;
    }
  }
  if (write(go_w.get(), "g", 1) != 1) {
    int e = errno;
    ::kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    errno = e;
    throw_errno("start " + argv[0]);
  }
  go_w.reset();
  fault_point("exec:" + std::filesystem::path(argv[0]).filename().string());
  Child c;
  c.pid_ = pid;
  c.argv_ = argv;
  c.opts_ = opts;
  c.opts_.input.clear();
  c.in_w_ = std::move(in_w);
  c.out_r_ = std::move(out_r);
  c.err_r_ = std::move(err_r);
  return c;
}

CmdResult Child::collect(const std::string& input) {
  const auto& argv = argv_;
  const auto& opts = opts_;
  Fd& in_w = in_w_;
  Fd& out_r = out_r_;
  Fd& err_r = err_r_;
  CmdResult res;
  res.out = std::move(out_);
  out_.clear();
  size_t written = 0;
  if (input.empty()) in_w.reset();
  ::signal(SIGPIPE, SIG_IGN);
  char buf[65536];
  while (out_r || err_r) {
    pollfd fds[3];
    int n = 0;
    if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
    if (in_w) fds[n++] = {in_w.get(), POLLOUT, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll on " + argv[0]);
    }
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (in_w && fds[i].fd == in_w.get()) {
        ssize_t w = write(in_w.get(), input.data() + written, input.size() - written);
        if (w > 0) written += w;
        if (w < 0 || written == input.size()) in_w.reset();
        continue;
      }
      Fd& src = (out_r && fds[i].fd == out_r.get()) ? out_r : err_r;
      ssize_t r = read(src.get(), buf, sizeof buf);
      if (r > 0) {
        (&src == &out_r ? res.out : res.err).append(buf, r);
      } else if (r == 0 || errno != EINTR) {
        src.reset();
      }
    }
  }
  in_w.reset();
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid for " + argv[0]);
  }
  pid_ = -1;  // reaped
  res.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (opts.check && res.status != 0) {
    std::string where = opts.netns ? " (in netns " + *opts.netns + ")" : "";
    std::string msg = res.err.empty() ? res.out : res.err;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (res.status == 127 && msg.empty()) msg = "command not found";
    if (res.status == 126 && msg.empty()) msg = "could not enter the network namespace";
    if (res.status == 125 && msg.empty()) msg = "could not join cgroup " + opts.cgroup;
    throw Error(
        fmt::format("`{}`{} failed with status {}: {}", shell_join(argv), where, res.status, msg));
  }
  return res;
}

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      argv_(std::move(o.argv_)),
      opts_(std::move(o.opts_)),
      in_w_(std::move(o.in_w_)),
      out_r_(std::move(o.out_r_)),
      err_r_(std::move(o.err_r_)),
      out_(std::move(o.out_)) {}

Child::~Child() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void Child::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<std::string> Child::read_line(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (true) {
    if (auto nl = out_.find('\n'); nl != std::string::npos) {
      std::string line = out_.substr(0, nl);
      out_.erase(0, nl + 1);
      return line;
    }
    if (!out_r_) return std::nullopt;
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      wait_ms = static_cast<int>(left);
    }
    pollfd pf{out_r_.get(), POLLIN, 0};
    const int n = poll(&pf, 1, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("poll on " + argv_[0]);
    if (n == 0) return std::nullopt;
    const ssize_t r = read(out_r_.get(), buf, sizeof buf);
    if (r > 0) {
      out_.append(buf, r);
    } else if (r == 0 || errno != EINTR) {
      out_r_.reset();  // end of file: finish() still reaps it
    }
  }
}

CmdResult Child::finish() {
  if (pid_ <= 0)
    throw Error("finish: " + (argv_.empty() ? std::string("helper") : argv_[0]) +
                " was already reaped");
  return collect("");
}

CmdResult run_cmd(const std::vector<std::string>& argv, const CmdOptions& opts) {
  Child c = spawn(argv, opts);
  c.opts_.input = opts.input;
  return c.collect(opts.input);
}

bool wait_process_exit(int pid, int timeout_ms) {
  // A pidfd turns readable when the process exits, before anyone reaps it.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    if (errno == ESRCH) return true;                         // no such process: gone (and reaped)
    for (int waited = 0; kill(pid, 0) == 0; waited += 10) {  // no pidfds: poll
      if (waited >= timeout_ms) return false;
      usleep(10000);
    }
    return true;
  }
  pollfd pf{pidfd.get(), POLLIN, 0};
  int n;
  do n = poll(&pf, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  return n == 1;
}

bool process_running(int pid) { return pid > 0 && !wait_process_exit(pid, 0); }

}  // namespace hrb
