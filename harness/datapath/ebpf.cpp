#include "datapath/ebpf.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/attach.hpp"
#include "core/bpf.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"
#include "core/netns.hpp"
#include "core/parallel.hpp"
#include "core/pins.hpp"
#include "doctor/doctor.hpp"

#include "hrb_abi.h"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "dispatch.skel.h"
#include "from_pod.skel.h"
#include "from_uplink.skel.h"

namespace fs = std::filesystem;

namespace hrb::datapath {

namespace {
constexpr const char* kPrograms[] = {"from_pod", "from_uplink"};
constexpr const char* kPortRangeFile = "ebpf-port-range.json";

#define HRB_REASON_NAME(id, name, doc) #name,
const char* const kReasonNames[] = {HRB_REASONS(HRB_REASON_NAME)};
#undef HRB_REASON_NAME
static_assert(std::size(kReasonNames) == HRB_R__MAX, "a name for every hrb_reason");

unsigned ifindex_of(const std::string& ifname, const std::string& netns) {
  unsigned i = if_nametoindex(ifname.c_str());
  if (!i) throw_errno("if_nametoindex(" + ifname + ") in " + netns);
  return i;
}

void pin(int fd, const std::string& path) {
  if (bpf_obj_pin(fd, path.c_str()) != 0) throw_errno("pin " + path);
}

hrb_ip6 ip6(const Ipv6& a) {
  hrb_ip6 r;
  std::memcpy(&r, a.b.data(), sizeof r);
  return r;
}
hrb_ip6 mask6(int len) { return ip6(netmask6(len)); }
hrb_ip6 net6(const Cidr6& p) { return ip6(masked(p.net, p.len)); }

// The non-masquerade tries, filled by the loader (the first one) and by swap_nonmasq (each new
// one) alike.
void fill_trie(int fd, const std::vector<Cidr>& cidrs, const std::string& what) {
  for (const auto& c : cidrs) {
    hrb_lpm_key k{static_cast<__u32>(c.len), c.net.be()};
    uint8_t one = 1;
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) throw_errno(what + " " + c.str());
  }
}
void fill_trie(int fd, const std::vector<Cidr6>& cidrs, const std::string& what) {
  for (const auto& c : cidrs) {
    hrb_lpm6_key k{static_cast<__u32>(c.len), net6(c)};
    uint8_t one = 1;
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) throw_errno(what + " " + c.str());
  }
}
}  // namespace

std::vector<Cidr6> ipv6_nonmasq(const MasqConfig& masq) { return masq.return_cidrs6(); }

void check_ipv6_facts(const Ipv6Facts& f, const topology::NodeLayout& n) {
  const std::string where = "IPv6 facts of " + n.name + ": ";
  auto bad = [&](const std::string& what) { throw Error(where + what, ExitCode::kBadInput); };
  auto check_len = [&](const Cidr6& p, const std::string& field) {
    if (p.len < 0 || p.len > 128)
      bad(field + ": prefix length " + std::to_string(p.len) + " is not 0..128");
  };
  check_len(f.cluster, "cluster");
  check_len(f.services, "services");
  if (f.cluster.len == 0) bad("cluster: no prefix (every address would count as a pod's)");
  if (f.node_ip.is_zero()) bad("node_ip: unspecified (::): NAT66 would masquerade to it");
  if (f.cluster.contains(f.node_ip))
    bad("node_ip: " + f.node_ip.str() + " is inside the cluster prefix " + f.cluster.str());
  for (size_t i = 0; i < f.nonmasq.size(); ++i)
    check_len(f.nonmasq[i], "nonmasq[" + std::to_string(i) + "]");
  for (size_t i = 0; i < f.pods.size(); ++i) {
    const auto& p = f.pods[i];
    const std::string field = "pods[" + std::to_string(i) + "] (" + p.name + ")";
    if (std::none_of(n.pods.begin(), n.pods.end(), [&](const auto& x) { return x.name == p.name; }))
      bad(field + ": no such pod on " + n.name);
    if (!f.cluster.contains(p.ip))
      bad(field + ": " + p.ip.str() + " is outside the cluster prefix " + f.cluster.str());
  }
  for (size_t i = 0; i < f.service_list.size(); ++i) {
    const auto& s = f.service_list[i];
    const std::string field = "service_list[" + std::to_string(i) + "] (" + s.ip.str() + ")";
    if (f.services.len == 0 || !f.services.contains(s.ip))
      bad(field + ": outside the service range " + f.services.str());
    if (s.proto != 6 && s.proto != 17)
      bad(field + ": protocol " + std::to_string(s.proto) + " (TCP 6 or UDP 17 only)");
    if (s.port == 0) bad(field + ": port 0");
    if (s.backends.size() > 0xffff) bad(field + ": more than 65535 backends");
    if (s.node_port && (s.node_port < kNodePortFirst || s.node_port > kNodePortLast))
      bad(field + ": NodePort " + std::to_string(s.node_port) + " outside " +
          std::to_string(kNodePortFirst) + ".." + std::to_string(kNodePortLast));
    for (size_t j = 0; j < i && s.node_port; ++j)
      if (f.service_list[j].node_port == s.node_port && f.service_list[j].proto == s.proto)
        bad(field + ": NodePort " + std::to_string(s.node_port) + " is service_list[" +
            std::to_string(j) + "]'s too");
  }
}

