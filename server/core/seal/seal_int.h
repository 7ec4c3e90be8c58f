/*
 * seal_int.h: what the files of server/core/seal/ share, and nobody else.
 *
 *   state.c      set_state: the one place the state changes; the events
 *   keyset.c     core/seal-config: n, t and the share MACs
 *   ceremony.c   shares collected for an unseal, a rekey, a verification
 *   keys.c       the sealed values of the key hierarchy (read, open, stage)
 *   change.c     one batch per change: submit, then change memory only in
 *                the commit callback; `busy`, `epoch`
 *   lifecycle.c  open/close, unseal, seal, status, snapshot restore
 *   init.c       init: the first key set, root token and audit key
 *   rotate.c     rotation, rotate config, counter flush, the tick
 *   follow.c     standbys: following upgrade keys, reload on activation
 *   rekey.c      the rekey ceremony and the key-set swap
 *   stage.c      staged activation: activating the staged term, proofs of
 *                holding a term, the new leader's key check
 *   genroot.c    share checks (verify-share) and the generate-root ceremony
 *   retire.c     retiring a term; standbys wiping a term the active retired
 *
 * Internal names carry a `cs_seal__` prefix (two underscores): shared
 * between these files, never part of seal.h.
 */
#ifndef CS_SEAL_INT_H
#define CS_SEAL_INT_H

#include "seal.h"
#include "custos.pb-c.h"
#include "shamir.h"
#include "token.h"

#define P_SEAL_CONFIG "core/seal-config"
#define P_UNSEAL_ROOT "core/unseal/root-key"
#define P_KEYRING "core/keyring"
#define P_ROOT_KEY "core/root-key"
#define P_UPGRADE "core/upgrade/"
#define P_ROTATE_CONFIG "core/rotate-config"

#define MAC_LEN 32
#define PARTS_BYTES (CS_SHAMIR_MAX_SHARES * CS_SHARE_LEN)

/* A key set as described by core/seal-config. */
typedef struct keyset {
  unsigned n, t;
  uint8_t salt[MAC_LEN];
  uint8_t (*macs)[MAC_LEN];   /* n entries */
} keyset;

/* Shares collected for one ceremony (unseal, rekey, rekey verification). */
typedef struct ceremony {
  char nonce[CS_NONCE_STR];
  uint8_t *parts;             /* secmem, PARTS_BYTES */
  unsigned count;
} ceremony;

struct cs_seal {
  cs_seal_opts opts;
  /* Changed by set_state only. */
  enum cs_seal_state state;
  uint8_t *root_key;          /* secmem; set exactly while UNSEALED */
  cs_keyring *kr;             /* set exactly while UNSEALED */
  unsigned epoch;             /* bumped at every event */
  keyset ks;                  /* valid unless UNINITIALIZED */
  /* The ceremony: `cur` holds the unseal shares (SEALED) or the current
   * shares of a rekey (UNSEALED), never both, so one buffer serves. */
  enum cs_seal_ceremony cer;
  ceremony cur;
  struct {
    int verify;               /* verification required */
    unsigned n, t;            /* of the new key set */
    ceremony ver;             /* new shares submitted back */
    uint8_t *new_kek;         /* secmem, while awaiting verification */
    keyset new_ks;
    char **recipients;        /* age recipients of the new shares (n or none) */
    size_t nr;
    int backup;               /* store keys_age with the swap */
    char **keys_age;          /* encrypted new shares, while awaiting verification */
  } rk;
  /* generate-root (genroot.c); its shares are in `cur`. */
  struct {
    char *otp;                /* secmem, CS_GENROOT_OTP_LEN + 1; NULL with a recipient */
    char recipient[CS_GENROOT_RECIPIENT_MAX + 1];
    unsigned timeout;         /* seconds without a share */
    int64_t last;             /* init or the last accepted share */
    char expired[CS_NONCE_STR]; /* nonce of the last attempt that expired */
  } gr;
  /* While unsealed. */
  uint64_t flushed_encryptions; /* sum of counters at the last keyring write */
  cs_rotate_config rot;
  /* Writes in flight (change.c). */
  int busy;                   /* a key change (or a restore) is being committed */
  int busy_auto;              /* ... started by the server (automatic rotation) */
  int flushing;               /* a counter flush is being committed */
  void (*slot_free)(void *ctx); /* cs_seal_on_key_slot_free */
  void *slot_free_ctx;
  unsigned inflight;          /* batches submitted, not yet done */
  /* Staged activation (stage.c). */
  int staged_activation;      /* cluster mode: rotations stage their term */
  unsigned max_activation_delay; /* seconds */
  char reason[256];           /* why it sealed itself; "" */
  int closing;                /* free when inflight drops to 0 */
};

/* ---- state.c ------------------------------------------------------------ */

/*
 * The only place the state, the keys in memory and the epoch change, and
 * the only caller of opts.on_event.
 *   to UNSEALED: installs `kr` (taken; or s->kr itself when the ring grew in
 *     place) and `root` (taken, secmem; NULL keeps the current one).  From
 *     SEALED: event UNSEALED and the unseal ceremony ends.  From UNSEALED:
 *     KEYRING_CHANGED.  s->rot must already hold the ring's rotate config.
 *   to SEALED or UNINITIALIZED: wipes the keys and ends a rekey; from
 *     UNSEALED: event SEALED.  root and kr must be NULL.
 * UNINITIALIZED <-> SEALED fires nothing: no key was in memory.
 */
