// Which protocol upgrades the proxy forwards: WebSocket only.
//
// Owns: the rule that makes a request a WebSocket upgrade (GET, HTTP/1.1,
// `Upgrade` listing `websocket`, `Connection` listing `upgrade`: RFC 6455
// 4.1), the rule that makes an upstream's 101 the switch to it, and the two
// fields the proxy writes for it in both directions (`Connection: Upgrade`,
// `Upgrade: websocket`), the client's own being hop-by-hop and dropped like
// any other. Every other upgrade (h2c, TLS/1.0, ...) stays dropped, its
// `Upgrade` with the hop-by-hop fields: the upstream never sees it, and a
// 101 to it is a failure (upstream_router).
//
// Pure functions over Beast heads, as http1_codec; leaves everything else
// to others: the heads themselves (http1_codec), the handing back of the
// upgraded connection (upstream_router), the bytes after the 101 (tunnel).
#pragma once

#include <string>

#include "http1_codec.hpp"

namespace userkey::lb::http1 {

/// `req` asks for WebSocket: GET, HTTP/1.1, an `Upgrade` field listing the
/// token `websocket` and a `Connection` field listing `upgrade` (tokens
/// case-insensitive, in any of several fields).
bool websocket_requested(const Request::header_type& req);

/// `res` switches to WebSocket: 101 with an `Upgrade` listing `websocket`.
bool websocket_accepted(const Response::header_type& res);

/// The fields that carry the upgrade on: `Connection: Upgrade` and
/// `Upgrade: websocket`, written into `head` (a serialized head ending in
/// its blank line) just before that blank line.
void add_websocket_fields(std::string& head);

}  // namespace userkey::lb::http1
