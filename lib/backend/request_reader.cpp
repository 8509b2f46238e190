// Reading one request on a backend connection: see request_reader.hpp.
#include "backend/request_reader.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <string_view>

#include "backend/http_wire.hpp"

namespace userkey::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

void limit_parser(RequestParser& parser) {
  parser.header_limit(kMaxRequestHead);
  parser.body_limit(kMaxRequestBody);
}

error_code framing_error(const http::fields& head) {
  const auto lengths = head.count(http::field::content_length);
  if (lengths > 1 || (lengths == 1 && head.count(http::field::transfer_encoding) > 0))
    return http::error::bad_content_length;
  return {};
}

bool expects_continue(const http::fields& head) {
  const auto expect = head.find(http::field::expect);
  return expect != head.end() && beast::iequals(expect->value(), "100-continue");
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

asio::awaitable<error_code> read_request(beast::tcp_stream& stream, beast::flat_buffer& buffer, RequestParser& parser,
                                         std::chrono::seconds head_timeout, std::chrono::seconds body_timeout,
                                         bool& head_read) {
  const auto nothrow = [](error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); };
  error_code ec;
  stream.expires_after(head_timeout);
  co_await http::async_read_header(stream, buffer, parser, nothrow(ec));
  head_read = true;
  if (ec) co_return ec;
  if (const auto refused = framing_error(parser.get())) co_return refused;
  if (parser.is_done()) co_return ec;
  if (expects_continue(parser.get())) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    co_await asio::async_write(stream, asio::buffer(kContinue), nothrow(ec));
    if (ec) co_return ec;
  }
  stream.expires_after(body_timeout);
  co_await http::async_read(stream, buffer, parser, nothrow(ec));
  co_return ec;
}

#pragma GCC diagnostic pop

}  // namespace userkey::detail
