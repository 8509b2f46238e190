// The server side of TLS for one proxy process.
//
// Owns: the OpenSSL server context (asio::ssl::context, an RAII owner of the
// SSL_CTX) built once from the configured certificate chain and key, and
// its policy: TLS 1.2 and 1.3 only, the Mozilla "intermediate" cipher
// suites and groups, ALPN "http/1.1", session resumption by tickets (the
// ticket keys are OpenSSL's own, made per context, so every loop of the
// process resumes every other loop's sessions), any SNI name accepted (one
// certificate serves them all). Loading fails with a ConfigError that names
// the setting and the file, never anything read from the key.
//
// Thread-safety: built on one thread before the loops start; from then on
// every loop makes its connections' SSL objects from it concurrently, which
// OpenSSL allows (the context is not changed after construction).
//
// Leaves to others: accepting (listener, like any connection), the
// handshake and the encrypted stream (downstream_session, per connection).
#pragma once

#include "io_types.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <string>

namespace userkey::lb::engine {

/// A client connection's TLS layer, over the connection's own socket (which
/// the connection keeps owning: cancelling it reaches the TLS operations).
using TlsStream = asio::ssl::stream<Socket&>;

class TlsContext {
public:
  /// Reads `cert_file` (PEM chain, leaf first) and `key_file` (PEM private
  /// key, unencrypted: an encrypted one fails, it never prompts) and checks
  /// that the key belongs to the certificate. Throws ConfigError ("tls.cert:
  /// ..." / "tls.key: ...") when a file is unreadable or unusable.
  TlsContext(const std::string& cert_file, const std::string& key_file);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  asio::ssl::context& get() { return ctx_; }

private:
  asio::ssl::context ctx_;
};

}  // namespace userkey::lb::engine
