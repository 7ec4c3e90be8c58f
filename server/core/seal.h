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
#include "cs_error.h"
#include "store.h"

#define CS_SHARE_LEN (CS_KEY_LEN + 1)
#define CS_NONCE_STR 37            /* UUID text + NUL */
#define CS_DEFAULT_MAX_OPS 3865470566ULL
#define CS_MIN_MAX_OPS 100ULL
#define CS_MIN_INTERVAL 60ULL
/* Ten years: an interval is compared with an age in int64 seconds, and a
 * larger one (up to 2^64-1 on the wire) would wrap negative: always due. */
#define CS_MAX_INTERVAL (10ULL * 365 * 86400)

typedef struct cs_seal cs_seal;

/*
 * Writes are asynchronous: the seal hands a batch to `submit`, which takes
 * its contents and later calls done(arg, status) on the same thread (the
 * event loop): after the batch is on disk (standalone: the group commit
 * queue) or applied through raft (cluster).  A synchronous backend may call
 * done before submit returns.  submit returns 0, or an error and then never
 * calls done.
 */
typedef int (*cs_submit_fn)(void *ctx, cs_batch *b, cs_done_fn done, void *arg);

/* Returned by operations that completed nothing yet: the callback will run. */
#define CS_SEAL_PENDING 1

/*
 * The seal's state.  Exactly one at a time; it changes in one place
 * (set_state in seal/state.c), which is also the only caller of on_event.
 *   UNINITIALIZED  no core/seal-config in the store
 *   SEALED         a key set exists; no key in memory
 *   UNSEALED       root key and keyring in locked memory
 * There is no "unsealing" state: the threshold share combines the KEK and
 * loads the keys in the same call.  An init being committed is not a state
 * either: it holds the key-change slot (cs_seal_key_slot) and the node stays
 * UNINITIALIZED until the commit.
 */
enum cs_seal_state { CS_SEAL_UNINITIALIZED, CS_SEAL_SEALED, CS_SEAL_UNSEALED };

/*
 * The share-collecting ceremony in progress, orthogonal to the state but
 * bound to it: an unseal ceremony exists only while SEALED, a rekey only
 * while UNSEALED; set_state ends the one that does not survive a change.
 */
enum cs_seal_ceremony {
  CS_SEAL_CEREMONY_NONE,
  CS_SEAL_CEREMONY_UNSEAL,       /* unseal shares collected (progress > 0) */
  CS_SEAL_CEREMONY_REKEY,        /* current shares collected for a rekey */
  CS_SEAL_CEREMONY_REKEY_VERIFY, /* new shares collected back for verification */
  CS_SEAL_CEREMONY_GENERATE_ROOT, /* current shares collected to mint a root token */
};

/*
 * Seal events, fired on the loop by set_state, once per change:
 *   UNSEALED         SEALED -> UNSEALED: the keys were just loaded (unseal
 *                    ceremony; the dev server's auto-unseal is one).
 *   SEALED           UNSEALED -> SEALED or UNINITIALIZED: the keys were just
 *                    wiped (seal request, shutdown, a standby that missed a
 *                    keyring upgrade, a restore that needs the snapshot's
 *                    shares, a failed reload).
 *   KEYRING_CHANGED  still UNSEALED, but the keyring in memory was replaced
 *                    or grew: a rotation committed, a standby installed
 *                    terms (cs_seal_follow), the keyring was reloaded from
 *                    storage (cs_seal_reload on becoming active,
 *                    cs_seal_restored after a snapshot restore: storage may
 *                    hold other tokens, policies and audit key now).
 * Nothing fires when nothing changed: sealing a sealed node, init (the node
 * stays sealed; see on_key_change), a share below the threshold or a wrong
 * one.  Whatever must follow the seal state (the audit HMAC key, caches of
 * decrypted data) hangs on this, so no path can skip it.
 */
enum cs_seal_event {
  CS_SEAL_EVENT_UNSEALED = 1,
  CS_SEAL_EVENT_SEALED,
  CS_SEAL_EVENT_KEYRING_CHANGED,
};
typedef void (*cs_seal_event_fn)(void *ctx, enum cs_seal_event ev);

