#include "core/file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace hrb {

std::optional<std::string> try_read_text_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string read_text_file(const std::string& path, const std::string& what) {
  errno = 0;
  auto text = try_read_text_file(path);
  if (!text)
    throw Error(
        "cannot read " + what + " " + path + (errno ? ": " + std::string(strerror(errno)) : ""),
        ExitCode::kBadInput);
  return *text;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  if (!f) throw Error("cannot write " + path);
}

}  // namespace hrb
