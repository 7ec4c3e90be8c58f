/*
 * shamir: Shamir's secret sharing over GF(2^8), Vault/OpenBao compatible.
 *
 * Each secret byte gets its own random polynomial of degree t-1 whose
 * constant term is that byte; share i holds the polynomial values at one
 * x coordinate, laid out as [y(byte 0) ... y(byte len-1), x].  The x
 * coordinates are public (they are part of each share) and distinct and
 * nonzero (x = 0 would be the secret itself).
 *
 * The field arithmetic never branches on, or indexes memory by, a secret
 * value: multiplication is bit-serial with masks (as in Vault's
 * sdk/helper/shamir), and the inverse is a^254 by a fixed addition chain.
 * Branches on x coordinates and lengths are fine: they are not secret.
 *
 * Splitting with n = 1 ("not split", the key itself is the one share) is
 * the caller's business; cs_shamir_split() insists on 2 <= t <= n, because
 * a threshold of 1 would make every share equal to the secret.
 */
#include "shamir.h"

#include <assert.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "crypto.h"
#include "cs_error.h"

uint8_t cs_gf_add(uint8_t a, uint8_t b) { return a ^ b; }

uint8_t cs_gf_mul(uint8_t a, uint8_t b) {
  /* Russian-peasant multiplication from the top bit of b down.  Each
   * round: r = 2r (reduced by 0x1B when the top bit falls off) plus a
   * when the current bit of b is set; both "when"s are masks, not
   * branches, so the time is independent of a and b. */
  unsigned r = 0;
  for (int i = 7; i >= 0; i--) {
    unsigned bit = (b >> i) & 1U;
    unsigned hi = (r >> 7) & 1U;
    r = ((r << 1) & 0xFFU) ^ ((0U - hi) & 0x1BU) ^ ((0U - bit) & a);
  }
  return (uint8_t)r;
}

/* a^254 = a^-1 for a != 0 (and 0 for a == 0), by the same fixed chain as
 * Vault: a^2, a^3, a^6, a^12, a^15, a^24, a^48, a^63, a^126, a^127, a^254. */
static uint8_t gf_inv(uint8_t a) {
  uint8_t b = cs_gf_mul(a, a); /* a^2 */
  uint8_t c = cs_gf_mul(a, b); /* a^3 */
  b = cs_gf_mul(c, c);         /* a^6 */
  b = cs_gf_mul(b, b);         /* a^12 */
  c = cs_gf_mul(b, c);         /* a^15 */
  b = cs_gf_mul(b, b);         /* a^24 */
  b = cs_gf_mul(b, b);         /* a^48 */
  b = cs_gf_mul(b, c);         /* a^63 */
  b = cs_gf_mul(b, b);         /* a^126 */
  b = cs_gf_mul(a, b);         /* a^127 */
  return cs_gf_mul(b, b);      /* a^254 */
}

uint8_t cs_gf_div(uint8_t a, uint8_t b) {
  assert(b != 0); /* a caller bug: combine rejects x = 0 and duplicate x first */
  return cs_gf_mul(a, gf_inv(b));
}

/* p(x) for p of degree deg with coefficients c[0..deg], by Horner. */
static uint8_t poly_eval(const uint8_t *c, unsigned deg, uint8_t x) {
  uint8_t y = c[deg];
  for (unsigned k = deg; k-- > 0;)
    y = cs_gf_mul(y, x) ^ c[k];
  return y;
}

/* Uniform random x coordinates: the first n of a Fisher-Yates shuffle of
 * 1..255.  Indices come from random bytes by masking and rejection (no
 * modulo bias).  Bytes are drawn in batches: one DRBG call per byte would
 * take the DRBG lock hundreds of times. */
