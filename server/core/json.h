/*
 * json: a small, strict JSON reader (text -> tree) and a one-line writer.
 *
 * custos speaks protobuf on the wire; JSON appears only where humans write
 * or read documents: policies (read) and the audit log (written).  Both
 * sides are deliberately narrow.
 *
 * Reader (RFC 8259, strict).  Rejected, each with CS_EINVAL and a detail
 * "invalid JSON at byte N: <reason>" (N counts from 0):
 *   - anything but one value surrounded by optional whitespace (trailing
 *     garbage, a byte order mark, comments, trailing commas);
 *   - raw control characters (< 0x20) in strings, unknown escapes, \u
 *     escapes with bad hex digits, unpaired surrogates;
 *   - invalid UTF-8 (overlong forms, encoded surrogates, > U+10FFFF);
 *   - numbers outside the JSON grammar (leading zeros, "1.", "+1", "NaN")
 *     or too large for a double;
 *   - nesting deeper than CS_JSON_MAX_DEPTH arrays/objects;
 *   - texts longer than CS_JSON_MAX_TEXT bytes;
 *   - the same key twice in one object.
 * Strings are unescaped into UTF-8 and always NUL-terminated; because
 * "\u0000" is legal they may contain NUL bytes, so use the length that
 * cs_json_string() reports.  Objects keep their members in text order.
 *
 * Writer (cs_jbuf).  Builds compact JSON in a growable buffer.  Strings are
 * arbitrary bytes: valid UTF-8 is copied, '"' and '\' get a backslash,
 * control characters and DEL become \u00XX, and every byte that is not part
 * of a valid UTF-8 sequence becomes \uDCXX (XX = the byte, 80..FF), the
 * "surrogateescape" convention of PEP 383.  That keeps the output valid
 * UTF-8 yet lossless: cs_json_parse_ex() with CS_JSON_SURROGATEESCAPE maps
 * \uDC80..\uDCFF back to the raw byte, so writer output read back gives the
 * exact bytes that were written (Python reads the same convention with
 * errors="surrogateescape").  The strict default parser rejects such lone
 * surrogates, so nothing written from binary input can sneak into a policy.
 */
#ifndef CS_JSON_H
#define CS_JSON_H

#include <stddef.h>
#include <stdint.h>

#define CS_JSON_MAX_DEPTH 32
#define CS_JSON_MAX_TEXT (1024 * 1024)

/* ------------------------------------------------------------------ reader */

typedef enum cs_json_kind {
  CS_JSON_NULL,
  CS_JSON_BOOL,
  CS_JSON_NUMBER,
  CS_JSON_STRING,
  CS_JSON_ARRAY,
  CS_JSON_OBJECT,
} cs_json_kind;

/* Parse flags for cs_json_parse_ex. */
#define CS_JSON_SURROGATEESCAPE 1u /* accept lone \uDC80..\uDCFF as raw bytes 80..FF */

typedef struct cs_json cs_json;

/*
 * Parses `len` bytes of `text` (need not be NUL-terminated) into a tree.
 * Returns 0 and *out (free with cs_json_free), CS_EINVAL with a detail
 * naming the byte offset, or CS_ENOMEM.  *out is untouched on error.
 */
int cs_json_parse(const char *text, size_t len, cs_json **out) __attribute__((warn_unused_result));
/* The same with CS_JSON_* flags (0 is cs_json_parse). */
int cs_json_parse_ex(const char *text, size_t len, unsigned flags, cs_json **out)
    __attribute__((warn_unused_result));
/* Frees a whole tree (NULL is a no-op).  Values obtained from it die too. */
void cs_json_free(cs_json *v);

/* The kind of a value. */
cs_json_kind cs_json_type(const cs_json *v);
/* Members of an object or items of an array; 0 for scalars. */
size_t cs_json_size(const cs_json *v);
/* The member named `key` (NUL-terminated) of an object; NULL when absent
 * or when `obj` is not an object. */
