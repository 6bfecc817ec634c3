#pragma once
// Whole text files: the one place that reads and writes them.
#include <optional>
#include <string>

namespace hrb {

// The file's contents; throws Error(kBadInput) "cannot read WHAT PATH: reason".
std::string read_text_file(const std::string& path, const std::string& what);

// The file's contents, or nullopt when it cannot be opened.
std::optional<std::string> try_read_text_file(const std::string& path);

// Writes `text` to `path` (truncating); throws Error "cannot write PATH".
void write_text_file(const std::string& path, const std::string& text);

}  // namespace hrb
