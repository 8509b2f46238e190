// The process's descriptor limit (private to the library: both servers'
// start-up).
//
// Owns: raising the soft RLIMIT_NOFILE to the hard limit, as nginx's
// worker_rlimit_nofile does: every open client connection holds a
// descriptor (the lb's two), and the usual soft limit (1024) is below what
// an event loop can hold.
//
// Leaves to others: logging the outcome.
#pragma once

#include <cstdint>
#include <string>

namespace userkey::net {

/// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the soft limit
/// in force afterwards; `error`, when given, receives why it could not be
/// raised (left empty otherwise).
std::uint64_t raise_open_file_limit(std::string* error = nullptr);

}  // namespace userkey::net
