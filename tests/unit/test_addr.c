/*
 * Unit tests for common/addr.c, the one HOST:PORT parser (listener, config,
 * raft transport, client library, bench): the accepted forms, every kind
 * of refusal with a message that says which, bounded messages for hostile
 * input, and format(parse(s)) == s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "cs_error.h"

static void test_accepted(void **state) {
  (void)state;
  static const struct { const char *s, *host; unsigned port; int br; } ok[] = {
    { "127.0.0.1:7200", "127.0.0.1", 7200, 0 },
    { "localhost:1", "localhost", 1, 0 },
    { "n1.node.custos:65535", "n1.node.custos", 65535, 0 },
    { "[::1]:7200", "::1", 7200, 1 },
    { "[fe80::1%eth0]:80", "fe80::1%eth0", 80, 1 },
    { "0.0.0.0:07200", "0.0.0.0", 7200, 0 }, /* leading zero: still 5 digits at most */
    { "[::]:9", "::", 9, 1 },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    cs_addr a;
    assert_int_equal(cs_addr_parse(ok[i].s, &a), 0);
    assert_string_equal(a.host, ok[i].host);
    assert_int_equal(a.port, ok[i].port);
    assert_int_equal(a.bracketed, ok[i].br);
    char back[CS_ADDR_STR_MAX];
    cs_addr_format(&a, back, sizeof back);
    if (i != 5)
      assert_string_equal(back, ok[i].s);
  }
}

static void test_refused(void **state) {
  (void)state;
  static const struct { const char *s, *why; } bad[] = {
    { "", "empty" },
    { "127.0.0.1", "no port" },
    { ":7200", "empty host" },
    { "[]:7200", "empty host" },
    { "::1:7200", "more than one ':'" },
    { "[::1]7200", "expected [IPv6]:PORT" },
    { "[::1:7200", "expected [IPv6]:PORT" },
    { "host:", "port must be" },
    { "host:0", "port must be" },
    { "host:65536", "port must be" },
    { "host:123456", "port must be" },
    { "host:+80", "port must be" },
    { "host:-80", "port must be" },
    { "host: 80", "port must be" },
    { "host:80 ", "port must be" },
    { "ho st:80", "bad character" },
    { "ho\x01st:80", "bad character" },
    { "h]ost:80", "bad character" },
    { "a/b:80", "bad character" },
    { "h\xc3\xa9:80", "bad character" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cs_addr a;
    memset(&a, 0x55, sizeof a);
    assert_int_equal(cs_addr_parse(bad[i].s, &a), CS_EINVAL);
    const char *m = cs_error_message(CS_EINVAL);
    if (strstr(m, bad[i].why) == NULL)
      fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].s, m, bad[i].why);
    assert_int_equal(a.port, 0); /* zeroed */
    assert_int_equal(a.host[0], 0);
  }
  cs_addr a;
  assert_int_equal(cs_addr_parse(NULL, &a), CS_EINVAL);
}

static void test_hostile(void **state) {
  (void)state;
  /* A host longer than any DNS name, and a huge string: refused, with a
   * bounded message. */
  static char big[100000];
  memset(big, 'a', sizeof big - 1);
  cs_addr a;
  assert_int_equal(cs_addr_parse(big, &a), CS_EINVAL);
  assert_true(strlen(cs_error_message(CS_EINVAL)) < 200);
  big[CS_ADDR_HOST_MAX] = ':';
  big[CS_ADDR_HOST_MAX + 1] = '1';
  big[CS_ADDR_HOST_MAX + 2] = '\0';
  assert_int_equal(cs_addr_parse(big, &a), 0); /* exactly the longest host */
  assert_int_equal(strlen(a.host), CS_ADDR_HOST_MAX);
  char back[CS_ADDR_STR_MAX];
  cs_addr_format(&a, back, sizeof back);
  assert_string_equal(back, big);
  memmove(big + 1, big, CS_ADDR_HOST_MAX + 3);
  big[0] = 'a';
  assert_int_equal(cs_addr_parse(big, &a), CS_EINVAL); /* one byte longer */
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "host too long"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_accepted),
    cmocka_unit_test(test_refused),
    cmocka_unit_test(test_hostile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
