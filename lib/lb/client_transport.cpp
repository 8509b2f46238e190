// Plain and TLS client connections, and the handshake: see
// client_transport.hpp.
#include "client_transport.hpp"

#include <spdlog/spdlog.h>

#include <openssl/err.h>

namespace userkey::lb::engine {

// GCC 12 at -O2 takes Asio's awaitable frame operator new / delete pair for
// a mismatch (see downstream_session.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// OpenSSL's reason when it gave one (it names "http request" when the first
// bytes were plain HTTP), else the socket's.
TlsFailure classify_handshake_error(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) return TlsFailure::plain_http;
    return TlsFailure::protocol;
  }
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::operation_aborted)
    return TlsFailure::closed;
  return TlsFailure::protocol;
}

awaitable<bool> handshake(TlsClientConnection& c) {
  c.busy = true;
  c.deadline_at(c.idle_since + c.ctx.cfg.limits.header_timeout);
  error_code ec;
  co_await c.stream.async_handshake(nothrow(ec));
  const bool timed_out = c.clear_deadline();
  c.busy = false;
  if (timed_out || ec) {
    const TlsFailure why = timed_out ? TlsFailure::timeout : classify_handshake_error(ec);
    c.ctx.stats.tls_failed(why);
    // (OpenSSL's reason names no secret; the client's address is in the line.)
    c.ctx.log.debug("TLS handshake with {} failed ({}): {}", c.client_ip, to_string(why),
                    timed_out ? "timed out" : ec.message());
    co_return false;
  }
  c.ctx.stats.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  c.handshake_done = true;
  co_return true;
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
