// embed_router: the userkey `/` contract served by *your own* cpp-httplib
// server, from *your own* store.
//
// userkey::Router knows the HTTP contract (status codes, JSON/HTML bodies,
// id validation) but no HTTP server and no database. Here the store is a
// std::map and the server is a plain httplib::Server; the glue is one handler.
//
//   embed_router [--port N]   serve on 127.0.0.1:N (default 8090) until Ctrl-C
//   embed_router --self-test  serve on a kernel-chosen port, query it, exit 0/1
#include <httplib.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "userkey/backend/router.hpp"
#include "userkey/core/signal_watcher.hpp"
#include "userkey/backend/user_repository.hpp"

namespace {

/// A UserRepository over an in-memory map. Immutable after construction, so
/// find_key() is safe from any number of server threads without a lock.
class MapRepository final : public userkey::UserRepository {
public:
  explicit MapRepository(std::map<userkey::UserId, std::string> keys) : keys_(std::move(keys)) {}

  userkey::LookupResult find_key(userkey::UserId id) override {
    auto it = keys_.find(id);
    return it == keys_.end() ? userkey::LookupResult::not_found() : userkey::LookupResult::found(it->second);
  }
  userkey::StoreStatus ready() override { return userkey::StoreStatus::success(); }
  std::string describe() const override { return "map (" + std::to_string(keys_.size()) + " users)"; }

private:
  const std::map<userkey::UserId, std::string> keys_;
};

/// Routes every GET on `server` through `router` (which must outlive it).
void mount(httplib::Server& server, const userkey::Router& router) {
  server.Get(".*", [&router](const httplib::Request& req, httplib::Response& res) {
    const userkey::HttpResponse out = router.handle({req.method, req.target, req.get_header_value("Accept")});
    res.status = out.status;
    for (const auto& [name, value] : out.headers) res.set_header(name, value);
    res.set_content(out.body, out.content_type);
  });
}

/// One expectation of the self-test; prints what it saw.
bool expect(httplib::Client& client, const std::string& target, int status, std::string_view body_part) {
  auto res = client.Get(target);
  const bool ok = res && res->status == status && res->body.find(body_part) != std::string::npos;
  std::string seen = res ? res->body : httplib::to_string(res.error());
  if (!seen.empty() && seen.back() == '\n') seen.pop_back();
  std::printf("%s GET %-14s -> %d %s\n", ok ? "ok  " : "FAIL", target.c_str(), res ? res->status : -1, seen.c_str());
  return ok;
}

/// Serves on a kernel-chosen port from a background thread and checks the
/// contract through a real HTTP client.
int self_test(const std::shared_ptr<userkey::UserRepository>& repo) {
  httplib::Server server;
  const int port = server.bind_to_any_port("127.0.0.1");
  if (port < 0) {
    std::puts("FAIL cannot bind 127.0.0.1:0");
    return 1;
  }
  const userkey::Router router(repo, {"embedded", port});
  mount(server, router);
  std::thread loop([&server] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::yield();

  httplib::Client client("127.0.0.1", port);
  bool ok = expect(client, "/?user_id=1", 200, R"("user_key":"alice-key")");
  ok = expect(client, "/?user_id=2", 200, R"("backend":"embedded")") && ok;
  ok = expect(client, "/?user_id=9", 400, "unknown user_id") && ok;
  ok = expect(client, "/?user_id=abc", 400, "invalid user_id") && ok;
  ok = expect(client, "/readyz", 200, "") && ok;
  ok = expect(client, "/nowhere", 404, "") && ok;

  server.stop();
  loop.join();
  std::puts(ok ? "embed_router self-test passed" : "embed_router self-test FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto repo = std::make_shared<MapRepository>(std::map<userkey::UserId, std::string>{
      {1, "alice-key"}, {2, "bob-key"}, {3, "carol-key"}});
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "--self-test") return self_test(repo);
  const int port = mode == "--port" && argc > 2 ? std::stoi(argv[2]) : 8090;

  // The whole embedding: a repository, a Router, your server.
  userkey::SignalWatcher signals;  // before any thread: Ctrl-C is delivered to wait()
  httplib::Server server;
  const userkey::Router router(repo, {"embedded", port});
  mount(server, router);
  if (!server.bind_to_port("127.0.0.1", port)) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::thread loop([&server] { server.listen_after_bind(); });
  std::printf("serving %s on http://127.0.0.1:%d/?user_id=1 (Ctrl-C stops)\n", repo->describe().c_str(), port);
  signals.wait();
  server.stop();
  loop.join();
}
