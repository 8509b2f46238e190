// Socket options for cpp-httplib listeners (internal).
//
// cpp-httplib's default sets SO_REUSEPORT, which lets a second process bind a
// port that is already serving and silently take half its connections. Ours
// set only SO_REUSEADDR (restart without waiting out TIME_WAIT), so a taken
// port is a start-up error.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

namespace userkey::detail {

inline void exclusive_socket_options(socket_t sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace userkey::detail
