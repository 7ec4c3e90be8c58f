/*
 * libFuzzer target for cs_json_parse: policies are JSON written by
 * operators and sent over the network, so the reader must survive any
 * bytes.  Oracle: whatever parses is written back with cs_jbuf and must
 * parse again into the same tree (numbers are compared by kind only, the
 * writer has no double output).  The first byte picks the parse flags.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_error.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_tree(cs_jbuf *b, const cs_json *v) {
  size_t n;
  const char *s;
  switch (cs_json_type(v)) {
  case CS_JSON_NULL:
  case CS_JSON_NUMBER:
    cs_jbuf_null(b);
    break;
  case CS_JSON_BOOL:
    cs_jbuf_bool(b, cs_json_bool(v) == 1);
    break;
  case CS_JSON_STRING:
    s = cs_json_string(v, &n);
    cs_jbuf_strn(b, s, n);
    break;
  case CS_JSON_ARRAY:
    cs_jbuf_begin_array(b);
    for (size_t i = 0; i < cs_json_size(v); i++)
      write_tree(b, cs_json_array_at(v, i));
    cs_jbuf_end_array(b);
    break;
  case CS_JSON_OBJECT:
    cs_jbuf_begin_object(b);
    for (size_t i = 0; i < cs_json_size(v); i++) {
      /* cs_jbuf_key takes C strings; has_nul_key() kept out trees whose
       * keys hold a NUL */
      cs_jbuf_key(b, cs_json_object_key(v, i, NULL));
      write_tree(b, cs_json_object_value(v, i));
    }
    cs_jbuf_end_object(b);
    break;
  }
}

static int has_nul_key(const cs_json *v) {
  size_t n;
  for (size_t i = 0; i < cs_json_size(v); i++) {
    if (cs_json_type(v) == CS_JSON_OBJECT) {
      if (strlen(cs_json_object_key(v, i, &n)) != n || has_nul_key(cs_json_object_value(v, i)))
        return 1;
    } else if (has_nul_key(cs_json_array_at(v, i))) {
      return 1;
    }
  }
  return 0;
}

static int same(const cs_json *a, const cs_json *b) {
  size_t na, nb;
  cs_json_kind ka = cs_json_type(a), kb = cs_json_type(b);
  if (ka == CS_JSON_NUMBER)
    return kb == CS_JSON_NULL;
  if (ka != kb || cs_json_size(a) != cs_json_size(b))
    return 0;
  if (ka == CS_JSON_BOOL)
    return cs_json_bool(a) == cs_json_bool(b);
  if (ka == CS_JSON_STRING) {
    const char *sa = cs_json_string(a, &na), *sb = cs_json_string(b, &nb);
    return na == nb && memcmp(sa, sb, na) == 0;
  }
  for (size_t i = 0; i < cs_json_size(a); i++) {
    if (ka == CS_JSON_ARRAY) {
      if (!same(cs_json_array_at(a, i), cs_json_array_at(b, i)))
        return 0;
      continue;
    }
    const char *x = cs_json_object_key(a, i, &na), *y = cs_json_object_key(b, i, &nb);
    if (na != nb || memcmp(x, y, na) != 0 ||
        !same(cs_json_object_value(a, i), cs_json_object_value(b, i)))
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  unsigned flags = data[0] & 1 ? CS_JSON_SURROGATEESCAPE : 0;
  cs_json *v = NULL, *again = NULL;
  if (cs_json_parse_ex((const char *)data + 1, size - 1, flags, &v) != 0)
    return 0;
  if (has_nul_key(v)) {
    cs_json_free(v);
    return 0;
  }
  cs_jbuf b;
  const char *text;
  size_t len;
  cs_jbuf_init(&b);
  write_tree(&b, v);
  if (cs_jbuf_result(&b, &text, &len) != 0)
    abort();
  /* Output read back with surrogateescape must be the same tree; without
   * it, it parses whenever the input did (strict input has no stray bytes). */
  if (cs_json_parse_ex(text, len, flags, &again) != 0 || !same(v, again))
    abort();
  cs_json_free(again);
  cs_jbuf_free(&b);
  cs_json_free(v);
  return 0;
}
