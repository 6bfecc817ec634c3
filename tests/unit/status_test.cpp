// What `hrbench status` prints of the datapath: the mode line and the BPF counters.
#include <gtest/gtest.h>

#include "datapath/status.hpp"

using namespace hrb::datapath;

TEST(DatapathStatus, CountersNonZeroReasonsInOrderOrNothingYet) {
  ReasonCounters pod{}, uplink{};
  pod[HRB_R_MASQ_NEW] = 2;
  pod[HRB_R_CT_HIT] = 40;
  std::map<std::string, std::map<std::string, ReasonCounters>> c{
      {"node1", {{"from_pod", pod}, {"from_uplink", uplink}}}};
  EXPECT_EQ(render_counters(c),
            "  node1 from_pod: masq_new=2 ct_hit=40\n"
            "  node1 from_uplink: (nothing yet)\n");
  EXPECT_EQ(render_counters({}), "");
}

TEST(DatapathStatus, ModeLine) {
  ModeOptions m;
  EXPECT_EQ(describe_mode(m), "none");
  EXPECT_FALSE(has_bpf_counters(m));
  m.name = "legacy";
  m.services = 10;
  EXPECT_EQ(describe_mode(m),
            "legacy (iptables-nft, 10 services x 1 endpoints, masq config agent defaults)");
  m.backend = hrb::datapath::Backend::kLegacy;
  m.masq_config = "/x.yaml";
  EXPECT_EQ(describe_mode(m),
            "legacy (iptables-legacy, 10 services x 1 endpoints, masq config /x.yaml)");
  EXPECT_FALSE(has_bpf_counters(m));
  m.name = "ebpf";
  EXPECT_EQ(describe_mode(m), "ebpf");
  EXPECT_TRUE(has_bpf_counters(m));
  m.name = "bpf-lb";
  EXPECT_TRUE(has_bpf_counters(m));
}
