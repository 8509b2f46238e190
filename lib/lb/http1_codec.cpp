// HTTP/1.1 message rules of the proxy: see http1_codec.hpp. Heads are written
// by hand into a buffer the caller reuses for a whole connection: no Beast
// serializer and no edits to the parsed field containers.
#include "http1_codec.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>

#include "core/escape.hpp"
#include "upgrade.hpp"

namespace userkey::lb::http1 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

namespace {

void append_sv(std::string& out, beast::string_view v) { out.append(v.data(), v.size()); }

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}

bool iequal(beast::string_view a, beast::string_view b) { return beast::iequals(a, b); }
bool iequal_sv(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

RequestDecision reject(unsigned status, std::string message, Rejection why) {
  return {RequestDecision::Action::reject, status, std::move(message), why};
}

RequestDecision drop(std::optional<Rejection> why = std::nullopt) {
  return {RequestDecision::Action::drop, 0, {}, why};
}

}  // namespace

// ---------------------------------------------------------------------------
// Request framing

RequestDecision check_framing(const RequestParser& parser, std::uint64_t max_body_bytes) {
  const auto& h = parser.get();
  // Ambiguous framing (request smuggling): both Content-Length and
  // Transfer-Encoding, or several Content-Length fields. A Transfer-Encoding
  // whose last coding is not chunked leaves the body length unknowable:
  // RFC 9112 6.3 says 400.
  const auto cl = h.count(http::field::content_length);
  const bool te = h.count(http::field::transfer_encoding) > 0;
  if ((cl > 0 && te) || cl > 1 || (te && !parser.chunked()))
    return reject(400, "ambiguous message framing", Rejection::bad_request);
  // A body on a method whose body servers ignore would be read by the
  // backend as a second request on a pooled connection: refuse it.
  const auto method = h.method();
  const bool has_body = te || (parser.content_length() && *parser.content_length() > 0);
  if (has_body && (method == http::verb::get || method == http::verb::head || method == http::verb::options ||
                   method == http::verb::trace))
    return reject(400, "a body is not allowed on this method", Rejection::bad_request);
  if (parser.content_length() && *parser.content_length() > max_body_bytes)
    return reject(413, "payload too large", Rejection::body_too_large);
  return check_host(h);
}

