// One client connection's lasting state, and a loop's registry of them: see
// client_connection.hpp.
#include "client_connection.hpp"

#include <algorithm>

#include "tunnel.hpp"

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

void SessionRegistry::close_tunnels() {
  for (auto* c = head_; c; c = c->next_)
    if (c->tunnel != nullptr) c->tunnel->close(TunnelEnd::drain);
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

std::size_t SessionRegistry::size() const {
  std::size_t n = 0;
  for (auto* c = head_; c; c = c->next_) ++n;
  return n;
}

std::chrono::milliseconds session_sweep_period(const LimitsConfig& limits) {
  const auto shortest = std::min({limits.header_timeout, limits.body_timeout, limits.idle_timeout});
  return std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10),
                                               std::chrono::milliseconds(250));
}

}  // namespace userkey::lb::engine