static int random_xs(uint8_t perm[255]) {
  uint8_t pool[64];
  size_t avail = 0;
  int rc = 0;
  for (unsigned i = 0; i < 255; i++)
    perm[i] = (uint8_t)(i + 1);
  for (unsigned i = 254; i > 0; i--) {
    unsigned mask = i;
    mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4; /* smallest 2^k-1 >= i */
    unsigned j;
    do {
      if (avail == 0) {
        if ((rc = cs_random(pool, sizeof pool)) != 0)
          goto out;
        avail = sizeof pool;
      }
      j = pool[--avail] & mask;
    } while (j > i);
    uint8_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
out:
  mbedtls_platform_zeroize(pool, sizeof pool);
  return rc;
}

int cs_shamir_split(const uint8_t *secret, size_t len, unsigned n, unsigned t, uint8_t *out) {
  uint8_t xs[255];
  uint8_t coeff[CS_SHAMIR_MAX_SHARES]; /* one polynomial: coeff[0] = secret byte */
  size_t share_len = len + 1;
  int rc;

  if (len == 0 || t < 2 || t > n || n > CS_SHAMIR_MAX_SHARES)
    return cs_error_set(CS_EINVAL, "split needs len >= 1 and 2 <= t <= n <= 255 "
                        "(len %zu, n %u, t %u)", len, n, t);
  if (len > SIZE_MAX / n - 1)
    return cs_error_set(CS_EINVAL, "secret too long to split");
  assert(secret != NULL && out != NULL);

  if ((rc = random_xs(xs)) != 0)
    goto out;
  for (unsigned i = 0; i < n; i++)
    out[i * share_len + len] = xs[i];

  for (size_t b = 0; b < len; b++) {
    coeff[0] = secret[b];
    if ((rc = cs_random(coeff + 1, t - 1)) != 0)
      goto out;
    for (unsigned i = 0; i < n; i++)
      out[i * share_len + b] = poly_eval(coeff, t - 1, xs[i]);
  }

out:
  mbedtls_platform_zeroize(coeff, sizeof coeff);
  mbedtls_platform_zeroize(xs, sizeof xs);
  if (rc != 0)
    mbedtls_platform_zeroize(out, (size_t)n * share_len); /* no half-made shares */
  return rc;
}

/*
 * Shared body of both combine entry points.  lens == NULL means every part
 * is part_len bytes.  The checks run in a fixed order so a given bad input
 * always produces the same error: count, lengths, x = 0, duplicate x.
 *
 * Lagrange interpolation at 0: secret = sum_i y_i * l_i, where
 * l_i = prod_{m != i} x_m / (x_m - x_i) (and '-' is '+' = XOR in GF(2^8)).
 * The basis values l_i depend only on the x coordinates, so they are
 * computed once and reused for every byte.
 */
static int combine(const uint8_t *const *parts, const size_t *lens, size_t nparts,
                   size_t part_len, uint8_t *out, size_t out_cap) {
  uint8_t basis[CS_SHAMIR_MAX_SHARES];
  uint8_t seen[256 / 8];
  uint8_t acc = 0;
  int rc = 0;

  memset(basis, 0, sizeof basis);
  memset(seen, 0, sizeof seen);
  if (nparts < 2) {
    rc = cs_error_set(CS_EFEWPARTS, "got %zu share(s), need at least 2", nparts);
    goto out;
  }
  assert(parts != NULL);
  if (lens != NULL) {
    part_len = lens[0];
    for (size_t i = 1; i < nparts; i++)
      if (lens[i] != part_len) {
        rc = cs_error_set(CS_EPARTLEN, "share %zu is %zu bytes, share 0 is %zu bytes", i,
                          lens[i], part_len);
        goto out;
      }
  }
  if (part_len < 2) {
    rc = cs_error_set(CS_EPARTLEN, "shares are %zu bytes, need at least 2", part_len);
    goto out;
  }
  if (out_cap < part_len - 1) {
    rc = cs_error_set(CS_EINVAL, "output has room for %zu bytes, secret is %zu", out_cap,
                      part_len - 1);
    goto out;
  }
  for (size_t i = 0; i < nparts; i++)
    if (parts[i][part_len - 1] == 0) {
      rc = cs_error_set(CS_EXZERO, "share %zu has x coordinate 0", i);
      goto out;
    }
  /* With x in 1..255, more than 255 parts always hit this check. */
  for (size_t i = 0; i < nparts; i++) {
    uint8_t x = parts[i][part_len - 1];
    if (seen[x >> 3] & (1U << (x & 7))) {
      rc = cs_error_set(CS_EDUPX, "share %zu repeats an earlier x coordinate", i);
      goto out;
    }
    seen[x >> 3] |= (uint8_t)(1U << (x & 7));
  }

  for (size_t i = 0; i < nparts; i++) {
    uint8_t xi = parts[i][part_len - 1], l = 1;
    for (size_t m = 0; m < nparts; m++) {
      if (m == i)
        continue;
      uint8_t xm = parts[m][part_len - 1];
      l = cs_gf_mul(l, cs_gf_div(xm, xm ^ xi));
    }
    basis[i] = l;
  }
  for (size_t b = 0; b < part_len - 1; b++) {
    acc = 0;
    for (size_t i = 0; i < nparts; i++)
      acc ^= cs_gf_mul(basis[i], parts[i][b]);
    out[b] = acc;
  }

out:
  /* The basis is derived from public x values, but wiping it costs
   * nothing and keeps the rule simple: nothing from a combine survives. */
  mbedtls_platform_zeroize(basis, sizeof basis);
  mbedtls_platform_zeroize(&acc, sizeof acc);
  mbedtls_platform_zeroize(seen, sizeof seen);
  return rc;
}

int cs_shamir_combine(const uint8_t *const *parts, size_t nparts, size_t part_len, uint8_t *out) {
  /* The caller promises part_len-1 bytes of room in out. */
  return combine(parts, NULL, nparts, part_len, out, part_len > 0 ? part_len - 1 : 0);
}

int cs_shamir_combine_var(const uint8_t *const *parts, const size_t *lens, size_t nparts,
                          uint8_t *out, size_t out_cap) {
  return combine(parts, lens, nparts, 0, out, out_cap);
}
