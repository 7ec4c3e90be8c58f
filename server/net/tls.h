/*
 * tls: mbedTLS 2.28 server-side TLS driven by a libuv loop.
 *
 * Two nouns live here.  A cs_tls_config is the one shared server
 * mbedtls_ssl_config (TLS 1.2 only, ECDHE + AEAD suites, the certificate
 * chain and key, an optional client CA that makes client certificates
 * mandatory) with its own CTR_DRBG.  A cs_tls is one connection's session:
 * an mbedtls_ssl_context on the heap (it must never move) whose bio reads
 * from the bytes handed to cs_tls_feed() and whose output is written to
 * the connection's stream: at once (uv_try_write) when nothing is queued,
 * the rest through uv_write requests.
 *
 * The session knows nothing about frames: it hands decrypted bytes to the
 * on_data callback as they come and encrypts what cs_tls_write() is given.
 * Everything runs on the loop thread.  Output is coalesced while the session
 * is "corked" (always during cs_tls_feed) and written in one go when it is
 * uncorked, so a burst of pipelined responses costs one syscall.
 */
#ifndef CS_TLS_H
#define CS_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cs_tls_config cs_tls_config;
typedef struct cs_tls cs_tls;

/*
 * Loads the certificate chain and key (and the client CA when
 * `client_ca_file` is not NULL) and builds the shared configuration.
 * Returns 0, or CS_ETLS / CS_ECRYPTO / CS_ENOMEM with a detail such as
 * "cannot read TLS certificate /x/y.crt: No such file or directory".
 */
int cs_tls_config_new(cs_tls_config **out, const char *cert_file, const char *key_file,
                      const char *client_ca_file) __attribute__((warn_unused_result));
/* Drops the caller's reference: the configuration is freed once no
 * session made from it remains (sessions hold a reference each), so a
 * listener may replace its configuration while old sessions go on. */
void cs_tls_config_free(cs_tls_config *cfg);

typedef struct cs_tls_callbacks {
  /* The handshake completed (called once, before any on_data). */
  void (*on_handshake)(void *ctx);
  /* Decrypted bytes from the peer, valid during the call only.  Return
   * nonzero to stop decrypting the rest of the current input (the
   * connection is going away). */
  int (*on_data)(void *ctx, const uint8_t *buf, size_t len);
  /* A uv_write of this session completed (status < 0 on failure); the
   * stream's write queue may now be short enough to read again.  Bytes
   * written at once (uv_try_write) get no callback: the caller of the
   * write or flush checks reading and draining itself. */
  void (*on_written)(void *ctx, int status);
} cs_tls_callbacks;

/*
 * Makes a session for `stream` (which must outlive it).  Returns NULL when
 * out of memory.  The session allocates mbedTLS's record buffers (~2 x 16.6
 * KiB); nothing else of size.
 */
cs_tls *cs_tls_new(const cs_tls_config *cfg, uv_stream_t *stream, const cs_tls_callbacks *cb,
                   void *ctx);
/* Frees the session.  Call only once the stream is closed (its write
 * callbacks have all run). */
void cs_tls_free(cs_tls *t);

/*
 * Feeds ciphertext read from the socket.  Drives the handshake and then
 * decrypts records until mbedTLS needs more input, calling on_data for
 * each piece: every byte of `buf` is consumed (mbedTLS keeps a partial
 * record in its own buffer).  Output produced meanwhile is flushed before
 * returning.  Returns 0; 1 when the peer sent close_notify; CS_ETLS with a
 * detail (the mbedTLS reason, and the certificate verification result when
 * that was the cause) when the session failed and must be closed.
 */
int cs_tls_feed(cs_tls *t, const uint8_t *buf, size_t len) __attribute__((warn_unused_result));

/*
 * Encrypts `len` bytes (copied; records of up to 16 KiB) and queues them.
 * Written at once unless corked.  Returns 0 or CS_ETLS / CS_ENOMEM.
 */
int cs_tls_write(cs_tls *t, const uint8_t *buf, size_t len) __attribute__((warn_unused_result));
/* Queues a close_notify alert (written at once unless corked). */
void cs_tls_close_notify(cs_tls *t);
/* Corking nests; the last uncork writes what was queued. */
void cs_tls_cork(cs_tls *t);
void cs_tls_uncork(cs_tls *t);
/* Writes what is queued now, corked or not (before a uv_shutdown, which
 * only waits for writes already submitted). */
void cs_tls_flush(cs_tls *t);

int cs_tls_handshake_done(const cs_tls *t);
/* 1 when the peer presented a certificate that verified. */
int cs_tls_peer_verified(const cs_tls *t);
/* Encrypted bytes held back by a cork, not yet written. */
size_t cs_tls_corked_bytes(const cs_tls *t);

#endif