namespace {

// uri-host [ ":" port ]: reg-name, IPv4 or IP-literal characters only.
bool valid_host_value(std::string_view v) {
  for (const char c : v) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-._~!$&'()*+,;=%[]:").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// An absolute-form target's scheme and authority (scheme "://" authority
// [path...]); nullopt for any other form.
std::optional<std::pair<std::string_view, std::string_view>> absolute_form(std::string_view target) {
  const auto sep = target.find("://");
  if (target.empty() || target.front() == '/' || sep == std::string_view::npos || target.find_first_of("/?#") < sep)
    return std::nullopt;
  const std::string_view rest = target.substr(sep + 3);
  return std::pair{target.substr(0, sep), rest.substr(0, rest.find_first_of("/?#"))};
}

// `authority` without the scheme's default port (":80" for http, ":443" for https).
std::string_view without_default_port(std::string_view authority, std::string_view scheme) {
  const std::string_view port = iequal_sv(scheme, "https") ? ":443" : iequal_sv(scheme, "http") ? ":80" : "";
  if (!port.empty() && authority.size() > port.size() && authority.ends_with(port))
    authority.remove_suffix(port.size());
  return authority;
}

}  // namespace

RequestDecision check_host(const Request::header_type& h) {
  const auto hosts = h.count(http::field::host);
  if (hosts > 1) return reject(400, "more than one Host field", Rejection::bad_request);
  if (hosts == 0) {
    if (h.version() >= 11) return reject(400, "missing Host field", Rejection::bad_request);
    return {};
  }
  const auto host_value = h[http::field::host];
  const std::string_view host(host_value.data(), host_value.size());
  if (!valid_host_value(host)) return reject(400, "invalid Host field", Rejection::bad_request);
  const auto absolute = absolute_form(std::string_view(h.target().data(), h.target().size()));
  if (!absolute) return {};
  const auto [scheme, authority] = *absolute;
  if (!iequal_sv(without_default_port(authority, scheme), without_default_port(host, scheme)))
    return reject(400, "Host does not match the request target", Rejection::bad_request);
  return {};
}

void ChunkExtensionLimit::attach(RequestParser& parser) {
  // Beast keeps a reference to this callback, so it lives in this object.
  callback_ = [this](std::uint64_t, beast::string_view extensions, error_code& ec) {
    if (extensions.size() > left_) {
      ec = make_error_code(boost::system::errc::value_too_large);
      return;
    }
    left_ -= extensions.size();
  };
  parser.on_chunk_header(callback_);
}

FieldSet head_fields(const Request::header_type& head) {
  FieldSet out;
  for (const auto& f : head) out.push_back(&f);
  std::sort(out.begin(), out.end());
  return out;
}

void drop_trailers(Request& req, const FieldSet& head) {
  for (auto it = req.begin(); it != req.end();) {
    if (std::binary_search(head.begin(), head.end(), static_cast<const void*>(&*it))) ++it;
    else it = req.erase(it);
  }
}

RequestDecision classify_head_error(const error_code& ec, bool got_some) {
  if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted) return drop();
  if (ec == beast::error::timeout) {
    // Nothing at all is an idle keep-alive connection timing out; a partial
    // head is a slow client.
    if (got_some) return reject(408, "request header timeout", Rejection::header_timeout);
    return drop();
  }
  if (ec == http::error::header_limit)
    return reject(431, "request header fields too large", Rejection::header_too_large);
  if (ec == http::error::body_limit)  // Content-Length over the limit
    return reject(413, "payload too large", Rejection::body_too_large);
  if (ec == asio::error::connection_reset || ec == asio::error::eof || ec == http::error::partial_message)
    return drop();
  return reject(400, "bad request: " + ec.message(), Rejection::bad_request);
}

RequestDecision classify_body_error(const error_code& ec, std::string_view unparsed) {
  if (ec == beast::error::timeout) return reject(408, "request body timeout", Rejection::body_timeout);
  if (ec == http::error::body_limit) return reject(413, "payload too large", Rejection::body_too_large);
  if (ec == http::error::buffer_overflow) {
    // The buffer holds what the parser could not take: a chunk-size line
    // (after the CRLF that ended the chunk before it) that does not end, or
    // a last-chunk line and a trailer section that does not end.
    if (unparsed.starts_with("\r\n")) unparsed.remove_prefix(2);
    if (unparsed.find("\r\n") != std::string_view::npos)
      return reject(431, "request trailer fields too large", Rejection::header_too_large);
    return reject(400, "chunk extension too long", Rejection::bad_request);
  }
  if (ec == boost::system::errc::value_too_large)
    return reject(400, "chunk extensions too long", Rejection::bad_request);
  if (ec != http::error::end_of_stream && ec != asio::error::connection_reset)
    return reject(400, "bad request: " + ec.message(), Rejection::bad_request);
  return drop();
}

RequestDecision decide_request(std::string_view bytes, const LimitsConfig& limits, Request* forwarded) {
  RequestParser parser;
  parser.header_limit(limits.max_header_bytes);
  parser.body_limit(limits.max_body_bytes);
  ChunkExtensionLimit extensions(limits.max_header_bytes);
  extensions.attach(parser);
  // The session's read buffer holds at most `cap` unparsed bytes: a parser
  // that takes nothing from a full buffer is an overflow.
  const std::size_t cap = read_buffer_limit(limits);
  std::size_t used = 0;
  // Feeds what is left until `done`; running out of bytes is the client
  // closing there (as Beast's read algorithms report it).
  auto feed = [&](auto done) {
    error_code ec;
    while (!done()) {
      const std::size_t avail = std::min(bytes.size() - used, cap);
      const std::size_t n = parser.put(asio::const_buffer(bytes.data() + used, avail), ec);
      used += n;
      if (ec == http::error::need_more) ec = {};
      if (ec) break;
      if (n > 0) continue;
      if (avail == cap) return error_code(http::error::buffer_overflow);
      if (!parser.got_some()) return error_code(http::error::end_of_stream);
      parser.put_eof(ec);
      if (!ec && !done()) ec = http::error::partial_message;
      break;
    }
    return ec;
  };
  if (auto ec = feed([&] { return parser.is_header_done(); })) return classify_head_error(ec, parser.got_some());
  if (auto framing = check_framing(parser, limits.max_body_bytes); !framing.forwards()) return framing;
  const FieldSet head = parser.chunked() ? head_fields(parser.get()) : FieldSet{};
  parser.eager(true);
  if (auto ec = feed([&] { return parser.is_done(); }))
    return classify_body_error(ec, bytes.substr(used, std::min(bytes.size() - used, cap)));
  if (forwarded) {
    const bool chunked = parser.chunked();
    *forwarded = parser.release();
    if (chunked) drop_trailers(*forwarded, head);
  }
  return {};
}

// ---------------------------------------------------------------------------
// Headers and heads

bool HopByHop::skip(http::field name, beast::string_view name_string) const {
  switch (name) {
    case http::field::host: return false;  // end-to-end, whatever Connection names
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::content_length:  // the proxy writes its own framing
      return true;
    default: break;
  }
  for (std::size_t i = 0; i < named_count_; ++i)
    if (iequal(named_[i], name_string)) return true;
  return false;
}

void serialize_upstream_request(std::string& out, const Request& req, std::string_view client_ip,
                                UpstreamIds ids, std::string_view forwarded_proto, ForwardedFor xff,
                                std::optional<BodyFrame> frame) {
  out.clear();
  append_sv(out, req.method_string());
  out += ' ';
  append_sv(out, req.target());
  out += " HTTP/1.1\r\n";
  const HopByHop hop(req.base());
  bool has_xff = false;
  bool has_host = false;
  for (const auto& f : req.base()) {
    const auto name = f.name_string();
    if (hop.skip(f.name(), name)) continue;
    if (iequal(name, "X-Forwarded-For")) {
      has_xff = true;
      continue;
    }
    if (iequal(name, "X-Real-IP") || iequal(name, "X-Forwarded-Proto")) continue;
    if (f.name() == http::field::expect) continue;  // the lb already has the whole body
    if (!ids.request_id.empty() && iequal(name, "X-Request-Id")) continue;  // ours replaces it
    if (!ids.traceparent.empty() &&
        (iequal(name, "traceparent") || (!ids.keep_tracestate && iequal(name, "tracestate"))))
      continue;  // ours replaces it; the client's tracestate goes with its own trace only
    if (f.name() == http::field::host) has_host = true;
    append_sv(out, name);
    out += ": ";
    append_sv(out, f.value());
    out += "\r\n";
  }
  // The upstream request is HTTP/1.1, which needs a Host: an HTTP/1.0
  // client's request may have none. Then it is the absolute-form target's
  // authority, or empty (RFC 9112 3.2).
  if (!has_host) {
    const auto absolute = absolute_form(std::string_view(req.target().data(), req.target().size()));
    append_header(out, "Host", absolute ? absolute->second : std::string_view{});
  }
  // Several X-Forwarded-For fields are one comma list (RFC 9110 5.3), in order.
  out += "X-Forwarded-For: ";
  if (has_xff && xff.keep_chain) {
    for (const auto& f : req.base()) {
      if (f.value().empty() || !iequal(f.name_string(), "X-Forwarded-For")) continue;
      append_sv(out, f.value());
      out += ", ";
    }
  }
  out.append(xff.peer.empty() ? client_ip : xff.peer);
  out += "\r\n";
  append_header(out, "X-Real-IP", client_ip);
  append_header(out, "X-Forwarded-Proto", forwarded_proto);
  if (!ids.request_id.empty()) append_header(out, "X-Request-Id", ids.request_id);
  if (!ids.traceparent.empty()) append_header(out, "traceparent", ids.traceparent);
  if (!frame) {
    frame.emplace();
    // Assigned, not emplace(kind, size): clang 14 (the fuzz preset) has no
    // parenthesized aggregate initialization.
    if (!req.body().empty() || req.has_content_length()) frame = BodyFrame{BodyFrame::Kind::length, req.body().size()};
  }
  if (frame->kind == BodyFrame::Kind::length) {
    out += "Content-Length: ";
    out += std::to_string(frame->length);
    out += "\r\n";
  } else if (frame->kind == BodyFrame::Kind::chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  out += "\r\n";
  // A WebSocket upgrade goes on (upgrade.hpp); any other was dropped above.
  if (websocket_requested(req.base())) add_websocket_fields(out);
}

void serialize_client_response(std::string& out, const Response& res, unsigned client_version, bool keep_alive,
                               bool head_request, std::string_view request_id) {
  std::string length;
  if (head_request) {
    auto cl = res.find(http::field::content_length);
    length = cl != res.end() ? std::string(cl->value()) : std::string("0");
  } else {
    length = std::to_string(res.body().size());
  }
  serialize_client_head(out, res, client_version, keep_alive, BodyFraming::length, length, request_id);
}

BodyFraming client_framing(bool upstream_length, unsigned client_version) {
  if (upstream_length) return BodyFraming::length;
  return client_version == 10 ? BodyFraming::close : BodyFraming::chunked;
}

void serialize_client_head(std::string& out, const Response& res, unsigned client_version, bool keep_alive,
                           BodyFraming framing, std::string_view length_text, std::string_view request_id) {
  out.clear();
  out += client_version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out += ' ';
  append_sv(out, res.reason());
  out += "\r\n";
  const HopByHop hop(res.base());
  for (const auto& f : res.base()) {
    if (hop.skip(f.name(), f.name_string())) continue;
    if (!request_id.empty() && iequal(f.name_string(), "X-Request-Id")) continue;  // ours replaces it
    append_sv(out, f.name_string());
    out += ": ";
    append_sv(out, f.value());
    out += "\r\n";
  }
  const unsigned code = res.result_int();
  if (code / 100 != 1 && code != 204 && code != 304) {
    if (framing == BodyFraming::length) append_header(out, "Content-Length", length_text);
    if (framing == BodyFraming::chunked) out += "Transfer-Encoding: chunked\r\n";
  }
  if (!request_id.empty()) append_header(out, "X-Request-Id", request_id);
  if (client_version == 10 && keep_alive) out += "Connection: keep-alive\r\n";
  if (client_version != 10 && !keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
}

void append_chunk_size(std::string& out, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[2 * sizeof(std::size_t)];
  std::size_t n = 0;
  do {
    digits[n++] = kHex[size & 0xf];
    size >>= 4;
  } while (size != 0);
  while (n > 0) out += digits[--n];
  out += "\r\n";
}

Response make_error_response(unsigned status, std::string_view message, unsigned version,
                             std::chrono::seconds retry_after) {
  Response res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "userkey-lb");
  if (retry_after.count() > 0) res.set(http::field::retry_after, std::to_string(retry_after.count()));
  res.body() = "{\"error\":" + detail::json_string(message) + "}\n";
  res.prepare_payload();  // the Content-Length a HEAD answer reports
  return res;
}

}  // namespace userkey::lb::http1