typedef struct cs_seal_opts {
  cs_store *store;
  cs_submit_fn submit;        /* NULL: cs_store_commit(store, b) synchronously */
  void *submit_ctx;
  unsigned upgrade_ttl;       /* seconds an upgrade key lives; 0: 120 */
  /* Called on the loop after an init, rotate, rekey or retire is committed
   * (what: "init", "rotate", "rekey", "retire"); NULL: nobody listens.  For backups: it
   * says what was written, where on_event says what memory holds. */
  void (*on_key_change)(void *ctx, const char *what);
  void *key_change_ctx;
  /* See enum cs_seal_event; NULL: nobody listens. */
  cs_seal_event_fn on_event;
  void *on_event_ctx;
} cs_seal_opts;

typedef struct cs_seal_status {
  enum cs_seal_state state;
  enum cs_seal_ceremony ceremony;
  int initialized, sealed;    /* state != UNINITIALIZED, state != UNSEALED */
  unsigned t, n, progress;
  char nonce[CS_NONCE_STR];   /* of the unseal attempt in progress, "" if none */
  uint32_t term;              /* active term, 0 while sealed */
  char reason[256];           /* why the node sealed itself ("" if it did not) */
} cs_seal_status;

typedef struct cs_rekey_status {
  int started, verification_required, complete;
  char nonce[CS_NONCE_STR];
  unsigned t, n, progress, required;
  char verification_nonce[CS_NONCE_STR];
  unsigned verification_progress;
  uint8_t *keys;              /* on completion: n shares of key_len bytes (locked memory);
                                 cs_rekey_status_clear wipes and frees them */
  size_t key_len;
  /* With recipients, on completion: keys is NULL and keys_age[i] is share
   * i+1 (its hex and a newline) in an armored age file to recipients[i]. */
  char **keys_age;
  size_t n_age;
  char **recipients;          /* of the rekey (copies), n_recipients of them */
  size_t n_recipients;
  int backup;                 /* the swap stores the encrypted shares too */
} cs_rekey_status;

/* A generate-root OTP has exactly as many characters as a token ("cs." and
 * 43 base64url characters), so token XOR OTP hides every byte. */
#define CS_GENROOT_OTP_LEN 46
#define CS_GENROOT_TIMEOUT_DEFAULT 600 /* seconds without a share */
#define CS_GENROOT_RECIPIENT_MAX 127

typedef struct cs_genroot_status {
  int started, complete;
  char nonce[CS_NONCE_STR];   /* init and update only; "" from status */
  unsigned progress, required;
  unsigned otp_length;        /* CS_GENROOT_OTP_LEN with an OTP, 0 with a recipient */
  char recipient[CS_GENROOT_RECIPIENT_MAX + 1]; /* "" with an OTP */
  int64_t expires;            /* ends by itself at this time unless a share comes */
  char otp[CS_GENROOT_OTP_LEN + 1]; /* generated OTP: in the init result only */
  /* On completion, one of them (malloc'd; cs_genroot_status_clear frees):
   * base64url (no padding) of token XOR OTP, or an armored age file. */
  char *encoded_token;
  char *encoded_token_age;
} cs_genroot_status;

typedef struct cs_rotate_config {
  int enabled;
  uint64_t max_operations;
  uint64_t interval_seconds;  /* 0: none */
} cs_rotate_config;

/* What an asynchronous operation produced; owned by the seal and valid only
 * during the callback (secrets in it are wiped right after). */
typedef struct cs_seal_result {
  uint32_t term;              /* rotate: the new term */
  int64_t install_time;
  int staged;                 /* rotate: the term is staged, not yet active */
  uint8_t *shares;            /* init: n shares of share_len bytes */
  size_t share_len;
  unsigned n, t;
  char *root_token;           /* init */
  cs_rekey_status rekey;      /* rekey completion (keys for the holders) */
  cs_genroot_status genroot;  /* generate-root completion (the encoded token) */
} cs_seal_result;

typedef void (*cs_seal_cb)(void *arg, int status, cs_seal_result *res);

