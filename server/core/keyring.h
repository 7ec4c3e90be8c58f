/*
 * keyring: the data keys of the barrier, one AES-256 key per term, and the
 * lifecycle state of every term.
 *
 * Term 1 is created at init.  Every term is in one state:
 *
 *   staged ──activate──> active ──(another activates)──> decrypt-only ──retire──> retired
 *
 *  - staged: the newest term, held (so a node can already open values a
 *    member that activated it wrote) but never used to encrypt.  At most one.
 *  - active: exactly one term (unless the ring is empty); the only term that
 *    encrypts.  It can never be retired.
 *  - decrypt-only: an older term; its key opens what was written under it.
 *  - retired: the key is wiped and no longer persisted; the term number and
 *    the retirement date stay, so a value found later under it fails with
 *    "term N was retired on DATE" rather than "no key".
 *
 * cs_keyring_transition is the only way a state changes and refuses every
 * pair but staged->active and decrypt-only->retired.  The keyring is a
 * value: the caller persists it (one transaction with whatever depends on
 * the change, see seal.c) and only then swaps it in.
 *
 * All keys live in ONE locked allocation (secmem), so a keyring of 10,000
 * terms is one mlock'ed block, not 10,000 pages.
 *
 * Each term counts the encryptions made under it (for automatic rotation).
 * The counters are atomics bumped in memory; they are persisted in batches
 * when the keyring is written (see seal/change.c), never one durable write per
 * encryption.
 *
 * Serialized form: custos.Keyring (proto/custos.proto), stored encrypted
 * under the root key at core/keyring.  A keyring written before term states
 * existed (no state fields) loads with its active_term active and every
 * other term decrypt-only, as it behaved then.
 */
#ifndef CS_KEYRING_H
#define CS_KEYRING_H

#include <stddef.h>
#include <stdint.h>
#include "crypto.h"

typedef struct cs_keyring cs_keyring;

/* Numerically equal to custos.TermState. */
typedef enum cs_term_state {
  CS_TERM_STAGED = 1,
  CS_TERM_ACTIVE = 2,
  CS_TERM_DECRYPT_ONLY = 3,
  CS_TERM_RETIRED = 4,
} cs_term_state;

typedef struct cs_term_info {
  uint32_t term;
  int64_t install_time;
  uint64_t encryptions;
  cs_term_state state;
  int64_t activation_time;    /* 0: never active (staged) */
  int64_t retirement_time;    /* 0: not retired */
} cs_term_info;

/* "staged", "active", "decrypt-only", "retired" ("unknown" otherwise). */
const char *cs_term_state_name(cs_term_state s);
/* 1 when a term in state `from` may move to `to` (staged->active,
 * decrypt-only->retired), else 0.  active->decrypt-only is not a step of
 * its own: it happens to the active term when another term activates. */
int cs_term_transition_allowed(cs_term_state from, cs_term_state to);

/* An empty keyring (no terms).  0 or CS_ENOMEM. */
int cs_keyring_new(cs_keyring **out) __attribute__((warn_unused_result));
void cs_keyring_free(cs_keyring *k);
/* Deep copy (keys included, into fresh locked memory). */
int cs_keyring_clone(const cs_keyring *k, cs_keyring **out) __attribute__((warn_unused_result));

/*
 * Appends `term` with `key` as the ACTIVE term (the former active term
 * becomes decrypt-only): the immediate activation of a standalone rotation
 * and of today's standby upgrade path.  The term must be greater than every
 * term present (asserts: callers derive it).  CS_ETERMSTATE while a term is
 * staged (it would sit below the active term).
 */
int cs_keyring_add(cs_keyring *k, uint32_t term, const uint8_t key[CS_KEY_LEN],
                   int64_t install_time, uint64_t encryptions) __attribute__((warn_unused_result));
/* Appends a fresh random key as term newest+1 (term 1 on an empty ring),
 * active at once. */
int cs_keyring_rotate(cs_keyring *k, int64_t now, uint32_t *new_term)
    __attribute__((warn_unused_result));

/*
 * Appends `term` with `key` as STAGED (a standby receiving a term that is
 * not active yet).  CS_ETERMSTATE when a term is already staged, when
 * `term` is not above every term present, or when the ring is empty (the
 * first term is active from the start).
 */
int cs_keyring_stage_key(cs_keyring *k, uint32_t term, const uint8_t key[CS_KEY_LEN],
                         int64_t install_time) __attribute__((warn_unused_result));
/* A fresh random key as term newest+1, STAGED (see cs_keyring_stage_key). */
int cs_keyring_stage(cs_keyring *k, int64_t now, uint32_t *new_term)
    __attribute__((warn_unused_result));

/*
 * Moves `term` to state `to` at time `now`.  Allowed:
 *  - staged -> active: the former active term becomes decrypt-only; the
 *    activation time is recorded.
 *  - decrypt-only -> retired: the key is wiped; the retirement time is kept.
 * Everything else (the active term retired, a retired term revived, ...)
 * is refused with CS_ETERMSTATE and a detail naming both states;
 * CS_ENOTERM when the ring has no such term.  On error k is unchanged.
 * Whether values still use a term is not the keyring's business: see
 * cs_rewrap_retire_check (rewrap.h).
 */
int cs_keyring_transition(cs_keyring *k, uint32_t term, cs_term_state to, int64_t now)
    __attribute__((warn_unused_result));

/* The active term (0 on an empty ring). */
uint32_t cs_keyring_active(const cs_keyring *k);
/* The highest term of any state (0 on an empty ring). */
uint32_t cs_keyring_newest(const cs_keyring *k);
/* The staged term, 0 when none. */
uint32_t cs_keyring_staged(const cs_keyring *k);
/* Number of terms (every state, retired included). */
size_t cs_keyring_count(const cs_keyring *k);
/* Key of `term`, or NULL when the ring has no such term or it is retired.
 * A staged term's key is returned: it decrypts. */
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

/*
 * The terms `restored` (say, the keyring of a snapshot about to be
 * restored) holds a key for although `cur` retired them: a restore would
 * bring those keys back, which must not happen without saying so.  Writes
 * up to cap of them, ascending, to terms; returns how many there are.
 */
size_t cs_keyring_revived(const cs_keyring *cur, const cs_keyring *restored, uint32_t *terms,
                          size_t cap);

/* custos.Keyring bytes (contains keys: caller wipes, then frees). */
int cs_keyring_encode(const cs_keyring *k, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
/* Parses and validates (ascending unique terms, 32-byte keys except for
 * retired terms, which have none, exactly one active term equal to
 * active_term, staged only above it and at most one, decrypt-only and
 * retired only below it).  CS_ESTORECORRUPT on anything else. */
int cs_keyring_decode(const uint8_t *buf, size_t len, cs_keyring **out)
    __attribute__((warn_unused_result));

#endif
