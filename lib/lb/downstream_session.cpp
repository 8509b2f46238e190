// One client connection, from accept to close: see downstream_session.hpp.
#include "downstream_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/read.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <span>
#include <vector>

#include "access_log.hpp"
#include "http1_codec.hpp"
#include "proxy_protocol.hpp"
#include "request_id.hpp"
#include "tls_context.hpp"
#include "upstream_router.hpp"

namespace userkey::lb::engine {

// Counted in connections_open from accept to close, refused or served (so a
// refusal in progress counts against max_connections too); listed from
// accept to close, so every deadline is swept, a refusal's included.
ClientConnection::ClientConnection(const SessionContext& c, Socket sock, std::string ip, std::int64_t& open_now)
    : ctx(c),
      socket(std::move(sock)),
      client_ip(std::move(ip)),
      idle_since(SteadyClock::now()),
      registry_(c.sessions),
      stats_(c.stats) {
  open_now = stats_.connections_open.fetch_add(1, std::memory_order_relaxed) + 1;
  registry_.add(*this);
}

// Runs when the last holder lets go, possibly while the loop is destroyed
// (so only what outlives the loop is touched): the per-IP count and
// connections_open go before the socket closes.
ClientConnection::~ClientConnection() {
  registry_.remove(*this);
  pass.reset();
  stats_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

void SessionRegistry::add(ClientConnection& c) {
  c.prev_ = nullptr;
  c.next_ = head_;
  if (head_) head_->prev_ = &c;
  head_ = &c;
}

void SessionRegistry::remove(ClientConnection& c) {
  if (c.prev_)
    c.prev_->next_ = c.next_;
  else if (head_ == &c)
    head_ = c.next_;
  if (c.next_) c.next_->prev_ = c.prev_;
  c.prev_ = c.next_ = nullptr;
}

// Cancelling never runs a handler inline (completions are posted), so the
// list does not change under these walks.
void SessionRegistry::close_idle(std::chrono::milliseconds min_idle) {
  const auto now = SteadyClock::now();
  for (auto* c = head_; c; c = c->next_) {
    if (!c->busy && now - c->idle_since >= min_idle) {
      error_code ec;
      c->socket.cancel(ec);
    }
  }
}

void SessionRegistry::expire(TimePoint now) {
  for (auto* c = head_; c; c = c->next_) {
    if (c->deadline <= now) {
      c->deadline = TimePoint::max();
      c->timed_out = true;
      error_code ec;
      c->socket.cancel(ec);
    }
  }
}

std::chrono::milliseconds session_sweep_period(const LimitsConfig& limits) {
  const auto shortest = std::min({limits.header_timeout, limits.body_timeout, limits.idle_timeout});
  return std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10),
                                               std::chrono::milliseconds(250));
}

namespace {

// A connection of the TLS listener: its TLS layer runs over the connection's
// own socket, so the registry's cancels and the deadline sweep reach it like
// any other. Destroyed before the socket it uses (a member of the derived
// class).
class TlsClientConnection : public ClientConnection {
public:
  TlsClientConnection(const SessionContext& c, Socket sock, std::string ip, std::int64_t& open_now,
                      std::shared_ptr<TlsContext> tls)
      : ClientConnection(c, std::move(sock), std::move(ip), open_now),
        tls_context(std::move(tls)),
        stream(socket, *tls_context) {}

