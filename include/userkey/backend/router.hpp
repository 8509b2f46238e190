// Router: the HTTP contract of a userkey backend, independent of any HTTP
// server. Feed it a method, a request target and the Accept header; it
// returns status, headers and body. BackendServer (Asio + Beast), cpp-httplib, or a
// test can all drive it.
//
//   GET /?user_id=1  -> 200 {"user_id":"1","user_key":"...","port":5001,"backend":"backend-1"}
//   GET /            -> 200 {"port":5001,"backend":"backend-1"}
//   unknown id       -> 400 {"error":"unknown user_id","user_id":"9",...}
//   bad id           -> 400 {"error":"invalid user_id","detail":"...",...}
//   store down       -> 503 {"error":"database unavailable",...} + Retry-After
//   GET /healthz     -> 200 while the process runs
//   GET /readyz      -> 200 when the repository is reachable and holds users,
//                       else 503 with the reason (unavailable, unauthorized, empty)
// A client whose Accept prefers text/html gets the same data as a small HTML
// page (those answers carry Vary: Accept). HEAD is answered like GET; other
// methods get 405.
//
// Thread-safety: handle() is const and safe to call concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "userkey/backend/user_repository.hpp"

namespace spdlog {
class logger;
}

namespace userkey {

struct HttpRequest {
  std::string_view method;  ///< "GET", "HEAD", ...
  std::string_view target;  ///< path and query as on the request line: "/?user_id=1"
  std::string_view accept;  ///< the Accept header, empty when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (Retry-After, Allow)
};

/// Which server answered: shown in every response.
struct BackendIdentity {
  std::string name;  ///< e.g. "backend-1"
  int port = 0;      ///< the port this backend listens on
};

/// Seconds a client is told to wait (Retry-After) when the store is down.
inline constexpr int kRetryAfterSeconds = 1;

/// One named value of a response body: text (a JSON string) or a number.
/// Views only: the values must outlive the render call that takes them.
struct BodyField {
  std::string_view name;
  std::variant<std::string_view, std::int64_t> value;

  BodyField(std::string_view n, std::string_view text) : name(n), value(text) {}
  BodyField(std::string_view n, const std::string& text) : name(n), value(std::string_view(text)) {}
  BodyField(std::string_view n, const char* text) : name(n), value(std::string_view(text)) {}
  BodyField(std::string_view n, std::int64_t number) : name(n), value(number) {}
};

/// True when `accept` ranks text/html above application/json (a browser).
bool prefers_html(std::string_view accept);

class Router {
public:
  /// `log` receives one warning when the store starts refusing credentials
  /// (never the credentials themselves); may be null.
  Router(std::shared_ptr<UserRepository> repo, BackendIdentity id, std::shared_ptr<spdlog::logger> log = nullptr);

  HttpResponse handle(const HttpRequest& req) const;

  /// The answer to a request the HTTP server rejects before it can be
  /// handled (malformed: 400; too large: 413, 414, 431; ...), in the same
  /// JSON shape as the router's errors: {"error":...,"port":...,"backend":...}.
  HttpResponse protocol_error(int status) const;

  const BackendIdentity& identity() const { return id_; }
  UserRepository& repository() const { return *repo_; }

private:
  HttpResponse lookup(std::string_view query, bool html) const;
  // The one body builder: the same fields as a JSON object or an HTML page.
  HttpResponse render(int status, std::initializer_list<BodyField> fields, bool html) const;
  // Logs once when the store starts refusing our credentials, and once
  // when it accepts them again.
  void note_auth_state(bool refused, bool accepted) const;
  // A repository that throws is an unavailable store (503), logged.
  LookupResult repository_threw(std::string_view what, std::string_view message) const;

  std::shared_ptr<UserRepository> repo_;
  BackendIdentity id_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::atomic<bool> auth_refused_{false};
};

}  // namespace userkey
