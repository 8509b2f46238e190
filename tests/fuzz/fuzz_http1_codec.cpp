// Fuzz target: the lb's HTTP/1 request path as pure functions (lib/lb/
// http1_codec): raw bytes in, a decision out. Whatever the bytes:
//  - the decision is forward, drop, or a reject with a 4xx status and a
//    message;
//  - a request it forwards serializes to one upstream head that ends with the
//    only blank line in it, carries no Transfer-Encoding, at most one
//    Content-Length, one X-Forwarded-For, one Host, and no field the
//    client's head did not have (chunk extensions and trailers never become
//    headers);
//  - its traceparent is read as the lb reads it (core/trace_context): a
//    valid one is held as a version-00 value that parses again to the same
//    trace; the head carries exactly one traceparent, and a tracestate only
//    when the client's trace went on.
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/request_id.hpp"
#include "core/trace_context.hpp"
#include "lb/http1_codec.hpp"

namespace {

std::size_t count_header(std::string_view head, std::string_view name) {
  std::size_t n = 0;
  for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos; pos = head.find("\r\n", pos + 2)) {
    const auto line = head.substr(pos + 2, name.size() + 1);
    if (line.size() == name.size() + 1 && line.back() == ':' &&
        boost::beast::iequals(boost::beast::string_view(line.data(), name.size()),
                              boost::beast::string_view(name.data(), name.size())))
      ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace lb = userkey::lb;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lb::LimitsConfig limits;
  limits.max_header_bytes = 4096;
  limits.max_body_bytes = 1024;
  lb::http1::Request forwarded;
  const auto d = lb::http1::decide_request(bytes, limits, &forwarded);
  using Action = lb::http1::RequestDecision::Action;
  if (d.action == Action::reject && (d.status < 400 || d.status > 499 || d.message.empty())) std::abort();
  if (!d.forwards()) return 0;
  const lb::http1::Request& req = forwarded;
  userkey::TraceParent trace;
  const bool continued = trace.parse(userkey::single_field(req, userkey::kTraceParentField));
  if (continued) {
    userkey::TraceParent again;
    if (trace.text().size() != userkey::TraceParent::kLength || !again.parse(trace.text()) ||
        again.text() != trace.text())
      std::abort();
    trace.set_parent_id(7);
  } else {
    trace.start(1, 2, 3, 0);
  }
  std::string head;
  lb::http1::serialize_upstream_request(head, req, "192.0.2.1",
                                        {"0123456789abcdef0123456789abcdef", trace.text(), continued});
  if (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) std::abort();
  if (head.find("\r\n\r\n") != head.size() - 4) std::abort();
  if (count_header(head, "Transfer-Encoding") != 0) std::abort();
  if (count_header(head, "Content-Length") > 1) std::abort();
  if (count_header(head, "X-Forwarded-For") != 1) std::abort();
  if (count_header(head, "Host") != 1) std::abort();
  if (count_header(head, "traceparent") != 1) std::abort();
  if (!continued && count_header(head, "tracestate") != 0) std::abort();
  // Every forwarded field name was in the client's head (before its first
  // blank line), but for those the lb writes itself.
  const std::string_view client_head = bytes.substr(0, bytes.find("\r\n\r\n"));
  for (const auto& f : req.base()) {
    const std::string_view name(f.name_string().data(), f.name_string().size());
    if (client_head.find(name) == std::string_view::npos) std::abort();
  }
  return 0;
}
