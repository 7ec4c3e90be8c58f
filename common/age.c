/*
 * age: the age v1 format on mbedTLS 2.28 (see age.h for the contract).
 *
 * Layout of a file (c2sp.org/age):
 *   age-encryption.org/v1\n
 *   -> X25519 <b64 share>\n<b64 body>\n      one stanza per recipient
 *   --- <b64 HMAC-SHA-256 of everything up to and including "---">\n
 *   16-byte nonce, then ChaCha20-Poly1305 chunks of 64 KiB (+16 tag)
 * Base64 in the header is standard, unpadded and canonical; in the armor it
 * is padded, in lines of 64 columns.  Every parser here works on a buffer
 * with an explicit length and refuses anything the format does not allow.
 */
#include "age.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mbedtls/chachapoly.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/ecp.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "cs_error.h"

#define FILE_KEY_LEN 16
#define TAG_LEN 16
#define NONCE_LEN 16
#define CHUNK_LEN 65536
#define ENC_CHUNK_LEN (CHUNK_LEN + TAG_LEN)
#define B64_LINE 64      /* columns of a stanza body line and an armor line */
#define B64_KEY_LEN 43   /* unpadded base64 of 32 bytes */

static const char VERSION_LINE[] = "age-encryption.org/v1";
static const char VERSION_PREFIX[] = "age-encryption.org/";
static const char X25519_INFO[] = "age-encryption.org/v1/X25519";
static const char ARMOR_BEGIN[] = "-----BEGIN AGE ENCRYPTED FILE-----";
static const char ARMOR_END[] = "-----END AGE ENCRYPTED FILE-----";
static const char HRP_RECIPIENT[] = "age";
static const char HRP_IDENTITY[] = "age-secret-key-";

/* ------------------------------------------------------------ randomness */

