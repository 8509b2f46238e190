// HTTP/1.1 message rules of the proxy, as pure functions over Beast messages:
// no sockets, no clocks, no shared state.
//
// Owns: what a request's framing may be and the decision when it may not
// (status, message, rejection reason), which headers are hop-by-hop, the
// request head sent upstream and the response head sent to the client (both
// written by hand into a reused buffer), the lb's own error responses,
// where the request id goes and which methods are idempotent. decide_request() runs the
// same rules over raw bytes, the entry point for a fuzzer.
//
// Leaves to others: reading and writing sockets, deadlines, counting
// rejections and keep-alive decisions (downstream_session), choosing an
// upstream and reading its response (upstream_router).
#pragma once

#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace userkey::lb::http1 {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// What the proxy does with a request, or with a failed read of one.
struct RequestDecision {
  enum class Action {
    forward,  ///< the framing is sound: read the body, then forward
    reject,   ///< answer `status` with `message`, then close
    drop,     ///< close without an answer
  };
  Action action = Action::forward;
  unsigned status = 0;
  std::string message;
  std::optional<Rejection> reason;  ///< counted in rejections_total when set (a drop may count too)

  bool forwards() const { return action == Action::forward; }
};

/// The head is read: ambiguous framing (Content-Length with
/// Transfer-Encoding, several Content-Length fields, a Transfer-Encoding
/// whose last coding is not chunked) and a body on GET / HEAD / OPTIONS /
/// TRACE are 400; a Content-Length over `max_body_bytes` is 413; then the
/// Host rules (check_host).
RequestDecision check_framing(const RequestParser& parser, std::uint64_t max_body_bytes);

/// RFC 9112 3.2: an HTTP/1.1 request without Host, any request with several
/// Host fields or a Host value that is no `host[:port]`, and an absolute-form
/// target whose authority is not the Host value (ports 80 / 443 of http /
/// https may be implied on either side) are 400.
RequestDecision check_host(const Request::header_type& head);

/// Bytes a client connection's read buffer may hold: a request head, one
/// chunk-size line with its extensions, or a trailer section must fit.
inline std::size_t read_buffer_limit(const LimitsConfig& limits) { return limits.max_header_bytes; }

/// Counts a chunked body's extensions against `limit` bytes for the whole
/// request (what one line may hold is bounded by read_buffer_limit); over
/// it, the read fails with errc::value_too_large. Extensions are otherwise
/// ignored: never forwarded.
class ChunkExtensionLimit {
public:
  explicit ChunkExtensionLimit(std::size_t limit) : left_(limit) {}
  ChunkExtensionLimit(const ChunkExtensionLimit&) = delete;
  ChunkExtensionLimit& operator=(const ChunkExtensionLimit&) = delete;
  /// Installs the count on `parser`, which keeps a reference to it: this
  /// object must outlive every read with that parser.
  void attach(RequestParser& parser);

private:
  std::size_t left_;
  std::function<void(std::uint64_t, boost::beast::string_view, boost::system::error_code&)> callback_;
};

/// A head's fields as read (their addresses), so that trailer fields can be
/// told from them afterwards: Beast adds trailers to the same fields, each
/// next to a head field of the same name if there is one.
using FieldSet = std::vector<const void*>;
FieldSet head_fields(const Request::header_type& head);
/// Trailer fields are never forwarded: every field not in `head` goes.
void drop_trailers(Request& req, const FieldSet& head);

/// Reading the head failed with `ec`; `got_some`: part of a head had arrived.
/// beast::error::timeout stands for the session's head deadline.
RequestDecision classify_head_error(const boost::system::error_code& ec, bool got_some);

/// Reading the body failed with `ec`. beast::error::timeout stands for the
/// session's body deadline (408). `unparsed`: what the read buffer held when
/// it overflowed (http::error::buffer_overflow): a chunk-size line that does
/// not end is 400, a trailer section that does not end 431. Extensions over
/// their total limit are 400.
RequestDecision classify_body_error(const boost::system::error_code& ec, std::string_view unparsed = {});

/// The decision for the first request in `bytes` as if a client had sent
/// them and then closed: parsed under `limits`' header and body limits, with
/// a read buffer of read_buffer_limit() and the chunk-extension limit, then
/// the framing and Host rules, then the body. Bytes after that request are
/// ignored. When it forwards and `forwarded` is given, that is the request
/// as the proxy forwards it (trailers dropped).
RequestDecision decide_request(std::string_view bytes, const LimitsConfig& limits, Request* forwarded = nullptr);

/// Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded, nor any header
/// the Connection header names (up to 8 such names; never Host), nor
/// Content-Length (the proxy writes its own framing).
class HopByHop {
public:
  template <class Fields>
  explicit HopByHop(const Fields& f) {
    namespace http = boost::beast::http;
    for (auto it = f.find(http::field::connection); it != f.end() && it->name() == http::field::connection; ++it)
      for (auto tok : http::token_list(it->value()))
        if (!boost::beast::iequals(tok, "close") && !boost::beast::iequals(tok, "keep-alive") &&
            named_count_ < named_.size())
          named_[named_count_++] = tok;
  }

