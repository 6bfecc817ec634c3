// Checks too long for the default test command (label slow).
#include <gtest/gtest.h>

#include "support/cluster_fixture.hpp"
#include "traffic/workload.hpp"

using namespace hrb;

TEST(Slow, SixtySecondStreamThroughEbpfMasqueradeIsByteExact) {
  HRB_REQUIRE_ROOT();
  test::ClusterGuard c("topologies/two-node.yaml", "tx");
  auto m = test::hrbench({"mode", "ebpf"}, c.prefix());
  ASSERT_EQ(m.status, 0) << m.err;
  traffic::WorkloadSpec w;
  w.kind = traffic::Kind::kTcpStream;
  w.client_netns = c.layout().pods()[0]->netns;
  w.server_netns = c.layout().externals[0].netns;
  w.dst = c.layout().externals[0].address;
  w.duration_s = 60;
  w.warmup_s = 0;
  w.verify_payload = true;
  auto r = traffic::run_workload(w);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_GT(r.bytes, 0u) << "nothing arrived";
  EXPECT_EQ(r.payload_errors, 0u) << "bytes differed from the pattern";
  auto st = test::hrbench({"status", "--json"}, c.prefix());
  EXPECT_NE(st.out.find("masq_hit"), std::string::npos) << "the stream did not use the BPF NAT";
}
