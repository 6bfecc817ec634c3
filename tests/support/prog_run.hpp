#pragma once
// Test support: one BPF_PROG_TEST_RUN of a node's datapath program on a frame, as the packet
// tests (tests/bpf) run from_pod, from_uplink and to_pod on the real compiled objects.
#include <string>

#include "datapath/ebpf.hpp"
#include "support/packet.hpp"

#include "hrb_abi.h"

namespace hrb::test {

struct ProgRun {
  int verdict = -1;                // the program's return: TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT
  Bytes in, out;                   // the frame given and the frame as the program left it
  hrb_redirect_record redirect{};  // the redirect it recorded (ProgramOptions::record_redirects)
};

// Runs program `prog_fd` of `progs` once on `in`, as if it arrived on device `ingress` of `netns`
// (the context's ingress_ifindex and ifindex), with both objects' last_redirect cleared first.
ProgRun run_program(const datapath::NodePrograms& progs, const std::string& netns, int prog_fd,
                    const Bytes& in, const std::string& ingress);

}  // namespace hrb::test
