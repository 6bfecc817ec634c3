#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/process.hpp"

using namespace hrb;

TEST(Process, CapturesOutputAndStatus) {
  auto r = run_cmd({"sh", "-c", "echo out; echo err >&2; exit 3"}, {.check = false});
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(Process, FeedsStdin) {
  std::string big(200000, 'x');  // larger than a pipe buffer: no deadlock
  auto r = run_cmd({"wc", "-c"}, {.input = big});
  EXPECT_EQ(std::stoul(r.out), big.size());
}

// CmdOptions::env adds a variable and replaces one the parent has; the rest is inherited.
TEST(Process, EnvironmentEntriesAddAndReplace) {
  setenv("HRB_TEST_KEPT", "kept", 1);
  setenv("HRB_TEST_REPLACED", "old", 1);
  auto r = run_cmd(
      {"sh", "-c",
       "echo $HRB_TEST_KEPT $HRB_TEST_REPLACED $HRB_TEST_ADDED; env | grep -c HRB_TEST_REPLACED"},
      {.env = {"HRB_TEST_REPLACED=new", "HRB_TEST_ADDED=added"}});
  EXPECT_EQ(r.out, "kept new added\n1\n");
  unsetenv("HRB_TEST_KEPT");
  unsetenv("HRB_TEST_REPLACED");
}

TEST(Process, CheckedFailureNamesCommandAndStderr) {
  try {
    run_cmd({"sh", "-c", "echo broken >&2; exit 1"});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("sh -c"), std::string::npos) << m;
    EXPECT_NE(m.find("broken"), std::string::npos) << m;
  }
}

TEST(Process, MissingProgram) {
  auto r = run_cmd({"/nonexistent/hrb-no-such-program"}, {.check = false});
  EXPECT_EQ(r.status, 127);
  EXPECT_TRUE(find_program("hrb-no-such-program").empty());
  EXPECT_FALSE(find_program("sh").empty());
}

TEST(Process, ShellJoinQuotes) {
  EXPECT_EQ(shell_join({"ip", "-n", "a b", "x'y"}), "ip -n 'a b' 'x'\\''y'");
}

// --- helpers die with hrbench, and are journalled before they may exec ---

namespace {
int pidfd_of(int pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
bool exited(int pidfd) {
  pollfd pf{pidfd, POLLIN, 0};
  return poll(&pf, 1, 0) == 1;
}
struct ObserverReset {
  ~ObserverReset() { set_spawn_observer({}); }
};
}  // namespace

TEST(Process, StartTimeTellsProcessesApart) {
  EXPECT_GT(process_start_time(getpid()), 0u);
  EXPECT_EQ(process_start_time(getpid()), process_start_time(getpid()));
  EXPECT_EQ(process_start_time(-1), 0u);
  EXPECT_EQ(process_start_time(0x3fffffff), 0u);  // above any pid_max
}

TEST(Process, ObserverSeesTheHelperBeforeItExecs) {
  ObserverReset reset;
  std::vector<ProcessId> seen;
  std::string exe_then;
  set_spawn_observer([&](const ProcessId& p) {
    seen.push_back(p);
    exe_then = std::filesystem::read_symlink("/proc/" + std::to_string(p.pid) + "/exe");
  });
  auto r = run_cmd({"sh", "-c", "echo $$"});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(std::to_string(seen[0].pid) + "\n", r.out);
  EXPECT_GT(seen[0].start_time, 0u);
  // When the observer ran, the child was still a copy of this program: it had not exec'ed.
  EXPECT_EQ(exe_then, std::filesystem::read_symlink("/proc/self/exe").string());
}

TEST(Process, AFailingObserverStopsTheHelperBeforeItRuns) {
  ObserverReset reset;
  const std::string marker = "/tmp/hrb-observer-test-" + std::to_string(getpid());
  std::filesystem::remove(marker);
  set_spawn_observer([](const ProcessId&) { throw Error("journal full"); });
  EXPECT_THROW(
      {
        try {
          run_cmd({"touch", marker});
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "journal full");
          throw;
        }
      },
      Error);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the helper ran although it was not journalled";
}

