// One backend client connection, from accept to close (internal to
// BackendServer).
//
// Owns: TCP_NODELAY, the connection's place in the set stop() looks at
// (idle connections are closed at stop, busy ones finish their request),
// the keep-alive loop (up to `keep_alive_max_requests`, `Connection: close`
// once stopping), refusing a request that cannot go on (malformed, too
// large) with the router's error and a lingering close (net/), writing the
// answer (headers only for a HEAD; a well-formed X-Request-Id echoed),
// counting it and the access log line (with the request id and the trace-id
// of a valid traceparent, core/request_id.hpp and core/trace_context.hpp).
//
// Leaves to others: reading a request (request_reader.hpp), where it is
// answered (route_dispatch.hpp), accepting (net/accept_loop.hpp).
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <list>

#include "backend/route_dispatch.hpp"

namespace spdlog {
class logger;
}

namespace userkey::detail {

/// The open connections, as stop() sees them. Loop thread only.
class Connections {
public:
  struct Entry {
    boost::beast::tcp_stream* stream;
    bool busy = false;
  };
  using Handle = std::list<Entry>::iterator;

  Handle add(boost::beast::tcp_stream& stream);
  void remove(Handle h) { entries_.erase(h); }
  /// Stops the idle ones (their wait for a request is cancelled).
  void cancel_idle();

private:
  std::list<Entry> entries_;
};

/// What every connection of one server shares; it outlives them all.
struct ConnectionContext {
  const BackendServerConfig& cfg;
  spdlog::logger* log;
  BackendMetrics& metrics;
  Dispatcher& dispatch;
  Connections& connections;
  const bool& stopping;  ///< set on the loop by stop()
};

/// Serves one accepted connection until it ends, then closes it.
boost::asio::awaitable<void> serve_connection(ConnectionContext& ctx, boost::asio::ip::tcp::socket sock,
                                              Listener listener);

}  // namespace userkey::detail
