#pragma once
// Legacy host routing: kernel forwarding plus the iptables rules a real node has — the
// ip-masq-agent's IP-MASQ-AGENT chain and kube-proxy's (iptables mode) service chains — in the
// node netns, installed in one iptables-restore batch per node.
#include <optional>

#include "datapath/iptables.hpp"
#include "datapath/masq_config.hpp"
#include "datapath/mode.hpp"
#include "topology/layout.hpp"

namespace hrb::datapath {

constexpr uint16_t kServicePort = 80;          // every generated service: port 80 …
constexpr uint16_t kServiceTargetPort = 8080;  // … to targetPort 8080 on its endpoint pods

// The ports of every generated service: TCP 80 -> 8080 ("http") and UDP 80 -> 8080 ("http-udp").
// kube-proxy writes one KUBE-SVC/KUBE-SEP set per entry (TCP's set first).
struct ServicePort {
  const char* name;      // the port's name: "default/svc-<i>:<name>"
  const char* protocol;  // "tcp" | "udp", as iptables spells it
  int ip_protocol;       // IPPROTO_TCP | IPPROTO_UDP
  uint16_t port, target_port;
};
const std::vector<ServicePort>& service_ports();

// NodePorts (externalTrafficPolicy Cluster): every port of service i gets NodePort
// kNodePortFirst + i (TCP and UDP the same number, which Kubernetes allows across protocols),
// for the first kNodePortServices services — the 2,768 ports of Kubernetes' default range
// 30000-32767. Services beyond it have no NodePort (ClusterIP only), as in a cluster whose
// range is exhausted; `hrbench mode`/`run` with more services say so once.
// (Not to be confused with ebpf.hpp's kNodePortRange, the node netns' own ephemeral ports.)
constexpr uint16_t kNodePortFirst = 30000, kNodePortLast = 32767;
constexpr int kNodePortServices = kNodePortLast - kNodePortFirst + 1;
std::optional<uint16_t> node_port(int i);

// ip-masq-agent's rules, as the upstream agent writes them: its iptables chain (IPv4), or with
// kIpv6 its ip6tables chain (fe80::/10 unless masqLinkLocalIPv6, the IPv6 nonMasqueradeCIDRs).
RuleSet masq_agent_rules(const MasqConfig& cfg, Family f = Family::kIpv4);
// kube-proxy iptables-mode rules for `services` services with `eps` endpoints each, every one
// with the ports of service_ports(): ClusterIP, and NodePort (node_port()) for the first
// kNodePortServices. With kIpv6 (a dual-stack cluster), the ip6tables rules kube-proxy writes
// for the services' IPv6 ClusterIPs (service_ip6) and the endpoints' IPv6 addresses: the same
// chains (each family has its own tables), /128 for /32, [address]:port. Above
// kLargeClusterEndpoints endpoint chains (per service port) the endpoint rules have no
// comments, as kube-proxy's large-cluster mode writes them.
inline constexpr size_t kLargeClusterEndpoints = 1000;
RuleSet kube_proxy_rules(const topology::Layout& l, int services, int eps,
                         Family f = Family::kIpv4);
// The ClusterIP of service i and the pods behind it (same rule as kube_proxy_rules); on a
// dual-stack cluster its IPv6 ClusterIP: the same offset into serviceCIDRv6.
Ipv4 service_ip(const topology::Layout& l, int i);
Ipv6 service_ip6(const topology::Layout& l, int i);
// Endpoints come from every pod of the cluster (l.spec), even when `l` holds only some nodes.
std::vector<topology::PodLayout> service_endpoints(const topology::Layout& l, int i, int eps);
std::string kube_chain_name(const std::string& kind, const std::string& key);  // KUBE-SVC-…
// The KUBE-SVC chain of service i's port `sp`, its KUBE-EXT chain (NodePort traffic: the same
// hash, as kube-proxy names them), and the KUBE-SEP chain of its endpoint `ep`.
std::string kube_svc_chain(int i, const ServicePort& sp);
std::string kube_ext_chain(int i, const ServicePort& sp);
std::string kube_sep_chain(int i, const ServicePort& sp, const topology::PodLayout& ep,
                           Family f = Family::kIpv4);

class LegacyMode : public Mode {
 public:
  LegacyMode(ModeOptions opts, MasqConfig masq);
  std::string name() const override { return "legacy"; }
  void apply(const topology::Layout& layout) override;
  void remove(const topology::Layout& layout) override;
  // The rules of one family (kIpv6: for ip6tables; empty unless the cluster is dual stack).
  RuleSet rules(const topology::Layout& layout, Family f = Family::kIpv4) const;
  // The families whose rules this cluster gets: IPv4, and IPv6 on a dual-stack cluster.
  static std::vector<Family> families(const topology::Layout& layout);

 private:
  ModeOptions opts_;
  MasqConfig masq_;
};

}  // namespace hrb::datapath
