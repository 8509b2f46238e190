// One TLS connection with OpenSSL on the socket: see tls_stream.hpp.
#include "tls_stream.hpp"

#include <boost/asio/ssl/error.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <stdexcept>

#include "tls_context.hpp"

namespace userkey::lb::engine {

// The BIO under a connection's SSL: its data is the TlsSocketStream, which
// neither moves nor dies before the SSL (it owns it).
struct SocketBio {
  static TlsSocketStream& stream(BIO* bio) { return *static_cast<TlsSocketStream*>(BIO_get_data(bio)); }

  static bool transient(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

  static int read(BIO* bio, char* out, int size) {
    BIO_clear_retry_flags(bio);
    auto& s = stream(bio);
    const ssize_t n = ::recv(s.socket_.native_handle(), out, static_cast<std::size_t>(size), MSG_DONTWAIT);
    if (n >= 0) return static_cast<int>(n);  // (0: the client closed)
    s.last_errno_ = errno;
    if (transient(s.last_errno_)) BIO_set_retry_read(bio);
    return -1;
  }

  static int write(BIO* bio, const char* in, int size) {
    BIO_clear_retry_flags(bio);
    auto& s = stream(bio);
    const ssize_t n =
        ::send(s.socket_.native_handle(), in, static_cast<std::size_t>(size), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    s.last_errno_ = errno;
    if (transient(s.last_errno_)) BIO_set_retry_write(bio);
    return -1;
  }

  // A socket has nothing to flush and no state to report.
  static long ctrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
};

void BioMethodFree::operator()(BIO_METHOD* method) const noexcept { BIO_meth_free(method); }

std::unique_ptr<BIO_METHOD, BioMethodFree> make_socket_bio_method() {
  std::unique_ptr<BIO_METHOD, BioMethodFree> method(BIO_meth_new(BIO_TYPE_SOURCE_SINK, "userkey socket"));
  if (!method || BIO_meth_set_read(method.get(), &SocketBio::read) != 1 ||
      BIO_meth_set_write(method.get(), &SocketBio::write) != 1 ||
      BIO_meth_set_ctrl(method.get(), &SocketBio::ctrl) != 1 ||
      BIO_meth_set_create(method.get(), &SocketBio::create) != 1)
    throw std::runtime_error("OpenSSL could not make a BIO method");
  return method;
}

void TlsSocketStream::SslFree::operator()(SSL* ssl) const noexcept { SSL_free(ssl); }

TlsSocketStream::TlsSocketStream(Socket& socket, TlsContext& context)
    : socket_(socket), ssl_(SSL_new(context.get().native_handle())) {
  if (!ssl_) throw std::runtime_error("OpenSSL could not make a connection's SSL object");
  BIO* bio = BIO_new(context.socket_bio());
  if (bio == nullptr) throw std::runtime_error("OpenSSL could not make a connection's BIO");
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);  // (one reference, owned by the SSL from here)
  SSL_set_accept_state(ssl_.get());
  // Writes retried after a want may come from a moved buffer (the gather
  // buffer of a later write is the same one, but a caller's may not be); a
  // read takes what the socket has, up to a record's worth of buffer, not a
  // header and then its record. (No SSL_MODE_RELEASE_BUFFERS: it frees and
  // makes both 17 KiB buffers again around every request of a busy
  // connection; release_idle_memory() frees them when it goes idle.)
  SSL_set_mode(ssl_.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_read_ahead(ssl_.get(), 1);
}

TlsSocketStream::~TlsSocketStream() = default;

void TlsSocketStream::release_idle_memory() {
  std::vector<unsigned char>().swap(gather_);
  SSL_free_buffers(ssl_.get());  // (0 when a buffer holds bytes: then it stays)
}

bool TlsSocketStream::has_pending() const { return SSL_has_pending(ssl_.get()) == 1; }

namespace {

// What a failed call (returned `result`) means: wait for readiness, or the
// error to report (the queue is left empty).
TlsSocketStream::Step judge(SSL* ssl, int result, int last_errno) {
  using Want = TlsSocketStream::Want;
  const int what = SSL_get_error(ssl, result);
  TlsSocketStream::Step step;
  switch (what) {
    case SSL_ERROR_WANT_READ: step.want = Want::read; return step;
    case SSL_ERROR_WANT_WRITE: step.want = Want::write; return step;
    case SSL_ERROR_ZERO_RETURN: step.ec = asio::error::eof; return step;
    default: break;
  }
  const unsigned long queued = ERR_get_error();
  ERR_clear_error();
  if (queued != 0) {
    // OpenSSL 3 reports a close without close_notify as an error of its own.
    if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
      step.ec = asio::ssl::error::stream_truncated;
    else
      step.ec = error_code(static_cast<int>(queued), asio::error::get_ssl_category());
  } else if (what == SSL_ERROR_SYSCALL && last_errno != 0) {
    step.ec = error_code(last_errno, boost::system::system_category());
  } else {
    step.ec = asio::ssl::error::stream_truncated;
  }
  return step;
}

}  // namespace

// One OpenSSL call (`call(bytes)`, 1 on success) from an empty error queue.
template <class Call>
TlsSocketStream::Step TlsSocketStream::attempt(Call call) {
  ERR_clear_error();
  last_errno_ = 0;
  std::size_t bytes = 0;
  const int result = call(bytes);
  if (result == 1) return {error_code(), bytes, Want::nothing};
  return judge(ssl_.get(), result, last_errno_);
}

TlsSocketStream::Step TlsSocketStream::try_handshake() {
  return attempt([this](std::size_t&) { return SSL_do_handshake(ssl_.get()); });
}

TlsSocketStream::Step TlsSocketStream::try_read(void* data, std::size_t size) {
  if (size == 0) return {};
  return attempt([&](std::size_t& bytes) { return SSL_read_ex(ssl_.get(), data, size, &bytes); });
}

TlsSocketStream::Step TlsSocketStream::try_write(const void* data, std::size_t size) {
  if (size == 0) return {};
  return attempt([&](std::size_t& bytes) { return SSL_write_ex(ssl_.get(), data, size, &bytes); });
}

}  // namespace userkey::lb::engine
