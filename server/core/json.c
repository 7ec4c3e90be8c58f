/*
 * json: see json.h.
 *
 * The reader is a recursive-descent parser over a byte span that is never
 * assumed to be NUL-terminated.  Recursion is bounded by CS_JSON_MAX_DEPTH
 * and the text by CS_JSON_MAX_TEXT, so hostile input costs bounded stack
 * and at most a small multiple of its size in heap.  Every node is owned by
 * its parent; a failed parse frees whatever it built.
 */
#include "json.h"
#include "cs_error.h"
#include "secmem.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct member {
  char *key;
  size_t key_len;
  size_t off;      /* byte offset of the key, for the duplicate-key error */
  cs_json *val;
} member;

struct cs_json {
  cs_json_kind kind;
  int boolean;
  int integral;    /* written as an integer that fits int64 */
  int64_t i;
  double d;
  char *s;         /* strings: NUL-terminated, s_len bytes */
  size_t s_len;
  cs_json **items; /* arrays */
  member *members; /* objects */
  size_t n;
};

/* ------------------------------------------------------------------ UTF-8 */

/* Length (1..4) of the valid UTF-8 sequence at p, or 0 when the bytes at p
 * do not start one (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    else if (c == 0xed)
      hi = 0x9f; /* U+D800..U+DFFF */
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    else if (c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (avail < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t k = 2; k < n; k++)
    if ((p[k] & 0xc0) != 0x80)
      return 0;
  return n;
}

