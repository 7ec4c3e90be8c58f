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

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

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

int cs_gcm_seal(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
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

int cs_gcm_open(const uint8_t key[CS_KEY_LEN], const uint8_t nonce[CS_NONCE_LEN],
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
  /* mbedTLS already zeroes pt on a bad tag; do it ourselves as well so the
   * contract ("pt is wiped") does not depend on a library version. */
  if (rc != 0 && n > 0)
    mbedtls_platform_zeroize(pt, n);
  mbedtls_gcm_free(&gcm);
  return rc;
}

/* ---- hashes ------------------------------------------------------------------ */

void cs_sha256(const void *msg, size_t n, uint8_t out[32]) {
  /* Only fails on a hardware-accelerator error, which we do not use. */
  int mrc = mbedtls_sha256_ret(msg, n, out, 0);
  assert(mrc == 0);
  (void)mrc;
}

void cs_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t n,
                    uint8_t out[32]) {
  /* mbedtls_md_hmac allocates its context, so it can fail for lack of
   * memory.  The API returns nothing, and a MAC that silently is not
   * computed is worse than stopping: abort. */
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  if (md == NULL || mbedtls_md_hmac(md, key, key_len, msg, n, out) != 0)
    abort();
}

/* ---- hex ---------------------------------------------------------------------- */

/* One nibble (0..15) to its lower-case digit without a table or branch,
 * after libsodium's sodium_bin2hex: for c < 10, (c - 10) >> 8 is all ones,
 * and 87 + c - 39 = '0' + c; otherwise the mask is 0 and 87 + c = 'a' + c - 10. */
static char hex_digit(unsigned c) {
  return (char)(unsigned char)(87U + c + (((c - 10U) >> 8) & ~38U));
}

void cs_hex_encode(const uint8_t *in, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex_digit(in[i] >> 4);
    out[2 * i + 1] = hex_digit(in[i] & 0xFU);
  }
  out[2 * n] = '\0';
}

/* A hex digit (either case) to its value, and *bad |= 1 when it is not a
 * digit.  Branch-free, after libsodium's sodium_hex2bin: each range test
 * is an 8-bit mask derived from the sign of a subtraction. */
static unsigned hex_value(unsigned char ch, unsigned *bad) {
  unsigned c = ch;
  unsigned num = c ^ 48U;                                    /* '0'..'9' -> 0..9 */
  unsigned num_ok = ((num - 10U) >> 8) & 0xFFU;              /* 0xFF when num < 10 */
  unsigned alpha = (c & ~32U) - 55U;                         /* 'A'/'a'.. -> 10.. */
  unsigned alpha_ok = (((alpha - 10U) ^ (alpha - 16U)) >> 8) & 0xFFU; /* 10 <= alpha < 16 */
  *bad |= (((num_ok | alpha_ok) - 1U) >> 8) & 1U;            /* 1 when both masks are 0 */
  return ((num_ok & num) | (alpha_ok & alpha)) & 0xFU;
}

int cs_hex_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len) {
  size_t len = strlen(in);
  if (len % 2 != 0)
    return cs_error_set(CS_EINVAL, "hex string has odd length %zu", len);
  if (len / 2 > cap)
    return cs_error_set(CS_EINVAL, "hex string decodes to %zu bytes, at most %zu allowed",
                        len / 2, cap);
  /* Decode everything and test the accumulated flag once at the end, so the
   * time does not reveal where (or whether) a bad digit was. */
  unsigned bad = 0;
  for (size_t i = 0; i < len / 2; i++) {
    unsigned hi = hex_value((unsigned char)in[2 * i], &bad);
    unsigned lo = hex_value((unsigned char)in[2 * i + 1], &bad);
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  if (bad) {
    mbedtls_platform_zeroize(out, len / 2);
    return cs_error_set(CS_EINVAL, "invalid hex digit");
  }
  if (out_len)
    *out_len = len / 2;
  return 0;
}

/* ---- base64 ------------------------------------------------------------------- */

void cs_b64_encode(const uint8_t *in, size_t n, char *out) {
  /* mbedTLS 2.28's encoder is constant time (mbedtls_ct_base64_enc_char).
   * It does not write the terminator for n == 0. */
  size_t olen = 0;
  out[0] = '\0';
  int mrc = mbedtls_base64_encode((unsigned char *)out, 4 * ((n + 2) / 3) + 1, &olen, in, n);
  assert(mrc == 0); /* only BUFFER_TOO_SMALL, impossible with the size above */
  (void)mrc;
}

int cs_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len) {
  size_t len = strlen(in);
  /* mbedTLS tolerates spaces and line breaks (PEM bodies); a key in a
   * request or config must be exactly canonical, so reject them here.
   * The scan is over every byte regardless of content. */
  unsigned ws = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    ws |= (unsigned)(c == ' ') | (unsigned)(c == '\r') | (unsigned)(c == '\n');
  }
  if (ws || len % 4 != 0)
    return cs_error_set(CS_EINVAL, "invalid base64 (whitespace or length %zu not a multiple of 4)",
                        len);
  size_t olen = 0;
  int mrc = mbedtls_base64_decode(out, cap, &olen, (const unsigned char *)in, len);
  if (mrc == MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL)
    return cs_error_set(CS_EINVAL, "base64 decodes to %zu bytes, at most %zu allowed", olen, cap);
  if (mrc != 0) {
    if (cap > 0)
      mbedtls_platform_zeroize(out, cap);
    return cs_error_set(CS_EINVAL, "invalid base64");
  }
  if (out_len)
    *out_len = olen;
  return 0;
}

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
