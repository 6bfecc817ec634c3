#pragma once
// What the fuzz targets share: what counts as a finding. A parser may reject any input by
// throwing hrb::Error (its contract: the CLI prints the message and exits with the error's code);
// anything else that escapes — another exception type, a crash, a hang, a sanitizer report — is a
// bug. Other exceptions are not caught, so they terminate the process and libFuzzer records the
// input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace hrb::fuzz {

inline std::string text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// A file of the source tree (fixtures the targets use as fixed context).
inline std::string source_path(const std::string& rel) {
  return std::string(HRB_SOURCE_DIR) + "/" + rel;
}

template <class F>
void only_hrb_errors(F&& f) {
  try {
    f();
  } catch (const hrb::Error& e) {
    // The message is what a user sees: build it (it must not crash either).
    volatile size_t n = std::string(e.what()).size();
    (void)n;
  }
}

}  // namespace hrb::fuzz
