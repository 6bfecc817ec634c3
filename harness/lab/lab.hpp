#pragma once
// The limitation lab: the documented limits of eBPF host routing (AKS lists them: hybrid
// clusters, user iptables rules, Istio's iptables redirection, dual-stack) as scenarios that run
// on a fresh cluster in legacy and in ebpf mode and say what actually happens: works or breaks,
// with the evidence (which connections failed, rule and BPF counters, conntrack entries).
#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "results/document.hpp"

namespace hrb::lab {

const std::vector<std::string>& scenario_names();  // user-rule-bypass, hybrid-nodes, …

// scenario, mode (legacy | ebpf | hybrid | os-support: the feature), works, summary, evidence:
// the lab document's verdict, one type for the lab that writes it and the report that reads it.
using Verdict = results::LabVerdict;

struct LabOptions {
  std::string topology;  // two-node.yaml
  // dual-stack's cluster when `topology` is not dual stack (family: dual); empty: the shipped
  // topologies/dual-stack.yaml.
  std::string dual_topology;
  std::string prefix = "hrblab";
  std::function<void(const std::string&)> progress;
};

// Runs each scenario on its own fresh cluster; throws Error(kUsage) for an unknown name.
std::vector<Verdict> run(const std::vector<std::string>& scenarios, const LabOptions& o,
                         const std::atomic<bool>& interrupted);

std::string render_text(const std::vector<Verdict>& v);
// A document for `hrbench report` (schema "hostroute-bench/lab"; results::to_json writes it).
results::LabDocument to_document(const std::vector<Verdict>& v, const std::string& command);

}  // namespace hrb::lab
