/*
 * jbuf: the one JSON writer, shared by the server (audit log) and the CLI
 * (--format json).  Reading JSON is jansson's job (see server/core/policy.c).
 *
 * A cs_jbuf builds one compact JSON value in a growable buffer.  Strings are
 * arbitrary bytes; valid UTF-8 is copied, and
 *   - '"' and '\' get a backslash; \b \f \n \r \t use their short escapes;
 *     every other control character and DEL becomes \u00XX;
 *   - a byte that is not part of a valid UTF-8 sequence (RFC 3629: no
 *     overlongs, no encoded surrogates, nothing above U+10FFFF) becomes, by
 *     the buffer's mode:
 *       CS_JBUF_SURROGATEESCAPE  \uDCXX (XX = the byte, 80..FF), the
 *           "surrogateescape" convention of PEP 383: lossless (Python reads
 *           it back with errors="surrogateescape"), used by the audit log so
 *           an auditor sees exactly which bytes a client sent.  Strict
 *           readers (jansson among them) refuse such lone surrogates, so
 *           nothing written from binary input can pass for a policy;
 *       CS_JBUF_REPLACE  \ufffd (U+FFFD), lossy but valid for every
 *           reader, used by the CLI (binary values are read with --field).
 * The output is therefore always valid UTF-8 without raw control characters.
 *
 * The buffer is wiped when it grows and when it is freed: CLI output holds
 * tokens, key shares and secret values.
 */
#ifndef CS_JBUF_H
#define CS_JBUF_H

#include <stddef.h>
#include <stdint.h>

#define CS_JBUF_MAX_DEPTH 32

typedef enum cs_jbuf_mode {
  CS_JBUF_SURROGATEESCAPE, /* invalid UTF-8 byte XX -> \uDCXX (lossless) */
  CS_JBUF_REPLACE,         /* invalid UTF-8 byte -> \ufffd (lossy) */
} cs_jbuf_mode;

/*
 * A buffer being filled with one JSON value.  Appends never fail on their
 * own: the first allocation failure is remembered and reported by
 * cs_jbuf_result(), so a record can be built without checking each step.
 * Structural misuse (a key outside an object, unbalanced ends, deeper than
 * CS_JBUF_MAX_DEPTH) asserts.
 */
typedef struct cs_jbuf {
  char *buf;
  size_t len, cap;
  int err; /* first error (CS_ENOMEM), sticky */
  cs_jbuf_mode mode;
  unsigned depth;
  unsigned over; /* containers opened beyond CS_JBUF_MAX_DEPTH (misuse) */
  unsigned char first[CS_JBUF_MAX_DEPTH]; /* per open container: nothing written yet */
  unsigned char is_obj[CS_JBUF_MAX_DEPTH];
  int after_key; /* a key was written, its value is due */
} cs_jbuf;

void cs_jbuf_init(cs_jbuf *b, cs_jbuf_mode mode);
/* Empties b for the next value, keeping its buffer (what it held is
 * wiped): for a writer that builds many values, one after the other. */
void cs_jbuf_reset(cs_jbuf *b);
/* Wipes and frees the buffer; b is empty again, in the same mode. */
void cs_jbuf_free(cs_jbuf *b);

void cs_jbuf_begin_object(cs_jbuf *b);
void cs_jbuf_end_object(cs_jbuf *b);
void cs_jbuf_begin_array(cs_jbuf *b);
void cs_jbuf_end_array(cs_jbuf *b);
/* A member name inside an object; the next value call supplies its value. */
void cs_jbuf_key(cs_jbuf *b, const char *key);

/* Values: in an array, after cs_jbuf_key, or as the whole document. */
void cs_jbuf_str(cs_jbuf *b, const char *s);            /* NUL-terminated; NULL is "" */
void cs_jbuf_strn(cs_jbuf *b, const void *s, size_t n); /* arbitrary bytes */
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
/* Appends one or more whole members ("k":v,"k2":v2) of the open object,
 * verbatim, with the comma before them when needed: for the constant parts
 * of a document (the HTTP API's response envelope).  The caller vouches
 * that they are valid JSON. */
void cs_jbuf_members(cs_jbuf *b, const char *s, size_t n);
#define CS_JBUF_MEMBERS(b, lit) cs_jbuf_members(b, lit, sizeof lit - 1)

/*
 * The finished text: 0 and *text (NUL-terminated, owned by b, valid until
 * the next append or cs_jbuf_free) and *len, or the sticky error (CS_ENOMEM;
 * CS_EINVAL when nothing was written).  Every container must be closed.
 */
int cs_jbuf_result(const cs_jbuf *b, const char **text, size_t *len)
    __attribute__((warn_unused_result));

#endif
