/*
 * barrier: AES-256-GCM encryption of everything custosd stores.
 *
 * Ciphertext layout (all values but core/seal-config):
 *
 *   [term u32 BE][version u8][nonce 12][ciphertext][tag 16]
 *
 * version is CS_BARRIER_VERSION; the storage path is the additional
 * authenticated data, so a ciphertext moved to another path fails to open.
 * Every encryption draws a fresh random nonce.  Data is encrypted under the
 * keyring's active term and decrypted with the key of the term in its
 * header.  The same layout, with term 0, wraps the root key under the
 * unseal key and the keyring under the root key (cs_barrier_seal_with).
 */
#ifndef CS_BARRIER_H
#define CS_BARRIER_H

#include <stddef.h>
#include <stdint.h>
#include "crypto.h"
#include "keyring.h"
#include "store.h"

#define CS_BARRIER_VERSION 1
#define CS_BARRIER_OVERHEAD (4 + 1 + CS_NONCE_LEN + CS_TAG_LEN)

/*
 * Encrypts `pt` for `path` under the active term of `k` (counted as one
 * encryption).  *out is malloc'd (len + CS_BARRIER_OVERHEAD bytes).
 */
int cs_barrier_encrypt(cs_keyring *k, const char *path, const uint8_t *pt, size_t len,
                       uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));
/*
 * Decrypts a value read from `path`.  Errors: CS_ESTORECORRUPT (too short,
 * unknown version), CS_ENOTERM ("no key for term N"), CS_ETERMRETIRED
 * ("term N was retired on DATE (path P)"), CS_EAUTH
 * ("authentication failed for path P").  *out is malloc'd; wipe after use.
 */
int cs_barrier_decrypt(const cs_keyring *k, const char *path, const uint8_t *ct, size_t len,
                       uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));

/* The same layout under an explicit key and term (0 for the key hierarchy). */
int cs_barrier_seal_with(const uint8_t key[CS_KEY_LEN], uint32_t term, const char *path,
                         const uint8_t *pt, size_t len, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));
int cs_barrier_open_with(const uint8_t key[CS_KEY_LEN], const char *path, const uint8_t *ct,
                         size_t len, uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));

/*
 * The two ways everything under the barrier is stored and read:
 * cs_barrier_stage_put encrypts `pt` for `path` under the active term and
 * adds the put to batch b; cs_barrier_get reads `path` from the store and
 * decrypts it (*pt malloc'd: wipe and free; CS_ENOTFOUND when absent).
 */
int cs_barrier_stage_put(cs_keyring *k, cs_batch *b, const char *path, const uint8_t *pt,
                         size_t len) __attribute__((warn_unused_result));
int cs_barrier_get(cs_store *st, const cs_keyring *k, const char *path, uint8_t **pt, size_t *len)
    __attribute__((warn_unused_result));
/* cs_barrier_get with `head` bytes of room in front: *buf holds head +
 * *len bytes, the plaintext at *buf + head (the caller writes a prefix
 * there, say a protobuf length, and sends both without a copy). */
int cs_barrier_get_spaced(cs_store *st, const cs_keyring *k, const char *path, size_t head,
                          uint8_t **buf, size_t *len) __attribute__((warn_unused_result));

/*
 * Stages keyring k, sealed under the root key (term 0), at core/keyring:
 * what every key change (rotate, stage, activate, retire) puts in its one
 * batch next to the values that depend on it.  The same as seal.c's own
 * stage_keyring, exported for the lifecycle steps built outside seal.c.
 */
int cs_barrier_stage_keyring(cs_batch *b, const uint8_t root_key[CS_KEY_LEN], const cs_keyring *k)
    __attribute__((warn_unused_result));
/* Opens a core/keyring value with the root key into a fresh keyring. */
int cs_barrier_open_keyring(const uint8_t root_key[CS_KEY_LEN], const uint8_t *ct, size_t len,
                            cs_keyring **out) __attribute__((warn_unused_result));

/* The term in a ciphertext header; CS_ESTORECORRUPT when too short. */
int cs_barrier_term_of(const uint8_t *ct, size_t len, uint32_t *term) __attribute__((warn_unused_result));

#endif
