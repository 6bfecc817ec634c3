#include "support/packet.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace hrb::test {

namespace {
void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = v >> 8;
  b[off + 1] = v & 0xff;
}
void put32(Bytes& b, size_t off, uint32_t v) {
  put16(b, off, v >> 16);
  put16(b, off + 2, v & 0xffff);
}
uint16_t get16(const Bytes& b, size_t off) { return b[off] << 8 | b[off + 1]; }
uint32_t get32(const Bytes& b, size_t off) {
  return uint32_t(get16(b, off)) << 16 | get16(b, off + 2);
}

uint32_t pseudo_sum(const Bytes& b, size_t ip, uint8_t proto, size_t l4len) {
  uint32_t s = 0;
  for (size_t i = 12; i < 20; i += 2) s += get16(b, ip + i);
  return s + proto + static_cast<uint32_t>(l4len);
}
}  // namespace

uint16_t csum16(const uint8_t* p, size_t n, uint32_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

Bytes build(const PacketSpec& s) {
  const size_t ihl = 20 + 4 * s.ip_option_words;
  const size_t l4h = s.proto == 6 ? 20 : 8;
  Bytes b(14 + ihl + l4h + s.payload, 0);
  std::copy(s.dst_mac.begin(), s.dst_mac.end(), b.begin());
  std::copy(s.src_mac.begin(), s.src_mac.end(), b.begin() + 6);
  put16(b, 12, 0x0800);
  const size_t ip = 14;
  b[ip] = 0x40 | (ihl / 4);
  put16(b, ip + 2, ihl + l4h + s.payload);
  put16(b, ip + 4, 0x1234);
  put16(b, ip + 6, s.frag);
  b[ip + 8] = s.ttl;
  b[ip + 9] = s.proto;
  put32(b, ip + 12, s.src.v);
  put32(b, ip + 16, s.dst.v);
  for (size_t i = 20; i < ihl; ++i) b[ip + i] = 1;  // NOP options
  put16(b, ip + 10, csum16(&b[ip], ihl));
  const size_t l4 = ip + ihl;
  for (size_t i = 0; i < s.payload; ++i) b[l4 + l4h + i] = static_cast<uint8_t>(i * 7 + 3);
  const size_t l4len = l4h + s.payload;
  if (s.proto == 6) {
    put16(b, l4, s.sport);
    put16(b, l4 + 2, s.dport);
    put32(b, l4 + 4, 1000);
    put32(b, l4 + 8, 2000);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = s.tcp_flags;
    put16(b, l4 + 14, 65535);
    put16(b, l4 + 16, csum16(&b[l4], l4len, pseudo_sum(b, ip, 6, l4len)));
  } else if (s.proto == 17) {
    put16(b, l4, s.sport);
    put16(b, l4 + 2, s.dport);
    put16(b, l4 + 4, l4len);
    if (!s.udp_zero_csum) {
      uint16_t c = csum16(&b[l4], l4len, pseudo_sum(b, ip, 17, l4len));
      put16(b, l4 + 6, c ? c : 0xffff);
    }
  } else if (s.proto == 1) {
    b[l4] = s.icmp_type;
    put16(b, l4 + 4, s.sport);
    put16(b, l4 + 6, 1);
    put16(b, l4 + 2, csum16(&b[l4], l4len));
  }
  return b;
}

Bytes icmp_error(Ipv4 src, Ipv4 dst, uint8_t type, uint8_t code, const Bytes& about, size_t quote) {
  PacketSpec outer;
  outer.src = src;
  outer.dst = dst;
  return icmp_error(outer, type, code, about, quote);
}

Bytes icmp_error(const PacketSpec& outer, uint8_t type, uint8_t code, const Bytes& about,
                 size_t quote) {
  Bytes inner(about.begin() + 14, about.end());
  if (inner.size() > quote) inner.resize(quote);
  PacketSpec s = outer;
  s.proto = 1;
  s.frag = 0;
  s.ip_option_words = 0;
  s.payload = 0;
  Bytes b = build(s);  // 14 + 20 + 8: the ICMP header
  b.insert(b.end(), inner.begin(), inner.end());
  const size_t ip = 14, l4 = 34;
  put16(b, ip + 2, static_cast<uint16_t>(b.size() - 14));
  put16(b, ip + 10, 0);
  put16(b, ip + 10, csum16(&b[ip], 20));
  b[l4] = type;
  b[l4 + 1] = code;
  put32(b, l4 + 4, type == 3 && code == 4 ? 1400 : 0);  // next-hop MTU for "fragmentation needed"
  put16(b, l4 + 2, 0);
  put16(b, l4 + 2, csum16(&b[l4], b.size() - l4));
  return b;
}

Bytes arp_frame() {
  Bytes b(42, 0);
  for (int i = 0; i < 6; ++i) b[i] = 0xff;
  b[6] = 0x02;
  put16(b, 12, 0x0806);
  return b;
}

bool ip_csum_ok(const Bytes& b) {
  if (b.size() < 34) return false;
  size_t ihl = (b[14] & 0xf) * 4;
  return csum16(&b[14], ihl) == 0;
}

bool l4_csum_ok(const Bytes& b) {
  size_t ihl = (b[14] & 0xf) * 4;
  size_t l4 = 14 + ihl;
  size_t l4len = get16(b, 16) - ihl;
  uint8_t proto = b[23];
  if (proto == 17 && get16(b, l4 + 6) == 0) return true;  // no checksum
  if (proto == 1) return csum16(&b[l4], l4len) == 0;
  return csum16(&b[l4], l4len, pseudo_sum(b, 14, proto, l4len)) == 0;
}

std::string mac_str(const uint8_t* m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

Decoded decode(const Bytes& b) {
  Decoded d;
  if (b.size() < 34) throw std::runtime_error("short packet");
  d.dst_mac = mac_str(&b[0]);
  d.src_mac = mac_str(&b[6]);
  size_t ihl = (b[14] & 0xf) * 4;
  d.ttl = b[22];
  d.proto = b[23];
  d.src = Ipv4{get32(b, 26)};
  d.dst = Ipv4{get32(b, 30)};
  size_t l4 = 14 + ihl;
  if (d.proto == 6 || d.proto == 17) {
    d.sport = get16(b, l4);
    d.dport = get16(b, l4 + 2);
    d.l4_csum = get16(b, l4 + (d.proto == 6 ? 16 : 6));
  } else if (d.proto == 1) {
    d.sport = get16(b, l4 + 4);
    d.l4_csum = get16(b, l4 + 2);
  }
  return d;
}

std::string Decoded::str() const {
  return fmt::format("{} > {} proto {} {}:{} > {}:{} ttl {} l4csum {:#06x}", src_mac, dst_mac,
                     proto, src.str(), sport, dst.str(), dport, ttl, l4_csum);
}

}  // namespace hrb::test
