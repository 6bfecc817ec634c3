#pragma once
// topology::Spec: what a topologies/*.yaml file says, validated. Every problem found is reported
// with file:line:column and the key, all at once; parsing never touches the machine.
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/ipv4.hpp"
#include "core/ipv6.hpp"

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
  Ipv4 address;   // the address pods talk to (outside the cluster CIDR)
  Ipv6 address6;  // its IPv6 counterpart (addressv6; dual stack only)
};

// `family:` — which address families the cluster's pods, services and underlay carry.
// ipv4 (the default) builds exactly what a file without the key always built; dual adds IPv6 on
// every member; ipv6 (single stack) gives every member only its IPv6 addresses: the IPv4 keys
// are refused and the *v6 keys take their roles.
enum class StackFamily { kIpv4, kDual, kIpv6 };
std::string family_name(StackFamily f);  // ipv4, dual, ipv6

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
  // The IPv4 ranges above are zero on a single-stack IPv6 cluster.
  // IPv6 (family: dual or ipv6): the IPv6 ranges, each with its IPv4 counterpart's role. Node i's
  // pod prefix is the i-th /64 of cluster_cidr6 (kPodPrefix6).
  StackFamily family = StackFamily::kIpv4;
  Cidr6 cluster_cidr6;
  Cidr6 service_cidr6;
  Cidr6 underlay_cidr6;
  std::vector<Cidr6> pod_cidrs6;  // one /64 per node
  bool dual() const { return family == StackFamily::kDual; }
  bool has_ipv4() const { return family != StackFamily::kIpv6; }  // IPv4 on every member
  bool has_ipv6() const { return family != StackFamily::kIpv4; }  // IPv6 on every member
  bool has(Family f) const { return f == Family::kIpv4 ? has_ipv4() : has_ipv6(); }
  // What is measured without --families / --family: ipv4, or ipv6 on a single-stack IPv6 one.
  Family first_family() const { return has_ipv4() ? Family::kIpv4 : Family::kIpv6; }
};

constexpr int kPodPrefix6 = 64;  // every node's IPv6 pod prefix is a /64

// Throws Error(kUsage) when `spec` has no `f`: "FLAG F: topology NAME has no IPv6 (its family is
// ipv4); use a dual-stack topology …" (flag: the option that asked for f, e.g. --families).
void require_family(const Spec& spec, Family f, const std::string& flag);

// Parses and validates; throws SpecError listing every problem.
Spec parse_spec_file(const std::string& path);
Spec parse_spec_string(const std::string& yaml, const std::string& file_label);

}  // namespace hrb::topology
