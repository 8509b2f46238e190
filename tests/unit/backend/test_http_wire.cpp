// Unit tests for lib/backend/http_wire: the response head (with the request
// id echoed) and the status a failed request read is answered with.
#include <doctest/doctest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

#include <string>

#include "backend/http_wire.hpp"

namespace http = boost::beast::http;
using userkey::HttpResponse;
using userkey::detail::append_response_head;
using userkey::detail::status_for_read_error;

TEST_CASE("response head: status line, type, length, extra headers, the request id, then Connection") {
  HttpResponse res;
  res.status = 503;
  res.headers = {{"Retry-After", "1"}};
  std::string out;
  append_response_head(out, res, 17, true, false);
  CHECK(out ==
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
        "Retry-After: 1\r\n\r\n");

  out.clear();
  append_response_head(out, res, 17, false, false, "edge-1.retry:2");
  CHECK(out ==
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
        "Retry-After: 1\r\nX-Request-Id: edge-1.retry:2\r\nConnection: close\r\n\r\n");

  out.clear();
  HttpResponse ok;
  append_response_head(out, ok, 0, true, true, "0123456789abcdef0123456789abcdef");
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 0\r\n"
        "X-Request-Id: 0123456789abcdef0123456789abcdef\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("read errors: 413, 414 or 431 by what overflowed, 400 when malformed, nothing when gone") {
  CHECK(status_for_read_error(http::error::body_limit, "/") == 413);
  CHECK(status_for_read_error(http::error::header_limit, "") == 414);
  CHECK(status_for_read_error(http::error::header_limit, std::string(9000, 'a')) == 414);
  CHECK(status_for_read_error(http::error::header_limit, "/?user_id=1") == 431);
  CHECK(status_for_read_error(http::error::bad_method, "") == 400);
  CHECK(status_for_read_error(http::error::end_of_stream, "") == 0);
  CHECK(status_for_read_error(http::error::partial_message, "/") == 0);
  CHECK(status_for_read_error(boost::asio::error::connection_reset, "/") == 0);
}