const cs_json *cs_json_object_get(const cs_json *obj, const char *key);
/* The i-th member (text order) of an object: its key (NUL-terminated, length
 * in *key_len when not NULL) and its value.  i must be < cs_json_size(). */
const char *cs_json_object_key(const cs_json *obj, size_t i, size_t *key_len);
const cs_json *cs_json_object_value(const cs_json *obj, size_t i);
/* The i-th item of an array; i must be < cs_json_size(). */
const cs_json *cs_json_array_at(const cs_json *arr, size_t i);
/* The bytes of a string (NUL-terminated, length in *len when not NULL), or
 * NULL when `v` is not a string. */
const char *cs_json_string(const cs_json *v, size_t *len);
/* The value of a number (0 for non-numbers). */
double cs_json_number(const cs_json *v);
/* 0 and *out when `v` is a number written as an integer (no fraction, no
 * exponent) that fits an int64_t; CS_EINVAL otherwise. */
int cs_json_int64(const cs_json *v, int64_t *out) __attribute__((warn_unused_result));
/* 1 for true, 0 for false, CS_EINVAL for anything else. */
int cs_json_bool(const cs_json *v) __attribute__((warn_unused_result));

/* ------------------------------------------------------------------ writer */

/*
 * A buffer being filled with one JSON value.  Appends never fail on their
 * own: the first allocation failure is remembered and reported by
 * cs_jbuf_result(), so a record can be built without checking each step.
 * Structural misuse (a key outside an object, unbalanced ends) asserts.
 */
typedef struct cs_jbuf {
  char *buf;
  size_t len, cap;
  int err;                              /* first error (CS_ENOMEM), sticky */
  unsigned depth;
  unsigned char first[CS_JSON_MAX_DEPTH]; /* per open container: nothing written yet */
  unsigned char is_obj[CS_JSON_MAX_DEPTH];
  int after_key;                        /* a key was written, its value is due */
} cs_jbuf;

void cs_jbuf_init(cs_jbuf *b);
/* Wipes and frees the buffer; b can be initialised again. */
void cs_jbuf_free(cs_jbuf *b);

void cs_jbuf_begin_object(cs_jbuf *b);
void cs_jbuf_end_object(cs_jbuf *b);
void cs_jbuf_begin_array(cs_jbuf *b);
void cs_jbuf_end_array(cs_jbuf *b);
/* A member name inside an object; the next value call supplies its value. */
void cs_jbuf_key(cs_jbuf *b, const char *key);

/* Values: in an array, after cs_jbuf_key, or as the whole document. */
void cs_jbuf_str(cs_jbuf *b, const char *s);              /* NUL-terminated */
void cs_jbuf_strn(cs_jbuf *b, const void *s, size_t n);   /* arbitrary bytes */
void cs_jbuf_int(cs_jbuf *b, int64_t v);
void cs_jbuf_uint(cs_jbuf *b, uint64_t v);
void cs_jbuf_bool(cs_jbuf *b, int v);
void cs_jbuf_null(cs_jbuf *b);

/* Shorthands for key + value.  A NULL string is written as "". */
void cs_jbuf_key_str(cs_jbuf *b, const char *key, const char *s);
void cs_jbuf_key_strn(cs_jbuf *b, const char *key, const void *s, size_t n);
void cs_jbuf_key_int(cs_jbuf *b, const char *key, int64_t v);
void cs_jbuf_key_uint(cs_jbuf *b, const char *key, uint64_t v);
void cs_jbuf_key_bool(cs_jbuf *b, const char *key, int v);
/* Appends bytes verbatim, e.g. the newline after a finished record; the
 * caller vouches that they keep the text valid. */
void cs_jbuf_raw(cs_jbuf *b, const char *s, size_t n);

/*
 * The finished text: 0 and *text (NUL-terminated, owned by b, valid until
 * the next append or cs_jbuf_free) and *len, or the sticky error.  Every
 * container must have been closed.
 */
int cs_jbuf_result(const cs_jbuf *b, const char **text, size_t *len)
    __attribute__((warn_unused_result));

#endif
