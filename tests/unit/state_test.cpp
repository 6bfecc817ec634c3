#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/attach.hpp"
#include "core/error.hpp"
#include "core/pins.hpp"
#include "topology/state.hpp"

using namespace hrb::topology;
using hrb::Attachment;

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

// Attachments are journalled before they are made and replayed by removal: what is attached is
// every "attach" line not undone by a later, equal "detach" line.
TEST_F(StateTest, AttachmentsReplayAttachMinusDetach) {
  StateDir st("p5");
  auto lock = st.lock();
  st.begin("");
  const Attachment lxc1{.kind = Attachment::Kind::kTcx,
                        .netns = "p5-node1",
                        .target = "lxc1",
                        .hook = "ingress",
                        .pin = "/sys/fs/bpf/hrbench/p5/node1/link_lxc1"};
  Attachment lxc2 = lxc1;
  lxc2.target = "lxc2";
  lxc2.pin = "/sys/fs/bpf/hrbench/p5/node1/link_lxc2";
  const Attachment guard{.kind = Attachment::Kind::kCgroup,
                         .target = "/sys/fs/cgroup/unified",
                         .hook = "setsockopt",
                         .pin = "/sys/fs/bpf/hrbench/p5/guard/link_setsockopt"};
  st.record({{"netns", "p5-node1"}});
  st.record_attached({lxc1, lxc2});
  st.record_attached({guard});
  EXPECT_EQ(st.attachments(), (std::vector<Attachment>{lxc1, lxc2, guard}));
  st.record_detached(lxc1);
  EXPECT_EQ(st.attachments(), (std::vector<Attachment>{lxc2, guard}));
  // Attached again (a second `mode ebpf`): live once more, in its new place in the order.
  st.record_attached({lxc1});
  st.record_detached(guard);
  EXPECT_EQ(st.attachments(), (std::vector<Attachment>{lxc2, lxc1}));
  // A detach of something never attached changes nothing.
  st.record_detached(guard);
  EXPECT_EQ(st.attachments().size(), 2u);
  // The lines are readable as written (kind, then key=value).
  const auto j = st.journal();
  ASSERT_EQ(j[1].kind, "attach");
  EXPECT_EQ(j[1].name, "tcx netns=p5-node1 target=lxc1 hook=ingress pin=" + lxc1.pin);
}

// detach_journalled undoes only what the filter selects, newest first, and records it: a second
// replay finds nothing left to do. (The objects do not exist here: detaching what is gone is a
// no-op.)
TEST_F(StateTest, DetachJournalledRecordsWhatItUndid) {
  StateDir st("p6");
  auto lock = st.lock();
  st.begin("");
  const Attachment tcx{.kind = Attachment::Kind::kTcx,
                       .netns = "p6-node1",
                       .target = "eth0",
                       .hook = "ingress",
                       .pin = dir_ + "/no-such-pin"};
  const Attachment lsm{.kind = Attachment::Kind::kLsm,
                       .hook = "guard_netlink_send",
                       .pin = dir_ + "/no-such-lsm-pin"};
  st.record_attached({tcx, lsm});
  detach_journalled(st, [](const Attachment& a) { return a.kind == Attachment::Kind::kLsm; });
  EXPECT_EQ(st.attachments(), std::vector<Attachment>{tcx});
  detach_journalled(st);
  EXPECT_TRUE(st.attachments().empty());
  size_t detaches = 0;
  for (const auto& e : st.journal()) detaches += e.kind == "detach";
  EXPECT_EQ(detaches, 2u);
}

// A crash while an attach line is written leaves it torn: it is ignored, as its attach never ran.
TEST_F(StateTest, TornAttachLineIsIgnored) {
  StateDir st("p7");
  st.begin("");
  const Attachment a{.kind = Attachment::Kind::kLsm, .hook = "h", .pin = "/sys/fs/bpf/x"};
  st.record_attached({a});
  { std::ofstream(st.path() + "/journal", std::ios::app) << "attach clsact netns=p7-n target=lx"; }
  EXPECT_EQ(st.attachments(), std::vector<Attachment>{a});
}

