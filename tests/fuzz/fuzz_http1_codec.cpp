// Fuzz target: the lb's HTTP/1 request path as pure functions (lib/lb/
// http1_codec): raw bytes in, a decision out. Whatever the bytes:
//  - the decision is forward, drop, or a reject with a 4xx status and a
//    message;
//  - a request it forwards serializes to one upstream head that ends with the
//    only blank line in it, carries no Transfer-Encoding and at most one
//    Content-Length: nothing a backend could read as a second request.
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
  const auto d = lb::http1::decide_request(bytes, limits);
  using Action = lb::http1::RequestDecision::Action;
  if (d.action == Action::reject && (d.status < 400 || d.status > 499 || d.message.empty())) std::abort();
  if (!d.forwards()) return 0;

  lb::http1::RequestParser parser;
  parser.header_limit(limits.max_header_bytes);
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  if (!parser.is_done()) parser.put_eof(ec);
  if (!parser.is_done()) return 0;  // (decide_request feeds in steps; a one-shot put may stop earlier)
  const lb::http1::Request req = parser.release();
  std::string head;
  lb::http1::serialize_upstream_request(head, req, "192.0.2.1", "0123456789abcdef0123456789abcdef");
  if (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) std::abort();
  if (head.find("\r\n\r\n") != head.size() - 4) std::abort();
  if (count_header(head, "Transfer-Encoding") != 0) std::abort();
  if (count_header(head, "Content-Length") > 1) std::abort();
  return 0;
}