std::optional<Ipv6Facts> ipv6_facts(const topology::Layout& l, const topology::NodeLayout& n,
                                    const MasqConfig& masq, int services, int eps) {
  if (!l.has_ipv6()) return std::nullopt;
  Ipv6Facts f;
  f.node_ip = n.underlay_ip6;
  f.cluster = l.spec.cluster_cidr6;
  f.services = l.spec.service_cidr6;
  for (const auto& p : n.pods) f.pods.push_back({p.name, p.ip6});
  // The IPv4 services' IPv6 ClusterIPs (service_ip6), with the same endpoints and ports.
  for (int i = 0; i < services; ++i) {
    const auto eps_of = service_endpoints(l, i, eps);
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
      Ipv6Facts::Service sv{service_ip6(l, i), kServicePort, proto, {}, node_port(i).value_or(0)};
      for (const auto& e : eps_of) sv.backends.push_back({e.ip6, kServiceTargetPort});
      f.service_list.push_back(std::move(sv));
    }
  }
  f.nonmasq = ipv6_nonmasq(masq);  // what swap_nonmasq puts in the IPv6 trie too
  return f;
}

const char* reason_name(int r) { return r >= 0 && r < HRB_R__MAX ? kReasonNames[r] : "?"; }

EbpfMode::EbpfMode(ModeOptions opts, MasqConfig masq, topology::StateDir* state,
                   std::unique_ptr<BypassGuard> guard)
    : opts_(opts), masq_(masq), legacy_(opts, masq), state_(state), guard_(std::move(guard)) {
  if (!state_) throw Error("ebpf mode needs the cluster's state directory");
}

struct NodePrograms::Impl {
  explicit Impl(const std::string& dir)
      : pod(object_file(dir, "from_pod")), up(object_file(dir, "from_uplink")) {}
  Skeleton<::from_pod> pod;
  Skeleton<::from_uplink> up;
};

std::string object_file(const std::string& objects_dir, const std::string& object) {
  return objects_dir.empty() ? std::string() : objects_dir + "/" + object + ".bpf.o";
}

void check_objects(const std::string& objects_dir) {
  Skeleton<::from_pod> pod(object_file(objects_dir, "from_pod"));
  Skeleton<::from_uplink> up(object_file(objects_dir, "from_uplink"));
}

