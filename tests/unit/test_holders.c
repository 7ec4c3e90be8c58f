/*
 * Unit tests for server/core/holders: the checks made before an init
 * generates anything (count, each recipient), and that each encrypted share
 * opens with its holder's identity only, to the share's hex and a newline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "age.h"
#include "crypto.h"
#include "cs_error.h"
#include "holders.h"

static void make(cs_age_identity *ids, char rs[][CS_AGE_RECIPIENT_STRLEN + 1], char **ptrs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    cs_age_recipient r;
    assert_int_equal(cs_age_identity_generate(&ids[i]), 0);
    cs_age_identity_to_recipient(&ids[i], &r);
    cs_age_recipient_format(&r, rs[i]);
    ptrs[i] = rs[i];
  }
}

static void test_check(void **state) {
  (void)state;
  cs_age_identity ids[3];
  char rs[3][CS_AGE_RECIPIENT_STRLEN + 1], *p[3];
  make(ids, rs, p, 3);
  assert_int_equal(cs_holders_check(p, 0, NULL, 5), 0);
  assert_int_equal(cs_holders_check(p, 3, "", 3), 0);
  assert_int_equal(cs_holders_check(p, 3, rs[0], 3), 0);
  assert_int_equal(cs_holders_check(p, 2, NULL, 3), CS_EINVAL);
  assert_string_equal(cs_error_message(CS_EINVAL), "2 age recipients for 3 key shares: give one per share");
  char bad[] = "age1notarecipient";
  char *q[3] = {p[0], bad, p[2]};
  assert_int_equal(cs_holders_check(q, 3, NULL, 3), CS_EAGEKEY);
  assert_string_equal(cs_error_message(CS_EAGEKEY), "recipient 2 is not an age recipient (age1...)");
  assert_int_equal(cs_holders_check(p, 3, "AGE-SECRET-KEY-1", 3), CS_EAGEKEY);
  assert_string_equal(cs_error_message(CS_EAGEKEY), "root token recipient is not an age recipient (age1...)");
  for (int i = 0; i < 3; i++)
    cs_age_identity_wipe(&ids[i]);
}

static void test_encrypt(void **state) {
  (void)state;
  cs_age_identity ids[3];
  char rs[3][CS_AGE_RECIPIENT_STRLEN + 1], *p[3], *out[3];
  uint8_t shares[3 * 33];
  make(ids, rs, p, 3);
  for (size_t i = 0; i < sizeof shares; i++)
    shares[i] = (uint8_t)(i * 13 + 1);
  assert_int_equal(cs_holders_encrypt_shares(p, 3, shares, 33, out), 0);
  for (int i = 0; i < 3; i++) {
    char want[68];
    uint8_t *pt;
    size_t n;
    cs_hex_encode(shares + 33 * i, 33, want);
    want[66] = '\n';
    assert_memory_equal(out[i], "-----BEGIN AGE ENCRYPTED FILE-----\n", 35);
    assert_int_equal(cs_age_decrypt(&ids[i], 1, (uint8_t *)out[i], strlen(out[i]), &pt, &n), 0);
    assert_int_equal(n, 67);
    assert_memory_equal(pt, want, 67);
    cs_age_free(pt, n);
    /* Another holder's identity does not open it. */
    assert_int_equal(cs_age_decrypt(&ids[(i + 1) % 3], 1, (uint8_t *)out[i], strlen(out[i]), &pt, &n),
                     CS_EAGENOMATCH);
  }
  cs_holders_free(out, 3);
  char *tok;
  uint8_t *pt;
  size_t n;
  assert_int_equal(cs_holders_encrypt_text(rs[1], "cst_root_token", &tok), 0);
  assert_int_equal(cs_age_decrypt(&ids[1], 1, (uint8_t *)tok, strlen(tok), &pt, &n), 0);
  assert_int_equal(n, 15);
  assert_memory_equal(pt, "cst_root_token\n", 15);
  cs_age_free(pt, n);
  free(tok);
  for (int i = 0; i < 3; i++)
    cs_age_identity_wipe(&ids[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_encrypt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
