// The PROXY header that starts a client connection: see proxy_header_reader.hpp.
#include "proxy_header_reader.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <span>

#include "proxy_protocol.hpp"

namespace userkey::lb::engine {

bool proxy_header_allowed(ClientConnection& c) {
  auto& admission = c.ctx.admission;
  if (admission.proxy_header_trusted(c.client_ip)) return true;
  c.ctx.stats.reject(ProxyHeaderFailure::untrusted);
  std::uint64_t held_back = 0;
  if (admission.untrusted_proxy_notices().allow(LogThrottle::Clock::now(), held_back))
    c.ctx.log.warn("connection from {} closed unread: a PROXY header is believed only from --trusted-proxies "
                   "({} more such connections since the last line)",
                   c.client_ip, held_back);
  return false;
}

// GCC 12 at -O2 takes Asio's awaitable frame operator new / delete pair for
// a mismatch (see downstream_session.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

awaitable<bool> read_proxy_header(ClientConnection& c) {
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
        co_return false;
      }
      // Need more: all of it is header.
      if (::recv(fd, bytes.data() + taken, static_cast<std::size_t>(n), MSG_DONTWAIT) != n) co_return false;
      taken = seen;
    } else if (n == 0) {
      fail(truncated(), "truncated");
      co_return false;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      fail(truncated(), "cut by an error");
      co_return false;
    }
    error_code ec;
    co_await c.socket.async_wait(tcp::socket::wait_read, nothrow(ec));
    if (c.timed_out) {
      fail(ProxyHeaderFailure::timeout, "timed out");
      co_return false;
    }
    if (ec) {
      fail(std::nullopt, ec.message());
      co_return false;
    }
  }
  c.clear_deadline();
  const std::size_t rest = header.length - taken;
  // (The peek showed these bytes, so a short take should not happen; if it
  // does, the connection is closed and counted like a header cut short.)
  if (::recv(fd, bytes.data() + taken, rest, MSG_DONTWAIT) != static_cast<ssize_t>(rest)) {
    fail(ProxyHeaderFailure::truncated, "cut short while taken");
    co_return false;
  }
  if (header.source) c.client_ip = std::move(header.source->address);
  co_return true;
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
