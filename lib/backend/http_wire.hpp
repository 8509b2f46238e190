// HTTP/1.1 framing for BackendServer (internal): request limits, what a
// failed request read is answered with, and the response head (with the
// request's X-Request-Id echoed).
#pragma once

#include <boost/system/error_code.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "userkey/backend/router.hpp"

namespace userkey::detail {

/// A longer request target is answered 414 (cpp-httplib's limit, kept).
inline constexpr std::size_t kMaxRequestTarget = 8 * 1024;
/// Request line and header fields together; more is 431, or 414 when the
/// request line alone is over kMaxRequestTarget.
inline constexpr std::size_t kMaxRequestHead = 16 * 1024;
/// A larger body (which no route reads) is answered 413.
inline constexpr std::size_t kMaxRequestBody = 64 * 1024;

/// The status a failed request read is answered with before the connection
/// closes: 400 (malformed), 413, 414, 431; or 0 for no answer at all (the
/// client went away or was too slow, or the server is stopping).
/// `target` is the request target when the request line was read in full
/// (the parser consumes it before the header fields), else empty.
int status_for_read_error(const boost::system::error_code& ec, std::string_view target);

/// Appends the head of `res` (status line, Content-Type, Content-Length,
/// res.headers, X-Request-Id when `request_id` is not empty, Connection) to
/// `out`. `body_size` is what Content-Length says, also for a HEAD request
/// whose body is not sent. `request_id` must be well-formed
/// (core/request_id.hpp): it is written as it is.
void append_response_head(std::string& out, const HttpResponse& res, std::size_t body_size, bool keep_alive,
                          bool http10_client, std::string_view request_id = {});

}  // namespace userkey::detail
