/*
 * crypto: the thin layer over mbedTLS that the rest of the core uses.
 *
 * It owns the one process-wide CTR_DRBG.  The DRBG is seeded lazily and
 * exactly once (pthread_once) from mbedtls_entropy, and every draw holds
 * a mutex because an mbedtls_ctr_drbg_context is not thread-safe.  If the
 * first seeding fails, it stays failed: every cs_random() then returns
 * CS_ECRYPTO rather than ever handing out unseeded bytes.  The DRBG is
 * not fork-safe (a child would replay the parent's stream); custosd does
 * not fork after start-up, and anything that does must not use it.
 *
 * AES-256-GCM (cs_gcm_*) runs on libsodium's AES-NI/PCLMUL code when the
 * CPU has both: it works on 8 blocks at a time, about 0.18 us for a
 * 256-byte value here against 1.1 us for mbedTLS 2.28's block-at-a-time
 * GCM (docs/performance.md, session 9).  Without them it runs on mbedTLS.
 * The algorithm is the same, so are the bytes: values written by either
 * open with the other (test_crypto checks both ways).  SHA-256 and HMAC
 * run on nettle (below, "hashes").
 *
 * MBEDTLS_ERR_* codes are translated into the CS_E* table here and nowhere
 * else.  Hex and base64 are used for key material, so both directions run
 * without table lookups or branches indexed by secret values.
 */
#include "crypto.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <nettle/sha2.h>
#include <sodium.h>

_Static_assert(CS_KEY_LEN == crypto_aead_aes256gcm_KEYBYTES, "AES-256 key");
_Static_assert(CS_NONCE_LEN == crypto_aead_aes256gcm_NPUBBYTES, "96-bit GCM nonce");
_Static_assert(CS_TAG_LEN == crypto_aead_aes256gcm_ABYTES, "128-bit GCM tag");

#include "cs_error.h"

/* ---- DRBG ------------------------------------------------------------------ */

static pthread_once_t drbg_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t drbg_lock = PTHREAD_MUTEX_INITIALIZER;
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static int drbg_status = CS_ECRYPTO; /* set once by drbg_seed() */

static void drbg_seed(void) {
  /* The personalization string only separates this DRBG instance from
   * others in the process; it is not secret. */
  static const char pers[] = "custos ctr_drbg";
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                 (const unsigned char *)pers, sizeof pers - 1);
  drbg_status = rc == 0 ? CS_OK : cs_error_set(CS_ECRYPTO, "ctr_drbg seed failed (-0x%04x)", -rc);
}

int cs_crypto_init(void) {
  pthread_once(&drbg_once, drbg_seed);
  return drbg_status;
}

int cs_random(void *buf, size_t n) {
  int rc = cs_crypto_init();
  if (rc != 0)
    return rc;
  unsigned char *p = buf;
  pthread_mutex_lock(&drbg_lock);
  while (n > 0) {
    /* CTR_DRBG refuses requests above MBEDTLS_CTR_DRBG_MAX_REQUEST (1024). */
    size_t chunk = n < MBEDTLS_CTR_DRBG_MAX_REQUEST ? n : MBEDTLS_CTR_DRBG_MAX_REQUEST;
    int mrc = mbedtls_ctr_drbg_random(&drbg, p, chunk);
    if (mrc != 0) {
      rc = cs_error_set(CS_ECRYPTO, "ctr_drbg failed (-0x%04x)", -mrc);
      break;
    }
    p += chunk;
    n -= chunk;
  }
  pthread_mutex_unlock(&drbg_lock);
  /* Never leave a half-filled buffer that a careless caller might use. */
  if (rc != 0)
    mbedtls_platform_zeroize(buf, (size_t)(p - (unsigned char *)buf));
  return rc;
}

/* ---- AES-256-GCM ------------------------------------------------------------ */

/* Chosen once: sodium_init detects the CPU's features (thread-safe). */
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static int gcm_sodium;