/* Loads core/seal-config (if any).  The node starts sealed. */
int cs_seal_open(cs_seal **out, const cs_seal_opts *opts) __attribute__((warn_unused_result));
/* Seals (wipes every key; a last counter flush is submitted) and frees once
 * the writes in flight have completed. */
void cs_seal_close(cs_seal *s);

/*
 * Initializes: 1 <= n <= 255, t <= n, t >= 2 when n > 1 (n == 1: t == 1,
 * the unseal key is not split).  Returns CS_SEAL_PENDING and later calls
 * cb with res->shares (n shares of share_len bytes: 33, or 32 when n == 1)
 * and res->root_token; or an error at once (CS_EALREADYINIT, CS_EINVAL,
 * CS_EBUSY), and then cb is not called.  The node stays sealed.
 */
int cs_seal_init(cs_seal *s, unsigned n, unsigned t, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));

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
/* Persists counters, then wipes every key (event SEALED when it was
 * unsealed); drops the unseal progress either way. */
void cs_seal_seal(cs_seal *s);
void cs_seal_get_status(const cs_seal *s, cs_seal_status *st);

/* The keyring while unsealed, NULL while sealed. */
cs_keyring *cs_seal_keyring(cs_seal *s);

/* ---- key lifecycle (unsealed only: CS_ESEALED otherwise) ---------------- */

/*
 * Every operation below that writes returns CS_SEAL_PENDING and calls cb
 * once the batch is committed (the in-memory change happens only then), or
 * returns an error at once without calling cb.  Only one key change is in
 * flight at a time: another one meanwhile gets CS_EBUSY (wire code RETRY:
 * nothing was done, the same request may simply be sent again).
 */

/* New term; keyring, core/root-key and core/upgrade/<old> in one batch;
 * res->term and res->install_time.  With staged activation (a cluster) the
 * term is staged instead (res->staged; core/root-key untouched) and a
 * rotation while a term is staged is refused with CS_ESTAGED: see below. */
int cs_seal_rotate(cs_seal *s, cs_seal_cb cb, void *arg) __attribute__((warn_unused_result));

/* ---- staged activation (seal/stage.c; docs/ha.md, "Staged activation") --- */

/*
 * Cluster mode (set by ha.c at start): cs_seal_rotate STAGES the new term
 * (res->staged): the keyring holds it and core/upgrade/<active> carries it
 * to the standbys, but the old term keeps encrypting and core/root-key
 * stays under it, until cs_seal_activate.  A rotation while a term is
 * staged is refused (CS_ESTAGED).  Standalone (off, the default) a
 * rotation activates its term at once, and a staged term found in the
 * keyring (a store that came from a cluster) is activated by the tick.
 * max_delay (seconds) bounds how long the staged upgrade key must live.
 */
void cs_seal_set_staged_activation(cs_seal *s, int on, unsigned max_delay);

/*
 * Activates the staged term: ONE batch holds the keyring (staged -> active,
 * the former active decrypt-only), core/root-key under the new term and
 * the deletion of core/upgrade/<former active> (the new key no longer
 * travels under the old one).  CS_SEAL_PENDING and cb (res->term) once
 * committed; CS_ENOTERM when no term is staged; CS_EBUSY while another key
 * change is in flight.
 */
int cs_seal_activate(cs_seal *s, cs_seal_cb cb, void *arg) __attribute__((warn_unused_result));

#define CS_TERM_PROOF_LEN 32
/*
 * A member's proof that it holds `term`, bound to its node id:
 * HMAC-SHA256(K, "custos term ack" || term (u32 BE) || node_id) with
 * K = HMAC-SHA256(key of term, "custos term ack key v1").  The term's key
 * itself never leaves the node, and a proof for one node or term is not
 * one for another.  CS_ESEALED, or CS_ENOTERM when we do not hold `term`.
 */
int cs_seal_term_proof(const cs_seal *s, uint32_t term, const char *node_id,
                       uint8_t out[CS_TERM_PROOF_LEN]) __attribute__((warn_unused_result));
/* 1 when `proof` (len bytes) is node_id's proof for `term` (compared in
 * constant time), 0 otherwise (also when we do not hold the term). */
