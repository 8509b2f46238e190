// The server side of one TLS connection, with OpenSSL reading and writing
// the connection's socket itself.
//
// Why not Asio's ssl::stream: it runs OpenSSL over a memory BIO pair, so
// every record is copied once more on each side, every read and write goes
// through several posted steps, and each connection carries two 17 KiB
// buffers of Asio's beside OpenSSL's. Here OpenSSL's BIO is the socket (a
// small BIO of ours: recv / send without waiting, and without SIGPIPE), an
// operation is tried at once, and only when OpenSSL says it wants the socket
// readable or writable does it wait for that, then try again. OpenSSL reads
// ahead (a whole segment per recv, not a record header and then its body)
// and keeps its record buffers while requests keep coming; a connection
// going idle frees them (release_idle_memory()), as it frees the rest.
//
// Owns: the SSL object (made from a TlsContext, in server mode) and a
// gather buffer for writes made of several buffers. Does not own the socket: the connection does, and
// cancelling it (deadline sweep, drain) ends a pending operation with
// operation_aborted, as for a plain connection.
//
// Errors, as Asio's ssl::stream reports them, so callers judge them alike:
// OpenSSL's in asio::error::get_ssl_category() (the first error queued), a
// client that closed without close_notify as asio::ssl::error::
// stream_truncated, a close_notify as asio::error::eof, a socket's failure
// as its system error.
//
// Thread-safety: one connection's; its loop's thread only. At most one read
// and one write may be pending at a time. A request and its answer never
// overlap them; a WebSocket tunnel (tunnel.hpp) has one of each pending
// together: OpenSSL lets SSL_read and SSL_write interleave on one thread,
// each retried only after the readiness it asked for, and only writes use
// the gather buffer.
#pragma once

#include "io_types.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>

#include <openssl/bio.h>
#include <openssl/types.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

namespace userkey::lb::engine {

class TlsContext;

struct BioMethodFree {
  void operator()(BIO_METHOD* method) const noexcept;
};
/// The BIO method TlsSocketStream gives OpenSSL: recv / send on the
/// connection's socket, never waiting, never raising SIGPIPE. One per
/// TlsContext (its connections' BIOs use it while it lives).
std::unique_ptr<BIO_METHOD, BioMethodFree> make_socket_bio_method();

class TlsSocketStream {
public:
  using executor_type = Executor;

  /// Makes the connection's SSL object from `context` over `socket`. Both
  /// must outlive this stream (the connection holds them).
  TlsSocketStream(Socket& socket, TlsContext& context);
  ~TlsSocketStream();
  TlsSocketStream(const TlsSocketStream&) = delete;
  TlsSocketStream& operator=(const TlsSocketStream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  SSL* native_handle() const { return ssl_.get(); }

  /// Whether OpenSSL holds client bytes not read yet (decrypted, or read
  /// ahead from the socket and not decrypted yet).
  bool has_pending() const;

  /// What a single non-blocking step did.
  enum class Want { nothing, read, write };
  struct Step {
    error_code ec;
    std::size_t bytes = 0;
    Want want = Want::nothing;  // read / write: try again once the socket is ready for it
  };

  /// One step of each operation, never waiting (what the asynchronous
  /// operations below repeat). try_read also serves a session that takes
  /// the next request after an answer without waiting.
  Step try_handshake();
  Step try_read(void* data, std::size_t size);
  Step try_write(const void* data, std::size_t size);

  /// Frees the gather buffer and OpenSSL's record buffers (a connection
  /// going idle holds none; OpenSSL makes them again at the next read).
  /// OpenSSL keeps a buffer that still holds bytes.
  void release_idle_memory();

  /// The server handshake. Completes with (error_code).
  template <class Token>
  auto async_handshake(Token&& token) {
    return asio::async_compose<Token, void(error_code)>(
        Op<HandshakeStep, true>{this, HandshakeStep{}}, token, socket_);
  }

  /// Reads what is there (at least a byte) into the first non-empty buffer.
  /// Completes with (error_code, bytes).
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    asio::mutable_buffer into;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      if (asio::mutable_buffer b(*it); b.size() > 0) {
        into = b;
        break;
      }
    }
    return asio::async_compose<Token, void(error_code, std::size_t)>(
        Op<ReadStep, false>{this, ReadStep{into}}, token, socket_);
  }

