/*
 * Unit tests for common/duration.c, the one duration parser (config, CLI
 * options, HTTP API): the grammar, overflow refused (never wrapped), output
 * untouched on failure, bounded messages, and format/parse round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cs_error.h"
#include "duration.h"

#define REFUSED UINT64_MAX

static void test_parse(void **state) {
  (void)state;
  static const struct { const char *s; uint64_t v; } cases[] = {
    {"0", 0}, {"90", 90}, {"90s", 90}, {"2m", 120}, {"24h", 86400}, {"7d", 604800},
    {"2w", 1209600}, {"1h30m", 5400}, {"1w1d1h1m1s", 694861}, {"0s", 0}, {"00010s", 10},
    {"18446744073709551614", 18446744073709551614ull},
    {"18446744073709551615", REFUSED}, /* the marker: checked below */
    {"18446744073709551616", REFUSED}, {"30500568904944w", REFUSED},
    {"213503982334601d99999999999h", REFUSED},
    {"", REFUSED}, {"s", REFUSED}, {"5ms", REFUSED}, {"1.5h", REFUSED}, {"1m1h", REFUSED},
    {"1h1h", REFUSED}, {"1h30", REFUSED}, {"-5s", REFUSED}, {"+5s", REFUSED}, {" 5s", REFUSED},
    {"5s ", REFUSED}, {"5S", REFUSED}, {"5y", REFUSED}, {"1d1w", REFUSED}, {"5s\n", REFUSED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t got = 12345;
    int rc = cs_duration_parse(cases[i].s, &got);
    if (strcmp(cases[i].s, "18446744073709551615") == 0) {
      assert_int_equal(rc, 0);
      assert_true(got == UINT64_MAX);
      continue;
    }
    if (cases[i].v == REFUSED) {
      if (rc != CS_EINVAL || got != 12345)
        fail_msg("\"%s\": expected a refusal, got %d (%llu)", cases[i].s, rc,
                 (unsigned long long)got);
    } else if (rc != 0 || got != cases[i].v) {
      fail_msg("\"%s\": expected %llu, got %d / %llu", cases[i].s,
               (unsigned long long)cases[i].v, rc, (unsigned long long)got);
    }
  }
  uint64_t got;
  assert_int_equal(cs_duration_parse(NULL, &got), CS_EINVAL);
  assert_int_equal(cs_duration_parse("1m1h", &got), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "largest first"));
  /* Many groups whose sum overflows: refused, not wrapped. */
  assert_int_equal(cs_duration_parse("30000000000000w30000000000000d1h", &got), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "too large"));
  static char big[10000];
  memset(big, '9', sizeof big - 1);
  assert_int_equal(cs_duration_parse(big, &got), CS_EINVAL);
  assert_true(strlen(cs_error_message(CS_EINVAL)) < 200);
}

static void test_format(void **state) {
  (void)state;
  char b[64];
  cs_duration_format(0, b, sizeof b);
  assert_string_equal(b, "0s");
  cs_duration_format(93784, b, sizeof b);
  assert_string_equal(b, "1d2h3m4s");
  cs_duration_format(1209600, b, sizeof b);
  assert_string_equal(b, "14d");
  cs_duration_format(UINT64_MAX, b, sizeof b);
  uint64_t back;
  assert_int_equal(cs_duration_parse(b, &back), 0);
  assert_true(back == UINT64_MAX);
  for (uint64_t v = 0; v < 200000; v += 997) {
    cs_duration_format(v, b, sizeof b);
    assert_int_equal(cs_duration_parse(b, &back), 0);
    assert_true(back == v);
  }
  cs_duration_format(93784, b, 4); /* truncated, still a string */
  assert_true(strlen(b) < 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse),
    cmocka_unit_test(test_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
