// hrbench traffic: one workload (or pps) between two members of the running cluster.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <optional>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/file.hpp"
#include "core/perf.hpp"
#include "metrics/cpu.hpp"
#include "metrics/profile.hpp"
#include "topology/cluster.hpp"
#include "traffic/pps.hpp"
#include "traffic/workload.hpp"

namespace hrb::cli {

namespace {

struct TrafficOptions {
  CommonOptions common;
  boost::optional<std::string> workload;
  boost::optional<std::string> from;
  std::string to;
  double duration = 5;
  double warmup = 1;
  int flows = 1;
  size_t size = 0;
  uint64_t rate = 0;
  bool verify = false;
  int client_cpu = -1;
  int server_cpu = -1;
  boost::optional<std::string> dst;
  std::string family;
  bool json = false;
  bool profile = false;
  boost::optional<std::string> profile_output;
};

// --profile: perf records the machine from before the CPU times are read until after the
// workload; its stacks are folded (this process's and the kernel's tasks') and bucketed.
class Profiling {
 public:
  explicit Profiling(const TrafficOptions& o) : o_(o) {
    if (o_.profile) perf_.emplace(kPerfFrequencyHz);
    t0_ = std::chrono::steady_clock::now();
  }
  void stop() {
    if (perf_) perf_->stop();
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  // Adds "profile" to the printed JSON; writes --profile-output.
  void add_to(nlohmann::json& j) const {
    if (!perf_) return;
    const auto f = metrics::fold_perf_script(perf_->script(), {.pids = {getpid()}});
    j["profile"] = metrics::profile_json(f, kPerfFrequencyHz, seconds_);
    if (o_.profile_output) {
      write_text_file(*o_.profile_output, f.text());
      j["profile"]["folded"] = *o_.profile_output;
    }
  }

 private:
  const TrafficOptions& o_;
  std::optional<PerfRecording> perf_;
  std::chrono::steady_clock::time_point t0_;
  double seconds_ = 0;
};

// A member of the cluster named by --KEY: pod, node or external host (not the fabric).
topology::Endpoint member(const topology::Layout& l, const std::string& key,
                          const std::string& name) {
  auto ep = l.find(name);
  if (!ep || ep->kind == topology::Endpoint::Kind::kFabric)
    throw Error("--" + key + " " + name + ": no such pod, node or external host",
                ExitCode::kNotFound);
  return *ep;
}

int run_pps(const TrafficOptions& o, const topology::StateDir& st, const topology::Layout& l,
            const topology::Endpoint& to) {
  if (to.kind != topology::Endpoint::Kind::kPod)
    throw Error("pps: --to must be a pod", ExitCode::kUsage);
  if (!l.has_ipv4())
    throw Error("pps sends IPv4 frames; the cluster's topology " + l.spec.name +
                    " is single-stack IPv6 (family: ipv6)",
                ExitCode::kUsage);
  traffic::PpsSpec ps = traffic::pps_spec_for_pod(l, to.name);
  ps.duration_s = o.duration;
  Profiling prof(o);
  auto cpu0 = metrics::read_cpu_times();
  auto r = traffic::run_pps(l, ps);
  auto j = r.to_json();
  j["cpu"] = (metrics::read_cpu_times() - cpu0).to_json();
  prof.stop();
  prof.add_to(j);
  j["to"] = to.name;
  j["mode"] = datapath::current_mode(st).name;
  std::cout << j.dump(2) << "\n";
  return r.received ? 0 : static_cast<int>(ExitCode::kFailure);
}

int run_traffic(const TrafficOptions& o) {
  topology::StateDir st = existing_cluster(o.common);
  auto l = topology::load_layout(st);
  auto to = member(l, "to", o.to);
  if (*o.workload == "pps") return run_pps(o, st, l, to);
  if (!o.from) throw Error("--from is required", ExitCode::kUsage);
  auto from = member(l, "from", *o.from);
  traffic::WorkloadSpec w;
  w.kind = traffic::parse_kind(*o.workload);
  w.client_netns = from.netns;
  w.server_netns = to.netns;
  // Without --family: the cluster's first family (ipv6 on a single-stack IPv6 cluster).
  const auto family =
      o.family.empty() ? std::optional<Family>(l.spec.first_family()) : parse_family(o.family);
  if (!family) throw Error("--family " + o.family + ": expected ipv4 or ipv6", ExitCode::kUsage);
  if (o.dst && !o.family.empty())
    throw Error("--dst and --family exclude each other (--dst names the address itself)",
                ExitCode::kUsage);
  topology::require_family(l.spec, *family, "--family");
  w.dst = *family == Family::kIpv6 ? traffic::IpAddr(to.ip6) : traffic::IpAddr(to.ip);
  if (o.dst) {
    auto a = traffic::IpAddr::parse(*o.dst);
    if (!a) throw Error("--dst " + *o.dst + ": not an IPv4 or IPv6 address", ExitCode::kUsage);
    w.dst = *a;
  }
  w.duration_s = o.duration;
  w.warmup_s = o.warmup;
  w.flows = o.flows;
  w.msg_size = o.size;
  w.udp_rate_pps = o.rate;
  w.verify_payload = o.verify;
  w.client_cpu = o.client_cpu;
  w.server_cpu = o.server_cpu;
  Profiling prof(o);
  auto cpu0 = metrics::read_cpu_times();
  auto r = traffic::run_workload(w);
  auto cpu = metrics::read_cpu_times() - cpu0;
  prof.stop();
  auto j = r.to_json();
  j["cpu"] = cpu.to_json();
  j["from"] = from.name;
  j["to"] = to.name;
  j["dst"] = w.dst.str();
  j["family"] = w.dst.family == AF_INET6 ? "ipv6" : "ipv4";
  j["mode"] = datapath::current_mode(st).name;
  if (!o.json) j.erase("latencyHistogram");
  prof.add_to(j);
  std::cout << j.dump(2) << "\n";
  return r.errors ? static_cast<int>(ExitCode::kFailure) : 0;
}

}  // namespace

int cmd_traffic(const Args& args) {
  TrafficOptions o;
  po::options_description d(
      "hrbench traffic WORKLOAD --from NAME --to NAME: run one workload between two members of "
      "the running cluster and print its figures");
  d.add_options()("workload", po::value(&o.workload),
                  "tcp_rr | tcp_crr | tcp_stream | udp_stream | udp_rr | pps")(
      "from", po::value(&o.from),
      "client: pod, node or external host (not for pps: the frames come from the fabric side "
      "of --to's node)")("to", po::value(&o.to), "server: pod, node or external host (required)")(
      "duration", po::value(&o.duration)->default_value(5), "measured seconds")(
      "warmup", po::value(&o.warmup)->default_value(1), "seconds discarded first")(
      "flows", po::value(&o.flows)->default_value(1), "parallel flows")(
      "size", po::value(&o.size)->default_value(0), "message size in bytes (0: default)")(
      "rate", po::value(&o.rate)->default_value(0), "udp_stream datagrams/s (0: flat out)")(
      "verify", po::bool_switch(&o.verify), "tcp_stream: check every byte received")(
      "client-cpu", po::value(&o.client_cpu)->default_value(-1),
      "pin the client threads to this CPU")("server-cpu",
                                            po::value(&o.server_cpu)->default_value(-1),
                                            "pin the server threads to this CPU")(
      "dst", po::value(&o.dst),
      "send to this address of --to (IPv4 or IPv6; default: its address of --family)")(
      "family", po::value(&o.family),
      "ipv4 | ipv6: send to --to's address of this family (default: ipv4, or ipv6 on a "
      "single-stack IPv6 cluster; both: a dual-stack cluster)")("json", po::bool_switch(&o.json),
                                                                "print JSON")(
      "profile", po::bool_switch(&o.profile),
      "sample the machine with `perf record -e cpu-clock -a -g -F 999` while the workload runs "
      "and add each CPU bucket's samples and share (docs/profiles.md) to the output")(
      "profile-output", po::value(&o.profile_output),
      "FILE: with --profile, also write the folded stacks (\"a;b;c COUNT\" lines, as "
      "flamegraph.pl reads them)");
  po::positional_options_description pos;
  pos.add("workload", 1);
  if (!parse(args, d, "hrbench traffic WORKLOAD --from NAME --to NAME [--duration S]", o.common,
             pos))
    return 0;
  if (!o.workload) throw Error("name a workload", ExitCode::kUsage);
  // Checked here, not by the parser, so that `hrbench traffic --help` prints the help.
  if (o.to.empty()) throw Error("the option '--to' is required but missing", ExitCode::kUsage);
  if (o.profile_output && !o.profile)
    throw Error("--profile-output needs --profile", ExitCode::kUsage);
  return run_traffic(o);
}

}  // namespace hrb::cli
