// Fuzz target: the mongodump reader on corrupt files. The input is the file
// (an in-memory file, no disk); it is either read, with every record
// carrying an id in range, or refused with LoadError naming the problem.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "userkey/backend/bson_file_repository.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = memfd_create("dump.bson", 0);
  if (fd < 0) return 0;
  std::size_t written = 0;
  while (written < size) {
    const auto n = ::write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    std::size_t skipped = 0;
    for (const auto& r : userkey::read_bson_dump(path, &skipped))
      if (r.user_id < 0 || r.user_id > userkey::kMaxUserId) std::abort();
  } catch (const userkey::LoadError& e) {
    if (std::string(e.what()).empty()) std::abort();
  }
  ::close(fd);
  return 0;
}
