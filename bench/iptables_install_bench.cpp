// Installing legacy mode's rules (kube-proxy-scale services + ip-masq-agent) with one
// iptables-restore batch into a scratch network namespace, per backend and service count.
// Wall time of the whole restore (process start included), as a node would pay it.
// The per-packet cost of those rules and of a conntrack lookup cannot be timed this way — they
// run inside the kernel's forwarding path with no test-run hook — so the end-to-end trials
// (`hrbench run --scan services=…`) measure them instead.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <fmt/format.h>
#include <chrono>
#include <sstream>

#include "core/process.hpp"
#include "datapath/legacy.hpp"
#include "topology/layout.hpp"

using namespace hrb;

namespace {
// A benchmark that installed something else than its rules is reported as an error (and the
// process exits with 1): the smoke test fails instead of timing a broken install.
bool g_failed = false;

size_t count_rules(const std::string& text) {  // "-A CHAIN ..." lines
  std::istringstream in(text);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind("-A ", 0) == 0;
  return n;
}

void BM_IptablesInstall(benchmark::State& st, datapath::Backend b) {
  auto l =
      topology::plan(topology::parse_spec_file(HRB_SOURCE_DIR "/topologies/two-node.yaml"), "hrbx");
  datapath::LegacyMode m(
      {.name = "legacy", .backend = b, .services = static_cast<int>(st.range(0))},
      datapath::default_masq_config());
  const std::string input = m.rules(l).restore_apply();
  // Once, untimed: the same restore, then what the netns holds (iptables-save) has every rule.
  const std::string restore = datapath::iptables_bin(b, "-restore"),
                    save = datapath::iptables_bin(b, "-save");
  auto check = run_cmd({"sh", "-c", "\"$0\" -w --noflush && \"$1\"", restore, save},
                       {.input = input, .check = false, .new_anon_netns = true});
  const size_t want = count_rules(input), got = count_rules(check.out);
  if (!check.ok() || got != want) {
    g_failed = true;
    st.SkipWithError(fmt::format("{} installed {} of {} rules (exit {}): {}", restore, got, want,
                                 check.status, check.err.substr(0, 200))
                         .c_str());
    return;
  }
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    run_cmd({datapath::iptables_bin(b, "-restore"), "-w", "--noflush"},
            {.input = input, .new_anon_netns = true});
    st.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  st.counters["rules"] = static_cast<double>(m.rules(l).size());
}
}  // namespace

// Both backends at the same service counts, timed the same way.
void InstallSizes(benchmark::internal::Benchmark* b) {
  b->Arg(1000)
      ->Arg(5000)
      ->Arg(10000)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(3);
}
BENCHMARK_CAPTURE(BM_IptablesInstall, nft, datapath::Backend::kNft)->Apply(InstallSizes);
BENCHMARK_CAPTURE(BM_IptablesInstall, legacy, datapath::Backend::kLegacy)->Apply(InstallSizes);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (geteuid() != 0) {
    fprintf(stderr, "iptables_install_bench: needs root\n");
    return 4;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
