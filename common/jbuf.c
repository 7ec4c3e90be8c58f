/*
 * jbuf: see jbuf.h.
 *
 * One value is built left to right; per open container the writer keeps
 * whether it is an object and whether anything was written into it, which
 * is all the state needed to place commas and to assert on misuse.
 */
#include "jbuf.h"
#include "wire.h"
#include "cs_error.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>


static void wipe(void *p, size_t n) {
  if (p != NULL && n != 0)
    mbedtls_platform_zeroize(p, n);
}

void cs_jbuf_init(cs_jbuf *b, cs_jbuf_mode mode) {
  assert(mode == CS_JBUF_SURROGATEESCAPE || mode == CS_JBUF_REPLACE);
  memset(b, 0, sizeof *b);
  b->mode = mode;
}

void cs_jbuf_reset(cs_jbuf *b) {
  wipe(b->buf, b->len);
  char *buf = b->buf;
  size_t cap = b->cap;
  cs_jbuf_init(b, b->mode);
  b->buf = buf;
  b->cap = cap;
  if (buf != NULL)
    buf[0] = '\0';
}

void cs_jbuf_free(cs_jbuf *b) {
  wipe(b->buf, b->cap);
  free(b->buf);
  cs_jbuf_init(b, b->mode);
}

/* Makes room for `n` more bytes plus a NUL.  The old buffer is wiped
 * rather than realloc'ed, because a record may hold a detail that should
 * not linger in freed heap. */
static int reserve(cs_jbuf *b, size_t n) {
  if (b->err < 0)
    return b->err;
  if (n < b->cap - b->len)
    return 0;
  if (n > SIZE_MAX / 2 - b->len)
    return b->err = CS_ENOMEM;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len <= n)
    cap *= 2;
  char *p = malloc(cap);
  if (p == NULL)
    return b->err = CS_ENOMEM;
  if (b->buf != NULL) {
    memcpy(p, b->buf, b->len);
    wipe(b->buf, b->cap);
    free(b->buf);
  }
  b->buf = p;
  b->cap = cap;
  return 0;
}

static void put(cs_jbuf *b, const void *s, size_t n) {
  if (reserve(b, n) < 0)
    return;
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = '\0';
}

void cs_jbuf_raw(cs_jbuf *b, const char *s, size_t n) {
  put(b, s, n);
}

void cs_jbuf_members(cs_jbuf *b, const char *s, size_t n) {
  assert(b->depth > 0 && b->is_obj[b->depth - 1] && !b->after_key);
  if (b->over > 0 || b->depth == 0)
    return;
  if (!b->first[b->depth - 1])
    put(b, ",", 1);
  b->first[b->depth - 1] = 0;
  put(b, s, n);
}

/* Writes the separator a value needs at this point and checks that a value
 * is allowed here (not a bare value inside an object). */
static void before_value(cs_jbuf *b) {
  if (b->after_key) {
    b->after_key = 0;
    return;
  }
  if (b->depth == 0) {
    assert(b->len == 0 && "cs_jbuf holds one value");
    return;
  }
  assert(!b->is_obj[b->depth - 1] && "a value in an object needs cs_jbuf_key first");
  if (!b->first[b->depth - 1])
    put(b, ",", 1);
  b->first[b->depth - 1] = 0;
}

static void begin(cs_jbuf *b, int is_obj) {
  before_value(b);
  assert(b->depth < CS_JBUF_MAX_DEPTH && "cs_jbuf nested too deeply");
  if (b->depth == CS_JBUF_MAX_DEPTH) { /* without asserts: fail, never overrun */
    b->err = cs_error_set(CS_EINVAL, "JSON output nested deeper than %d", CS_JBUF_MAX_DEPTH);
    b->over++;
    return;
  }
  b->first[b->depth] = 1;
  b->is_obj[b->depth] = (unsigned char)is_obj;
  b->depth++;
  put(b, is_obj ? "{" : "[", 1);
}

static void end(cs_jbuf *b, int is_obj) {
  if (b->over > 0) {
    b->over--;
    return;
  }
  assert(b->depth > 0 && b->is_obj[b->depth - 1] == is_obj && !b->after_key);
  b->depth--;
  put(b, is_obj ? "}" : "]", 1);
}

void cs_jbuf_begin_object(cs_jbuf *b) { begin(b, 1); }
void cs_jbuf_end_object(cs_jbuf *b) { end(b, 1); }
void cs_jbuf_begin_array(cs_jbuf *b) { begin(b, 0); }
void cs_jbuf_end_array(cs_jbuf *b) { end(b, 0); }

/* The escape for byte c that cannot be copied as it is: a quote, a
 * backslash, a control character, DEL, or (when `stray`) a byte outside any
 * valid UTF-8 sequence.  Returns its length. */
static size_t escape(const cs_jbuf *b, unsigned char c, int stray, char esc[6]) {
  static const char hexd[] = "0123456789abcdef";
  static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
  const char *hit = stray || c == '\0' ? NULL : strchr(from, c);
  esc[0] = '\\';
  if (hit != NULL) {
    esc[1] = to[hit - from];
    return 2;
  }
  if (stray && b->mode == CS_JBUF_REPLACE) {
    memcpy(esc, "\\ufffd", 6);
    return 6;
  }
  memcpy(esc, stray ? "\\udc" : "\\u00", 4);
  esc[4] = hexd[c >> 4];
  esc[5] = hexd[c & 15];
  return 6;
}

