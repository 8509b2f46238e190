// TLS from the lb to upstreams: see upstream_tls.hpp.
#include "upstream_tls.hpp"

#include "tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "userkey/core/settings.hpp"

namespace userkey::lb::engine {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ConfigError("tls.upstream_ca: '" + path + "': " + what);
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

UpstreamTlsContext::UpstreamTlsContext(const std::string& ca_file) : ctx_(asio::ssl::context::tls_client) {
  SSL_CTX* ctx = ctx_.native_handle();
  const bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
                  SSL_CTX_set_cipher_list(ctx, tls_policy::kTls12Ciphers) == 1 &&
                  SSL_CTX_set_ciphersuites(ctx, tls_policy::kTls13Suites) == 1 &&
                  SSL_CTX_set1_groups_list(ctx, tls_policy::kGroups) == 1 &&
                  SSL_CTX_set_alpn_protos(ctx, tls_policy::kAlpnHttp11, sizeof tls_policy::kAlpnHttp11) == 0;
  if (!ok) {
    ERR_clear_error();
    throw ConfigError("tls.upstream_ca: OpenSSL refused the built-in client TLS policy");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  ctx_.set_verify_mode(asio::ssl::verify_peer);
  error_code ec;
  if (ca_file.empty()) {
    ctx_.set_default_verify_paths(ec);
    if (ec) throw ConfigError("tls.upstream_ca: the system's trust store cannot be used: " + ec.message());
  } else {
    if (::access(ca_file.c_str(), R_OK) != 0) fail(ca_file, std::string("cannot read: ") + std::strerror(errno));
    ctx_.load_verify_file(ca_file, ec);
    if (ec) fail(ca_file, "no usable PEM CA certificate in it (" + ec.message() + ")");
  }
  ERR_clear_error();
}

std::unique_ptr<UpstreamTlsStream> make_upstream_tls(Stream& stream, asio::ssl::context& ctx, const std::string& host) {
  auto tls = std::make_unique<UpstreamTlsStream>(stream, ctx);
  SSL* ssl = tls->native_handle();
  if (!is_ip_literal(host)) SSL_set_tlsext_host_name(ssl, host.c_str());
  // Names and IP addresses alike (X509_check_host / X509_check_ip_asc).
  tls->set_verify_callback(asio::ssl::host_name_verification(host));
  return tls;
}

std::string describe_upstream_tls_error(UpstreamTlsStream& tls, const error_code& ec) {
  const long verify = SSL_get_verify_result(tls.native_handle());
  std::string out = ec.message();
  if (verify != X509_V_OK) out += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
  return out;
}

}  // namespace userkey::lb::engine
