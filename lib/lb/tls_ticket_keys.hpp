// The keys that seal TLS session tickets, rotated.
//
// Owns: two keys, the current one and the previous one, each a 16-byte name
// (sent in clear at the head of a ticket, so the server knows which key to
// open it with), a 32-byte AES-256-CBC key and a 32-byte HMAC-SHA256 key,
// all from RAND_bytes. New tickets are sealed with the current key; a ticket
// under the current key resumes; one under the previous key resumes and is
// renewed (the client gets a ticket under the current key); any other name
// (a key rotated out, another process's, garbage) gets a full handshake.
//
// Rotation: every `period` the current key becomes the previous one and a
// fresh key the current one, so a ticket stays good for between one and two
// periods after it was issued. It happens lazily, in the ticket callback of
// the first handshake after a period has passed (or by rotate(), explicitly):
// no timer, no thread, and an idle lb makes no keys. When two periods or more
// have passed since the current key was made, both keys are replaced (no
// ticket can outlive two periods, however quiet the lb was). Period 0: no
// rotation, one key for the life of the object (OpenSSL's own behaviour).
//
// A TlsTicketKeys outlives certificate reloads: the TlsContextStore keeps
// one and installs it into every TlsContext it makes (install()), so a
// ticket issued before a SIGHUP resumes after it. Key material never leaves
// this object except into OpenSSL's cipher and MAC contexts, and is
// cleansed when replaced; nothing here logs.
//
// Thread-safety: every member may be called from any thread (the proxy's
// loops share one through their SSL_CTX); a mutex guards the keys.
#pragma once

#include <openssl/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

namespace userkey::lb::engine {

class TlsTicketKeys {
public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;
  using Name = std::array<unsigned char, 16>;

  /// Makes the first key (there is no previous one yet). `clock` defaults to
  /// the steady clock; tests pass their own. Throws std::runtime_error when
  /// OpenSSL has no randomness to give.
  explicit TlsTicketKeys(std::chrono::milliseconds period, Clock clock = {});
  TlsTicketKeys(const TlsTicketKeys&) = delete;
  TlsTicketKeys& operator=(const TlsTicketKeys&) = delete;
  ~TlsTicketKeys();

  /// Makes `ctx` seal and open its tickets with these keys. The keys must
  /// outlive `ctx` (TlsContext keeps a shared_ptr). False when OpenSSL
  /// refused (then the context keeps its own keys).
  bool install(SSL_CTX* ctx);

  /// Rotates now, whatever the clock says (the next period starts now).
  /// False when no randomness was available: the keys stay as they were.
  bool rotate();

  /// Rotates when the clock says a period has passed (the ticket callback
  /// does this before each ticket it seals or opens).
  void rotate_if_due();

  /// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb),
  /// for this object: `encrypt` picks the current key, writes its name and
  /// a fresh IV and readies `cipher` and `mac` (1; 0 = no ticket this time);
  /// otherwise finds the key `name` names and readies them to open the
  /// ticket: 1 for the current key, 2 for the previous (renew), 0 for any
  /// other, or when OpenSSL fails (a full handshake).
  int on_ticket(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, bool encrypt);

  /// The current key's name and the previous one's (none before the first
  /// rotation, or after a pause of two periods or more), as of the last
  /// rotation or check. Names are public
  /// (every ticket carries one); the keys themselves are never handed out.
  Name current_name() const;
  std::optional<Name> previous_name() const;
  /// Rotations so far (each fresh key after the first counts one).
  std::uint64_t rotations() const;
  std::chrono::milliseconds period() const { return period_; }

private:
  struct Key {
    Name name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
    Key() = default;
    Key(const Key&) = default;
    Key& operator=(const Key&) = default;
    ~Key();
  };
  static bool make_key(Key& out);
  // With mu_ held.
  void rotate_if_due_locked();
  bool rotate_locked(TimePoint now);

  const std::chrono::milliseconds period_;
  const Clock clock_;
  mutable std::mutex mu_;
  Key current_;
  Key previous_;
  bool has_previous_ = false;
  TimePoint current_since_;
  std::uint64_t rotations_ = 0;
};

}  // namespace userkey::lb::engine
