#pragma once
// What `hrbench status` shows of the datapath: the mode in one line and the BPF programs'
// per-reason counters. Made from values only, so a test can check them without a cluster.
#include <map>
#include <string>

#include "datapath/ebpf.hpp"
#include "datapath/mode.hpp"

namespace hrb::datapath {

// "legacy (iptables-nft, 10 services x 1 endpoints, masq config FILE)", or just the name.
std::string describe_mode(const ModeOptions& m);

// The modes whose BPF programs keep counters (ebpf, bpf-lb).
bool has_bpf_counters(const ModeOptions& m);

// One line per node and program: "  node1 from_pod: redirect_peer=3 pass=1", non-zero reasons
// only, "(nothing yet)" when all are zero. Input as read_counters returns it.
std::string render_counters(
    const std::map<std::string, std::map<std::string, ReasonCounters>>& counters);

}  // namespace hrb::datapath
