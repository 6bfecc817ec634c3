#pragma once
// A pcap file of test frames, to open in Wireshark or tcpdump -r when a packet test fails.
#include <filesystem>
#include <vector>

#include "support/packet.hpp"

namespace hrb::test {

// Writes `frames` to `path` (creating its directory) as a classic pcap file: native byte order,
// microsecond timestamps, link type 1 (Ethernet). Frame i is stamped i seconds, so a reader shows
// them in the order given. Throws std::runtime_error when the file cannot be written.
void write_pcap(const std::filesystem::path& path, const std::vector<Bytes>& frames);

}  // namespace hrb::test
