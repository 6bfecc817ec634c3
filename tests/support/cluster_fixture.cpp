#include "support/cluster_fixture.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/bpf.hpp"
#include "core/netns.hpp"
#include "core/pins.hpp"
#include "datapath/iptables.hpp"
#include "topology/cluster.hpp"
#include "topology/state.hpp"

namespace hrb::test {

std::set<uint32_t> cgroup_setsockopt_programs() {
  int fd = open("/sys/fs/cgroup/unified", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fd = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  uint32_t ids[64], cnt = 64, flags = 0;
  int r = bpf_prog_query(fd, BPF_CGROUP_SETSOCKOPT, 0, &flags, ids, &cnt);
  close(fd);
  return r == 0 ? std::set<uint32_t>(ids, ids + cnt) : std::set<uint32_t>{};
}

int64_t tcx_query(const std::string& netns, const std::string& dev) {
  return run_in_netns(netns, [&]() -> int64_t {
    uint32_t ids[16], cnt = 16, flags = 0;
    int ifindex = if_nametoindex(dev.c_str());
    if (ifindex == 0) return -errno;
    if (bpf_prog_query(ifindex, kTcxIngress, 0, &flags, ids, &cnt) != 0) return -errno;
    return cnt;
  });
}

std::map<std::string, uint64_t> iptables_rule_packets(const topology::Layout& l, Family f) {
  std::map<std::string, uint64_t> out;
  for (const auto& node : l.nodes)
    for (const auto& c : datapath::rule_counters(node.netns, datapath::Backend::kNft, {}, f))
      out[node.netns + " " + c.table + " " + c.chain + " " + c.spec] += c.packets;
  return out;
}

std::string moved_rules(const std::map<std::string, uint64_t>& before,
                        const std::map<std::string, uint64_t>& after) {
  std::string out;
  for (const auto& [rule, n] : after) {
    auto it = before.find(rule);
    uint64_t was = it == before.end() ? 0 : it->second;
    if (n != was) out += rule + ": " + std::to_string(was) + " -> " + std::to_string(n) + "\n";
  }
  return out;
}

std::string moved_chain_rules(const std::map<std::string, uint64_t>& before,
                              const std::map<std::string, uint64_t>& after) {
  static const std::set<std::string> builtin{"PREROUTING", "INPUT", "FORWARD", "OUTPUT",
                                             "POSTROUTING"};
  std::map<std::string, uint64_t> b, a;
  auto keep = [&](const std::map<std::string, uint64_t>& in, std::map<std::string, uint64_t>& out) {
    for (const auto& [rule, n] : in) {
      std::istringstream words(rule);
      std::string netns, table, chain;
      words >> netns >> table >> chain;
      if (!builtin.count(chain)) out[rule] = n;
    }
  };
  keep(before, b);
  keep(after, a);
  return moved_rules(b, a);
}

uint32_t guard_prog_id(const std::string& prefix) {
  int fd = bpf_obj_get(pins::guard(prefix, "link_setsockopt").c_str());
  if (fd < 0) return 0;
  bpf_link_info info{};
  uint32_t len = sizeof info;
  int r = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  return r == 0 ? info.prog_id : 0;
}

std::map<std::string, PinnedLink> pinned_links(const std::string& prefix) {
  std::map<std::string, PinnedLink> links;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(pins::root(prefix), ec)) {
    if (e.path().filename().string().rfind("link_", 0) != 0) continue;
    int fd = bpf_obj_get(e.path().c_str());
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
      links[e.path().string()] = {info.id, info.prog_id};
    close(fd);
  }
  return links;
}

std::string unique_prefix(const std::string& tag) {
  static std::atomic<int> n{0};
  return tag + std::to_string(::getpid() % 100000) + "x" + std::to_string(n++);
}

std::string source_path(const std::string& rel) { return std::string(HRB_SOURCE_DIR) + "/" + rel; }

std::string masq_fixture(const std::string& file) {
  return source_path("tests/fixtures/masq/" + file);
}

std::string temp_dir(const std::string& tag) {
  std::string t = "/tmp/hrb-" + tag + "-XXXXXX";
  if (!mkdtemp(t.data())) throw_errno("mkdtemp " + t);
  return t;
}

CmdResult validate_results(const std::string& file) {
  return validate_json_schema(source_path("results/schema.json"), file);
}

CmdResult hrbench(const std::vector<std::string>& args, const std::string& prefix) {
  // The prefix goes right after the subcommand, before any "--" that starts a command (exec).
  std::vector<std::string> argv{HRBENCH_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!prefix.empty()) argv.insert(argv.begin() + (args.empty() ? 1 : 2), {"--prefix", prefix});
  return run_cmd(argv, {.check = false});
}

CmdResult validate_json_schema(const std::string& schema, const std::string& file) {
  return run_cmd({"/usr/bin/python3", "-c",
                  "import json,sys,jsonschema\n"
                  "s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n"
                  "jsonschema.validate(d, s)\n",
                  schema, file},
                 {.check = false});
}

std::vector<std::string> netns_with_prefix(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& ns : list_netns())
    if (ns.rfind(topology::netns_prefix(prefix), 0) == 0) out.push_back(ns);
  return out;
}

std::vector<std::string> root_veths() {
  auto r = run_cmd({"ip", "-o", "link", "show", "type", "veth"});
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::map<std::string, uint64_t> udp_snmp(const std::string& netns) {
  auto r = run_cmd({"cat", "/proc/net/snmp"}, {.netns = netns});
  std::istringstream in(r.out);
  std::vector<std::string> names;
  std::map<std::string, uint64_t> out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Udp: ", 0) != 0) continue;
    std::istringstream w(line.substr(5));
    if (names.empty()) {  // the first Udp: line names the columns, the second has the values
      for (std::string n; w >> n;) names.push_back(n);
    } else {
      for (size_t i = 0; i < names.size(); ++i) w >> out[names[i]];
      break;
    }
  }
  if (out.empty()) throw Error("no Udp: counters in /proc/net/snmp of " + netns);
  return out;
}

uint64_t softnet_dropped() {
  std::ifstream in("/proc/net/softnet_stat");
  uint64_t total = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream w(line);
    std::string processed, dropped;
    w >> processed >> dropped;  // hexadecimal, one line per CPU
    if (!dropped.empty()) total += std::stoull(dropped, nullptr, 16);
  }
  return total;
}

ClusterGuard::ClusterGuard(const std::string& topology_rel, const std::string& tag)
    : prefix_(unique_prefix(tag)) {
  auto r = hrbench({"up", "--topology", source_path(topology_rel)}, prefix_);
  if (!r.ok()) {
    hrbench({"clean"}, prefix_);
    throw Error("hrbench up failed (" + std::to_string(r.status) + "): " + r.err);
  }
  layout_ = topology::load_layout(topology::StateDir(prefix_));
}

ClusterGuard::~ClusterGuard() {
  // For debugging a failure by hand: HRBENCH_TEST_KEEP=1 leaves the cluster up (and says so);
  // scripts/test's trap still cleans it at the end of a full run.
  if (std::getenv("HRBENCH_TEST_KEEP")) {
    std::fprintf(stderr, "HRBENCH_TEST_KEEP: cluster left up with prefix %s\n", prefix_.c_str());
    return;
  }
  auto r = hrbench({"down"}, prefix_);
  if (!r.ok()) hrbench({"clean"}, prefix_);
}

}  // namespace hrb::test
