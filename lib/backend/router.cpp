#include "userkey/backend/router.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <exception>
#include <cstdint>
#include <variant>

#include "core/escape.hpp"
#include "userkey/core/query_string.hpp"
#include "userkey/core/user_id.hpp"

namespace userkey {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

bool prefers_html(std::string_view accept) {
  // q of the most specific range matching each type; -1 = not acceptable.
  double html = -1, json = -1;
  int html_spec = -1, json_spec = -1;
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    auto item = trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    if (item.empty()) continue;
    auto semi = item.find(';');
    const auto range = trim(item.substr(0, semi));
    double q = 1.0;
    while (semi != std::string_view::npos) {
      item = item.substr(semi + 1);
      semi = item.find(';');
      auto param = trim(item.substr(0, semi));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        auto v = param.substr(2);
        // from_chars for double is available in GCC 11+.
        double parsed = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
        if (ec == std::errc{}) q = parsed;
        (void)p;
      }
    }
    auto consider = [&](std::string_view type, double& best, int& spec) {
      int s = -1;
      if (iequals(range, type)) s = 2;
      else if (range.size() > 2 && range.ends_with("/*") && iequals(range.substr(0, range.size() - 1), type.substr(0, type.find('/') + 1))) s = 1;
      else if (range == "*/*") s = 0;
      if (s > spec) {
        spec = s;
        best = q;
      }
    };
    consider("text/html", html, html_spec);
    consider("application/json", json, json_spec);
  }
  return html > 0 && html > json;
}

Router::Router(std::shared_ptr<UserRepository> repo, BackendIdentity id, std::shared_ptr<spdlog::logger> log)
    : repo_(std::move(repo)), id_(std::move(id)), log_(std::move(log)) {}

namespace {

void append_value(std::string& out, const BodyField& f, bool html) {
  if (const auto* n = std::get_if<std::int64_t>(&f.value)) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, *n).ptr;
    out.append(digits, end);
  } else if (html) {
    detail::append_html_escaped(out, std::get<std::string_view>(f.value));
  } else {
    detail::append_json_string(out, std::get<std::string_view>(f.value));
  }
}

}  // namespace

HttpResponse Router::render(int status, std::initializer_list<BodyField> fields, bool html) const {
  HttpResponse res;
  res.status = status;
  std::string& b = res.body;
  if (!html) {
    b.reserve(128);
    b.push_back('{');
    bool first = true;
    for (const auto& f : fields) {
      if (!first) b.push_back(',');
      first = false;
      detail::append_json_string(b, f.name);
      b.push_back(':');
      append_value(b, f, false);
    }
    b += "}\n";
    return res;
  }
  res.content_type = "text/html; charset=utf-8";
  b = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>userkey ";
  detail::append_html_escaped(b, id_.name);
  b += "</title></head>\n<body>\n<h1>";
  b += status == 200 ? "Served by " : "Error from ";
  detail::append_html_escaped(b, id_.name);
  b += "</h1>\n<dl>\n";
  for (const auto& f : fields) {
    b += "<dt>";
    detail::append_html_escaped(b, f.name);
    b += "</dt><dd>";
    append_value(b, f, true);
    b += "</dd>\n";
  }
  b += "</dl>\n</body></html>\n";
  return res;
}

void Router::note_auth_state(bool refused, bool accepted) const {
  if (refused) {
    if (!auth_refused_.exchange(true) && log_)
      log_->error("database refused our credentials ({}); answering 503 until it accepts them",
                  repo_->describe());
  } else if (accepted) {
    if (auth_refused_.exchange(false) && log_) log_->info("database accepts our credentials again");
  }
}

LookupResult Router::repository_threw(std::string_view what, std::string_view message) const {
  if (log_) log_->error("{} threw: {} ({}); answering 503", what, message, repo_->describe());
  return LookupResult::error(LookupStatus::unavailable, "repository failed");
}

