/*
 * Unit tests for shamir: field arithmetic against Vault's vectors and a
 * naive reference, every subset of a small split, many random (n, t),
 * bounds and the distinct error of every bad combine input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "cs_error.h"
#include "secmem.h"
#include "shamir.h"

/* Carry-less multiply then reduce mod 0x11B, the textbook way. */
static uint8_t ref_mul(uint8_t a, uint8_t b) {
  unsigned p = 0;
  for (int i = 0; i < 8; i++)
    if (b & (1U << i))
      p ^= (unsigned)a << i;
  for (int i = 14; i >= 8; i--)
    if (p & (1U << i))
      p ^= 0x11BU << (i - 8);
  return (uint8_t)p;
}

static unsigned rnd_below(unsigned n) {
  uint32_t r;
  assert_int_equal(cs_random(&r, sizeof r), 0);
  return r % n; /* bias irrelevant for choosing test cases */
}

static void test_vault_vectors(void **state) {
  (void)state;
  assert_int_equal(cs_gf_mul(3, 7), 9);
  assert_int_equal(cs_gf_mul(0, 7), 0);
  assert_int_equal(cs_gf_mul(3, 0), 0);
  assert_int_equal(cs_gf_div(6, 3), 2);
  assert_int_equal(cs_gf_div(0, 7), 0);
  assert_int_equal(cs_gf_add(3, 4), 7);
  assert_int_equal(cs_gf_add(16, 16), 0);
  /* AES (FIPS-197 4.2): {57} * {83} = {c1}, {57} * {13} = {fe}. */
  assert_int_equal(cs_gf_mul(0x57, 0x83), 0xc1);
  assert_int_equal(cs_gf_mul(0x57, 0x13), 0xfe);
}

static void test_mul_matches_reference(void **state) {
  (void)state;
  for (unsigned a = 0; a < 256; a++)
    for (unsigned b = 0; b < 256; b++)
      assert_int_equal(cs_gf_mul((uint8_t)a, (uint8_t)b), ref_mul((uint8_t)a, (uint8_t)b));
}

static void test_mul_div_inverse(void **state) {
  (void)state;
  for (unsigned a = 1; a < 256; a++) {
    assert_int_equal(cs_gf_mul((uint8_t)a, cs_gf_div(1, (uint8_t)a)), 1);
    for (unsigned b = 1; b < 256; b++) {
      uint8_t p = cs_gf_mul((uint8_t)a, (uint8_t)b);
      assert_int_equal(cs_gf_div(p, (uint8_t)b), a);
      assert_int_equal(cs_gf_mul(cs_gf_div((uint8_t)a, (uint8_t)b), (uint8_t)b), a);
    }
  }
}

/* Shares of a hand-made polynomial must combine to its constant term:
 * guards the share layout ([y..., x]) and interpolation independently
 * of split. */
static void test_fixed_vector(void **state) {
  (void)state;
  uint8_t out[1];
  /* f(x) = 0x42 + 0x17 x: f(1) = 0x55, f(2) = 0x42 ^ 0x2e = 0x6c. */
  uint8_t s1[2] = {0x55, 1}, s2[2] = {0x6c, 2};
  const uint8_t *p2[2] = {s1, s2};
  assert_int_equal(cs_shamir_combine(p2, 2, 2, out), 0);
  assert_int_equal(out[0], 0x42);
  /* g(x) = 0x42 + x + x^2: g(1) = 0x42, g(2) = 0x42^2^4 = 0x44,
   * g(3) = 0x42^3^5 = 0x44 (3*3 = x^2+1 = 5 in GF(2^8)). */
  uint8_t t1[2] = {0x42, 1}, t2[2] = {0x44, 2}, t3[2] = {0x44, 3};
  const uint8_t *p3[3] = {t3, t1, t2};
  assert_int_equal(cs_shamir_combine(p3, 3, 2, out), 0);
  assert_int_equal(out[0], 0x42);
  /* Two of them alone describe a line through other points: wrong secret. */
  assert_int_equal(cs_shamir_combine(p3, 2, 2, out), 0);
  assert_int_not_equal(out[0], 0x42);
}

/* Walks every subset of {0..n-1} (bitmask) and checks that subsets of size
 * >= t reconstruct and subsets of size t-1 do not. */
