/*
 * encode: conversions of the CLI.  Key shares are printed and read as hex
 * or base64 through common/encoding.h (constant time in the secret bytes
 * and digits); durations and times are formatted for humans and JSON alike.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "duration.h"
#include "encoding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mbedtls/platform_util.h>

void cli_free_secret(void *p, size_t n) {
  if (p == NULL)
    return;
  mbedtls_platform_zeroize(p, n);
  free(p);
}

char *cli_hex(const uint8_t *p, size_t n) {
  char *s = malloc(CS_HEX_LEN(n) + 1);
  if (s != NULL)
    cs_hex_encode(p, n, s);
  return s;
}

char *cli_b64(const uint8_t *p, size_t n) {
  char *s = malloc(CS_B64_LEN(n) + 1);
  if (s != NULL)
    cs_b64_encode(p, n, s);
  return s;
}

/*
 * Hex first, base64 if that fails.  Which one a string is depends on its
 * characters, but neither decoder branches on a digit's value (common/
 * encoding.h): the only thing the time can tell is the format, which the
 * server learns anyway from the share's length.
 */
int cli_decode_key(const char *s, uint8_t **out, size_t *outlen) {
  size_t n = strlen(s), len = 0;
  uint8_t *buf;
  *out = NULL;
  *outlen = 0;
  if (n == 0)
    return -1;
  buf = malloc(n); /* either decoding is shorter than the text */
  if (buf == NULL)
    return -1;
  if (cs_hex_decode(s, buf, n, &len) != 0 && cs_b64_decode(s, buf, n, &len) != 0) {
    cli_free_secret(buf, n);
    cs_error_clear();
    return -1;
  }
  if (len == 0) {
    cli_free_secret(buf, n);
    return -1;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

int cli_parse_duration(const char *s, uint64_t *seconds) {
  if (cs_duration_parse(s, seconds) != 0) { /* common/duration.c */
    cs_error_clear();
    return -1;
  }
  return 0;
}

void cli_fmt_duration(uint64_t s, char *buf, size_t cap) { cs_duration_format(s, buf, cap); }

void cli_fmt_time(int64_t t, int zero_empty, char *buf, size_t cap) {
  struct tm tm;
  time_t tt = (time_t)t;
  if ((t == 0 && zero_empty) || gmtime_r(&tt, &tm) == NULL ||
      strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    buf[0] = '\0';
}
