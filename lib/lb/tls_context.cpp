// The server side of TLS for one proxy process: see tls_context.hpp.
#include "tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "userkey/core/settings.hpp"

namespace userkey::lb::engine {

namespace {

// Sessions resumed from a ticket must have been made by this program.
constexpr unsigned char kSessionIdContext[] = {'u', 's', 'e', 'r', 'k', 'e', 'y', '-', 'l', 'b'};

[[noreturn]] void fail(const char* key, const std::string& path, const std::string& what) {
  throw ConfigError(std::string(key) + ": '" + path + "': " + what);
}

// The reason of the newest error OpenSSL queued on this thread (the queue
// is emptied): what went wrong, never the data it was reading.
std::string openssl_reason() {
  unsigned long last = 0;
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) last = code;
  const char* reason = last != 0 ? ERR_reason_error_string(last) : nullptr;
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

void check_readable(const char* key, const std::string& path) {
  std::error_code fs_ec;
  if (std::filesystem::is_directory(path, fs_ec)) fail(key, path, "is a directory");
  if (::access(path.c_str(), R_OK) != 0) fail(key, path, std::string("cannot read: ") + std::strerror(errno));
}

// Picks http/1.1 when the client offers it. A client that offers only
// other protocols (h2 alone, say) gets no ALPN answer rather than an alert:
// it may still speak HTTP/1.1.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* offered,
                unsigned int offered_len, void*) {
  unsigned char* chosen = nullptr;
  unsigned char chosen_len = 0;
  if (SSL_select_next_proto(&chosen, &chosen_len, tls_policy::kAlpnHttp11, sizeof tls_policy::kAlpnHttp11, offered,
                            offered_len) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  *out_len = chosen_len;
  return SSL_TLSEXT_ERR_OK;
}

// The policy (tls_policy in the header): versions, suites, groups, ALPN,
// resumption. No server preference: every suite in it is strong, and the
// client knows best whether it has AES hardware. Failures here are the
// program's own (a suite list OpenSSL rejects), not the operator's.
void apply_policy(SSL_CTX* ctx) {
  bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1 &&
            SSL_CTX_set_cipher_list(ctx, tls_policy::kTls12Ciphers) == 1 &&
            SSL_CTX_set_ciphersuites(ctx, tls_policy::kTls13Suites) == 1 &&
            SSL_CTX_set1_groups_list(ctx, tls_policy::kGroups) == 1 && SSL_CTX_set_dh_auto(ctx, 1) == 1 &&
            SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext) == 1;
  if (!ok) throw ConfigError("tls: OpenSSL refused the built-in TLS policy: " + openssl_reason());
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_alpn_select_cb(ctx, &select_alpn, nullptr);
  // Resumption by tickets only: they hold the session themselves (sealed
  // with this context's keys), so no per-session state stays in the lb, and
  // one ticket per TLS 1.3 handshake is enough for a client that reconnects.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 1);
}

}  // namespace

TlsContext::TlsContext(const std::string& cert_file, const std::string& key_file,
                       std::shared_ptr<TlsTicketKeys> ticket_keys)
    : ticket_keys_(std::move(ticket_keys)), ctx_(asio::ssl::context::tls_server), socket_bio_(make_socket_bio_method()) {
  check_readable("tls.cert", cert_file);
  check_readable("tls.key", key_file);
  ERR_clear_error();
  error_code ec;
  // An encrypted key fails to load rather than prompting on the terminal.
  ctx_.set_password_callback([](std::size_t, asio::ssl::context::password_purpose) { return std::string(); }, ec);
  ctx_.use_certificate_chain_file(cert_file, ec);
  if (ec) fail("tls.cert", cert_file, "not a usable PEM certificate chain (" + ec.message() + ")");
  ctx_.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec && ERR_GET_REASON(static_cast<unsigned int>(ec.value())) != X509_R_KEY_VALUES_MISMATCH)
    fail("tls.key", key_file, "not a usable unencrypted PEM private key (" + ec.message() + ")");
  if (ec || SSL_CTX_check_private_key(ctx_.native_handle()) != 1)
    fail("tls.key", key_file, "does not belong to the certificate in '" + cert_file + "'");
  ERR_clear_error();
  apply_policy(ctx_.native_handle());
  if (!ticket_keys_->install(ctx_.native_handle()))
    throw ConfigError("tls: OpenSSL refused the session-ticket key callback: " + openssl_reason());
  if (const X509* leaf = SSL_CTX_get0_certificate(ctx_.native_handle()); leaf != nullptr) {
    std::tm when{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &when) == 1) expires_ = static_cast<std::int64_t>(::timegm(&when));
  }
}

}  // namespace userkey::lb::engine

namespace userkey::lb::engine {

TlsContextStore::TlsContextStore(const std::string& cert_file, const std::string& key_file,
                                 std::chrono::milliseconds ticket_rotate, TlsTicketKeys::Clock clock)
    : ticket_keys_(std::make_shared<TlsTicketKeys>(ticket_rotate, std::move(clock))),
      current_(std::make_shared<TlsContext>(cert_file, key_file, ticket_keys_)) {}

std::shared_ptr<TlsContext> TlsContextStore::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

void TlsContextStore::reload(const std::string& cert_file, const std::string& key_file) {
  // Throws: the running one stays. The keys are the same object, so a
  // ticket from before the reload resumes after it.
  auto next = std::make_shared<TlsContext>(cert_file, key_file, ticket_keys_);
  std::lock_guard lock(mu_);
  current_ = std::move(next);
}

}  // namespace userkey::lb::engine
