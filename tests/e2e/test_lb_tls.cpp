// End-to-end: TLS termination with real clients. A throwaway CA and a leaf
// certificate for 127.0.0.1 / localhost are made by the `openssl` command
// line in a temp dir; userkey-lb serves HTTPS with them in front of a real
// userkey-backend (or an upstream that echoes X-Forwarded-Proto); curl
// (--cacert) and `openssl s_client` (TLS 1.2 and 1.3) are the clients.
// Also: session tickets across key rotation, plain HTTP sent to the TLS
// port, a handshake that never starts, TLS only (--listen off), and the
// start-up errors for unusable files.
#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/backend_process.hpp"
#include "support/certificates.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// curl over HTTPS, trusting only the test CA; the body, then a line with the
// status code and the TLS version curl saw.
CommandResult curl(const Certificates& certs, const std::string& url, const std::string& extra = {}) {
  return run_command("curl -sS --noproxy '*' --max-time 10 --cacert " + q(certs.ca) + " " + extra +
                     " -w '\\nstatus=%{http_code}' '" + url + "'");
}

// openssl s_client: one request with Connection: close, verified against the
// test CA, offering ALPN http/1.1; `version` is -tls1_2 or -tls1_3.
CommandResult s_client(const Certificates& certs, std::uint16_t port, const std::string& version,
                       const std::string& extra = {}) {
  return run_command("printf 'GET /?user_id=1 HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                     "timeout 15 openssl s_client -connect 127.0.0.1:" +
                     std::to_string(port) + " -servername localhost -CAfile " + q(certs.ca) +
                     " -verify_return_error -alpn http/1.1 -ign_eof " + version + " " + extra);
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// A backend on the embedded dump, quiet.
struct QuietBackend : BackendProcess {
  QuietBackend() : BackendProcess({"--name", "backend-1", "--access-log", "false", "--dump", dump_dir().string()}) {}
};

// An upstream that answers with the X-Forwarded-Proto it was sent.
struct ProtoEcho {
  HttplibUpstream http{[](httplib::Server& server) {
    server.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("proto=" + req.get_header_value("X-Forwarded-Proto") +
                          " fields=" + std::to_string(req.get_header_value_count("X-Forwarded-Proto")),
                      "text/plain");
    });
  }};
  std::string upstream() const { return http.upstream(); }
};

}  // namespace

TEST_CASE("TLS: curl with --cacert gets the backend's answer over HTTPS (TLS 1.2 and 1.3), by IP and by name") {
  Certificates certs;
  QuietBackend backend;
  const auto tls_port = free_port();
  LbProcess lb(with({"--upstream", backend.upstream()}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  const std::string by_ip = "https://127.0.0.1:" + std::to_string(tls_port) + "/?user_id=1";
  const std::string by_name = "https://localhost:" + std::to_string(tls_port) + "/?user_id=1";
  for (const auto& call : std::vector<std::pair<std::string, std::string>>{
           {by_ip, ""}, {by_name, ""}, {by_ip, "--tlsv1.2 --tls-max 1.2"}, {by_ip, "--tlsv1.3"}}) {
    const std::string& url = call.first;
    const std::string& extra = call.second;
    CAPTURE(url);
    CAPTURE(extra);
    const auto r = curl(certs, url, extra);
    CHECK_MESSAGE(r.status == 0, r.output);
    CHECK_MESSAGE(contains(r.output, "\"user_key\":\"one@5cdb5896d7c8\""), r.output);
    CHECK_MESSAGE(contains(r.output, "status=200"), r.output);
  }
  // Several requests on one TLS connection (curl reuses it for the second URL).
  const auto two = curl(certs, by_ip, "'" + by_ip + "' -v");
  CHECK_MESSAGE(contains(two.output, "Re-using existing connection"), two.output);
  CHECK_MESSAGE((contains(two.output, "server accepted http/1.1") || contains(two.output, "server accepted to use http/1.1")),
                two.output);
  // The plain listener goes on beside it.
  const auto plain = http_get(lb.port, "/?user_id=1");
  CHECK(plain.status == 200);
  CHECK(lb.proc.running());
}

TEST_CASE("TLS: X-Forwarded-Proto is https for requests that came over TLS, http for the others") {
  Certificates certs;
  ProtoEcho echo;
  const auto tls_port = free_port();
  LbProcess lb(with({"--upstream", echo.upstream(), "--no-active-health"}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  // The client's own X-Forwarded-Proto is replaced, never passed on.
  const auto r = curl(certs, "https://127.0.0.1:" + std::to_string(tls_port) + "/", "-H 'X-Forwarded-Proto: http'");
  CHECK_MESSAGE(contains(r.output, "proto=https fields=1"), r.output);
  const auto plain = http_get(lb.port, "/", {{"X-Forwarded-Proto", "https"}});
  CHECK(plain.body == "proto=http fields=1");
}

namespace {

// An upstream for bulk: POST echoes the body; GET /big answers kBigLines
// numbered lines ("000000042\n"), so a byte lost, doubled or moved shows.
constexpr std::size_t kBigLines = 800'000;  // 8 MB
std::string numbered_lines(std::size_t n) {
  std::string s;
  s.reserve(n * 10);
  char line[16];
  for (std::size_t i = 0; i < n; ++i) s.append(line, static_cast<std::size_t>(std::snprintf(line, sizeof line, "%09zu\n", i)));
  return s;
}
struct BulkUpstream {
  const std::string big = numbered_lines(kBigLines);
  HttplibUpstream http{[this](httplib::Server& server) {
    server.Post(".*", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.body, "application/octet-stream");
    });
    server.Get("/big", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(big, "application/octet-stream");
    });
    server.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("path=" + req.path, "text/plain");
    });
  }};  // (after `big`: stops before it goes)
  std::string upstream() const { return http.upstream(); }
};

