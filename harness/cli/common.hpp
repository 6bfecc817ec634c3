#pragma once
// What every hrbench command shares: the common options (--help, --verbose, --prefix), parsing
// into a command's options struct, the prefix rules, the options that choose a datapath mode,
// and the small validators of flag values. No command logic lives here.
#include <boost/optional.hpp>
#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "datapath/mode.hpp"
#include "topology/spec.hpp"
#include "topology/state.hpp"

namespace hrb::cli {

namespace po = boost::program_options;
using Args = std::vector<std::string>;

extern const char* const kDefaultTopology;
extern const char* const kDefaultMasqConfig;

struct CommonOptions {
  bool help = false;
  bool verbose = false;
  std::string prefix;         // --prefix, default HRBENCH_PREFIX or "hrb"
  bool prefix_given = false;  // --prefix on the command line
};

// Parses `args` against `desc` plus the common options, storing into the fields bound with
// po::value(&field). Returns false when --help was asked (the help is printed); throws
// Error(kUsage) with the usage line on a bad command line.
bool parse(const Args& args, po::options_description desc, const std::string& usage,
           CommonOptions& common, const po::positional_options_description& pos = {});

// --prefix, checked: throws Error(kUsage) naming the flag.
std::string prefix_of(const CommonOptions& c);
// The recorded cluster of --prefix, or Error(kNotFound) "no cluster with prefix …".
topology::StateDir existing_cluster(const CommonOptions& c);
// The prefix of a command that builds its own cluster (run, lab, gate --adaptive): --prefix or
// HRBENCH_PREFIX when given, else the command's own default so it never meets `hrbench up`'s.
std::string own_cluster_prefix(const CommonOptions& c, const std::string& fallback);

// "a,b,,c" -> {a, b, c}.
std::vector<std::string> split_list(const std::string& s);

// "hrbench CMD ARGS…", shell-quoted, as a results document records it.
std::string command_line(const std::string& command, const Args& args);

// The options that choose and configure a datapath mode (up --mode, hrbench mode, run).
struct ModeFlags {
  std::string backend;
  std::string masq_config;
  boost::optional<int> services;
  boost::optional<int> endpoints_per_service;
  bool force = false;
  boost::optional<uint32_t> ct_entries;
  boost::optional<std::string> allowlist;
  std::string attach;
};
void add_mode_options(po::options_description& d, ModeFlags& f);
// The mode `name` with these flags; services and endpoints default to the topology's.
datapath::ModeOptions mode_options(const ModeFlags& f, const std::string& name,
                                   const topology::Spec& spec);

}  // namespace hrb::cli
