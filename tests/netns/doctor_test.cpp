// doctor really probes: on a machine set up by scripts/setup every required feature is there,
// the JSON is well formed, and the exit code agrees with it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "core/netns.hpp"
#include "support/cluster_fixture.hpp"

using namespace hrb;

TEST(Doctor, JsonAgreesWithExitCodeAndRequiredFeaturesArePresent) {
  HRB_REQUIRE_ROOT();
  auto r = test::hrbench({"doctor", "--json"}, "");
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("checks"));
  bool all_required = true;
  std::set<std::string> ids;
  for (const auto& c : j["checks"]) {
    ids.insert(c["id"].get<std::string>());
    if (c["required"].get<bool>() && !c["ok"].get<bool>()) {
      all_required = false;
      ADD_FAILURE() << "required feature missing: " << c["feature"] << ": " << c["detail"];
    }
  }
  EXPECT_EQ(j["ok"].get<bool>(), all_required);
  EXPECT_EQ(r.status, all_required ? 0 : 4);
  for (const char* id :
       {"root", "bpffs", "btf", "tcx_attach", "clsact_attach", "tc_attach", "redirect_peer",
        "redirect_neigh", "fib_lookup", "xdp_live_frames", "cgroup_sockopt", "iptables_nft",
        "iptables_legacy", "nft", "iperf3", "sockperf", "bpf_stats"})
    EXPECT_TRUE(ids.count(id)) << "no check " << id;
  // tc_attach names the attach ebpf mode makes: tcx where tcx_attach passed, else the clsact
  // fallback (a kernel before 6.6, e.g. scripts/kernel-matrix 6.1).
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& c : j["checks"]) by_id[c["id"].get<std::string>()] = c;
  const bool tcx = by_id["tcx_attach"]["ok"].get<bool>();
  const auto tc = by_id["tc_attach"]["detail"].get<std::string>();
  EXPECT_EQ(tc.rfind(tcx ? "tcx links" : "clsact (the fallback", 0), 0u) << tc;
  // Its probes run in anonymous namespaces and a scratch cgroup: nothing may be left.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup/unified", ec))
    EXPECT_EQ(e.path().filename().string().rfind("hrb-doctor-", 0), std::string::npos)
        << "doctor left " << e.path();
}
