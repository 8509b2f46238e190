// Unit tests for TlsTicketKeys (lib/lb/tls_ticket_keys.cpp): which keys are
// kept as they rotate (by hand and by an injected clock), what the ticket
// callback answers for each name, and real TLS 1.2 and 1.3 handshakes in
// memory (a client SSL and a server SSL from a TlsContextStore over a BIO
// pair) that resume, or not, as the keys rotate and the certificate reloads.
#include <doctest/doctest.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lb/tls_context.hpp"
#include "lb/tls_ticket_keys.hpp"
#include "support/process.hpp"

using userkey::lb::engine::TlsContextStore;
using userkey::lb::engine::TlsTicketKeys;
using namespace std::chrono_literals;

namespace {

template <auto Free>
struct Freer {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using SslPtr = std::unique_ptr<SSL, Freer<SSL_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Freer<SSL_CTX_free>>;
using SessionPtr = std::unique_ptr<SSL_SESSION, Freer<SSL_SESSION_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Freer<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO_free_all>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Freer<EVP_CIPHER_CTX_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, Freer<EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Freer<EVP_MAC_CTX_free>>;

// A clock the test moves by hand, read through TlsTicketKeys::Clock.
struct HandClock {
  TlsTicketKeys::TimePoint now = TlsTicketKeys::TimePoint{} + 1h;
  TlsTicketKeys::Clock clock() {
    return [this] { return now; };
  }
};

// A self-signed P-256 certificate for CN=localhost and its key, as the PEM
// files a TlsContextStore loads.
struct CertificateFiles {
  userkey::test::TempDir dir;
  std::string cert = (dir.path() / "cert.pem").string();
  std::string key = (dir.path() / "key.pem").string();

  CertificateFiles() {
    PkeyPtr pkey(EVP_EC_gen("P-256"));
    REQUIRE(pkey);
    X509Ptr x(X509_new());
    REQUIRE(x);
    X509_NAME* name = X509_get_subject_name(x.get());
    const bool made =
        X509_set_version(x.get(), 2) == 1 && ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1) == 1 &&
        X509_gmtime_adj(X509_getm_notBefore(x.get()), 0) != nullptr &&
        X509_gmtime_adj(X509_getm_notAfter(x.get()), 86'400) != nullptr && X509_set_pubkey(x.get(), pkey.get()) == 1 &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1,
                                   -1, 0) == 1 &&
        X509_set_issuer_name(x.get(), name) == 1 && X509_sign(x.get(), pkey.get(), EVP_sha256()) > 0;
    REQUIRE(made);
    BioPtr cert_out(BIO_new_file(cert.c_str(), "w"));
    BioPtr key_out(BIO_new_file(key.c_str(), "w"));
    REQUIRE((cert_out && key_out));
    REQUIRE(PEM_write_bio_X509(cert_out.get(), x.get()) == 1);
    REQUIRE(PEM_write_bio_PrivateKey(key_out.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  }
};

SslCtxPtr client_context(int version) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx);
  REQUIRE(SSL_CTX_set_min_proto_version(ctx.get(), version) == 1);
  REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), version) == 1);
  return ctx;
}

struct Outcome {
  bool done = false;     ///< the handshake completed on both sides
  bool reused = false;   ///< the client's session was resumed
  SessionPtr session;    ///< the client's session afterwards, with the ticket it got
};

bool fatal(SSL* ssl, int result) {
  const int error = SSL_get_error(ssl, result);
  return error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE;
}

// One connection, in memory: the server's SSL from the store's current
// context, the client's from `client`, offering `resume` when given.
Outcome handshake(const TlsContextStore& store, SSL_CTX* client, SSL_SESSION* resume = nullptr) {
  Outcome out;
  const auto context = store.current();
  SslPtr server_ssl(SSL_new(context->get().native_handle()));
  SslPtr client_ssl(SSL_new(client));
  REQUIRE((server_ssl && client_ssl));
  BIO* client_end = nullptr;
  BIO* server_end = nullptr;
  REQUIRE(BIO_new_bio_pair(&client_end, 0, &server_end, 0) == 1);
  SSL_set_bio(client_ssl.get(), client_end, client_end);  // each SSL owns its end
  SSL_set_bio(server_ssl.get(), server_end, server_end);
  SSL_set_connect_state(client_ssl.get());
  SSL_set_accept_state(server_ssl.get());
  if (resume != nullptr) REQUIRE(SSL_set_session(client_ssl.get(), resume) == 1);
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 50 && !(client_done && server_done); ++round) {
    if (!client_done) {
      const int r = SSL_do_handshake(client_ssl.get());
      if (r == 1) client_done = true;
      else if (fatal(client_ssl.get(), r)) break;
    }
    if (!server_done) {
      const int r = SSL_do_handshake(server_ssl.get());
      if (r == 1) server_done = true;
      else if (fatal(server_ssl.get(), r)) break;
    }
  }
  out.done = client_done && server_done;
  // TLS 1.3 sends the ticket after the handshake: a read takes it in (and
  // finds no data, which is expected).
  char byte = 0;
  for (int i = 0; i < 3; ++i) SSL_read(client_ssl.get(), &byte, 1);
  ERR_clear_error();
  out.reused = SSL_session_reused(client_ssl.get()) == 1;
  out.session.reset(SSL_get1_session(client_ssl.get()));
  // A connection freed without close_notify marks its session not
  // resumable (OpenSSL's rule for an unclean end), so close it properly.
  SSL_shutdown(client_ssl.get());
  SSL_shutdown(server_ssl.get());
  ERR_clear_error();
  return out;
}

