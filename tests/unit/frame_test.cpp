// The packet tests' failure output: the decoder, the field-by-field diff and the pcap of a failed
// frame comparison (tests/support/frame.hpp), on frames built from known specs.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "support/frame.hpp"
#include "support/packet.hpp"
#include "support/pcap.hpp"

using namespace hrb;
using namespace hrb::test;

namespace {

PacketSpec tcp_spec() {
  PacketSpec s;
  s.src = Ipv4::parse("10.244.0.2").value();
  s.dst = Ipv4::parse("192.168.200.10").value();
  s.sport = 41000;
  s.dport = 443;
  return s;
}

std::string value(const std::vector<Field>& fs, const std::string& name) {
  for (const auto& f : fs)
    if (f.name == name) return f.value;
  return "(absent)";
}

// The lines of a diff marked as differing, by field name.
std::vector<std::string> marked(const std::string& diff) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = diff.find("\n* ", pos)) != std::string::npos) {
    pos += 3;
    names.push_back(diff.substr(pos, diff.find(' ', pos) - pos));
  }
  return names;
}

TEST(Frames, DissectNamesEveryHeaderField) {
  const auto f = dissect(build(tcp_spec()));
  EXPECT_EQ(value(f, "eth.dst"), "02:00:00:00:00:02");
  EXPECT_EQ(value(f, "eth.src"), "02:00:00:00:00:01");
  EXPECT_EQ(value(f, "eth.type"), "0x0800 IPv4");
  EXPECT_EQ(value(f, "ip.src"), "10.244.0.2");
  EXPECT_EQ(value(f, "ip.dst"), "192.168.200.10");
  EXPECT_EQ(value(f, "ip.ttl"), "64");
  EXPECT_EQ(value(f, "ip.tot_len"), "72");
  EXPECT_EQ(value(f, "ip.csum").substr(7), "ok");
  EXPECT_EQ(value(f, "tcp.sport"), "41000");
  EXPECT_EQ(value(f, "tcp.dport"), "443");
  EXPECT_EQ(value(f, "tcp.flags"), "0x18 PSH|ACK");
  EXPECT_EQ(value(f, "tcp.csum").substr(7), "ok");
  EXPECT_EQ(value(f, "payload").substr(0, 8), "32 bytes");
}

TEST(Frames, DissectDecodesTheQuoteOfAnIcmpError) {
  auto about = tcp_spec();
  about.proto = 17;
  const auto err = icmp_error(Ipv4::parse("172.18.0.254").value(), about.src, 3, 4, build(about));
  const auto f = dissect(err);
  EXPECT_EQ(value(f, "icmp.type"), "3 dest-unreachable");
  EXPECT_EQ(value(f, "icmp.code"), "4");
  EXPECT_EQ(value(f, "icmp.rest"), "0x00000578") << "next-hop MTU 1400";
  EXPECT_EQ(value(f, "icmp.csum").substr(7), "ok");
  EXPECT_EQ(value(f, "icmp.quote.ip.src"), "10.244.0.2");
  EXPECT_EQ(value(f, "icmp.quote.ip.csum").substr(7), "ok");
  EXPECT_EQ(value(f, "icmp.quote.udp.sport"), "41000");
  EXPECT_EQ(value(f, "icmp.quote.udp.dport"), "443");
  // Eight bytes quoted of a TCP header: ports and sequence number only.
  const auto cut = dissect(icmp_error(about.dst, about.src, 3, 3, build(tcp_spec()), 28));
  EXPECT_EQ(value(cut, "icmp.quote.tcp.sport"), "41000");
  EXPECT_EQ(value(cut, "icmp.quote.tcp.seq"), "1000");
  EXPECT_EQ(value(cut, "icmp.quote.tcp.csum"), "(absent)");
}

TEST(Frames, DissectSaysWhereAFrameEndsEarly) {
  auto b = build(tcp_spec());
  b.resize(14 + 20 + 10);
  const auto f = dissect(b);
  EXPECT_EQ(value(f, "ip.truncated"), "tot_len 72 but 30 bytes");
  EXPECT_EQ(value(f, "tcp.truncated"), "TCP header needs 20 bytes, 10 left");
  EXPECT_EQ(value(dissect(arp_frame()), "eth.type"), "0x0806 ARP");
}

TEST(Frames, EqualFramesHaveNoDiff) {
  EXPECT_EQ(frame_diff(build(tcp_spec()), build(tcp_spec())), "");
  EXPECT_TRUE(same_frame(build(tcp_spec()), build(tcp_spec()), build(tcp_spec())));
}

TEST(Frames, TheDiffMarksExactlyTheFieldsThatDiffer) {
  auto want = tcp_spec();
  want.ttl = 63;
  want.src = Ipv4::parse("172.18.0.1").value();
  auto got = want;
  got.sport = 41001;
  got.dst_mac = {0x02, 0, 0, 0, 0, 0x09};
  const std::string d = frame_diff(build(want), build(got));
  EXPECT_EQ(marked(d), (std::vector<std::string>{"eth.dst", "tcp.sport", "tcp.csum"})) << d;
  EXPECT_NE(d.find("first difference at byte 5 (eth.dst)"), std::string::npos) << d;
  EXPECT_NE(d.find("41000"), std::string::npos) << d;
  EXPECT_NE(d.find("41001"), std::string::npos) << d;
  // A field only one frame has (here: IP options) is listed with "-" on the other side.
  auto opt = want;
  opt.ip_option_words = 1;
  const std::string o = frame_diff(build(want), build(opt));
  EXPECT_NE(o.find("expected 86 bytes, actual 90 bytes"), std::string::npos) << o;
  EXPECT_NE(o.find("* ip.options"), std::string::npos) << o;
}

TEST(Frames, AFailedComparisonWritesAPcapOfInputExpectedAndActual) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hrb-frame-test-" + std::to_string(::getpid()));
  ::setenv("HRB_TEST_OUTPUT_DIR", dir.c_str(), 1);
  auto in = tcp_spec();
  auto want = in;
  want.ttl = 63;
  auto got = want;
  got.ttl = 62;
  const auto r = same_frame(build(want), build(got), build(in));
  ::unsetenv("HRB_TEST_OUTPUT_DIR");
  ASSERT_FALSE(r);
  const auto pcap = dir / "Frames.AFailedComparisonWritesAPcapOfInputExpectedAndActual.pcap";
  const std::string msg = r.message();
  EXPECT_NE(msg.find("* ip.ttl"), std::string::npos) << msg;
  EXPECT_NE(msg.find(pcap.string()), std::string::npos) << msg;
  std::ifstream f(pcap, std::ios::binary);
  ASSERT_TRUE(f) << pcap;
  const Bytes file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Global header (24 bytes), then three records of a 16-byte header and the 86-byte frame.
  ASSERT_EQ(file.size(), 24u + 3 * (16 + 86));
  uint32_t magic = 0, linktype = 0;
  std::memcpy(&magic, file.data(), 4);
  std::memcpy(&linktype, file.data() + 20, 4);
  EXPECT_EQ(magic, 0xa1b2c3d4u);
  EXPECT_EQ(linktype, 1u);
  const auto frame = [&](int i) {
    const auto at = file.begin() + 24 + i * (16 + 86) + 16;
    return Bytes(at, at + 86);
  };
  EXPECT_EQ(frame(0), build(in));
  EXPECT_EQ(frame(1), build(want));
  EXPECT_EQ(frame(2), build(got));
  std::filesystem::remove_all(dir);
}

}  // namespace