/* 1 when every byte of s[0..n) is printable ASCII other than '"' and '\\',
 * so that it is its own JSON string form. */
static int plain_ascii(const unsigned char *s, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (s[k] < 0x20 || s[k] >= 0x7f || s[k] == '"' || s[k] == '\\')
      return 0;
  return 1;
}

/* pre, then s[0..n) in quotes, then post (each at most one byte, 0: none),
 * with one reservation: for a string with nothing to escape (names, paths,
 * addresses, hex), the common case. */
static void put_plain(cs_jbuf *b, char pre, const unsigned char *s, size_t n, char post) {
  if (n > SIZE_MAX - 4 || reserve(b, n + 4) < 0)
    return;
  char *p = b->buf + b->len;
  if (pre)
    *p++ = pre;
  *p++ = '"';
  memcpy(p, s, n);
  p += n;
  *p++ = '"';
  if (post)
    *p++ = post;
  *p = '\0';
  b->len = (size_t)(p - b->buf);
}

/* The quoted, escaped form of n arbitrary bytes (see jbuf.h). */
static void put_quoted(cs_jbuf *b, const unsigned char *s, size_t n) {
  if (plain_ascii(s, n)) {
    put_plain(b, 0, s, n, 0);
    return;
  }
  put(b, "\"", 1);
  size_t run = 0; /* start of the pending run of bytes copied verbatim */
  for (size_t k = 0; k < n;) {
    unsigned char c = s[k];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      k++; /* printable ASCII, the common case: copied without a call */
      continue;
    }
    size_t seq = cs_wire_utf8_seq(s + k, n - k); /* RFC 3629, as the wire checks it */
    if (seq != 0 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
      k += seq;
      continue;
    }
    char esc[6];
    put(b, s + run, k - run);
    put(b, esc, escape(b, c, seq == 0, esc));
    run = ++k;
  }
  put(b, s + run, n - run);
  put(b, "\"", 1);
}

void cs_jbuf_key(cs_jbuf *b, const char *key) {
  assert(b->depth > 0 && b->is_obj[b->depth - 1] && !b->after_key);
  char comma = b->first[b->depth - 1] ? 0 : ',';
  b->first[b->depth - 1] = 0;
  size_t n = strlen(key);
  if (plain_ascii((const unsigned char *)key, n)) {
    put_plain(b, comma, (const unsigned char *)key, n, ':');
  } else {
    if (comma)
      put(b, ",", 1);
    put_quoted(b, (const unsigned char *)key, n);
    put(b, ":", 1);
  }
  b->after_key = 1;
}

void cs_jbuf_strn(cs_jbuf *b, const void *s, size_t n) {
  before_value(b);
  put_quoted(b, s != NULL ? s : "", s != NULL ? n : 0);
}

void cs_jbuf_str(cs_jbuf *b, const char *s) {
  cs_jbuf_strn(b, s, s != NULL ? strlen(s) : 0);
}

/* The decimal digits of v, written backwards from end; where they start.
 * (By hand rather than snprintf: numbers are in every HTTP answer.) */
static char *dec_digits(char *end, uint64_t v) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return end;
}

void cs_jbuf_int(cs_jbuf *b, int64_t v) {
  char num[24], *end = num + sizeof num;
  before_value(b);
  /* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
  char *p = dec_digits(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
  if (v < 0)
    *--p = '-';
  put(b, p, (size_t)(end - p));
}

void cs_jbuf_uint(cs_jbuf *b, uint64_t v) {
  char num[24], *end = num + sizeof num;
  before_value(b);
  char *p = dec_digits(end, v);
  put(b, p, (size_t)(end - p));
}

void cs_jbuf_bool(cs_jbuf *b, int v) {
  before_value(b);
  put(b, v ? "true" : "false", v ? 4 : 5);
}

void cs_jbuf_null(cs_jbuf *b) {
  before_value(b);
  put(b, "null", 4);
}

void cs_jbuf_key_str(cs_jbuf *b, const char *key, const char *s) {
  cs_jbuf_key(b, key);
  cs_jbuf_str(b, s);
}

void cs_jbuf_key_strn(cs_jbuf *b, const char *key, const void *s, size_t n) {
  cs_jbuf_key(b, key);
  cs_jbuf_strn(b, s, n);
}

void cs_jbuf_key_int(cs_jbuf *b, const char *key, int64_t v) {
  cs_jbuf_key(b, key);
  cs_jbuf_int(b, v);
}

void cs_jbuf_key_uint(cs_jbuf *b, const char *key, uint64_t v) {
  cs_jbuf_key(b, key);
  cs_jbuf_uint(b, v);
}

void cs_jbuf_key_bool(cs_jbuf *b, const char *key, int v) {
  cs_jbuf_key(b, key);
  cs_jbuf_bool(b, v);
}

int cs_jbuf_result(const cs_jbuf *b, const char **text, size_t *len) {
  assert(b->depth == 0 && !b->after_key);
  if (b->err < 0)
    return b->err;
  if (b->buf == NULL)
    return cs_error_set(CS_EINVAL, "empty JSON buffer");
  *text = b->buf;
  *len = b->len;
  return 0;
}
