/*
 * seal: the seal state machine and the key lifecycle.
 *
 *   unseal key (KEK, the Shamir secret)
 *     -> core/unseal/root-key   root key sealed under the KEK (term 0, AAD = path)
 *     -> core/keyring           keyring sealed under the root key (term 0)
 *     -> core/root-key          root key under the active term (lets standbys follow)
 *     -> core/upgrade/<N>       term N+1 sealed under term N, with an expiry
 *   core/seal-config            plaintext: n, t, and an HMAC of every share
 *
 * Every change of keys is ONE batch (one LMDB transaction / raft entry)
 * built here and handed to the commit function; in-memory state changes
 * only after the commit succeeded.  So a crash at any instant leaves either
 * the old or the new key set, never a mix.
 *
 * Shares are checked against the HMACs in core/seal-config when they are
 * submitted, so a foreign, tampered or old (pre-rekey) share is refused at
 * once (vault#2484, #4758).  The HMAC key is random per key set and the
 * shares carry 256 bits of entropy, so the HMACs reveal nothing usable.
 *
 * Threads: a cs_seal is used from one thread (the event loop).
 */
#ifndef CS_SEAL_H
#define CS_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "keyring.h"
#include "store.h"

#define CS_SHARE_LEN (CS_KEY_LEN + 1)
#define CS_NONCE_STR 37            /* UUID text + NUL */
#define CS_DEFAULT_MAX_OPS 3865470566ULL
#define CS_MIN_MAX_OPS 100ULL
#define CS_MIN_INTERVAL 60ULL

typedef struct cs_seal cs_seal;

/* Commits one batch atomically and durably; 0 or negative. */
typedef int (*cs_commit_fn)(void *ctx, const cs_batch *b);

typedef struct cs_seal_opts {
  cs_store *store;
  cs_commit_fn commit;        /* NULL: cs_store_commit(store, b) */
  void *commit_ctx;
  unsigned upgrade_ttl;       /* seconds an upgrade key lives; 0: 120 */
} cs_seal_opts;

typedef struct cs_seal_status {
  int initialized, sealed;
  unsigned t, n, progress;
  char nonce[CS_NONCE_STR];   /* of the unseal attempt in progress, "" if none */
  uint32_t term;              /* active term, 0 while sealed */
} cs_seal_status;

typedef struct cs_rekey_status {
  int started, verification_required, complete;
  char nonce[CS_NONCE_STR];
  unsigned t, n, progress, required;
  char verification_nonce[CS_NONCE_STR];
  unsigned verification_progress;
  uint8_t *keys;              /* on completion: n shares of key_len bytes; caller wipes + frees */
  size_t key_len;
} cs_rekey_status;

typedef struct cs_rotate_config {
  int enabled;
  uint64_t max_operations;
  uint64_t interval_seconds;  /* 0: none */
} cs_rotate_config;

/* Loads core/seal-config (if any).  The node starts sealed. */
int cs_seal_open(cs_seal **out, const cs_seal_opts *opts) __attribute__((warn_unused_result));
/* Seals (wipes every key) and frees. */
void cs_seal_close(cs_seal *s);

/*
 * Initializes: 1 <= n <= 255, t <= n, t >= 2 when n > 1 (n == 1: t == 1,
 * the unseal key is not split).  On success *shares holds n shares of
 * *share_len bytes (33, or 32 when n == 1) and *root_token the root token
 * (both malloc'd: wipe and free).  The node stays sealed.
 * Errors: CS_EALREADYINIT, CS_EINVAL, storage errors (nothing written).
 */
int cs_seal_init(cs_seal *s, unsigned n, unsigned t, uint8_t **shares, size_t *share_len,
                 char **root_token) __attribute__((warn_unused_result));

/*
 * Submits one unseal share.  A share of the wrong length (CS_EBADSHARE) or
 * not in the current set (CS_ENOTMEMBER) is refused at once and progress is
 * kept; a repeated share is ignored.  At the threshold the shares are
 * combined and the keys loaded; if that fails (CS_EKEYMISMATCH) progress is
 * reset.  Already unsealed: 0.  Not initialized: CS_ENOTINIT.
 */
int cs_seal_unseal(cs_seal *s, const uint8_t *share, size_t len) __attribute__((warn_unused_result));
/* Drops the shares of the attempt in progress. */
void cs_seal_reset(cs_seal *s);
/* Persists counters, then wipes every key. */
void cs_seal_seal(cs_seal *s);
void cs_seal_get_status(const cs_seal *s, cs_seal_status *st);

/* The keyring while unsealed, NULL while sealed. */
cs_keyring *cs_seal_keyring(cs_seal *s);

/* ---- key lifecycle (unsealed only: CS_ESEALED otherwise) ---------------- */

/* New term; keyring, core/root-key and core/upgrade/<old> in one batch. */
int cs_seal_rotate(cs_seal *s, uint32_t *term, int64_t *install_time)
    __attribute__((warn_unused_result));

int cs_seal_rotate_config_get(cs_seal *s, cs_rotate_config *cfg) __attribute__((warn_unused_result));
/* Validates (max_operations in [CS_MIN_MAX_OPS, CS_DEFAULT_MAX_OPS],
 * interval 0 or >= CS_MIN_INTERVAL) and stores it under the barrier. */
int cs_seal_rotate_config_set(cs_seal *s, const cs_rotate_config *cfg)
    __attribute__((warn_unused_result));

/* Writes the keyring when its counters changed since the last write. */
int cs_seal_flush_counters(cs_seal *s) __attribute__((warn_unused_result));

/*
 * Periodic work, called about once a second while unsealed: automatic
 * rotation when due, deletion of expired upgrade keys, counter flush when
 * `flush` is set.  Returns 0 or the first error (logged by the caller).
 * *rotated is set to the new term when it rotated.
 */
int cs_seal_tick(cs_seal *s, int64_t now, int flush, uint32_t *rotated);

int cs_seal_rekey_init(cs_seal *s, unsigned n, unsigned t, int verify, cs_rekey_status *st)
    __attribute__((warn_unused_result));
int cs_seal_rekey_update(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st) __attribute__((warn_unused_result));
int cs_seal_rekey_verify(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st) __attribute__((warn_unused_result));
int cs_seal_rekey_cancel(cs_seal *s) __attribute__((warn_unused_result));
void cs_seal_rekey_status(const cs_seal *s, cs_rekey_status *st);
/* Wipes and frees st->keys. */
void cs_rekey_status_clear(cs_rekey_status *st);

/* The store and commit function, for modules writing under the barrier. */
cs_store *cs_seal_store(cs_seal *s);
int cs_seal_commit(cs_seal *s, const cs_batch *b) __attribute__((warn_unused_result));

#endif