// The key name a session's ticket is sealed under (a ticket's first 16 bytes).
TlsTicketKeys::Name ticket_name(SSL_SESSION* session) {
  const unsigned char* ticket = nullptr;
  std::size_t length = 0;
  SSL_SESSION_get0_ticket(session, &ticket, &length);
  TlsTicketKeys::Name name{};
  REQUIRE(length > name.size());
  std::copy(ticket, ticket + name.size(), name.begin());
  return name;
}

std::string version_name(int version) { return version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3"; }

}  // namespace

TEST_CASE("TlsTicketKeys: rotate() keeps exactly the current key and the one before") {
  TlsTicketKeys keys(1h);
  const auto first = keys.current_name();
  CHECK_FALSE(keys.previous_name().has_value());
  CHECK(keys.rotations() == 0);

  REQUIRE(keys.rotate());
  const auto second = keys.current_name();
  CHECK(second != first);
  CHECK(keys.previous_name() == first);

  REQUIRE(keys.rotate());
  CHECK(keys.current_name() != first);
  CHECK(keys.current_name() != second);
  CHECK(keys.previous_name() == second);  // the first is gone
  CHECK(keys.rotations() == 2);
}

TEST_CASE("TlsTicketKeys: the clock rotates once a period has passed; a pause of two periods replaces both keys") {
  HandClock hand;
  TlsTicketKeys keys(10min, hand.clock());
  const auto first = keys.current_name();

  hand.now += 10min - 1ms;
  keys.rotate_if_due();
  CHECK(keys.current_name() == first);
  CHECK(keys.rotations() == 0);

  hand.now += 1ms;
  keys.rotate_if_due();
  CHECK(keys.rotations() == 1);
  CHECK(keys.previous_name() == first);
  const auto second = keys.current_name();

  // Periods are counted from the key's start, not from when it was checked:
  // the next one is due 10 min after the first period ended.
  hand.now += 9min;
  keys.rotate_if_due();
  CHECK(keys.current_name() == second);
  hand.now += 1min;
  keys.rotate_if_due();
  CHECK(keys.previous_name() == second);
  CHECK(keys.rotations() == 2);

  // Quiet for 25 min: the current key's tickets are older than two periods
  // could allow, so no key from before survives.
  const auto third = keys.current_name();
  hand.now += 25min;
  keys.rotate_if_due();
  CHECK(keys.rotations() == 3);
  CHECK(keys.current_name() != third);
  CHECK_FALSE(keys.previous_name().has_value());
}

TEST_CASE("TlsTicketKeys: period 0 never rotates by the clock") {
  HandClock hand;
  TlsTicketKeys keys(0ms, hand.clock());
  const auto first = keys.current_name();
  hand.now += 24h * 365;
  keys.rotate_if_due();
  CHECK(keys.current_name() == first);
  CHECK(keys.rotations() == 0);
}

TEST_CASE("TlsTicketKeys: the callback seals with the current key and opens current (1), previous (2, renew), "
          "nothing older or unknown (0)") {
  TlsTicketKeys keys(1h);
  MacPtr hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  REQUIRE(hmac);
  auto call = [&](TlsTicketKeys::Name& name, bool encrypt) {
    CipherCtxPtr cipher(EVP_CIPHER_CTX_new());
    MacCtxPtr mac(EVP_MAC_CTX_new(hmac.get()));
    REQUIRE((cipher && mac));
    std::array<unsigned char, EVP_MAX_IV_LENGTH> iv{};
    const int result = keys.on_ticket(name.data(), iv.data(), cipher.get(), mac.get(), encrypt);
    if (result > 0) {
      CHECK(EVP_CIPHER_CTX_get_key_length(cipher.get()) == 32);  // AES-256
      CHECK(EVP_MAC_CTX_get_mac_size(mac.get()) == 32);          // HMAC-SHA256
    }
    return result;
  };
  TlsTicketKeys::Name sealed{};
  CHECK(call(sealed, true) == 1);
  CHECK(sealed == keys.current_name());
  CHECK(call(sealed, false) == 1);

  REQUIRE(keys.rotate());
  CHECK(call(sealed, false) == 2);
  TlsTicketKeys::Name renewed{};
  CHECK(call(renewed, true) == 1);
  CHECK(renewed == keys.current_name());
  CHECK(renewed != sealed);

  REQUIRE(keys.rotate());
  CHECK(call(sealed, false) == 0);
  CHECK(call(renewed, false) == 2);
  TlsTicketKeys::Name unknown{};
  unknown.fill(0x5a);
  CHECK(call(unknown, false) == 0);
}

