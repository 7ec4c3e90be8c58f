/*
 * keyring: the data keys of the barrier, one AES-256 key per term.
 *
 * Term 1 is created at init; every rotation appends term active+1, which
 * becomes active.  Older terms are kept forever so that data written under
 * them stays readable without re-encryption.  All keys live in ONE locked
 * allocation (secmem), so a keyring of 10,000 terms is one mlock'ed block,
 * not 10,000 pages.
 *
 * Each term counts the encryptions made under it (for automatic rotation).
 * The counters are atomics bumped in memory; they are persisted in batches
 * when the keyring is written (see seal/change.c), never one durable write per
 * encryption.
 *
 * Serialized form: custos.Keyring (proto/custos.proto), stored encrypted
 * under the root key at core/keyring.
 */
#ifndef CS_KEYRING_H
#define CS_KEYRING_H

#include <stddef.h>
#include <stdint.h>
#include "crypto.h"

typedef struct cs_keyring cs_keyring;

typedef struct cs_term_info {
  uint32_t term;
  int64_t install_time;
  uint64_t encryptions;
} cs_term_info;

/* An empty keyring (no terms).  0 or CS_ENOMEM. */
int cs_keyring_new(cs_keyring **out) __attribute__((warn_unused_result));
void cs_keyring_free(cs_keyring *k);
/* Deep copy (keys included, into fresh locked memory). */
int cs_keyring_clone(const cs_keyring *k, cs_keyring **out) __attribute__((warn_unused_result));

/*
 * Appends `term` with `key`; it becomes the active term.  The term must be
 * greater than every term present (asserts: callers derive it).
 */
int cs_keyring_add(cs_keyring *k, uint32_t term, const uint8_t key[CS_KEY_LEN],
                   int64_t install_time, uint64_t encryptions) __attribute__((warn_unused_result));
/* Appends a fresh random key as term active+1 (term 1 on an empty ring). */
int cs_keyring_rotate(cs_keyring *k, int64_t now, uint32_t *new_term)
    __attribute__((warn_unused_result));

/* The active term (0 on an empty ring). */
uint32_t cs_keyring_active(const cs_keyring *k);
/* Number of terms. */
size_t cs_keyring_count(const cs_keyring *k);
/* Key of `term`, or NULL when the ring has no such term. */
const uint8_t *cs_keyring_key(const cs_keyring *k, uint32_t term);
/* Info of the i-th term (0 <= i < count), ascending by term. */
void cs_keyring_info(const cs_keyring *k, size_t i, cs_term_info *out);
/* Info of a given term; CS_ENOTERM if absent. */
int cs_keyring_term_info(const cs_keyring *k, uint32_t term, cs_term_info *out);

/*
 * Counts one encryption under `term`, which must be the active term:
 * encrypting under any other term is a bug (asserts).
 */
void cs_keyring_count_encryption(cs_keyring *k, uint32_t term);

/* custos.Keyring bytes (contains keys: caller wipes, then frees). */
int cs_keyring_encode(const cs_keyring *k, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
/* Parses and validates (ascending unique terms, 32-byte keys, active term
 * present).  CS_ESTORECORRUPT on anything else. */
int cs_keyring_decode(const uint8_t *buf, size_t len, cs_keyring **out)
    __attribute__((warn_unused_result));

#endif
