// pps into a pod: which node's uplink receives the frames and where they come from.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "traffic/pps.hpp"

using namespace hrb;

TEST(PpsSpec, PodOnItsNodeFromTheExternalHost) {
  auto l = topology::plan(
      topology::parse_spec_file(std::string(HRB_SOURCE_DIR) + "/topologies/two-node.yaml"), "tst");
  auto s = traffic::pps_spec_for_pod(l, "node2-pod1");
  ASSERT_TRUE(s.node && s.pod);
  EXPECT_EQ(s.node->name, "node2");
  EXPECT_EQ(s.pod->netns, "tst-node2-pod1");
  EXPECT_EQ(s.src.str(), "192.168.200.10");
  EXPECT_EQ(s.duration_s, traffic::PpsSpec{}.duration_s);
  try {
    traffic::pps_spec_for_pod(l, "node2");
    FAIL() << "a node is not a pod";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kNotFound);
  }
}