static int random_bytes(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return CS_ECRYPTO;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* mbedTLS's f_rng signature, for the blinding in mbedtls_ecp_mul. */
static int ecp_rng(void *ctx, unsigned char *buf, size_t n) {
  (void)ctx;
  return random_bytes(buf, n) == 0 ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

/* ---------------------------------------------------------------- base64 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Standard base64 of n bytes into out, padded or not; returns the length
 * written (no NUL). */
static size_t b64_encode(const uint8_t *in, size_t n, char *out, int pad) {
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = B64[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    if (pad) {
      out[o++] = '=';
      out[o++] = '=';
    }
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    if (pad)
      out[o++] = '=';
  }
  return o;
}

static size_t b64_len(size_t n, int pad) {
  return pad ? (n + 2) / 3 * 4 : n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/*
 * Decodes canonical base64 of n characters: with `pad`, the length is a
 * multiple of 4 and '=' fills the last group; without, there is no '='.
 * The unused low bits of the last character must be zero, so every byte
 * string has exactly one accepted encoding.  Writes at most cap bytes.
 * 0, or -1 for anything else.
 */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *out_len,
                      int pad) {
  if (pad) {
    if (n % 4 != 0)
      return -1;
    size_t eq = 0;
    while (eq < 2 && eq < n && s[n - 1 - eq] == '=')
      eq++;
    n -= eq;
    if (eq > 0 && n % 4 != 4 - eq)
      return -1;
  }
  if (n % 4 == 1)
    return -1;
  size_t need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
  if (need > cap)
    return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value((unsigned char)s[i]);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return -1; /* not canonical: leftover bits set */
  *out_len = o;
  return 0;
}

/* ---------------------------------------------------------------- bech32 */

static const char BECH32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod_step(uint32_t chk, uint8_t v) {
  static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
  uint32_t top = chk >> 25;
  chk = (chk & 0x1ffffff) << 5 ^ v;
  for (int i = 0; i < 5; i++)
    chk ^= (uint32_t)(-(int32_t)((top >> i) & 1)) & gen[i];
  return chk;
}

/* BIP173 checksum state after the expanded HRP (lower case) and data. */
static uint32_t bech32_polymod(const char *hrp, const uint8_t *data, size_t n) {
  uint32_t chk = 1;
  size_t hl = strlen(hrp);
  for (size_t i = 0; i < hl; i++)
    chk = bech32_polymod_step(chk, (uint8_t)((unsigned char)hrp[i] >> 5));
  chk = bech32_polymod_step(chk, 0);
  for (size_t i = 0; i < hl; i++)
    chk = bech32_polymod_step(chk, (uint8_t)(hrp[i] & 31));
  for (size_t i = 0; i < n; i++)
    chk = bech32_polymod_step(chk, data[i]);
  return chk;
}

/* Index of c in the Bech32 alphabet (lower case), or -1.  Constant time in
 * c: identities are secret, so no table lookup indexed by the character. */
static int bech32_value(unsigned char c) {
  int r = -1;
  for (int i = 0; i < 32; i++) {
    int eq = ((unsigned)(c ^ (unsigned char)BECH32[i]) - 1u) >> 8 & 1; /* 1 when equal */
    r ^= (r ^ i) & -eq;
  }
  return r;
}

/* Bech32 of a 32-byte key under hrp (lower case); upper case output when
 * `upper`.  out has room for strlen(hrp) + 1 + 52 + 6 + 1. */
static void bech32_encode_key(const char *hrp, const uint8_t key[32], int upper, char *out) {
  uint8_t d[52 + 6];
  size_t nd = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (int i = 0; i < 32; i++) {
    acc = acc << 8 | key[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      d[nd++] = (uint8_t)((acc >> bits) & 31);
    }
  }
  if (bits > 0)
    d[nd++] = (uint8_t)((acc << (5 - bits)) & 31);
  uint8_t zeros[6] = {0};
  uint32_t chk = bech32_polymod(hrp, d, nd);
  for (int i = 0; i < 6; i++)
    chk = bech32_polymod_step(chk, zeros[i]);
  chk ^= 1;
  for (int i = 0; i < 6; i++)
    d[nd++] = (uint8_t)((chk >> (5 * (5 - i))) & 31);
  size_t o = 0;
  for (size_t i = 0; hrp[i] != '\0'; i++)
    out[o++] = upper && hrp[i] >= 'a' && hrp[i] <= 'z' ? (char)(hrp[i] - 32) : hrp[i];
  out[o++] = '1';
  for (size_t i = 0; i < nd; i++) {
    char c = BECH32[d[i]];
    out[o++] = upper && c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
  }
  out[o] = '\0';
  mbedtls_platform_zeroize(d, sizeof d);
  acc = 0;
}

/*
 * Decodes a Bech32 string of n characters whose HRP must be `hrp` (given in
 * lower case; the string may be all upper or all lower case) into a 32-byte
 * key.  0 or CS_EAGEKEY.  No length limit beyond the key's (age allows
 * strings over BIP173's 90 characters).
 */
static int bech32_decode_key(const char *hrp, const char *s, size_t n, uint8_t key[32]) {
  size_t hl = strlen(hrp);
  uint8_t d[52 + 6];
  int rc = CS_EAGEKEY, lower = 0, upper = 0;
  if (n != hl + 1 + sizeof d)
    return CS_EAGEKEY;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 33 || c > 126)
      return CS_EAGEKEY;
    lower |= c >= 'a' && c <= 'z';
    upper |= c >= 'A' && c <= 'Z';
  }
  if (lower && upper)
    return CS_EAGEKEY;
  for (size_t i = 0; i < hl; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    if (c != (unsigned char)hrp[i])
      return CS_EAGEKEY;
  }
  if (s[hl] != '1')
    return CS_EAGEKEY;
  int bad = 0;
  for (size_t i = 0; i < sizeof d; i++) {
    unsigned char c = (unsigned char)s[hl + 1 + i];
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    int v = bech32_value(c);
    bad |= v < 0;
    d[i] = (uint8_t)(v & 31);
  }
  if (bad || bech32_polymod(hrp, d, sizeof d) != 1)
    goto out;
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < 52; i++) {
    acc = acc << 5 | d[i];
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      key[o++] = (uint8_t)(acc >> bits);
    }
  }
  /* 52 groups of 5 bits hold 260 bits: the 4 left over must be zero. */
  if (o == 32 && bits == 4 && (acc & 15) == 0)
    rc = 0;
  acc = 0;
out:
  mbedtls_platform_zeroize(d, sizeof d);
  if (rc != 0)
    mbedtls_platform_zeroize(key, 32);
  return rc;
}

/* ---------------------------------------------------------------- X25519 */

int cs_age_x25519(uint8_t out[32], const uint8_t k[32], const uint8_t u[32]) {
  mbedtls_ecp_group grp;
  mbedtls_ecp_point p, r;
  mbedtls_mpi d;
  uint8_t sk[32], pk[32];
  int rc = CS_ECRYPTO, mrc;
  mbedtls_ecp_group_init(&grp);
  mbedtls_ecp_point_init(&p);
  mbedtls_ecp_point_init(&r);
  mbedtls_mpi_init(&d);
  memcpy(sk, k, 32);
  sk[0] &= 248; /* RFC 7748 clamping: mbedTLS refuses unclamped scalars */
  sk[31] &= 127;
  sk[31] |= 64;
  memcpy(pk, u, 32);
  pk[31] &= 127; /* RFC 7748: the top bit of u is ignored */
  if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_CURVE25519) != 0 ||
      mbedtls_mpi_read_binary_le(&d, sk, 32) != 0)
    goto out;
  if (mbedtls_ecp_point_read_binary(&grp, &p, pk, 32) != 0) {
    rc = CS_EAGEKEY;
    goto out;
  }
  mrc = mbedtls_ecp_mul(&grp, &r, &d, &p, ecp_rng, NULL);
  if (mrc == MBEDTLS_ERR_ECP_INVALID_KEY) {
    rc = CS_EAGEKEY; /* a low-order point: the shared secret would be zero */
    goto out;
  }
  if (mrc != 0 || mbedtls_mpi_write_binary_le(&r.X, out, 32) != 0)
    goto out;
  rc = 0;
