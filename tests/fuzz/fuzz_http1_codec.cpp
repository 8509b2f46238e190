// Fuzz target: the lb's HTTP/1 request path as pure functions (lib/lb/
// http1_codec): raw bytes in, a decision out. Whatever the bytes:
//  - the decision is forward, drop, or a reject with a 4xx status and a
//    message;
//  - a request it forwards serializes to one upstream head that ends with the
//    only blank line in it, carries no Transfer-Encoding, at most one
//    Content-Length, one X-Forwarded-For, one Host, and no field the
//    client's head did not have (chunk extensions and trailers never become
//    headers).
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

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
  std::string head;
  lb::http1::serialize_upstream_request(head, req, "192.0.2.1", "0123456789abcdef0123456789abcdef");
  if (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) std::abort();
  if (head.find("\r\n\r\n") != head.size() - 4) std::abort();
  if (count_header(head, "Transfer-Encoding") != 0) std::abort();
  if (count_header(head, "Content-Length") > 1) std::abort();
  if (count_header(head, "X-Forwarded-For") != 1) std::abort();
  if (count_header(head, "Host") != 1) std::abort();
  // Every forwarded field name was in the client's head (before its first
  // blank line), but for those the lb writes itself.
  const std::string_view client_head = bytes.substr(0, bytes.find("\r\n\r\n"));
  for (const auto& f : req.base()) {
    const std::string_view name(f.name_string().data(), f.name_string().size());
    if (client_head.find(name) == std::string_view::npos) std::abort();
  }
  return 0;
}
