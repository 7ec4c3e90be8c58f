/*
 * shamir: Shamir's secret sharing over GF(2^8) with the AES polynomial
 * (x^8+x^4+x^3+x+1, 0x11B), share layout compatible with Vault/OpenBao:
 * the y byte of every secret byte, then ONE x-coordinate byte last, so a
 * 32-byte secret gives 33-byte shares.
 *
 * The field arithmetic is constant time: bit-serial multiplication with no
 * table lookups indexed by secret bytes and no secret-dependent branches;
 * the inverse is a^254 by a fixed chain of multiplications.
 */
#ifndef CS_SHAMIR_H
#define CS_SHAMIR_H

#include <stddef.h>
#include <stdint.h>

#define CS_SHAMIR_MAX_SHARES 255

uint8_t cs_gf_add(uint8_t a, uint8_t b);
uint8_t cs_gf_mul(uint8_t a, uint8_t b);
/* a / b; b must not be 0 (asserts). */
uint8_t cs_gf_div(uint8_t a, uint8_t b);

/*
 * Splits `secret` (len >= 1) into n shares of len+1 bytes written to
 * out[i*(len+1) .. ]: 2 <= t <= n <= 255, distinct random nonzero x.
 * Returns 0, CS_EINVAL for bad bounds, CS_ECRYPTO if randomness failed.
 * The caller owns `out` (n*(len+1) bytes) and should wipe it.
 */
int cs_shamir_split(const uint8_t *secret, size_t len, unsigned n, unsigned t, uint8_t *out)
    __attribute__((warn_unused_result));

/*
 * Reconstructs the secret from `nparts` shares of `part_len` bytes each
 * into out (part_len-1 bytes).  Errors: CS_EFEWPARTS (< 2 parts),
 * CS_EPARTLEN (part_len < 2; or use cs_shamir_combine_var for unequal
 * lengths), CS_EXZERO, CS_EDUPX.  With fewer than t genuine shares the
 * output is a wrong secret, not an error: callers verify it (GCM tag).
 */
int cs_shamir_combine(const uint8_t *const *parts, size_t nparts, size_t part_len, uint8_t *out)
    __attribute__((warn_unused_result));

/* Same with a length per part: unequal lengths are CS_EPARTLEN. */
int cs_shamir_combine_var(const uint8_t *const *parts, const size_t *lens, size_t nparts,
                          uint8_t *out, size_t out_cap) __attribute__((warn_unused_result));

#endif
