// How a client connection's bytes are reached: plain TCP, or TLS over it.
//
// Owns: the TLS client connection (a ClientConnection with its TLS layer,
// made from the TlsContext current at accept: a certificate reload does not
// touch open connections), the two layers the session code is written
// once over (PlainLayer: the socket itself, nothing of TLS; TlsLayer: the
// connection's TlsSocketStream, OpenSSL on the socket), and the handshake,
// bounded by the first head's deadline (header_timeout from accept),
// counted, and failed ones counted by why.
//
// Leaves to others: the connection's lasting state (client_connection),
// the TLS policy and certificate (tls_context), OpenSSL's socket I/O
// (tls_stream), what is read and written (downstream_session).
#pragma once

#include "io_types.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>
#include <string_view>

#include "client_connection.hpp"
#include "tls_context.hpp"
#include "tls_stream.hpp"

namespace userkey::lb::engine {

// A connection of the TLS listener: its TLS layer runs over the connection's
// own socket, so the registry's cancels and the deadline sweep reach it like
// any other. Destroyed before the socket it uses (a member of the derived
// class).
class TlsClientConnection : public ClientConnection {
public:
  TlsClientConnection(const SessionContext& c, Socket sock, std::string ip, std::int64_t& open_now,
                      std::shared_ptr<TlsContext> tls)
      : ClientConnection(c, std::move(sock), std::move(ip), open_now),
        tls_context(std::move(tls)),
        stream(socket, *tls_context) {}

  // The context this connection was made with: a reload gives new
  // connections another one, this one keeps its own.
  std::shared_ptr<TlsContext> tls_context;
  TlsSocketStream stream;
  bool handshake_done = false;
};

// After a response: what the client has sent since, taken without waiting.
// Under load the next request is usually in by the time the response's
// write has completed, and one read straight into the buffer does what a
// readiness check (FIONREAD) and then the read did in two system calls.
enum class ReadNow { data, nothing, closed };

// How a session reaches its client's bytes; the session code is written once
// over these. Plain: the socket itself, nothing held above it.
struct PlainLayer {
  using Connection = ClientConnection;
  static constexpr bool secure = false;
  static constexpr std::string_view forwarded_proto = "http";
  static Socket& stream(Connection& c) { return c.socket; }
  static bool holds_input(Connection&) { return false; }
  static void settle(error_code&) {}
  static std::string_view version(Connection&) { return {}; }
  static void going_idle(Connection&) {}
  static ReadNow read_now(Connection& c, asio::mutable_buffer into, std::size_t& n) {
    const ssize_t got = ::recv(c.socket.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
    if (got > 0) {
      n = static_cast<std::size_t>(got);
      return ReadNow::data;
    }
    if (got == 0) return ReadNow::closed;  // (at a request boundary: a quiet close, as an idle one)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? ReadNow::nothing : ReadNow::closed;
  }
};

// TLS: the connection's TLS stream, OpenSSL on the socket. Client bytes can
// wait above the socket in OpenSSL (read ahead, decrypted or not).
struct TlsLayer {
  using Connection = TlsClientConnection;
  static constexpr bool secure = true;
  static constexpr std::string_view forwarded_proto = "https";
  static TlsSocketStream& stream(Connection& c) { return c.stream; }
  static bool holds_input(Connection& c) { return c.stream.has_pending(); }
  static void going_idle(Connection& c) { c.stream.release_idle_memory(); }
  // (OpenSSL wanting to write first, to answer a key update say: `data`
  // with nothing taken, and the read of the next head does that write.)
  static ReadNow read_now(Connection& c, asio::mutable_buffer into, std::size_t& n) {
    const auto step = c.stream.try_read(into.data(), into.size());
    if (step.ec) return ReadNow::closed;
    if (step.want == TlsSocketStream::Want::read) return ReadNow::nothing;
    n = step.bytes;
    return ReadNow::data;
  }
  // A read's error as the codec should judge it: a client that closed
  // without close_notify (most do), or whose TLS broke, is gone (end of
  // stream), not a bad request to answer over a stream that no longer works.
  static void settle(error_code& ec) {
    if (ec == asio::ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category())
      ec = asio::error::eof;
  }
  // The negotiated version ("TLSv1.3"): a static string of OpenSSL's.
  static std::string_view version(Connection& c) { return SSL_get_version(c.stream.native_handle()); }
};

template <class Layer>
using ClientPtr = std::shared_ptr<typename Layer::Connection>;

// Whether a request's bytes are already here (buffered above the socket or
// readable from it): then it is served without going idle.
template <class Layer>
inline bool input_waiting(typename Layer::Connection& c, error_code& ec) {
  return Layer::holds_input(c) || (c.socket.available(ec) > 0 && !ec);
}

// After a response: takes what the client has sent since into `buffer`,
// without waiting (see ReadNow).
template <class Layer>
inline ReadNow read_now_into(typename Layer::Connection& c, beast::flat_buffer& buffer) {
  const std::size_t room = beast::read_size(buffer, 65536);
  if (room == 0) return ReadNow::data;  // (full: there is a request to parse)
  std::size_t n = 0;
  const ReadNow result = Layer::read_now(c, buffer.prepare(room), n);
  if (result == ReadNow::data) buffer.commit(n);
  return result;
}

/// Why a handshake failed, from its error.
TlsFailure classify_handshake_error(const error_code& ec);

/// The TLS handshake of a new connection, within the deadline of its first
/// head (header_timeout from accept), so a client that never starts or
/// never finishes it is cut like a slow head; counted. False: the
/// connection ends (timed out, not TLS at all, no common version or suite,
/// closed).
awaitable<bool> handshake(TlsClientConnection& c);

}  // namespace userkey::lb::engine