static void gcm_pick(void) {
  gcm_sodium = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

static int use_sodium(void) {
  pthread_once(&gcm_once, gcm_pick);
  return gcm_sodium;
}

const char *cs_gcm_backend(void) {
  return use_sodium() ? "libsodium (AES-NI)" : "mbedTLS";
}

static int mbed_gcm_seal(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
                         const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t n,
                         uint8_t *ct, uint8_t tag[CS_TAG_LEN]) {
  mbedtls_gcm_context gcm;
  mbedtls_gcm_init(&gcm);
  int rc = CS_OK;
  int mrc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, CS_KEY_LEN * 8);
  if (mrc == 0)
    mrc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, n, nonce, CS_NONCE_LEN, aad,
                                    aad_len, pt, ct, CS_TAG_LEN, tag);
  if (mrc != 0)
    rc = cs_error_set(CS_ECRYPTO, "gcm seal failed (-0x%04x)", -mrc);
  mbedtls_gcm_free(&gcm); /* zeroizes the key schedule */
  return rc;
}

static int mbed_gcm_open(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
                         const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                         const uint8_t tag[CS_TAG_LEN], uint8_t *pt) {
  mbedtls_gcm_context gcm;
  mbedtls_gcm_init(&gcm);
  int rc = CS_OK;
  int mrc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, CS_KEY_LEN * 8);
  if (mrc == 0)
    mrc = mbedtls_gcm_auth_decrypt(&gcm, n, nonce, CS_NONCE_LEN, aad, aad_len, tag, CS_TAG_LEN,
                                   ct, pt);
  if (mrc == MBEDTLS_ERR_GCM_AUTH_FAILED)
    rc = CS_EAUTH; /* forged or corrupt input: the caller adds context */
  else if (mrc != 0)
    rc = cs_error_set(CS_ECRYPTO, "gcm open failed (-0x%04x)", -mrc);
  mbedtls_gcm_free(&gcm);
  return rc;
}

int cs_gcm_seal(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
                const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t n,
                uint8_t *ct, uint8_t tag[CS_TAG_LEN]) {
  if (!use_sodium() || n > crypto_aead_aes256gcm_MESSAGEBYTES_MAX) /* > 64 GiB: sodium aborts */
    return mbed_gcm_seal(key, nonce, aad, aad_len, pt, n, ct, tag);
  /* The key schedule is ours, to wipe: libsodium 1.0.18's one-shot
   * *_detached calls leave theirs on the stack (its first round keys are
   * the key itself; a review found them there). */
  crypto_aead_aes256gcm_state st;
  uint8_t none; /* libsodium declares the output nonnull even when it is empty */
  int rc = CS_OK;
  crypto_aead_aes256gcm_beforenm(&st, key);
  if (crypto_aead_aes256gcm_encrypt_detached_afternm(ct != NULL ? ct : &none, tag, NULL, pt, n,
                                                     aad, aad_len, NULL, nonce, &st) != 0)
    rc = cs_error_set(CS_ECRYPTO, "gcm seal failed");
  sodium_memzero(&st, sizeof st);
  return rc;
}

int cs_gcm_open(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
                const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                const uint8_t tag[CS_TAG_LEN], uint8_t *pt) {
  int rc = CS_OK;
  if (!use_sodium() || n > crypto_aead_aes256gcm_MESSAGEBYTES_MAX) {
    rc = mbed_gcm_open(key, nonce, aad, aad_len, ct, n, tag, pt);
  } else {
    crypto_aead_aes256gcm_state st; /* wiped here: see cs_gcm_seal */
    const uint8_t none = 0; /* nonnull in libsodium's header, even when empty */
    crypto_aead_aes256gcm_beforenm(&st, key);
    if (crypto_aead_aes256gcm_decrypt_detached_afternm(pt, NULL, ct != NULL ? ct : &none, n, tag,
                                                       aad, aad_len, nonce, &st) != 0)
      rc = CS_EAUTH; /* its only failure: the tag, checked before any byte is decrypted */
    sodium_memzero(&st, sizeof st);
  }
  /* Both libraries zero pt on a bad tag; do it ourselves as well so the
   * contract ("pt is wiped") does not depend on a library version. */
  if (rc != 0 && n > 0)
    mbedtls_platform_zeroize(pt, n);
  return rc;
}

/* ---- hashes ------------------------------------------------------------------ */

/*
 * SHA-256 runs on nettle: its fat build picks the SHA extensions (SHA-NI)
 * at load time where the CPU has them, 0.22 us for 256 bytes here against
 * 1.0 us for mbedTLS 2.28's C code (docs/performance.md, session 10).  It
 * hashes tokens on every request and the audit log's values.  Nettle's C
 * fallback keeps message words in locals it does not wipe, so every hash
 * of a secret ends by burning the stack its callees used; its own HMAC
 * helpers leave the key's pad block on the stack, so the pads are built
 * here (pad_state).
 */
