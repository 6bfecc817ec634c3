#include "core/error.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hrb {

SysError::SysError(int err, const std::string& what, std::source_location where)
    : Error(fmt::format("{}: {} (errno {}) [{}:{}]", what, std::strerror(err), err,
                        std::filesystem::path(where.file_name()).filename().string(),
                        where.line())),
      err_(err) {}

void throw_errno(const std::string& what, std::source_location where) {
  throw SysError(errno, what, where);
}

}  // namespace hrb
