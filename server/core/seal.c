/*
 * seal: the seal state machine and key lifecycle.  See seal.h for the key
 * hierarchy and the crash-safety rule (build a batch, commit, then change
 * memory).
 */
#include "seal.h"
#include "barrier.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "log.h"
#include "secmem.h"
#include "shamir.h"
#include "token.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P_SEAL_CONFIG "core/seal-config"
#define P_UNSEAL_ROOT "core/unseal/root-key"
#define P_KEYRING "core/keyring"
#define P_ROOT_KEY "core/root-key"
#define P_UPGRADE "core/upgrade/"
#define P_ROTATE_CONFIG "core/rotate-config"
#define P_AUDIT_KEY "core/audit-key"

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
  int initialized;
  keyset ks;
  ceremony unseal;
  /* Unsealed state. */
  uint8_t *root_key;          /* secmem, NULL while sealed */
  cs_keyring *kr;
  uint64_t flushed_encryptions;   /* sum of counters at the last keyring write */
  cs_rotate_config rot;
  /* Rekey. */
  struct {
    int active, verify, awaiting_verification;
    unsigned n, t;
    ceremony cur;             /* current shares */
    ceremony ver;             /* new shares submitted back */
    uint8_t *new_kek;         /* secmem, while awaiting verification */
    keyset new_ks;
  } rk;
  /* Writes in flight (see "changes" below). */
  int busy;                   /* a key change is being committed */
  int busy_auto;              /* ... started by the server (automatic rotation) */
  int flushing;               /* a counter flush is being committed */
  void (*slot_free)(void *ctx); /* cs_seal_on_key_slot_free */
  void *slot_free_ctx;
  unsigned inflight;          /* batches submitted, not yet done */
  unsigned epoch;             /* bumped at every seal/unseal */
  int closing;                /* free when inflight drops to 0 */
};

/* ---------------------------------------------------------------- helpers */

static size_t share_len_for(unsigned n) { return n == 1 ? CS_KEY_LEN : CS_SHARE_LEN; }