/* Not instrumented by ASan, whose redzone above scratch would be left
 * unwiped (test_crypto found the schedule there).  The vector registers
 * go too: the SHA extensions keep the schedule in them, and a signal frame
 * would copy them onto the stack (custosd binds symbols at start, -z now,
 * so the lazy-binding trampoline does not). */
__attribute__((noinline, no_sanitize_address)) static void burn_stack(void) {
  uint8_t scratch[1024];
  mbedtls_platform_zeroize(scratch, sizeof scratch);
#if defined(__x86_64__) && defined(__GNUC__)
  __asm__ volatile("pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
                   "pxor %%xmm3, %%xmm3\n\tpxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
                   "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\tpxor %%xmm8, %%xmm8\n\t"
                   "pxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
                   "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\t"
                   "pxor %%xmm15, %%xmm15"
                   ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                   "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
#endif
}

int cs_sha256_accelerated(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  /* nettle chooses the same way (fat-x86_64.c: CPUID leaf 7, EBX bit 29).
   * Asked directly: clang's __builtin_cpu_supports has no "sha". */
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b >> 29) & 1;
#else
  return 0;
#endif
}

void cs_sha256(const void *msg, size_t n, uint8_t out[32]) {
  struct sha256_ctx c;
  sha256_init(&c);
  sha256_update(&c, n, msg);
  sha256_digest(&c, SHA256_DIGEST_SIZE, out);
  mbedtls_platform_zeroize(&c, sizeof c);
  burn_stack();
}

/* The state after one 64-byte pad block: key XOR pad (RFC 2104). */
static void pad_state(struct sha256_ctx *c, const uint8_t *key, size_t key_len, uint8_t pad) {
  uint8_t block[SHA256_BLOCK_SIZE];
  for (size_t i = 0; i < sizeof block; i++)
    block[i] = (uint8_t)((i < key_len ? key[i] : 0) ^ pad);
  sha256_init(c);
  sha256_update(c, sizeof block, block);
  mbedtls_platform_zeroize(block, sizeof block);
}

static void hmac_pads(cs_hmac_key *k, const uint8_t *key, size_t key_len) {
  uint8_t hashed[SHA256_DIGEST_SIZE];
  if (key_len > SHA256_BLOCK_SIZE) { /* RFC 2104: a long key is hashed first */
    cs_sha256(key, key_len, hashed);
    key = hashed;
    key_len = sizeof hashed;
  }
  pad_state(&k->inner, key, key_len, 0x36);
  pad_state(&k->outer, key, key_len, 0x5c);
  mbedtls_platform_zeroize(hashed, sizeof hashed);
}

/* The MAC from pad states, with no allocation, so it cannot fail. */
static void hmac_from(const cs_hmac_key *k, const void *msg, size_t n, uint8_t out[32]) {
  struct sha256_ctx c = k->inner;
  uint8_t ihash[SHA256_DIGEST_SIZE];
  sha256_update(&c, n, msg);
  sha256_digest(&c, sizeof ihash, ihash);
  c = k->outer;
  sha256_update(&c, sizeof ihash, ihash);
  sha256_digest(&c, SHA256_DIGEST_SIZE, out);
  mbedtls_platform_zeroize(&c, sizeof c);
  mbedtls_platform_zeroize(ihash, sizeof ihash);
  burn_stack();
}

void cs_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n,
                    uint8_t out[32]) {
  cs_hmac_key k;
  hmac_pads(&k, key, key_len);
  hmac_from(&k, msg, n, out);
  mbedtls_platform_zeroize(&k, sizeof k);
}

void cs_hmac_key_set(cs_hmac_key *k, const uint8_t key[32]) {
  hmac_pads(k, key, 32);
  burn_stack();
}

void cs_hmac_sha256_with(const cs_hmac_key *k, const void *msg, size_t n, uint8_t out[32]) {
  hmac_from(k, msg, n, out);
}

/* hex and base64: common/encoding.c (shared with the client and the CLI). */

/* ---- time ---------------------------------------------------------------------- */

int64_t cs_now(void) { return (int64_t)time(NULL); }

void cs_rfc3339(int64_t t, char *out, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (cap == 0)
    return;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    out[0] = '\0'; /* out of range or too small: an empty string, never garbage */
}
