#include "cli/common.hpp"

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/process.hpp"
#include "datapath/iptables.hpp"
#include "topology/layout.hpp"

namespace hrb::cli {

const char* const kDefaultTopology = HRB_SOURCE_DIR "/topologies/two-node.yaml";
const char* const kDefaultMasqConfig = HRB_SOURCE_DIR "/topologies/ip-masq-agent.yaml";

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

po::options_description common_options(CommonOptions& c) {
  po::options_description o("Common options");
  o.add_options()("help,h", po::bool_switch(&c.help), "show this help")(
      "verbose,v", po::bool_switch(&c.verbose), "debug logging")(
      "prefix", po::value(&c.prefix)->default_value(env_or("HRBENCH_PREFIX", "hrb")),
      "name prefix of every object of the cluster (env HRBENCH_PREFIX)");
  return o;
}

}  // namespace

bool parse(const Args& args, po::options_description desc, const std::string& usage,
           CommonOptions& common, const po::positional_options_description& pos) {
  desc.add(common_options(common));
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + "\nusage: " + usage + " (see --help)", ExitCode::kUsage);
  }
  if (common.help) {
    std::cout << "usage: " << usage << "\n\n" << desc << "\n";
    return false;
  }
  if (common.verbose) log::set_level(log::Level::kDebug);
  common.prefix_given = !vm["prefix"].defaulted();
  return true;
}

std::string prefix_of(const CommonOptions& c) {
  if (!topology::valid_prefix(c.prefix))
    throw Error(
        "--prefix '" + c.prefix + "': expected a lower-case letter then up to 11 letters or digits",
        ExitCode::kUsage);
  return c.prefix;
}

topology::StateDir existing_cluster(const CommonOptions& c) {
  topology::StateDir st(prefix_of(c));
  if (!st.exists())
    throw Error("no cluster with prefix '" + st.prefix() + "'; run `hrbench up`",
                ExitCode::kNotFound);
  return st;
}

std::string own_cluster_prefix(const CommonOptions& c, const std::string& fallback) {
  return !c.prefix_given && !std::getenv("HRBENCH_PREFIX") ? fallback : prefix_of(c);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

std::string command_line(const std::string& command, const Args& args) {
  std::vector<std::string> v{"hrbench", command};
  v.insert(v.end(), args.begin(), args.end());
  return shell_join(v);
}

void add_mode_options(po::options_description& d, ModeFlags& f) {
  d.add_options()("backend", po::value(&f.backend)->default_value("nft"),
                  "iptables backend of legacy mode: nft | legacy")(
      "masq-config", po::value(&f.masq_config)->default_value(kDefaultMasqConfig),
      "ip-masq-agent config (YAML/JSON); \"\" for the agent's built-in defaults")(
      "services", po::value(&f.services),
      "kube-proxy services (default: the topology's `services`)")(
      "endpoints-per-service", po::value(&f.endpoints_per_service),
      "endpoints per service (default: the topology's `endpointsPerService`)")(
      "force", po::bool_switch(&f.force),
      "ebpf: enable even with user-installed iptables/nft rules (they are bypassed)")(
      "ct-entries", po::value(&f.ct_entries),
      "ebpf: entries of each node's connection-tracking table (default 262144; a small one "
      "makes the LRU evict, as the churn test does)")(
      "allowlist", po::value(&f.allowlist),
      "iptables monitor allowlist (default config/iptables-allowlist.yaml)")(
      "attach", po::value(&f.attach)->default_value("tcx"),
      "ebpf, bpf-lb: attach the tc programs as tcx links or clsact filters (clsact: a large "
      "cluster switches modes several times faster; docs/scale.md)");
}

datapath::ModeOptions mode_options(const ModeFlags& f, const std::string& name,
                                   const topology::Spec& spec) {
  datapath::ModeOptions o;
  o.name = name;
  o.backend = datapath::parse_backend(f.backend);
  o.masq_config = f.masq_config;
  o.services = f.services.value_or(spec.services);
  o.force = f.force;
  if (f.allowlist) o.allowlist = *f.allowlist;
  if (f.ct_entries) o.ct_entries = *f.ct_entries;
  o.attach = datapath::parse_attach(f.attach);
  o.endpoints_per_service = f.endpoints_per_service.value_or(spec.endpoints_per_service);
  return o;
}

}  // namespace hrb::cli