  bool skip(boost::beast::http::field name, boost::beast::string_view name_string) const;

private:
  std::array<boost::beast::string_view, 8> named_{};
  std::size_t named_count_ = 0;
};

/// What the X-Forwarded-For sent upstream is made of.
struct ForwardedFor {
  /// The request's own X-Forwarded-For fields (joined in order into one
  /// list) come first; false: they are dropped (an untrusted client's
  /// claims, when the lb has trusted proxies to tell them apart).
  bool keep_chain = true;
  /// Appended last: the address the connection came from; empty = the
  /// client address.
  std::string_view peer;
};

/// How a request's body is framed upstream.
struct BodyFrame {
  enum class Kind {
    none,     ///< no body, no Content-Length
    length,   ///< Content-Length: `length`
    chunked,  ///< Transfer-Encoding: chunked (a streamed body the client sent in chunks)
  };
  Kind kind = Kind::none;
  std::uint64_t length = 0;
};

/// The request's identity as sent upstream. Made from a request id alone
/// (a string), nothing of the trace changes.
struct UpstreamIds {
  UpstreamIds() = default;
  UpstreamIds(std::string_view id) : request_id(id) {}  // NOLINT(google-explicit-constructor): by design
  UpstreamIds(const char* id) : request_id(id) {}       // NOLINT(google-explicit-constructor): by design
  UpstreamIds(std::string_view id, std::string_view trace, bool keep_state)
      : request_id(id), traceparent(trace), keep_tracestate(keep_state) {}

  /// Non-empty: replaces the client's X-Request-Id fields.
  std::string_view request_id;
  /// Non-empty: replaces the client's traceparent fields.
  std::string_view traceparent;
  /// With a traceparent: whether the client's tracestate fields go on (they
  /// belong to the client's trace) or are dropped (a new trace).
  bool keep_tracestate = true;
};

/// The request as sent upstream, head only, into `out` (cleared first):
/// hop-by-hop headers and Expect dropped, X-Forwarded-For as `xff` says
/// (by default: the client's X-Forwarded-For fields joined in order into one
/// list, then `client_ip`), X-Real-IP (`client_ip`) and X-Forwarded-Proto (`forwarded_proto`: "http", or "https"
/// for a request that came over TLS) set, a Host added when the client
/// (HTTP/1.0) sent none (the absolute-form target's authority, or empty),
/// framed as `frame` says (none given: by Content-Length, the size of
/// `req.body()`, written when there is a body or the client sent a
/// Content-Length), HTTP/1.1 keep-alive. X-Request-Id, traceparent and
/// tracestate as `ids` says (empty values leave the client's fields as they
/// are); the lb's own fields come after X-Forwarded-Proto. A WebSocket
/// upgrade (upgrade.hpp) ends with `Connection: Upgrade` and
/// `Upgrade: websocket`.
void serialize_upstream_request(std::string& out, const Request& req, std::string_view client_ip,
                                UpstreamIds ids, std::string_view forwarded_proto = "http",
                                ForwardedFor xff = {}, std::optional<BodyFrame> frame = std::nullopt);

/// The response head as sent to the client, into `out` (cleared first):
/// hop-by-hop headers dropped, framed by Content-Length (re-framed when the
/// upstream sent chunks or closed), the Connection header the client's
/// version needs. `head_request`: the answer to a HEAD keeps the upstream's
/// Content-Length for the body not sent. A non-empty `request_id` replaces
/// the response's X-Request-Id fields.
void serialize_client_response(std::string& out, const Response& res, unsigned client_version, bool keep_alive,
                               bool head_request, std::string_view request_id = {});

/// How a response body goes to the client: with a Content-Length, in chunks
/// (to an HTTP/1.1 client, when the upstream sent no length), or until the
/// connection closes (to an HTTP/1.0 client, likewise).
enum class BodyFraming { length, chunked, close };

/// The framing a streamed body goes to the client in: `length` when the
/// upstream said its length, else chunked to HTTP/1.1, close to HTTP/1.0.
BodyFraming client_framing(bool upstream_length, unsigned client_version);

/// serialize_client_response's head for a body sent after it: framed as
/// `framing` says (`length_text` is the Content-Length's value with
/// `length`), no framing field on a 1xx, 204 or 304. `keep_alive` must be
/// false with `close`.
void serialize_client_head(std::string& out, const Response& res, unsigned client_version, bool keep_alive,
                           BodyFraming framing, std::string_view length_text, std::string_view request_id = {});

/// A chunk's size line ("<hex>\r\n") appended to `out`.
void append_chunk_size(std::string& out, std::size_t size);

/// The lb's own answer: {"error":"<message>"} as JSON, Server: userkey-lb,
/// Retry-After when `retry_after` is positive.
Response make_error_response(unsigned status, std::string_view message, unsigned version,
                             std::chrono::seconds retry_after = std::chrono::seconds(0));

/// Methods a failed attempt may be retried with on another upstream.
inline bool idempotent(boost::beast::http::verb v) {
  using boost::beast::http::verb;
  switch (v) {
    case verb::get:
    case verb::head:
    case verb::options:
    case verb::put:
    case verb::delete_:
    case verb::trace: return true;
    default: return false;
  }
}

}  // namespace userkey::lb::http1
