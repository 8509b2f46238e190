// End-to-end: streamed responses (bodies over 64 KiB, relayed as they
// arrive) when one side is slow, and over TLS to the upstream, as the client
// sees them. An upstream that stops mid-body for longer than
// --upstream-timeout: the client gets what was sent, then its connection
// closes, the timeout is counted in /metrics and the lb serves on. A client
// that pauses (under the timeout) and then reads slowly: every byte arrives,
// in order, while the upstream is held back and the lb's memory stays flat.
// A TLS upstream's long chunked and Content-Length bodies arrive intact.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/certificates.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"
#include "support/stream_client.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitizer builds' RSS (freed memory in quarantine, shadow memory) says
// nothing about the lb's: no RSS bound there (the default build checks it).
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr auto npos = std::string::npos;

// Every body here is 16-byte records, each its own offset in 15 hex digits
// and a newline ("0000000000000a0\n"), so a byte lost, doubled or moved shows,
// and where. The Python upstream below makes the same.
void append_pattern(std::string& out, std::uint64_t offset, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  char record[16];
  std::uint64_t at = offset / 16 * 16;
  std::size_t skip = offset % 16;
  while (n > 0) {
    for (int i = 0; i < 15; ++i) record[i] = kHex[(at >> (4 * (14 - i))) & 0xf];
    record[15] = '\n';
    const std::size_t take = std::min<std::size_t>(16 - skip, n);
    out.append(record + skip, take);
    n -= take;
    skip = 0;
    at += 16;
  }
}
std::string pattern(std::uint64_t offset, std::size_t n) {
  std::string out;
  out.reserve(n);
  append_pattern(out, offset, n);
  return out;
}
/// Where `got`, the body from `offset` on, first differs from the pattern
/// (relative to `got`), or npos.
std::size_t mismatch(std::string_view got, std::uint64_t offset) {
  const std::string want = pattern(offset, got.size());
  const auto m = std::mismatch(got.begin(), got.end(), want.begin());
  return m.first == got.end() ? npos : static_cast<std::size_t>(m.first - got.begin());
}

std::string length_header(std::uint64_t n) { return "Content-Length: " + std::to_string(n) + "\r\n"; }

constexpr std::string_view kSmall = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// GET /stall: a Content-Length of kStallLength, kStallAfter bytes of it, then
// nothing until the lb closes the connection (at most 20 s). Anything else:
// 200 "ok".
constexpr std::uint64_t kStallLength = 4 << 20;
constexpr std::uint64_t kStallAfter = (256 << 10) + 5;

struct StallingUpstream {
  std::atomic<bool> stalled{false};       ///< it answered a GET /stall up to the stall
  std::atomic<bool> closed_on_it{false};  ///< ...and the lb then closed that connection
  std::atomic<int> small{0};              ///< other requests answered
  RawUpstream raw{[this](int fd, const std::string& head) { answer(fd, head); }};

  std::string upstream() const { return raw.upstream(); }

  void answer(int fd, const std::string& head) {
    if (head.rfind("GET /stall ", 0) != 0) {
      ++small;
      RawUpstream::send_all(fd, std::string(kSmall));
      return;
    }
    RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" +
                                  length_header(kStallLength) + "\r\n" + pattern(0, kStallAfter));
    stalled = true;
    for (int i = 0; i < 200; ++i) {
      pollfd p{fd, POLLIN, 0};
      char byte = 0;
      if (::poll(&p, 1, 100) > 0 && ::recv(fd, &byte, 1, 0) <= 0) {
        closed_on_it = true;
        return;
      }
    }
  }
};

// GET /bulk: kBulk bytes with a Content-Length, as fast as the lb takes
// them, through a small send buffer (so what is not yet taken is counted as
// not sent). Anything else: 200 "ok".
constexpr std::uint64_t kBulk = std::uint64_t{64} << 20;

struct BulkUpstream {
  std::atomic<std::uint64_t> sent{0};  ///< body bytes of GET /bulk the kernel took
  RawUpstream raw{[this](int fd, const std::string& head) { answer(fd, head); }};

  std::string upstream() const { return raw.upstream(); }

  void answer(int fd, const std::string& head) {
    if (head.rfind("GET /bulk ", 0) != 0) {
      RawUpstream::send_all(fd, std::string(kSmall));
      return;
    }
    const int buffer = 64 * 1024;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + length_header(kBulk) +
                                  "\r\n");
    std::string block;
    for (std::uint64_t off = 0; off < kBulk; off += block.size()) {
      block.clear();
      append_pattern(block, off, std::min<std::uint64_t>(256 * 1024, kBulk - off));
      RawUpstream::send_all(fd, block);
      sent += block.size();
    }
  }
};

