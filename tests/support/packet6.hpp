#pragma once
// IPv6 test packets (support/packet.hpp's counterpart): built byte by byte, with extension
// headers when asked, and checked with a full checksum computation over the IPv6 pseudo-header
// that shares no code with the BPF programs' incremental updates.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ipv6.hpp"
#include "support/packet.hpp"

namespace hrb::test {

Ipv6 ip6(const std::string& text);  // throws on a bad address

// An extension header before the L4 header: hop-by-hop (0), routing (43, type 0 with one
// address), fragment (44) or destination options (60); options are padding.
struct Ext6 {
  uint8_t type = 60;
  uint8_t segments_left = 0;  // routing
  uint16_t frag = 0;          // fragment: offset << 3 | M
};

struct PacketSpec6 {
  uint8_t proto = 6;  // 6 TCP, 17 UDP, 58 ICMPv6
  Ipv6 src{}, dst{};
  uint16_t sport = 40000, dport = 8080;  // ICMPv6 echo: sport is the identifier
  uint8_t hop_limit = 64;
  uint8_t tcp_flags = 0x18;  // PSH|ACK
  uint8_t icmp_type = 128;   // echo request
  uint8_t icmp_code = 0;
  bool udp_zero_csum = false;
  std::vector<Ext6> ext;
  size_t payload = 32;
  std::optional<uint16_t> payload_word;  // the payload's first two bytes (default: the pattern)
  Mac src_mac = {0x02, 0, 0, 0, 0, 0x01};
  Mac dst_mac = {0x02, 0, 0, 0, 0, 0x02};
};

Bytes build6(const PacketSpec6& s);
// The payload_word that makes a UDP packet's checksum (s: proto 17, payload >= 2) compute to 0,
// which build6 then sends as 0xffff (RFC 8200 8.1: 0 means none, invalid over IPv6).
uint16_t udp_zero_csum_word6(PacketSpec6 s);
// An ICMPv6 error (type, code) with the outer header of `outer` (addresses, hop limit, MACs;
// its proto and ports are ignored) quoting `about` (a frame from build6(); its IPv6 packet from
// the header on, cut to `quote` bytes: RFC 4443 quotes as much as fits in 1280).
Bytes icmp6_error(const PacketSpec6& outer, uint8_t type, uint8_t code, const Bytes& about,
                  size_t quote = 1232);

// The L4 checksum of an IPv6 frame (TCP, UDP, ICMPv6; extension headers walked) is right; a UDP
// checksum of 0 counts as wrong (IPv6 makes it mandatory) unless zero_ok.
bool l4_csum6_ok(const Bytes& frame, bool zero_ok = false);
// For an ICMPv6 error: the quoted packet's L4 checksum is right (it must be quoted whole); a
// quoted UDP checksum of 0 counts as right unless !zero_ok.
bool quoted_csum6_ok(const Bytes& frame, bool zero_ok = true);
// The L4 header's offset and protocol after the extension headers of the IPv6 header at offset
// `ip` of b; false when they run past the end. *fragment: a fragment header was among them.
bool walk6(const Bytes& b, size_t ip, size_t& l4, uint8_t& proto, bool* fragment = nullptr);

struct Decoded6 {
  uint8_t proto = 0, hop_limit = 0;
  Ipv6 src{}, dst{};
  uint16_t sport = 0, dport = 0;  // ICMPv6 echo: the id in sport
  std::string str() const;
};
Decoded6 decode6(const Bytes& frame);  // the L4 header after the extension headers

}  // namespace hrb::test