  /// Writes from the buffers: a single buffer as it is, several gathered
  /// into one piece of up to kGather bytes first (a response's head and
  /// body go out as one record, in one send). Completes with (error_code,
  /// bytes taken from `buffers`).
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_compose<Token, void(error_code, std::size_t)>(
        Op<WriteStep, false>{this, WriteStep{gather(buffers)}}, token, socket_);
  }

  /// The most bytes a write gathers from several buffers: one TLS record.
  static constexpr std::size_t kGather = 16384;

private:
  struct SslFree {
    void operator()(SSL* ssl) const noexcept;
  };

  struct HandshakeStep {
    Step operator()(TlsSocketStream& s) const { return s.try_handshake(); }
  };
  struct ReadStep {
    asio::mutable_buffer into;
    Step operator()(TlsSocketStream& s) const { return s.try_read(into.data(), into.size()); }
  };
  struct WriteStep {
    asio::const_buffer from;  // the same bytes at every try (OpenSSL requires it after a want)
    Step operator()(TlsSocketStream& s) const { return s.try_write(from.data(), from.size()); }
  };

  // Tries the step; waits for the readiness OpenSSL asks for and tries
  // again; completes. A result ready at the first try is posted, not
  // delivered inside the initiating call.
  template <class Attempt, bool kNoBytes>
  struct Op {
    TlsSocketStream* stream;
    Attempt attempt;
    enum class State { first, waiting, posted } state = State::first;
    Step result{};

    template <class Self>
    void operator()(Self& self, error_code wait_error = {}) {
      if (state == State::posted) return finish(self);
      if (state == State::waiting && wait_error) {
        result = Step{wait_error, 0, Want::nothing};
        return finish(self);
      }
      result = attempt(*stream);
      if (result.want != Want::nothing) {
        state = State::waiting;
        stream->socket_.async_wait(result.want == Want::read ? Socket::wait_read : Socket::wait_write,
                                   std::move(self));
        return;
      }
      if (state == State::first) {
        state = State::posted;
        asio::post(stream->socket_.get_executor(), std::move(self));
        return;
      }
      finish(self);
    }

    template <class Self>
    void finish(Self& self) {
      if constexpr (kNoBytes)
        self.complete(result.ec);
      else
        self.complete(result.ec, result.bytes);
    }
  };

  template <class ConstBuffers>
  asio::const_buffer gather(const ConstBuffers& buffers) {
    auto it = asio::buffer_sequence_begin(buffers);
    const auto end = asio::buffer_sequence_end(buffers);
    while (it != end && asio::const_buffer(*it).size() == 0) ++it;
    if (it == end) return {};
    const asio::const_buffer first(*it);
    auto next = it;
    ++next;
    while (next != end && asio::const_buffer(*next).size() == 0) ++next;
    if (next == end) return first;  // one buffer: written from where it is
    gather_.clear();
    for (; it != end && gather_.size() < kGather; ++it) {
      const asio::const_buffer b(*it);
      const std::size_t take = std::min(b.size(), kGather - gather_.size());
      const auto* bytes = static_cast<const unsigned char*>(b.data());
      gather_.insert(gather_.end(), bytes, bytes + take);
    }
    return asio::buffer(gather_);
  }

  friend struct SocketBio;

  template <class Call>
  Step attempt(Call call);

  Socket& socket_;
  int last_errno_ = 0;  // of the BIO's last recv / send that failed
  std::unique_ptr<SSL, SslFree> ssl_;
  std::vector<unsigned char> gather_;
};

}  // namespace userkey::lb::engine
