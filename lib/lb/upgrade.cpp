// Which protocol upgrades the proxy forwards: see upgrade.hpp.
#include "upgrade.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <string_view>

namespace userkey::lb::http1 {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Whether any `name` field of `fields` lists `token` (a comma list).
template <class Fields>
bool lists_token(const Fields& fields, http::field name, beast::string_view token) {
  const auto range = fields.equal_range(name);
  for (auto it = range.first; it != range.second; ++it)
    for (const auto t : http::token_list(it->value()))
      if (beast::iequals(t, token)) return true;
  return false;
}

}  // namespace

bool websocket_requested(const Request::header_type& req) {
  return req.method() == http::verb::get && req.version() == 11 &&
         lists_token(req, http::field::upgrade, "websocket") && lists_token(req, http::field::connection, "upgrade");
}

bool websocket_accepted(const Response::header_type& res) {
  return res.result_int() == 101 && lists_token(res, http::field::upgrade, "websocket");
}

void add_websocket_fields(std::string& head) {
  static constexpr std::string_view kFields = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
  // (A head always ends in its blank line; a shorter string gets the fields
  // appended.)
  const std::size_t at = head.size() >= 2 ? head.size() - 2 : head.size();
  head.insert(at, kFields);
}

}  // namespace userkey::lb::http1
