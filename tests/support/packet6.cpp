#include "support/packet6.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cstring>
#include <stdexcept>

namespace hrb::test {

namespace {
constexpr size_t kIp = 14, kIpLen = 40;

void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = v >> 8;
  b[off + 1] = v & 0xff;
}
uint16_t get16(const Bytes& b, size_t off) { return b[off] << 8 | b[off + 1]; }

// The pseudo-header sum (RFC 8200 8.1) of the addresses at ip+8 and ip+24.
uint32_t pseudo6(const Bytes& b, size_t ip, uint8_t proto, size_t l4len) {
  uint32_t s = 0;
  for (size_t i = 8; i < 40; i += 2) s += get16(b, ip + i);
  return s + proto + static_cast<uint32_t>(l4len);
}

size_t l4_csum_field(uint8_t proto) { return proto == 6 ? 16 : proto == 17 ? 6 : 2; }

bool csum_ok_at(const Bytes& b, size_t ip, size_t end, bool zero_ok) {
  size_t l4;
  uint8_t proto;
  if (!walk6(b, ip, l4, proto) || end < l4) return false;
  const size_t len = end - l4;
  if (proto != 6 && proto != 17 && proto != 58) return true;
  if (len < l4_csum_field(proto) + 2) return false;
  if (proto == 17 && get16(b, l4 + 6) == 0) return zero_ok;
  return csum16(&b[l4], len, pseudo6(b, ip, proto, len)) == 0;
}
}  // namespace

bool walk6(const Bytes& b, size_t ip, size_t& l4, uint8_t& proto, bool* fragment) {
  if (fragment) *fragment = false;
  if (b.size() < ip + kIpLen) return false;
  proto = b[ip + 6];
  l4 = ip + kIpLen;
  while (proto == 0 || proto == 43 || proto == 44 || proto == 60) {
    if (b.size() < l4 + 8) return false;
    if (proto == 44 && fragment) *fragment = true;
    const uint8_t next = b[l4];
    l4 += proto == 44 ? 8 : (size_t(b[l4 + 1]) + 1) * 8;
    proto = next;
  }
  return l4 <= b.size();
}

Ipv6 ip6(const std::string& text) {
  auto a = Ipv6::parse(text);
  if (!a) throw std::invalid_argument("not IPv6: " + text);
  return *a;
}

Bytes build6(const PacketSpec6& s) {
  const size_t l4h = s.proto == 6 ? 20 : 8;
  size_t ext_len = 0;
  for (const auto& e : s.ext) ext_len += e.type == 43 ? 24 : 8;
  Bytes b(kIp + kIpLen + ext_len + l4h + s.payload, 0);
  std::copy(s.dst_mac.begin(), s.dst_mac.end(), b.begin());
  std::copy(s.src_mac.begin(), s.src_mac.end(), b.begin() + 6);
  put16(b, 12, 0x86dd);
  b[kIp] = 0x60;
  put16(b, kIp + 4, static_cast<uint16_t>(ext_len + l4h + s.payload));
  b[kIp + 6] = s.ext.empty() ? s.proto : s.ext.front().type;
  b[kIp + 7] = s.hop_limit;
  std::memcpy(&b[kIp + 8], s.src.b.data(), 16);
  std::memcpy(&b[kIp + 24], s.dst.b.data(), 16);
  size_t off = kIp + kIpLen;
  for (size_t i = 0; i < s.ext.size(); ++i) {
    const auto& e = s.ext[i];
    b[off] = i + 1 < s.ext.size() ? s.ext[i + 1].type : s.proto;
    if (e.type == 43) {  // type 0, one address (RFC 2460's, deprecated but parseable)
      b[off + 1] = 2;
      b[off + 2] = 0;
      b[off + 3] = e.segments_left;
      std::memcpy(&b[off + 8], s.dst.b.data(), 16);
      off += 24;
    } else if (e.type == 44) {
      put16(b, off + 2, e.frag);
      put16(b, off + 4, 0x1234);
      off += 8;
    } else {  // options: one PadN
      b[off + 2] = 1;
      b[off + 3] = 4;
      off += 8;
    }
  }
  const size_t l4 = off;
  const size_t l4len = l4h + s.payload;
  for (size_t i = 0; i < s.payload; ++i) b[l4 + l4h + i] = static_cast<uint8_t>(i * 7 + 3);
  if (s.payload_word && s.payload >= 2) put16(b, l4 + l4h, *s.payload_word);
  if (s.proto == 6) {
    put16(b, l4, s.sport);
    put16(b, l4 + 2, s.dport);
    put16(b, l4 + 4, 0);
    put16(b, l4 + 6, 1000);
    put16(b, l4 + 10, 2000);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = s.tcp_flags;
    put16(b, l4 + 14, 65535);
    put16(b, l4 + 16, csum16(&b[l4], l4len, pseudo6(b, kIp, 6, l4len)));
  } else if (s.proto == 17) {
    put16(b, l4, s.sport);
    put16(b, l4 + 2, s.dport);
    put16(b, l4 + 4, static_cast<uint16_t>(l4len));
    if (!s.udp_zero_csum) {
      const uint16_t c = csum16(&b[l4], l4len, pseudo6(b, kIp, 17, l4len));
      put16(b, l4 + 6, c ? c : 0xffff);
    }
  } else if (s.proto == 58) {
    b[l4] = s.icmp_type;
    b[l4 + 1] = s.icmp_code;
    put16(b, l4 + 4, s.sport);
    put16(b, l4 + 6, 1);
    put16(b, l4 + 2, csum16(&b[l4], l4len, pseudo6(b, kIp, 58, l4len)));
  }
  return b;
}

