#include <gtest/gtest.h>

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