  // The context this connection was made with: a reload gives new
  // connections another one, this one keeps its own.
  std::shared_ptr<TlsContext> tls_context;
  TlsSocketStream stream;
  bool handshake_done = false;
};

// After a response: what the client has sent since, taken without waiting.
// Under load the next request is usually in by the time the response's
// write has completed, and one read straight into the buffer does what a
// readiness check (FIONREAD) and then the read did in two system calls.
enum class ReadNow { data, nothing, closed };

// How a session reaches its client's bytes; the session code is written once
// over these. Plain: the socket itself, nothing held above it.
struct PlainLayer {
  using Connection = ClientConnection;
  static constexpr bool secure = false;
  static constexpr std::string_view forwarded_proto = "http";
  static Socket& stream(Connection& c) { return c.socket; }
  static bool holds_input(Connection&) { return false; }
  static void settle(error_code&) {}
  static std::string_view version(Connection&) { return {}; }
  static void going_idle(Connection&) {}
  static ReadNow read_now(Connection& c, asio::mutable_buffer into, std::size_t& n) {
    const ssize_t got = ::recv(c.socket.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
    if (got > 0) {
      n = static_cast<std::size_t>(got);
      return ReadNow::data;
    }
    if (got == 0) return ReadNow::closed;  // (at a request boundary: a quiet close, as an idle one)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? ReadNow::nothing : ReadNow::closed;
  }
};

// TLS: the connection's TLS stream, OpenSSL on the socket. Client bytes can
// wait above the socket in OpenSSL (read ahead, decrypted or not).
struct TlsLayer {
  using Connection = TlsClientConnection;
  static constexpr bool secure = true;
  static constexpr std::string_view forwarded_proto = "https";
  static TlsSocketStream& stream(Connection& c) { return c.stream; }
  static bool holds_input(Connection& c) { return c.stream.has_pending(); }
  static void going_idle(Connection& c) { c.stream.release_idle_memory(); }
  // (OpenSSL wanting to write first, to answer a key update say: `data`
  // with nothing taken, and the read of the next head does that write.)
  static ReadNow read_now(Connection& c, asio::mutable_buffer into, std::size_t& n) {
    const auto step = c.stream.try_read(into.data(), into.size());
    if (step.ec) return ReadNow::closed;
    if (step.want == TlsSocketStream::Want::read) return ReadNow::nothing;
    n = step.bytes;
    return ReadNow::data;
  }
  // A read's error as the codec should judge it: a client that closed
  // without close_notify (most do), or whose TLS broke, is gone (end of
  // stream), not a bad request to answer over a stream that no longer works.
  static void settle(error_code& ec) {
    if (ec == asio::ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category())
      ec = asio::error::eof;
  }
  // The negotiated version ("TLSv1.3"): a static string of OpenSSL's.
  static std::string_view version(Connection& c) { return SSL_get_version(c.stream.native_handle()); }
};

template <class Layer>
using ConnPtr = std::shared_ptr<typename Layer::Connection>;

template <class Layer>
void wait_for_request(ConnPtr<Layer> conn);

// Whether a request's bytes are already here (buffered above the socket or
// readable from it): then it is served without going idle.
template <class Layer>
bool input_waiting(typename Layer::Connection& c, error_code& ec) {
  return Layer::holds_input(c) || (c.socket.available(ec) > 0 && !ec);
}

// After a response: takes what the client has sent since into `buffer`,
// without waiting (see ReadNow).
template <class Layer>
ReadNow read_now(typename Layer::Connection& c, beast::flat_buffer& buffer) {
  const std::size_t room = beast::read_size(buffer, 65536);
  if (room == 0) return ReadNow::data;  // (full: there is a request to parse)
  std::size_t n = 0;
  const ReadNow result = Layer::read_now(c, buffer.prepare(room), n);
  if (result == ReadNow::data) buffer.commit(n);
  return result;
}

// A refusal written before any request is read: when the request is already
// there and is a HEAD, the answer must have no body.
bool peeks_head_request(Socket& client) {
  char first[5];
  const ssize_t n = ::recv(client.native_handle(), first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(sizeof first) && std::string_view(first, sizeof first) == "HEAD ";
}

// GCC 12 at -O2 inlines Asio's recycling frame allocator into a coroutine's
// ramp and then takes the frame's class operator delete for a mismatch with
// the ::operator new inside it (a false positive; the pair is Asio's own
// awaitable_frame_base::operator new / delete): first seen in serve(), off
// for every coroutine of this file since the session became templates.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// The lb's own answer. `head_request`: headers only (a HEAD response has no
// body, whatever its Content-Length says). `request_id`: the request's, when
// its head was read.
//
// The lingering close works on the socket under any layer (a TLS client is
// not sent close_notify first: the answer is framed, so it is complete).
template <class Layer>
awaitable<void> write_error(typename Layer::Connection& c, unsigned status, std::string_view message, bool keep_alive,
                            unsigned version = 11, std::chrono::seconds retry_after = std::chrono::seconds(0),
                            bool head_request = false, std::string_view request_id = {}) {
  const Response res = http1::make_error_response(status, message, version, retry_after);
  std::string head;
  http1::serialize_client_response(head, res, version, keep_alive, false, request_id);
  const std::array<asio::const_buffer, 2> out{
      asio::buffer(head), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
  c.deadline_after(std::chrono::seconds(5));
  error_code ec;
  co_await asio::async_write(Layer::stream(c), out, nothrow(ec));
  if (c.clear_deadline()) ec = asio::error::timed_out;
  if (!keep_alive && !ec) {
    // Lingering close: the client may still be sending what we refused (a
    // huge header or body). Closing with unread data would reset the
    // connection and could destroy this answer before the client reads it,
    // so stop sending, then read and discard for a moment.
    c.socket.shutdown(tcp::socket::shutdown_send, ec);
    c.deadline_after(std::chrono::seconds(1));
    std::array<char, 4096> discard;
    for (std::size_t total = 0; total < 256 * 1024;) {
      const std::size_t n = co_await c.socket.async_read_some(asio::buffer(discard), nothrow(ec));
      if (ec || c.timed_out) break;
      total += n;
    }
    c.clear_deadline();
  }
}

// A request the lb answers itself (or drops), counted; then the connection
// closes. `head_request`: the request was a HEAD (no body in the answer).
template <class Layer>
awaitable<void> answer(typename Layer::Connection& c, const http1::RequestDecision& d, bool head_request,
                       std::string_view request_id = {}) {
  if (d.reason) c.ctx.stats.reject(*d.reason);
  if (d.action == http1::RequestDecision::Action::reject)
    co_await write_error<Layer>(c, d.status, d.message, false, 11, std::chrono::seconds(0), head_request, request_id);
}

// Why a handshake failed, from its error: OpenSSL's reason when it gave one
// (it names "http request" when the first bytes were plain HTTP), else the
// socket's.
TlsFailure classify_handshake_error(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) return TlsFailure::plain_http;
    return TlsFailure::protocol;
  }
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::operation_aborted)
    return TlsFailure::closed;
  return TlsFailure::protocol;
}

// The TLS handshake of a new connection, within the deadline of its first
// head (header_timeout from accept), so a client that never starts or never
// finishes it is cut like a slow head. False: the connection ends (timed
// out, not TLS at all, no common version or suite, closed).
awaitable<bool> handshake(TlsClientConnection& c) {
  c.busy = true;
  c.deadline_at(c.idle_since + c.ctx.cfg.limits.header_timeout);
  error_code ec;
  co_await c.stream.async_handshake(nothrow(ec));
  const bool timed_out = c.clear_deadline();
  c.busy = false;
  if (timed_out || ec) {
    const TlsFailure why = timed_out ? TlsFailure::timeout : classify_handshake_error(ec);
    c.ctx.stats.tls_failed(why);
    // (OpenSSL's reason names no secret; the client's address is in the line.)
    c.ctx.log.debug("TLS handshake with {} failed ({}): {}", c.client_ip, to_string(why),
                    timed_out ? "timed out" : ec.message());
    co_return false;
  }
  c.ctx.stats.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  c.handshake_done = true;
  co_return true;
}

// A connection refused before any request is read: answered (a TLS client
// after its handshake: it could read nothing else), then closed.
template <class Layer>
awaitable<void> refuse(ConnPtr<Layer> conn, Refusal refused, bool head_request) {
  if constexpr (Layer::secure) {
    if (!co_await handshake(*conn)) co_return;
  }
  co_await write_error<Layer>(*conn, refused.status, refused.message, false, 11, refused.retry_after, head_request);
}

// The client of a request: the connection's (`c.client_ip` itself), or,
// when the connection comes from a trusted proxy, the client its
// X-Forwarded-For / Forwarded names (written into `buffer`, returned).
const std::string& resolve_client(const ClientConnection& c, const Request& req, std::string& buffer) {
  const auto& trusted = c.ctx.admission.trusted_proxies();
  if (trusted.empty() || !trusted.trusted(c.client_ip)) return c.client_ip;
  trusted.resolve(c.client_ip, req.base(), buffer);
  return buffer;
}

std::string_view unparsed(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

// Serves requests while they keep coming; when none is pending (nothing
// buffered, nothing readable), hands the connection back to a readiness
// wait and ends, releasing its buffer and parser.
template <class Layer>
awaitable<void> serve(ConnPtr<Layer> conn) {
  auto& c = *conn;
  const SessionContext& ctx = c.ctx;
  const auto& lim = ctx.cfg.limits;
  auto& stream = Layer::stream(c);
  if constexpr (Layer::secure) {
    // A new TLS connection: the handshake first. Then, unless the request
    // came with it, wait for the request idle (its deadline still runs from
    // accept).
    if (!c.handshake_done) {
      // Closed without a byte sent (a TCP health check, a port scan): no
      // handshake was tried, none failed. A readiness with nothing behind it
      // (an event from before the PROXY header was taken, say): wait again,
      // within the same deadline.
      char first_byte = 0;
      const ssize_t peeked = ::recv(c.socket.native_handle(), &first_byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (peeked == 0) co_return;
      if (peeked < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) wait_for_request<Layer>(conn);
        co_return;
      }
      if (!co_await handshake(c)) co_return;
      error_code ec;
      if (!input_waiting<Layer>(c, ec)) {
        if (!ec) wait_for_request<Layer>(conn);
        co_return;
      }
    }
  }
  try {
    // Capped: a head, one chunk-size line or a trailer section must fit.
    beast::flat_buffer buffer(http1::read_buffer_limit(lim));
    std::vector<bool> tried;
    std::string wire;  // serialized heads, reused for every request of this run
    ForwardReport report;
    RequestId request_id;
    std::string log_method, log_target;  // only for the access log line; reused
    std::string request_client;          // a client named by a trusted proxy; reused
    const bool logging = ctx.access_log.enabled();
    for (;;) {
      // (While draining, a request already on its way is still served, with
      // Connection: close; drain closes connections that stay idle.)
      http1::RequestParser parser;
      parser.header_limit(lim.max_header_bytes);
      parser.body_limit(lim.max_body_bytes);
      http1::ChunkExtensionLimit extensions(lim.max_header_bytes);
      extensions.attach(parser);
      error_code ec;
      // A new connection's head must arrive within header_timeout of accept;
      // a keep-alive request's within header_timeout of its first byte.
      c.deadline_at(c.first ? c.idle_since + lim.header_timeout : SteadyClock::now() + lim.header_timeout);
      c.first = false;
      std::size_t bytes_in = co_await http::async_read_header(stream, buffer, parser, nothrow(ec));
      Layer::settle(ec);
      if (c.clear_deadline()) ec = beast::error::timeout;
      c.busy = true;
      const bool head_request = parser.get().method() == http::verb::head;  // unknown until the request line is in
      if (ec) {
        const auto decision = http1::classify_head_error(ec, parser.got_some());
        co_await answer<Layer>(c, decision, head_request);
        co_return;
      }
      // The request's time runs from here (its head is in).
      const auto started = SteadyClock::now();
      const auto started_wall = logging ? std::chrono::system_clock::now() : std::chrono::system_clock::time_point{};
      if (ctx.cfg.request_id)
        take_request_id(parser.get(), ctx.request_ids, request_id);
      else
        request_id.clear();
      if (const auto framing = http1::check_framing(parser, lim.max_body_bytes); !framing.forwards()) {
        co_await answer<Layer>(c, framing, head_request, request_id.view());
        co_return;
      }
      const http1::FieldSet head = parser.chunked() ? http1::head_fields(parser.get()) : http1::FieldSet{};
      // The whole body is read here before anything goes upstream, so a
      // client waiting for 100 Continue gets it from the lb (an HTTP/1.0
      // client does not know 100 Continue: it just sends the body).
      if (auto expect = parser.get().find(http::field::expect); expect != parser.get().end() &&
                                                                parser.get().version() >= 11 &&
                                                                beast::iequals(expect->value(), "100-continue") &&
                                                                !parser.is_done()) {
        c.deadline_after(lim.header_timeout);
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(stream, asio::buffer(kContinue), nothrow(ec));
        if (c.clear_deadline() || ec) co_return;
      }
      if (!parser.is_done()) {
        c.deadline_after(lim.body_timeout);
        bytes_in += co_await http::async_read(stream, buffer, parser, nothrow(ec));
        Layer::settle(ec);
        if (c.clear_deadline()) ec = beast::error::timeout;
        if (ec) {
          const auto decision = http1::classify_body_error(ec, unparsed(buffer));
          co_await answer<Layer>(c, decision, head_request, request_id.view());
          co_return;
        }
      }
      const bool chunked = parser.chunked();
      Request req = parser.release();
      if (chunked) http1::drop_trailers(req, head);
      // Only kept for the access log line (`req` goes to the router).
      if (logging) {
        log_method.assign(req.method_string().data(), req.method_string().size());
        log_target.assign(req.target().data(), req.target().size());
      }
      const bool keep_alive = req.keep_alive() && !ctx.draining.load(std::memory_order_relaxed);
      const unsigned version = req.version();
      ctx.stats.requests.fetch_add(1, std::memory_order_relaxed);

      // The request's client: the connection's, or whom a trusted proxy
      // names in X-Forwarded-For / Forwarded (then also IP-filtered here).
      const std::string& client = resolve_client(c, req, request_client);
      http1::ForwardedFor xff;
      if (!ctx.admission.trusted_proxies().empty()) {
        xff.keep_chain = &client != &c.client_ip;  // an untrusted peer's chain is dropped
        xff.peer = c.client_ip;
      }

      bool written = true;
      if (const auto refused = ctx.admission.admit_request(client, &client != &c.client_ip)) {
        ctx.stats.reject(refused->reason);
        co_await write_error<Layer>(c, refused->status, refused->message, keep_alive, version,
                                    refused->retry_after, head_request, request_id.view());
        // (A keep-alive refusal that failed to go out ends at the next read.)
      } else {
        Response res = co_await ctx.router.forward(std::move(req), client, request_id.view(), tried, report, wire,
                                                   Layer::forwarded_proto, xff);
        http1::serialize_client_response(wire, res, version, keep_alive, head_request, request_id.view());
        const std::array<asio::const_buffer, 2> out{
            asio::buffer(wire), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
        c.deadline_after(ctx.cfg.upstream_timeout);
        const std::size_t bytes_out = co_await asio::async_write(stream, out, nothrow(ec));
        if (c.clear_deadline()) ec = asio::error::timed_out;
        written = !ec;
        if (logging) {
          AccessRecord r;
          r.time = started_wall;
          r.client = client;
          r.method = log_method;
          r.target = log_target;
          r.status = res.result_int();
          r.bytes_in = bytes_in;
          r.bytes_out = bytes_out;
          r.duration = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);
          r.upstream_time = report.upstream_time;
          r.upstream = report.upstream;
          r.request_id = request_id.view();
          r.retries = report.retries;
          r.tls = Layer::version(c);
          ctx.access_log.write(r);
        }
      }
      if (!written || !keep_alive) co_return;
      c.busy = false;
      c.idle_since = SteadyClock::now();
      // The next request is already here (pipelined, or sent at once): serve
      // it in this run. Otherwise go idle, holding none of this.
      if (buffer.size() == 0) {
        switch (read_now<Layer>(c, buffer)) {
          case ReadNow::data: break;
          case ReadNow::nothing: wait_for_request<Layer>(conn); co_return;  // (a copy: `c` stays valid should this throw)
          case ReadNow::closed: co_return;
        }
      }
    }
  } catch (const std::exception& e) {
    // Nothing in a request should throw; if something does, this
    // connection ends (its accounting runs when it closes).
    ctx.log.error("connection from {} ended by an internal error: {}", c.client_ip, e.what());
  }
}

// Hands out a connection's WaitMemory (Asio allocates a handler's
// operation through the handler's associated allocator). The operation is
// freed before its handler runs or is destroyed, while the handler still
// holds the connection.
template <class T>
class WaitAllocator {
public:
  using value_type = T;
  explicit WaitAllocator(WaitMemory* memory) noexcept : memory_(memory) {}
  template <class U>
  WaitAllocator(const WaitAllocator<U>& other) noexcept : memory_(other.memory_) {}

  T* allocate(std::size_t n) {
    if (!memory_->in_use && n * sizeof(T) <= sizeof memory_->bytes) {
      memory_->in_use = true;
      return reinterpret_cast<T*>(memory_->bytes);
    }
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept {
    if (reinterpret_cast<unsigned char*>(p) == memory_->bytes) {
      memory_->in_use = false;
      return;
    }
    ::operator delete(p);
  }
  friend bool operator==(const WaitAllocator& a, const WaitAllocator& b) noexcept { return a.memory_ == b.memory_; }
  friend bool operator!=(const WaitAllocator& a, const WaitAllocator& b) noexcept { return a.memory_ != b.memory_; }

private:
  template <class U>
  friend class WaitAllocator;
  WaitMemory* memory_;
};

// The readiness wait's handler: the connection, and where its operation lives.
template <class Layer>
struct RequestReady {
  ConnPtr<Layer> conn;
  WaitMemory* memory;

  using allocator_type = WaitAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(memory); }

  void operator()(const error_code& ec) {
    auto& ready = *conn;
    const bool timed_out = ready.clear_deadline();
    if (timed_out || ec) {  // idle too long, drained, or gone
      if constexpr (Layer::secure) {
        // A TLS client that connected and never sent its hello: a handshake
        // that timed out.
        if (timed_out && !ready.handshake_done) ready.ctx.stats.tls_failed(TlsFailure::timeout);
      }
      return;
    }
    try {
      asio::co_spawn(ready.ctx.io, serve<Layer>(conn), asio::detached);
    } catch (const std::exception& e) {
      // (Out of memory, say: this connection closes, the loop goes on.)
      ready.ctx.log.error("connection from {} ended by an internal error: {}", ready.client_ip, e.what());
    }
  }
};

// Waits, holding only the connection, for its next request's first byte (or
// a new connection's first): then a coroutine serves it. Idle too long
// (the deadline set here), drained, or closed by the client: the last
// holder lets go and the connection closes.
//
// (A TLS connection waits on its socket too: OpenSSL holds no unread input
// when it gets here.)
template <class Layer>
void wait_for_request(ConnPtr<Layer> conn) {
  auto& c = *conn;
  c.busy = false;
  Layer::going_idle(c);
  c.deadline_at(c.first ? c.idle_since + c.ctx.cfg.limits.header_timeout
                        : c.idle_since + c.ctx.cfg.limits.idle_timeout);
  WaitMemory* memory = &c.wait_memory;
  c.socket.async_wait(tcp::socket::wait_read, RequestReady<Layer>{std::move(conn), memory});
}

template <class Layer>
ConnPtr<Layer> make_connection(const SessionContext& ctx, Socket sock, std::string ip, std::int64_t& open) {
  if constexpr (Layer::secure)
    return std::make_shared<TlsClientConnection>(ctx, std::move(sock), std::move(ip), open, ctx.tls->current());
  else
    return std::make_shared<ClientConnection>(ctx, std::move(sock), std::move(ip), open);
}

template <class Layer>
void admit_and_serve(ConnPtr<Layer> conn, std::int64_t open);

// --proxy-protocol: the PROXY header that starts the connection, within
// header_timeout of accept. What has arrived is peeked and parsed; bytes
// that are surely header (it is not complete yet) are taken, and once it is
// complete exactly its rest, so what follows (the request, or a TLS hello)
// stays for the session (and a peek finds the client's close). Its source
// becomes the connection's client_ip, before admission. A connection
// without a valid header is closed unanswered and counted.
template <class Layer>
awaitable<void> read_proxy_header(ConnPtr<Layer> conn, std::int64_t open) {
  auto& c = *conn;
  const SessionContext& ctx = c.ctx;
  const int fd = c.socket.native_handle();
  std::array<std::uint8_t, proxy_protocol::kMaxHeaderLength> bytes;
  std::size_t taken = 0;
  proxy_protocol::Result header;
  c.deadline_at(c.idle_since + ctx.cfg.limits.header_timeout);
  const auto fail = [&](std::optional<ProxyHeaderFailure> why, std::string_view detail) {
    c.clear_deadline();
    if (why) ctx.stats.reject(*why);
    ctx.log.debug("connection from {} closed: PROXY header {}", c.client_ip, detail);
  };
  // (Closed or cut before sending anything: a TCP probe, not counted.)
  const auto truncated = [&] { return taken > 0 ? std::optional(ProxyHeaderFailure::truncated) : std::nullopt; };
  for (;;) {
    const ssize_t n = ::recv(fd, bytes.data() + taken, bytes.size() - taken, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      const std::size_t seen = taken + static_cast<std::size_t>(n);
      header = proxy_protocol::parse(std::span<const std::uint8_t>(bytes.data(), seen));
      if (header.status == proxy_protocol::Result::Status::parsed) break;
      if (header.status == proxy_protocol::Result::Status::invalid) {
        fail(ProxyHeaderFailure::invalid, header.reason);
        co_return;
      }
      // Need more: all of it is header.
      if (::recv(fd, bytes.data() + taken, static_cast<std::size_t>(n), MSG_DONTWAIT) != n) co_return;
      taken = seen;
    } else if (n == 0) {
      fail(truncated(), "truncated");
      co_return;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      fail(truncated(), "cut by an error");
      co_return;
    }
    error_code ec;
    co_await c.socket.async_wait(tcp::socket::wait_read, nothrow(ec));
    if (c.timed_out) {
      fail(ProxyHeaderFailure::timeout, "timed out");
      co_return;
    }
    if (ec) {
      fail(std::nullopt, ec.message());
      co_return;
    }
  }
  c.clear_deadline();
  const std::size_t rest = header.length - taken;
  // (The peek showed these bytes, so a short take should not happen; if it
  // does, the connection is closed and counted like a header cut short.)
  if (::recv(fd, bytes.data() + taken, rest, MSG_DONTWAIT) != static_cast<ssize_t>(rest)) {
    fail(ProxyHeaderFailure::truncated, "cut short while taken");
    co_return;
  }
  if (header.source) c.client_ip = std::move(header.source->address);
  admit_and_serve<Layer>(std::move(conn), open);
}

template <class Layer>
void start_session(const SessionContext& ctx, Socket sock) {
  error_code ec;
  const auto remote = sock.remote_endpoint(ec);
  if (ec) return;
  auto ip_addr = remote.address();
  if (ip_addr.is_v6() && ip_addr.to_v6().is_v4_mapped()) ip_addr = ip_addr.to_v6().to_v4();
  sock.set_option(tcp::no_delay(true), ec);
  std::int64_t open = 0;
  auto conn = make_connection<Layer>(ctx, std::move(sock), ip_addr.to_string(), open);
  if (ctx.cfg.proxy_protocol)
    asio::co_spawn(ctx.io, read_proxy_header<Layer>(std::move(conn), open), asio::detached);
  else
    admit_and_serve<Layer>(std::move(conn), open);
}

// Admission (the connection cap, the IP filter, the per-IP cap: on the
// connection's client_ip, final by now), then serving.
template <class Layer>
void admit_and_serve(ConnPtr<Layer> conn, std::int64_t open) {
  const SessionContext& ctx = conn->ctx;
  auto& c = *conn;
  error_code ec;
  const auto cap = ctx.cfg.limits.max_connections;
  std::optional<Refusal> refused;
  if (cap > 0 && open > static_cast<std::int64_t>(cap))
    refused = Refusal{Rejection::max_connections, 503, "too many connections", std::chrono::seconds(1)};
  else
    refused = ctx.admission.admit_connection(c.client_ip, c.pass);
  if (refused) {
    // Answered before any request is read, then closed.
    ctx.stats.reject(refused->reason);
    const bool head_request = !Layer::secure && peeks_head_request(c.socket);
    asio::co_spawn(ctx.io, refuse<Layer>(std::move(conn), *refused, head_request), asio::detached);
    return;
  }
  // The request (a TLS client's hello) is often in already: serve it without
  // waiting.
  c.busy = false;
  if (input_waiting<Layer>(c, ec)) {
    asio::co_spawn(ctx.io, serve<Layer>(std::move(conn)), asio::detached);
    return;
  }
  wait_for_request<Layer>(std::move(conn));
}
#pragma GCC diagnostic pop

}  // namespace

void start_downstream_session(const SessionContext& ctx, Socket sock, ClientTransport transport) {
  if (transport == ClientTransport::plain)
    start_session<PlainLayer>(ctx, std::move(sock));
  else if (ctx.tls != nullptr)
    start_session<TlsLayer>(ctx, std::move(sock));
  // (else: a TLS listener without a context is the facade's bug; the
  // connection closes.)
}

}  // namespace userkey::lb::engine
