// Unit tests for lib/backend/router.cpp, over the scripted FakeRepository
// (fake_repository.hpp).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include <userkey/backend/router.hpp>

#include "fake_repository.hpp"

using namespace userkey;
using nlohmann::json;

namespace {
struct Fixture {
  std::shared_ptr<test::FakeRepository> repo = std::make_shared<test::FakeRepository>();
  std::ostringstream log_text;
  std::shared_ptr<spdlog::logger> log =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
  Router router{repo, {"backend-1", 5001}, log};
  Fixture() { repo->put(1, "one@5cdb5896d7c8"); }
  HttpResponse get(std::string_view target, std::string_view accept = "") const {
    return router.handle({"GET", target, accept});
  }
};
std::string header(const HttpResponse& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}
}  // namespace

TEST_CASE_FIXTURE(Fixture, "GET /?user_id=1 returns the key and who answered") {
  auto r = get("/?user_id=1");
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/json");
  CHECK(json::parse(r.body) ==
        json{{"user_id", "1"}, {"user_key", "one@5cdb5896d7c8"}, {"port", 5001}, {"backend", "backend-1"}});
  // Field order is the documented one.
  CHECK(r.body.rfind("{\"user_id\":\"1\",\"user_key\":\"one@5cdb5896d7c8\",\"port\":5001,\"backend\":\"backend-1\"}", 0) == 0);
}

TEST_CASE_FIXTURE(Fixture, "GET / says which backend answered") {
  auto r = get("/");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body) == json{{"port", 5001}, {"backend", "backend-1"}});
  CHECK(get("/?other=1").status == 200);
}

TEST_CASE_FIXTURE(Fixture, "an unknown id is a 400 naming the id") {
  auto r = get("/?user_id=9");
  CHECK(r.status == 400);
  auto j = json::parse(r.body);
  CHECK(j["error"] == "unknown user_id");
  CHECK(j["user_id"] == "9");
  CHECK(j["backend"] == "backend-1");
}

TEST_CASE_FIXTURE(Fixture, "empty, oversized, malformed and operator-shaped ids are 400 with a message") {
  for (const char* target : {"/?user_id=", "/?user_id", "/?user_id=12345678901", "/?user_id=abc", "/?user_id=-1",
                             "/?user_id=1.5", "/?user_id=%7B%22%24ne%22%3Anull%7D", "/?user_id={\"$ne\":null}",
                             "/?user_id[$ne]=1", "/?user_id=%7B%22%24gt%22%3A%22%22%7D", "/?user_id=%zz",
                             "/?user_id=1&user_id=2", "/?user_id=2147483648"}) {
    CAPTURE(target);
    auto r = get(target);
    if (std::string_view(target) == "/?user_id[$ne]=1") {
      // A different parameter name: no user_id at all, so it's the plain "/" answer.
      CHECK(r.status == 200);
      CHECK_FALSE(json::parse(r.body).contains("user_key"));
      continue;
    }
    CHECK(r.status == 400);
    auto j = json::parse(r.body);
    CHECK(j["error"] == "invalid user_id");
    CHECK_FALSE(j["detail"].get<std::string>().empty());
  }
  CHECK(repo->calls == 0);  // none of them reached the repository
  std::string huge = "/?user_id=" + std::string(100000, '1');
  CHECK(get(huge).status == 400);
}

TEST_CASE_FIXTURE(Fixture, "percent-encoded digits are plain ids") {
  auto r = get("/?user_id=%31");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["user_key"] == "one@5cdb5896d7c8");
}

TEST_CASE_FIXTURE(Fixture, "database down is a 503 with Retry-After") {
  repo->fail_with = LookupStatus::unavailable;
  auto r = get("/?user_id=1");
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["error"] == "database unavailable");
  CHECK(header(r, "Retry-After") == "1");
  CHECK(get("/readyz").status == 503);
  CHECK(get("/healthz").status == 200);
}

TEST_CASE_FIXTURE(Fixture, "refused credentials are a 503 and exactly one log line") {
  repo->fail_with = LookupStatus::unauthorized;
  for (int i = 0; i < 5; ++i) CHECK(get("/?user_id=1").status == 503);
  const auto text = log_text.str();
  CHECK(text.find("refused our credentials") != std::string::npos);
  CHECK(text.find("refused our credentials") == text.rfind("refused our credentials"));
  repo->fail_with = LookupStatus::found;
  CHECK(get("/?user_id=1").status == 200);
}

TEST_CASE_FIXTURE(Fixture, "a browser gets an HTML page with the same data") {
  const char* firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
  auto r = get("/?user_id=1", firefox);
  CHECK(r.status == 200);
  CHECK(r.content_type.rfind("text/html", 0) == 0);
  CHECK(r.body.find("one@5cdb5896d7c8") != std::string::npos);
  CHECK(r.body.find("backend-1") != std::string::npos);
  CHECK(get("/", firefox).body.find("5001") != std::string::npos);
  CHECK(get("/", "*/*").content_type == "application/json");
  CHECK(get("/", "application/json, text/html;q=0.5").content_type == "application/json");
  CHECK(get("/", "text/html;q=0.1, application/json;q=0.9").content_type == "application/json");
}

