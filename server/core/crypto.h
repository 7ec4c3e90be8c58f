/*
 * crypto: the thin layer over mbedTLS that the rest of the core uses.
 *
 * One process-wide CTR_DRBG seeded from the OS (guarded by a mutex, chunked
 * below its 1024-byte request limit), AES-256-GCM with a 12-byte nonce and a
 * 16-byte tag, SHA-256, HMAC-SHA256 (on nettle, with the SHA extensions
 * where the CPU has them).  Hex/base64 for key material are
 * common/encoding.h (included here for the core's callers).
 * mbedTLS error codes are translated here and nowhere else.
 */
#ifndef CS_CRYPTO_H
#define CS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "encoding.h"

#include <nettle/sha2.h>

#define CS_KEY_LEN 32
#define CS_NONCE_LEN 12
#define CS_TAG_LEN 16

/* Seeds the DRBG.  Idempotent, thread-safe.  0 or CS_ECRYPTO. */
int cs_crypto_init(void) __attribute__((warn_unused_result));
/* Fills buf with n random bytes.  0 or CS_ECRYPTO. */
int cs_random(void *buf, size_t n) __attribute__((warn_unused_result));

/* AES-256-GCM encrypt: ct has room for n bytes.  0 or CS_ECRYPTO. */
int cs_gcm_seal(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
                const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t n,
                uint8_t *ct, uint8_t tag[CS_TAG_LEN]) __attribute__((warn_unused_result));
/* AES-256-GCM decrypt: CS_EAUTH when the tag does not verify (pt is then wiped). */
int cs_gcm_open(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
                const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                const uint8_t tag[CS_TAG_LEN], uint8_t *pt) __attribute__((warn_unused_result));

/* Which AES-GCM code runs: "libsodium (AES-NI)" or "mbedTLS" (logged at start). */
const char *cs_gcm_backend(void);
/* Whether SHA-256 runs on the CPU's SHA extensions (logged at start). */
int cs_sha256_accelerated(void);

void cs_sha256(const void *msg, size_t n, uint8_t out[32]);
void cs_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n, uint8_t out[32]);

/*
 * HMAC-SHA256 with a key used many times (the audit log's): the hash
 * states after the key's inner and outer pads, computed once, so that each
 * MAC costs two compressions less and no allocation.  The state is key
 * material: keep it in locked memory (secmem) and wipe it with cs_wipe.
 * Same results as cs_hmac_sha256 (tests/unit/test_crypto.c).
 */
typedef struct cs_hmac_key {
  struct sha256_ctx inner, outer;
} cs_hmac_key;
void cs_hmac_key_set(cs_hmac_key *k, const uint8_t key[32]);
void cs_hmac_sha256_with(const cs_hmac_key *k, const void *msg, size_t n, uint8_t out[32]);

/* Wall-clock seconds since the epoch. */
int64_t cs_now(void);
/* RFC 3339 UTC ("2026-11-22T04:25:26Z") into out (at least 32 bytes). */
void cs_rfc3339(int64_t t, char *out, size_t cap);

#endif
