/* Unit tests of server/core/ratelimit: burst, refill, per host not per
 * port, IPv6, bounded slots, rate change, a clock that goes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cs_error.h"
#include "ratelimit.h"

static void test_burst_and_refill(void **state) {
  (void)state;
  cs_ratelimit *rl;
  assert_int_equal(cs_ratelimit_new(&rl, 3, 16), 0);
  uint64_t t = 1000000;
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:4000", t), 0);
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:4001", t), CS_ERATELIMIT);
  assert_non_null(strstr(cs_error_message(CS_ERATELIMIT), "retry in 20 s"));
  /* Another host is not affected. */
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.2:4000", t), 0);
  /* One token per 20 s at 3 per minute. */
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:1", t + 19999), CS_ERATELIMIT);
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:1", t + 20000), 0);
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:1", t + 20000), CS_ERATELIMIT);
  /* Never more than the burst, however long it was idle. */
  t += 3600 * 1000;
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:1", t), 0);
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:1", t), CS_ERATELIMIT);
  /* A clock that went back refills nothing and does not wrap. */
  assert_int_equal(cs_ratelimit_take(rl, "10.0.0.1:1", t - 100000), CS_ERATELIMIT);
  cs_ratelimit_free(rl);
}

static void test_ipv6_and_odd_names(void **state) {
  (void)state;
  cs_ratelimit *rl;
  assert_int_equal(cs_ratelimit_new(&rl, 1, 8), 0);
  assert_int_equal(cs_ratelimit_take(rl, "[::1]:5000", 0), 0);
  assert_int_equal(cs_ratelimit_take(rl, "[::1]:5001", 0), CS_ERATELIMIT);
  assert_int_equal(cs_ratelimit_take(rl, "[::2]:5000", 0), 0);
  /* Unusual forms: an unbracketed v6 literal, no port, empty, NULL, very
   * long. */
  assert_int_equal(cs_ratelimit_take(rl, "fe80::1", 0), 0);
  assert_int_equal(cs_ratelimit_take(rl, "fe80::1", 0), CS_ERATELIMIT);
  assert_int_equal(cs_ratelimit_take(rl, "hostonly", 0), 0);
  assert_int_equal(cs_ratelimit_take(rl, "hostonly:1", 0), CS_ERATELIMIT);
  assert_int_equal(cs_ratelimit_take(rl, "", 0), 0);
  assert_int_equal(cs_ratelimit_take(rl, NULL, 0), CS_ERATELIMIT);
  char lng[300];
  memset(lng, 'a', sizeof lng - 1);
  lng[sizeof lng - 1] = '\0';
  assert_int_equal(cs_ratelimit_take(rl, lng, 0), 0);
  assert_int_equal(cs_ratelimit_take(rl, lng, 0), CS_ERATELIMIT);
  cs_ratelimit_free(rl);
}

static void test_bounded_slots(void **state) {
  (void)state;
  cs_ratelimit *rl;
  assert_int_equal(cs_ratelimit_new(&rl, 1, 4), 0);
  char a[32];
  /* 100 hosts through 4 slots: each newcomer gets a bucket (the idlest is
   * reused), nothing grows. */
  for (int i = 0; i < 100; i++) {
    snprintf(a, sizeof a, "10.1.0.%d:1", i);
    assert_int_equal(cs_ratelimit_take(rl, a, (uint64_t)i), 0);
  }
  /* The most recent ones are still limited. */
  assert_int_equal(cs_ratelimit_take(rl, "10.1.0.99:2", 100), CS_ERATELIMIT);
  assert_int_equal(cs_ratelimit_take(rl, "10.1.0.97:2", 100), CS_ERATELIMIT);
  cs_ratelimit_set_rate(rl, 120); /* 2 per second, burst 120 */
  assert_int_equal(cs_ratelimit_take(rl, "10.1.0.99:2", 600), 0);
  cs_ratelimit_free(rl);
  assert_int_equal(cs_ratelimit_new(&rl, 0, 4), CS_EINVAL);
  assert_int_equal(cs_ratelimit_new(&rl, 1, 0), CS_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_and_refill),
      cmocka_unit_test(test_ipv6_and_odd_names),
      cmocka_unit_test(test_bounded_slots),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