TEST(Process, HelperDiesWithItsParent) {
  // A parent process runs a helper that would run for 5 minutes, reports the helper's pid
  // through a pipe, and is SIGKILLed: the helper must die with it (PR_SET_PDEATHSIG).
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t parent = fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    close(p[0]);
    set_spawn_observer([fd = p[1]](const ProcessId& h) {
      if (write(fd, &h, sizeof h) != sizeof h) _exit(3);
    });
    run_cmd({"sleep", "300"}, {.check = false});
    _exit(0);
  }
  close(p[1]);
  ProcessId helper;
  ASSERT_EQ(read(p[0], &helper, sizeof helper), static_cast<ssize_t>(sizeof helper));
  close(p[0]);
  int fd = pidfd_of(helper.pid);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(process_start_time(helper.pid), helper.start_time);
  kill(parent, SIGKILL);
  int st = 0;
  ASSERT_EQ(waitpid(parent, &st, 0), parent);
  pollfd pf{fd, POLLIN, 0};
  bool gone = poll(&pf, 1, 60000) == 1;  // an event, not a duration: it comes or the test fails
  if (!gone) kill(helper.pid, SIGKILL);
  close(fd);
  EXPECT_TRUE(gone) << "the helper outlived its SIGKILLed parent";
}

TEST(Process, KillAndWaitLeavesARecycledPidAlone) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execlp("sleep", "sleep", "300", nullptr);
    _exit(127);
  }
  int fd = pidfd_of(child);
  ASSERT_GE(fd, 0);
  const uint64_t start = process_start_time(child);
  ASSERT_GT(start, 0u);
  // Another start time: the pid now belongs to some other process, which must not be touched.
  EXPECT_FALSE(kill_and_wait({child, start + 1}, 1000));
  EXPECT_FALSE(exited(fd));
  EXPECT_TRUE(kill_and_wait({child, start}, 60000));
  EXPECT_TRUE(exited(fd));
  int st = 0;
  EXPECT_EQ(waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  EXPECT_FALSE(kill_and_wait({child, start}, 1000)) << "gone: nothing to kill";
  close(fd);
}

// --- a helper that runs alongside (perf record during a trial) ---

TEST(Child, RunsAlongsideUntilItsStdinCloses) {
  Child c =
      spawn({"sh", "-c", "echo ready; echo more; read x; echo done >&2; exit 4"}, {.check = false});
  EXPECT_GT(c.pid(), 0);
  EXPECT_EQ(c.read_line(10000), "ready");
  // finish() closes its stdin: `read` returns, the rest of its output is collected.
  const CmdResult r = c.finish();
  EXPECT_EQ(r.status, 4);
  EXPECT_EQ(r.out, "more\n") << "what read_line had not returned yet";
  EXPECT_EQ(r.err, "done\n");
}

TEST(Child, ReadLineSaysEndOfFileAndTimeout) {
  Child quiet = spawn({"sh", "-c", "read x; exit 0"});
  EXPECT_EQ(quiet.read_line(0), std::nullopt) << "nothing written yet";
  EXPECT_EQ(quiet.finish().status, 0);
  Child gone = spawn({"true"});
  EXPECT_EQ(gone.read_line(10000), std::nullopt) << "end of file";
  EXPECT_EQ(gone.finish().status, 0);
}

TEST(Child, OneNotFinishedIsKilledAndReaped) {
  int pidfd = -1;
  {
    Child c = spawn({"sleep", "1000"});
    pidfd = pidfd_of(c.pid());
    ASSERT_GE(pidfd, 0);
    EXPECT_FALSE(exited(pidfd));
    Child moved = std::move(c);  // the moved-from one owns nothing
  }
  EXPECT_TRUE(exited(pidfd)) << "the destructor SIGKILLs it";
  siginfo_t info{};
  EXPECT_NE(waitid(P_PIDFD, pidfd, &info, WEXITED | WNOHANG), 0) << "and reaps it";
  close(pidfd);
}

TEST(Child, FailureIsCheckedLikeRunCmd) {
  Child c = spawn({"sh", "-c", "echo broken >&2; exit 2"}, {});
  try {
    c.finish();
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken"), std::string::npos) << e.what();
  }
}

TEST(ExecInNetns, NamesTheNetnsItCannotEnter) {
  try {
    exec_in_netns("hrb-no-such-netns-for-test", {"true"});
    FAIL() << "returned";
  } catch (const SysError& e) {
    EXPECT_NE(std::string(e.what()).find("hrb-no-such-netns-for-test"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(exec_in_netns("hrb-x", {}), Error);
}
