// The idle wait of a client connection: between requests (or before its
// first byte) a connection holds no parser, buffer, coroutine or timer, only
// its ClientConnection and a readiness wait on its socket, whose operation
// lives in the connection's own WaitMemory (going idle allocates nothing).
// Its first byte starts a coroutine (serve) that serves requests while they
// keep coming. Idle too long (the deadline set here: header_timeout from
// accept for a new connection, idle_timeout for a kept-alive one), drained,
// or closed by the client: the last holder lets go and the connection
// closes.
//
// Templates over the session's layer (client_transport.hpp), instantiated
// by downstream_session.cpp, which defines serve().
//
// Leaves to others: serving (downstream_session), the deadline sweep and
// drain's cancels (client_connection's SessionRegistry).
#pragma once

#include "io_types.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <spdlog/spdlog.h>

#include <cstddef>
#include <exception>
#include <new>

#include "client_transport.hpp"

namespace userkey::lb::engine {

/// Serves requests on `conn` while they keep coming (downstream_session.cpp).
template <class Layer>
awaitable<void> serve(ClientPtr<Layer> conn);

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
  ClientPtr<Layer> conn;
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
void wait_for_request(ClientPtr<Layer> conn) {
  auto& c = *conn;
  c.busy = false;
  Layer::going_idle(c);
  c.deadline_at(c.first ? c.idle_since + c.ctx.cfg.limits.header_timeout
                        : c.idle_since + c.ctx.cfg.limits.idle_timeout);
  WaitMemory* memory = &c.wait_memory;
  c.socket.async_wait(tcp::socket::wait_read, RequestReady<Layer>{std::move(conn), memory});
}

}  // namespace userkey::lb::engine