static void test_every_subset_5_3(void **state) {
  (void)state;
  enum { N = 5, T = 3, LEN = 32 };
  uint8_t secret[LEN], shares[N * (LEN + 1)], out[LEN];
  assert_int_equal(cs_random(secret, LEN), 0);
  assert_int_equal(cs_shamir_split(secret, LEN, N, T, shares), 0);
  int good = 0, bad = 0;
  for (unsigned mask = 1; mask < (1U << N); mask++) {
    const uint8_t *parts[N];
    size_t k = 0;
    for (unsigned i = 0; i < N; i++)
      if (mask & (1U << i))
        parts[k++] = shares + i * (LEN + 1);
    if (k < T - 1 || k < 2)
      continue;
    assert_int_equal(cs_shamir_combine(parts, k, LEN + 1, out), 0);
    if (k >= T) {
      assert_memory_equal(out, secret, LEN);
      good++;
    } else {
      assert_memory_not_equal(out, secret, LEN);
      bad++;
    }
  }
  assert_int_equal(good, 10 + 5 + 1); /* C(5,3) + C(5,4) + C(5,5) */
  assert_int_equal(bad, 10);          /* C(5,2) */
}

static void check_roundtrip(unsigned n, unsigned t, size_t len) {
  uint8_t *secret = malloc(len), *shares = malloc(n * (len + 1)), *out = malloc(len);
  const uint8_t *parts[255];
  unsigned idx[255];
  assert_non_null(secret);
  assert_non_null(shares);
  assert_non_null(out);
  assert_int_equal(cs_random(secret, len), 0);
  assert_int_equal(cs_shamir_split(secret, len, n, t, shares), 0);

  /* A random t-subset in random order. */
  for (unsigned i = 0; i < n; i++)
    idx[i] = i;
  for (unsigned i = n - 1; i > 0; i--) {
    unsigned j = rnd_below(i + 1), tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
  }
  for (unsigned i = 0; i < t; i++)
    parts[i] = shares + idx[i] * (len + 1);
  assert_int_equal(cs_shamir_combine(parts, t, len + 1, out), 0);
  assert_memory_equal(out, secret, len);

  /* All n shares as well. */
  for (unsigned i = 0; i < n; i++)
    parts[i] = shares + i * (len + 1);
  assert_int_equal(cs_shamir_combine(parts, n, len + 1, out), 0);
  assert_memory_equal(out, secret, len);

  cs_wipe(shares, n * (len + 1));
  free(secret);
  free(shares);
  free(out);
}

static void test_roundtrip_many(void **state) {
  (void)state;
  static const unsigned fixed[][2] = {{2, 2}, {3, 2}, {3, 3}, {5, 3}, {10, 7},
                                      {255, 2}, {255, 128}, {255, 255}};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    check_roundtrip(fixed[i][0], fixed[i][1], 32);
    check_roundtrip(fixed[i][0], fixed[i][1], 1);
  }
  for (int r = 0; r < 200; r++) {
    unsigned n = 2 + rnd_below(40);
    unsigned t = 2 + rnd_below(n - 1);
    check_roundtrip(n, t, 1 + rnd_below(64));
  }
}

static void test_x_distinct_nonzero(void **state) {
  (void)state;
  uint8_t secret[4] = {1, 2, 3, 4};
  static uint8_t shares[255 * 5];
  /* n = 255 must use every nonzero x exactly once. */
  assert_int_equal(cs_shamir_split(secret, 4, 255, 3, shares), 0);
  unsigned char seen[256] = {0};
  for (unsigned i = 0; i < 255; i++) {
    uint8_t x = shares[i * 5 + 4];
    assert_int_not_equal(x, 0);
    assert_int_equal(seen[x], 0);
    seen[x] = 1;
  }
  /* Small n: distinct, nonzero, and not always the same coordinates. */
  unsigned first_x_seen[256] = {0};
  for (int r = 0; r < 200; r++) {
    assert_int_equal(cs_shamir_split(secret, 4, 5, 2, shares), 0);
    unsigned char s[256] = {0};
    for (unsigned i = 0; i < 5; i++) {
      uint8_t x = shares[i * 5 + 4];
      assert_int_not_equal(x, 0);
      assert_int_equal(s[x], 0);
      s[x] = 1;
    }
    first_x_seen[shares[4]]++;
  }
  unsigned distinct = 0;
  for (int x = 0; x < 256; x++)
    distinct += first_x_seen[x] != 0;
  assert_true(distinct > 50); /* 200 draws from 255 values */
}

