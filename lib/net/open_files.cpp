// The process's descriptor limit: see open_files.hpp.
#include "net/open_files.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace userkey::net {

std::uint64_t raise_open_file_limit(std::string* error) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    if (error) *error = std::string("getrlimit: ") + std::strerror(errno);
    return 0;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      if (error) *error = std::string("setrlimit: ") + std::strerror(errno);
      return was;
    }
  }
  return rl.rlim_cur;
}

}  // namespace userkey::net