Bytes icmp6_error(const PacketSpec6& outer, uint8_t type, uint8_t code, const Bytes& about,
                  size_t quote) {
  const size_t q = std::min(quote, about.size() - kIp);
  Bytes b(kIp + kIpLen + 8 + q, 0);
  std::copy(outer.dst_mac.begin(), outer.dst_mac.end(), b.begin());
  std::copy(outer.src_mac.begin(), outer.src_mac.end(), b.begin() + 6);
  put16(b, 12, 0x86dd);
  b[kIp] = 0x60;
  put16(b, kIp + 4, static_cast<uint16_t>(8 + q));
  b[kIp + 6] = 58;
  b[kIp + 7] = outer.hop_limit;
  std::memcpy(&b[kIp + 8], outer.src.b.data(), 16);
  std::memcpy(&b[kIp + 24], outer.dst.b.data(), 16);
  const size_t l4 = kIp + kIpLen;
  b[l4] = type;
  b[l4 + 1] = code;
  if (type == 2) put16(b, l4 + 6, 1280);  // packet too big: the MTU
  std::copy(about.begin() + kIp, about.begin() + kIp + q, b.begin() + l4 + 8);
  put16(b, l4 + 2, csum16(&b[l4], 8 + q, pseudo6(b, kIp, 58, 8 + q)));
  return b;
}

uint16_t udp_zero_csum_word6(PacketSpec6 s) {
  if (s.proto != 17 || s.payload < 2)
    throw std::invalid_argument("udp_zero_csum_word6: UDP, payload >= 2");
  // With the word 0 the rest sums to S; the checksum ~S is the word that makes the sum 0xffff,
  // i.e. the checksum 0.
  s.payload_word = 0;
  s.udp_zero_csum = true;
  Bytes b = build6(s);
  size_t l4;
  uint8_t proto;
  walk6(b, kIp, l4, proto);
  const size_t len = b.size() - l4;
  return csum16(&b[l4], len, pseudo6(b, kIp, 17, len));
}

bool l4_csum6_ok(const Bytes& frame, bool zero_ok) {
  return csum_ok_at(frame, kIp, frame.size(), zero_ok);
}

bool quoted_csum6_ok(const Bytes& frame, bool zero_ok) {
  size_t l4;
  uint8_t proto;
  if (!walk6(frame, kIp, l4, proto) || proto != 58) return false;
  return csum_ok_at(frame, l4 + 8, frame.size(), zero_ok);
}

std::string Decoded6::str() const {
  return fmt::format("proto {} hop {} {}:{} -> {}:{}", proto, hop_limit, src.str(), sport,
                     dst.str(), dport);
}

Decoded6 decode6(const Bytes& frame) {
  Decoded6 d;
  size_t l4;
  uint8_t proto;
  if (!walk6(frame, kIp, l4, proto)) return d;
  d.proto = proto;
  d.hop_limit = frame[kIp + 7];
  std::memcpy(d.src.b.data(), &frame[kIp + 8], 16);
  std::memcpy(d.dst.b.data(), &frame[kIp + 24], 16);
  if (frame.size() < l4 + 8) return d;
  if (proto == 58) {
    d.sport = get16(frame, l4 + 4);
  } else {
    d.sport = get16(frame, l4);
    d.dport = get16(frame, l4 + 2);
  }
  return d;
}

}  // namespace hrb::test