static int make_nonce(char out[CS_NONCE_STR]) {
  uint8_t r[16];
  int rc = cs_random(r, sizeof r);
  if (rc < 0)
    return rc;
  r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* UUID v4 */
  r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
  snprintf(out, CS_NONCE_STR,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
           r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
  return 0;
}

static int ceremony_start(ceremony *c) {
  if (c->parts == NULL && (c->parts = cs_secmem_alloc(PARTS_BYTES)) == NULL)
    return CS_ENOMEM;
  c->count = 0;
  return make_nonce(c->nonce);
}

static void ceremony_clear(ceremony *c) {
  if (c->parts != NULL)
    cs_wipe(c->parts, PARTS_BYTES);
  c->count = 0;
  c->nonce[0] = '\0';
}

/* Forgets the shares but keeps the nonce: the ceremony goes on. */
static void ceremony_drop_parts(ceremony *c) {
  if (c->parts != NULL)
    cs_wipe(c->parts, PARTS_BYTES);
  c->count = 0;
}

static void ceremony_free(ceremony *c) {
  cs_secmem_free(c->parts, PARTS_BYTES);
  c->parts = NULL;
  c->count = 0;
  c->nonce[0] = '\0';
}

/* 1 when `share` was already submitted to c (constant time per part). */
static int ceremony_has(const ceremony *c, const uint8_t *share, size_t len) {
  int found = 0;
  for (unsigned i = 0; i < c->count; i++)
    found |= cs_ct_equal(c->parts + (size_t)i * CS_SHARE_LEN, share, len);
  return found;
}

static void ceremony_add(ceremony *c, const uint8_t *share, size_t len) {
  memcpy(c->parts + (size_t)c->count * CS_SHARE_LEN, share, len);
  c->count++;
}

/* Rebuilds the KEK from the collected shares into kek (CS_KEY_LEN). */
static int ceremony_combine(const ceremony *c, const keyset *ks, uint8_t *kek) {
  if (ks->n == 1) {
    memcpy(kek, c->parts, CS_KEY_LEN);
    return 0;
  }
  const uint8_t *ptrs[CS_SHAMIR_MAX_SHARES];
  for (unsigned i = 0; i < c->count; i++)
    ptrs[i] = c->parts + (size_t)i * CS_SHARE_LEN;
  return cs_shamir_combine(ptrs, c->count, CS_SHARE_LEN, kek);
}

static void keyset_free(keyset *ks) {
  free(ks->macs);
  memset(ks, 0, sizeof *ks);
}

/* 1 when the share belongs to the key set.  Every MAC is compared, in
 * constant time, so timing says nothing about which share matched. */
static int keyset_member(const keyset *ks, const uint8_t *share, size_t len) {
  uint8_t mac[MAC_LEN];
  int found = 0;
  cs_hmac_sha256(ks->salt, sizeof ks->salt, share, len, mac);
  for (unsigned i = 0; i < ks->n; i++)
    found |= cs_ct_equal(ks->macs[i], mac, MAC_LEN);
  cs_wipe(mac, sizeof mac);
  return found;
}

/* A key set for freshly split shares. */
static int keyset_make(keyset *ks, unsigned n, unsigned t, const uint8_t *shares, size_t slen) {
  memset(ks, 0, sizeof *ks);
  ks->macs = calloc(n, MAC_LEN);
  if (ks->macs == NULL)
    return CS_ENOMEM;
  ks->n = n;
  ks->t = t;
  int rc = cs_random(ks->salt, sizeof ks->salt);
  if (rc < 0)
    return rc;
  for (unsigned i = 0; i < n; i++)
    cs_hmac_sha256(ks->salt, sizeof ks->salt, shares + (size_t)i * slen, slen, ks->macs[i]);
  return 0;
}

/* `create`: init's seal config must not exist yet (see on_committed). */
static int keyset_stage(const keyset *ks, cs_batch *b, int create) {
  Custos__SealConfig sc = CUSTOS__SEAL_CONFIG__INIT;
  ProtobufCBinaryData macs[CS_SHAMIR_MAX_SHARES];
  sc.shares = ks->n;
  sc.threshold = ks->t;
  sc.share_salt.data = (uint8_t *)ks->salt;
  sc.share_salt.len = MAC_LEN;
  for (unsigned i = 0; i < ks->n; i++) {
    macs[i].data = (uint8_t *)ks->macs[i];
    macs[i].len = MAC_LEN;
  }
  sc.n_share_macs = ks->n;
  sc.share_macs = macs;
  sc.created = cs_now();
  size_t len = custos__seal_config__get_packed_size(&sc);
  uint8_t *buf = malloc(len);
  if (buf == NULL)
    return CS_ENOMEM;
  custos__seal_config__pack(&sc, buf);
  int rc = create ? cs_batch_put_new(b, P_SEAL_CONFIG, buf, len)
                  : cs_batch_put(b, P_SEAL_CONFIG, buf, len);
  free(buf);
  return rc;
}

static int valid_params(unsigned n, unsigned t) {
  if (n < 1 || n > CS_SHAMIR_MAX_SHARES)
    return cs_error_set(CS_EINVAL, "key shares must be between 1 and 255, not %u", n);
  if (t > n)
    return cs_error_set(CS_EINVAL, "key threshold %u is greater than key shares %u", t, n);
  if (n > 1 && t < 2)
    return cs_error_set(CS_EINVAL, "key threshold must be at least 2 when shares > 1");
  if (n == 1 && t != 1)
    return cs_error_set(CS_EINVAL, "key threshold must be 1 when there is one share");
  return 0;
}

/* Parses and validates a core/seal-config value into ks. */
static int keyset_decode(const uint8_t *buf, size_t len, keyset *out) {
  Custos__SealConfig *sc = custos__seal_config__unpack(NULL, len, buf);
  int rc = cs_error_set(CS_ESTORECORRUPT, "core/seal-config is corrupt");
  if (sc == NULL)
    return rc;
  if (sc->shares < 1 || sc->shares > CS_SHAMIR_MAX_SHARES || sc->threshold > sc->shares ||
      (sc->shares > 1 && sc->threshold < 2) || (sc->shares == 1 && sc->threshold != 1) ||
      sc->share_salt.len != MAC_LEN || sc->n_share_macs != sc->shares)
    goto out;
  for (size_t i = 0; i < sc->n_share_macs; i++)
    if (sc->share_macs[i].len != MAC_LEN)
      goto out;
  keyset ks = {.n = sc->shares, .t = sc->threshold, .macs = calloc(sc->shares, MAC_LEN)};
  if (ks.macs == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  memcpy(ks.salt, sc->share_salt.data, MAC_LEN);
  for (unsigned i = 0; i < ks.n; i++)
    memcpy(ks.macs[i], sc->share_macs[i].data, MAC_LEN);
  *out = ks;
  rc = 0;
out:
  custos__seal_config__free_unpacked(sc, NULL);
  return rc;
}

int cs_seal_config_check(const uint8_t *buf, size_t len) {
  keyset ks = {0};
  int rc = keyset_decode(buf, len, &ks);
  keyset_free(&ks);
  return rc;
}

static int load_keyset(cs_seal *s) {
  uint8_t *buf;
  size_t len;
  int rc = cs_store_get(s->opts.store, P_SEAL_CONFIG, &buf, &len);
  if (rc == CS_ENOTFOUND) {
    s->initialized = 0;
    return 0;
  }
  if (rc < 0)
    return rc;
  keyset ks = {0};
  rc = keyset_decode(buf, len, &ks);
  free(buf);
  if (rc < 0)
    return rc;
  keyset_free(&s->ks);
  s->ks = ks;
  s->initialized = 1;
  return 0;
}

/* Seals `pt` under `key` (term 0) and stages it at `path`. */
static int stage_sealed(cs_batch *b, const uint8_t *key, const char *path, const uint8_t *pt,
                        size_t len) {
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_barrier_seal_with(key, 0, path, pt, len, &ct, &ct_len);
  if (rc < 0)
    return rc;
  rc = cs_batch_put(b, path, ct, ct_len);
  free(ct);
  return rc;
}

static int stage_keyring(cs_batch *b, const uint8_t *root_key, const cs_keyring *k) {
  uint8_t *pt;
  size_t len;
  int rc = cs_keyring_encode(k, &pt, &len);
  if (rc < 0)
    return rc;
  rc = stage_sealed(b, root_key, P_KEYRING, pt, len);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

static uint64_t total_encryptions(const cs_keyring *k) {
  uint64_t sum = 0;
  cs_term_info ti;
  for (size_t i = 0; i < cs_keyring_count(k); i++) {
    cs_keyring_info(k, i, &ti);
    sum += ti.encryptions;
  }
  return sum;
}

/* Reads and opens a term-0 sealed value. */
static int read_sealed(cs_seal *s, const uint8_t *key, const char *path, uint8_t **pt,
                       size_t *len) {
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_store_get(s->opts.store, path, &ct, &ct_len);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ESTORECORRUPT, "%s is missing", path);
  if (rc < 0)
    return rc;
  rc = cs_barrier_open_with(key, path, ct, ct_len, pt, len);
  free(ct);
  return rc;
}

/* Opens the root key with a candidate KEK: CS_EKEYMISMATCH when the KEK is
 * wrong (GCM tag), nothing changed. */
static int open_root_key(cs_seal *s, const uint8_t *kek, uint8_t *root_key) {
  uint8_t *pt = NULL;
  size_t len;
  int rc = read_sealed(s, kek, P_UNSEAL_ROOT, &pt, &len);
  if (rc == CS_EAUTH)
    return cs_error_set(CS_EKEYMISMATCH, "unseal key does not match");
  if (rc < 0)
    return rc;
  if (len != CS_KEY_LEN)
    rc = cs_error_set(CS_ESTORECORRUPT, "root key has the wrong length");
  else
    memcpy(root_key, pt, CS_KEY_LEN);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

/* ---------------------------------------------------------------- changes
 *
 * A change is one batch in flight plus what to do in memory once it is
 * committed.  Key changes (init, rotate, rotate config, rekey swap) are
 * mutually exclusive (s->busy).  The counter flush is housekeeping and
 * never holds an operator back: it is not started while a key change is in
 * flight (a flush that carries the old keyring must never land after a
 * rotation that carries the new one), but a key change may start while a
 * flush is in flight (s->flushing).  That is safe because the commit path
 * keeps submission order (one writer, FIFO; in a cluster, raft entries in
 * order): the flush lands first and the rotation's keyring, staged from
 * the same counters or later ones, replaces it; and completions run in
 * commit order, so the rotation's counter sum is the one that stays.
 * A change made while unsealed is applied only if the node was not sealed
 * (or resealed) meanwhile (epoch); the committed data is loaded at the next
 * unseal anyway.
 */

enum change_kind { CH_INIT, CH_ROTATE, CH_ROTATE_CONFIG, CH_FLUSH, CH_REKEY, CH_EXPIRE };

typedef struct change {
  cs_seal *s;
  enum change_kind kind;
  unsigned epoch;
  cs_seal_cb cb;
  void *arg;
  cs_keyring *next_kr;        /* rotate */
  keyset ks;                  /* init, rekey: the new key set */
  cs_rotate_config rot;       /* rotate config */
  uint64_t flushed;           /* flush, rotate: counter sum written */
  cs_seal_result res;         /* handed to cb */
} change;

static void seal_free(cs_seal *s);

static change *change_new(cs_seal *s, enum change_kind kind, cs_seal_cb cb, void *arg) {
  change *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->s = s;
  c->kind = kind;
  c->epoch = s->epoch;
  c->cb = cb;
  c->arg = arg;
  return c;
}

static void change_free(change *c) {
  cs_keyring_free(c->next_kr);
  keyset_free(&c->ks);
  if (c->res.shares != NULL) {
    cs_wipe(c->res.shares, (size_t)c->res.n * c->res.share_len);
    free(c->res.shares);
  }
  if (c->res.root_token != NULL) {
    cs_wipe(c->res.root_token, strlen(c->res.root_token));
    free(c->res.root_token);
  }
  cs_rekey_status_clear(&c->res.rekey);
  free(c);
}

static void apply_change(cs_seal *s, change *c) {
  int live = s->kr != NULL && c->epoch == s->epoch;
  switch (c->kind) {
  case CH_INIT:
    keyset_free(&s->ks);
    s->ks = c->ks;
    memset(&c->ks, 0, sizeof c->ks);
    s->initialized = 1;
    break;
  case CH_ROTATE:
    if (!live)
      break;
    /* Encryptions made while the rotation was in flight were counted on the
     * old ring: carry them over. */
    cs_keyring_free(s->kr);
    s->kr = c->next_kr;
    c->next_kr = NULL;
    s->flushed_encryptions = c->flushed;
    cs_info("keyring rotated: term %u is active", c->res.term);
    break;
  case CH_ROTATE_CONFIG:
    if (live)
      s->rot = c->rot;
    break;
  case CH_FLUSH:
    if (live)
      s->flushed_encryptions = c->flushed;
    break;
  case CH_REKEY:
    keyset_free(&s->ks);
    s->ks = c->ks;
    memset(&c->ks, 0, sizeof c->ks);
    ceremony_clear(&s->unseal); /* shares of the old set are void now */
    cs_info("rekey complete: %u shares, threshold %u", s->ks.n, s->ks.t);
    break;
  case CH_EXPIRE:
    break;
  }
}

static void on_committed(void *arg, int status) {
  change *c = arg;
  cs_seal *s = c->s;
  s->inflight--;
  int freed = c->kind != CH_FLUSH && c->kind != CH_EXPIRE;
  if (c->kind == CH_FLUSH)
    s->flushing = 0;
  else if (freed)
    s->busy = s->busy_auto = 0;
  /* The store (every node's, in a cluster) refused to overwrite an existing
   * seal config: whoever initialized it first keeps their shares. */
  if (status == CS_EEXISTS && c->kind == CH_INIT)
    status = cs_error_set(CS_EALREADYINIT, "server is already initialized: the store already "
                                           "holds core/seal-config (init refused, nothing written)");
  if (status == 0 && !s->closing)
    apply_change(s, c);
  if (status == 0 && !s->closing && s->opts.on_key_change != NULL &&
      (c->kind == CH_INIT || c->kind == CH_ROTATE || c->kind == CH_REKEY))
    s->opts.on_key_change(s->opts.key_change_ctx, c->kind == CH_INIT     ? "init"
                                                  : c->kind == CH_ROTATE ? "rotate"
                                                                         : "rekey");
  if (status < 0 && c->kind == CH_FLUSH)
    cs_warn("could not persist encryption counters: %s", cs_error_message(status));
  if (c->cb != NULL)
    c->cb(c->arg, status, &c->res);
  change_free(c);
  if (s->closing && s->inflight == 0) {
    seal_free(s);
    return;
  }
  /* Operator requests that met the server's own key change go now. */
  if (freed && !s->closing && s->slot_free != NULL)
    s->slot_free(s->slot_free_ctx);
}

int cs_seal_key_slot(const cs_seal *s) {
  return !s->busy ? CS_SEAL_SLOT_FREE : s->busy_auto ? CS_SEAL_SLOT_SERVER : CS_SEAL_SLOT_OPERATOR;
}

void cs_seal_on_key_slot_free(cs_seal *s, void (*fn)(void *ctx), void *ctx) {
  s->slot_free = fn;
  s->slot_free_ctx = ctx;
}

/* Submits the change's batch.  Returns CS_SEAL_PENDING (c now belongs to
 * the commit path) or an error (c freed, nothing happened). */
static int submit(cs_seal *s, change *c, cs_batch *b) {
  int key_change = c->kind != CH_EXPIRE && c->kind != CH_FLUSH;
  if (key_change)
    s->busy = 1;
  if (c->kind == CH_FLUSH)
    s->flushing = 1;
  s->inflight++;
  int rc;
  if (s->opts.submit != NULL) {
    rc = s->opts.submit(s->opts.submit_ctx, b, on_committed, c);
  } else {
    /* Synchronous backend (tests, tools): commit and complete right here. */
    rc = cs_store_commit(s->opts.store, b);
    if (rc == 0) {
      cs_batch_clear(b);
      on_committed(c, 0);
      return CS_SEAL_PENDING;
    }
  }
  cs_batch_clear(b);
  if (rc < 0) {
    s->inflight--;
    if (key_change)
      s->busy = 0;
    if (c->kind == CH_FLUSH)
      s->flushing = 0;
    change_free(c);
    return rc;
  }
  return CS_SEAL_PENDING;
}

static int check_idle(cs_seal *s) {
  if (s->busy)
    return cs_error_set(CS_EBUSY, "another key change is being committed; retry");
  return 0;
}

cs_store *cs_seal_store(cs_seal *s) { return s->opts.store; }

/* ---------------------------------------------------------------- open/close */

int cs_seal_open(cs_seal **out, const cs_seal_opts *opts) {
  int rc = cs_crypto_init();
  if (rc < 0)
    return rc;
  cs_seal *s = calloc(1, sizeof *s);
  if (s == NULL)
    return CS_ENOMEM;
  s->opts = *opts;
  if (s->opts.upgrade_ttl == 0)
    s->opts.upgrade_ttl = 120;
  if ((rc = load_keyset(s)) < 0) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void rekey_clear(cs_seal *s) {
  ceremony_free(&s->rk.cur);
  ceremony_free(&s->rk.ver);
  cs_secmem_free(s->rk.new_kek, CS_KEY_LEN);
  s->rk.new_kek = NULL;
  keyset_free(&s->rk.new_ks);
  s->rk.active = s->rk.verify = s->rk.awaiting_verification = 0;
  s->rk.n = s->rk.t = 0;
}

static void notify_change(cs_seal *s, int sealed) {
  if (s->opts.on_change != NULL)
    s->opts.on_change(s->opts.on_change_ctx, sealed);
}

static void wipe_keys(cs_seal *s) {
  cs_secmem_free(s->root_key, CS_KEY_LEN);
  s->root_key = NULL;
  cs_keyring_free(s->kr);
  s->kr = NULL;
  rekey_clear(s);
}

static void seal_free(cs_seal *s) {
  ceremony_free(&s->unseal);
  keyset_free(&s->ks);
  free(s);
}

void cs_seal_close(cs_seal *s) {
  if (s == NULL)
    return;
  cs_seal_seal(s);
  s->closing = 1;
  if (s->inflight == 0)
    seal_free(s);
}

/* ---------------------------------------------------------------- init */

static int build_init(cs_seal *s, change *c, unsigned n, unsigned t, cs_batch *b) {
  int rc;
  uint8_t kek[CS_KEY_LEN], root[CS_KEY_LEN];
  char token[CS_TOKEN_MAX] = {0};
  char accessor[25];
  uint8_t acc_raw[12];
  cs_keyring *kr = NULL;
  size_t slen = share_len_for(n);
  uint8_t *shares = malloc((size_t)n * slen);

  rc = CS_ENOMEM;
  if (shares == NULL)
    goto out;
  if ((rc = cs_random(kek, sizeof kek)) < 0 || (rc = cs_random(root, sizeof root)) < 0)
    goto out;
  if (n == 1)
    memcpy(shares, kek, CS_KEY_LEN);
  else if ((rc = cs_shamir_split(kek, CS_KEY_LEN, n, t, shares)) < 0)
    goto out;
  if ((rc = keyset_make(&c->ks, n, t, shares, slen)) < 0)
    goto out;
  if ((rc = cs_keyring_new(&kr)) < 0 || (rc = cs_keyring_rotate(kr, cs_now(), NULL)) < 0)
    goto out;
  if ((rc = cs_token_generate(token)) < 0 || (rc = cs_random(acc_raw, sizeof acc_raw)) < 0)
    goto out;
  cs_hex_encode(acc_raw, sizeof acc_raw, accessor);
  Custos__TokenEntry te = CUSTOS__TOKEN_ENTRY__INIT;
  char *root_policy[] = {"root"};
  te.accessor = accessor;
  te.n_policies = 1;
  te.policies = root_policy;
  te.issue_time = cs_now();
  te.root = 1;

  /* Everything of a new installation in one transaction: a crash leaves
   * either nothing or a complete initialization. */
  /* The audit log's HMAC key is per installation, under the barrier. */
  uint8_t audit_key[CS_KEY_LEN];
  if ((rc = cs_random(audit_key, sizeof audit_key)) < 0)
    goto out;
  rc = cs_barrier_stage_put(kr, b, P_AUDIT_KEY, audit_key, sizeof audit_key);
  cs_wipe(audit_key, sizeof audit_key);
  if (rc < 0)
    goto out;
  if ((rc = keyset_stage(&c->ks, b, 1)) < 0 ||
      (rc = stage_sealed(b, kek, P_UNSEAL_ROOT, root, sizeof root)) < 0 ||
      (rc = cs_barrier_stage_put(kr, b, P_ROOT_KEY, root, sizeof root)) < 0 ||
      (rc = cs_token_stage(kr, token, &te, b)) < 0 ||
      (rc = stage_keyring(b, root, kr)) < 0) /* last: it carries the counters */
    goto out;
  rc = CS_ENOMEM;
  if ((c->res.root_token = strdup(token)) == NULL)
    goto out;
  c->res.shares = shares;
  c->res.share_len = slen;
  c->res.n = n;
  c->res.t = t;
  shares = NULL;
  rc = 0;
out:
  cs_wipe(kek, sizeof kek);
  cs_wipe(root, sizeof root);
  cs_wipe(token, sizeof token);
  if (shares != NULL) {
    cs_wipe(shares, (size_t)n * slen);
    free(shares);
  }
  cs_keyring_free(kr);
  return rc;
}

int cs_seal_init(cs_seal *s, unsigned n, unsigned t, cs_seal_cb cb, void *arg) {
  int rc;
  if (s->initialized)
    return cs_error_set(CS_EALREADYINIT, "server is already initialized");
  if ((rc = valid_params(n, t)) < 0 || (rc = check_idle(s)) < 0)
    return rc;
  /* Another process may have initialized the same directory meanwhile. */
  if ((rc = cs_store_exists(s->opts.store, P_SEAL_CONFIG)) != 0)
    return rc < 0 ? rc : cs_error_set(CS_EALREADYINIT, "server is already initialized");
  change *c = change_new(s, CH_INIT, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = build_init(s, c, n, t, &b)) < 0) {
    cs_batch_clear(&b);
    change_free(c);
    return rc;
  }
  return submit(s, c, &b);
}

/* ---------------------------------------------------------------- unseal */

static int load_rotate_config(cs_seal *s) {
  s->rot.enabled = 1;
  s->rot.max_operations = CS_DEFAULT_MAX_OPS;
  s->rot.interval_seconds = 0;
  uint8_t *pt;
  size_t pt_len;
  int rc = cs_barrier_get(s->opts.store, s->kr, P_ROTATE_CONFIG, &pt, &pt_len);
  if (rc == CS_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  Custos__RotateConfig *m = custos__rotate_config__unpack(NULL, pt_len, pt);
  free(pt);
  if (m == NULL)
    return cs_error_set(CS_ESTORECORRUPT, "core/rotate-config is corrupt");
  s->rot.enabled = m->enabled;
  s->rot.max_operations = m->max_operations;
  s->rot.interval_seconds = m->interval_seconds;
  custos__rotate_config__free_unpacked(m, NULL);
  return 0;
}

/* Reads core/keyring with the root key into a fresh keyring. */
static int read_keyring(cs_seal *s, const uint8_t *root, cs_keyring **out) {
  uint8_t *pt = NULL;
  size_t len = 0;
  int rc = read_sealed(s, root, P_KEYRING, &pt, &len);
  if (rc < 0)
    return rc;
  rc = cs_keyring_decode(pt, len, out);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

/* With the KEK rebuilt: open the root key, then the keyring. */
static int unseal_with(cs_seal *s, const uint8_t *kek) {
  cs_keyring *kr = NULL;
  uint8_t *root = cs_secmem_alloc(CS_KEY_LEN);
  if (root == NULL)
    return CS_ENOMEM;
  int rc = open_root_key(s, kek, root);
  if (rc == 0)
    rc = read_keyring(s, root, &kr);
  if (rc < 0)
    goto fail;
  s->root_key = root;
  s->kr = kr;
  s->flushed_encryptions = total_encryptions(kr);
  if ((rc = load_rotate_config(s)) < 0) {
    s->root_key = NULL;
    s->kr = NULL;
    goto fail;
  }
  s->epoch++;
  notify_change(s, 0);
  return 0;
fail:
  cs_keyring_free(kr);
  cs_secmem_free(root, CS_KEY_LEN);
  return rc;
}

int cs_seal_unseal(cs_seal *s, const uint8_t *share, size_t len) {
  if (!s->initialized)
    return cs_error_set(CS_ENOTINIT, "server is not initialized");
  if (s->kr != NULL)
    return 0;
  size_t want = share_len_for(s->ks.n);
  if (len != want)
    return cs_error_set(CS_EBADSHARE, "unseal key share must be %zu bytes, got %zu", want, len);
  if (!keyset_member(&s->ks, share, len))
    return cs_error_set(CS_ENOTMEMBER, "share is not part of the current key set");
  int rc;
  if (s->unseal.count == 0 && (rc = ceremony_start(&s->unseal)) < 0)
    return rc;
  if (ceremony_has(&s->unseal, share, len))
    return 0; /* a repeated share is ignored */
  ceremony_add(&s->unseal, share, len);
  if (s->unseal.count < s->ks.t)
    return 0;

  uint8_t kek[CS_KEY_LEN];
  rc = ceremony_combine(&s->unseal, &s->ks, kek);
  if (rc == 0)
    rc = unseal_with(s, kek);
  cs_wipe(kek, sizeof kek);
  ceremony_clear(&s->unseal); /* success or failure: the parts are done with */
  return rc;
}

void cs_seal_reset(cs_seal *s) { ceremony_clear(&s->unseal); }

void cs_seal_seal(cs_seal *s) {
  if (s->kr != NULL) {
    int rc = cs_seal_flush_counters(s);
    if (rc < 0 && rc != CS_EBUSY)
      cs_warn("sealing: could not persist encryption counters: %s", cs_error_message(rc));
  }
  wipe_keys(s);
  ceremony_clear(&s->unseal);
  s->epoch++;
  notify_change(s, 1);
}

void cs_seal_get_status(const cs_seal *s, cs_seal_status *st) {
  memset(st, 0, sizeof *st);
  st->initialized = s->initialized;
  st->sealed = s->kr == NULL;
  st->t = s->ks.t;
  st->n = s->ks.n;
  st->progress = s->unseal.count;
  if (s->unseal.count > 0)
    memcpy(st->nonce, s->unseal.nonce, CS_NONCE_STR);
  st->term = s->kr ? cs_keyring_active(s->kr) : 0;
}

cs_keyring *cs_seal_keyring(cs_seal *s) { return s->kr; }

/* ---------------------------------------------------------------- snapshots */

const uint8_t *cs_seal_root_key(const cs_seal *s) { return s->kr != NULL ? s->root_key : NULL; }

int cs_seal_restore_begin(cs_seal *s) {
  int rc = check_idle(s);
  if (rc < 0)
    return rc;
  s->busy = 1;
  return 0;
}

void cs_seal_restore_abort(cs_seal *s) { s->busy = 0; }

int cs_seal_restored(cs_seal *s, int seal) {
  s->busy = 0;
  ceremony_clear(&s->unseal); /* shares of the old set, maybe */
  rekey_clear(s);
  int rc = load_keyset(s);
  if (rc == 0 && !s->initialized)
    keyset_free(&s->ks);
  cs_keyring *kr = NULL;
  /* The same root key opens the restored keyring only for a snapshot of
   * this installation (GCM tag under the root key). */
  if (s->kr != NULL && !seal && rc == 0 && s->initialized)
    rc = read_keyring(s, s->root_key, &kr);
  if (s->kr == NULL || seal || !s->initialized || rc < 0) {
    if (s->kr != NULL)
      cs_info("restored a snapshot of another installation or key set: sealed; unseal with "
              "the snapshot's shares");
    cs_keyring_free(kr);
    wipe_keys(s); /* no counter flush: it would write the old keyring back */
    s->epoch++;
    notify_change(s, 1); /* a seal like any other (audit key, caches) */
    return rc < 0 && rc != CS_EAUTH ? rc : 0;
  }
  cs_keyring_free(s->kr);
  s->kr = kr;
  s->flushed_encryptions = total_encryptions(kr);
  s->epoch++;
  if ((rc = load_rotate_config(s)) < 0) {
    wipe_keys(s);
    notify_change(s, 1);
    return rc;
  }
  notify_change(s, 0); /* keys of the restored store: its audit key too */
  return 1;
}

/* ---------------------------------------------------------------- rotate */

static int stage_upgrade(cs_batch *b, const cs_keyring *next, uint32_t old_term,
                         const uint8_t *old_key, int64_t expires) {
  char path[64];
  snprintf(path, sizeof path, P_UPGRADE "%u", old_term);
  cs_term_info ti;
  uint32_t term = cs_keyring_active(next);
  int rc = cs_keyring_term_info(next, term, &ti);
  if (rc < 0)
    return rc;
  Custos__KeyringTerm kt = CUSTOS__KEYRING_TERM__INIT;
  kt.term = term;
  kt.key.data = (uint8_t *)cs_keyring_key(next, term);
  kt.key.len = CS_KEY_LEN;
  kt.install_time = ti.install_time;
  Custos__UpgradeKey uk = CUSTOS__UPGRADE_KEY__INIT;
  uk.next = &kt;
  uk.expires = expires;
  size_t len = custos__upgrade_key__get_packed_size(&uk);
  uint8_t *pt = malloc(len), *ct;
  size_t ct_len;
  if (pt == NULL)
    return CS_ENOMEM;
  custos__upgrade_key__pack(&uk, pt);
  /* Sealed under the OLD term's key, with the old term in its header:
   * exactly what a standby that only knows the old term holds. */
  rc = cs_barrier_seal_with(old_key, old_term, path, pt, len, &ct, &ct_len);
  cs_wipe(pt, len);
  free(pt);
  if (rc < 0)
    return rc;
  rc = cs_batch_put(b, path, ct, ct_len);
  free(ct);
  return rc;
}

int cs_seal_rotate(cs_seal *s, cs_seal_cb cb, void *arg) {
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  int rc = check_idle(s);
  if (rc < 0)
    return rc;
  change *c = change_new(s, CH_ROTATE, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  uint32_t old_term = cs_keyring_active(s->kr);
  int64_t now = cs_now();
  if ((rc = cs_keyring_clone(s->kr, &c->next_kr)) < 0 ||
      (rc = cs_keyring_rotate(c->next_kr, now, &c->res.term)) < 0)
    goto fail;
  c->res.install_time = now;
  /* New keyring + root key under the new term + upgrade key: one batch.
   * The root key is staged first so its encryption is counted in the ring. */
  if ((rc = cs_barrier_stage_put(c->next_kr, &b, P_ROOT_KEY, s->root_key, CS_KEY_LEN)) < 0 ||
      (rc = stage_upgrade(&b, c->next_kr, old_term, cs_keyring_key(s->kr, old_term),
                          now + (int64_t)s->opts.upgrade_ttl)) < 0 ||
      (rc = stage_keyring(&b, s->root_key, c->next_kr)) < 0)
    goto fail;
  c->flushed = total_encryptions(c->next_kr);
  return submit(s, c, &b);
fail:
  cs_batch_clear(&b);
  change_free(c);
  return rc;
}

int cs_seal_flush_counters(cs_seal *s) {
  if (s->kr == NULL)
    return 0;
  uint64_t sum = total_encryptions(s->kr);
  if (sum == s->flushed_encryptions)
    return 0;
  if (s->busy || s->flushing)
    return CS_EBUSY; /* the next tick will do it */
  change *c = change_new(s, CH_FLUSH, NULL, NULL);
  if (c == NULL)
    return CS_ENOMEM;
  c->flushed = sum;
  cs_batch b;
  cs_batch_init(&b);
  int rc = stage_keyring(&b, s->root_key, s->kr);
  if (rc < 0) {
    cs_batch_clear(&b);
    change_free(c);
    return rc;
  }
  rc = submit(s, c, &b);
  return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------- rotate config */

int cs_seal_rotate_config_get(cs_seal *s, cs_rotate_config *cfg) {
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  *cfg = s->rot;
  return 0;
}

int cs_seal_rotate_config_set(cs_seal *s, const cs_rotate_config *cfg, cs_seal_cb cb, void *arg) {
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (cfg->max_operations < CS_MIN_MAX_OPS || cfg->max_operations > CS_DEFAULT_MAX_OPS)
    return cs_error_set(CS_EINVAL, "max-operations must be between %llu and %llu",
                        (unsigned long long)CS_MIN_MAX_OPS, (unsigned long long)CS_DEFAULT_MAX_OPS);
  if (cfg->interval_seconds != 0 &&
      (cfg->interval_seconds < CS_MIN_INTERVAL || cfg->interval_seconds > CS_MAX_INTERVAL))
    return cs_error_set(CS_EINVAL, "interval must be 0 (none) or between %llu and %llu seconds",
                        (unsigned long long)CS_MIN_INTERVAL, (unsigned long long)CS_MAX_INTERVAL);
  int rc = check_idle(s);
  if (rc < 0)
    return rc;
  change *c = change_new(s, CH_ROTATE_CONFIG, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  c->rot = *cfg;
  Custos__RotateConfig m = CUSTOS__ROTATE_CONFIG__INIT;
  m.enabled = cfg->enabled != 0;
  m.max_operations = cfg->max_operations;
  m.interval_seconds = cfg->interval_seconds;
  uint8_t buf[64];
  size_t len = custos__rotate_config__pack(&m, buf);
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = cs_barrier_stage_put(s->kr, &b, P_ROTATE_CONFIG, buf, len)) < 0) {
    cs_batch_clear(&b);
    change_free(c);
    return rc;
  }
  return submit(s, c, &b);
}

/* ---------------------------------------------------------------- tick */

typedef struct expired_scan {
  cs_seal *s;
  int64_t now;
  cs_batch *b;
} expired_scan;

/* The expiry of an upgrade key, or 0 when it cannot be read (then it is
 * useless to any standby of ours and goes too). */
static int64_t upgrade_expiry(const cs_keyring *kr, const char *path, const uint8_t *val,
                              size_t val_len, Custos__UpgradeKey **keep) {
  uint8_t *pt;
  size_t len;
  int64_t expires = 0;
  if (cs_barrier_decrypt(kr, path, val, val_len, &pt, &len) != 0)
    return 0;
  Custos__UpgradeKey *uk = custos__upgrade_key__unpack(NULL, len, pt);
  cs_wipe(pt, len);
  free(pt);
  if (uk == NULL)
    return 0;
  expires = uk->expires;
  if (keep != NULL && uk->next != NULL && uk->next->key.len == CS_KEY_LEN) {
    *keep = uk;
    return expires;
  }
  if (uk->next != NULL && uk->next->key.data != NULL)
    cs_wipe(uk->next->key.data, uk->next->key.len);
  custos__upgrade_key__free_unpacked(uk, NULL);
  return keep != NULL ? 0 : expires;
}

static int collect_expired(void *arg, const char *key, size_t key_len, const uint8_t *val,
                           size_t val_len) {
  expired_scan *e = arg;
  if (upgrade_expiry(e->s->kr, key, val, val_len, NULL) <= e->now)
    return cs_batch_del(e->b, key);
  return 0;
}

static void on_auto_rotated(void *arg, int status, cs_seal_result *res) {
  if (status < 0)
    cs_warn("automatic rotation failed: %s", cs_error_message(status));
  else
    cs_info("automatic rotation: term %u is active", res->term);
}

int cs_seal_tick(cs_seal *s, int64_t now, int flush, int *rotating) {
  *rotating = 0;
  if (s->kr == NULL)
    return 0;
  int rc = 0;
  cs_term_info ti;
  cs_keyring_info(s->kr, cs_keyring_count(s->kr) - 1, &ti);
  /* Compared unsigned: a stored interval above INT64_MAX must not read as
   * negative (always due); a clock before the install time is age 0. */
  uint64_t age = now > ti.install_time ? (uint64_t)now - (uint64_t)ti.install_time : 0;
  int due = s->rot.enabled &&
            (ti.encryptions > s->rot.max_operations ||
             (s->rot.interval_seconds != 0 && age >= s->rot.interval_seconds));
  if (due && !s->busy) {
    cs_info("automatic rotation due: term %u has %llu encryptions and is %llu s old", ti.term,
            (unsigned long long)ti.encryptions, (unsigned long long)age);
    rc = cs_seal_rotate(s, on_auto_rotated, NULL);
    if (rc < 0)
      return rc;
    if (s->busy) /* still in flight (an asynchronous commit) */
      s->busy_auto = 1;
    *rotating = 1;
  }
  cs_batch b;
  cs_batch_init(&b);
  expired_scan e = {s, now, &b};
  rc = cs_store_scan(s->opts.store, P_UPGRADE, collect_expired, &e);
  if (rc == 0 && b.n > 0) {
    change *c = change_new(s, CH_EXPIRE, NULL, NULL);
    rc = c == NULL ? CS_ENOMEM : submit(s, c, &b);
    rc = rc < 0 ? rc : 0;
  }
  cs_batch_clear(&b);
  if (rc == 0 && flush) {
    rc = cs_seal_flush_counters(s);
    if (rc == CS_EBUSY)
      rc = 0;
  }
  return rc;
}

typedef struct acked_scan {
  uint32_t acked;
  cs_batch *b;
} acked_scan;

static int collect_acked(void *arg, const char *key, size_t key_len, const uint8_t *val,
                         size_t val_len) {
  acked_scan *a = arg;
  char *end;
  unsigned long n = strtoul(key + sizeof P_UPGRADE - 1, &end, 10);
  if (*end != '\0' || n >= a->acked)
    return 0;
  return cs_batch_del(a->b, key);
}

int cs_seal_upgrades_acked(cs_seal *s, uint32_t acked_term) {
  if (s->kr == NULL || acked_term == 0)
    return 0;
  cs_batch b;
  cs_batch_init(&b);
  acked_scan a = {acked_term, &b};
  int rc = cs_store_scan(s->opts.store, P_UPGRADE, collect_acked, &a);
  if (rc == 0 && b.n > 0) {
    cs_info("deleting %zu upgrade key(s): every member has term %u", b.n, acked_term);
    change *c = change_new(s, CH_EXPIRE, NULL, NULL);
    rc = c == NULL ? CS_ENOMEM : submit(s, c, &b);
    rc = rc < 0 ? rc : 0;
  }
  cs_batch_clear(&b);
  return rc;
}

/* ---------------------------------------------------------------- standby */

int cs_seal_reload(cs_seal *s) {
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  cs_keyring *kr;
  int rc = load_keyset(s);
  if (rc == 0)
    rc = read_keyring(s, s->root_key, &kr);
  if (rc < 0)
    return rc;
  cs_keyring_free(s->kr);
  s->kr = kr;
  s->flushed_encryptions = total_encryptions(kr);
  return load_rotate_config(s);
}

/* Installs the term after the active one from core/upgrade/<active>, if the
 * replica has an unexpired upgrade key.  1 installed, 0 none, <0 error. */
static int install_next(cs_seal *s, int64_t now) {
  uint32_t active = cs_keyring_active(s->kr);
  char path[64];
  snprintf(path, sizeof path, P_UPGRADE "%u", active);
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_store_get(s->opts.store, path, &ct, &ct_len);
  if (rc == CS_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  Custos__UpgradeKey *uk = NULL;
  int64_t expires = upgrade_expiry(s->kr, path, ct, ct_len, &uk);
  free(ct);
  if (uk == NULL)
    return 0;
  rc = 0;
  if (expires > now && uk->next->term == active + 1) {
    rc = cs_keyring_add(s->kr, uk->next->term, uk->next->key.data, uk->next->install_time, 0);
    if (rc == 0) {
      cs_info("standby: installed term %u from the upgrade key", uk->next->term);
      rc = 1;
    }
  }
  cs_wipe(uk->next->key.data, uk->next->key.len);
  custos__upgrade_key__free_unpacked(uk, NULL);
  return rc;
}

int cs_seal_follow(cs_seal *s, int64_t now, int *installed) {
  *installed = 0;
  int rc = load_keyset(s); /* a rekey on the active changes the share set */
  if (rc < 0 || s->kr == NULL)
    return rc;
  while ((rc = install_next(s, now)) == 1)
    (*installed)++;
  if (rc < 0)
    return rc;
  /* core/root-key is written under the newest term: if we lack that term,
   * we missed its upgrade window and our keyring is stale. */
  uint8_t *ct, *pt;
  size_t ct_len, len;
  uint32_t term = 0;
  if ((rc = cs_store_get(s->opts.store, P_ROOT_KEY, &ct, &ct_len)) < 0)
    return rc == CS_ENOTFOUND ? 0 : rc;
  rc = cs_barrier_term_of(ct, ct_len, &term);
  if (rc == 0 && cs_keyring_key(s->kr, term) == NULL) {
    free(ct);
    cs_error("standby missed the keyring upgrade to term %u (local keyring ends at term %u): "
             "sealing; unseal this node again to follow the cluster",
             term, cs_keyring_active(s->kr));
    cs_seal_seal(s);
    return cs_error_set(CS_ESEALED, "standby sealed itself after missing a keyring upgrade");
  }
  if (rc == 0)
    rc = cs_barrier_decrypt(s->kr, P_ROOT_KEY, ct, ct_len, &pt, &len);
  free(ct);
  if (rc < 0)
    return rc;
  if (len == CS_KEY_LEN && !cs_ct_equal(pt, s->root_key, CS_KEY_LEN))
    memcpy(s->root_key, pt, CS_KEY_LEN);
  cs_wipe(pt, len);
  free(pt);
  return 0;
}

/* ---------------------------------------------------------------- rekey */

void cs_rekey_status_clear(cs_rekey_status *st) {
  if (st->keys != NULL) {
    cs_wipe(st->keys, st->key_len * st->n);
    free(st->keys);
  }
  memset(st, 0, sizeof *st);
}

void cs_seal_rekey_status(const cs_seal *s, cs_rekey_status *st) {
  memset(st, 0, sizeof *st);
  st->started = s->rk.active;
  if (!s->rk.active)
    return;
  memcpy(st->nonce, s->rk.cur.nonce, CS_NONCE_STR);
  st->t = s->rk.t;
  st->n = s->rk.n;
  st->progress = s->rk.cur.count;
  st->required = s->ks.t;
  st->verification_required = s->rk.verify;
  if (s->rk.awaiting_verification) {
    memcpy(st->verification_nonce, s->rk.ver.nonce, CS_NONCE_STR);
    st->verification_progress = s->rk.ver.count;
  }
}

int cs_seal_rekey_init(cs_seal *s, unsigned n, unsigned t, int verify, cs_rekey_status *st) {
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (s->rk.active)
    return cs_error_set(CS_EINPROGRESS, "a rekey is already in progress (nonce %s)", s->rk.cur.nonce);
  int rc = valid_params(n, t);
  if (rc < 0)
    return rc;
  if ((rc = ceremony_start(&s->rk.cur)) < 0)
    return rc;
  s->rk.active = 1;
  s->rk.n = n;
  s->rk.t = t;
  s->rk.verify = verify != 0;
  cs_info("rekey started: %u shares, threshold %u%s", n, t, verify ? ", with verification" : "");
  cs_seal_rekey_status(s, st);
  return 0;
}

int cs_seal_rekey_cancel(cs_seal *s) {
  if (!s->rk.active)
    return cs_error_set(CS_ENOOP, "no rekey is in progress");
  if (s->busy)
    return cs_error_set(CS_EBUSY, "the rekey is being committed; retry");
  rekey_clear(s);
  cs_info("rekey cancelled");
  return 0;
}

/* Swaps to a new KEK: the new seal config and the root key sealed under the
 * new KEK, in one batch.  Only after the commit do the old shares stop
 * working.  `keys` (may be NULL) go to the caller with the result. */
static int rekey_swap(cs_seal *s, const uint8_t *new_kek, keyset *new_ks, cs_rekey_status *keys,
                      cs_seal_cb cb, void *arg) {
  change *c = change_new(s, CH_REKEY, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  c->ks = *new_ks;
  memset(new_ks, 0, sizeof *new_ks);
  if (keys != NULL) {
    c->res.rekey = *keys;
    memset(keys, 0, sizeof *keys);
  }
  c->res.rekey.complete = 1;
  c->res.rekey.n = c->ks.n;
  c->res.rekey.t = c->ks.t;
  cs_batch b;
  cs_batch_init(&b);
  int rc = keyset_stage(&c->ks, &b, 0);
  if (rc == 0)
    rc = stage_sealed(&b, new_kek, P_UNSEAL_ROOT, s->root_key, CS_KEY_LEN);
  if (rc < 0) {
    cs_batch_clear(&b);
    change_free(c);
    return rc;
  }
  return submit(s, c, &b);
}

/* Checks a share for a ceremony against a key set: length, membership,
 * duplicates.  Duplicates are explicit errors in a rekey (unlike unseal). */
static int check_share(const keyset *ks, const ceremony *c, const uint8_t *share, size_t len) {
  size_t want = share_len_for(ks->n);
  if (len != want)
    return cs_error_set(CS_EBADSHARE, "key share must be %zu bytes, got %zu", want, len);
  if (!keyset_member(ks, share, len))
    return cs_error_set(CS_ENOTMEMBER, "share is not part of the current key set");
  if (ceremony_has(c, share, len))
    return cs_error_set(CS_EDUPSHARE, "this share was already submitted");
  return 0;
}

/* Adds a share to a rekey ceremony (checked against `ks`).  Returns 1 when
 * it completed the threshold, 0 with *st filled when more are needed, or an
 * error.  The completing share is refused while another key change is
 * being committed, so the ceremony's result can be committed. */
static int ceremony_submit(cs_seal *s, const keyset *ks, ceremony *c, const uint8_t *share,
                           size_t len, cs_rekey_status *st) {
  int rc = check_share(ks, c, share, len);
  if (rc < 0)
    return rc;
  if (c->count + 1 >= ks->t && (rc = check_idle(s)) < 0)
    return rc;
  ceremony_add(c, share, len);
  if (c->count < ks->t) {
    cs_seal_rekey_status(s, st);
    return 0;
  }
  return 1;
}

/* The current shares reached the threshold: check them, make the new key
 * and shares.  On success *new_kek (secmem), *ks and st->keys are set. */
static int rekey_generate(cs_seal *s, uint8_t **new_kek, keyset *ks, cs_rekey_status *st) {
  uint8_t kek[CS_KEY_LEN], root[CS_KEY_LEN];
  size_t slen = share_len_for(s->rk.n);
  uint8_t *shares = NULL, *nk = NULL;
  int rc = ceremony_combine(&s->rk.cur, &s->ks, kek);
  if (rc == 0)
    rc = open_root_key(s, kek, root);
  if (rc == 0 && !cs_ct_equal(root, s->root_key, CS_KEY_LEN))
    rc = cs_error_set(CS_EKEYMISMATCH, "unseal key does not match");
  if (rc < 0) {
    ceremony_drop_parts(&s->rk.cur); /* like unseal: start over, same nonce */
    goto out;
  }
  rc = CS_ENOMEM;
  if ((nk = cs_secmem_alloc(CS_KEY_LEN)) == NULL || (shares = malloc(s->rk.n * slen)) == NULL)
    goto out;
  if ((rc = cs_random(nk, CS_KEY_LEN)) < 0)
    goto out;
  if (s->rk.n == 1)
    memcpy(shares, nk, CS_KEY_LEN);
  else if ((rc = cs_shamir_split(nk, CS_KEY_LEN, s->rk.n, s->rk.t, shares)) < 0)
    goto out;
  if ((rc = keyset_make(ks, s->rk.n, s->rk.t, shares, slen)) < 0)
    goto out;
  st->keys = shares;
  st->key_len = slen;
  st->n = s->rk.n;
  st->t = s->rk.t;
  st->complete = 1;
  *new_kek = nk;
  shares = NULL;
  nk = NULL;
out:
  cs_wipe(kek, sizeof kek);
  cs_wipe(root, sizeof root);
  cs_secmem_free(nk, CS_KEY_LEN);
  if (shares != NULL) {
    cs_wipe(shares, s->rk.n * slen);
    free(shares);
  }
  return rc;
}

int cs_seal_rekey_update(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st, cs_seal_cb cb, void *arg) {
  memset(st, 0, sizeof *st);
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (!s->rk.active)
    return cs_error_set(CS_ENOOP, "no rekey is in progress");
  if (s->rk.awaiting_verification)
    return cs_error_set(CS_EINPROGRESS, "rekey is awaiting verification of the new shares");
  if (nonce == NULL || strcmp(nonce, s->rk.cur.nonce) != 0)
    return cs_error_set(CS_EBADNONCE, "nonce does not match the rekey in progress");
  int rc = ceremony_submit(s, &s->ks, &s->rk.cur, share, len, st);
  if (rc <= 0)
    return rc;

  uint8_t *new_kek = NULL;
  keyset ks = {0};
  cs_rekey_status keys = {0};
  if ((rc = rekey_generate(s, &new_kek, &ks, &keys)) < 0)
    return rc;
  if (s->rk.verify) {
    /* Hold the new key until a threshold of the new shares comes back;
     * nothing is written yet, the old shares stay valid. */
    if ((rc = ceremony_start(&s->rk.ver)) < 0) {
      cs_secmem_free(new_kek, CS_KEY_LEN);
      keyset_free(&ks);
      cs_rekey_status_clear(&keys);
      return rc;
    }
    s->rk.new_kek = new_kek;
    s->rk.new_ks = ks;
    s->rk.awaiting_verification = 1;
    cs_seal_rekey_status(s, st);
    st->complete = 1;
    st->keys = keys.keys;
    st->key_len = keys.key_len;
    st->n = keys.n;
    return 0;
  }
  rc = rekey_swap(s, new_kek, &ks, &keys, cb, arg);
  cs_secmem_free(new_kek, CS_KEY_LEN);
  keyset_free(&ks);
  cs_rekey_status_clear(&keys);
  if (rc < 0) {
    ceremony_drop_parts(&s->rk.cur);
    return rc;
  }
  rekey_clear(s);
  return rc;
}

int cs_seal_rekey_verify(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st, cs_seal_cb cb, void *arg) {
  memset(st, 0, sizeof *st);
  if (s->kr == NULL)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (!s->rk.active || !s->rk.awaiting_verification)
    return cs_error_set(CS_ENOOP, "no rekey is awaiting verification");
  if (nonce == NULL || strcmp(nonce, s->rk.ver.nonce) != 0)
    return cs_error_set(CS_EBADNONCE, "nonce does not match the rekey verification in progress");
  int rc = ceremony_submit(s, &s->rk.new_ks, &s->rk.ver, share, len, st);
  if (rc <= 0)
    return rc;
  uint8_t kek[CS_KEY_LEN];
  rc = ceremony_combine(&s->rk.ver, &s->rk.new_ks, kek);
  if (rc == 0 && !cs_ct_equal(kek, s->rk.new_kek, CS_KEY_LEN))
    rc = cs_error_set(CS_EKEYMISMATCH, "new shares do not combine to the new unseal key");
  cs_wipe(kek, sizeof kek);
  if (rc == 0) {
    cs_rekey_status none = {.verification_required = 1};
    rc = rekey_swap(s, s->rk.new_kek, &s->rk.new_ks, &none, cb, arg);
  }
  if (rc < 0) {
    ceremony_drop_parts(&s->rk.ver);
    return rc;
  }
  rekey_clear(s);
  return rc;
}
