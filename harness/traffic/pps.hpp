#pragma once
// `pps`: a packet-rate generator with XDP live frames. Small UDP frames are injected from the
// fabric side of a node's uplink (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on an XDP
// program that redirects out of the fabric port), so the node must forward every one of them to
// a pod, where a socket counts what arrives. GRO is switched on on the receiving veth for the
// run (without it veth drops redirected XDP frames) and restored afterwards.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "topology/layout.hpp"

namespace hrb::traffic {

struct PpsSpec {
  const topology::NodeLayout* node = nullptr;  // whose uplink receives the frames
  const topology::PodLayout* pod = nullptr;    // the destination (on that node)
  Ipv4 src;                                    // source address of the frames
  double duration_s = 2;
  uint32_t batch = 262144;  // frames per test run (each run has a fixed setup cost of ~20 ms)
  uint16_t port = 9999;
};

struct PpsResult {
  uint64_t sent = 0, received = 0;
  double seconds = 0;
  double sent_pps() const { return seconds > 0 ? sent / seconds : 0; }
  double received_pps() const { return seconds > 0 ? received / seconds : 0; }
  nlohmann::json to_json() const;
};

PpsResult run_pps(const topology::Layout& l, const PpsSpec& spec);

// The spec of frames into pod `pod` (by name): its node, the source address of pps_source, the
// other fields left at their defaults. Throws Error(kNotFound) when no pod has that name.
PpsSpec pps_spec_for_pod(const topology::Layout& l, const std::string& pod);

// The frames' source address: the first external host's (traffic from outside the cluster), or
// the first node's underlay address on a topology without one.
Ipv4 pps_source(const topology::Layout& l);

}  // namespace hrb::traffic