/// The most bytes the kernel can hold between an upstream and a client of
/// the lb when neither the lb nor the client reads: one socket's receive
/// buffer and one's send buffer at their largest (the lb leaves both to the
/// kernel's tuning), plus 1 MiB for the client's and the upstream's small
/// ones and the lb's own buffer.
std::uint64_t kernel_buffer_bound() {
  auto largest = [](const char* file) {
    std::ifstream in(file);
    std::uint64_t low = 0, initial = 0, high = 0;
    in >> low >> initial >> high;
    return high;
  };
  return largest("/proc/sys/net/ipv4/tcp_rmem") + largest("/proc/sys/net/ipv4/tcp_wmem") + (1 << 20);
}

// Reads responses off a StreamClient, one after the other; what came after
// one response stays for the next.
struct ResponseReader {
  explicit ResponseReader(StreamClient& c) : client(c) {}

  StreamClient& client;
  std::string buf;
  std::size_t pos = 0;

  /// At least `n` bytes past `pos` (false: the connection ended, or nothing
  /// came for 10 s).
  bool need(std::size_t n) {
    while (buf.size() - pos < n) {
      if (pos >= (1 << 20)) {
        buf.erase(0, pos);
        pos = 0;
      }
      if (client.read(buf, 256 * 1024, 10s) <= 0) return false;
    }
    return true;
  }
  /// The next head, "" when none came.
  std::string head() {
    for (;;) {
      const auto end = buf.find("\r\n\r\n", pos);
      if (end != npos) {
        std::string h = buf.substr(pos, end + 4 - pos);
        pos = end + 4;
        return h;
      }
      if (!need(buf.size() - pos + 1)) return {};
    }
  }
  /// A body of `n` bytes; nullopt when the connection ends first.
  std::optional<std::string> body(std::size_t n) {
    if (!need(n)) return std::nullopt;
    std::string b = buf.substr(pos, n);
    pos += n;
    return b;
  }
  /// A chunked body, decoded; nullopt when its framing is broken or it ends
  /// early. (The lb sends no trailers.)
  std::optional<std::string> chunked() {
    std::string b;
    for (;;) {
      auto eol = buf.find("\r\n", pos);
      while (eol == npos) {
        if (!need(buf.size() - pos + 1)) return std::nullopt;
        eol = buf.find("\r\n", pos);
      }
      std::size_t size = 0;
      const auto [end, ec] = std::from_chars(buf.data() + pos, buf.data() + eol, size, 16);
      if (ec != std::errc{} || end != buf.data() + eol) return std::nullopt;
      pos = eol + 2;
      if (!need(size + 2)) return std::nullopt;
      b.append(buf, pos, size);
      if (buf.compare(pos + size, 2, "\r\n") != 0) return std::nullopt;
      pos += size + 2;
      if (size == 0) return b;
    }
  }
};

}  // namespace