// One keep-alive TLS connection (Python's ssl, verified against the CA):
// a 900 KB body sent in many records and echoed; an 8 MB answer read only
// after a second's pause (the lb's writes find the socket full and wait);
// a head sent in three records with pauses; two requests pipelined in one
// write. Prints one line per step.
constexpr const char* kBulkClient = R"PY(
import socket, ssl, sys, time
ca, port, big_lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20), server_hostname="localhost")
pending = b""
def response():
    global pending
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk: raise SystemExit("closed in a head")
        pending += chunk
    head, pending = pending.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = int([l.split(":")[1] for l in lines if l.lower().startswith("content-length:")][0])
    while len(pending) < length:
        chunk = sock.recv(1 << 20)
        if not chunk: raise SystemExit("closed in a body")
        pending += chunk
    body, pending = pending[:length], pending[length:]
    return lines[0].split(" ")[1], body
def numbered_lines(n):
    return b"".join(b"%09d\n" % i for i in range(n))
body = numbered_lines(90000)
sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
for off in range(0, len(body), 5000):
    sock.sendall(body[off:off + 5000])
status, got = response()
print("echo status=%s same=%s" % (status, got == body), flush=True)
sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(1)
status, got = response()
print("big status=%s length=%d same=%s" % (status, len(got), got == numbered_lines(big_lines)), flush=True)
for piece in (b"GET /pie", b"ces HTTP/1.1\r\nHo", b"st: x\r\n\r\n"):
    sock.sendall(piece)
    time.sleep(0.1)
status, got = response()
print("pieces status=%s body=%s" % (status, got.decode()), flush=True)
sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
a, b = response(), response()
print("pipelined %s %s %s %s" % (a[0], a[1].decode(), b[0], b[1].decode()), flush=True)
)PY";

}  // namespace

