#include "support/pcap.hpp"

#include <cstdint>
#include <fstream>
#include <stdexcept>

namespace hrb::test {

void write_pcap(const std::filesystem::path& path, const std::vector<Bytes>& frames) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path.string());
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  u32(0xa1b2c3d4);  // native byte order, microseconds
  u16(2);           // version 2.4
  u16(4);
  u32(0);  // thiszone
  u32(0);  // sigfigs
  u32(65535);
  u32(1);  // LINKTYPE_ETHERNET
  uint32_t t = 0;
  for (const auto& b : frames) {
    u32(t++);
    u32(0);
    u32(static_cast<uint32_t>(b.size()));
    u32(static_cast<uint32_t>(b.size()));
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace hrb::test