TEST_CASE("HTML output escapes what it shows") {
  auto repo = std::make_shared<test::FakeRepository>();
  repo->put(2, "<script>alert(1)</script>");
  Router router(repo, {"<b>x</b>", 1});
  auto r = router.handle({"GET", "/?user_id=2", "text/html"});
  CHECK(r.body.find("<script>") == std::string::npos);
  CHECK(r.body.find("&lt;script&gt;") != std::string::npos);
  auto j = router.handle({"GET", "/?user_id=2", ""});
  CHECK(json::parse(j.body)["user_key"] == "<script>alert(1)</script>");
}

TEST_CASE("an HTML page shows a key exactly as stored, quotes and backslashes included") {
  auto repo = std::make_shared<test::FakeRepository>();
  repo->put(3, R"(a"b\c)");
  Router router(repo, {"backend-3", 5003});
  auto r = router.handle({"GET", "/?user_id=3", "text/html"});
  CHECK(r.body.find("<dd>a&quot;b\\c</dd>") != std::string::npos);  // not JSON's a\"b\\c
  CHECK(r.body.find("<dd>5003</dd>") != std::string::npos);
  auto j = router.handle({"GET", "/?user_id=3", ""});
  CHECK(json::parse(j.body)["user_key"] == R"(a"b\c)");
  CHECK(json::parse(j.body)["port"] == 5003);
}

TEST_CASE_FIXTURE(Fixture, "/readyz says why the store is not ready") {
  repo->fail_with = LookupStatus::unauthorized;
  auto r = get("/readyz");
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["reason"] == "unauthorized");
  CHECK(header(r, "Retry-After") == "1");
  repo->fail_with = LookupStatus::unavailable;
  CHECK(json::parse(get("/readyz").body)["reason"] == "unavailable");
  repo->fail_with = LookupStatus::found;
  CHECK(json::parse(get("/readyz").body)["status"] == "ready");
}

TEST_CASE_FIXTURE(Fixture, "a repository that throws is a 503, not an exception out of the router") {
  repo->throws = true;
  HttpResponse r;
  CHECK_NOTHROW(r = get("/?user_id=1"));
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["error"] == "database unavailable");
  CHECK(header(r, "Retry-After") == "1");
  CHECK_NOTHROW(r = get("/readyz"));
  CHECK(r.status == 503);
  CHECK(log_text.str().find("scripted exception") != std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "every answer of / varies with Accept (JSON or HTML), and says so") {
  repo->put(2, "two");
  for (auto target : {"/", "/?user_id=1", "/?user_id=9", "/?user_id=x"}) {
    for (auto accept : {"", "text/html"}) {
      CAPTURE(target);
      CAPTURE(accept);
      CHECK(header(get(target, accept), "Vary") == "Accept");
    }
  }
  repo->fail_with = LookupStatus::unavailable;
  CHECK(header(get("/?user_id=1"), "Vary") == "Accept");
  CHECK(header(get("/nope", "text/html"), "Vary") == "Accept");  // 404 is negotiated too
}

TEST_CASE_FIXTURE(Fixture, "/readyz names an empty store") {
  struct Empty final : UserRepository {
    LookupResult find_key(UserId) override { return LookupResult::not_found(); }
    ReadyResult ready() override { return StoreStatus::error(StoreStatus::Code::empty, "no users"); }
    std::string describe() const override { return "empty"; }
  };
  Router r(std::make_shared<Empty>(), {"backend-1", 5001});
  auto res = r.handle({"GET", "/readyz", ""});
  CHECK(res.status == 503);
  CHECK(json::parse(res.body)["reason"] == "empty");
}

TEST_CASE_FIXTURE(Fixture, "errors found before routing have the router's JSON shape") {
  for (int status : {400, 413, 414, 431}) {
    auto r = router.protocol_error(status);
    CHECK(r.status == status);
    CHECK(r.content_type == "application/json");
    auto j = json::parse(r.body);
    CHECK(j["error"].is_string());
    CHECK(j["port"] == 5001);
    CHECK(j["backend"] == "backend-1");
  }
  CHECK(json::parse(router.protocol_error(413).body)["error"] == "request body too large");
}

TEST_CASE("StoreStatus: ok or a failure with a reason; a LookupResult converts for older stores") {
  CHECK(StoreStatus::success().ok());
  const auto down = StoreStatus::error(StoreStatus::Code::unavailable, "no server");
  CHECK_FALSE(down.ok());
  CHECK(to_string(down.code) == "unavailable");
  CHECK(down.detail == "no server");
  CHECK(StoreStatus(LookupResult::found({})).ok());
  CHECK(StoreStatus(LookupResult::error(LookupStatus::unauthorized, "x")).code == StoreStatus::Code::unauthorized);
  CHECK(StoreStatus(LookupResult::not_found()).code == StoreStatus::Code::unavailable);
}

TEST_CASE_FIXTURE(Fixture, "probes, unknown paths and methods") {
  CHECK(get("/healthz").status == 200);
  CHECK(get("/readyz").status == 200);
  CHECK(get("/nope").status == 404);
  auto r = router.handle({"POST", "/", ""});
  CHECK(r.status == 405);
  CHECK(header(r, "Allow") == "GET, HEAD");
  CHECK(router.handle({"HEAD", "/?user_id=1", ""}).status == 200);
}
