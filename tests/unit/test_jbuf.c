/*
 * Unit tests for jbuf, the one JSON writer (audit log and CLI): structure
 * and escapes, and that what it writes reads back through jansson: exactly
 * for valid UTF-8 (NUL included), exactly through the surrogateescape
 * decoder for any bytes, and with U+FFFD in place of each stray byte in the
 * CLI's replace mode.  The output is always printable UTF-8 text.
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
#include "jbuf.h"
#include "jtest.h"

static void test_writer_structure(void **state) {
  (void)state;
  cs_jbuf b;
  const char *text;
  size_t n;
  cs_jbuf_init(&b, CS_JBUF_SURROGATEESCAPE);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), CS_EINVAL); /* nothing written */
  cs_jbuf_begin_object(&b);
  cs_jbuf_key_str(&b, "s", "x\"y\\z\n\t\r\b\f/");
  cs_jbuf_key_int(&b, "i", -42);
  cs_jbuf_key_int(&b, "imin", INT64_MIN);
  cs_jbuf_key_bool(&b, "t", 1);
  cs_jbuf_key_bool(&b, "f", 0);
  cs_jbuf_key_str(&b, "null-string", NULL);
  cs_jbuf_key_strn(&b, "nul", "a\0b", 3);
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
                      "{\"s\":\"x\\\"y\\\\z\\n\\t\\r\\b\\f/\",\"i\":-42,"
                      "\"imin\":-9223372036854775808,"
                      "\"t\":true,\"f\":false,\"null-string\":\"\",\"nul\":\"a\\u0000b\","
                      "\"a\":[1,null,{},[],\"\\u0001\\u007f\"]}");
  assert_int_equal(n, strlen(text));
  json_t *v = jtest_load(text, n);
  assert_non_null(v);
  assert_string_equal(json_string_value(json_object_get(v, "s")), "x\"y\\z\n\t\r\b\f/");
  assert_true(json_integer_value(json_object_get(v, "imin")) == INT64_MIN);
  assert_int_equal(json_string_length(json_object_get(v, "nul")), 3);
  assert_memory_equal(json_string_value(json_object_get(v, "nul")), "a\0b", 3);
  json_decref(v);
  cs_jbuf_raw(&b, "\n", 1);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_int_equal(text[n - 1], '\n');
  cs_jbuf_free(&b);
  assert_null(b.buf);
  assert_int_equal(b.mode, CS_JBUF_SURROGATEESCAPE); /* free keeps the mode */
  /* above INT64_MAX: valid JSON, although jansson cannot read it back */
  cs_jbuf_uint(&b, UINT64_MAX);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_string_equal(text, "18446744073709551615");
  cs_jbuf_free(&b);
}

/* A long document makes the buffer grow many times. */
static void test_growth(void **state) {
  (void)state;
  cs_jbuf b;
  const char *text;
  size_t n;
  cs_jbuf_init(&b, CS_JBUF_REPLACE);
  cs_jbuf_begin_array(&b);
  for (int k = 0; k < 20000; k++)
    cs_jbuf_str(&b, "0123456789");
  cs_jbuf_end_array(&b);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_int_equal(n, 2 + 20000 * 13 - 1); /* "0123456789", */
  json_t *v = jtest_load(text, n);
  assert_non_null(v);
  assert_int_equal(json_array_size(v), 20000);
  json_decref(v);
  cs_jbuf_free(&b);
}

/* Reference UTF-8 check, written independently of jbuf.c: decode each
 * code point and reject overlongs, surrogates and values above U+10FFFF.
 * Returns the length of the valid sequence at s (0 when there is none). */
static size_t ref_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], len, cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (n < len)
    return 0;
  for (unsigned j = 1; j < len; j++) {
    if ((s[j] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[j] & 0x3f);
  }
  static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

static int ref_valid_utf8(const unsigned char *s, size_t n) {
  for (size_t k = 0, l; k < n; k += l)
    if ((l = ref_seq(s + k, n - k)) == 0)
      return 0;
  return 1;
}

/* s with every byte outside a valid sequence replaced by U+FFFD. */
static unsigned char *ref_replace(const unsigned char *s, size_t n, size_t *out_len) {
  unsigned char *out = malloc(3 * n + 1);
  size_t o = 0;
  assert_non_null(out);
  for (size_t k = 0, l; k < n; k += l ? l : 1) {
    if ((l = ref_seq(s + k, n - k)) == 0) {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
    } else {
      memcpy(out + o, s + k, l);
      o += l;
    }
  }
  *out_len = o;
  return out;
}

/* Writes s as an array item in both modes and reads it back. */
static void round_trip(const unsigned char *s, size_t n) {
  int valid = ref_valid_utf8(s, n);
  for (int mode = 0; mode < 2; mode++) {
    cs_jbuf b;
    const char *text;
    size_t len;
    cs_jbuf_init(&b, mode ? CS_JBUF_REPLACE : CS_JBUF_SURROGATEESCAPE);
    cs_jbuf_begin_array(&b);
    cs_jbuf_strn(&b, s, n);
    cs_jbuf_end_array(&b);
    assert_int_equal(cs_jbuf_result(&b, &text, &len), 0);
    /* always printable UTF-8 text */
    assert_true(ref_valid_utf8((const unsigned char *)text, len));
    for (size_t k = 0; k < len; k++)
      assert_true((unsigned char)text[k] >= 0x20 && text[k] != 0x7f);
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, &e);
    if (mode == 0) {
      /* exact through the surrogateescape decoder; jansson alone reads
       * it exactly when it was valid UTF-8, and refuses it otherwise */
      size_t got_len;
      unsigned char *got = jtest_decode_string(text + 1, len - 2, &got_len);
      assert_non_null(got);
      assert_int_equal(got_len, n);
      assert_memory_equal(got, s, n);
      free(got);
      if (valid) {
        assert_non_null(v);
        assert_int_equal(json_string_length(json_array_get(v, 0)), n);
        assert_memory_equal(json_string_value(json_array_get(v, 0)), s, n);
      } else if (v != NULL) {
        fail_msg("stray bytes came back through strict jansson");
      }
    } else {
      size_t want_len;
      unsigned char *want = ref_replace(s, n, &want_len);
      assert_non_null(v);
      assert_int_equal(json_string_length(json_array_get(v, 0)), want_len);
      assert_memory_equal(json_string_value(json_array_get(v, 0)), want, want_len);
      free(want);
    }
    json_decref(v);
    cs_jbuf_free(&b);
  }
}

