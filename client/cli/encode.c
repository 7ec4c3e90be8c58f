/*
 * encode: conversions of the CLI.  Key shares are printed and read as hex
 * or base64 without branching on the secret bytes (the hex code is
 * arithmetic, base64 is mbedTLS's constant-time codec); durations and
 * times are formatted for humans and JSON alike.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

void cli_free_secret(void *p, size_t n) {
  if (p == NULL)
    return;
  mbedtls_platform_zeroize(p, n);
  free(p);
}

char *cli_hex(const uint8_t *p, size_t n) {
  char *s = malloc(2 * n + 1);
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    int hi = p[i] >> 4, lo = p[i] & 0xf;
    s[2 * i] = (char)(hi + '0' + (((9 - hi) >> 8) & ('a' - '0' - 10)));
    s[2 * i + 1] = (char)(lo + '0' + (((9 - lo) >> 8) & ('a' - '0' - 10)));
  }
  s[2 * n] = '\0';
  return s;
}

char *cli_b64(const uint8_t *p, size_t n) {
  size_t cap = 4 * ((n + 2) / 3) + 1, olen = 0;
  char *s = malloc(cap);
  if (s == NULL)
    return NULL;
  if (mbedtls_base64_encode((unsigned char *)s, cap, &olen, p, n) != 0) {
    free(s);
    return NULL;
  }
  s[olen] = '\0';
  return s;
}

/* Value of a hex digit, or -1; no branch on the digit (libsodium style). */
static int hex_val(unsigned char c) {
  unsigned num = c ^ 48u;
  unsigned num0 = ((num - 10u) >> 8) & 0xffu;
  unsigned alpha = (c & ~32u) - 55u;
  unsigned alpha0 = (((alpha - 10u) ^ (alpha - 16u)) >> 8) & 0xffu;
  if ((num0 | alpha0) == 0)
    return -1;
  return (int)((num0 & num) | (alpha0 & alpha));
}

static int all_hex(const char *s, size_t n) {
  int bad = 0;
  for (size_t i = 0; i < n; i++)
    bad |= hex_val((unsigned char)s[i]) < 0;
  return !bad;
}

int cli_decode_key(const char *s, uint8_t **out, size_t *outlen) {
  size_t n = strlen(s);
  uint8_t *buf;
  *out = NULL;
  *outlen = 0;
  if (n == 0)
    return -1;
  if (n % 2 == 0 && all_hex(s, n)) {
    buf = malloc(n / 2);
    if (buf == NULL)
      return -1;
    for (size_t i = 0; i < n / 2; i++)
      buf[i] = (uint8_t)(hex_val((unsigned char)s[2 * i]) << 4 | hex_val((unsigned char)s[2 * i + 1]));
    *out = buf;
    *outlen = n / 2;
    return 0;
  }
  size_t olen = 0;
  buf = malloc(n);   /* base64 decodes to fewer bytes than characters */
  if (buf == NULL)
    return -1;
  if (mbedtls_base64_decode(buf, n, &olen, (const unsigned char *)s, n) != 0 || olen == 0) {
    cli_free_secret(buf, n);
    return -1;
  }
  *out = buf;
  *outlen = olen;
  return 0;
}

int cli_parse_duration(const char *s, uint64_t *seconds) {
  uint64_t total = 0;
  const char *p = s;
  if (s == NULL || *s == '\0')
    return -1;
  int bare = strspn(s, "0123456789") == strlen(s);   /* "90": seconds */
  while (*p) {
    if (*p < '0' || *p > '9')
      return -1;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
      if (v > (UINT64_MAX - 9) / 10)
        return -1;
      v = v * 10 + (uint64_t)(*p++ - '0');
    }
    uint64_t mul;
    switch (*p) {
    case '\0': if (!bare) return -1; mul = 1; break;
    case 's': mul = 1; p++; break;
    case 'm': mul = 60; p++; break;
    case 'h': mul = 3600; p++; break;
    case 'd': mul = 86400; p++; break;
    case 'w': mul = 7 * 86400; p++; break;
    default: return -1;
    }
    if (v > UINT64_MAX / mul || total > UINT64_MAX - v * mul)
      return -1;
    total += v * mul;
  }
  *seconds = total;
  return 0;
}

void cli_fmt_duration(uint64_t s, char *buf, size_t cap) {
  static const struct { uint64_t n; char u; } units[] = {
    { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
  };
  size_t off = 0;
  if (s == 0) {
    snprintf(buf, cap, "0s");
    return;
  }
  buf[0] = '\0';
  for (size_t i = 0; i < 4; i++) {
    uint64_t q = s / units[i].n;
    s %= units[i].n;
    if (q == 0)
      continue;
    int n = snprintf(buf + off, cap - off, "%llu%c", (unsigned long long)q, units[i].u);
    if (n < 0 || (size_t)n >= cap - off)
      return;
    off += (size_t)n;
  }
}

void cli_fmt_time(int64_t t, int zero_empty, char *buf, size_t cap) {
  struct tm tm;
  time_t tt = (time_t)t;
  if ((t == 0 && zero_empty) || gmtime_r(&tt, &tm) == NULL ||
      strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    buf[0] = '\0';
}
