#pragma once
// FNV-1a (64 bit): a short, stable name for a string (kube-proxy-style chain names, the history
// store's run digests and environment fingerprints). Not cryptographic.
#include <cstdint>
#include <string_view>

namespace hrb {

inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace hrb
