// The PROXY protocol header (v1/v2, --proxy-protocol) that starts a client
// connection: who may send one, and taking it off the connection.
//
// Owns: the rule that a PROXY header is believed only from a trusted peer
// (--trusted-proxies; with none listed, from any peer, as HAProxy's
// accept-proxy: then only a firewall keeps others from naming their own
// address), the refusal of any other peer before a byte is read from it
// (closed, counted as untrusted, logged at most once per interval), and the
// read: within header_timeout of accept, what has arrived is peeked and
// parsed; bytes that are surely header (it is not complete yet) are taken,
// and once it is complete exactly its rest, so what follows (the request, or
// a TLS hello) stays for the session (and a peek finds the client's close).
// Its source becomes the connection's client_ip, before admission. A
// connection without a valid header is closed unanswered and counted.
//
// Leaves to others: the header's wire format (proxy_protocol), admission
// of the address it names and serving (downstream_session).
#pragma once

#include "io_types.hpp"

#include "client_connection.hpp"

namespace userkey::lb::engine {

/// Whether `c`'s TCP peer may name its client in a PROXY header. When not,
/// counts it (proxy_header_failures{reason="untrusted"}) and logs it at most
/// once per interval; the caller closes the connection unread.
bool proxy_header_allowed(ClientConnection& c);

/// Reads and takes the PROXY header that starts `c` and makes its source
/// `c.client_ip`. False: the connection is to be closed (no valid header in
/// time; counted).
awaitable<bool> read_proxy_header(ClientConnection& c);

}  // namespace userkey::lb::engine
