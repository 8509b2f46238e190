// The lb's own answers on a client connection: every reply the lb makes
// itself (a refusal, a bad request, a limit) is written here, from the
// status and message it is given or from the codec's decision.
//
// Owns: the error response's shape (http1::make_error_response: JSON body,
// Retry-After, the request id echoed), no body for a HEAD, the write's
// 5 s deadline, and the lingering close after an answer that ends the
// connection: the client may still be sending what was refused (a huge head
// or body), and closing with unread data would reset the connection and
// could destroy the answer before the client reads it, so the lb stops
// sending, then reads and discards for up to 1 s or 256 KiB (the shared
// net::linger_close).
//
// Templates over the session's layer (client_transport.hpp), instantiated
// by downstream_session.cpp. The lingering close works on the socket under
// any layer (a TLS client is not sent close_notify first: the answer is
// framed, so it is complete).
//
// Leaves to others: deciding to answer (admission, the codec, the router),
// the connection itself (client_connection).
#pragma once

#include "io_types.hpp"

#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <string>
#include <string_view>

#include "client_transport.hpp"
#include "http1_codec.hpp"
#include "net/lingering_close.hpp"
#include "refusal_log.hpp"

namespace userkey::lb::engine {

// A refusal written before any request is read: when the request is already
// there and is a HEAD, the answer must have no body.
inline bool peeks_head_request(Socket& client) {
  char first[5];
  const ssize_t n = ::recv(client.native_handle(), first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(sizeof first) && std::string_view(first, sizeof first) == "HEAD ";
}

// GCC 12 at -O2 takes Asio's awaitable frame operator new / delete pair for
// a mismatch (see downstream_session.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// The lb's own answer. `head_request`: headers only (a HEAD response has no
// body, whatever its Content-Length says). `request_id`: the request's, when
// its head was read.
//
// The lingering close works on the socket under any layer (a TLS client is
// not sent close_notify first: the answer is framed, so it is complete).
template <class Layer>
awaitable<void> write_error(typename Layer::Connection& c, unsigned status, std::string_view message, bool keep_alive,
                            unsigned version = 11, std::chrono::seconds retry_after = std::chrono::seconds(0),
                            bool head_request = false, std::string_view request_id = {}) {
  const Response res = http1::make_error_response(status, message, version, retry_after);
  std::string head;
  http1::serialize_client_response(head, res, version, keep_alive, false, request_id);
  const std::array<asio::const_buffer, 2> out{
      asio::buffer(head), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
  c.deadline_after(std::chrono::seconds(5));
  c.ctx.stats.answered(status);
  error_code ec;
  co_await asio::async_write(Layer::stream(c), out, nothrow(ec));
  if (c.clear_deadline()) ec = asio::error::timed_out;
  // Lingering close (net/lingering_close.hpp): the client may still be
  // sending what we refused (a huge header or body).
  if (!keep_alive && !ec) co_await net::linger_close(c.socket);
}

// A refusal for `why`, answered `status` (0: closed unanswered): counted,
// and logged once per reason per interval (refusal_log).
template <class Connection>
void count_refusal(Connection& c, Rejection why, unsigned status) {
  c.ctx.stats.reject(why);
  c.ctx.refusals.note(c.ctx.log, why, status, c.client_ip);
}

// A request the lb answers itself (or drops), counted; then the connection
// closes. `head_request`: the request was a HEAD (no body in the answer).
template <class Layer>
awaitable<void> answer(typename Layer::Connection& c, const http1::RequestDecision& d, bool head_request,
                       std::string_view request_id = {}) {
  if (d.reason)
    count_refusal(c, *d.reason, d.action == http1::RequestDecision::Action::reject ? d.status : 0);
  if (d.action == http1::RequestDecision::Action::reject)
    co_await write_error<Layer>(c, d.status, d.message, false, 11, std::chrono::seconds(0), head_request, request_id);
}

// A plain connection refused before any request is read: answered, then
// closed. (A TLS one is closed before its handshake: see admit_and_serve.)
template <class Layer>
awaitable<void> refuse(ClientPtr<Layer> conn, Refusal refused, bool head_request) {
  co_await write_error<Layer>(*conn, refused.status, refused.message, false, 11, refused.retry_after, head_request);
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