NodePrograms::NodePrograms(const topology::Layout& l, const topology::NodeLayout& n,
                           const MasqConfig& masq, const ProgramOptions& opts)
    : impl_(std::make_unique<Impl>(opts.objects_dir)) {
  auto& pod = impl_->pod;
  auto& up = impl_->up;
  auto configure = [&](auto& skel) {
    auto* ro = skel->rodata;
    ro->ipv4_enabled = l.has_ipv4();  // single-stack IPv6: every IPv4 field below is 0
    ro->node_ip = n.underlay_ip.be();
    ro->cluster_net = l.spec.cluster_cidr.net.be();
    ro->cluster_mask = htonl(l.spec.cluster_cidr.mask());
    ro->service_net = l.spec.service_cidr.net.be();
    ro->service_mask = htonl(l.spec.service_cidr.mask());
    ro->record_redirects = opts.record_redirects;
    ro->delay_loops = opts.delay_loops;
    ro->nat_port_min = opts.nat_port_min;
    ro->nat_port_max = opts.nat_port_max;
    ro->services_enabled = opts.services_enabled;
    ro->ct_enabled = opts.ct_enabled;
    ro->lb_enabled = opts.lb_services > 0;
    ro->host_routing = opts.host_routing;
    if (opts.ct_lifetime_close_ns) ro->ct_lifetime_close_ns = opts.ct_lifetime_close_ns;
    if (opts.ct_lifetime_other_ns) {
      ro->ct_lifetime_other_ns = opts.ct_lifetime_other_ns;
      ro->ct_lifetime_syn_ns = opts.ct_lifetime_other_ns;
    }
    if (const auto& v6 = opts.ipv6) {
      ro->ipv6_enabled = true;
      ro->node_ip6 = ip6(v6->node_ip);
      ro->cluster_net6 = net6(v6->cluster);
      ro->cluster_mask6 = mask6(v6->cluster.len);
      ro->service_net6 = net6(v6->services);
      ro->service_mask6 = mask6(v6->services.len);
      if (!doctor::kernel_has_csum_ipv6_flag()) ro->csum_flag_ipv6 = 0;
    }
  };
  if (opts.ipv6) check_ipv6_facts(*opts.ipv6, n);
  configure(pod);
  auto size = [](bpf_map* m, uint32_t entries) {
    if (int e = bpf_map__set_max_entries(m, entries))
      throw SysError(-e, "size the " + std::string(bpf_map__name(m)) + " map");
  };
  if (opts.ct_entries) size(pod->maps.ct, opts.ct_entries);
  if (!opts.ipv6) {
    // No IPv6: the IPv6 tables are never looked at; 1 entry each instead of megabytes per node.
    for (bpf_map* m : {pod->maps.endpoints6, pod->maps.ct6, pod->maps.lb6, pod->maps.stack_flows6,
                       pod->maps.nonmasq6})
      size(m, 1);
  } else {
    if (opts.ct_entries) size(pod->maps.ct6, opts.ct_entries);
    uint32_t slots = 0;  // per frontend (ClusterIP, NodePort) its slot and its backends'
    for (const auto& sv : opts.ipv6->service_list)
      slots += (sv.node_port ? 2 : 1) * (1 + static_cast<uint32_t>(sv.backends.size()));
    size(pod->maps.lb6, std::max<uint32_t>(1, slots));
  }
  // Frontends: TCP and UDP per service, and per NodePort (this node's IP; lib/nodeport.h);
  // slots: a frontend and its backends each.
  const int lb4_services = l.has_ipv4() ? opts.lb_services : 0;  // IPv6-only: the lb6 map
  const int frontends = lb4_services + std::min(lb4_services, kNodePortServices);
  const uint32_t lb_slots =
      static_cast<uint32_t>(std::max(1, 2 * frontends * (opts.lb_endpoints_per_service + 1)));
  if (int e = bpf_map__set_max_entries(pod->maps.lb, lb_slots))
    throw SysError(-e, "size the lb map");
  // Maps shared by both objects of a node (and, alternated, by every variant): all but the
  // counters, which each program has its own of.
  auto share = [](auto& skel, const ::from_pod* from) {
    for (auto [mine, theirs] : {std::pair{skel->maps.endpoints, from->maps.endpoints},
                                {skel->maps.ct, from->maps.ct},
                                {skel->maps.lb, from->maps.lb},
                                {skel->maps.nonmasq, from->maps.nonmasq},
                                {skel->maps.nonmasq_active, from->maps.nonmasq_active},
                                {skel->maps.stack_flows, from->maps.stack_flows},
                                {skel->maps.endpoints6, from->maps.endpoints6},
                                {skel->maps.ct6, from->maps.ct6},
                                {skel->maps.lb6, from->maps.lb6},
                                {skel->maps.stack_flows6, from->maps.stack_flows6},
                                {skel->maps.nonmasq6, from->maps.nonmasq6},
                                {skel->maps.nonmasq6_active, from->maps.nonmasq6_active}})
      if (int e = bpf_map__reuse_fd(mine, bpf_map__fd(theirs)))
        throw SysError(-e, "share map " + std::string(bpf_map__name(mine)));
  };
  if (opts.share_maps) share(pod, opts.share_maps->pod());
  pod.load("from_pod (" + n.name + ")");
  configure(up);
  share(up, pod.get());
  up.load("from_uplink (" + n.name + ")");
  if (opts.share_maps) return;  // filled by the variant whose maps these are
  log::debug("{}: programs loaded", n.name);

  // The non-masquerade CIDRs are the IP-MASQ-AGENT chain's RETURN list: one definition.
  // (On a single-stack IPv6 node the IPv4 maps stay empty: no IPv4 packet reaches them.)
  fill_trie(map_fd("nonmasq"), l.has_ipv4() ? masq.return_cidrs() : std::vector<Cidr>{},
            "nonmasq map update");
  for (int i = 0; i < lb4_services; ++i) {
    const auto eps = service_endpoints(l, i, opts.lb_endpoints_per_service);
    // The ClusterIP's frontends, and the NodePort's on this node's IP, with the same backends.
    std::vector<std::pair<Ipv4, uint16_t>> fronts{{service_ip(l, i), kServicePort}};
    if (const auto np = node_port(i)) fronts.push_back({n.underlay_ip, *np});
    for (const auto& [addr, port] : fronts)
      for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
        hrb_lb_key k{addr.be(), htons(port), proto, 0, 0};
        hrb_lb_value front{0, 0, static_cast<uint16_t>(eps.size()), static_cast<uint32_t>(i + 1)};
        if (bpf_map_update_elem(map_fd("lb"), &k, &front, BPF_ANY) != 0)
          throw_errno("lb map update (service " + std::to_string(i) + ")");
        for (size_t b = 0; b < eps.size(); ++b) {
          k.slot = static_cast<uint32_t>(b + 1);
          hrb_lb_value be{eps[b].ip.be(), htons(kServiceTargetPort), 0, 0};
          if (bpf_map_update_elem(map_fd("lb"), &k, &be, BPF_ANY) != 0)
            throw_errno("lb map update (service " + std::to_string(i) + " backend)");
        }
      }
  }
  // A pod's endpoint (its veth's ifindex, both MACs) is the same for both families.
  std::map<std::string, hrb_endpoint> endpoint;
  for (const auto& p : n.pods) {
    hrb_endpoint ep{};
    auto pod_mac = run_in_netns(p.netns, [&] { return mac_of(p.ifname); });
    std::memcpy(ep.pod_mac, pod_mac.data(), 6);
    run_in_netns(n.netns, [&] {
      ep.ifindex = ifindex_of(p.lxc, n.netns);
      auto m = mac_of(p.lxc);
      std::memcpy(ep.node_mac, m.data(), 6);
    });
    uint32_t key = p.ip.be();
    if (l.has_ipv4() && bpf_map_update_elem(map_fd("endpoints"), &key, &ep, BPF_ANY) != 0)
      throw_errno("endpoints map update " + p.name);
    endpoint[p.name] = ep;
  }
  if (opts.ipv6) fill_ipv6(*opts.ipv6, endpoint);
}

