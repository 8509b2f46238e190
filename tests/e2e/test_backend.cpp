// End-to-end: real userkey-backend and userkey-admin processes on free ports,
// talked to over HTTP.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <userkey/backend/bson_file_repository.hpp>

#include "support/backend_process.hpp"
#include "support/ferretdb.hpp"
#include "support/process.hpp"
#include "support/prometheus_text.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using Backend = BackendProcess;

// True when mongo-c-driver's counters segment for `pid` was made at or after
// `since` and is still there. (A file from an older process that had the same
// pid is not this process's doing.)
bool left_shm_segment(pid_t pid, std::filesystem::file_time_type since) {
  std::error_code ec;
  const auto t = std::filesystem::last_write_time("/dev/shm/mongoc-" + std::to_string(pid), ec);
  return !ec && t >= since;
}

/// Runs a command to completion; `output` gets its stdout and stderr, or
/// its stdout alone with `stdout_only`.
int run(std::vector<std::string> argv, std::string* output = nullptr, std::map<std::string, std::string> env = {},
        bool stdout_only = false) {
  TempDir dir;
  ChildProcess p(std::move(argv), dir.path() / "out.log", std::move(env),
                 stdout_only ? dir.path() / "err.log" : std::filesystem::path{});
  auto rc = p.wait(30s);
  if (output) *output = p.log();
  return rc.value_or(-1);
}

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lower-cased names
  std::string body;
};

/// The first response in `raw` (status line, headers, Content-Length body).
RawResponse parse_response(const std::string& raw) {
  RawResponse r;
  r.status = status_of(raw);
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  std::size_t at = raw.find("\r\n") + 2;
  while (at < end) {
    const auto eol = raw.find("\r\n", at);
    const auto line = raw.substr(at, eol - at);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    at = eol + 2;
  }
  const auto len = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
  r.body = raw.substr(end + 4, len);
  return r;
}

/// GET /metrics on `port`, checked as a scraper reads it.
Exposition scrape(std::uint16_t port) {
  const auto r = http_get(port, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers.at("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
  auto e = parse_exposition(r.body);
  CHECK_MESSAGE(e.errors.empty(), e.error_text() << r.body);
  return e;
}

}  // namespace

TEST_CASE("backend on the embedded dump answers the / contract") {
  Backend b({"--name", "backend-1", "--dump", dump_dir().string()});
  auto r = http_get(b.port, "/?user_id=1");
  CHECK(r.status == 200);
  CHECK(r.headers["vary"] == "Accept");  // JSON or HTML by Accept: caches must key on it
  auto j = json::parse(r.body);
  CHECK(j["user_key"] == "one@5cdb5896d7c8");
  CHECK(j["backend"] == "backend-1");
  CHECK(j["port"] == b.port);
  CHECK(j["user_id"] == "1");

  auto plain = json::parse(http_get(b.port, "/").body);
  CHECK(plain == json{{"port", b.port}, {"backend", "backend-1"}});

  auto unknown = http_get(b.port, "/?user_id=99");
  CHECK(unknown.status == 400);
  CHECK(json::parse(unknown.body)["error"] == "unknown user_id");
  CHECK(http_get(b.port, "/?user_id=%7B%22%24ne%22%3Anull%7D").status == 400);
  CHECK(http_get(b.port, "/healthz").status == 200);
  CHECK(http_get(b.port, "/readyz").status == 200);
  auto html = http_get(b.port, "/", {{"Accept", "text/html,*/*;q=0.8"}});
  CHECK(html.headers["content-type"].rfind("text/html", 0) == 0);
  CHECK(html.headers["vary"] == "Accept");
  CHECK(unknown.headers["vary"] == "Accept");

  // One access-log line per request, with method, target and status (the
  // log's writer thread may write a line a moment after the answer).
  CHECK_MESSAGE(eventually([&] { return b.proc.log().find("GET /?user_id=99 400") != std::string::npos; }, 10s, 20ms),
                b.proc.log());
  CHECK(b.proc.log().find("GET /?user_id=1 200") != std::string::npos);
}

TEST_CASE("a burst of concurrent connections is served without failures") {
  Backend b({"--dump", dump_dir().string(), "--access-log", "false"});
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 64; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 5; ++i)
        if (http_get(b.port, "/?user_id=" + std::to_string(1 + i % 7)).status == 200) ++ok;
    });
  }
  for (auto& c : clients) c.join();
  CHECK(ok == 64 * 5);
}