HttpResponse Router::lookup(std::string_view query, bool html) const {
  const std::int64_t port = id_.port;
  const std::string_view backend = id_.name;
  bool malformed = false;
  auto param = find_query_param(query, "user_id", &malformed);
  auto invalid = [&](std::string_view why) {
    return render(400, {{"error", "invalid user_id"}, {"detail", why}, {"port", port}, {"backend", backend}}, html);
  };
  if (malformed) return invalid("malformed percent-encoding in query string");
  if (param.count == 0) return render(200, {{"port", port}, {"backend", backend}}, html);
  if (param.count > 1) return invalid("user_id given more than once");
  if (param.raw.size() > 3 * kMaxUserIdLength) return invalid("user_id is too long (at most 10 digits)");
  auto decoded = percent_decode(param.raw);
  if (!decoded) return invalid("malformed percent-encoding in user_id");
  UserIdError err;
  auto id = parse_user_id(*decoded, &err);
  if (!id) return invalid(err.message);

  // The id as the client meant it, canonical (no leading zeros), as a string.
  const std::string id_text = std::to_string(*id);
  LookupResult r;
  try {
    r = repo_->find_key(*id);
  } catch (const std::exception& e) {
    r = repository_threw("lookup", e.what());
  } catch (...) {
    r = repository_threw("lookup", "unknown exception");
  }
  // A stale answer (the store failed) says nothing about our credentials.
  note_auth_state(r.status == LookupStatus::unauthorized,
                  (r.status == LookupStatus::found && !r.stale) || r.status == LookupStatus::not_found);
  switch (r.status) {
    case LookupStatus::found:
      return render(200, {{"user_id", id_text}, {"user_key", r.key}, {"port", port}, {"backend", backend}}, html);
    case LookupStatus::not_found:
      return render(400, {{"error", "unknown user_id"}, {"user_id", id_text}, {"port", port}, {"backend", backend}},
                    html);
    case LookupStatus::invalid_id: return invalid(r.detail.empty() ? "user_id out of range" : r.detail);
    case LookupStatus::unavailable:
    case LookupStatus::unauthorized: break;
  }
  auto res = render(503, {{"error", "database unavailable"}, {"port", port}, {"backend", backend}}, html);
  res.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
  return res;
}

HttpResponse Router::handle(const HttpRequest& req) const {
  const bool html = prefers_html(req.accept);
  const auto parts = split_target(req.target);
  // JSON or HTML by Accept: a shared cache must key these on it.
  auto negotiated = [](HttpResponse res) {
    res.headers.emplace_back("Vary", "Accept");
    return res;
  };
  if (req.method != "GET" && req.method != "HEAD") {
    auto res = render(405, {{"error", "method not allowed"}}, html);
    res.headers.emplace_back("Allow", "GET, HEAD");
    return negotiated(std::move(res));
  }
  if (parts.path == "/") return negotiated(lookup(parts.query, html));
  if (parts.path == "/healthz") return render(200, {{"status", "ok"}, {"backend", id_.name}}, false);
  if (parts.path == "/readyz") {
    StoreStatus r;
    try {
      r = repo_->ready();
    } catch (const std::exception& e) {
      r = repository_threw("readiness check", e.what());
    } catch (...) {
      r = repository_threw("readiness check", "unknown exception");
    }
    note_auth_state(r.code == StoreStatus::Code::unauthorized, r.ok() || r.code == StoreStatus::Code::empty);
    if (r.ok()) return render(200, {{"status", "ready"}, {"backend", id_.name}}, false);
    auto res = render(503, {{"status", "unavailable"}, {"reason", to_string(r.code)}, {"backend", id_.name}}, false);
    res.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
    return res;
  }
  return negotiated(render(404, {{"error", "not found"}}, html));
}

namespace {

std::string_view protocol_error_text(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 408: return "request timeout";
    case 411: return "length required";
    case 413: return "request body too large";
    case 414: return "request target too long";
    case 416: return "range not satisfiable";
    case 417: return "expectation failed";
    case 431: return "request header fields too large";
    case 501: return "not implemented";
    case 503: return "service unavailable";
    case 505: return "http version not supported";
    default: return status >= 500 ? "server error" : "bad request";
  }
}

}  // namespace

HttpResponse Router::protocol_error(int status) const {
  return render(status, {{"error", protocol_error_text(status)}, {"port", std::int64_t{id_.port}}, {"backend", id_.name}},
                false);
}

}  // namespace userkey
