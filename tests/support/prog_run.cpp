#include "support/prog_run.hpp"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <net/if.h>

#include "core/error.hpp"
#include "core/netns.hpp"

// Generated skeletons: after hrb_abi.h, which declares the structs they name.
#include "from_pod.skel.h"
#include "from_uplink.skel.h"

namespace hrb::test {

ProgRun run_program(const datapath::NodePrograms& progs, const std::string& netns, int prog_fd,
                    const Bytes& in, const std::string& ingress) {
  return run_in_netns(netns, [&] {
    ProgRun r;
    r.in = in;
    unsigned idx = if_nametoindex(ingress.c_str());
    __sk_buff ctx{};
    ctx.ingress_ifindex = idx;
    ctx.ifindex = idx;
    r.out.resize(in.size() + 256);
    auto* bss_pod = progs.pod()->bss;
    auto* bss_up = progs.uplink()->bss;
    bss_pod->last_redirect = {};
    bss_up->last_redirect = {};
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<__u32>(in.size()),
                .data_size_out = static_cast<__u32>(r.out.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof ctx, .repeat = 1);
    if (bpf_prog_test_run_opts(prog_fd, &o) != 0) throw_errno("bpf_prog_test_run_opts");
    r.out.resize(o.data_size_out);
    r.verdict = static_cast<int>(o.retval);
    r.redirect = bss_pod->last_redirect.count ? bss_pod->last_redirect : bss_up->last_redirect;
    return r;
  });
}

}  // namespace hrb::test
