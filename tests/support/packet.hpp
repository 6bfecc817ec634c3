#pragma once
// Test packets: built byte by byte, checked with a full RFC 1071 checksum computation that shares
// no code with the BPF programs' incremental updates, and decoded for failure messages.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/ipv4.hpp"

namespace hrb::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

struct PacketSpec {
  uint8_t proto = 6;  // 6 TCP, 17 UDP, 1 ICMP
  Ipv4 src, dst;
  uint16_t sport = 40000, dport = 8080;  // ICMP: sport is the echo id
  uint8_t ttl = 64;
  uint8_t tcp_flags = 0x18;  // PSH|ACK
  uint8_t icmp_type = 8;     // echo request
  bool udp_zero_csum = false;
  uint16_t frag = 0;        // IPv4 flags+offset field (host order)
  int ip_option_words = 0;  // IPv4 options, 4 bytes each (NOPs)
  size_t payload = 32;
  Mac src_mac = {0x02, 0, 0, 0, 0, 0x01};
  Mac dst_mac = {0x02, 0, 0, 0, 0, 0x02};
};

Bytes build(const PacketSpec& s);
Bytes arp_frame();
// An ICMP error (type, code) from src to dst quoting `about` (a frame from build(); its IP
// packet from the header on, cut to `quote` bytes when shorter).
Bytes icmp_error(Ipv4 src, Ipv4 dst, uint8_t type, uint8_t code, const Bytes& about,
                 size_t quote = 576);
// The same with the outer header's MACs, addresses and TTL taken from `outer` (its proto,
// ports and payload are ignored).
Bytes icmp_error(const PacketSpec& outer, uint8_t type, uint8_t code, const Bytes& about,
                 size_t quote = 576);

uint16_t csum16(const uint8_t* p, size_t n, uint32_t seed = 0);  // RFC 1071
// True when the IPv4 header checksum and the L4 checksum (TCP/UDP with pseudo-header, ICMP
// without; a UDP checksum of 0 counts as "none") are right.
bool ip_csum_ok(const Bytes& pkt);
bool l4_csum_ok(const Bytes& pkt);

struct Decoded {
  uint8_t proto = 0, ttl = 0;
  Ipv4 src, dst;
  uint16_t sport = 0, dport = 0;  // ICMP: echo id in sport
  uint16_t l4_csum = 0;
  std::string src_mac, dst_mac;
  std::string str() const;
};
Decoded decode(const Bytes& pkt);
std::string mac_str(const uint8_t* m);

}  // namespace hrb::test