void NodePrograms::fill_ipv6(const Ipv6Facts& f, const std::map<std::string, hrb_endpoint>& ep) {
  fill_trie(map_fd("nonmasq6"), f.nonmasq, "nonmasq6 map update");
  for (size_t i = 0; i < f.service_list.size(); ++i) {
    const auto& sv = f.service_list[i];
    // The ClusterIP's frontend, and the NodePort's on the node's address, with the same backends.
    std::vector<std::pair<Ipv6, uint16_t>> fronts{{sv.ip, sv.port}};
    if (sv.node_port) fronts.push_back({f.node_ip, sv.node_port});
    for (const auto& [addr, port] : fronts) {
      const std::string what = "lb6 map update (service " + sv.ip.str() + ", frontend [" +
                               addr.str() + "]:" + std::to_string(port);
      hrb_lb6_key k{ip6(addr), htons(port), sv.proto, 0, 0};
      hrb_lb6_value front{
          {}, 0, static_cast<uint16_t>(sv.backends.size()), static_cast<uint32_t>(i + 1)};
      if (bpf_map_update_elem(map_fd("lb6"), &k, &front, BPF_ANY) != 0) throw_errno(what + ")");
      for (size_t b = 0; b < sv.backends.size(); ++b) {
        k.slot = static_cast<uint32_t>(b + 1);
        hrb_lb6_value be{ip6(sv.backends[b].ip), htons(sv.backends[b].port), 0, 0};
        if (bpf_map_update_elem(map_fd("lb6"), &k, &be, BPF_ANY) != 0)
          throw_errno(what + ", backend " + std::to_string(b) + ")");
      }
    }
  }
  for (const auto& p : f.pods) {
    hrb_ip6 key = ip6(p.ip);
    if (bpf_map_update_elem(map_fd("endpoints6"), &key, &ep.at(p.name), BPF_ANY) != 0)
      throw_errno("endpoints6 map update " + p.name);
  }
}