out:
  mbedtls_platform_zeroize(sk, sizeof sk);
  mbedtls_mpi_free(&d);
  mbedtls_ecp_point_free(&r);
  mbedtls_ecp_point_free(&p);
  mbedtls_ecp_group_free(&grp);
  return rc;
}

static int x25519_base(uint8_t out[32], const uint8_t k[32]) {
  static const uint8_t nine[32] = {9};
  return cs_age_x25519(out, k, nine);
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

/* ------------------------------------------------------ HKDF, AEAD, HMAC */

static int hkdf32(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                  const char *info, uint8_t out[32]) {
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  if (md == NULL || mbedtls_hkdf(md, salt, salt_len, ikm, ikm_len, (const unsigned char *)info,
                                 strlen(info), out, 32) != 0)
    return CS_ECRYPTO;
  return 0;
}

/* ChaCha20-Poly1305 of n bytes; the tag is written after the ciphertext. */
static int aead_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *pt, size_t n,
                     uint8_t *ct) {
  mbedtls_chachapoly_context c;
  mbedtls_chachapoly_init(&c);
  int rc = mbedtls_chachapoly_setkey(&c, key) == 0 &&
                   mbedtls_chachapoly_encrypt_and_tag(&c, n, nonce, NULL, 0, pt, ct, ct + n) == 0
               ? 0
               : CS_ECRYPTO;
  mbedtls_chachapoly_free(&c);
  return rc;
}

/* Opens n bytes of ciphertext + tag into pt (n - 16 bytes).  0, 1 when the
 * tag does not verify (pt wiped), CS_ECRYPTO. */
static int aead_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *ct, size_t n,
                     uint8_t *pt) {
  mbedtls_chachapoly_context c;
  mbedtls_chachapoly_init(&c);
  int rc = CS_ECRYPTO;
  if (mbedtls_chachapoly_setkey(&c, key) == 0) {
    int m = mbedtls_chachapoly_auth_decrypt(&c, n - TAG_LEN, nonce, NULL, 0, ct + n - TAG_LEN, ct,
                                            pt);
    rc = m == 0 ? 0 : m == MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED ? 1 : CS_ECRYPTO;
    if (m != 0)
      mbedtls_platform_zeroize(pt, n - TAG_LEN);
  }
  mbedtls_chachapoly_free(&c);
  return rc;
}

/* The header MAC: HMAC-SHA-256 under HKDF(file key, "", "header"). */
static int header_mac(const uint8_t file_key[FILE_KEY_LEN], const uint8_t *hdr, size_t n,
                      uint8_t mac[32]) {
  uint8_t k[32];
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  int rc = hkdf32(file_key, FILE_KEY_LEN, NULL, 0, "header", k);
  if (rc == 0 && (md == NULL || mbedtls_md_hmac(md, k, sizeof k, hdr, n, mac) != 0))
    rc = CS_ECRYPTO;
  mbedtls_platform_zeroize(k, sizeof k);
  return rc;
}

static void chunk_nonce(uint8_t nonce[12], uint64_t counter, int last) {
  memset(nonce, 0, 12);
  for (int i = 0; i < 8; i++)
    nonce[10 - i] = (uint8_t)(counter >> (8 * i));
  nonce[11] = last ? 1 : 0;
}

/* ------------------------------------------------------------------ keys */

int cs_age_recipient_parse(cs_age_recipient *r, const char *s, size_t n) {
  int rc = bech32_decode_key(HRP_RECIPIENT, s, n, r->pub);
  /* age writes recipients in lower case only. */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (s[i] >= 'A' && s[i] <= 'Z')
      rc = CS_EAGEKEY;
  return rc;
}

void cs_age_recipient_format(const cs_age_recipient *r, char out[CS_AGE_RECIPIENT_STRLEN + 1]) {
  bech32_encode_key(HRP_RECIPIENT, r->pub, 0, out);
}

