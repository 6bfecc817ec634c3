#pragma once
// topology::Spec: what a topologies/*.yaml file says, validated. Every problem found is reported
// with file:line:column and the key, all at once; parsing never touches the machine.
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/ipv4.hpp"

namespace hrb::topology {

struct Diagnostic {
  std::string file;
  int line = 0;     // 1-based; 0 when unknown
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. nodes.podCIDRs[1]
  std::string message;
  std::string str() const;
};

class SpecError : public Error {
 public:
  explicit SpecError(std::vector<Diagnostic> diags);
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }

 private:
  std::vector<Diagnostic> diags_;
};

struct ExternalHost {
  std::string name;
  Ipv4 address;  // the address pods talk to (outside the cluster CIDR)
};

struct Spec {
  std::string file;  // where it came from, for messages
  std::string name;
  Cidr cluster_cidr;
  Cidr service_cidr;
  int node_count = 0;
  int pods_per_node = 0;
  std::vector<Cidr> pod_cidrs;  // one per node, resolved (explicit or carved from cluster_cidr)
  std::string underlay_kind = "bridge";
  Cidr underlay_cidr;
  int mtu = 1500;
  std::vector<ExternalHost> externals;
  std::map<std::string, std::string> node_sysctls;
  std::map<std::string, std::string> pod_sysctls;
  int services = 0;  // kube-proxy scale (legacy mode)
  int endpoints_per_service = 1;
};

// Parses and validates; throws SpecError listing every problem.
Spec parse_spec_file(const std::string& path);
Spec parse_spec_string(const std::string& yaml, const std::string& file_label);

}  // namespace hrb::topology
