#pragma once
// Test support: a unique prefix per test process, running the hrbench binary, and a cluster that
// is always taken down (RAII) even when an assertion fails.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/process.hpp"
#include "topology/layout.hpp"

namespace hrb::test {

std::string unique_prefix(const std::string& tag);  // e.g. "tc12345" + a counter
std::string source_path(const std::string& rel);    // HRB_SOURCE_DIR/rel
std::string masq_fixture(const std::string& file);  // tests/fixtures/masq/file
CmdResult hrbench(const std::vector<std::string>& args, const std::string& prefix);
// A new directory /tmp/hrb-<tag>-XXXXXX (mkdtemp); the test removes it. Throws when it cannot.
std::string temp_dir(const std::string& tag);
// Validates a results file against results/schema.json with python3-jsonschema (scripts/setup
// installs it); status 0 when valid, the error in err.
CmdResult validate_results(const std::string& file);
std::vector<std::string> netns_with_prefix(const std::string& prefix);
// Validates JSON file `file` against JSON Schema `schema` with the python3-jsonschema package
// (installed by scripts/setup); status 0 when valid, the validator's message in err otherwise.
CmdResult validate_json_schema(const std::string& schema, const std::string& file);
// Root-namespace veths: must stay empty — the harness never creates links there.
std::vector<std::string> root_veths();

// Loss accounting for UDP tests: where a datagram can be lost on this machine without the
// datapath under test dropping it. Counters of the IPv4 "Udp:" line of /proc/net/snmp in a netns
// (RcvbufErrors: the receiving socket's buffer was full, its thread did not run in time; NoPorts:
// it arrived after the socket closed), and drops of the per-CPU input backlogs (softnet_stat,
// machine-wide: a veth hands every packet to one).
std::map<std::string, uint64_t> udp_snmp(const std::string& netns);
uint64_t softnet_dropped();

// Packet counters of every iptables (nft backend; ip6tables with kIpv6) rule in the nodes'
// netns, keyed "<netns> <table> <chain> <rule>"; and the rules whose counters differ between two
// such snapshots, one per line with the count ("" when none moved): what an "iptables is bypassed"
// assertion prints when it fails.
std::map<std::string, uint64_t> iptables_rule_packets(const topology::Layout& l,
                                                      Family f = Family::kIpv4);
std::string moved_rules(const std::map<std::string, uint64_t>& before,
                        const std::map<std::string, uint64_t>& after);
// The same, for the rules of kube-proxy's and ip-masq-agent's own chains (KUBE-*, IP-MASQ-AGENT)
// only: the jumps into them from the built-in chains (PREROUTING, FORWARD, …) also count any
// packet a BPF program rightly hands to the stack (a to_stack_* reason: one "not ours" packet at
// the uplink, new to conntrack, moves nat PREROUTING's jump and nothing else), while traffic
// the bypass missed moves a rule inside them (KUBE-NODEPORTS, KUBE-FORWARD, IP-MASQ-AGENT, …).
std::string moved_chain_rules(const std::map<std::string, uint64_t>& before,
                              const std::map<std::string, uint64_t>& after);

// Program ids attached to the cgroup v2 root's setsockopt hook, where the iptables blocker
// attaches (other tests running in parallel may attach their own: look for ours by id, never by
// count).
std::set<uint32_t> cgroup_setsockopt_programs();
// Programs attached with tcx to the ingress of `dev` in `netns`, or -errno.
int64_t tcx_query(const std::string& netns, const std::string& dev);
// The program behind the blocker's pinned link (pins::guard(prefix, "link_setsockopt")); 0: none.
uint32_t guard_prog_id(const std::string& prefix);

// The BPF links pinned (link_*) under the prefix's pin directory (ebpf mode's tcx links, the
// blocker's): pin path -> the link's id and its program's. Equal maps before and after a change:
// nothing was re-attached or reloaded.
struct PinnedLink {
  uint32_t id = 0, prog_id = 0;
  bool operator==(const PinnedLink&) const = default;
};
std::map<std::string, PinnedLink> pinned_links(const std::string& prefix);

// Skips the test (with the reason) when not root: netns tests need CAP_NET_ADMIN/CAP_SYS_ADMIN.
#define HRB_REQUIRE_ROOT()                                           \
  do {                                                               \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (netns, BPF)"; \
  } while (0)

class ClusterGuard {
 public:
  ClusterGuard(const std::string& topology_rel, const std::string& tag);
  ~ClusterGuard();  // hrbench down (clean if down fails)
  const topology::Layout& layout() const { return layout_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  topology::Layout layout_;
};

// One cluster shared by a test suite: made before its first test (when root; otherwise each test
// skips with HRB_REQUIRE_ROOT), taken down after its last. Suite names it:
//   class MySuite : public SuiteCluster<MySuite> {
//     static constexpr const char* kTopology = "topologies/two-node.yaml";
//     static constexpr const char* kTag = "ms";  // the prefix's tag (unique_prefix)
//   };
// Base: ::testing::Test, or ::testing::TestWithParam<T> for a parameterised suite.
template <typename Suite, typename Base = ::testing::Test>
class SuiteCluster : public Base {
 public:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) cluster_ = new ClusterGuard(Suite::kTopology, Suite::kTag);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

 protected:
  static inline ClusterGuard* cluster_ = nullptr;
};

}  // namespace hrb::test