NodePrograms::~NodePrograms() = default;
NodePrograms::NodePrograms(NodePrograms&&) noexcept = default;
::from_pod* NodePrograms::pod() const { return impl_->pod.get(); }
::from_uplink* NodePrograms::uplink() const { return impl_->up.get(); }
int NodePrograms::from_pod_fd() const { return bpf_program__fd(impl_->pod->progs.from_pod); }
int NodePrograms::from_uplink_fd() const { return bpf_program__fd(impl_->up->progs.from_uplink); }
int NodePrograms::to_pod_fd() const { return bpf_program__fd(impl_->pod->progs.to_pod); }

int NodePrograms::map_fd(const char* name) const {
  const std::string n = name;
  if (n == "counters_from_uplink") return bpf_map__fd(impl_->up->maps.counters);
  bpf_map* m =
      bpf_object__find_map_by_name(impl_->pod->obj, n == "counters_from_pod" ? "counters" : name);
  if (!m) throw Error("no map " + n);
  return bpf_map__fd(m);
}

namespace {
ReasonCounters sum_counters(int fd) {
  ReasonCounters c{};
  std::vector<uint64_t> per_cpu(libbpf_num_possible_cpus());
  for (uint32_t r = 0; r < HRB_R__MAX; ++r) {
    if (bpf_map_lookup_elem(fd, &r, per_cpu.data()) != 0) continue;
    for (auto v : per_cpu) c[r] += v;
  }
  return c;
}
}  // namespace

ReasonCounters NodePrograms::counters(const char* program) const {
  return sum_counters(map_fd((std::string("counters_") + program).c_str()));
}

void NodePrograms::reset_counters() {
  std::vector<uint64_t> zero(libbpf_num_possible_cpus());
  for (const char* m : {"counters_from_pod", "counters_from_uplink"})
    for (uint32_t r = 0; r < HRB_R__MAX; ++r)
      bpf_map_update_elem(map_fd(m), &r, zero.data(), BPF_ANY);
}

std::vector<NodePrograms> EbpfMode::load_node(const topology::Layout& l,
                                              const topology::NodeLayout& n) const {
  const ProgramOptions po{
      .delay_loops = opts_.delay_loops,
      .services_enabled = opts_.services > 0,
      .ct_entries = opts_.ct_entries,
      .lb_services = opts_.services,
      .lb_endpoints_per_service = opts_.endpoints_per_service,
      .host_routing = host_routing(),
      .objects_dir = opts_.objects_dir,
      .ipv6 = ipv6_facts(l, n, masq_, opts_.services, opts_.endpoints_per_service)};
  // Alternated: every variant loaded, the later ones on the first one's maps.
  std::vector<NodePrograms> variants;
  variants.reserve(1 + opts_.alternates.size());
  variants.emplace_back(l, n, masq_, po);
  for (const auto& v : opts_.alternates) {
    ProgramOptions o = po;
    o.objects_dir = v.objects_dir;
    o.delay_loops = v.delay_loops;
    o.share_maps = &variants.front();
    variants.emplace_back(l, n, masq_, o);
  }
  log::debug("{}: programs loaded, maps filled", n.name);
  return variants;
}