TEST_CASE("TLS: bodies of many records cross both ways on one keep-alive connection: a slow reader, a head in "
          "pieces, pipelined requests") {
  Certificates certs;
  BulkUpstream upstream;
  const auto tls_port = free_port();
  // The echoed body (900 KB) is over the default body limit (64 KiB).
  LbProcess lb(with({"--upstream", upstream.upstream(), "--no-active-health", "--max-body-bytes", "1048576"},
                    certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  const auto script = certs.dir.path() / "bulk.py";
  std::ofstream(script) << kBulkClient;
  ChildProcess python({"/usr/bin/python3", script.string(), certs.ca.string(), std::to_string(tls_port),
                       std::to_string(kBigLines)},
                      certs.dir.path() / "bulk.log");
  CHECK(python.wait(60s) == 0);
  const auto said = python.log();
  CHECK_MESSAGE(contains(said, "echo status=200 same=True"), said);
  CHECK_MESSAGE(contains(said, "big status=200 length=" + std::to_string(kBigLines * 10) + " same=True"), said);
  CHECK_MESSAGE(contains(said, "pieces status=200 body=path=/pieces"), said);
  CHECK_MESSAGE(contains(said, "pipelined 200 path=/one 200 path=/two"), said);
  CHECK(lb.proc.running());
}

TEST_CASE("TLS: openssl s_client connects with TLS 1.2 and 1.3, verifies the chain, gets ALPN http/1.1, resumes") {
  Certificates certs;
  QuietBackend backend;
  const auto tls_port = free_port();
  LbProcess lb(with({"--upstream", backend.upstream()}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    CAPTURE(version);
    const std::string expected = version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3";
    const auto session = certs.dir.path() / ("session" + version + ".pem");
    const auto first = s_client(certs, tls_port, version, "-sess_out " + q(session));
    CHECK_MESSAGE(contains(first.output, "Verify return code: 0 (ok)"), first.output);
    CHECK_MESSAGE(contains(first.output, "New, " + expected), first.output);
    CHECK_MESSAGE(contains(first.output, "ALPN protocol: http/1.1"), first.output);
    CHECK_MESSAGE(contains(first.output, "HTTP/1.1 200 OK"), first.output);
    CHECK_MESSAGE(contains(first.output, "one@5cdb5896d7c8"), first.output);
    // Session resumption: the ticket of the first connection is taken.
    const auto again = s_client(certs, tls_port, version, "-sess_in " + q(session));
    CHECK_MESSAGE(contains(again.output, "Reused, " + expected), again.output);
    CHECK_MESSAGE(contains(again.output, "HTTP/1.1 200 OK"), again.output);
  }
  // SSL 3 / TLS 1.0 / 1.1 are not offered: a client limited to TLS 1.1 fails
  // (whether its own OpenSSL or the lb says no).
  const auto old = run_command("curl -sS --noproxy '*' --max-time 10 --cacert " + q(certs.ca) +
                               " --tlsv1.1 --tls-max 1.1 'https://127.0.0.1:" + std::to_string(tls_port) + "/'");
  CHECK(old.status != 0);
  CHECK(lb.proc.running());
}

TEST_CASE("TLS: session-ticket keys rotate every --tls-ticket-rotate: a ticket resumes at once, and two periods "
          "later gets a full handshake") {
  Certificates certs;
  QuietBackend backend;
  const auto tls_port = free_port();
  constexpr auto kPeriod = 2s;
  LbProcess lb(with({"--upstream", backend.upstream(), "--tls-ticket-rotate", "2s"}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  struct Client {
    std::string version;
    fs::path session;
    std::chrono::steady_clock::time_point issued;  ///< the ticket was issued before this
  };
  std::vector<Client> clients;
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    CAPTURE(version);
    const std::string expected = version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3";
    Client c{version, certs.dir.path() / ("rotating" + version + ".pem"), {}};
    const auto started = std::chrono::steady_clock::now();
    const auto first = s_client(certs, tls_port, version, "-sess_out " + q(c.session));
    c.issued = std::chrono::steady_clock::now();
    CHECK_MESSAGE(contains(first.output, "New, " + expected), first.output);
    const auto again = s_client(certs, tls_port, version, "-sess_in " + q(c.session));
    CHECK_MESSAGE(contains(again.output, "HTTP/1.1 200 OK"), again.output);
    // Within one period of its issue a ticket's key is the current or the
    // previous one, so it must resume; a machine too slow to ask that soon
    // proves nothing either way.
    if (std::chrono::steady_clock::now() - started < kPeriod)
      CHECK_MESSAGE(contains(again.output, "Reused, " + expected), again.output);
    else
      MESSAGE("resumption not checked: the two handshakes took longer than one rotation period");
    clients.push_back(c);
  }
  // Two periods after the last ticket was issued its key has been rotated
  // out twice (whenever the lb checked): the same tickets get a full
  // handshake, and the connection is served as usual.
  std::this_thread::sleep_until(clients.back().issued + 2 * kPeriod + 100ms);
  for (const auto& c : clients) {
    CAPTURE(c.version);
    const std::string expected = c.version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3";
    const auto later = s_client(certs, tls_port, c.version, "-sess_in " + q(c.session));
    CHECK_MESSAGE(contains(later.output, "New, " + expected), later.output);
    CHECK_MESSAGE(contains(later.output, "HTTP/1.1 200 OK"), later.output);
  }
  CHECK(lb.proc.running());
}

TEST_CASE("TLS: plain HTTP sent to the TLS port is closed, and a handshake that never starts is cut by the header "
          "timeout") {
  Certificates certs;
  QuietBackend backend;
  const auto tls_port = free_port();
  LbProcess lb(with({"--upstream", backend.upstream(), "--header-timeout", "500ms"}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());

  auto started = std::chrono::steady_clock::now();
  const auto answer = raw_exchange(tls_port, "GET /?user_id=1 HTTP/1.1\r\nHost: a\r\n\r\n", 5s);
  CHECK(std::chrono::steady_clock::now() - started < 3s);  // closed by the lb, not by our timeout
  CHECK_FALSE(contains(answer, "HTTP/1.1 200"));
  CHECK_FALSE(contains(answer, "one@"));

  // Connected, and not a byte sent: closed once the header timeout (500 ms,
  // swept at most a period late) has passed.
  started = std::chrono::steady_clock::now();
  const auto silent = raw_exchange(tls_port, "", 5s);
  const auto waited = std::chrono::steady_clock::now() - started;
  CHECK(silent.empty());
  CHECK(waited >= 400ms);
  CHECK(waited < 3s);

  // The lb is unharmed: HTTPS and HTTP still served.
  const auto r = curl(certs, "https://127.0.0.1:" + std::to_string(tls_port) + "/?user_id=1");
  CHECK_MESSAGE(contains(r.output, "status=200"), r.output);
  CHECK(http_get(lb.port, "/?user_id=1").status == 200);
  CHECK(lb.proc.running());
}

TEST_CASE("TLS only: --listen off serves HTTPS alone") {
  Certificates certs;
  QuietBackend backend;
  TempDir dir;
  const auto tls_port = free_port();
  ChildProcess lb(with({USERKEY_LB_BIN, "--listen", "off", "--admin", "off", "--upstream", backend.upstream()},
                       certs.lb_args(tls_port)),
                  dir.path() / "lb.log");
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.log());
  const auto r = curl(certs, "https://localhost:" + std::to_string(tls_port) + "/?user_id=1");
  CHECK_MESSAGE(contains(r.output, "status=200"), r.output);
  // (the log's writer thread may write a line a moment after it is logged)
  CHECK_MESSAGE(eventually([&] { return contains(lb.log(), "listening on https://127.0.0.1:" + std::to_string(tls_port)); },
                           10s, 20ms),
                lb.log());
  CHECK_FALSE(contains(lb.log(), "listening on http://"));
}

TEST_CASE("TLS: unusable settings or files stop the start with exit code 2 and a message naming the setting") {
  Certificates certs;
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::string listen = "127.0.0.1:" + std::to_string(free_port());
  const std::vector<Case> cases{
      {{"--tls-listen", listen, "--tls-key", certs.key.string()}, "tls.cert: required with tls.listen"},
      {{"--tls-listen", listen, "--tls-cert", certs.chain.string()}, "tls.key: required with tls.listen"},
      {{"--listen", "off"}, "listen and tls.listen are both off"},
      {{"--tls-listen", listen, "--tls-cert", (dir.path() / "missing.pem").string(), "--tls-key", certs.key.string()},
       "tls.cert: '" + (dir.path() / "missing.pem").string() + "': cannot read"},
      {{"--tls-listen", listen, "--tls-cert", certs.garbage.string(), "--tls-key", certs.key.string()},
       "tls.cert: '" + certs.garbage.string() + "': not a usable PEM certificate chain"},
      {{"--tls-listen", listen, "--tls-cert", certs.chain.string(), "--tls-key", certs.other_key.string()},
       "does not belong to the certificate"},
      {{"--tls-listen", listen, "--tls-cert", certs.chain.string(), "--tls-key", certs.encrypted_key.string()},
       "tls.key: '" + certs.encrypted_key.string() + "': not a usable unencrypted PEM private key"},
      {{"--tls-listen", listen, "--tls-cert", certs.chain.string(), "--tls-key", dir.path().string()},
       "is a directory"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.says);
    const auto log = dir.path() / "lb.log";
    ChildProcess lb(with({USERKEY_LB_BIN, "--admin", "off", "--upstream", "127.0.0.1:1"}, c.args), log);
    CHECK(lb.wait(10s) == 2);
    const auto text = lb.log();
    CHECK_MESSAGE(contains(text, c.says), text);
    CHECK_MESSAGE(contains(text, "invalid configuration"), text);
    CHECK_FALSE(contains(text, "PRIVATE KEY"));  // nothing read from a key file is ever printed
  }
}

TEST_CASE("TLS: --check-config loads the certificate and key: exit 0 with TLS on, or 2 naming the file") {
  Certificates certs;
  TempDir dir;
  const auto tls_port = free_port();
  const std::vector<std::string> base{USERKEY_LB_BIN, "--check-config", "--admin", "off", "--upstream", "127.0.0.1:1"};
  ChildProcess good(with(base, certs.lb_args(tls_port)), dir.path() / "good.log", {}, dir.path() / "good.err");
  CHECK(good.wait(10s) == 0);
  CHECK(read_text_file(dir.path() / "good.log") ==
        "userkey-lb: configuration OK (1 upstream, policy round_robin, listen 127.0.0.1:8080, TLS on 127.0.0.1:" +
            std::to_string(tls_port) + ", admin off)\n");
  CHECK_FALSE(wait_for_port(tls_port, 200ms));  // nothing listens
  const auto missing = dir.path() / "missing.key";
  ChildProcess bad(with(base, {"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                               certs.chain.string(), "--tls-key", missing.string()}),
                   dir.path() / "bad.log", {}, dir.path() / "bad.err");
  CHECK(bad.wait(10s) == 2);
  CHECK(read_text_file(dir.path() / "bad.log").empty());
  const auto err = read_text_file(dir.path() / "bad.err");
  CHECK_MESSAGE(contains(err, "tls.key: '" + missing.string() + "': cannot read"), err);
  ChildProcess wrong(with(base, {"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                                 certs.chain.string(), "--tls-key", certs.other_key.string()}),
                     dir.path() / "wrong.log");
  CHECK(wrong.wait(10s) == 2);
  CHECK_MESSAGE(contains(wrong.log(), "does not belong to the certificate"), wrong.log());
  CHECK_FALSE(contains(wrong.log(), "PRIVATE KEY"));
}

namespace {

// The subject curl -v printed for the server's certificate.
std::string served_subject(const Certificates& certs, std::uint16_t port) {
  const auto r = curl(certs, "https://127.0.0.1:" + std::to_string(port) + "/?user_id=1", "-v -o /dev/null");
  const auto at = r.output.find("subject: ");
  return at == std::string::npos ? r.output : r.output.substr(at, r.output.find('\n', at) - at);
}

// A Python `ssl` client that keeps one connection: it verifies against the
// test CA, sends a request, writes the answer's status to `ready`, waits for
// the file `go`, then sends a second request on the same connection and
// prints both statuses, the certificate's CN and the TLS version.
constexpr const char* kPythonClient = R"PY(
import os, socket, ssl, sys, time
ca, port, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        f = tls.makefile("rb")
        def ask():
            tls.sendall(b"GET /?user_id=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status = f.readline().split()[1].decode()
            length = 0
            while True:
                line = f.readline().strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            body = f.read(length).decode()
            return status, body
        first = ask()
        with open(ready, "w") as out:
            out.write(first[0])
        deadline = time.time() + 20
        while not os.path.exists(go) and time.time() < deadline:
            time.sleep(0.02)
        second = ask()
        cn = dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
        print("first=%s second=%s cn=%s version=%s alpn=%s key=%s" % (first[0], second[0], cn, tls.version(),
              tls.selected_alpn_protocol(), "one@5cdb5896d7c8" in second[1]))
)PY";

}  // namespace

TEST_CASE("TLS: SIGHUP reloads the certificate for new connections, an open one goes on; a bad file keeps the "
          "running one") {
  Certificates certs;
  QuietBackend backend;
  // The files the lb is configured with, replaced in place as a renewal would.
  const auto live_chain = certs.dir.path() / "live.pem";
  const auto live_key = certs.dir.path() / "live.key";
  fs::copy_file(certs.chain, live_chain);
  fs::copy_file(certs.key, live_key);
  const auto tls_port = free_port();
  LbProcess lb({"--upstream", backend.upstream(), "--tls-listen", "127.0.0.1:" + std::to_string(tls_port),
                "--tls-cert", live_chain.string(), "--tls-key", live_key.string()});
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  CHECK(contains(served_subject(certs, tls_port), "CN=localhost"));

  // Python's ssl module holds a keep-alive connection made before the reload.
  const auto script = certs.dir.path() / "client.py";
  std::ofstream(script) << kPythonClient;
  const auto ready = certs.dir.path() / "ready";
  const auto go = certs.dir.path() / "go";
  ChildProcess python({"/usr/bin/python3", script.string(), certs.ca.string(), std::to_string(tls_port), ready.string(),
                       go.string()},
                      certs.dir.path() / "python.log");
  eventually([&] { return fs::exists(ready); }, 15s, 20ms);
  REQUIRE_MESSAGE(fs::exists(ready), python.log());

  fs::copy_file(certs.chain2, live_chain, fs::copy_options::overwrite_existing);
  fs::copy_file(certs.key2, live_key, fs::copy_options::overwrite_existing);
  lb.proc.signal(SIGHUP);
  eventually([&] { return lb.metric("userkey_lb_tls_reloads_total{result=\"ok\"}") >= 1; }, 10s, 20ms);
  CHECK_MESSAGE(lb.metric("userkey_lb_tls_reloads_total{result=\"ok\"}") == 1, lb.proc.log());
  // New connections get the new certificate (still verified by the CA).
  CHECK(contains(served_subject(certs, tls_port), "CN=reloaded"));

  // The connection from before is served on.
  std::ofstream(go) << "go";
  CHECK(python.wait(20s) == 0);
  const auto said = python.log();
  CHECK_MESSAGE(contains(said, "first=200 second=200 cn=localhost version=TLSv1.3 alpn=http/1.1 key=True"), said);

  // A renewal gone wrong (a file that is not PEM): the running certificate
  // stays, and the log says why.
  std::ofstream(live_chain, std::ios::trunc) << "not a certificate\n";
  lb.proc.signal(SIGHUP);
  eventually([&] { return lb.metric("userkey_lb_tls_reloads_total{result=\"failed\"}") >= 1; }, 10s, 20ms);
  CHECK(lb.metric("userkey_lb_tls_reloads_total{result=\"failed\"}") == 1);
  const std::string why = "TLS certificate reload failed, keeping the running one: tls.cert: '" + live_chain.string() +
                          "': not a usable PEM certificate chain";
  CHECK_MESSAGE(eventually([&] { return contains(lb.proc.log(), why); }, 10s, 20ms), lb.proc.log());
  CHECK(contains(served_subject(certs, tls_port), "CN=reloaded"));
  CHECK_FALSE(contains(lb.proc.log(), "PRIVATE KEY"));
  CHECK(lb.proc.running());
}

TEST_CASE("TLS: handshakes and their failures are counted in /metrics by reason") {
  Certificates certs;
  QuietBackend backend;
  const auto tls_port = free_port();
  LbProcess lb(with({"--upstream", backend.upstream(), "--header-timeout", "500ms"}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  const auto r = curl(certs, "https://127.0.0.1:" + std::to_string(tls_port) + "/?user_id=1");
  CHECK_MESSAGE(contains(r.output, "status=200"), r.output);
  raw_exchange(tls_port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 5s);  // plain HTTP
  raw_exchange(tls_port, "", 5s);                                     // never starts: timed out
  raw_exchange(tls_port, std::string("\x16\x03\x01\x00\x05hello", 10), 5s);  // a record that is not a hello
  // A client that offers only what the lb does not (TLS 1.2 with a CBC suite).
  run_command("curl -sS --noproxy '*' --max-time 10 --cacert " + q(certs.ca) +
      " --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA 'https://127.0.0.1:" + std::to_string(tls_port) + "/'");
  auto failures = [&](const std::string& reason) {
    return lb.metric("userkey_lb_tls_handshake_failures_total{reason=\"" + reason + "\"}");
  };
  CHECK(lb.metric("userkey_lb_tls_handshakes_total") == 1);
  CHECK(failures("plain_http") == 1);
  CHECK(failures("timeout") == 1);
  CHECK(failures("protocol") == 2);
  CHECK(failures("closed") == 0);
  // The certificate's expiry (made for two days by the test).
  const auto expiry = lb.metric("userkey_lb_tls_certificate_expiry_seconds");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(expiry > now + 86400);
  CHECK(expiry <= now + 2 * 86400 + 60);
}

TEST_CASE("TLS: the JSON access log names the TLS version of each request, null over plain HTTP") {
  Certificates certs;
  QuietBackend backend;
  const auto tls_port = free_port();
  LbProcess lb(with({"--upstream", backend.upstream(), "--access-log-format", "json"}, certs.lb_args(tls_port)));
  REQUIRE_MESSAGE(wait_for_port(tls_port, 10s), lb.proc.log());
  CHECK(contains(curl(certs, "https://127.0.0.1:" + std::to_string(tls_port) + "/?user_id=1", "--tlsv1.3").output,
                 "status=200"));
  CHECK(contains(curl(certs, "https://127.0.0.1:" + std::to_string(tls_port) + "/?user_id=2",
                      "--tlsv1.2 --tls-max 1.2")
                     .output,
                 "status=200"));
  CHECK(http_get(lb.port, "/?user_id=3").status == 200);
  std::map<std::string, nlohmann::json> by_target;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (by_target.size() < 3 && std::chrono::steady_clock::now() < until) {
    by_target.clear();
    std::istringstream lines(lb.proc.log());
    for (std::string l; std::getline(lines, l);) {
      if (l.empty() || l.front() != '{') continue;
      auto j = nlohmann::json::parse(l, nullptr, false);
      if (j.is_object() && j.contains("target")) by_target[j["target"].get<std::string>()] = j;
    }
    if (by_target.size() < 3) std::this_thread::sleep_for(20ms);
  }
  REQUIRE_MESSAGE(by_target.size() == 3, lb.proc.log());
  CHECK(by_target["/?user_id=1"]["tls"] == "TLSv1.3");
  CHECK(by_target["/?user_id=2"]["tls"] == "TLSv1.2");
  CHECK(by_target["/?user_id=3"]["tls"].is_null());
}

namespace {

// An HTTPS upstream: Python's http.server behind its ssl module, with the
// test's leaf certificate; HTTP/1.1 keep-alive. It answers any GET with the
// path, the X-Forwarded-Proto it got and how many connections it accepted.
constexpr const char* kHttpsUpstream = R"PY(
import http.server, ssl, sys, threading
port_file, cert, key, host = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
accepted = 0
probes = 0
probes_lock = threading.Lock()
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
        global probes
        if self.path == "/healthz" and self.headers.get("User-Agent") == "userkey-lb-health":
            with probes_lock:
                probes += 1
        body = ("path=%s proto=%s probes=%d connections=%d"
                % (self.path, self.headers.get("X-Forwarded-Proto"), probes, accepted)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = Server((host, 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
)PY";

// A count the HTTPS upstream reports in its answers ("... probes=3
// connections=2"); -1 when `body` has none (an answer not from it).
int reported(const std::string& body, const std::string& name) {
  const auto at = body.find(" " + name + "=");
  return at == std::string::npos ? -1 : std::stoi(body.substr(at + name.size() + 2));
}

// An upstream that speaks nothing but HTTPS, with the certificate of
// `certs`. Its answers report the GET /healthz requests of the lb's prober
// it has answered (probes) and the connections it has accepted, over its
// whole life.
struct HttpsUpstream {
  TempDir dir;
  std::uint16_t port = 0;
  std::unique_ptr<ChildProcess> proc;
  explicit HttpsUpstream(const Certificates& certs, const std::string& host = "127.0.0.1") {
    const auto script = dir.path() / "upstream.py";
    std::ofstream(script) << kHttpsUpstream;
    const auto port_file = dir.path() / "port";
    proc = std::make_unique<ChildProcess>(std::vector<std::string>{"/usr/bin/python3", script.string(),
                                                                   port_file.string(), certs.chain.string(),
                                                                   certs.key.string(), host},
                                          dir.path() / "upstream.log");
    eventually([&] { return fs::exists(port_file); }, 15s, 20ms);
    REQUIRE_MESSAGE(fs::exists(port_file), proc->log());
    std::ifstream(port_file) >> port;
  }
};

}  // namespace

TEST_CASE("TLS to upstreams: tls=on verifies the upstream's certificate against --tls-upstream-ca, by IP and by "
          "name, and keeps the connections alive") {
  Certificates certs;
  HttpsUpstream up(certs);
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    CAPTURE(host);
    LbProcess lb({"--upstream", host + ":" + std::to_string(up.port) + ",tls=on", "--tls-upstream-ca",
                  certs.ca.string(), "--health-interval", "100ms"});
    std::string first, last;
    for (int i = 0; i < 5; ++i) {
      const auto r = http_get(lb.port, "/over-tls?i=" + std::to_string(i));
      CHECK_MESSAGE(r.status == 200, lb.proc.log());
      (i == 0 ? first : last) = r.body;
    }
    CHECK(contains(last, "path=/over-tls?i=4 proto=http"));
    // Active health probes go over TLS too. The upstream speaks nothing but
    // TLS, so each probe it answers came through a handshake in which the lb
    // verified its certificate; it must answer at least two (rise) more
    // after this lb's first request, and the lb must hold it up. An
    // upstream_up of 1 alone would not show it: an upstream starts up, and
    // failed probes take `fall` of them to bring it down.
    const int probes_before = reported(first, "probes");
    REQUIRE(probes_before >= 0);
    CHECK_MESSAGE(eventually([&] { return reported(http_get(lb.port, "/").body, "probes") >= probes_before + 2; }, 10s),
                  lb.proc.log());
    CHECK(lb.metric("userkey_lb_upstream_up{upstream=\"" + host + ":" + std::to_string(up.port) + "\"}") == 1);
    CHECK_FALSE(contains(lb.proc.log(), "TLS handshake with upstream"));
    CHECK_FALSE(contains(lb.proc.log(), "is DOWN"));
  }
  // Five requests from one client, one after the other, and no probes
  // (--no-active-health): the four after the first reuse the connection the
  // first opened, so the upstream accepts none between the first answer and
  // the last.
  LbProcess lb({"--upstream", "127.0.0.1:" + std::to_string(up.port) + ",tls=on", "--tls-upstream-ca",
                certs.ca.string(), "--no-active-health"});
  std::string first, last;
  for (int i = 0; i < 5; ++i) {
    const auto r = http_get(lb.port, "/");
    REQUIRE(r.status == 200);
    (i == 0 ? first : last) = r.body;
  }
  CHECK(reported(first, "connections") > 0);
  CHECK(reported(last, "connections") == reported(first, "connections"));
}

TEST_CASE("TLS to upstreams: a certificate the CA did not sign, or for another name, is refused (502) and logged; a "
          "bad CA file stops the start") {
  Certificates certs;
  Certificates others;  // another CA: it did not sign the upstream's certificate
  HttpsUpstream up(certs);
  {
    LbProcess lb({"--upstream", "127.0.0.1:" + std::to_string(up.port) + ",tls=on", "--tls-upstream-ca",
                  others.ca.string(), "--no-active-health", "--retries", "0"});
    const auto r = http_get(lb.port, "/");
    CHECK(r.status >= 502);
    CHECK(r.status <= 503);
    // The lb's log goes through an async writer: its line may land after
    // the answer.
    const std::string refused = "TLS handshake with upstream 127.0.0.1:" + std::to_string(up.port) + " failed";
    CHECK_MESSAGE(eventually([&] { return contains(lb.proc.log(), refused); }, 10s, 20ms), lb.proc.log());
    CHECK(contains(lb.proc.log(), "certificate verify failed"));
  }
  {
    // The right CA, but the certificate names 127.0.0.1 and localhost, and
    // this upstream is 127.0.0.2.
    HttpsUpstream elsewhere(certs, "127.0.0.2");
    LbProcess lb({"--upstream", "127.0.0.2:" + std::to_string(elsewhere.port) + ",tls=on", "--tls-upstream-ca",
                  certs.ca.string(), "--no-active-health", "--retries", "0"});
    const auto r = http_get(lb.port, "/");
    CHECK(r.status >= 502);
    const std::string refused = "TLS handshake with upstream 127.0.0.2:";
    CHECK_MESSAGE(eventually([&] { return contains(lb.proc.log(), refused); }, 10s, 20ms), lb.proc.log());
    CHECK(contains(lb.proc.log(), "certificate verify failed"));
  }
  TempDir dir;
  ChildProcess bad({USERKEY_LB_BIN, "--admin", "off", "--listen", "127.0.0.1:" + std::to_string(free_port()),
                    "--upstream", "127.0.0.1:1,tls=on", "--tls-upstream-ca", certs.garbage.string()},
                   dir.path() / "lb.log");
  CHECK(bad.wait(10s) == 2);
  CHECK_MESSAGE(contains(bad.log(), "tls.upstream_ca: '" + certs.garbage.string() + "'"), bad.log());
}
