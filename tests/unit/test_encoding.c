/*
 * Unit tests for common/encoding.c: hex and base64 of key material.  Known
 * answers (RFC 4648), every byte value as a digit, canonical forms only
 * (no whitespace, no stray padding), the output capacity respected, and a
 * failed decode leaving no partial secret behind.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cs_error.h"
#include "encoding.h"

/* ---- hex ------------------------------------------------------------------- */

static void test_hex(void **state) {
  (void)state;
  char h[2 * 256 + 1];
  uint8_t bin[256], back[256];
  size_t n;

  const uint8_t known[] = {0x00, 0x01, 0x09, 0x0a, 0x7f, 0x80, 0xab, 0xff};
  cs_hex_encode(known, sizeof known, h);
  assert_string_equal(h, "0001090a7f80abff");
  cs_hex_encode(known, 0, h);
  assert_string_equal(h, "");

  for (unsigned i = 0; i < 256; i++)
    bin[i] = (uint8_t)i;
  cs_hex_encode(bin, 256, h);
  assert_int_equal(cs_hex_decode(h, back, sizeof back, &n), 0);
  assert_int_equal(n, 256);
  assert_memory_equal(back, bin, 256);

  assert_int_equal(cs_hex_decode("ABCDEF", back, sizeof back, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(back[0], 0xab);
  assert_int_equal(back[2], 0xef);
  assert_int_equal(cs_hex_decode("", back, 0, &n), 0);
  assert_int_equal(n, 0);

  /* Every byte value as the first digit: accepted exactly when a hex digit. */
  for (unsigned c = 1; c < 256; c++) {
    char in[3] = {(char)c, '0', 0};
    int rc = cs_hex_decode(in, back, sizeof back, &n);
    if (isxdigit((int)c)) {
      assert_int_equal(rc, 0);
      assert_int_equal(back[0] >> 4, c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
    } else {
      assert_int_equal(rc, CS_EINVAL);
    }
    in[0] = '0';
    in[1] = (char)c;
    assert_int_equal(cs_hex_decode(in, back, sizeof back, &n), isxdigit((int)c) ? 0 : CS_EINVAL);
  }

  assert_int_equal(cs_hex_decode("abc", back, sizeof back, &n), CS_EINVAL);  /* odd */
  assert_int_equal(cs_hex_decode("0011", back, 1, &n), CS_EINVAL);          /* over cap */
  assert_int_equal(cs_hex_decode("00 1", back, sizeof back, &n), CS_EINVAL);
  back[0] = 0x55;
  assert_int_equal(cs_hex_decode("ffzz", back, sizeof back, &n), CS_EINVAL);
  assert_int_equal(back[0], 0); /* partial output wiped */
}

/* ---- base64 ---------------------------------------------------------------- */

static void test_b64(void **state) {
  (void)state;
  /* RFC 4648 section 10. */
  static const char *const vec[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                       {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
  char enc[128];
  uint8_t dec[128];
  size_t n;
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
    size_t len = strlen(vec[i][0]);
    memset(enc, 'X', sizeof enc);
    cs_b64_encode((const uint8_t *)vec[i][0], len, enc);
    assert_string_equal(enc, vec[i][1]);
    assert_int_equal(cs_b64_decode(vec[i][1], dec, sizeof dec, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(dec, vec[i][0], len);
  }

  uint8_t bin[64];
  for (size_t i = 0; i < sizeof bin; i++)
    bin[i] = (uint8_t)(i * 151 + 7);
  for (size_t len = 0; len <= sizeof bin; len++) {
    cs_b64_encode(bin, len, enc);
    assert_int_equal(strlen(enc), 4 * ((len + 2) / 3));
    assert_int_equal(cs_b64_decode(enc, dec, len, &n), 0); /* exact cap is enough */
    assert_int_equal(n, len);
    assert_memory_equal(dec, bin, len);
    if (len > 0)
      assert_int_equal(cs_b64_decode(enc, dec, len - 1, &n), CS_EINVAL); /* cap respected */
  }

  static const char *const bad[] = {"Zm9v YmFy", "Zm9vYmFy\n", "Zm9v\r\nYmFy", "Zm9",
                                    "Zm9v!A==",  "=Zm9",       "Zm=v",         "Z===",
                                    "Zm9vYg=",   "Zm9vYg==Zm9v", "-_-_",       "Zm9\x80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cs_b64_decode(bad[i], dec, sizeof dec, &n), CS_EINVAL);
}

static void test_lengths(void **state) {
  (void)state;
  assert_int_equal(CS_HEX_LEN(0), 0);
  assert_int_equal(CS_HEX_LEN(33), 66);
  assert_int_equal(CS_B64_LEN(0), 0);
  assert_int_equal(CS_B64_LEN(1), 4);
  assert_int_equal(CS_B64_LEN(32), 44);
  assert_int_equal(CS_B64_LEN(33), 44);
  /* A failed base64 decode wipes what it may have written. */
  uint8_t out[16];
  size_t n;
  memset(out, 0x55, sizeof out);
  assert_int_equal(cs_b64_decode("Zm9vYmF!", out, sizeof out, &n), CS_EINVAL);
  for (size_t i = 0; i < sizeof out; i++)
    assert_true(out[i] == 0 || out[i] == 0x55);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hex),
    cmocka_unit_test(test_b64),
    cmocka_unit_test(test_lengths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
