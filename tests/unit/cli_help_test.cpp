// The command line as an interface: every --help text (top level, each command, each
// subcommand) and the exit code and first stderr line of some bad usages, compared with the
// goldens in tests/fixtures/help/ (one file per case). Runs the built hrbench; nothing here
// needs root or creates anything (every case fails or prints before a cluster is looked at).
//
// The goldens were captured from hrbench before its CLI was split into command files; a change
// to any of them is a change of the interface. To re-capture after a deliberate change:
//   HRB_UPDATE_GOLDEN=1 ctest --test-dir build -R CliGolden   (then review `git diff`)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/file.hpp"
#include "core/process.hpp"

using namespace hrb;

namespace {

const std::string kSrc = HRB_SOURCE_DIR;
const std::string kDir = kSrc + "/tests/fixtures/help/";

struct Case {
  std::string name;  // fixture file <name>.txt
  std::vector<std::string> args;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Paths inside the source tree, so a case can name a fixture file.
std::string src(const std::string& rel) { return kSrc + "/" + rel; }

const std::vector<Case>& cases() {
  static const std::vector<Case> v{
      // Top level.
      {"top-help", {"--help"}},
      {"top-h", {"-h"}},
      {"top-help-word", {"help"}},
      {"top-no-args", {}},
      // Every command's help.
      {"doctor-help", {"doctor", "--help"}},
      {"topo-help", {"topo", "--help"}},
      {"up-help", {"up", "--help"}},
      {"status-help", {"status", "--help"}},
      {"mode-help", {"mode", "--help"}},
      {"traffic-help", {"traffic", "--help"}},
      {"run-help", {"run", "--help"}},
      {"compare-help", {"compare", "--help"}},
      {"gate-help", {"gate", "--help"}},
      {"report-help", {"report", "--help"}},
      {"merge-help", {"merge", "--help"}},
      {"guard-help", {"guard", "--help"}},
      {"masq-agent-help", {"masq-agent", "--help"}},
      {"lab-help", {"lab", "--help"}},
      {"exec-help", {"exec", "--help"}},
      {"down-help", {"down", "--help"}},
      {"clean-help", {"clean", "--help"}},
      {"history-help", {"history", "--help"}},
      // Subcommands and short forms.
      {"topo-validate-help", {"topo", "validate", "--help"}},
      {"guard-monitor-help", {"guard", "monitor", "--help"}},
      {"history-add-help", {"history", "add", "--help"}},
      {"history-list-help", {"history", "list", "--help"}},
      {"history-show-help", {"history", "show", "--help"}},
      {"history-detect-help", {"history", "detect", "--help"}},
      {"status-h", {"status", "-h"}},
      // Bad usages: exit code and first stderr line.
      {"bad-unknown-command", {"frobnicate"}},
      {"bad-unknown-flag", {"status", "--bogus"}},
      {"bad-unknown-flag-run", {"run", "--no-such-flag"}},
      {"bad-missing-value", {"run", "--modes"}},
      {"bad-value-type", {"traffic", "tcp_rr", "--to", "node1", "--duration", "abc"}},
      {"bad-prefix", {"status", "--prefix", "Bad"}},
      {"bad-traffic-no-workload", {"traffic", "--to", "node1"}},
      {"bad-run-max-steal", {"run", "--max-steal", "200"}},
      {"bad-run-pin-cpus", {"run", "--pin-cpus", "1"}},
      {"bad-run-scan", {"run", "--scan", "services=a"}},
      {"bad-run-scan-form", {"run", "--scan", "services"}},
      {"bad-run-quick-thorough", {"run", "--quick", "--thorough"}},
      {"bad-run-export", {"run", "--export", "pdf"}},
      {"bad-run-mode", {"run", "--modes", "legacy,warp"}},
      {"bad-run-shard", {"run", "--shard", "3/2"}},
      {"bad-run-shard-empty", {"run", "--quick", "--shard", "2/2"}},
      {"bad-merge-no-output", {"merge", src("tests/fixtures/results/shard-1-of-2.json")}},
      {"bad-merge-not-a-shard",
       {"merge", src("tests/fixtures/gate/run.json"), "-o", "/nonexistent/merged.json"}},
      {"bad-merge-missing-shard",
       {"merge", src("tests/fixtures/results/shard-1-of-2.json"), "-o", "/nonexistent/m.json"}},
      {"bad-up-mode", {"up", "--mode", "bogus"}},
      {"bad-up-backend", {"up", "--backend", "xyz"}},
      {"bad-up-ct-entries", {"up", "--ct-entries", "5"}},
      {"bad-topo-action", {"topo", "frob"}},
      {"bad-topo-file", {"topo", "validate", src("tests/fixtures/topologies/unknown-key.yaml")}},
      {"bad-exec-no-command", {"exec", "node1"}},
      {"bad-compare-one-file", {"compare", src("tests/fixtures/gate/run.json")}},
      {"bad-gate-no-file", {"gate"}},
      {"bad-gate-adaptive-value", {"gate", "--adaptive", "x"}},
      {"bad-gate-workloads",
       {"gate", src("tests/fixtures/gate/run.json"), "--policy",
        src("tests/fixtures/gate/policy.yaml"), "--workloads", "nope"}},
      {"bad-report-no-file", {"report"}},
      {"bad-report-format", {"report", "--format", "pdf", src("tests/fixtures/gate/run.json")}},
      {"bad-report-not-results", {"report", src("tests/fixtures/gate/policy.yaml")}},
      {"bad-lab-scenario", {"lab", "no-such-scenario", "--topology", "/nonexistent.yaml"}},
      {"bad-guard-action", {"guard", "frob", "--prefix", "Bad"}},
      {"bad-history-action", {"history", "frob"}},
      {"bad-history-no-action", {"history"}},
      {"bad-history-add-no-file", {"history", "add"}},
      {"bad-history-show-no-mode",
       {"history", "show", "--metric", "transactionsPerSecond", "--scenario", "node-node",
        "--workload", "tcp_rr"}},
      {"bad-history-show-metric",
       {"history", "show", "--metric", "speed", "--mode", "ebpf", "--scenario", "node-node",
        "--workload", "tcp_rr"}},
      {"bad-history-foreign-db",
       {"history", "list", "--db", src("tests/fixtures/gate/policy.yaml")}},
  };
  return v;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
  return s;
}

// What a case shows: the command, its exit code, all of stdout and the first line of stderr,
// with the source directory written as @SRC@ (the goldens hold no machine's paths).
std::string observe(const Case& c) {
  std::vector<std::string> argv{"env", "-u", "HRBENCH_PREFIX", HRBENCH_BIN};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  auto r = run_cmd(argv, {.check = false});
  std::string first_err = r.err.substr(0, r.err.find('\n'));
  std::vector<std::string> shown{"hrbench"};
  shown.insert(shown.end(), c.args.begin(), c.args.end());
  std::ostringstream o;
  o << "$ " << shell_join(shown) << "\nexit " << r.status << "\n--- stdout\n"
    << r.out << "--- stderr (first line)\n"
    << first_err << "\n";
  return replace_all(o.str(), kSrc, "@SRC@");
}

class CliGolden : public ::testing::TestWithParam<Case> {};

TEST_P(CliGolden, MatchesFixture) {
  const Case& c = GetParam();
  const std::string path = kDir + c.name + ".txt";
  const std::string seen = observe(c);
  if (std::getenv("HRB_UPDATE_GOLDEN")) {
    std::filesystem::create_directories(kDir);
    std::ofstream(path, std::ios::trunc) << seen;
    GTEST_SKIP() << "golden written: " << path;
  }
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " is missing (HRB_UPDATE_GOLDEN=1 writes it)";
  EXPECT_EQ(seen, read_text_file(path, "golden"))
      << "the interface of `hrbench " << shell_join(c.args) << "` changed";
}

INSTANTIATE_TEST_SUITE_P(Cases, CliGolden, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.name;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

// Every command the top-level help lists has a help golden, so a new command cannot go
// unchecked; and every golden file belongs to a case.
TEST(CliGoldenCoverage, EveryCommandAndEveryFixture) {
  auto r = run_cmd({HRBENCH_BIN, "--help"});
  std::set<std::string> names;
  for (const auto& c : cases()) names.insert(c.name);
  std::istringstream in(r.out.substr(r.out.find("commands:\n")));
  std::regex cmd_line(R"(^  ([a-z][a-z-]*) )");
  int commands = 0;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, cmd_line)) continue;
    ++commands;
    EXPECT_TRUE(names.count(m[1].str() + "-help")) << "no help golden for `" << m[1] << "`";
  }
  EXPECT_GT(commands, 10);
  for (const auto& f : std::filesystem::directory_iterator(kDir))
    EXPECT_TRUE(names.count(f.path().stem().string())) << "stray golden " << f.path();
}

}  // namespace
