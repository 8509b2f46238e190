// The server side of TLS for one proxy process.
//
// Owns: the OpenSSL server context (asio::ssl::context, an RAII owner of the
// SSL_CTX) built once from the configured certificate chain and key, and
// its policy: TLS 1.2 and 1.3 only, the Mozilla "intermediate" cipher
// suites and groups, ALPN "http/1.1", session resumption by tickets (sealed
// with the store's TlsTicketKeys, rotated, shared by every loop of the
// process and kept across reloads, so each loop resumes every other loop's
// sessions, before and after a SIGHUP), any SNI name accepted (one
// certificate serves them all). Loading fails with a ConfigError that names
// the setting and the file, never anything read from the key.
//
// Thread-safety: a TlsContext is built on one thread and never changed
// after; every loop makes its connections' SSL objects from it concurrently,
// which OpenSSL allows. TlsContextStore holds the one new connections get
// and replaces it on reload (SIGHUP): a connection keeps the context it was
// made with for its whole life, so a reload drops none.
//
// Leaves to others: accepting (listener, like any connection), the
// handshake and the encrypted stream (TlsSocketStream, per connection, made
// from a context and its socket BIO method).
#pragma once

#include "io_types.hpp"
#include "tls_stream.hpp"
#include "tls_ticket_keys.hpp"

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace userkey::lb::engine {

/// The lb's TLS policy, both as a server (TlsContext) and as a client of
/// upstreams (UpstreamTlsContext), so the two sides cannot drift apart:
/// Mozilla's "intermediate" configuration (v5) — these suites for TLS 1.2,
/// OpenSSL's defaults for TLS 1.3 (named so they stay fixed), its groups —
/// and ALPN "http/1.1", the one protocol the lb speaks.
namespace tls_policy {
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr const char* kGroups = "X25519:prime256v1:secp384r1";
/// ALPN wire format (length-prefixed).
inline constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
}  // namespace tls_policy

class TlsContext {
public:
  /// Reads `cert_file` (PEM chain, leaf first) and `key_file` (PEM private
  /// key, unencrypted: an encrypted one fails, it never prompts) and checks
  /// that the key belongs to the certificate. Throws ConfigError ("tls.cert:
  /// ..." / "tls.key: ...") when a file is unreadable or unusable. Its
  /// tickets are sealed and opened with `ticket_keys`, which it keeps.
  TlsContext(const std::string& cert_file, const std::string& key_file, std::shared_ptr<TlsTicketKeys> ticket_keys);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  asio::ssl::context& get() { return ctx_; }

  /// The BIO method of this context's connections (TlsSocketStream).
  const BIO_METHOD* socket_bio() const { return socket_bio_.get(); }

  /// When the (leaf) certificate expires, Unix seconds.
  std::int64_t expires() const { return expires_; }

private:
  std::shared_ptr<TlsTicketKeys> ticket_keys_;  // before ctx_: outlives the SSL_CTX that points at it
  asio::ssl::context ctx_;
  std::unique_ptr<BIO_METHOD, BioMethodFree> socket_bio_;
  std::int64_t expires_ = 0;
};

/// The TLS context new connections are made with, replaceable while the
/// proxy runs. Any thread.
class TlsContextStore {
public:
  /// Loads the first context: throws ConfigError as TlsContext does. Its
  /// session-ticket keys rotate every `ticket_rotate` (0 = never) by
  /// `clock` (the steady clock when empty) and serve every context made
  /// from then on.
  TlsContextStore(const std::string& cert_file, const std::string& key_file,
                  std::chrono::milliseconds ticket_rotate = std::chrono::hours(1), TlsTicketKeys::Clock clock = {});

  /// The context for a new connection; the caller keeps it for the
  /// connection's life.
  std::shared_ptr<TlsContext> current() const;

  /// Reads `cert_file` and `key_file` again (or new paths) and, when they
  /// load, makes new connections use them (with the same ticket keys, so
  /// tickets issued before resume after). When
  /// they do not, throws ConfigError and the running context stays.
  void reload(const std::string& cert_file, const std::string& key_file);

  /// The session-ticket keys of every context of this store.
  TlsTicketKeys& ticket_keys() const { return *ticket_keys_; }

private:
  const std::shared_ptr<TlsTicketKeys> ticket_keys_;
  mutable std::mutex mu_;
  std::shared_ptr<TlsContext> current_;
};

}  // namespace userkey::lb::engine
