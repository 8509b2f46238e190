// The version and commit of the build. See userkey/core/build_info.hpp. The
// one file that includes the generated header, so a new commit recompiles
// nothing else.
#include "userkey/core/build_info.hpp"

#include "core/build_commit.hpp"  // generated in the build tree by cmake/BuildCommit.cmake

namespace userkey {

std::string_view build_version() { return USERKEY_BUILD_VERSION; }

std::string_view build_commit() { return USERKEY_BUILD_COMMIT; }

std::string version_line(std::string_view program) {
  std::string out(program);
  out.append(" ").append(build_version()).append(" (commit ").append(build_commit()).append(")");
  return out;
}

std::string build_info_metrics() {
  // Neither value needs escaping in a label: the version is CMake's
  // (digits and dots) and BuildCommit.cmake admits no quote or backslash.
  std::string out =
      "# HELP userkey_build_info The version and commit of this build, as labels; the value is always 1.\n"
      "# TYPE userkey_build_info gauge\n"
      "userkey_build_info{version=\"";
  out.append(build_version()).append("\",commit=\"").append(build_commit()).append("\"} 1\n");
  return out;
}

}  // namespace userkey
