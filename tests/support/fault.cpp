#include "support/fault.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace hrb::test {

pid_t start_stopped(const std::vector<std::string>& args,
                    const std::vector<std::pair<std::string, std::string>>& env) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    std::vector<char*> argv{const_cast<char*>(HRBENCH_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(HRBENCH_BIN, argv.data());
    _exit(127);
  }
  int st = 0;
  if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st)) {
    ADD_FAILURE() << "hrbench " << args[0] << " did not reach its fault point (status " << st
                  << ")";
    return -1;
  }
  return pid;
}

void kill_stopped(pid_t pid) {
  ASSERT_GT(pid, 0);
  kill(pid, SIGKILL);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(st));
}

}  // namespace hrb::test
