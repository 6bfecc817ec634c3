// Topology spec YAML (hrbench up --topology, hrbench topo validate): parse_spec_string.
#include "fuzz.hpp"
#include "topology/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hrb::fuzz::only_hrb_errors([&] {
    try {
      auto s = hrb::topology::parse_spec_string(hrb::fuzz::text(data, size), "fuzz.yaml");
      // An accepted spec is self-consistent: one pod prefix per node in each family it has, none
      // in a family it has not.
      const auto nodes = static_cast<size_t>(s.node_count);
      if (s.pod_cidrs.size() != (s.has_ipv4() ? nodes : 0)) __builtin_trap();
      if (s.pod_cidrs6.size() != (s.has_ipv6() ? nodes : 0)) __builtin_trap();
    } catch (const hrb::topology::SpecError& e) {
      // A rejection lists at least one problem, each printable.
      if (e.diagnostics().empty()) __builtin_trap();
      for (const auto& d : e.diagnostics()) (void)d.str();
      throw;
    }
  });
  return 0;
}
