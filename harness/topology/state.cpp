#include "topology/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/pins.hpp"
#include "core/process.hpp"
#include "topology/layout.hpp"

namespace fs = std::filesystem;

namespace hrb::topology {

StateDir::StateDir(std::string prefix) : prefix_(std::move(prefix)) {}

std::string StateDir::root() {
  const char* env = std::getenv("HRBENCH_STATE_DIR");
  return env && *env ? env : "/run/hrbench";
}

std::string StateDir::path() const { return root() + "/" + prefix_; }
bool StateDir::exists() const { return fs::exists(path() + "/journal"); }
bool StateDir::complete() const { return fs::exists(path() + "/complete"); }

Fd StateDir::lock() const {
  std::error_code ec;
  fs::create_directories(path(), ec);
  if (ec) throw Error("cannot create state directory " + path() + ": " + ec.message());
  std::string lp = path() + "/lock";
  Fd fd(::open(lp.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw_errno("open " + lp);
  // A holder SIGKILLed a moment ago can leave the lock held for a few milliseconds by helpers
  // forked but not yet exec'ed (they share the lock's open file and die with the holder).
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(10);
  bool helpers_killed = false;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) throw_errno("flock " + lp);
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, n) : "?";
    int holder = 0;
    try {
      holder = std::stoi(pid);
    } catch (const std::exception&) {
    }
    if (holder <= 0 || process_running(holder) || std::chrono::steady_clock::now() > deadline)
      throw Error("another hrbench (pid " + pid + ") is working on prefix '" + prefix_ +
                      "'; wait for it, or use another --prefix",
                  ExitCode::kBusy);
    // The holder is dead: its last helpers are exiting. One that still holds the lock after
    // 200 ms will not let go by itself (stopped before its exec, or started without
    // PR_SET_PDEATHSIG): kill the journalled helpers that are still the recorded processes.
    if (!helpers_killed &&
        std::chrono::steady_clock::now() - start > std::chrono::milliseconds(200)) {
      helpers_killed = true;
      for (const auto& e : journal()) {
        ProcessId p;
        if (e.kind != "helper" ||
            std::sscanf(e.name.c_str(), "%d %" SCNu64, &p.pid, &p.start_time) != 2)
          continue;
        if (kill_and_wait(p, 10000)) helpers_killed_by_lock_.push_back(p);
      }
    }
    ::usleep(1000);
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
    throw_errno("write " + lp);
  // Journal every helper before it may exec. No O_CREAT: before begin() and after remove() there
  // is no cluster whose cleanup would need it.
  set_spawn_observer([jp = path() + "/journal"](const ProcessId& p) {
    const std::string line = fmt::format("helper {} {}\n", p.pid, p.start_time);
    Fd j(::open(jp.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (!j) {
      if (errno == ENOENT) return;
      throw_errno("open " + jp);
    }
    if (::write(j.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      throw_errno("append to " + jp);
    if (::fsync(j.get()) != 0) throw_errno("fsync " + jp);
  });
  return fd;
}

void StateDir::begin(const std::string& topology_yaml) {
  fs::create_directories(path());
  {
    std::ofstream t(path() + "/topology.yaml");
    t << topology_yaml;
    if (!t) throw Error("cannot write " + path() + "/topology.yaml");
  }
  fs::remove(path() + "/complete");
  std::ofstream j(path() + "/journal", std::ios::trunc);
  if (!j) throw Error("cannot write " + path() + "/journal");
}

void StateDir::record(const std::vector<JournalEntry>& entries) {
  std::string text;
  for (const auto& e : entries) text += e.kind + " " + e.name + "\n";
  std::string jp = path() + "/journal";
  Fd fd(::open(jp.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw_errno("open " + jp);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw_errno("append to " + jp);
  if (::fsync(fd.get()) != 0) throw_errno("fsync " + jp);
}

std::vector<JournalEntry> StateDir::journal() const {
  std::vector<JournalEntry> out;
  std::ifstream j(path() + "/journal");
  std::string line;
  while (std::getline(j, line)) {
    auto sp = line.find(' ');
    if (sp == std::string::npos) continue;  // a torn last line after a crash
    out.push_back({line.substr(0, sp), line.substr(sp + 1)});
  }
  return out;
}

void StateDir::record_attached(const std::vector<Attachment>& attachments) {
  std::vector<JournalEntry> entries;
  for (const auto& a : attachments) entries.push_back({"attach", a.str()});
  if (!entries.empty()) record(entries);
}

void StateDir::record_detached(const Attachment& a) {
  const std::string line = "detach " + a.str() + "\n", jp = path() + "/journal";
  Fd fd(::open(jp.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));  // no O_CREAT: nothing to undo
  if (!fd) {
    if (errno == ENOENT) return;
    throw_errno("open " + jp);
  }
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    throw_errno("append to " + jp);
  if (::fsync(fd.get()) != 0) throw_errno("fsync " + jp);
}

std::vector<Attachment> StateDir::attachments() const {
  const auto entries = journal();
  std::vector<Attachment> live;
  // No attach line: a journal of the version before attachments were journalled (or none at all).
  // Its pin names stand for the attach lines it did not write.
  if (std::none_of(entries.begin(), entries.end(),
                   [](const auto& e) { return e.kind == "attach"; }))
    live = old_layout_attachments(pins::root(prefix_), [this](const std::string& node) {
      return netns_prefix(prefix_) + node;  // the layout's rule for a node's netns
    });
  for (const auto& e : entries) {
    if (e.kind != "attach" && e.kind != "detach") continue;
    auto a = Attachment::parse(e.name);
    if (!a) continue;  // torn by a crash (it was written before the attach, which never ran)
    if (e.kind == "attach") {
      live.push_back(*a);
    } else {
      auto it = std::find(live.rbegin(), live.rend(), *a);
      if (it != live.rend()) live.erase(std::next(it).base());
    }
  }
  return live;
}

void detach_journalled(StateDir& state, const std::function<bool(const Attachment&)>& which) {
  auto live = state.attachments();
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    if (which && !which(*it)) continue;
    detach(*it);
    state.record_detached(*it);
  }
}

std::string StateDir::topology_yaml() const {
  auto yaml = try_read_text_file(path() + "/topology.yaml");
  if (!yaml)
    throw Error("no cluster with prefix '" + prefix_ + "' (" + path() + " is missing)",
                ExitCode::kNotFound);
  return *yaml;
}

std::string StateDir::read(const std::string& name) const {
  return try_read_text_file(path() + "/" + name).value_or("");
}

void StateDir::write(const std::string& name, const std::string& text) {
  const std::string tmp = path() + "/." + name + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    if (!f) throw Error("cannot write " + tmp);
  }
  fs::rename(tmp, path() + "/" + name);
}

void StateDir::mark_complete() { std::ofstream(path() + "/complete") << "ok\n"; }

void StateDir::remove() {
  std::error_code ec;
  fs::remove_all(path(), ec);  // the lock file too: a waiter re-creates it
}

std::vector<std::string> StateDir::all_prefixes() {
  std::vector<std::string> v;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(root(), ec))
    if (e.is_directory()) v.push_back(e.path().filename().string());
  return v;
}

}  // namespace hrb::topology
