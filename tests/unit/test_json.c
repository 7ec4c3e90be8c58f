/*
 * Unit tests for json: the tree the reader builds, one rejected text per
 * rejection reason (with the byte offset the detail names), the limits,
 * and the writer: escaping, structure, and a lossless round trip of
 * arbitrary bytes through writer and reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cs_error.h"
#include "json.h"

static cs_json *parse_ok(const char *text) {
  cs_json *v = NULL;
  int rc = cs_json_parse(text, strlen(text), &v);
  if (rc != 0)
    fail_msg("rejected %s: %s", text, cs_error_message(rc));
  return v;
}

static void test_scalars(void **state) {
  (void)state;
  int64_t i;
  cs_json *v = parse_ok(" true ");
  assert_int_equal(cs_json_type(v), CS_JSON_BOOL);
  assert_int_equal(cs_json_bool(v), 1);
  cs_json_free(v);
  v = parse_ok("false");
  assert_int_equal(cs_json_bool(v), 0);
  cs_json_free(v);
  v = parse_ok("null");
  assert_int_equal(cs_json_type(v), CS_JSON_NULL);
  assert_int_equal(cs_json_bool(v), CS_EINVAL);
  cs_json_free(v);

  v = parse_ok("-9223372036854775808");
  assert_int_equal(cs_json_int64(v, &i), 0);
  assert_true(i == INT64_MIN);
  cs_json_free(v);
  v = parse_ok("9223372036854775808"); /* one past INT64_MAX: a double only */
  assert_int_equal(cs_json_int64(v, &i), CS_EINVAL);
  assert_true(cs_json_number(v) > 9.2e18);
  cs_json_free(v);
  v = parse_ok("-0.5e-3");
  assert_int_equal(cs_json_int64(v, &i), CS_EINVAL);
  assert_true(cs_json_number(v) == -0.0005);
  cs_json_free(v);
  v = parse_ok("10E+2");
  assert_true(cs_json_number(v) == 1000);
  assert_int_equal(cs_json_int64(v, &i), CS_EINVAL); /* has an exponent */
  cs_json_free(v);
  v = parse_ok("0");
  assert_int_equal(cs_json_int64(v, &i), 0);
  assert_true(i == 0);
  cs_json_free(v);
}