int cs_seal_term_proof_ok(const cs_seal *s, uint32_t term, const char *node_id,
                          const uint8_t *proof, size_t len) __attribute__((warn_unused_result));

/*
 * Can this node serve as active with the keys it holds?  Reads
 * core/root-key: its term is the cluster's active term, and this node must
 * hold that term's key as its own active term and open the root key with
 * it to the root key it holds.  0, or CS_ELACKSTERM with a detail ("this
 * node lacks the active keyring term N (its keyring ends at term M)"),
 * CS_ESEALED, or a read error.
 */
int cs_seal_check_active_keys(cs_seal *s) __attribute__((warn_unused_result));

/* Seals like cs_seal_seal and records why (cs_seal_status.reason, until
 * the next unseal).  The reason must hold no secret. */
void cs_seal_seal_because(cs_seal *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Retires `term` (decrypt-only -> retired): the keyring with its key wiped
 * and the upgrade keys holding or sealed under it go in one batch, which
 * the store commits only if no stored value is under the term by then.
 * Refused at once with CS_ENOTERM, CS_ETERMSTATE (the active term, a
 * staged or an already retired one) or CS_ETERMINUSE ("term N still
 * encrypts V stored value(s): rewrap them first"); the commit can still
 * fail with CS_ETERMINUSE when a write under the term raced it.
 * res->term, and res->install_time holds the retirement time.
 */
int cs_seal_retire(cs_seal *s, uint32_t term, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));

int cs_seal_rotate_config_get(cs_seal *s, cs_rotate_config *cfg) __attribute__((warn_unused_result));
/* Validates (max_operations in [CS_MIN_MAX_OPS, CS_DEFAULT_MAX_OPS],
 * interval 0 or in [CS_MIN_INTERVAL, CS_MAX_INTERVAL]) and stores it
 * under the barrier. */
int cs_seal_rotate_config_set(cs_seal *s, const cs_rotate_config *cfg, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * Who holds the key-change slot: free, an operator's request, or the server
 * itself (an automatic rotation).  An operator request refused with
 * CS_EBUSY while the server holds it may wait and be retried when
 * the slot is free: `fn(ctx)` runs on the loop each time a key change
 * completes (after its callback).  The counter flush never holds the slot.
 */
enum { CS_SEAL_SLOT_FREE, CS_SEAL_SLOT_OPERATOR, CS_SEAL_SLOT_SERVER };
int cs_seal_key_slot(const cs_seal *s);
void cs_seal_on_key_slot_free(cs_seal *s, void (*fn)(void *ctx), void *ctx);

/* Writes the keyring when its counters changed since the last write
 * (in the background; skipped while a key change or another flush is in
 * flight; never holds an operator's key change back). */
int cs_seal_flush_counters(cs_seal *s) __attribute__((warn_unused_result));

/*
 * Periodic work on the active node, about once a second while unsealed:
 * automatic rotation when due (*rotating = 1 when one was started),
 * deletion of expired upgrade keys, counter flush when `flush` is set.
 * Returns 0 or the first error (logged by the caller).
 */
int cs_seal_tick(cs_seal *s, int64_t now, int flush, int *rotating);

/*
 * Standby: follows the active node through the local replica without being
 * unsealed again: installs every next term found in core/upgrade/<active>
 * (unexpired only), re-reads core/root-key and core/seal-config.  When the
 * replica has moved past a term it could not get an upgrade key for, the
 * node seals itself (logged, event SEALED) and returns CS_ESEALED.
 * *installed counts the terms installed; they are held as staged until
 * core/root-key moves to them, and then activated here too (stage.c).
 * Either change fires one event KEYRING_CHANGED.
 */
int cs_seal_follow(cs_seal *s, int64_t now, int *installed) __attribute__((warn_unused_result));
/*
 * Active node of a cluster: every member has installed term `acked_term`,
 * so the upgrade keys core/upgrade/<N> for N < acked_term are needed by
 * nobody; deletes them in one batch, before their expiry.  Returns 0 when
 * there is nothing to delete or the batch was submitted.
 */
int cs_seal_upgrades_acked(cs_seal *s, uint32_t acked_term) __attribute__((warn_unused_result));
/* Reloads the keyring and rotate config from storage with the root key
 * (on becoming active: storage is authoritative): event KEYRING_CHANGED.
 * On error nothing changed. */
int cs_seal_reload(cs_seal *s) __attribute__((warn_unused_result));

int cs_seal_rekey_init(cs_seal *s, unsigned n, unsigned t, int verify, cs_rekey_status *st)
    __attribute__((warn_unused_result));

/*
 * A rekey whose new shares go only to their holders: with recipients (0,
 * or exactly n age X25519 recipients, NUL-terminated, copied), the shares
 * are encrypted to them in the server at the threshold, before anything is
 * written, and the plaintext shares (locked memory) are wiped at once: the
 * completion carries keys_age, never keys.  An encryption failure writes
 * nothing (the old key set stays; the shares of the ceremony are dropped,
 * its nonce kept).  With `backup` (needs recipients), the encrypted shares
 * are stored at CS_SEAL_REKEY_BACKUP_PATH under the barrier in the batch of
 * the key swap itself, so a lost response cannot lose the new key set; a
 * swap without backup deletes an older backup in the same batch (it holds
 * shares of a key set that no longer opens anything).
 * Errors: those of cs_seal_rekey_init, CS_EAGEKEY (the detail names the
 * recipient), CS_EINVAL (count; backup without recipients).
 */
typedef struct cs_rekey_params {
  unsigned n, t;
  int verify;
  char *const *recipients;
  size_t n_recipients;
  int backup;
} cs_rekey_params;
int cs_seal_rekey_start(cs_seal *s, const cs_rekey_params *p, cs_rekey_status *st)
    __attribute__((warn_unused_result));

#define CS_SEAL_REKEY_BACKUP_PATH "core/rekey-backup"
/* The stored rekey backup (a packed custos.RekeyBackup; only ciphertext
 * and public recipients, but read under the barrier): 0 with *buf (free())
 * and *len, CS_ENOBACKUP, CS_ESEALED or a storage error. */
int cs_seal_rekey_backup_read(cs_seal *s, uint8_t **buf, size_t *len)
    __attribute__((warn_unused_result));
/* Deletes the stored rekey backup (one batch; not a key change, so it
 * never waits for one): CS_SEAL_PENDING and cb later, or CS_ENOBACKUP /
 * CS_ESEALED at once. */
int cs_seal_rekey_backup_delete(cs_seal *s, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Below the threshold: 0 and *st.  At the threshold: CS_SEAL_PENDING and cb
 * with res->rekey (complete, the new keys).  With verification the first
 * threshold writes nothing and completes at once (0, st->complete and the
 * keys); the swap happens at the threshold of rekey_verify. */
int cs_seal_rekey_update(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));
int cs_seal_rekey_verify(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));
int cs_seal_rekey_cancel(cs_seal *s) __attribute__((warn_unused_result));
void cs_seal_rekey_status(const cs_seal *s, cs_rekey_status *st);
/* Wipes and frees st->keys. */
void cs_rekey_status_clear(cs_rekey_status *st);

/* ---- share checks and generate-root (seal/genroot.c) --------------------- */

/*
 * Whether `share` is one of the current key set's shares: 1 yes, 0 no;
 * CS_ENOTINIT, or CS_EBADSHARE for a share of the wrong length.  Sealed or
 * unsealed; adds nothing to any ceremony and changes nothing.  The share is
 * HMACed and compared with every stored MAC in constant time, so the answer
 * is all that leaks (not which share it is).
 */
int cs_seal_verify_share(const cs_seal *s, const uint8_t *share, size_t len)
    __attribute__((warn_unused_result));

/*
 * generate-root: a threshold of the current shares mints a new root token
 * (when the last one was lost or revoked).  Unsealed only (CS_ESEALED);
 * one attempt at a time, exclusive with a rekey (CS_EINPROGRESS).  The
 * token is handed out only encoded: XORed with the OTP given at init (or
 * one the server generated, `generate_otp`, returned in *st->otp once), or
 * age-encrypted to `recipient`.  Exactly one of otp / generate_otp /
 * recipient (CS_EINVAL).  An attempt that accepts no share for `timeout`
 * seconds (0: CS_GENROOT_TIMEOUT_DEFAULT) ends by itself: checked at every
 * call with `now` and by cs_seal_tick; its nonce then gets CS_EGRTEXPIRED.
 * The nonce is returned by init only: status does not show it.
 */
int cs_seal_genroot_init(cs_seal *s, const char *otp, int generate_otp, const char *recipient,
                         unsigned timeout, int64_t now, cs_genroot_status *st)
    __attribute__((warn_unused_result));
/*
 * Submits one share with the attempt's nonce (CS_EBADNONCE, CS_ENOOP,
 * CS_EGRTEXPIRED).  A share of the wrong length (CS_EBADSHARE), not in the
 * current set (CS_ENOTMEMBER) or already given (CS_EDUPSHARE) is refused
 * and progress is kept.  Below the threshold: 0 and *st.  At the
 * threshold: the shares are checked against the root key in memory, one
 * batch with the new root token is submitted, the attempt ends, and
 * CS_SEAL_PENDING is returned: cb later gets res->genroot (complete, the
 * encoded token).  The completing share is refused with CS_EBUSY (nothing
 * added) while another key change is being committed.
 */
int cs_seal_genroot_update(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                           int64_t now, cs_genroot_status *st, cs_seal_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Ends the attempt named by `nonce` (CS_EBADNONCE, CS_ENOOP, CS_EGRTEXPIRED). */
int cs_seal_genroot_cancel(cs_seal *s, const char *nonce, int64_t now)
    __attribute__((warn_unused_result));
/* The attempt in progress, without its nonce (started = 0 when none). */
void cs_seal_genroot_status(cs_seal *s, int64_t now, cs_genroot_status *st);
/* Wipes st (the OTP, the encoded token) and frees what it holds. */
void cs_genroot_status_clear(cs_genroot_status *st);

/* Validates a core/seal-config value (0 or CS_ESTORECORRUPT); for fuzzing. */
int cs_seal_config_check(const uint8_t *buf, size_t len) __attribute__((warn_unused_result));

/* ---- snapshots ----------------------------------------------------------- */

/* The root key while unsealed (NULL while sealed): keys snapshot MACs.
 * Borrowed; never copy it anywhere but locked memory. */
const uint8_t *cs_seal_root_key(const cs_seal *s);
/*
 * A restore is about to be committed: no key change may run meanwhile (one
 * in flight: CS_EINPROGRESS), so no counter flush or rotation carrying the
 * old keyring can land after the restored one.  Ended by cs_seal_restored
 * (committed) or cs_seal_restore_abort (failed).
 */
int cs_seal_restore_begin(cs_seal *s) __attribute__((warn_unused_result));
void cs_seal_restore_abort(cs_seal *s);
/*
 * The store was replaced by a snapshot (here, or on another node of the
 * cluster, or a raft snapshot a lagging node installed): reloads the key
 * set, drops ceremonies in progress, and, if unsealed, reloads the keyring
 * with the root key.  Seals (wipes the keys: the snapshot's shares are
 * needed) when `seal` is set (a forced restore of another installation or
 * key set) or when the root key does not open the restored keyring.
 * Events: KEYRING_CHANGED when still unsealed, SEALED when it sealed.
 * Returns 1 when still unsealed, 0 when sealed, <0 on error (sealed too).
 */
int cs_seal_restored(cs_seal *s, int seal);

/* ---- what init minted ---------------------------------------------------- */

/* Where init stores the installation's audit HMAC key, under the barrier. */
#define CS_SEAL_AUDIT_KEY_PATH "core/audit-key"
/*
 * Reads the audit HMAC key (CS_KEY_LEN bytes) into `key` while unsealed.
 * Returns 0, CS_ESEALED, CS_ENOTFOUND (an installation older than the
 * key), CS_ESTORECORRUPT (wrong length) or a read error; `key` is
 * untouched on error.  The caller wipes it.
 */
int cs_seal_audit_key(cs_seal *s, uint8_t key[CS_KEY_LEN]) __attribute__((warn_unused_result));

#endif
