// LD_PRELOAD shim for wrk (bench/tls.sh): every TLS connection wrk opens
// starts with a full handshake. wrk keeps one SSL object per connection slot
// and reconnects with it (SSL_shutdown + SSL_clear), so OpenSSL offers the
// previous connection's session and the server resumes it. Here, before a
// handshake starts, that session is dropped; calls that continue a handshake
// already under way pass through untouched.
//
//   cc -shared -fPIC -O2 -o wrk-no-resume.so bench/wrk-no-resume.c -ldl
//   LD_PRELOAD=./wrk-no-resume.so wrk -H 'Connection: close' https://...
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stddef.h>

int SSL_connect(SSL* ssl) {
  static int (*next)(SSL*) = NULL;
  if (next == NULL) next = (int (*)(SSL*))dlsym(RTLD_NEXT, "SSL_connect");
  if (SSL_in_before(ssl)) SSL_set_session(ssl, NULL);
  return next(ssl);
}
