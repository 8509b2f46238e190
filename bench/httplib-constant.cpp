// The yardstick for the backend alone: a cpp-httplib server (Debian's
// libcpp-httplib-dev) that answers every GET / with one constant JSON body of
// the size of a userkey-backend answer, doing no lookup at all. Its
// requests/s is the limit of that HTTP layer on this machine; issue 9 wants
// userkey-backend on cache hits at >= 0.8x of it.
//
//   httplib-constant PORT [THREADS]    (THREADS: its thread pool, default 256;
//                                       one thread serves one keep-alive connection)
//
// Built by bench/stack.py with g++ (no CMake target: only the benchmark needs it).
#include <httplib.h>

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: httplib-constant PORT [THREADS]\n";
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const std::size_t threads = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 256;
  const std::string body = R"({"user_id":"1","user_key":"one@5cdb5896d7c8","port":)" + std::to_string(port) +
                           R"(,"backend":"httplib-constant"})";

  httplib::Server server;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // wrk keeps its connections: do not close them every few requests (the
  // library's default is 5 requests per connection).
  server.set_keep_alive_max_count(1 << 30);
  // Head and body go out in separate writes: without TCP_NODELAY, Nagle and
  // the client's delayed ACK hold every answer back ~40 ms.
  server.set_tcp_nodelay(true);
  server.Get("/", [&body](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  if (!server.listen("127.0.0.1", port)) {
    std::cerr << "httplib-constant: cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
}