TEST_CASE("TLS handshakes in memory: a ticket resumes at once and after one rotation (renewed), not after two") {
  CertificateFiles files;
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    CAPTURE(version_name(version));
    TlsContextStore store(files.cert, files.key, 1h);
    auto client = client_context(version);

    auto first = handshake(store, client.get());
    REQUIRE(first.done);
    CHECK_FALSE(first.reused);
    REQUIRE(first.session);
    CHECK(ticket_name(first.session.get()) == store.ticket_keys().current_name());

    const auto at_once = handshake(store, client.get(), first.session.get());
    CHECK(at_once.done);
    CHECK(at_once.reused);

    REQUIRE(store.ticket_keys().rotate());
    auto after_one = handshake(store, client.get(), first.session.get());
    CHECK(after_one.done);
    CHECK(after_one.reused);
    // Renewed: the client now holds a ticket under the current key.
    REQUIRE(after_one.session);
    CHECK(ticket_name(after_one.session.get()) == store.ticket_keys().current_name());

    REQUIRE(store.ticket_keys().rotate());
    const auto after_two = handshake(store, client.get(), first.session.get());
    CHECK(after_two.done);  // a full handshake, not a failed one
    CHECK_FALSE(after_two.reused);
    // The renewed ticket is under the previous key now: still good.
    const auto renewed = handshake(store, client.get(), after_one.session.get());
    CHECK(renewed.reused);
  }
}

TEST_CASE("TLS handshakes in memory: rotation by the clock, lazily at the next handshake") {
  CertificateFiles files;
  HandClock hand;
  TlsContextStore store(files.cert, files.key, 1h, hand.clock());
  auto client = client_context(TLS1_3_VERSION);
  auto first = handshake(store, client.get());
  REQUIRE(first.session);

  hand.now += 1h + 1s;
  CHECK(handshake(store, client.get(), first.session.get()).reused);
  CHECK(store.ticket_keys().rotations() == 1);

  hand.now += 2h;
  const auto later = handshake(store, client.get(), first.session.get());
  CHECK(later.done);
  CHECK_FALSE(later.reused);
  CHECK(store.ticket_keys().rotations() == 2);
}

TEST_CASE("TLS handshakes in memory: tickets from before a certificate reload resume after it") {
  CertificateFiles files;
  CertificateFiles renewed;
  TlsContextStore store(files.cert, files.key, 1h);
  auto client = client_context(TLS1_3_VERSION);
  auto first = handshake(store, client.get());
  REQUIRE(first.session);
  const auto before = store.current();

  store.reload(renewed.cert, renewed.key);
  REQUIRE(store.current() != before);
  const auto after = handshake(store, client.get(), first.session.get());
  CHECK(after.done);
  CHECK(after.reused);
}

TEST_CASE("TLS handshakes in memory: loops resume each other's tickets while the keys rotate under them") {
  CertificateFiles files;
  TlsContextStore store(files.cert, files.key, 1h);
  std::atomic<int> failed{0};
  std::atomic<int> full{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> loops;
  for (int t = 0; t < 2; ++t)
    loops.emplace_back([&] {
      auto own = client_context(TLS1_3_VERSION);
      for (int i = 0; i < 20; ++i) {
        auto fresh = handshake(store, own.get());
        if (!fresh.done || !fresh.session) {
          ++failed;
          continue;
        }
        // Resumed unless two rotations came in between.
        if (!handshake(store, own.get(), fresh.session.get()).reused) ++full;
      }
    });
  std::thread rotator([&] {
    for (int i = 0; i < 20 && !done.load(); ++i) {
      store.ticket_keys().rotate();
      std::this_thread::sleep_for(1ms);
    }
  });
  for (auto& t : loops) t.join();
  done = true;
  rotator.join();
  // Every handshake completes, resumed or not (how many were not depends on
  // how the rotations fell; the sanitizer build is what this is for).
  CHECK(failed.load() == 0);
  CHECK(full.load() <= 40);
}
