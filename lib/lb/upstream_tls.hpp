// TLS from the lb to upstreams marked tls=on.
//
// Owns: the client-side OpenSSL context (TLS 1.2 and 1.3, the same suites
// and groups as the listener, peer verification against the configured CA
// file or the system's trust store, ALPN http/1.1) and the setup of one
// connection's TLS layer: SNI when the upstream is named by a DNS name, and
// the check that its certificate names that host (name or IP address).
//
// Thread-safety: the context is built once, before the loops start, and not
// changed after; every loop makes its connections' SSL objects from it.
//
// Leaves to others: connecting, the handshake's deadline and pooling
// (upstream_pool), the exchange (upstream_router), probes (health_checker).
#pragma once

#include "io_types.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <string>

namespace userkey::lb::engine {

/// An upstream connection's TLS layer over its (timed) stream, which the
/// connection keeps owning.
using UpstreamTlsStream = asio::ssl::stream<Stream&>;

class UpstreamTlsContext {
public:
  /// `ca_file`: PEM CA certificates; empty = OpenSSL's default trust store.
  /// Throws ConfigError ("tls.upstream_ca: ...") when the file cannot be
  /// read or holds no certificate.
  explicit UpstreamTlsContext(const std::string& ca_file);
  UpstreamTlsContext(const UpstreamTlsContext&) = delete;
  UpstreamTlsContext& operator=(const UpstreamTlsContext&) = delete;

  asio::ssl::context& get() { return ctx_; }

private:
  asio::ssl::context ctx_;
};

/// A TLS layer over `stream` (connected) for an upstream named `host`: SNI
/// set when `host` is a DNS name, and the peer certificate required to name
/// `host`. The caller runs the client handshake.
std::unique_ptr<UpstreamTlsStream> make_upstream_tls(Stream& stream, asio::ssl::context& ctx, const std::string& host);

/// The reason of a failed upstream handshake, for a log line: OpenSSL's
/// (with the certificate verification result when that was the cause).
std::string describe_upstream_tls_error(UpstreamTlsStream& tls, const error_code& ec);

}  // namespace userkey::lb::engine