void cs_seal__set_state(cs_seal *s, enum cs_seal_state to, uint8_t *root, cs_keyring *kr);
/* Ends whatever ceremony is in progress (shares wiped). */
void cs_seal__end_ceremony(cs_seal *s);

/* ---- keyset.c ----------------------------------------------------------- */

void cs_seal__keyset_free(keyset *ks);
int cs_seal__keyset_member(const keyset *ks, const uint8_t *share, size_t len);
int cs_seal__keyset_make(keyset *ks, unsigned n, unsigned t, const uint8_t *shares, size_t slen);
int cs_seal__keyset_stage(const keyset *ks, cs_batch *b, int create);
int cs_seal__valid_params(unsigned n, unsigned t);
/* Reads core/seal-config into s->ks: 1 loaded (an UNINITIALIZED node is
 * SEALED now), 0 there is none (a SEALED node is UNINITIALIZED now, s->ks
 * freed), <0 error (nothing changed).  An UNSEALED node keeps its state
 * and key set when there is none: the caller decides. */
/* Reads core/seal-config into s->ks (1: found, 0: none, <0: error).  An
 * unseal ceremony in progress ends when the set changed or is gone. */
int cs_seal__load_keyset(cs_seal *s);

/* ---- ceremony.c --------------------------------------------------------- */

size_t cs_seal__share_len(unsigned n);
int cs_seal__ceremony_start(ceremony *c);
void cs_seal__ceremony_clear(ceremony *c);
void cs_seal__ceremony_drop_parts(ceremony *c);
void cs_seal__ceremony_free(ceremony *c);
int cs_seal__ceremony_has(const ceremony *c, const uint8_t *share, size_t len);
void cs_seal__ceremony_add(ceremony *c, const uint8_t *share, size_t len);
int cs_seal__ceremony_combine(const ceremony *c, const keyset *ks, uint8_t *kek);

/* ---- keys.c ------------------------------------------------------------- */

int cs_seal__stage_sealed(cs_batch *b, const uint8_t *key, const char *path, const uint8_t *pt,
                          size_t len);
int cs_seal__stage_keyring(cs_batch *b, const uint8_t *root_key, const cs_keyring *k);
uint64_t cs_seal__total_encryptions(const cs_keyring *k);
int cs_seal__open_root_key(cs_seal *s, const uint8_t *kek, uint8_t *root_key);
int cs_seal__read_keyring(cs_seal *s, const uint8_t *root, cs_keyring **out);
int cs_seal__load_rotate_config(cs_seal *s, const cs_keyring *kr, cs_rotate_config *rot);

/* ---- change.c ------------------------------------------------------------ */

enum change_kind { CH_INIT, CH_ROTATE, CH_ROTATE_CONFIG, CH_FLUSH, CH_REKEY, CH_EXPIRE,
                   CH_BACKUP_DELETE, CH_GENROOT, CH_RETIRE, CH_ACTIVATE };

typedef struct change {
  cs_seal *s;
  enum change_kind kind;
  unsigned epoch;
  cs_seal_cb cb;
  void *arg;
  cs_keyring *next_kr;        /* rotate, retire */
  keyset ks;                  /* init, rekey: the new key set */
  cs_rotate_config rot;       /* rotate config */
  uint64_t flushed;           /* flush: counter sum written */
  cs_seal_result res;         /* handed to cb */
} change;

change *cs_seal__change_new(cs_seal *s, enum change_kind kind, cs_seal_cb cb, void *arg);
void cs_seal__change_free(change *c);
/* Submits the change's batch.  Returns CS_SEAL_PENDING (c now belongs to
 * the commit path) or an error (c freed, nothing happened). */
int cs_seal__submit(cs_seal *s, change *c, cs_batch *b);
int cs_seal__check_idle(cs_seal *s);
/* Frees s (close: once nothing is in flight). */
void cs_seal__free(cs_seal *s);

/* ---- rotate.c ------------------------------------------------------------ */

/* The expiry of an upgrade key, or 0 when it cannot be read; with `keep`,
 * the decoded key too (caller wipes and frees). */
int64_t cs_seal__upgrade_expiry(const cs_keyring *kr, const char *path, const uint8_t *val,
                                size_t val_len, Custos__UpgradeKey **keep);

/* ---- stage.c ------------------------------------------------------------- */

/* Standby: the staged term becomes active here once core/root-key is
 * sealed under it or a later term (the active committed its activation).  1 when it did,
 * 0 when nothing changed, <0 on a read error. */
int cs_seal__follow_activation(cs_seal *s);
/* ---- retire.c ------------------------------------------------------------ */

/* Standby: applies retirements found in the stored keyring to memory. */
int cs_seal__follow_retired(cs_seal *s);

/* ---- rekey.c ------------------------------------------------------------- */

/* Forgets the rekey (new key, new key set, verification shares). */
void cs_seal__rekey_clear(cs_seal *s);

/* ---- genroot.c ----------------------------------------------------------- */

/* Forgets the generate-root attempt (OTP, recipient; the shares in `cur`
 * are the caller's: end_ceremony clears both). */
void cs_seal__genroot_clear(cs_seal *s);
/* Ends the attempt when it has seen no share for its timeout; 1 if it did. */
int cs_seal__genroot_expire(cs_seal *s, int64_t now);

/* ---- init.c -------------------------------------------------------------- */

/* Stages a fresh root token (policy "root") into b under kr; its text goes
 * to `token` (the caller wipes it).  Init and generate-root. */
int cs_seal__stage_root_token(cs_keyring *kr, cs_batch *b, char token[CS_TOKEN_MAX]);

#endif
