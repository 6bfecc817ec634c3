// ip-masq-agent config, YAML or JSON (hrbench mode --masq-config, hrbench masq-agent --config):
// parse_masq_config_string, and what legacy/ebpf mode then derive from it.
#include "datapath/masq_config.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hrb::fuzz::only_hrb_errors([&] {
    auto c = hrb::datapath::parse_masq_config_string(hrb::fuzz::text(data, size), "fuzz.yaml");
    if (c.resync_interval_ms < 1) __builtin_trap();
    for (const auto& cidr : c.return_cidrs()) (void)cidr.str();
    (void)c.masquerades(*hrb::Ipv4::parse("192.168.200.10"));
  });
  return 0;
}