TEST_CASE("SIGTERM and SIGINT stop the backend with exit 0") {
  for (int sig : {SIGTERM, SIGINT}) {
    Backend b({"--dump", dump_dir().string()});
    REQUIRE(http_get(b.port, "/").status == 200);
    b.proc.signal(sig);
    auto rc = b.proc.wait(10s);
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
  }
}

TEST_CASE("bad configuration is a clear message and a non-zero exit") {
  std::string out;
  CHECK(run({USERKEY_BACKEND_BIN, "--listen", "nonsense"}, &out) == 2);
  CHECK(out.find("HOST:PORT") != std::string::npos);
  CHECK(run({USERKEY_BACKEND_BIN, "--cache-ttl", "soon"}, &out) != 0);
  CHECK(out.find("duration") != std::string::npos);
  CHECK(run({USERKEY_BACKEND_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--dump", "/no/such/dump"},
            &out) == 1);
  CHECK(out.find("/no/such/dump") != std::string::npos);
  CHECK(run({USERKEY_BACKEND_BIN, "--dump", "x", "--mongo-uri", "mongodb://h/"}, &out) != 0);
  CHECK(run({USERKEY_BACKEND_BIN, "--help"}, &out) == 0);
  for (const char* flag : {"--listen", "--name", "--dump", "--mongo-uri", "--db", "--collection", "--cache-ttl",
                           "--threads", "USERKEY_LISTEN", "USERKEY_MONGO_URI"}) {
    CAPTURE(flag);
    CHECK(out.find(flag) != std::string::npos);
  }
  // Flags win over the environment.
  Backend b({"--name", "from-flag"}, {{"USERKEY_NAME", "from-env"}, {"USERKEY_DUMP", dump_dir().string()}});
  CHECK(json::parse(http_get(b.port, "/").body)["backend"] == "from-flag");
}

TEST_CASE("admin tool + backend on FerretDB with credentials from mongo_user / mongo_pass") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  std::string out;
  REQUIRE_MESSAGE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "restore", dump_dir().string()}, &out, creds) == 0, out);
  CHECK(out.find("restored 7 users") != std::string::npos);
  REQUIRE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "restore", dump_dir().string()}, &out, creds) == 0);
  REQUIRE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "put", "8", "eight@000000000008"}, &out, creds) == 0);
  REQUIRE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "get", "8"}, &out, creds, /*stdout_only=*/true) == 0);
  CHECK(out == "eight@000000000008\n");
  CHECK(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "get", "99"}, &out, creds) == 3);
  CHECK(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "get", "x1"}, &out, creds) == 2);
  // stdout is the users in id order and nothing else. (stderr is not
  // checked: the driver itself warns there, before main, when a stale
  // /dev/shm/mongoc-<pid> from a killed process shares this one's pid.)
  std::string expected;
  for (const auto& u : userkey::read_bson_dump(userkey::resolve_dump_file(dump_dir())))
    expected += std::to_string(u.user_id) + "\t" + u.user_key + "\n";
  expected += "8\teight@000000000008\n";
  REQUIRE(expected.rfind("1\tone@5cdb5896d7c8\n", 0) == 0);
  TempDir listing;
  const auto started = std::filesystem::file_time_type::clock::now() - 1s;  // coarse file clocks
  ChildProcess lister({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "list"}, listing.path() / "out.log", creds,
                      listing.path() / "err.log");
  REQUIRE(lister.wait(30s) == 0);
  CHECK(lister.log() == expected);
  // Neither the admin tool nor a program embedding MongoRepository leaves
  // the driver's /dev/shm segment behind once it has exited normally.
  CHECK_FALSE(left_shm_segment(lister.pid(), started));
  ChildProcess probe({USERKEY_MONGO_EXIT_PROBE_BIN, db.uri(), "1"}, listing.path() / "probe.log", creds,
                     listing.path() / "probe.err");
  REQUIRE(probe.wait(30s) == 0);
  CHECK(probe.log() == "one@5cdb5896d7c8\n");
  CHECK_FALSE(left_shm_segment(probe.pid(), started));

  Backend b({"--name", "backend-m", "--mongo-uri", db.uri()}, creds);
  auto r = http_get(b.port, "/?user_id=8");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["user_key"] == "eight@000000000008");
  CHECK(http_get(b.port, "/readyz").status == 200);
  CHECK(http_get(b.port, "/?user_id=8").status == 200);  // now from the cache
  {
    // In front of MongoDB: the cache's and the database's families too.
    const auto e = scrape(b.port);
    CHECK(e.value("userkey_backend_cache_misses_total") >= 1.0);
    CHECK(e.value("userkey_backend_cache_hits_total") >= 1.0);
    CHECK(e.value("userkey_backend_cache_entries") >= 1.0);
    CHECK(e.total("userkey_backend_db_errors_total") == 0.0);
    CHECK(e.value("userkey_backend_db_pool_in_use") == 0.0);  // nothing in flight
    CHECK(e.value("userkey_backend_db_pool_size") == 16.0);  // --mongo-pool's default
  }

  // Wrong password: 503 with Retry-After, one log line, password never logged.
  // (--mongo-timeout 2s: a login that outlasts the timeout is a network
  // failure, not a refusal, and on this shared machine a SCRAM round with
  // FerretDB has taken longer than the 400 ms default.)
  auto wrong = creds;
  wrong["mongo_pass"] = "not-the-password-42";
  Backend bad({"--mongo-uri", db.uri(), "--mongo-timeout", "2s"}, wrong);
  auto denied = http_get(bad.port, "/?user_id=1");
  CHECK(denied.status == 503);
  CHECK(denied.headers["retry-after"] == "1");
  http_get(bad.port, "/?user_id=2");
  {
    // Each refused lookup reached the database (failures are never cached).
    // A refused lookup can take the server-selection timeout (2 s here); on
    // a slow build (sanitizers) the lookup deadline (2.15 s) can answer the
    // 503 first, and the worker counts the refusal a little later: wait for it.
    auto e = scrape(bad.port);
    for (int i = 0; i < 100 && e.value("userkey_backend_db_errors_total", "kind=\"unauthorized\"").value_or(0) < 2.0; ++i) {
      std::this_thread::sleep_for(100ms);
      e = scrape(bad.port);
    }
    CHECK(e.value("userkey_backend_db_errors_total", "kind=\"unauthorized\"") >= 2.0);
    CHECK(e.value("userkey_backend_requests_total", "code=\"503\"") >= 2.0);
    CHECK(e.value("userkey_backend_cache_hits_total") == 0.0);
  }
  CHECK(eventually([&] { return bad.proc.log().find("refused our credentials") != std::string::npos; }, 10s, 20ms));
  const auto log = bad.proc.log();
  CHECK(log.find("refused our credentials") != std::string::npos);
  CHECK(log.find("refused our credentials") == log.rfind("refused our credentials"));
  CHECK(log.find("not-the-password-42") == std::string::npos);
  CHECK(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "list"}, &out, wrong) == 1);
  CHECK(out.find("refused") != std::string::npos);
}