static void test_split_bounds(void **state) {
  (void)state;
  uint8_t secret[8] = {0}, shares[256 * 9];
  assert_int_equal(cs_shamir_split(secret, 8, 5, 1, shares), CS_EINVAL);   /* t = 1 */
  assert_int_equal(cs_shamir_split(secret, 8, 3, 4, shares), CS_EINVAL);   /* t > n */
  assert_int_equal(cs_shamir_split(secret, 8, 256, 3, shares), CS_EINVAL); /* n > 255 */
  assert_int_equal(cs_shamir_split(secret, 0, 5, 3, shares), CS_EINVAL);   /* len = 0 */
  assert_int_equal(cs_shamir_split(secret, 8, 1, 1, shares), CS_EINVAL);   /* n = 1 */
  assert_int_equal(cs_shamir_split(secret, 8, 0, 0, shares), CS_EINVAL);
  assert_int_equal(cs_shamir_split(secret, 8, 255, 255, shares), 0);
}

static void test_combine_errors(void **state) {
  (void)state;
  uint8_t secret[16], shares[3 * 17], out[32];
  assert_int_equal(cs_random(secret, sizeof secret), 0);
  assert_int_equal(cs_shamir_split(secret, 16, 3, 2, shares), 0);
  const uint8_t *parts[3] = {shares, shares + 17, shares + 34};

  assert_int_equal(cs_shamir_combine(parts, 0, 17, out), CS_EFEWPARTS);
  assert_int_equal(cs_shamir_combine(parts, 1, 17, out), CS_EFEWPARTS);
  assert_int_equal(cs_shamir_combine(parts, 2, 1, out), CS_EPARTLEN);
  assert_int_equal(cs_shamir_combine(parts, 2, 0, out), CS_EPARTLEN);

  size_t lens[3] = {17, 16, 17};
  assert_int_equal(cs_shamir_combine_var(parts, lens, 3, out, sizeof out), CS_EPARTLEN);
  lens[1] = 17;
  assert_int_equal(cs_shamir_combine_var(parts, lens, 3, out, 15), CS_EINVAL);
  assert_int_equal(cs_shamir_combine_var(parts, lens, 3, out, sizeof out), 0);
  assert_memory_equal(out, secret, 16);
  assert_int_equal(cs_shamir_combine_var(parts, lens, 1, out, sizeof out), CS_EFEWPARTS);

  /* x = 0 */
  uint8_t zero[17];
  memcpy(zero, shares + 17, 17);
  zero[16] = 0;
  const uint8_t *pz[3] = {shares, zero, shares + 34};
  assert_int_equal(cs_shamir_combine(pz, 3, 17, out), CS_EXZERO);
  assert_string_not_equal(cs_error_message(CS_EXZERO), cs_strerror(CS_EXZERO));

  /* duplicate x (even with different y) */
  uint8_t dup[17];
  memcpy(dup, shares, 17);
  dup[0] ^= 1;
  const uint8_t *pd[3] = {shares, shares + 17, dup};
  assert_int_equal(cs_shamir_combine(pd, 3, 17, out), CS_EDUPX);
  const uint8_t *pd2[2] = {shares, shares};
  assert_int_equal(cs_shamir_combine(pd2, 2, 17, out), CS_EDUPX);

  /* Precedence: x = 0 is reported before a duplicate. */
  const uint8_t *pzd[4] = {shares, shares, zero, shares + 34};
  assert_int_equal(cs_shamir_combine(pzd, 4, 17, out), CS_EXZERO);

  /* All four codes are distinct. */
  int codes[4] = {CS_EFEWPARTS, CS_EPARTLEN, CS_EXZERO, CS_EDUPX};
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++)
      assert_int_not_equal(codes[i], codes[j]);
}

int main(void) {
  if (cs_crypto_init() != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vault_vectors),     cmocka_unit_test(test_mul_matches_reference),
      cmocka_unit_test(test_mul_div_inverse),   cmocka_unit_test(test_fixed_vector),
      cmocka_unit_test(test_every_subset_5_3),  cmocka_unit_test(test_roundtrip_many),
      cmocka_unit_test(test_x_distinct_nonzero), cmocka_unit_test(test_split_bounds),
      cmocka_unit_test(test_combine_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
