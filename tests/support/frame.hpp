#pragma once
// Frames decoded field by field, a field-by-field diff of two frames, and the byte-for-byte
// frame assertion of the packet tests: on a mismatch it prints both frames decoded side by side
// and writes input, expected and actual to a pcap in the test's output directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/packet.hpp"

namespace hrb::test {

// One header field: its dotted name ("ip.ttl", "icmp.quote.tcp.sport"), its value as text and
// where it lies in the frame.
struct Field {
  std::string name;
  std::string value;
  size_t offset = 0, len = 0;
};

// Ethernet, then IPv4 (options included), TCP, UDP or ICMP; an ICMP error's quoted IP header and
// the first bytes of its L4 header under "icmp.quote.". Checksums say whether they verify
// ("ok"/"bad") where the bytes they cover are all there. A frame that ends early ends with a
// "truncated" field; bytes past the IP packet are "trailer".
std::vector<Field> dissect(const Bytes& frame);

// Empty when the frames are equal byte for byte. Otherwise: the lengths, the first differing
// byte and the field it falls in, then every field of both frames side by side, with the
// differing ones marked '*'.
std::string frame_diff(const Bytes& expected, const Bytes& actual);

// Where tests write what helps debug a failure: $HRB_TEST_OUTPUT_DIR when set, else
// <build dir>/test-output.
std::filesystem::path test_output_dir();

// The packet tests' frame comparison. On a mismatch the message holds frame_diff() and the path
// of a pcap of {input, expected, actual} named after the running test
// (<test_output_dir>/<suite>.<test>[-n].pcap; '/' of parameterised names become '.').
::testing::AssertionResult same_frame(const Bytes& expected, const Bytes& actual,
                                      const Bytes& input);

}  // namespace hrb::test