int cs_age_identity_parse(cs_age_identity *id, const char *s, size_t n) {
  int rc = bech32_decode_key(HRP_IDENTITY, s, n, id->secret);
  /* age writes identities in upper case only. */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (s[i] >= 'a' && s[i] <= 'z')
      rc = CS_EAGEKEY;
  if (rc == 0)
    rc = x25519_base(id->pub, id->secret);
  if (rc != 0)
    cs_age_identity_wipe(id);
  return rc;
}

int cs_age_identity_generate(cs_age_identity *id) {
  int rc = random_bytes(id->secret, sizeof id->secret);
  if (rc == 0)
    rc = x25519_base(id->pub, id->secret);
  if (rc != 0)
    cs_age_identity_wipe(id);
  return rc == 0 ? 0 : CS_ECRYPTO;
}

void cs_age_identity_format(const cs_age_identity *id, char out[CS_AGE_IDENTITY_STRLEN + 1]) {
  bech32_encode_key(HRP_IDENTITY, id->secret, 1, out);
}

void cs_age_identity_to_recipient(const cs_age_identity *id, cs_age_recipient *r) {
  memcpy(r->pub, id->pub, sizeof r->pub);
}

void cs_age_identity_wipe(cs_age_identity *id) {
  mbedtls_platform_zeroize(id, sizeof *id);
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

/* Calls fn on each non-blank, non-comment line of text with the spaces
 * around it trimmed; stops at the first error, and names the line. */
typedef int (*line_fn)(void *ctx, size_t idx, const char *s, size_t n);

static int each_key_line(const char *text, size_t n, size_t cap, size_t *count, line_fn fn,
                         void *ctx) {
  size_t line = 0, got = 0, pos = 0;
  while (pos < n) {
    const char *nl = memchr(text + pos, '\n', n - pos);
    size_t end = nl ? (size_t)(nl - text) : n, a = pos, b = end;
    line++;
    pos = end + 1;
    while (a < b && is_space(text[a]))
      a++;
    while (b > a && is_space(text[b - 1]))
      b--;
    if (a == b || text[a] == '#')
      continue;
    if (got == cap)
      return cs_error_set(CS_ELIMIT, "more than %zu age keys", cap);
    int rc = fn(ctx, got, text + a, b - a);
    if (rc != 0)
      return cs_error_set(rc, "%s on line %zu", cs_strerror(rc), line);
    got++;
  }
  *count = got;
  return got == 0 ? cs_error_set(CS_EINVAL, "no age key found") : 0;
}

static int recipient_line(void *ctx, size_t idx, const char *s, size_t n) {
  return cs_age_recipient_parse((cs_age_recipient *)ctx + idx, s, n);
}

static int identity_line(void *ctx, size_t idx, const char *s, size_t n) {
  return cs_age_identity_parse((cs_age_identity *)ctx + idx, s, n);
}

int cs_age_recipients_parse_text(cs_age_recipient *out, size_t cap, size_t *count,
                                 const char *text, size_t n) {
  return each_key_line(text, n, cap, count, recipient_line, out);
}

int cs_age_identity_parse_text(cs_age_identity *out, size_t cap, size_t *count, const char *text,
                               size_t n) {
  size_t got = 0;
  int rc = each_key_line(text, n, cap, &got, identity_line, out);
  if (rc != 0)
    mbedtls_platform_zeroize(out, cap * sizeof *out);
  else
    *count = got;
  return rc;
}

/* ------------------------------------------------------------ encryption */

/* One X25519 stanza for recipient r: "-> X25519 <share>\n<body>\n" at out;
 * returns its length via *len.  The stanza is 10 + 43 + 1 + 43 + 1 bytes. */
#define STANZA_LEN (10 + B64_KEY_LEN + 1 + B64_KEY_LEN + 1)

static int write_stanza(const cs_age_recipient *r, const uint8_t file_key[FILE_KEY_LEN],
                        char *out) {
  uint8_t esk[32], share[32], secret[32], salt[64], wrap[32], body[FILE_KEY_LEN + TAG_LEN];
  static const uint8_t zero_nonce[12];
  int rc = random_bytes(esk, sizeof esk);
  if (rc == 0)
    rc = x25519_base(share, esk);
  if (rc == 0)
    rc = cs_age_x25519(secret, esk, r->pub);
  if (rc == 0 && all_zero(secret, sizeof secret))
    rc = CS_EAGEKEY;
  if (rc != 0)
    goto out;
  memcpy(salt, share, 32);
  memcpy(salt + 32, r->pub, 32);
  if ((rc = hkdf32(secret, sizeof secret, salt, sizeof salt, X25519_INFO, wrap)) != 0 ||
      (rc = aead_seal(wrap, zero_nonce, file_key, FILE_KEY_LEN, body)) != 0)
    goto out;
  memcpy(out, "-> X25519 ", 10);
  b64_encode(share, sizeof share, out + 10, 0);
  out[10 + B64_KEY_LEN] = '\n';
  b64_encode(body, sizeof body, out + 11 + B64_KEY_LEN, 0);
  out[STANZA_LEN - 1] = '\n';
out:
  mbedtls_platform_zeroize(esk, sizeof esk);
  mbedtls_platform_zeroize(secret, sizeof secret);
  mbedtls_platform_zeroize(wrap, sizeof wrap);
  return rc;
}

/* Seals n bytes of plaintext as the STREAM payload at out (nonce first). */
static int write_payload(const uint8_t file_key[FILE_KEY_LEN], const uint8_t *pt, size_t n,
                         uint8_t *out) {
  uint8_t key[32], nonce[12];
  int rc = random_bytes(out, NONCE_LEN);
  if (rc == 0)
    rc = hkdf32(file_key, FILE_KEY_LEN, out, NONCE_LEN, "payload", key);
  out += NONCE_LEN;
  for (uint64_t i = 0; rc == 0; i++) {
    size_t len = n < CHUNK_LEN ? n : CHUNK_LEN;
    int last = len == n;
    chunk_nonce(nonce, i, last);
    rc = aead_seal(key, nonce, pt, len, out);
    pt += len;
    n -= len;
    out += len + TAG_LEN;
    if (last)
      break;
  }
  mbedtls_platform_zeroize(key, sizeof key);
  return rc;
}

/* Wraps n bytes in the armor, into out (room for armor_len(n)). */
static size_t armor_len(size_t n) {
  size_t b = b64_len(n, 1);
  return sizeof ARMOR_BEGIN + b + (b + B64_LINE - 1) / B64_LINE + sizeof ARMOR_END;
}

static size_t write_armor(const uint8_t *in, size_t n, char *out) {
  size_t o = 0;
  memcpy(out, ARMOR_BEGIN, sizeof ARMOR_BEGIN - 1);
  o += sizeof ARMOR_BEGIN - 1;
  out[o++] = '\n';
  for (size_t i = 0; i < n; i += B64_LINE / 4 * 3) {
    size_t take = n - i < B64_LINE / 4 * 3 ? n - i : B64_LINE / 4 * 3;
    o += b64_encode(in + i, take, out + o, 1);
    out[o++] = '\n';
  }
  memcpy(out + o, ARMOR_END, sizeof ARMOR_END - 1);
  o += sizeof ARMOR_END - 1;
  out[o++] = '\n';
  return o;
}

int cs_age_encrypt(const cs_age_recipient *r, size_t nr, const uint8_t *pt, size_t n, int armor,
                   uint8_t **out, size_t *out_len) {
  uint8_t file_key[FILE_KEY_LEN], mac[32];
  if (nr == 0 || nr > CS_AGE_MAX_KEYS || (pt == NULL && n > 0) ||
      n > (SIZE_MAX / 2 - 4096) / ENC_CHUNK_LEN * CHUNK_LEN)
    return CS_EINVAL;
  size_t chunks = n == 0 ? 1 : (n + CHUNK_LEN - 1) / CHUNK_LEN;
  size_t hdr_len = sizeof VERSION_LINE + nr * STANZA_LEN + 4 + B64_KEY_LEN + 1;
  size_t bin_len = hdr_len + NONCE_LEN + n + chunks * TAG_LEN;
  uint8_t *bin = malloc(bin_len);
  uint8_t *res = NULL;
  if (bin == NULL)
    return CS_ENOMEM;
  int rc = random_bytes(file_key, sizeof file_key);
  char *h = (char *)bin;
  size_t o = 0;
  memcpy(h, VERSION_LINE, sizeof VERSION_LINE - 1);
  o = sizeof VERSION_LINE - 1;
  h[o++] = '\n';
  for (size_t i = 0; rc == 0 && i < nr; i++, o += STANZA_LEN)
    rc = write_stanza(&r[i], file_key, h + o);
  if (rc != 0)
    goto out;
  memcpy(h + o, "---", 3);
  o += 3;
  if ((rc = header_mac(file_key, bin, o, mac)) != 0)
    goto out;
  h[o++] = ' ';
  o += b64_encode(mac, sizeof mac, h + o, 0);
  h[o++] = '\n';
  if ((rc = write_payload(file_key, pt, n, bin + o)) != 0)
    goto out;
  if (!armor) {
    res = bin;
    bin = NULL;
    *out_len = bin_len;
  } else if ((res = malloc(armor_len(bin_len))) == NULL) {
    rc = CS_ENOMEM;
  } else {
    *out_len = write_armor(bin, bin_len, (char *)res);
  }
out:
  mbedtls_platform_zeroize(file_key, sizeof file_key);
  free(bin);
  if (rc == 0)
    *out = res;
  return rc;
}

/* ------------------------------------------------------------ decryption */

/* A cursor over the binary header. */
typedef struct {
  const uint8_t *p;
  size_t n, pos;
} reader;

/* The next LF-terminated line (without the LF); -1 when there is none. */
static int next_line(reader *rd, const char **line, size_t *len) {
  if (rd->pos >= rd->n)
    return -1;
  const uint8_t *nl = memchr(rd->p + rd->pos, '\n', rd->n - rd->pos);
  if (nl == NULL)
    return -1;
  *line = (const char *)rd->p + rd->pos;
  *len = (size_t)(nl - (rd->p + rd->pos));
  rd->pos += *len + 1;
  return 0;
}

typedef struct {
  const char *type;   /* first argument */
  size_t type_len;
  const char *arg1;   /* second argument, if any */
  size_t arg1_len;
  size_t nargs;
  uint8_t body[B64_LINE / 4 * 3]; /* the first body line, decoded */
  size_t body_len;                /* the whole body's decoded length */
} stanza;

/* Splits "-> a b c" into arguments: each 1+ characters of VCHAR, one space
 * apart.  0 or CS_EAGEHEADER. */
static int parse_args(const char *s, size_t n, stanza *st) {
  st->nargs = 0;
  size_t i = 3; /* after "-> " */
  while (1) {
    size_t a = i;
    while (i < n && s[i] != ' ') {
      if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
        return CS_EAGEHEADER;
      i++;
    }
    if (i == a)
      return CS_EAGEHEADER; /* empty argument (or none at all) */
    if (st->nargs == 0) {
      st->type = s + a;
      st->type_len = i - a;
    } else if (st->nargs == 1) {
      st->arg1 = s + a;
      st->arg1_len = i - a;
    }
    st->nargs++;
    if (i == n)
      return 0;
    i++; /* the one space */
  }
}

/* Reads the body lines of a stanza: full 64-column lines, then one shorter
 * (possibly empty) line.  0 or CS_EAGEHEADER. */
static int parse_body(reader *rd, stanza *st) {
  const char *l;
  size_t ll, got;
  st->body_len = 0;
  for (int first = 1;; first = 0) {
    uint8_t tmp[B64_LINE / 4 * 3];
    if (next_line(rd, &l, &ll) != 0 || ll > B64_LINE ||
        b64_decode(l, ll, first ? st->body : tmp, sizeof tmp, &got, 0) != 0)
      return CS_EAGEHEADER;
    if (st->body_len > SIZE_MAX - got)
      return CS_EAGEHEADER;
    st->body_len += got;
    if (ll < B64_LINE)
      return 0;
  }
}

static int is_x25519(const stanza *st) {
  return st->type_len == 6 && memcmp(st->type, "X25519", 6) == 0;
}

/* The next stanza: 1, 0 when the MAC line came instead (rd then stands at
 * its start), or CS_EAGEHEADER. */
static int next_stanza(reader *rd, stanza *st) {
  const char *l;
  size_t ll, start = rd->pos;
  if (next_line(rd, &l, &ll) != 0)
    return CS_EAGEHEADER;
  if (ll >= 3 && memcmp(l, "---", 3) == 0) {
    rd->pos = start;
    return 0;
  }
  if (ll < 3 || memcmp(l, "-> ", 3) != 0 || parse_args(l, ll, st) != 0 ||
      parse_body(rd, st) != 0)
    return CS_EAGEHEADER;
  if (is_x25519(st)) {
    uint8_t share[32];
    size_t got;
    /* A stanza of our type must be well formed, or the file is refused. */
    if (st->nargs != 2 || st->arg1_len != B64_KEY_LEN ||
        b64_decode(st->arg1, st->arg1_len, share, sizeof share, &got, 0) != 0 || got != 32 ||
        st->body_len != FILE_KEY_LEN + TAG_LEN)
      return CS_EAGEHEADER;
  }
  return 1;
}

typedef struct {
  size_t mac_off;     /* header bytes covered by the MAC: through "---" */
  size_t payload_off; /* the byte after the MAC line */
  uint8_t mac[32];
} header;

/* "age-encryption.org/<something printable>": a version we do not know,
 * which deserves its own message rather than "malformed". */
static int is_version_line(const char *l, size_t ll) {
  size_t p = sizeof VERSION_PREFIX - 1;
  if (ll <= p || memcmp(l, VERSION_PREFIX, p) != 0)
    return 0;
  for (; p < ll; p++)
    if ((unsigned char)l[p] < 33 || (unsigned char)l[p] > 126)
      return 0;
  return 1;
}

/* Validates the whole header of buf and locates the MAC and the payload.
 * 0, CS_EAGEVERSION or CS_EAGEHEADER. */
static int parse_header(const uint8_t *buf, size_t n, header *h) {
  reader rd = {buf, n, 0};
  const char *l;
  size_t ll, got;
  stanza st;
  int rc;
  if (next_line(&rd, &l, &ll) != 0)
    return CS_EAGEHEADER;
  if (ll != sizeof VERSION_LINE - 1 || memcmp(l, VERSION_LINE, ll) != 0)
    return is_version_line(l, ll) ? CS_EAGEVERSION : CS_EAGEHEADER;
  while ((rc = next_stanza(&rd, &st)) == 1)
    ;
  if (rc < 0)
    return rc;
  h->mac_off = rd.pos + 3;
  if (next_line(&rd, &l, &ll) != 0 || ll != 4 + B64_KEY_LEN || l[3] != ' ' ||
      b64_decode(l + 4, B64_KEY_LEN, h->mac, sizeof h->mac, &got, 0) != 0 || got != 32)
    return CS_EAGEHEADER;
  h->payload_off = rd.pos;
  return 0;
}

/* Tries identity id on one X25519 stanza: 0 with the file key, 1 when it
 * is not for id, CS_EAGEHEADER for a share that gives no shared secret. */
static int unwrap_x25519(const cs_age_identity *id, const stanza *st,
                         uint8_t file_key[FILE_KEY_LEN]) {
  uint8_t share[32], secret[32], salt[64], wrap[32];
  static const uint8_t zero_nonce[12];
  size_t got;
  int rc;
  if (b64_decode(st->arg1, st->arg1_len, share, sizeof share, &got, 0) != 0)
    return CS_EAGEHEADER; /* checked by next_stanza already */
  rc = cs_age_x25519(secret, id->secret, share);
  if (rc == CS_EAGEKEY || (rc == 0 && all_zero(secret, sizeof secret)))
    rc = CS_EAGEHEADER;
  if (rc != 0)
    goto out;
  memcpy(salt, share, 32);
  memcpy(salt + 32, id->pub, 32);
  if ((rc = hkdf32(secret, sizeof secret, salt, sizeof salt, X25519_INFO, wrap)) == 0)
    rc = aead_open(wrap, zero_nonce, st->body, st->body_len, file_key);
out:
  mbedtls_platform_zeroize(secret, sizeof secret);
  mbedtls_platform_zeroize(wrap, sizeof wrap);
  return rc;
}

/* The file key from the first identity (in order) that opens a stanza (in
 * order).  0, CS_EAGENOMATCH, CS_EAGEHEADER or CS_ECRYPTO. */
static int unwrap(const cs_age_identity *ids, size_t nid, const uint8_t *buf, size_t n,
                  uint8_t file_key[FILE_KEY_LEN]) {
  for (size_t i = 0; i < nid; i++) {
    reader rd = {buf, n, 0};
    const char *l;
    size_t ll;
    stanza st;
    int rc;
    (void)next_line(&rd, &l, &ll); /* the version line, checked */
    while ((rc = next_stanza(&rd, &st)) == 1) {
      if (!is_x25519(&st))
        continue;
      rc = unwrap_x25519(&ids[i], &st, file_key);
      if (rc <= 0)
        return rc;
    }
    if (rc < 0)
      return rc;
  }
  return CS_EAGENOMATCH;
}

/* Opens the STREAM payload (nonce and chunks) of n bytes into pt (room for
 * n bytes), setting *pt_len.  0, CS_EAGEHEADER (no nonce), CS_EAGEPAYLOAD. */
static int open_payload(const uint8_t file_key[FILE_KEY_LEN], const uint8_t *in, size_t n,
                        uint8_t *pt, size_t *pt_len) {
  uint8_t key[32], nonce[12];
  size_t out = 0;
  int rc;
  if (n < NONCE_LEN)
    return CS_EAGEHEADER;
  if ((rc = hkdf32(file_key, FILE_KEY_LEN, in, NONCE_LEN, "payload", key)) != 0)
    return rc;
  in += NONCE_LEN;
  n -= NONCE_LEN;
  if (n == 0)
    rc = CS_EAGEPAYLOAD; /* not even the final chunk */
  for (uint64_t i = 0; rc == 0 && n > 0; i++) {
    size_t len = n < ENC_CHUNK_LEN ? n : ENC_CHUNK_LEN;
    int last = len == n;
    /* A chunk has a tag; only the sole chunk of an empty file is empty. */
    if (len < TAG_LEN || (len == TAG_LEN && i > 0)) {
      rc = CS_EAGEPAYLOAD;
      break;
    }
    chunk_nonce(nonce, i, last);
    int o = aead_open(key, nonce, in, len, pt + out);
    if (o != 0) {
      rc = o < 0 ? o : CS_EAGEPAYLOAD;
      break;
    }
    out += len - TAG_LEN;
    in += len;
    n -= len;
  }
  mbedtls_platform_zeroize(key, sizeof key);
  if (rc != 0)
    mbedtls_platform_zeroize(pt, out);
  *pt_len = out;
  return rc;
}

static int is_ws(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next armor line, without its LF or CRLF; the last line may end at
 * the end of the buffer.  -1 at the end. */
static int armor_line(reader *rd, const char **line, size_t *len) {
  if (rd->pos >= rd->n)
    return -1;
  const uint8_t *s = rd->p + rd->pos;
  const uint8_t *nl = memchr(s, '\n', rd->n - rd->pos);
  size_t l = nl ? (size_t)(nl - s) : rd->n - rd->pos;
  rd->pos += l + (nl ? 1 : 0);
  if (nl && l > 0 && s[l - 1] == '\r')
    l--;
  *line = (const char *)s;
  *len = l;
  return 0;
}

/*
 * Removes the armor: whitespace may surround it; inside, lines of exactly
 * 64 columns of padded, canonical base64 but the last (1..64), no headers,
 * no blank lines, no spaces.  On success *out is a malloc'ed buffer of the
 * binary file.  0, CS_EAGEARMOR or CS_ENOMEM.
 */
static int dearmor(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len) {
  reader rd = {in, n, 0};
  const char *l;
  size_t ll, tl = 0;
  int rc = CS_EAGEARMOR, short_seen = 0, ended = 0;
  char *text = malloc(n + 1);
  uint8_t *bin = malloc(n / 4 * 3 + 3);
  if (text == NULL || bin == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  while (rd.pos < n && is_ws(in[rd.pos]))
    rd.pos++;
  if (armor_line(&rd, &l, &ll) != 0 || ll != sizeof ARMOR_BEGIN - 1 ||
      memcmp(l, ARMOR_BEGIN, ll) != 0)
    goto out;
  while (armor_line(&rd, &l, &ll) == 0) {
    if (ll == sizeof ARMOR_END - 1 && memcmp(l, ARMOR_END, ll) == 0) {
      ended = 1;
      break;
    }
    if (short_seen || ll == 0 || ll > B64_LINE)
      goto out;
    short_seen = ll < B64_LINE;
    memcpy(text + tl, l, ll);
    tl += ll;
  }
  if (!ended)
    goto out;
  for (; rd.pos < n; rd.pos++)
    if (!is_ws(in[rd.pos]))
      goto out;
  if (b64_decode(text, tl, bin, n / 4 * 3 + 3, out_len, 1) != 0)
    goto out;
  *out = bin;
  bin = NULL;
  rc = 0;
out:
  free(text);
  free(bin);
  return rc;
}

/* The real age takes input that starts (after whitespace) with the armor
 * prefix for armor. */
static int looks_armored(const uint8_t *in, size_t n) {
  size_t i = 0;
  while (i < n && is_ws(in[i]))
    i++;
  return n - i >= 5 && memcmp(in + i, "-----", 5) == 0;
}

int cs_age_decrypt(const cs_age_identity *ids, size_t nid, const uint8_t *in, size_t n,
                   uint8_t **pt, size_t *pt_len) {
  uint8_t file_key[FILE_KEY_LEN], mac[32];
  uint8_t *bin = NULL, *res = NULL;
  const uint8_t *buf = in;
  header h;
  int rc;
  if (in == NULL && n > 0)
    return CS_EINVAL;
  if (looks_armored(in, n)) {
    if ((rc = dearmor(in, n, &bin, &n)) != 0)
      return rc;
    buf = bin;
  }
  if ((rc = parse_header(buf, n, &h)) != 0 || (rc = unwrap(ids, nid, buf, n, file_key)) != 0)
    goto out;
  if ((rc = header_mac(file_key, buf, h.mac_off, mac)) != 0)
    goto wipe;
  if (mbedtls_ct_memcmp(mac, h.mac, sizeof mac) != 0) {
    rc = CS_EAGEMAC;
    goto wipe;
  }
  if ((res = malloc(n - h.payload_off + 1)) == NULL) {
    rc = CS_ENOMEM;
    goto wipe;
  }
  rc = open_payload(file_key, buf + h.payload_off, n - h.payload_off, res, pt_len);
wipe:
  mbedtls_platform_zeroize(file_key, sizeof file_key);
out:
  free(bin);
  if (rc == 0) {
    *pt = res;
  } else {
    free(res); /* already wiped by open_payload */
  }
  return rc;
}

void cs_age_free(uint8_t *pt, size_t n) {
  if (pt == NULL)
    return;
  mbedtls_platform_zeroize(pt, n);
  free(pt);
}
