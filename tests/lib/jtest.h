/*
 * jtest: reading back what common/jbuf.h writes, for tests and fuzz
 * targets.  jansson does all the unescaping; these helpers only deal with
 * the one thing it refuses, the lone surrogates \uDC80..\uDCFF that the
 * writer's CS_JBUF_SURROGATEESCAPE mode uses for bytes outside valid UTF-8.
 *
 * An escape is real when the backslash that starts it is not itself escaped
 * (an even number of backslashes before it); the writer doubles every
 * literal backslash, so "\\udcff" in the text is the six input bytes.
 */
#ifndef CS_JTEST_H
#define CS_JTEST_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* 1 when text[k..] is a real \uDC80..\uDCFF escape (see above). */
static inline int jtest_is_se(const char *text, size_t len, size_t k) {
  static const char hexd[] = "0123456789abcdef";
  if (len - k < 6 || memcmp(text + k, "\\udc", 4) != 0 || strchr("89abcdef", text[k + 4]) == NULL ||
      text[k + 4] == '\0' || text[k + 5] == '\0' || strchr(hexd, text[k + 5]) == NULL)
    return 0;
  size_t bs = 0;
  while (bs < k && text[k - 1 - bs] == '\\')
    bs++;
  return bs % 2 == 0;
}

static inline int jtest_hex(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

/*
 * Parses a whole document with jansson (JSON_ALLOW_NUL, duplicates refused)
 * after turning each \uDCXX escape into \ufffd (same length, so jansson's
 * offsets still fit the original).  NULL when jansson refuses it.
 */
static inline json_t *jtest_load(const char *text, size_t len) {
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, text, len);
  copy[len] = '\0';
  for (size_t k = 0; k < len; k++)
    if (jtest_is_se(copy, len, k))
      memcpy(copy + k, "\\ufffd", 6);
  json_error_t e;
  json_t *j = json_loadb(copy, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  free(copy);
  return j;
}

/*
 * Decodes one string literal lit[0..n) (with its quotes) exactly, stray
 * bytes included: the pieces between \uDCXX escapes are decoded by jansson,
 * each escape becomes its byte.  Returns a malloc'd buffer (n bytes suffice:
 * decoding never grows) and its length in *out_len, or NULL when jansson
 * refuses a piece.
 */
static inline unsigned char *jtest_decode_string(const char *lit, size_t n, size_t *out_len) {
  if (n < 2 || lit[0] != '"' || lit[n - 1] != '"')
    return NULL;
  unsigned char *out = malloc(n);
  char *piece = malloc(n + 2);
  size_t o = 0, start = 1, end = n - 1;
  if (out == NULL || piece == NULL)
    goto fail;
  for (size_t k = start; k <= end; k++) {
    int se = k < end && jtest_is_se(lit, end, k);
    if (!se && k < end)
      continue;
    /* decode lit[start..k) with jansson */
    size_t m = k - start;
    piece[0] = '"';
    memcpy(piece + 1, lit + start, m);
    piece[m + 1] = '"';
    json_error_t e;
    json_t *j = json_loadb(piece, m + 2, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (j == NULL || !json_is_string(j)) {
      json_decref(j);
      goto fail;
    }
    memcpy(out + o, json_string_value(j), json_string_length(j));
    o += json_string_length(j);
    json_decref(j);
    if (se) {
      out[o++] = (unsigned char)(jtest_hex(lit[k + 4]) << 4 | jtest_hex(lit[k + 5]));
      k += 5;
      start = k + 1;
    }
  }
  free(piece);
  *out_len = o;
  return out;
fail:
  free(piece);
  free(out);
  return NULL;
}

#endif