static size_t utf8_put(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* ----------------------------------------------------------------- reader */

typedef struct parser {
  const unsigned char *p;
  size_t len, pos;
  unsigned flags;
  unsigned depth;
} parser;

static int fail_at(size_t at, const char *why) {
  return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: %s", at, why);
}

/* "unexpected 'x'" or "unexpected byte 0x80" or "unexpected end of text". */
static int fail_unexpected(const parser *ps) {
  if (ps->pos >= ps->len)
    return fail_at(ps->pos, "unexpected end of text");
  unsigned char c = ps->p[ps->pos];
  if (c > 0x20 && c < 0x7f)
    return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: unexpected '%c'", ps->pos, c);
  return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: unexpected byte 0x%02x", ps->pos, c);
}

static void skip_ws(parser *ps) {
  while (ps->pos < ps->len) {
    unsigned char c = ps->p[ps->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return;
    ps->pos++;
  }
}

static int peek(const parser *ps) {
  return ps->pos < ps->len ? ps->p[ps->pos] : -1;
}

static cs_json *node(cs_json_kind kind) {
  cs_json *v = calloc(1, sizeof *v);
  if (v != NULL)
    v->kind = kind;
  return v;
}

static int parse_value(parser *ps, cs_json **out);

static int parse_literal(parser *ps, cs_json **out) {
  static const struct { const char *word; cs_json_kind kind; int b; } lits[] = {
      {"true", CS_JSON_BOOL, 1}, {"false", CS_JSON_BOOL, 0}, {"null", CS_JSON_NULL, 0}};
  for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
    size_t n = strlen(lits[k].word);
    if (ps->len - ps->pos >= n && memcmp(ps->p + ps->pos, lits[k].word, n) == 0) {
      cs_json *v = node(lits[k].kind);
      if (v == NULL)
        return CS_ENOMEM;
      v->boolean = lits[k].b;
      ps->pos += n;
      *out = v;
      return 0;
    }
  }
  return fail_unexpected(ps);
}

/* Advances over digits; returns how many. */
static size_t digits(parser *ps) {
  size_t start = ps->pos;
  while (ps->pos < ps->len && ps->p[ps->pos] >= '0' && ps->p[ps->pos] <= '9')
    ps->pos++;
  return ps->pos - start;
}

/* Checks the RFC 8259 number grammar; *integral when there is neither a
 * fraction nor an exponent. */
static int scan_number(parser *ps, int *integral) {
  *integral = 1;
  if (peek(ps) == '-')
    ps->pos++;
  if (peek(ps) == '0') {
    ps->pos++;
    if (peek(ps) >= '0' && peek(ps) <= '9')
      return fail_at(ps->pos, "leading zero in a number");
  } else if (digits(ps) == 0) {
    return fail_at(ps->pos, "expected a digit");
  }
  if (peek(ps) == '.') {
    ps->pos++;
    *integral = 0;
    if (digits(ps) == 0)
      return fail_at(ps->pos, "expected a digit after '.'");
  }
  if (peek(ps) == 'e' || peek(ps) == 'E') {
    ps->pos++;
    *integral = 0;
    if (peek(ps) == '+' || peek(ps) == '-')
      ps->pos++;
    if (digits(ps) == 0)
      return fail_at(ps->pos, "expected a digit in the exponent");
  }
  return 0;
}

static int parse_number(parser *ps, cs_json **out) {
  size_t start = ps->pos;
  int integral, rc = scan_number(ps, &integral);
  if (rc < 0)
    return rc;
  /* strtod/strtoll need a NUL-terminated copy; the grammar above already
   * guarantees they consume all of it. */
  size_t n = ps->pos - start;
  char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
  if (buf == NULL)
    return CS_ENOMEM;
  memcpy(buf, ps->p + start, n);
  buf[n] = '\0';
  cs_json *v = node(CS_JSON_NUMBER);
  if (v == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  v->d = strtod(buf, NULL);
  if (isinf(v->d)) {
    free(v);
    rc = fail_at(start, "number out of range");
    goto out;
  }
  if (integral) {
    errno = 0;
    long long ll = strtoll(buf, NULL, 10);
    v->integral = errno == 0;
    v->i = ll;
  }
  *out = v;
out:
  if (buf != small)
    free(buf);
  return rc;
}

static int hex4(const unsigned char *p, uint32_t *out) {
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned char c = p[k];
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/* Decodes a \uXXXX escape (and its low half when it is a high surrogate)
 * at ps->pos, which points at the 'u'.  Appends the result to out. */
static int unescape_u(parser *ps, char *out, size_t *o) {
  size_t at = ps->pos - 1; /* the backslash */
  uint32_t cp, lo;
  if (ps->len - ps->pos < 5 || hex4(ps->p + ps->pos + 1, &cp) < 0)
    return fail_at(at, "invalid \\u escape");
  ps->pos += 5;
  if (cp >= 0xdc00 && cp <= 0xdfff) {
    if ((ps->flags & CS_JSON_SURROGATEESCAPE) && cp >= 0xdc80 && cp <= 0xdcff) {
      out[(*o)++] = (char)(cp & 0xff);
      return 0;
    }
    return fail_at(at, "unpaired low surrogate");
  }
  if (cp >= 0xd800 && cp <= 0xdbff) {
    if (ps->len - ps->pos < 6 || ps->p[ps->pos] != '\\' || ps->p[ps->pos + 1] != 'u' ||
        hex4(ps->p + ps->pos + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
      return fail_at(at, "unpaired high surrogate");
    ps->pos += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  *o += utf8_put(cp, out + *o);
  return 0;
}

/* One backslash escape at ps->pos (just after the backslash). */
static int unescape(parser *ps, char *out, size_t *o) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  unsigned char c = ps->p[ps->pos];
  if (c == 'u')
    return unescape_u(ps, out, o);
  const char *hit = c != '\0' ? strchr(from, c) : NULL;
  if (hit == NULL)
    return fail_at(ps->pos - 1, "invalid escape");
  out[(*o)++] = to[hit - from];
  ps->pos++;
  return 0;
}

/* Finds the closing quote of the string starting after ps->pos, so the
 * output can be sized once: unescaping never makes a string longer. */
static int string_span(const parser *ps, size_t *end) {
  for (size_t k = ps->pos; k < ps->len; k++) {
    if (ps->p[k] == '"') {
      *end = k;
      return 0;
    }
    if (ps->p[k] == '\\')
      k++;
  }
  return fail_at(ps->pos - 1, "unterminated string");
}

/* Parses a string at ps->pos (the opening quote) into a malloc'd,
 * NUL-terminated buffer. */
static int parse_string(parser *ps, char **s, size_t *n) {
  size_t end = 0, o = 0;
  ps->pos++;
  int rc = string_span(ps, &end);
  if (rc < 0)
    return rc;
  char *out = malloc(end - ps->pos + 1);
  if (out == NULL)
    return CS_ENOMEM;
  while (ps->pos < end) {
    unsigned char c = ps->p[ps->pos];
    size_t k;
    if (c == '\\') {
      ps->pos++;
      rc = unescape(ps, out, &o);
    } else if (c < 0x20) {
      rc = fail_at(ps->pos, "control character in string");
    } else if ((k = utf8_seq(ps->p + ps->pos, end - ps->pos)) == 0) {
      rc = fail_at(ps->pos, "invalid UTF-8");
    } else {
      memcpy(out + o, ps->p + ps->pos, k);
      o += k;
      ps->pos += k;
    }
    if (rc < 0) {
      free(out);
      return rc;
    }
  }
  ps->pos++; /* closing quote */
  out[o] = '\0';
  *s = out;
  *n = o;
  return 0;
}

static int parse_string_value(parser *ps, cs_json **out) {
  cs_json *v = node(CS_JSON_STRING);
  if (v == NULL)
    return CS_ENOMEM;
  int rc = parse_string(ps, &v->s, &v->s_len);
  if (rc < 0) {
    free(v);
    return rc;
  }
  *out = v;
  return 0;
}

/* Returns `arr` (elements of `size` bytes, n used of *cap) with room for
 * one more: the same pointer, a larger copy, or NULL when out of memory
 * (arr is then still valid). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size) {
  if (n < *cap)
    return arr;
  size_t c = *cap ? *cap * 2 : 4;
  void *p = realloc(arr, c * size);
  if (p != NULL)
    *cap = c;
  return p;
}

static int parse_array(parser *ps, cs_json *v) {
  size_t cap = 0;
  ps->pos++;
  skip_ws(ps);
  if (peek(ps) == ']') {
    ps->pos++;
    return 0;
  }
  for (;;) {
    cs_json *item, **items = grow(v->items, &cap, v->n, sizeof *v->items);
    if (items == NULL)
      return CS_ENOMEM;
    v->items = items;
    int rc = parse_value(ps, &item);
    if (rc < 0)
      return rc;
    v->items[v->n++] = item;
    skip_ws(ps);
    if (peek(ps) == ']') {
      ps->pos++;
      return 0;
    }
    if (peek(ps) != ',')
      return ps->pos < ps->len ? fail_at(ps->pos, "expected ',' or ']'") : fail_unexpected(ps);
    ps->pos++;
  }
}

static int cmp_member(const void *a, const void *b) {
  const member *x = *(const member *const *)a, *y = *(const member *const *)b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c != 0)
    return c;
  if (x->key_len != y->key_len)
    return x->key_len < y->key_len ? -1 : 1;
  return x->off < y->off ? -1 : x->off > y->off;
}

static int same_key(const member *x, const member *y) {
  return x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0;
}

/*
 * Rejects an object holding a key twice, naming the first repetition in
 * text order.  Small objects are checked pairwise; large ones through a
 * sorted index, so a hostile object with 100k keys stays O(n log n).
 */
static int check_duplicates(const cs_json *v) {
  size_t dup = SIZE_MAX;
  if (v->n <= 16) {
    for (size_t a = 1; a < v->n && dup == SIZE_MAX; a++)
      for (size_t b = 0; b < a; b++)
        if (same_key(&v->members[a], &v->members[b])) {
          dup = v->members[a].off;
          break;
        }
  } else {
    const member **idx = malloc(v->n * sizeof *idx);
    if (idx == NULL)
      return CS_ENOMEM;
    for (size_t k = 0; k < v->n; k++)
      idx[k] = &v->members[k];
    qsort(idx, v->n, sizeof *idx, cmp_member);
    for (size_t k = 1; k < v->n; k++)
      if (same_key(idx[k - 1], idx[k]) && idx[k]->off < dup)
        dup = idx[k]->off;
    free(idx);
  }
  return dup == SIZE_MAX ? 0 : fail_at(dup, "duplicate key");
}

static int parse_member(parser *ps, cs_json *v, size_t *cap) {
  member *ms = grow(v->members, cap, v->n, sizeof *v->members);
  if (ms == NULL)
    return CS_ENOMEM;
  v->members = ms;
  member *m = &v->members[v->n];
  int rc;
  skip_ws(ps);
  if (peek(ps) != '"')
    return ps->pos < ps->len ? fail_at(ps->pos, "expected a string key") : fail_unexpected(ps);
  m->off = ps->pos;
  m->val = NULL;
  if ((rc = parse_string(ps, &m->key, &m->key_len)) < 0)
    return rc;
  v->n++; /* owned by v from here on, so an error below frees the key */
  skip_ws(ps);
  if (peek(ps) != ':')
    return ps->pos < ps->len ? fail_at(ps->pos, "expected ':'") : fail_unexpected(ps);
  ps->pos++;
  return parse_value(ps, &m->val);
}

static int parse_object(parser *ps, cs_json *v) {
  size_t cap = 0;
  ps->pos++;
  skip_ws(ps);
  if (peek(ps) == '}') {
    ps->pos++;
    return 0;
  }
  for (;;) {
    int rc = parse_member(ps, v, &cap);
    if (rc < 0)
      return rc;
    skip_ws(ps);
    if (peek(ps) == '}') {
      ps->pos++;
      return check_duplicates(v);
    }
    if (peek(ps) != ',')
      return ps->pos < ps->len ? fail_at(ps->pos, "expected ',' or '}'") : fail_unexpected(ps);
    ps->pos++;
  }
}

static int parse_container(parser *ps, cs_json **out) {
  int is_obj = peek(ps) == '{';
  if (ps->depth == CS_JSON_MAX_DEPTH)
    return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: nested deeper than %d", ps->pos,
                        CS_JSON_MAX_DEPTH);
  cs_json *v = node(is_obj ? CS_JSON_OBJECT : CS_JSON_ARRAY);
  if (v == NULL)
    return CS_ENOMEM;
  ps->depth++;
  int rc = is_obj ? parse_object(ps, v) : parse_array(ps, v);
  ps->depth--;
  if (rc < 0) {
    cs_json_free(v);
    return rc;
  }
  *out = v;
  return 0;
}

static int parse_value(parser *ps, cs_json **out) {
  skip_ws(ps);
  int c = peek(ps);
  if (c == '{' || c == '[')
    return parse_container(ps, out);
  if (c == '"')
    return parse_string_value(ps, out);
  if (c == '-' || (c >= '0' && c <= '9'))
    return parse_number(ps, out);
  if (c == 't' || c == 'f' || c == 'n')
    return parse_literal(ps, out);
  return fail_unexpected(ps);
}

int cs_json_parse_ex(const char *text, size_t len, unsigned flags, cs_json **out) {
  assert(text != NULL || len == 0);
  if (len > CS_JSON_MAX_TEXT)
    return cs_error_set(CS_EINVAL, "invalid JSON at byte %d: text is longer than %d bytes",
                        CS_JSON_MAX_TEXT, CS_JSON_MAX_TEXT);
  parser ps = {.p = (const unsigned char *)text, .len = len, .flags = flags};
  cs_json *v = NULL;
  int rc = parse_value(&ps, &v);
  if (rc < 0)
    return rc;
  skip_ws(&ps);
  if (ps.pos != len) {
    cs_json_free(v);
    return fail_at(ps.pos, "trailing characters after the value");
  }
  *out = v;
  return 0;
}

int cs_json_parse(const char *text, size_t len, cs_json **out) {
  return cs_json_parse_ex(text, len, 0, out);
}

void cs_json_free(cs_json *v) {
  if (v == NULL)
    return;
  for (size_t k = 0; k < v->n; k++) {
    if (v->kind == CS_JSON_ARRAY) {
      cs_json_free(v->items[k]);
    } else {
      free(v->members[k].key);
      cs_json_free(v->members[k].val);
    }
  }
  free(v->items);
  free(v->members);
  free(v->s);
  free(v);
}

/* --------------------------------------------------------------- accessors */

cs_json_kind cs_json_type(const cs_json *v) {
  return v->kind;
}

size_t cs_json_size(const cs_json *v) {
  return v->kind == CS_JSON_ARRAY || v->kind == CS_JSON_OBJECT ? v->n : 0;
}

const cs_json *cs_json_object_get(const cs_json *obj, const char *key) {
  if (obj == NULL || obj->kind != CS_JSON_OBJECT)
    return NULL;
  size_t n = strlen(key);
  for (size_t k = 0; k < obj->n; k++)
    if (obj->members[k].key_len == n && memcmp(obj->members[k].key, key, n) == 0)
      return obj->members[k].val;
  return NULL;
}

const char *cs_json_object_key(const cs_json *obj, size_t i, size_t *key_len) {
  assert(obj->kind == CS_JSON_OBJECT && i < obj->n);
  if (key_len != NULL)
    *key_len = obj->members[i].key_len;
  return obj->members[i].key;
}

const cs_json *cs_json_object_value(const cs_json *obj, size_t i) {
  assert(obj->kind == CS_JSON_OBJECT && i < obj->n);
  return obj->members[i].val;
}

const cs_json *cs_json_array_at(const cs_json *arr, size_t i) {
  assert(arr->kind == CS_JSON_ARRAY && i < arr->n);
  return arr->items[i];
}

const char *cs_json_string(const cs_json *v, size_t *len) {
  if (v == NULL || v->kind != CS_JSON_STRING)
    return NULL;
  if (len != NULL)
    *len = v->s_len;
  return v->s;
}

double cs_json_number(const cs_json *v) {
  return v != NULL && v->kind == CS_JSON_NUMBER ? v->d : 0;
}

int cs_json_int64(const cs_json *v, int64_t *out) {
  if (v == NULL || v->kind != CS_JSON_NUMBER || !v->integral)
    return CS_EINVAL;
  *out = v->i;
  return 0;
}

int cs_json_bool(const cs_json *v) {
  if (v == NULL || v->kind != CS_JSON_BOOL)
    return CS_EINVAL;
  return v->boolean;
}

/* ------------------------------------------------------------------ writer */

void cs_jbuf_init(cs_jbuf *b) {
  memset(b, 0, sizeof *b);
}

void cs_jbuf_free(cs_jbuf *b) {
  if (b->buf != NULL)
    cs_wipe(b->buf, b->cap);
  free(b->buf);
  cs_jbuf_init(b);
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
    cs_wipe(b->buf, b->cap);
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
  assert(b->depth < CS_JSON_MAX_DEPTH);
  b->first[b->depth] = 1;
  b->is_obj[b->depth] = (unsigned char)is_obj;
  b->depth++;
  put(b, is_obj ? "{" : "[", 1);
}

static void end(cs_jbuf *b, int is_obj) {
  assert(b->depth > 0 && b->is_obj[b->depth - 1] == is_obj && !b->after_key);
  b->depth--;
  put(b, is_obj ? "}" : "]", 1);
}

void cs_jbuf_begin_object(cs_jbuf *b) { begin(b, 1); }
void cs_jbuf_end_object(cs_jbuf *b) { end(b, 1); }
void cs_jbuf_begin_array(cs_jbuf *b) { begin(b, 0); }
void cs_jbuf_end_array(cs_jbuf *b) { end(b, 0); }

/* The quoted, escaped form of n arbitrary bytes (see json.h). */
static void put_quoted(cs_jbuf *b, const unsigned char *s, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  put(b, "\"", 1);
  size_t run = 0; /* start of the pending run of bytes copied verbatim */
  for (size_t k = 0; k < n;) {
    unsigned char c = s[k];
    size_t seq = utf8_seq(s + k, n - k);
    if (seq != 0 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
      k += seq;
      continue;
    }
    put(b, s + run, k - run);
    char esc[6] = {'\\', c, 0, 0, 0, 0};
    size_t elen = 2;
    if (c != '"' && c != '\\') {
      /* Control characters and DEL as \u00XX; stray bytes as \uDCXX. */
      memcpy(esc, seq == 0 ? "\\udc" : "\\u00", 4);
      esc[4] = hexd[c >> 4];
      esc[5] = hexd[c & 15];
      elen = 6;
    }
    put(b, esc, elen);
    run = ++k;
  }
  put(b, s + run, n - run);
  put(b, "\"", 1);
}

void cs_jbuf_key(cs_jbuf *b, const char *key) {
  assert(b->depth > 0 && b->is_obj[b->depth - 1] && !b->after_key);
  if (!b->first[b->depth - 1])
    put(b, ",", 1);
  b->first[b->depth - 1] = 0;
  put_quoted(b, (const unsigned char *)key, strlen(key));
  put(b, ":", 1);
  b->after_key = 1;
}

void cs_jbuf_strn(cs_jbuf *b, const void *s, size_t n) {
  before_value(b);
  put_quoted(b, s != NULL ? s : "", s != NULL ? n : 0);
}

void cs_jbuf_str(cs_jbuf *b, const char *s) {
  cs_jbuf_strn(b, s, s != NULL ? strlen(s) : 0);
}

void cs_jbuf_int(cs_jbuf *b, int64_t v) {
  char num[24];
  before_value(b);
  put(b, num, (size_t)snprintf(num, sizeof num, "%" PRId64, v));
}

void cs_jbuf_uint(cs_jbuf *b, uint64_t v) {
  char num[24];
  before_value(b);
  put(b, num, (size_t)snprintf(num, sizeof num, "%" PRIu64, v));
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