void EbpfMode::attach_node(const topology::Layout& l, const topology::NodeLayout& n,
                           const std::vector<NodePrograms>& variants) {
  fs::create_directories(pins::node_dir(l.prefix, n.name));
  const NodePrograms& progs = variants.front();
  for (const char* m : {"counters_from_pod", "counters_from_uplink", "endpoints", "ct",
                        "nonmasq_active", "nonmasq6_active", "endpoints6", "ct6"})
    pin(progs.map_fd(m), pins::map(l.prefix, n.name, m));
  for (size_t v = 1; v < variants.size(); ++v)
    for (const char* c : {"counters_from_pod", "counters_from_uplink"})
      pin(variants[v].map_fd(c), pins::map(l.prefix, n.name, pins::variant(c, v)));
  // An alternated mode attaches a dispatcher per hook, its slot at the first variant; each
  // variant's programs are pinned so that VariantSelector finds them (and they live on).
  const bool alternated = !opts_.alternates.empty();
  std::vector<Skeleton<::dispatch>> dispatchers;
  auto hook_prog = [&](const char* program, int (NodePrograms::*fd)() const) {
    if (!alternated) return (progs.*fd)();
    for (size_t v = 0; v < variants.size(); ++v) {
      pin((variants[v].*fd)(),
          pins::map(l.prefix, n.name, pins::variant(std::string("prog_") + program, v)));
    }
    auto& d = dispatchers.emplace_back();
    d.load(std::string("dispatch ") + program + " (" + n.name + ")");
    uint32_t zero = 0;
    int first = (progs.*fd)();
    if (bpf_map_update_elem(bpf_map__fd(d->maps.slot), &zero, &first, BPF_ANY) != 0)
      throw_errno("dispatcher slot of " + std::string(program));
    pin(bpf_map__fd(d->maps.slot), pins::map(l.prefix, n.name, std::string("slot_") + program));
    return bpf_program__fd(d->progs.dispatch);
  };

  // Attach inside the node netns (ifindexes are per netns): a tcx link per device, pinned so it
  // outlives us; clsact filters when chosen (--attach clsact) or where tcx is missing. Each is
  // journalled before it is made (one fsync for the node's tcx links), so removal and `clean`
  // undo exactly these.
  struct Target {
    std::string ifname;
    int prog;
    bool egress;
    Attachment tcx;
  };
  std::vector<Target> targets;
  auto add = [&](const std::string& ifname, int prog, bool egress) {
    targets.push_back({ifname,
                       prog,
                       egress,
                       {.kind = Attachment::Kind::kTcx,
                        .netns = n.netns,
                        .target = ifname,
                        .hook = egress ? "egress" : "ingress",
                        .pin = pins::tc_link(l.prefix, n.name, ifname, egress)}});
  };
  const int from_pod = hook_prog("from_pod", &NodePrograms::from_pod_fd);
  for (const auto& p : n.pods) add(p.lxc, from_pod, false);
  if (host_routing()) {
    add(n.uplink, hook_prog("from_uplink", &NodePrograms::from_uplink_fd), false);
  } else {
    const int to_pod = hook_prog("to_pod", &NodePrograms::to_pod_fd);
    for (const auto& p : n.pods) add(p.lxc, to_pod, true);
  }
  std::vector<Attachment> planned;
  for (const auto& t : targets) planned.push_back(t.tcx);
  const bool clsact = opts_.attach == Attach::kClsact;
  std::set<std::string> qdisc_made;  // devices whose clsact qdisc this call has seen to
  if (!clsact) state_->record_attached(planned);
  run_in_netns(n.netns, [&] {
    for (const auto& [ifname, prog, egress, tcx] : targets) {
      unsigned ifindex = ifindex_of(ifname, n.netns);
      if (!clsact) {
        Fd link(bpf_link_create(prog, ifindex, egress ? kTcxEgress : kTcxIngress, nullptr));
        if (link) {
          pin(link.get(), tcx.pin);
          continue;
        }
        if (egress) throw_errno("tcx egress attach on " + ifname + " (bpf-lb needs tcx)");
        if (errno != EINVAL && errno != EOPNOTSUPP) throw_errno("tcx attach on " + ifname);
      }
      // clsact (chosen, or where the kernel has no tcx): the qdisc, then the filter, which lives
      // with the device; removal deletes them (newest first).
      bpf_tc_hook hook{};
      hook.sz = sizeof hook;
      hook.ifindex = ifindex;
      hook.attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
      if (!qdisc_made.count(ifname)) {
        // The qdisc is journalled before it is made, and marked not ours (a detach line) when
        // it was there already, so that removal destroys only a qdisc the harness created.
        const Attachment q{
            .kind = Attachment::Kind::kClsact, .netns = n.netns, .target = ifname, .hook = "qdisc"};
        state_->record_attached({q});
        const int e = bpf_tc_hook_create(&hook);
        if (e == -EEXIST)
          state_->record_detached(q);
        else if (e)
          throw SysError(-e, "clsact on " + ifname);
        qdisc_made.insert(ifname);
      }
      state_->record_attached({{.kind = Attachment::Kind::kClsact,
                                .netns = n.netns,
                                .target = ifname,
                                .hook = egress ? "egress" : "ingress",
                                .handle = kClsactHandle,
                                .priority = kClsactPriority}});
      bpf_tc_opts o{};
      o.sz = sizeof o;
      o.prog_fd = prog;
      o.handle = kClsactHandle;
      o.priority = kClsactPriority;
      if (int e = bpf_tc_attach(&hook, &o)) throw SysError(-e, "tc attach on " + ifname);
    }
  });
  log::debug("{}: {} attachments made", n.name, targets.size());
}

