/*
 * libFuzzer target for jbuf, the one JSON writer: the audit log writes
 * whatever bytes clients send (paths, field names), the CLI whatever the
 * server returns.  Reading JSON is jansson's job, and policies (the only
 * JSON custos reads) have their own target, fuzz_policy.
 *
 * The input is written in both modes as a key (up to its first NUL: keys
 * are C strings) and as a string value, into
 * {"<key>":"<value>","a":["<value>",1]}.  Oracles:
 *   - the output has no raw control characters and, with each \uDCXX
 *     escape read as U+FFFD, jansson accepts it (so it is valid UTF-8 JSON);
 *   - surrogateescape mode: the value literal decodes to the exact input;
 *   - replace mode: strict jansson reads it, and the value comes back
 *     exactly when the input held no stray byte, which is also exactly when
 *     the surrogateescape output is strict JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jbuf.h"
#include "jtest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The document for key and value in the given mode; aborts on failure.
 * The text is owned by b. */
static const char *write_doc(cs_jbuf *b, cs_jbuf_mode mode, const char *key, const uint8_t *v,
                             size_t n, size_t *len) {
  const char *text;
  cs_jbuf_init(b, mode);
  cs_jbuf_begin_object(b);
  cs_jbuf_key_strn(b, key, v, n);
  cs_jbuf_key(b, "a");
  cs_jbuf_begin_array(b);
  cs_jbuf_strn(b, v, n);
  cs_jbuf_int(b, 1);
  cs_jbuf_end_array(b);
  cs_jbuf_end_object(b);
  if (cs_jbuf_result(b, &text, len) != 0)
    abort();
  for (size_t k = 0; k < *len; k++)
    if ((unsigned char)text[k] < 0x20 || text[k] == 0x7f)
      abort();
  json_t *j = jtest_load(text, *len);
  if (j == NULL || !json_is_object(j) || json_object_size(j) != 2 ||
      !json_is_array(json_object_get(j, "a")))
    abort();
  json_decref(j);
  return text;
}

/* Where the value literal sits in {"a":[<literal>,1]}: after the last
 * "\"a\":[" and up to the ",1]}" at the end. */
static void value_literal(const char *text, size_t len, const char **lit, size_t *n) {
  const char *tail = ",1]}";
  if (len < 4 || memcmp(text + len - 4, tail, 4) != 0)
    abort();
  const char *start = NULL;
  for (const char *p = text; (p = strstr(p, "\"a\":[")) != NULL && p < text + len; p++)
    start = p + 5;
  if (start == NULL)
    abort();
  *lit = start;
  *n = (size_t)(text + len - 4 - start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *v = data;
  size_t n = size;
  char *key = malloc(n + 1);
  if (key == NULL)
    return 0;
  if (n > 0)
    memcpy(key, v, n);
  key[n] = '\0';
  if (strcmp(key, "a") == 0) { /* would be a duplicate key */
    free(key);
    return 0;
  }

  cs_jbuf se, rep;
  size_t se_len, rep_len, lit_n, got_n;
  const char *lit, *se_text = write_doc(&se, CS_JBUF_SURROGATEESCAPE, key, v, n, &se_len);
  const char *rep_text = write_doc(&rep, CS_JBUF_REPLACE, key, v, n, &rep_len);

  value_literal(se_text, se_len, &lit, &lit_n);
  unsigned char *got = jtest_decode_string(lit, lit_n, &got_n);
  if (got == NULL || got_n != n || memcmp(got, v, n) != 0)
    abort();
  free(got);

  json_error_t e;
  json_t *strict_se = json_loadb(se_text, se_len, JSON_ALLOW_NUL, &e);
  json_t *strict_rep = json_loadb(rep_text, rep_len, JSON_ALLOW_NUL, &e);
  if (strict_rep == NULL)
    abort();
  const json_t *rv = json_array_get(json_object_get(strict_rep, "a"), 0);
  int exact = json_string_length(rv) == n && memcmp(json_string_value(rv), v, n) == 0;
  if (exact != (strict_se != NULL))
    abort();
  json_decref(strict_se);
  json_decref(strict_rep);
  cs_jbuf_free(&se);
  cs_jbuf_free(&rep);
  free(key);
  return 0;
}
