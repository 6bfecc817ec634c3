#include <gtest/gtest.h>
#include <signal.h>

#include "core/interrupt.hpp"

using namespace hrb;

// One flag, one handler: nothing is raised until a signal arrives after install(); SIGTERM (as
// SIGINT) then sets it, and the process goes on.
TEST(InterruptFlag, SetBySignalOnceInstalled) {
  EXPECT_FALSE(InterruptFlag::raised());
  InterruptFlag::install();
  InterruptFlag::install();  // idempotent
  EXPECT_FALSE(InterruptFlag::raised());
  ASSERT_EQ(raise(SIGTERM), 0);  // the handler runs before raise returns
  EXPECT_TRUE(InterruptFlag::raised());
  EXPECT_TRUE(InterruptFlag::get().load());
}