static void test_strings(void **state) {
  (void)state;
  size_t n;
  cs_json *v = parse_ok("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"");
  const char *s = cs_json_string(v, &n);
  static const char want[] = "a\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  assert_int_equal(n, sizeof want - 1);
  assert_memory_equal(s, want, n);
  assert_int_equal(s[n], '\0');
  cs_json_free(v);

  v = parse_ok("\"a\\u0000b\""); /* NUL inside: the length tells */
  s = cs_json_string(v, &n);
  assert_int_equal(n, 3);
  assert_memory_equal(s, "a\0b", 3);
  cs_json_free(v);

  v = parse_ok("\"\xf4\x8f\xbf\xbf \xed\x9f\xbf\""); /* U+10FFFF, U+D7FF */
  assert_non_null(cs_json_string(v, &n));
  assert_int_equal(n, 8);
  assert_null(cs_json_string(NULL, NULL));
  cs_json_free(v);
}

static void test_containers(void **state) {
  (void)state;
  size_t n;
  cs_json *v = parse_ok("{\"z\":1,\"a\":[true,{\"k\":\"v\"},[]],\"m\":{}}");
  assert_int_equal(cs_json_type(v), CS_JSON_OBJECT);
  assert_int_equal(cs_json_size(v), 3);
  /* key order is text order */
  assert_string_equal(cs_json_object_key(v, 0, &n), "z");
  assert_string_equal(cs_json_object_key(v, 1, NULL), "a");
  assert_string_equal(cs_json_object_key(v, 2, NULL), "m");
  const cs_json *a = cs_json_object_get(v, "a");
  assert_ptr_equal(a, cs_json_object_value(v, 1));
  assert_int_equal(cs_json_type(a), CS_JSON_ARRAY);
  assert_int_equal(cs_json_size(a), 3);
  assert_string_equal(cs_json_string(cs_json_object_get(cs_json_array_at(a, 1), "k"), NULL), "v");
  assert_int_equal(cs_json_size(cs_json_array_at(a, 2)), 0);
  assert_int_equal(cs_json_size(cs_json_object_get(v, "m")), 0);
  assert_null(cs_json_object_get(v, "missing"));
  assert_null(cs_json_object_get(a, "z")); /* not an object */
  assert_int_equal(cs_json_size(cs_json_object_get(v, "z")), 0);
  cs_json_free(v);
  cs_json_free(NULL);
}

/* One text per rejection reason, the byte the detail must name, and a
 * piece of the reason. */
static const struct bad {
  const char *text;
  size_t len; /* 0: strlen */
  const char *where;
  const char *why;
} bad[] = {
    {"", 0, "byte 0", "unexpected end of text"},
    {"   ", 0, "byte 3", "unexpected end of text"},
    {"{} x", 0, "byte 3", "trailing characters"},
    {"[1,]", 0, "byte 3", "unexpected ']'"},
    {"[1 2]", 0, "byte 3", "expected ',' or ']'"},
    {"{\"a\" 1}", 0, "byte 5", "expected ':'"},
    {"{\"a\":1 \"b\":2}", 0, "byte 7", "expected ',' or '}'"},
    {"{a:1}", 0, "byte 1", "expected a string key"},
    {"{\"a\":1,}", 0, "byte 7", "expected a string key"},
    {"[1", 0, "byte 2", "unexpected end of text"},
    {"\"abc", 0, "byte 0", "unterminated string"},
    {"\"a\tb\"", 0, "byte 2", "control character"},
    {"\"a\nb\"", 0, "byte 2", "control character"},
    {"\"\\x\"", 0, "byte 1", "invalid escape"},
    {"\"\\u12g4\"", 0, "byte 1", "invalid \\u escape"},
    {"\"\\u12\"", 0, "byte 1", "invalid \\u escape"},
    {"\"\\ud800\"", 0, "byte 1", "unpaired high surrogate"},
    {"\"\\ud800\\u0041\"", 0, "byte 1", "unpaired high surrogate"},
    {"\"\\udc80\"", 0, "byte 1", "unpaired low surrogate"},
    {"\"\xff\"", 0, "byte 1", "invalid UTF-8"},
    {"\"ab\xc3\"", 0, "byte 3", "invalid UTF-8"},         /* truncated sequence */
    {"\"\xc0\xaf\"", 0, "byte 1", "invalid UTF-8"},       /* overlong '/' */
    {"\"\xe0\x80\xaf\"", 0, "byte 1", "invalid UTF-8"},   /* overlong */
    {"\"\xed\xa0\x80\"", 0, "byte 1", "invalid UTF-8"},   /* encoded surrogate */
    {"\"\xf4\x90\x80\x80\"", 0, "byte 1", "invalid UTF-8"}, /* > U+10FFFF */
    {"\"\xe2\x82\"", 0, "byte 1", "invalid UTF-8"},
    {"01", 0, "byte 1", "leading zero"},
    {"-", 0, "byte 1", "expected a digit"},
    {"1.", 0, "byte 2", "after '.'"},
    {"1e", 0, "byte 2", "exponent"},
    {"+1", 0, "byte 0", "unexpected '+'"},
    {".5", 0, "byte 0", "unexpected '.'"},
    {"1e400", 0, "byte 0", "out of range"},
    {"NaN", 0, "byte 0", "unexpected 'N'"},
    {"tru", 0, "byte 0", "unexpected 't'"},
    {"nul", 0, "byte 0", "unexpected 'n'"},
    {"\xef\xbb\xbf{}", 0, "byte 0", "unexpected byte 0xef"}, /* BOM */
    {"[1]/* c */", 0, "byte 3", "trailing characters"},
    {"{\"a\":1,\"a\":2}", 0, "byte 7", "duplicate key"},
    {"{\"a\":1,\"b\":{\"x\":1,\"x\":1}}", 0, "byte 18", "duplicate key"},
    {"[1]\0", 4, "byte 3", "trailing characters"},
    {"\"a\0\"", 4, "byte 2", "control character"},
};

static void test_rejections(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cs_json *v = NULL;
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
    int rc = cs_json_parse(bad[i].text, len, &v);
    if (rc != CS_EINVAL)
      fail_msg("case %zu accepted or wrong code %d", i, rc);
    assert_null(v);
    const char *msg = cs_error_message(CS_EINVAL);
    if (strstr(msg, bad[i].where) == NULL || strstr(msg, bad[i].why) == NULL ||
        strncmp(msg, "invalid JSON at byte ", 21) != 0)
      fail_msg("case %zu: detail \"%s\" lacks \"%s\" / \"%s\"", i, msg, bad[i].where, bad[i].why);
  }
}