void EbpfMode::apply(const topology::Layout& l) {
  pins::ensure_bpffs();
  // bpf-lb keeps the stack's path: nothing but kube-proxy's DNAT is bypassed, and it runs
  // without a guard (make_mode gives it none).
  if (guard_) guard_->refuse_bypassed_rules(l);
  // Journal before creating: `down`/`clean` remove the pin directory even after a crash.
  state_->record({{"bpffs", pins::root(l.prefix)}});
  legacy_.apply(l);
  log::debug("{}: the legacy rules underneath are installed", opts_.name);
  try {
    // The node's own sockets take ephemeral ports outside the masquerade range (kNatPortMin..
    // kNatPortMax); the range they had is kept in the state directory for remove().
    if (host_routing()) {
      nlohmann::json ranges = nlohmann::json::object();
      for (const auto& n : l.nodes)
        ranges[n.name] = read_sysctl_in(n.netns, "net.ipv4.ip_local_port_range");
      state_->write(kPortRangeFile, ranges.dump());
      for (const auto& n : l.nodes)
        write_sysctl_in(n.netns, "net.ipv4.ip_local_port_range", kNodePortRange);
    }
    // Loading is most of the time (the verifier, once per program and node, and libbpf's
    // parsing of the kernel's BTF, once per object): the nodes load on a pool of workers, one
    // per CPU; attaching stays in node order on this thread (each attachment is journalled
    // before it is made, and the journal has one writer).
    std::vector<std::vector<NodePrograms>> loaded(l.nodes.size());
    std::vector<std::function<void()>> jobs;
    for (size_t i = 0; i < l.nodes.size(); ++i)
      jobs.push_back([&, i] { loaded[i] = load_node(l, l.nodes[i]); });
    parallel(jobs, usable_cpus());  // the verifier is CPU work
    for (size_t i = 0; i < l.nodes.size(); ++i) attach_node(l, l.nodes[i], loaded[i]);
    for (const auto& n : l.nodes) conntrack_flush(n.netns);
    log::debug("{}: conntrack flushed", opts_.name);
    if (guard_) guard_->start(l, *state_);
  } catch (...) {
    log::warn("{} mode failed to apply; detaching what was attached", opts_.name);
    try {
      remove(l);
    } catch (const std::exception& e) {
      log::error("rollback of ebpf mode: {}", e.what());
    }
    throw;
  }
}

void EbpfMode::remove(const topology::Layout& l) {
  if (guard_) guard_->stop(l, *state_);
  // What the journal says this mode attached (tc: tcx links, clsact filters), newest first.
  // Detached now, not only unpinned: a packet or two would otherwise still take the BPF path
  // after the switch, until the kernel's deferred release runs.
  topology::detach_journalled(*state_, [](const Attachment& a) {
    return a.kind == Attachment::Kind::kTcx || a.kind == Attachment::Kind::kClsact;
  });
  auto saved = state_->read(kPortRangeFile);
  if (!saved.empty()) {
    auto ranges = nlohmann::json::parse(saved);
    for (const auto& n : l.nodes)
      if (ranges.contains(n.name) && netns_exists(n.netns))
        write_sysctl_in(n.netns, "net.ipv4.ip_local_port_range", ranges[n.name].get<std::string>());
    state_->write(kPortRangeFile, "");
  }
  // The maps go with the programs once their pins are gone.
  std::error_code ec;
  fs::remove_all(pins::root(l.prefix), ec);
  if (ec) throw Error("remove " + pins::root(l.prefix) + ": " + ec.message());
  legacy_.remove(l);
}

Fd new_nonmasq_trie(const std::vector<Cidr>& cidrs) {
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
  Fd lpm(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "nonmasq", sizeof(hrb_lpm_key), 1, HRB_MAX_NONMASQ,
                        &o));
  if (!lpm) throw_errno("create a non-masquerade LPM trie");
  fill_trie(lpm.get(), cidrs, "fill the new LPM trie with");
  return lpm;
}

Fd new_nonmasq6_trie(const std::vector<Cidr6>& cidrs) {
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
  Fd lpm(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "nonmasq6", sizeof(hrb_lpm6_key), 1, HRB_MAX_NONMASQ,
                        &o));
  if (!lpm) throw_errno("create an IPv6 non-masquerade LPM trie");
  fill_trie(lpm.get(), cidrs, "fill the new IPv6 LPM trie with");
  return lpm;
}

