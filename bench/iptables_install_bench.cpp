// Installing legacy mode's rules (kube-proxy-scale services + ip-masq-agent) with one
// iptables-restore batch into a scratch network namespace, per backend and service count.
// Wall time of the whole restore (process start included), as a node would pay it.
// The per-packet cost of those rules and of a conntrack lookup cannot be timed this way — they
// run inside the kernel's forwarding path with no test-run hook — so the end-to-end trials
// (`hrbench run --scan services=…`) measure them instead.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>

#include "core/process.hpp"
#include "datapath/legacy.hpp"
#include "topology/layout.hpp"

using namespace hrb;

namespace {
void BM_IptablesInstall(benchmark::State& st, datapath::Backend b) {
  auto l =
      topology::plan(topology::parse_spec_file(HRB_SOURCE_DIR "/topologies/two-node.yaml"), "hrbx");
  datapath::LegacyMode m(
      {.name = "legacy", .backend = b, .services = static_cast<int>(st.range(0))},
      datapath::default_masq_config());
  const std::string input = m.rules(l).restore_apply();
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
  return 0;
}