static void test_depth(void **state) {
  (void)state;
  char text[8 * (CS_JSON_MAX_DEPTH + 1)];
  cs_json *v = NULL;
  for (int d = 0; d < CS_JSON_MAX_DEPTH; d++) {
    text[d] = '[';
    text[2 * CS_JSON_MAX_DEPTH - 1 - d] = ']';
  }
  assert_int_equal(cs_json_parse(text, 2 * CS_JSON_MAX_DEPTH, &v), 0);
  cs_json_free(v);
  v = NULL;
  /* one more level, alternating objects and arrays */
  size_t o = 0;
  for (int d = 0; d <= CS_JSON_MAX_DEPTH; d++)
    o += (size_t)sprintf(text + o, "%s", d % 2 ? "{\"k\":" : "[");
  assert_int_equal(cs_json_parse(text, o, &v), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "nested deeper than 32"));
  assert_null(v);
}

static void test_size_limit(void **state) {
  (void)state;
  size_t n = CS_JSON_MAX_TEXT;
  char *text = malloc(n + 1);
  cs_json *v = NULL;
  assert_non_null(text);
  memset(text, 'a', n + 1);
  text[0] = '"';
  text[n - 1] = '"';
  assert_int_equal(cs_json_parse(text, n, &v), 0);
  size_t len;
  assert_non_null(cs_json_string(v, &len));
  assert_int_equal(len, n - 2);
  cs_json_free(v);
  v = NULL;
  text[n - 1] = 'a';
  text[n] = '"';
  assert_int_equal(cs_json_parse(text, n + 1, &v), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "longer than 1048576 bytes"));
  free(text);
}

/* A large object goes through the sorted duplicate check. */
static void test_duplicates_large(void **state) {
  (void)state;
  size_t cap = 64 * 1024, o = 0;
  char *text = malloc(cap);
  cs_json *v = NULL;
  assert_non_null(text);
  o += (size_t)sprintf(text + o, "{");
  for (int k = 0; k < 2000; k++)
    o += (size_t)sprintf(text + o, "%s\"k%d\":%d", k ? "," : "", k, k);
  o += (size_t)sprintf(text + o, "}");
  assert_int_equal(cs_json_parse(text, o, &v), 0);
  assert_int_equal(cs_json_size(v), 2000);
  int64_t i;
  assert_int_equal(cs_json_int64(cs_json_object_get(v, "k1999"), &i), 0);
  assert_true(i == 1999);
  cs_json_free(v);
  v = NULL;
  /* k5 again near the end, and k7 again after it: the first repeat is named */
  o -= 1;
  size_t at = o + 1;
  o += (size_t)sprintf(text + o, ",\"k5\":0,\"k7\":0}");
  assert_int_equal(cs_json_parse(text, o, &v), CS_EINVAL);
  char where[64];
  snprintf(where, sizeof where, "at byte %zu: duplicate key", at);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), where));
  free(text);
}