TEST_CASE("GET /metrics on the listen port: requests by status and lookup latency move; valid exposition format") {
  Backend b({"--dump", dump_dir().string(), "--access-log", "false"});
  const auto before = scrape(b.port);
  auto count = [](const Exposition& e, int code) {
    return e.value("userkey_backend_requests_total", "code=\"" + std::to_string(code) + "\"").value_or(-1);
  };
  const std::string h = "userkey_backend_lookup_latency_seconds";
  for (int i = 0; i < 3; ++i) REQUIRE(http_get(b.port, "/?user_id=" + std::to_string(1 + i)).status == 200);
  REQUIRE(http_get(b.port, "/?user_id=99").status == 400);        // unknown
  REQUIRE(http_get(b.port, "/?user_id=abc").status == 400);       // invalid
  REQUIRE(http_get(b.port, "/no/such/path").status == 404);       // not a lookup
  CHECK(status_of(raw_exchange(b.port, "NONSENSE\r\n\r\n")) == 400);  // refused before routing: counted too
  CHECK(status_of(raw_exchange(b.port, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")) ==
        405);

  const auto after = scrape(b.port);
  CHECK(count(after, 200) == count(before, 200) + 3 + 1);  // + the first scrape
  CHECK(count(after, 400) == count(before, 400) + 3);
  CHECK(count(after, 404) == count(before, 404) + 1);
  CHECK(count(after, 405) == count(before, 405) + 1);
  // Five lookups (GET /), each in the histogram; /no/such/path and the scrapes are not lookups.
  CHECK(*after.value(h + "_count") == *before.value(h + "_count") + 5);
  CHECK(*after.value(h + "_bucket", "le=\"+Inf\"") == *after.value(h + "_count"));
  CHECK(*after.value(h + "_sum") > 0);
  CHECK(*after.value(h + "_bucket", "le=\"2.5\"") == *after.value(h + "_count"));  // none took 2.5 s
  // The embedded dump has no cache and no database: no such families.
  CHECK(after.types.count("userkey_backend_cache_hits_total") == 0);
  CHECK(after.types.count("userkey_backend_db_errors_total") == 0);
  // HEAD is answered like GET, without the body.
  const auto head = parse_response(raw_exchange(b.port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  CHECK(head.status == 200);
  CHECK(head.body.empty());
}

TEST_CASE("--admin HOST:PORT serves /metrics there only; the listen port answers /metrics like any unknown path") {
  const auto admin = free_port();
  Backend b({"--dump", dump_dir().string(), "--admin", "127.0.0.1:" + std::to_string(admin)});
  REQUIRE(wait_for_port(admin, 5s));
  REQUIRE(http_get(b.port, "/?user_id=1").status == 200);
  const auto moved = http_get(b.port, "/metrics");
  const auto unknown = http_get(b.port, "/no/such/path");
  CHECK(moved.status == 404);
  CHECK(moved.body == unknown.body);
  CHECK(moved.headers.at("content-type") == unknown.headers.at("content-type"));
  // The admin port: /metrics and both probes; no lookups.
  const auto e = scrape(admin);
  CHECK(e.value("userkey_backend_requests_total", "code=\"200\"") >= 1.0);
  CHECK(e.value("userkey_backend_requests_total", "code=\"404\"") >= 2.0);
  CHECK(e.value("userkey_backend_lookup_latency_seconds_count") == 1.0);
  CHECK(http_get(admin, "/healthz").status == 200);
  CHECK(http_get(admin, "/?user_id=1").status == 404);
  CHECK(http_get(admin, "/readyz").status == 200);
  // The log says where the metrics are.
  const std::string where = "metrics on http://127.0.0.1:" + std::to_string(admin) + "/metrics";
  CHECK_MESSAGE(eventually([&] { return b.proc.log().find(where) != std::string::npos; }, 10s, 20ms), b.proc.log());
  // An admin address already in use is a start-up error.
  std::string out;
  CHECK(run({USERKEY_BACKEND_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--dump", dump_dir().string(),
             "--admin", b.upstream()},
            &out) == 1);
  CHECK(out.find("cannot listen on admin address " + b.upstream()) != std::string::npos);
}

TEST_CASE("--listen on port 0 takes a free port and reports the real one") {
  TempDir dir;
  ChildProcess p({USERKEY_BACKEND_BIN, "--listen", "127.0.0.1:0", "--dump", dump_dir().string()}, dir.path() / "b.log");
  std::uint16_t port = 0;
  for (int i = 0; i < 200 && port == 0; ++i) {
    const auto log = p.log();
    const auto at = log.find("serving http://127.0.0.1:");
    if (at != std::string::npos) port = static_cast<std::uint16_t>(std::stoi(log.substr(at + 25)));
    else std::this_thread::sleep_for(25ms);
  }
  REQUIRE(port != 0);
  REQUIRE(wait_for_port(port, 5s));
  auto j = json::parse(http_get(port, "/").body);
  CHECK(j["port"] == port);
  CHECK(j["backend"] == "backend-" + std::to_string(port));
}

TEST_CASE("SIGTERM lets an in-flight request finish (here: one waiting on a hung database)") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  Backend b({"--mongo-uri", db.uri(), "--mongo-timeout", "800ms"}, creds);
  REQUIRE(http_get(b.port, "/?user_id=5").status == 400);  // connected (nothing restored: unknown id)
  // Lookups now take the full timeout before answering 503. (A killed
  // database is refused at once: reads are not retried.)
  db.pause();
  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  std::thread client([&] { status = http_get(b.port, "/?user_id=1", {}, 10s).status; });
  std::this_thread::sleep_for(200ms);  // the request is in flight
  b.proc.signal(SIGTERM);
  client.join();
  CHECK(status == 503);  // answered, not dropped
  CHECK(std::chrono::steady_clock::now() - start >= 600ms);
  auto rc = b.proc.wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}

TEST_CASE("--stale-ttl: while the database is down, a cached key is answered past its TTL, for a bounded time") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  std::string out;
  REQUIRE_MESSAGE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "restore", dump_dir().string()}, &out, creds) == 0, out);
  const std::vector<std::string> common{"--mongo-uri", db.uri(), "--cache-ttl", "1s", "--mongo-timeout", "300ms"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), common.begin(), common.end());
    return extra;
  };
  Backend stale(with({"--stale-ttl", "3s"}), creds);
  Backend strict(with({"--stale-ttl", "0"}), creds);
  REQUIRE(http_get(stale.port, "/?user_id=1").status == 200);
  REQUIRE(http_get(strict.port, "/?user_id=1").status == 200);
  // Both cached user 1 before this instant: expired at t0 + 1 s at the
  // latest, servable stale until t0 + 4 s at the latest.
  const auto t0 = std::chrono::steady_clock::now();
  db.stop();
  std::this_thread::sleep_until(t0 + 1200ms);  // past the TTL (margin: 200 ms)
  auto r = http_get(stale.port, "/?user_id=1");
  CHECK(r.status == 200);
  CHECK(r.body.find("one@5cdb5896d7c8") != std::string::npos);
  CHECK(http_get(strict.port, "/?user_id=1").status == 503);  // 0 = off
  CHECK(http_get(stale.port, "/?user_id=2").status == 503);   // never cached: nothing to fall back on
  CHECK(http_get(stale.port, "/readyz").status == 503);       // readiness tells the truth
  std::this_thread::sleep_until(t0 + 4500ms);  // past TTL + stale-ttl (margin: 500 ms)
  CHECK(http_get(stale.port, "/?user_id=1").status == 503);
}

