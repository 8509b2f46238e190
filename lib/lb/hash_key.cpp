#include "userkey/lb/hash_key.hpp"

namespace userkey::lb {

namespace {

void set_error(std::string* error, std::string msg) {
  if (error != nullptr) *error = std::move(msg);
}

// RFC 9110 token characters (header field names).
bool is_tchar(char ch) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
  switch (ch) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<HashKeySpec> HashKeySpec::parse(std::string_view text, std::string* error) {
  const std::string quoted = "hash key '" + std::string(text) + "': ";
  if (text == "ip") return HashKeySpec(Kind::ip, {});
  if (text == "path") return HashKeySpec(Kind::path, {});

  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    set_error(error, quoted + "expected query:NAME, header:NAME, ip or path");
    return std::nullopt;
  }
  const std::string_view kind = text.substr(0, colon);
  const std::string_view name = text.substr(colon + 1);
  if (kind == "query") {
    if (name.empty()) {
      set_error(error, quoted + "empty query parameter name");
      return std::nullopt;
    }
    for (char ch : name) {
      if (ch == '&' || ch == '=' || ch == '?' || ch == '#' || ch == ' ' || static_cast<unsigned char>(ch) < 0x20) {
        set_error(error, quoted + "invalid character in query parameter name");
        return std::nullopt;
      }
    }
    return HashKeySpec(Kind::query, std::string(name));
  }
  if (kind == "header") {
    if (name.empty()) {
      set_error(error, quoted + "empty header name");
      return std::nullopt;
    }
    for (char ch : name) {
      if (!is_tchar(ch)) {
        set_error(error, quoted + "invalid character in header name");
        return std::nullopt;
      }
    }
    return HashKeySpec(Kind::header, std::string(name));
  }
  set_error(error, quoted + "unknown kind '" + std::string(kind) + "', expected query, header, ip or path");
  return std::nullopt;
}

std::string_view query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos || name.empty()) return {};
  std::string_view query = target.substr(q + 1);
  if (const auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.size() > name.size() && param.substr(0, name.size()) == name && param[name.size()] == '=') {
      return param.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

std::string_view HashKeySpec::extract(std::string_view target, HeaderLookup header, std::string_view client_ip) const {
  switch (kind_) {
    case Kind::query:
      return query_param(target, name_);
    case Kind::header:
      return header(name_);
    case Kind::ip:
      return client_ip;
    case Kind::path:
      return target.substr(0, target.find('?'));
  }
  return {};
}

std::string HashKeySpec::to_string() const {
  switch (kind_) {
    case Kind::query:
      return "query:" + name_;
    case Kind::header:
      return "header:" + name_;
    case Kind::ip:
      return "ip";
    case Kind::path:
      return "path";
  }
  return {};
}

}  // namespace userkey::lb