TEST(Attachment, LineRoundTripsForEveryKind) {
  const std::vector<Attachment> all{
      {.kind = Attachment::Kind::kTcx,
       .netns = "hrb-node1",
       .target = "lxc1",
       .hook = "egress",
       .pin = "/sys/fs/bpf/hrbench/hrb/node1/link_egress_lxc1"},
      {.kind = Attachment::Kind::kClsact,
       .netns = "hrb-node1",
       .target = "eth0",
       .hook = "ingress",
       .handle = hrb::kClsactHandle,
       .priority = hrb::kClsactPriority},
      {.kind = Attachment::Kind::kCgroup,
       .target = "/sys/fs/cgroup/unified",
       .hook = "setsockopt",
       .pin = "/sys/fs/bpf/hrbench/hrb/guard/link_setsockopt"},
      {.kind = Attachment::Kind::kLsm,
       .hook = "guard_socket_setsockopt",
       .pin = "/sys/fs/bpf/hrbench/hrb/guard/lsm_guard_socket_setsockopt"},
  };
  for (const auto& a : all) {
    auto back = Attachment::parse(a.str());
    ASSERT_TRUE(back) << a.str();
    EXPECT_EQ(*back, a) << a.str();
  }
  EXPECT_EQ(all[1].str(), "clsact netns=hrb-node1 target=eth0 hook=ingress handle=0x4842 prio=1");
}

TEST(Attachment, BadLinesAndFieldsAreRejected) {
  EXPECT_FALSE(Attachment::parse(""));
  EXPECT_FALSE(Attachment::parse("xdp netns=a target=b hook=c pin=d")) << "unknown kind";
  EXPECT_FALSE(Attachment::parse("tcx netns=a target=b hook=ingress")) << "a link without pin";
  EXPECT_FALSE(Attachment::parse("clsact netns=a target=b hook=ingress handle=0x")) << "torn";
  EXPECT_FALSE(Attachment::parse("clsact netns=a target=b hook=ingress handle=0x4842 prio=1x"));
  EXPECT_FALSE(Attachment::parse("clsact netns=a target=b hook=ingress handle=0x4842"))
      << "torn before prio";
  Attachment spaced{.kind = Attachment::Kind::kLsm, .hook = "a b", .pin = "/p"};
  EXPECT_THROW(spaced.str(), hrb::Error);
  Attachment no_dev{.kind = Attachment::Kind::kTcx, .netns = "n", .hook = "ingress", .pin = "/p"};
  EXPECT_THROW(no_dev.str(), hrb::Error);
}

// The version before journalling left only its pin names; they still say what was attached.
TEST_F(StateTest, OldPinNamesGiveTheAttachmentsOfTheVersionBefore) {
  namespace fs = std::filesystem;
  const std::string root = dir_ + "/pins";
  for (const char* f : {"node1/link_lxc1", "node1/link_eth0", "node1/ct", "node2/link_egress_lxc3",
                        "node2/clsact_lxc4", "guard/link_setsockopt", "guard/counters",
                        "guard/lsm_guard_netlink_send"}) {
    fs::create_directories(fs::path(root + "/" + f).parent_path());
    std::ofstream(root + "/" + f) << "";
  }
  auto got = hrb::old_layout_attachments(root, [](const std::string& n) { return "p-" + n; });
  std::vector<std::string> lines;
  for (const auto& a : got) lines.push_back(a.str());
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines,
            (std::vector<std::string>{
                "cgroup hook=setsockopt pin=" + root + "/guard/link_setsockopt",
                "clsact netns=p-node2 target=lxc4 hook=ingress handle=0x4842 prio=1",
                "lsm hook=guard_netlink_send pin=" + root + "/guard/lsm_guard_netlink_send",
                "tcx netns=p-node1 target=eth0 hook=ingress pin=" + root + "/node1/link_eth0",
                "tcx netns=p-node1 target=lxc1 hook=ingress pin=" + root + "/node1/link_lxc1",
                "tcx netns=p-node2 target=lxc3 hook=egress pin=" + root + "/node2/link_egress_lxc3",
            }));
}

TEST(PinLayout, EveryPinIsUnderThePrefixRoot) {
  using namespace hrb;
  EXPECT_EQ(pins::parent(), "/sys/fs/bpf/hrbench");
  EXPECT_EQ(pins::root("hrbx"), "/sys/fs/bpf/hrbench/hrbx");
  EXPECT_EQ(pins::map("hrbx", "node1", "ct"), "/sys/fs/bpf/hrbench/hrbx/node1/ct");
  EXPECT_EQ(pins::tc_link("hrbx", "node1", "lxc1", false),
            "/sys/fs/bpf/hrbench/hrbx/node1/link_lxc1");
  EXPECT_EQ(pins::tc_link("hrbx", "node1", "lxc1", true),
            "/sys/fs/bpf/hrbench/hrbx/node1/link_egress_lxc1");
  EXPECT_EQ(pins::guard("hrbx", "link_setsockopt"),
            "/sys/fs/bpf/hrbench/hrbx/guard/link_setsockopt");
  for (const auto& p : {pins::node_dir("hrbx", "n"), pins::guard_dir("hrbx")})
    EXPECT_EQ(p.rfind(pins::root("hrbx") + "/", 0), 0u) << p;
}
