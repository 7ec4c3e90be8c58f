/*
 * encoding: constant-time hex and base64 for key material (encoding.h).
 * The one copy for the server, the client library and the CLI.
 */
#include "encoding.h"
#include "cs_error.h"

#include <assert.h>
#include <string.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

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

