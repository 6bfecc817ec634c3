#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "topology/state.hpp"

using namespace hrb::topology;

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hrb-state-XXXXXX";
    dir_ = mkdtemp(tmpl);
    setenv("HRBENCH_STATE_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    unsetenv("HRBENCH_STATE_DIR");
  }
  std::string dir_;
};

TEST_F(StateTest, JournalRoundTrip) {
  StateDir st("p1");
  auto lock = st.lock();
  EXPECT_FALSE(st.exists());
  st.begin("name: x\n");
  EXPECT_TRUE(st.exists());
  EXPECT_FALSE(st.complete());
  st.record({{"netns", "p1-a"}, {"netns", "p1-b"}});
  st.record({{"pin", "/sys/fs/bpf/p1/x"}});
  auto j = st.journal();
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[1].name, "p1-b");
  EXPECT_EQ(j[2].kind, "pin");
  EXPECT_EQ(st.topology_yaml(), "name: x\n");
  st.mark_complete();
  EXPECT_TRUE(st.complete());
  st.remove();
  EXPECT_FALSE(std::filesystem::exists(st.path()));
}

TEST_F(StateTest, SecondLockOnSamePrefixIsBusy) {
  StateDir st("p2");
  auto lock = st.lock();
  try {
    StateDir("p2").lock();
    FAIL() << "second lock succeeded";
  } catch (const hrb::Error& e) {
    EXPECT_EQ(e.code(), hrb::ExitCode::kBusy);
    EXPECT_NE(std::string(e.what()).find(std::to_string(getpid())), std::string::npos)
        << "names the holder: " << e.what();
  }
  EXPECT_NO_THROW(StateDir("p3").lock());  // other prefixes are independent
}

TEST_F(StateTest, TornLastLineIsIgnored) {
  StateDir st("p4");
  st.begin("");
  st.record({{"netns", "p4-a"}});
  { std::ofstream(st.path() + "/journal", std::ios::app) << "torn"; }
  EXPECT_EQ(st.journal().size(), 1u);
}
