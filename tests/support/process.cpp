#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace userkey::test {

namespace {

// Whether nothing holds `port` on 127.0.0.1 (0: the kernel picks one;
// `chosen` gets it).
bool bindable(std::uint16_t port, std::uint16_t& chosen) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: no socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  socklen_t len = sizeof addr;
  if (ok) ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  chosen = ntohs(addr.sin_port);
  return ok;
}

// The first port of the kernel's ephemeral range (what outgoing
// connections are given).
unsigned ephemeral_low() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 0;
  if (!(range >> low)) low = 32768;
  return low;
}

}  // namespace

// Picked at random below the ephemeral range, from 10000 up: a port the
// kernel could give away as the source of any process's outgoing
// connection (the lb's to its upstreams, a client's) may be taken between
// this check and the test's listen, which happened under load. Never one
// this process handed out before (its holder may not have bound it yet).
std::uint16_t free_port() {
  static std::mutex mu;
  static std::set<std::uint16_t> handed_out;
  static std::mt19937 pick(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  std::lock_guard lock(mu);
  constexpr unsigned kFirst = 10000;
  const unsigned low = ephemeral_low();
  std::uint16_t chosen = 0;
  if (low > kFirst + 1000) {
    for (int tries = 0; tries < 2000; ++tries) {
      const auto port = static_cast<std::uint16_t>(kFirst + pick() % (low - kFirst));
      if (handed_out.count(port) == 0 && bindable(port, chosen)) {
        handed_out.insert(port);
        return port;
      }
    }
  }
  if (!bindable(0, chosen)) throw std::runtime_error("free_port: bind failed");
  handed_out.insert(chosen);
  return chosen;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "userkey-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::filesystem::path log_file,
                           std::map<std::string, std::string> env, std::filesystem::path stderr_file)
    : log_file_(std::move(log_file)) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : env) {
    if (v.empty()) merged.erase(k);
    else merged[k] = v;
  }
  std::vector<std::string> env_strings;
  for (auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : argv) args.push_back(s.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (stderr_file.empty()) posix_spawn_file_actions_adddup2(&actions, 1, 2);
  else posix_spawn_file_actions_addopen(&actions, 2, stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = posix_spawn(&pid_, args[0], &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

ChildProcess::~ChildProcess() { stop(); }

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(o.pid_), status_(o.status_), log_file_(std::move(o.log_file_)) {
  o.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = o.pid_;
    status_ = o.status_;
    log_file_ = std::move(o.log_file_);
    o.pid_ = -1;
  }
  return *this;
}

bool ChildProcess::running() {
  if (pid_ <= 0 || status_) return false;
  return !wait(std::chrono::milliseconds(0)).has_value();
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_;
  if (status_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void ChildProcess::kill() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::milliseconds(5000));
  }
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGTERM);
    if (!wait(grace)) kill();
  }
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunOutcome run_to_exit(const std::vector<std::string>& argv, std::map<std::string, std::string> env) {
  TempDir dir;
  ChildProcess p(argv, dir.path() / "out.log", std::move(env), dir.path() / "err.log");
  RunOutcome o;
  o.rc = p.wait(std::chrono::seconds(30)).value_or(-1);
  o.out = read_text_file(dir.path() / "out.log");
  o.err = read_text_file(dir.path() / "err.log");
  return o;
}

bool file_contains(const std::filesystem::path& path, const std::string& text) {
  return read_text_file(path).find(text) != std::string::npos;
}

std::string ChildProcess::log() const { return read_text_file(log_file_); }

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

HttpResult http_get(std::uint16_t port, const std::string& target, const std::map<std::string, std::string>& headers,
                    std::chrono::milliseconds timeout) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(timeout);
  cli.set_read_timeout(timeout);
  httplib::Headers h;
  for (auto& [k, v] : headers) h.emplace(k, v);
  auto res = cli.Get(target.c_str(), h);
  HttpResult out;
  if (!res) return out;
  out.status = res->status;
  out.body = res->body;
  for (auto& [k, v] : res->headers) {
    std::string name = k;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = v;
  }
  return out;
}

bool wait_for_status(std::uint16_t port, const std::string& target, int status, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (http_get(port, target, {}, std::chrono::milliseconds(500)).status == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

std::filesystem::path dump_dir() { return std::filesystem::path(USERKEY_SOURCE_DIR) / "dump"; }

}  // namespace userkey::test

namespace userkey::test {

std::string raw_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

int status_of(const std::string& raw) {
  if (raw.size() < 12 || raw.compare(0, 5, "HTTP/") != 0) return 0;
  return std::atoi(raw.c_str() + 9);
}

}  // namespace userkey::test

namespace userkey::test {

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

RawConnection::RawConnection(std::uint16_t port) : fd_(connect_loopback(port)) {}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::send(const std::string& bytes) {
  if (fd_ >= 0) ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
}

std::string RawConnection::receive(std::chrono::milliseconds timeout) {
  std::string out;
  if (fd_ < 0) return out;
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  const auto n = ::recv(fd_, buf, sizeof buf, 0);
  if (n > 0) out.assign(buf, static_cast<std::size_t>(n));
  return out;
}

}  // namespace userkey::test
