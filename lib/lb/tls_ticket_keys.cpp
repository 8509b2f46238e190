// The keys that seal TLS session tickets, rotated: see tls_ticket_keys.hpp.
#include "tls_ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <stdexcept>

namespace userkey::lb::engine {

namespace {

// The SSL_CTX ex_data slot that points a context at its TlsTicketKeys (the
// ticket callback has no argument of its own). OpenSSL's slots are numbered
// per process; this one is taken once, on first use, and means the same for
// every context of every ProxyServer in the process.
int keys_slot() {
  static const int slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return slot;
}

// What OpenSSL calls for each ticket it seals or opens with a context whose
// keys are ours. An exception must not cross OpenSSL's C frames: it becomes
// 0 (no ticket this time, or a full handshake), as a missing slot does.
int ticket_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                    int enc) {
  try {
    auto* keys = static_cast<TlsTicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_slot()));
    return keys != nullptr ? keys->on_ticket(name, iv, cipher, mac, enc == 1) : 0;
  } catch (...) {
    return 0;
  }
}

// AES-256-CBC's IV, which OpenSSL's buffer (EVP_MAX_IV_LENGTH) holds.
constexpr int kIvLength = 16;

}  // namespace

TlsTicketKeys::Key::~Key() {
  OPENSSL_cleanse(aes.data(), aes.size());
  OPENSSL_cleanse(hmac.data(), hmac.size());
}

bool TlsTicketKeys::make_key(Key& out) {
  const bool ok = RAND_bytes(out.name.data(), static_cast<int>(out.name.size())) == 1 &&
                  RAND_bytes(out.aes.data(), static_cast<int>(out.aes.size())) == 1 &&
                  RAND_bytes(out.hmac.data(), static_cast<int>(out.hmac.size())) == 1;
  ERR_clear_error();
  return ok;
}

TlsTicketKeys::TlsTicketKeys(std::chrono::milliseconds period, Clock clock)
    : period_(period), clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {
  if (!make_key(current_)) throw std::runtime_error("tls: OpenSSL gave no randomness for the session-ticket keys");
  current_since_ = clock_();
}

TlsTicketKeys::~TlsTicketKeys() = default;

bool TlsTicketKeys::install(SSL_CTX* ctx) {
  const int slot = keys_slot();
  const bool ok = slot >= 0 && SSL_CTX_set_ex_data(ctx, slot, this) == 1 &&
                  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ticket_callback) == 1;
  ERR_clear_error();
  return ok;
}

bool TlsTicketKeys::rotate() {
  std::lock_guard lock(mu_);
  return rotate_locked(clock_());
}

bool TlsTicketKeys::rotate_locked(TimePoint now) {
  Key fresh;
  if (!make_key(fresh)) return false;
  previous_ = current_;
  has_previous_ = true;
  current_ = fresh;
  current_since_ = now;
  ++rotations_;
  return true;
}

void TlsTicketKeys::rotate_if_due() {
  std::lock_guard lock(mu_);
  rotate_if_due_locked();
}

void TlsTicketKeys::rotate_if_due_locked() {
  if (period_.count() <= 0) return;
  const auto now = clock_();
  if (now - current_since_ < period_) return;
  const auto periods = (now - current_since_) / period_;  // >= 1
  // Without randomness the keys stay as they are; the next handshake tries again.
  if (periods == 1) {
    rotate_locked(current_since_ + period_);
    return;
  }
  // Two periods or more: the current key's tickets are past their time too.
  Key fresh;
  if (!make_key(fresh)) return;
  current_ = fresh;
  previous_ = Key();
  has_previous_ = false;
  current_since_ += period_ * periods;
  ++rotations_;
}

int TlsTicketKeys::on_ticket(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                             bool encrypt) {
  std::lock_guard lock(mu_);
  rotate_if_due_locked();
  const Key* key = nullptr;
  int found = 1;
  if (encrypt) {
    if (RAND_bytes(iv, kIvLength) != 1) {
      ERR_clear_error();
      return 0;  // no ticket this time
    }
    key = &current_;
    std::copy(key->name.begin(), key->name.end(), name);
  } else if (CRYPTO_memcmp(name, current_.name.data(), current_.name.size()) == 0) {
    key = &current_;
  } else if (has_previous_ && CRYPTO_memcmp(name, previous_.name.data(), previous_.name.size()) == 0) {
    key = &previous_;
    found = 2;  // good, but sealed with a key on its way out: renew it
  } else {
    return 0;  // rotated out, another process's, or not ours at all
  }
  // OSSL_PARAM wants mutable pointers; these are only read.
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac.data()),
                                        key->hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  const bool ready =
      EVP_MAC_CTX_set_params(mac, params) == 1 &&
      (encrypt ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)
               : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)) == 1;
  if (!ready) {
    ERR_clear_error();
    return 0;  // no ticket this time, or a full handshake
  }
  return found;
}

TlsTicketKeys::Name TlsTicketKeys::current_name() const {
  std::lock_guard lock(mu_);
  return current_.name;
}

std::optional<TlsTicketKeys::Name> TlsTicketKeys::previous_name() const {
  std::lock_guard lock(mu_);
  return has_previous_ ? std::optional<Name>(previous_.name) : std::nullopt;
}

std::uint64_t TlsTicketKeys::rotations() const {
  std::lock_guard lock(mu_);
  return rotations_;
}

}  // namespace userkey::lb::engine
