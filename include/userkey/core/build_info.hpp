// What was built: the project's version (CMake's project version) and the
// commit it was built from, for --version and the userkey_build_info gauge
// of every /metrics page.
//
// The commit is read at build time (cmake/BuildCommit.cmake): `git describe
// --always --dirty` of the source tree without tags ("abc1234", or
// "abc1234-dirty" with uncommitted changes), what -DUSERKEY_BUILD_COMMIT
// names, or "unknown" outside a git checkout (a tarball, the docker build).
//
// Thread-safety: constants; any thread.
#pragma once

#include <string>
#include <string_view>

namespace userkey {

/// The project's version, e.g. "0.1.0".
std::string_view build_version();

/// The commit built from, e.g. "abc1234", "abc1234-dirty" or "unknown";
/// letters, digits and ". _ + -" only.
std::string_view build_commit();

/// What --version prints: "PROGRAM VERSION (commit COMMIT)", e.g.
/// "userkey-lb 0.1.0 (commit abc1234)" (no newline).
std::string version_line(std::string_view program);

/// The userkey_build_info gauge in Prometheus text format 0.0.4: its HELP
/// and TYPE lines and one sample, always 1,
///   userkey_build_info{version="0.1.0",commit="abc1234"} 1
/// each line ending with a newline, for a /metrics page to append.
std::string build_info_metrics();

}  // namespace userkey