TEST_CASE("an upstream that stalls mid-body past --upstream-timeout: the client gets what was sent, then its "
          "connection closes; the timeout is counted and the lb serves on") {
  StallingUpstream a, b;
  LbProcess lb({"--upstream", a.upstream(), "--upstream", b.upstream(), "--upstream-timeout", "300ms",
                "--max-fails", "1", "--fail-timeout", "30s", "--no-active-health", "--access-log", "false"});
  StreamClient client(lb.port);
  client.send("GET /stall HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string in;
  long n = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline && (n = client.read(in, 256 * 1024, 1000ms)) >= 0) {
  }
  CHECK(n < 0);  // closed by the lb (not by the deadline)
  const auto head_end = in.find("\r\n\r\n");
  REQUIRE(head_end != npos);
  CHECK(status_of(in) == 200);
  CHECK(in.substr(0, head_end + 2).find(length_header(kStallLength)) != npos);
  const std::string_view body = std::string_view(in).substr(head_end + 4);
  CHECK(body.size() == kStallAfter);  // every byte sent before the stall, short of the length
  CHECK(mismatch(body, 0) == npos);

  REQUIRE(a.stalled.load() != b.stalled.load());  // one upstream had it, and it was not retried
  StallingUpstream& stalled = a.stalled ? a : b;
  StallingUpstream& other = a.stalled ? b : a;
  CHECK(eventually([&] { return stalled.closed_on_it.load(); }, 5s));
  auto errors = [&](const StallingUpstream& u, const std::string& kind) {
    return lb.metric("userkey_lb_upstream_errors_total{upstream=\"" + u.upstream() + "\",kind=\"" + kind + "\"}");
  };
  CHECK_MESSAGE(eventually([&] { return errors(stalled, "timeout") == 1; }, 5s), lb.metrics());
  CHECK(errors(stalled, "response") == 0);
  CHECK(errors(other, "timeout") == 0);
  CHECK(eventually([&] { return file_contains(lb.dir.path() / "lb.log", "failed mid-body (timeout)"); }, 5s));
  CHECK(lb.upstream_status(stalled.upstream())["passively_down"] == true);

  // The next requests are answered in full, by the other upstream.
  for (int i = 0; i < 4; ++i) {
    const auto r = raw_exchange(lb.port, "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(status_of(r) == 200);
    CHECK(r.ends_with("\r\n\r\nok"));
  }
  CHECK(other.small.load() == 4);
  CHECK(lb.proc.running());
}

TEST_CASE("a client that pauses under the timeout and reads slowly gets all of a 64 MiB body, in order; the upstream "
          "is held back meanwhile and the lb's RSS stays flat") {
  BulkUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--upstream-timeout", "5s", "--no-active-health", "--access-log",
                "false"});
  REQUIRE(status_of(raw_exchange(lb.port, "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200);
  const long rss_before = lb.rss_kib();
  REQUIRE(rss_before > 0);
  long rss_peak = rss_before;

  // A small receive buffer: while the client does not read, the lb's
  // writes find its socket full.
  StreamClient client(lb.port, 64 * 1024);
  client.send("GET /bulk HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string in;
  const auto head_end = client.read_head(in);
  REQUIRE(head_end != npos);
  CHECK(status_of(in) == 200);
  CHECK(in.substr(0, head_end).find(length_header(kBulk)) != npos);
  std::uint64_t got = 0;
  std::uint64_t first_bad = npos;
  auto take = [&](std::string_view piece) {
    const auto m = first_bad == npos ? mismatch(piece, got) : npos;
    if (m != npos) first_bad = got + m;
    got += piece.size();
  };
  take(std::string_view(in).substr(head_end));
  std::string buf;
  auto read_some = [&](std::size_t max) {
    buf.clear();
    const long n = client.read(buf, std::min<std::uint64_t>(max, kBulk - got), 5000ms);
    if (n > 0) take(buf);
    return n > 0;
  };

  // The first MiB at once, then a pause well under the 5 s each write to
  // the client may take.
  while (got < (1 << 20) && read_some(64 * 1024)) {
  }
  std::this_thread::sleep_for(1500ms);
  const std::uint64_t sent_at_pause = up.sent;
  const std::uint64_t got_at_pause = got;
  rss_peak = std::max(rss_peak, lb.rss_kib());
  // 2 MiB slowly (8 KiB every 2 ms at most), another pause, then the rest.
  for (const std::uint64_t until = got + (2 << 20); got < until && read_some(8 * 1024);)
    std::this_thread::sleep_for(2ms);
  std::this_thread::sleep_for(1500ms);
  rss_peak = std::max(rss_peak, lb.rss_kib());
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (got < kBulk && std::chrono::steady_clock::now() < deadline && read_some(256 * 1024)) {
  }
  CHECK(got == kBulk);
  CHECK_MESSAGE(first_bad == npos, "the body differs from what the upstream sent at byte " << first_bad);

  // Held back: while the client paused, the upstream had sent no more than
  // the sockets between them hold (a relay that buffered would have taken
  // all 64 MiB at once).
  const std::uint64_t bound = kernel_buffer_bound();
  MESSAGE("at the first pause: client had " << (got_at_pause >> 10) << " KiB, the upstream had sent "
                                            << (sent_at_pause >> 10) << " KiB (bound: " << (bound >> 10)
                                            << " KiB more); lb RSS " << rss_before << " -> peak " << rss_peak
                                            << " KiB");
  if (bound < kBulk)
    CHECK(sent_at_pause - got_at_pause <= bound);
  else
    MESSAGE("the kernel's socket buffers can hold the whole body: not checked");
  if (!kSanitized) CHECK(rss_peak - rss_before <= 16 * 1024);

  // The connection carries the next request.
  client.send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string next;
  const auto end = client.read_head(next);
  REQUIRE(end != npos);
  while (next.size() < end + 2 && client.read(next, 64, 1000ms) > 0) {
  }
  CHECK(status_of(next) == 200);
  CHECK(next.substr(end) == "ok");
}

namespace {

// An HTTPS upstream (Python's http.server behind its ssl module, HTTP/1.1
// keep-alive): GET /chunked/N answers N pattern bytes in chunks of uneven
// sizes, GET /length/N with a Content-Length, GET /connections how many
// connections it has accepted.
constexpr const char* kTlsBodies = R"PY(
import http.server, os, ssl, sys
port_file, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
accepted = 0
def pattern(n):
    return b"".join(b"%015x\n" % at for at in range(0, n, 16))[:n]
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def get_request(self):
        global accepted
        got = super().get_request()
        accepted += 1
        return got
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        kind, _, size = self.path.strip("/").partition("/")
        if kind == "chunked":
            body = pattern(int(size))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sizes = (1, 4093, 65536, 7, 200000, 16384)
            at = i = 0
            while at < len(body):
                piece = body[at:at + sizes[i % len(sizes)]]
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                at += len(piece)
                i += 1
            self.wfile.write(b"0\r\n\r\n")
            return
        body = pattern(int(size)) if kind == "length" else b"connections=%d" % accepted
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for at in range(0, len(body), 1 << 20):
            self.wfile.write(body[at:at + (1 << 20)])
    def log_message(self, *args):
        pass
server = Server(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
)PY";

struct TlsBodiesUpstream {
  TempDir dir;
  std::uint16_t port = 0;
  std::unique_ptr<ChildProcess> proc;
  explicit TlsBodiesUpstream(const Certificates& certs) {
    const auto script = dir.path() / "upstream.py";
    std::ofstream(script) << kTlsBodies;
    const auto port_file = dir.path() / "port";
    proc = std::make_unique<ChildProcess>(std::vector<std::string>{"/usr/bin/python3", script.string(),
                                                                   port_file.string(), certs.chain.string(),
                                                                   certs.key.string()},
                                          dir.path() / "upstream.log");
    eventually([&] { return std::filesystem::exists(port_file); }, 15s, 20ms);
    REQUIRE_MESSAGE(std::filesystem::exists(port_file), proc->log());
    std::ifstream(port_file) >> port;
  }
};

constexpr std::size_t kTlsChunked = 8 << 20;
constexpr std::size_t kTlsLength = (8 << 20) + 3;

}  // namespace

TEST_CASE("a TLS upstream's long chunked and Content-Length bodies reach the client intact, on one keep-alive "
          "connection each side") {
  Certificates certs;
  TlsBodiesUpstream up(certs);
  LbProcess lb({"--upstream", "127.0.0.1:" + std::to_string(up.port) + ",tls=on", "--tls-upstream-ca",
                certs.ca.string(), "--no-active-health", "--access-log", "false"});
  StreamClient client(lb.port);
  ResponseReader reader(client);

  client.send("GET /chunked/" + std::to_string(kTlsChunked) + " HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto chunked_head = reader.head();
  REQUIRE_MESSAGE(!chunked_head.empty(), lb.proc.log());
  CHECK(status_of(chunked_head) == 200);
  CHECK(chunked_head.find("Transfer-Encoding: chunked\r\n") != npos);
  const auto chunked = reader.chunked();
  REQUIRE_MESSAGE(chunked.has_value(), "the chunked body ended early or its framing broke");
  CHECK(chunked->size() == kTlsChunked);
  CHECK(mismatch(*chunked, 0) == npos);

  client.send("GET /length/" + std::to_string(kTlsLength) + " HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto length_head = reader.head();
  REQUIRE_MESSAGE(!length_head.empty(), lb.proc.log());
  CHECK(status_of(length_head) == 200);
  CHECK(length_head.find(length_header(kTlsLength)) != npos);
  const auto body = reader.body(kTlsLength);
  REQUIRE_MESSAGE(body.has_value(), "the Content-Length body ended early");
  CHECK(mismatch(*body, 0) == npos);

  // Both bodies ended cleanly, so the lb's one TLS connection to the
  // upstream carried all three requests.
  client.send("GET /connections HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto count_head = reader.head();
  REQUIRE(!count_head.empty());
  CHECK(status_of(count_head) == 200);
  CHECK(reader.body(std::string_view("connections=1").size()) == "connections=1");
  CHECK_FALSE(file_contains(lb.dir.path() / "lb.log", "failed mid-body"));
}