void set_active_trie(int outer, int trie, const std::string& what) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(outer, &zero, &trie, BPF_ANY) != 0) throw_errno("swap " + what);
}

void swap_nonmasq(const topology::Layout& l, const MasqConfig& masq) {
  // Everything is opened, made and filled before the first swap, so that a failure on the way
  // (a node without the pins, ENOMEM) leaves every node as it was.
  struct Swap {
    Fd outer, trie;
    std::string what;
  };
  std::vector<Swap> swaps;
  auto open_outer = [&](const topology::NodeLayout& n, const char* map, const char* hint) {
    const std::string pin_path = pins::map(l.prefix, n.name, map);
    Fd outer(bpf_obj_get(pin_path.c_str()));
    if (!outer) throw_errno("open " + pin_path + " (" + hint + ")");
    return outer;
  };
  for (const auto& n : l.nodes) {
    // As the loader fills them: the IPv4 trie stays empty on a single-stack IPv6 cluster.
    swaps.push_back({open_outer(n, "nonmasq_active", "is ebpf mode on?"),
                     new_nonmasq_trie(l.has_ipv4() ? masq.return_cidrs() : std::vector<Cidr>{}),
                     "the non-masquerade trie of " + n.name});
    if (l.has_ipv6())
      swaps.push_back({open_outer(n, "nonmasq6_active",
                                  "programs loaded by an hrbench of BPF ABI version 3 or older "
                                  "have none: run `hrbench mode ebpf` again"),
                       new_nonmasq6_trie(ipv6_nonmasq(masq)),
                       "the IPv6 non-masquerade trie of " + n.name});
  }
  for (const auto& s : swaps) set_active_trie(s.outer.get(), s.trie.get(), s.what);
}

nlohmann::json counters_json(const topology::Layout& l, size_t variant) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [node, progs] : read_counters(l, variant))
    for (const auto& [prog, c] : progs)
      for (int r = 0; r < HRB_R__MAX; ++r)
        if (c[r]) j[node][prog][reason_name(r)] = c[r];
  return j;
}

std::map<std::string, std::map<std::string, ReasonCounters>> read_counters(
    const topology::Layout& l, size_t variant) {
  std::map<std::string, std::map<std::string, ReasonCounters>> out;
  for (const auto& n : l.nodes)
    for (const char* prog : kPrograms) {
      std::string path =
          pins::map(l.prefix, n.name, pins::variant(std::string("counters_") + prog, variant));
      Fd fd(bpf_obj_get(path.c_str()));
      if (!fd) continue;  // not in ebpf mode
      out[n.name][prog] = sum_counters(fd.get());
    }
  return out;
}

VariantSelector::VariantSelector(const topology::Layout& l, size_t variants) : variants_(variants) {
  for (const auto& n : l.nodes)
    for (const char* program : {"from_pod", "from_uplink", "to_pod"}) {
      const std::string slot = pins::map(l.prefix, n.name, std::string("slot_") + program);
      Fd s(bpf_obj_get(slot.c_str()));
      if (!s) {
        if (errno == ENOENT) continue;  // no such hook in this mode (bpf-lb has no from_uplink)
        throw_errno("open " + slot);
      }
      std::vector<Fd> progs;
      for (size_t v = 0; v < variants; ++v) {
        const std::string p =
            pins::map(l.prefix, n.name, pins::variant(std::string("prog_") + program, v));
        Fd fd(bpf_obj_get(p.c_str()));
        if (!fd) throw_errno("open " + p + " (variant " + std::to_string(v) + " not loaded?)");
        progs.push_back(std::move(fd));
      }
      slots_.push_back(std::move(s));
      progs_.push_back(std::move(progs));
    }
  if (slots_.empty())
    throw Error("no alternated mode is on (no dispatcher slots under " + pins::root(l.prefix) +
                ")");
}

void VariantSelector::select(size_t v) {
  if (v >= variants_)
    throw Error("variant " + std::to_string(v) + " of " + std::to_string(variants_));
  const uint32_t zero = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const int fd = progs_[i][v].get();
    if (bpf_map_update_elem(slots_[i].get(), &zero, &fd, BPF_ANY) != 0)
      throw_errno("select variant " + std::to_string(v));
  }
}

}  // namespace hrb::datapath