TEST_CASE("requests rejected before routing (malformed, body, target or head too large) get the JSON error shape") {
  Backend b({"--name", "backend-j", "--dump", dump_dir().string()});
  const std::string long_target = "/?user_id=" + std::string(9000, '1');
  const std::string big_body(100'000, 'x');  // the limit is 64 KiB
  const std::vector<std::pair<int, std::string>> cases{
      {400, "NONSENSE\r\n\r\n"},
      {414, "GET " + long_target + " HTTP/1.1\r\nHost: t\r\n\r\n"},
      {414, "GET /?user_id=" + std::string(20'000, '1') + " HTTP/1.1\r\nHost: t\r\n\r\n"},
      {431, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20'000, 'a') + "\r\n\r\n"},
      {400, "GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n"},
      {400, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {413, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(big_body.size()) + "\r\n\r\n" + big_body},
  };
  for (const auto& [status, request] : cases) {
    CAPTURE(request.substr(0, 40));
    auto r = parse_response(raw_exchange(b.port, request));
    CHECK(r.status == status);
    CHECK(r.headers["content-type"].rfind("application/json", 0) == 0);
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    REQUIRE_MESSAGE(j.is_object(), r.body);
    CHECK(j["error"].is_string());
    CHECK(j["port"] == b.port);
    CHECK(j["backend"] == "backend-j");
  }
}

TEST_CASE("/readyz is 503 'empty' while the collection is missing, 200 once users are restored") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  Backend b({"--mongo-uri", db.uri()}, creds);
  auto r = http_get(b.port, "/readyz");
  CHECK(r.status == 503);
  json j = json::parse(r.body, nullptr, false);
  CHECK(j["reason"] == "empty");
  std::string out;
  REQUIRE_MESSAGE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "restore", dump_dir().string()}, &out, creds) == 0, out);
  CHECK(wait_for_status(b.port, "/readyz", 200, 5s));
}

TEST_CASE("a hung database (SIGSTOP) is a 503 within --mongo-timeout + 200 ms; SIGCONT: served again, no restart") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  std::string out;
  REQUIRE_MESSAGE(run({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "restore", dump_dir().string()}, &out, creds) == 0, out);
  constexpr auto kTimeout = 1000ms;
  // The bound is the flag + 200 ms; the CI margin on top is for this shared
  // 2-core machine's scheduling (a request, a thread wake-up, a process
  // start-up in parallel), not for the database.
  constexpr auto kCiMargin = 300ms;
  constexpr auto kBound = kTimeout + 200ms + kCiMargin;
  // 3 workers for 8 concurrent requests: most wait for a worker too.
  Backend b({"--mongo-uri", db.uri(), "--mongo-timeout", "1s", "--cache-size", "0", "--threads", "3"}, creds);
  for (int id = 1; id <= 7; ++id) REQUIRE(http_get(b.port, "/?user_id=" + std::to_string(id)).status == 200);

  db.pause();
  // Two rounds: at once (the driver still believes the server is up: the
  // pooled connections hang) and after the heartbeat saw it hang (server
  // selection waits).
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    constexpr int kClients = 8;
    std::vector<int> status(kClients);
    std::vector<std::chrono::steady_clock::duration> took(kClients);
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back([&, i] {
        const auto start = std::chrono::steady_clock::now();
        const std::string target = i == kClients - 1 ? "/readyz" : "/?user_id=" + std::to_string(1 + i % 7);
        status[i] = http_get(b.port, target, {}, 10s).status;
        took[i] = std::chrono::steady_clock::now() - start;
      });
    }
    for (auto& c : clients) c.join();
    std::string report;
    for (int i = 0; i < kClients; ++i)
      report += " " + std::to_string(status[i]) + "/" +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took[i]).count()) + "ms";
    MESSAGE("hung database, round " << round << ": status/time to answer:" << report);
    for (int i = 0; i < kClients; ++i) {
      CAPTURE(i);
      CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(took[i]).count());
      CHECK(status[i] == 503);
      CHECK(took[i] <= kBound);
    }
    std::this_thread::sleep_for(1500ms);
  }

  db.resume();
  CHECK(wait_for_status(b.port, "/?user_id=1", 200, 15s));
  CHECK(wait_for_status(b.port, "/readyz", 200, 5s));
}

TEST_CASE("a port already served is a start-up error (no SO_REUSEPORT); --backlog is the listen backlog") {
  Backend b({"--dump", dump_dir().string(), "--backlog", "77"});
  std::string out;
  CHECK(run({USERKEY_BACKEND_BIN, "--listen", b.upstream(), "--dump", dump_dir().string()}, &out) == 1);
  CHECK(out.find("cannot listen on " + b.upstream()) != std::string::npos);
  CHECK(http_get(b.port, "/").status == 200);  // the first one still has the port to itself
  // ss(8) shows a listening socket's backlog as its Send-Q.
  if (std::filesystem::exists("/usr/bin/ss") &&
      run({"/usr/bin/ss", "-ltnH", "sport = :" + std::to_string(b.port)}, &out, {}, true) == 0) {
    CAPTURE(out);
    CHECK(out.find(" 77 ") != std::string::npos);
  } else {
    MESSAGE("ss not available: the backlog is not checked");
  }
}