static void test_writer_structure(void **state) {
  (void)state;
  cs_jbuf b;
  const char *text;
  size_t n;
  cs_jbuf_init(&b);
  cs_jbuf_begin_object(&b);
  cs_jbuf_key_str(&b, "s", "x\"y\\z\n");
  cs_jbuf_key_int(&b, "i", -42);
  cs_jbuf_key_uint(&b, "u", UINT64_MAX);
  cs_jbuf_key_bool(&b, "t", 1);
  cs_jbuf_key_bool(&b, "f", 0);
  cs_jbuf_key_str(&b, "null-string", NULL);
  cs_jbuf_key(&b, "a");
  cs_jbuf_begin_array(&b);
  cs_jbuf_int(&b, 1);
  cs_jbuf_null(&b);
  cs_jbuf_begin_object(&b);
  cs_jbuf_end_object(&b);
  cs_jbuf_begin_array(&b);
  cs_jbuf_end_array(&b);
  cs_jbuf_str(&b, "\x01\x7f");
  cs_jbuf_end_array(&b);
  cs_jbuf_end_object(&b);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_string_equal(text,
                      "{\"s\":\"x\\\"y\\\\z\\u000a\",\"i\":-42,\"u\":18446744073709551615,"
                      "\"t\":true,\"f\":false,\"null-string\":\"\",\"a\":[1,null,{},[],"
                      "\"\\u0001\\u007f\"]}");
  assert_int_equal(n, strlen(text));
  cs_json *v = NULL;
  assert_int_equal(cs_json_parse(text, n, &v), 0);
  assert_string_equal(cs_json_string(cs_json_object_get(v, "s"), NULL), "x\"y\\z\n");
  cs_json_free(v);
  cs_jbuf_raw(&b, "\n", 1);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_int_equal(text[n - 1], '\n');
  cs_jbuf_free(&b);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Writes s as an array item and reads it back. */
static void round_trip(const unsigned char *s, size_t n, int valid_utf8) {
  cs_jbuf b;
  const char *text;
  size_t len, got_len;
  cs_jbuf_init(&b);
  cs_jbuf_begin_array(&b);
  cs_jbuf_strn(&b, s, n);
  cs_jbuf_end_array(&b);
  assert_int_equal(cs_jbuf_result(&b, &text, &len), 0);
  cs_json *v = NULL;
  assert_int_equal(cs_json_parse_ex(text, len, CS_JSON_SURROGATEESCAPE, &v), 0);
  const char *got = cs_json_string(cs_json_array_at(v, 0), &got_len);
  assert_int_equal(got_len, n);
  assert_memory_equal(got, s, n);
  cs_json_free(v);
  /* The output itself is always pure printable text: strictly valid,
   * except that stray bytes come out as lone surrogates. */
  v = NULL;
  int rc = cs_json_parse(text, len, &v);
  if (valid_utf8) {
    assert_int_equal(rc, 0);
    assert_memory_equal(cs_json_string(cs_json_array_at(v, 0), NULL), s, n);
  } else if (rc == 0) {
    fail_msg("invalid UTF-8 came back through the strict reader");
  } else {
    assert_non_null(strstr(cs_error_message(rc), "unpaired low surrogate"));
  }
  for (size_t k = 0; k < len; k++)
    assert_true((unsigned char)text[k] >= 0x20);
  cs_json_free(v);
  cs_jbuf_free(&b);
}

static void test_round_trip_every_byte(void **state) {
  (void)state;
  for (unsigned c = 0; c < 256; c++) {
    unsigned char s[3] = {'x', (unsigned char)c, 'y'};
    round_trip(s, sizeof s, c < 0x80);
  }
  static const char *utf8[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                               "\xed\x9f\xbf", "\xee\x80\x80", ""};
  for (size_t k = 0; k < sizeof utf8 / sizeof utf8[0]; k++)
    round_trip((const unsigned char *)utf8[k], strlen(utf8[k]), 1);
  /* invalid sequences that look almost right */
  static const char *bad_utf8[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                                   "\xc3", "\x80\x80", "\xf0\x9f\x98"};
  for (size_t k = 0; k < sizeof bad_utf8 / sizeof bad_utf8[0]; k++)
    round_trip((const unsigned char *)bad_utf8[k], strlen(bad_utf8[k]), 0);
}

/* Reference UTF-8 check, written independently of json.c: decode each
 * code point and reject overlongs, surrogates and values above U+10FFFF. */
static int ref_valid_utf8(const unsigned char *s, size_t n) {
  for (size_t k = 0; k < n;) {
    unsigned c = s[k], len, cp;
    if (c < 0x80) {
      k++;
      continue;
    }
    if ((c & 0xe0) == 0xc0)
      len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
      len = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0)
      len = 4, cp = c & 0x07;
    else
      return 0;
    if (n - k < len)
      return 0;
    for (unsigned j = 1; j < len; j++) {
      if ((s[k + j] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (s[k + j] & 0x3f);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    k += len;
  }
  return 1;
}

/* Random bytes, biased towards the interesting ranges (controls, quotes,
 * UTF-8 lead and continuation bytes). */
static void test_round_trip_random(void **state) {
  (void)state;
  static const unsigned char pool[] = {0x00, 0x1f, '"', '\\', '/', 'a', 0x7f, 0x80, 0xbf,
                                       0xc2, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  unsigned char s[96];
  int valid_seen = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = next_rand() % sizeof s;
    int mode = (int)(next_rand() % 3);
    for (size_t k = 0; k < n; k++) {
      uint64_t r = next_rand();
      if (mode == 0) /* ASCII plus pool: often valid */
        s[k] = (r & 1) ? pool[(r >> 8) % 6] : (unsigned char)(0x20 + (r >> 16) % 0x5f);
      else if (mode == 1)
        s[k] = pool[(r >> 8) % sizeof pool];
      else
        s[k] = (unsigned char)(r >> 16);
    }
    int valid = ref_valid_utf8(s, n);
    valid_seen += valid;
    round_trip(s, n, valid);
  }
  assert_true(valid_seen > 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalars),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_containers),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_duplicates_large),
      cmocka_unit_test(test_writer_structure),
      cmocka_unit_test(test_round_trip_every_byte),
      cmocka_unit_test(test_round_trip_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
