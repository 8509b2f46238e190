// A consumer of userkey::lb alone: a ProxyServer in front of a tiny upstream
// written on plain POSIX sockets, one request through it. Built by
// tests/package/consume.sh against the installed package with cpp-httplib
// and mongo-c-driver out of reach (and no installed header names Boost), so
// it shows the lb part needs none of them. Exits 0 when the request came back from the upstream through the
// proxy with the upstream's answer, 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <userkey/core/logging.hpp>
#include <userkey/lb/balancing_policy.hpp>
#include <userkey/lb/proxy_config.hpp>
#include <userkey/lb/proxy_server.hpp>

namespace {

constexpr int kTimeoutMs = 5000;
constexpr const char kBody[] = "hello from upstream";

/// Reads from `fd` until `done(data)` holds, the peer closes, or 5 s pass.
template <typename Done>
std::string read_until(int fd, Done done) {
  std::string data;
  char buf[4096];
  while (!done(data)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kTimeoutMs) <= 0) break;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  return data;
}

bool write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

/// Answers every request with 200 and kBody, from a thread of its own, on a
/// kernel-chosen 127.0.0.1 port; remembers the last request line it read.
class TinyUpstream {
public:
  TinyUpstream() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("upstream");
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyUpstream() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  TinyUpstream(const TinyUpstream&) = delete;
  TinyUpstream& operator=(const TinyUpstream&) = delete;

  std::uint16_t port() const { return port_; }
  std::string last_request_line() const {
    const std::lock_guard lock(mutex_);
    return last_request_line_;
  }

private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int client = accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      const std::string head =
          read_until(client, [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; });
      {
        const std::lock_guard lock(mutex_);
        last_request_line_ = head.substr(0, head.find("\r\n"));
      }
      write_all(client, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(sizeof kBody - 1) + "\r\nConnection: close\r\n\r\n" + kBody);
      close(client);
    }
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::string last_request_line_;
};

/// One HTTP/1.1 exchange with 127.0.0.1:`port`: the whole response.
std::string get(std::uint16_t port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string response;
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      write_all(fd, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) {
    response = read_until(fd, [](const std::string&) { return false; });  // to the proxy's close
  }
  if (fd >= 0) close(fd);
  return response;
}

}  // namespace

int main() {
  TinyUpstream upstream;
  if (upstream.port() == 0) return 1;

  userkey::lb::ProxyConfig config;
  config.listen_port = 0;          // the kernel's choice, on 127.0.0.1
  config.admin_host = "";          // no admin endpoint
  config.access_log = false;
  config.active.enabled = false;   // no health-check requests to the upstream
  config.upstreams = {{.host = "127.0.0.1", .port = upstream.port()}};
  userkey::lb::ProxyServer proxy(config, userkey::lb::PolicyRegistry::with_builtins(),
                                 userkey::make_logger("lb_only", "warn"));
  std::string error;
  if (!proxy.start(&error)) {
    std::fprintf(stderr, "proxy: %s\n", error.c_str());
    return 1;
  }

  const std::string response = get(proxy.port(), "/greet?user_id=7");
  proxy.stop();
  const std::string seen = upstream.last_request_line();
  const bool ok = response.rfind("HTTP/1.1 200", 0) == 0 && response.ends_with(kBody) &&
                  seen == "GET /greet?user_id=7 HTTP/1.1";
  std::printf("upstream saw: %s\nclient got: %s\n%s\n", seen.c_str(),
              response.substr(0, response.find("\r\n")).c_str(), ok ? "lb_only: ok" : "lb_only: FAILED");
  return ok ? 0 : 1;
}
