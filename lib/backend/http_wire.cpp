#include "backend/http_wire.hpp"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>

namespace userkey::detail {

namespace http = boost::beast::http;

int status_for_read_error(const boost::system::error_code& ec, std::string_view target) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category()) return 0;  // socket, timeout
  switch (static_cast<http::error>(ec.value())) {
    case http::error::end_of_stream:    // closed between requests
    case http::error::partial_message:  // closed mid-request: nobody to answer
      return 0;
    case http::error::body_limit: return 413;
    case http::error::header_limit:
      // No request line within the limit: it is too long (the limit is over
      // kMaxRequestTarget); else the fields are.
      return target.empty() || target.size() > kMaxRequestTarget ? 414 : 431;
    default: return 400;
  }
}

void append_response_head(std::string& out, const HttpResponse& res, std::size_t body_size, bool keep_alive,
                          bool http10_client, std::string_view request_id) {
  out += "HTTP/1.1 ";
  out += std::to_string(res.status);
  out += ' ';
  const auto reason = http::obsolete_reason(static_cast<http::status>(res.status));
  out.append(reason.data(), reason.size());
  out += "\r\nContent-Type: ";
  out += res.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body_size);
  out += "\r\n";
  for (const auto& [name, value] : res.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!request_id.empty()) {
    out += "X-Request-Id: ";
    out.append(request_id);
    out += "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  else if (http10_client) out += "Connection: keep-alive\r\n";
  out += "\r\n";
}

}  // namespace userkey::detail
