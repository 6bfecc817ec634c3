// hrbench: the command line. main only dispatches: each command is parsed into its options
// struct and run by its file (cli/<group>.cpp); the work is done by the library's stages.
#include <signal.h>

#include <iostream>
#include <map>

#include "cli/commands.hpp"
#include "core/error.hpp"

using namespace hrb;

namespace {

struct Command {
  const char* summary;
  int (*run)(const cli::Args& args);
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> m{
      {"doctor", {"probe every prerequisite (table or --json)", cli::cmd_doctor}},
      {"topo", {"topo validate FILE…: check topology files", cli::cmd_topo}},
      {"up", {"build the cluster of a topology", cli::cmd_up}},
      {"status", {"show the cluster", cli::cmd_status}},
      {"mode", {"switch the datapath mode of the running cluster", cli::cmd_mode}},
      {"traffic", {"run one workload between two members of the cluster", cli::cmd_traffic}},
      {"run",
       {"the benchmark: every mode x scenario x workload, results file, comparison", cli::cmd_run}},
      {"compare", {"two results files side by side", cli::cmd_compare}},
      {"gate", {"CI verdict from results files and a policy (exit 0/1/2/3)", cli::cmd_gate}},
      {"report", {"HTML or Markdown report from results files", cli::cmd_report}},
      {"merge", {"join the shards' results files of one run (run --shard I/N)", cli::cmd_merge}},
      {"history",
       {"the SQLite store of past runs: add, list, show, detect (change points)",
        cli::cmd_history}},
      {"guard", {"guard monitor: user-installed iptables/nft rules in the nodes", cli::cmd_guard}},
      {"masq-agent",
       {"the IP Masquerade Agent: reprogram masquerade on config change", cli::cmd_masq_agent}},
      {"lab",
       {"the limits of eBPF host routing, shown: works / breaks, with evidence", cli::cmd_lab}},
      {"exec", {"run a command in a pod, node or external host", cli::cmd_exec}},
      {"down", {"take the cluster down", cli::cmd_down}},
      {"clean", {"remove everything of a prefix, also after a crash", cli::cmd_clean}},
  };
  return m;
}

void usage(std::ostream& o) {
  o << "hrbench — eBPF host routing vs legacy iptables routing, measured on netns clusters\n\n"
       "usage: hrbench COMMAND [OPTIONS]   (hrbench COMMAND --help for each)\n\ncommands:\n";
  for (const auto& [name, c] : commands()) o << fmt::format("  {:<8} {}\n", name, c.summary);
  o << "\nexit codes: 0 ok, 1 failure, 2 usage, 3 invalid input (nothing changed), "
       "4 missing prerequisite, 5 busy, 6 not found, 7 refused (user-installed rules), 130 "
       "interrupted (run: partial results written); gate: 0 pass, 1 regression, 2 "
       "inconclusive, 3 error\n";
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(std::cerr);
    return static_cast<int>(ExitCode::kUsage);
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  auto it = commands().find(name);
  if (it == commands().end()) {
    std::cerr << "hrbench: unknown command '" << name << "'\n\n";
    usage(std::cerr);
    return static_cast<int>(ExitCode::kUsage);
  }
  try {
    return it->second.run(cli::Args(argv + 2, argv + argc));
  } catch (const Error& e) {
    std::cerr << "hrbench " << name << ": " << e.what() << "\n";
    // The gate's own documented codes: 3 for any usage or input error (1 and 2 are verdicts).
    if (name == "gate") return 3;
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::cerr << "hrbench " << name << ": " << e.what() << "\n";
    if (name == "gate") return 3;
    return static_cast<int>(ExitCode::kFailure);
  }
}