static void test_round_trip_every_byte(void **state) {
  (void)state;
  for (unsigned c = 0; c < 256; c++) {
    unsigned char s[3] = {'x', (unsigned char)c, 'y'};
    round_trip(s, sizeof s);
  }
  static const char *utf8[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                               "\xed\x9f\xbf", "\xee\x80\x80", "", "\\udcff", "\\\\udcff"};
  for (size_t k = 0; k < sizeof utf8 / sizeof utf8[0]; k++)
    round_trip((const unsigned char *)utf8[k], strlen(utf8[k]));
  /* invalid sequences that look almost right */
  static const char *bad_utf8[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                                   "\xc3", "\x80\x80", "\xf0\x9f\x98", "\\\xff", "\xff\\udcff"};
  for (size_t k = 0; k < sizeof bad_utf8 / sizeof bad_utf8[0]; k++)
    round_trip((const unsigned char *)bad_utf8[k], strlen(bad_utf8[k]));
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Random bytes, biased towards the interesting ranges (controls, quotes,
 * backslashes before "udc", UTF-8 lead and continuation bytes). */
static void test_round_trip_random(void **state) {
  (void)state;
  static const unsigned char pool[] = {0x00, 0x1f, '"', '\\', 'u', 'd', 'c', 'f', 0x7f, 0x80,
                                       0xbf, 0xc2, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  unsigned char s[96];
  int valid_seen = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = next_rand() % sizeof s;
    int mode = (int)(next_rand() % 3);
    for (size_t k = 0; k < n; k++) {
      uint64_t r = next_rand();
      if (mode == 0) /* ASCII plus pool: often valid */
        s[k] = (r & 1) ? pool[(r >> 8) % 8] : (unsigned char)(0x20 + (r >> 16) % 0x5f);
      else if (mode == 1)
        s[k] = pool[(r >> 8) % sizeof pool];
      else
        s[k] = (unsigned char)(r >> 16);
    }
    valid_seen += ref_valid_utf8(s, n);
    round_trip(s, n);
  }
  assert_true(valid_seen > 1000);
}

/* Keys go through the same escaping. */
static void test_keys_escaped(void **state) {
  (void)state;
  cs_jbuf b;
  const char *text;
  size_t n;
  cs_jbuf_init(&b, CS_JBUF_REPLACE);
  cs_jbuf_begin_object(&b);
  cs_jbuf_key_str(&b, "k\"\n\xff", "v");
  cs_jbuf_end_object(&b);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_string_equal(text, "{\"k\\\"\\n\\ufffd\":\"v\"}");
  cs_jbuf_free(&b);
}

/* reset keeps the buffer for the next value and wipes what it held (the
 * audit log builds every record in one). */
static void test_reset(void **state) {
  (void)state;
  cs_jbuf b;
  const char *text;
  size_t n;
  cs_jbuf_init(&b, CS_JBUF_SURROGATEESCAPE);
  cs_jbuf_begin_object(&b);
  cs_jbuf_key_str(&b, "secretish", "0123456789abcdef0123456789abcdef");
  cs_jbuf_key_str(&b, "plain", "x");
  cs_jbuf_end_object(&b);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_string_equal(text, "{\"secretish\":\"0123456789abcdef0123456789abcdef\",\"plain\":\"x\"}");
  size_t old = n;
  char *buf = b.buf;
  cs_jbuf_reset(&b);
  assert_ptr_equal(b.buf, buf);
  for (size_t i = 0; i < old; i++)
    assert_int_equal(buf[i], 0);
  cs_jbuf_begin_array(&b);
  cs_jbuf_str(&b, "a\"b");
  cs_jbuf_uint(&b, 7);
  cs_jbuf_end_array(&b);
  assert_int_equal(cs_jbuf_result(&b, &text, &n), 0);
  assert_string_equal(text, "[\"a\\\"b\",7]");
  assert_ptr_equal(text, buf);
  cs_jbuf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reset),
      cmocka_unit_test(test_writer_structure),
      cmocka_unit_test(test_growth),
      cmocka_unit_test(test_round_trip_every_byte),
      cmocka_unit_test(test_round_trip_random),
      cmocka_unit_test(test_keys_escaped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
