/*
 * Unit tests of the seal's events (issue 12): every path into and out of
 * sealed fires exactly one event through opts.on_event, and paths that
 * change nothing fire none.  A real LMDB store in a temporary directory;
 * the seal's writes go through the synchronous backend (submit = NULL) or a
 * held one that the test completes, so no daemon is involved.
 *
 * Events are recorded as letters: U = UNSEALED, S = SEALED,
 * K = KEYRING_CHANGED; each check reads and clears what was recorded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "cs_error.h"
#include "crypto.h"
#include "seal.h"

typedef struct fixture {
  char dir[64];
  cs_store *store;
  cs_seal *seal;
  uint8_t shares[5][CS_SHARE_LEN];
  size_t slen;
  char events[64];            /* letters, see above */
  char key_changes[128];      /* on_key_change names, comma-separated */
  int last_rc;
} fixture;

static void on_event(void *ctx, enum cs_seal_event ev) {
  fixture *f = ctx;
  size_t n = strlen(f->events);
  assert_true(n + 1 < sizeof f->events);
  char c = '?';
  switch (ev) {
  case CS_SEAL_EVENT_UNSEALED:
    c = 'U';
    break;
  case CS_SEAL_EVENT_SEALED:
    c = 'S';
    break;
  case CS_SEAL_EVENT_KEYRING_CHANGED:
    c = 'K';
    break;
  }
  f->events[n] = c;
  f->events[n + 1] = '\0';
}

static void on_key_change(void *ctx, const char *what) {
  fixture *f = ctx;
  if (f->key_changes[0] != '\0')
    strcat(f->key_changes, ",");
  strcat(f->key_changes, what);
}

/* What was fired since the last check, then forgotten. */
static void expect(fixture *f, const char *events) {
  assert_string_equal(f->events, events);
  f->events[0] = '\0';
}

static void expect_key_changes(fixture *f, const char *names) {
  assert_string_equal(f->key_changes, names);
  f->key_changes[0] = '\0';
}

static void expect_state(fixture *f, enum cs_seal_state state, enum cs_seal_ceremony cer) {
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.state, state);
  assert_int_equal(st.ceremony, cer);
  assert_int_equal(st.initialized, state != CS_SEAL_UNINITIALIZED);
  assert_int_equal(st.sealed, state != CS_SEAL_UNSEALED);
}

static void done_cb(void *arg, int status, cs_seal_result *r) {
  fixture *f = arg;
  f->last_rc = status;
  if (status == 0 && r->shares != NULL) {
    assert_true(r->n <= 5);
    memcpy(f->shares, r->shares, (size_t)r->n * r->share_len);
    f->slen = r->share_len;
  }
  if (status == 0 && r->rekey.keys != NULL) { /* a rekey's new shares */
    assert_true(r->rekey.n <= 5);
    memcpy(f->shares, r->rekey.keys, (size_t)r->rekey.n * r->rekey.key_len);
    f->slen = r->rekey.key_len;
  }
}

/* An operation that completes through done_cb; its status. */
static int run(fixture *f, int rc) { return rc == CS_SEAL_PENDING ? f->last_rc : rc; }

static cs_seal_opts opts_for(fixture *f, cs_submit_fn submit) {
  return (cs_seal_opts){.store = f->store, .submit = submit, .on_event = on_event,
                        .on_event_ctx = f, .on_key_change = on_key_change, .key_change_ctx = f};
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/custos-test-seal-ev-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  cs_seal_opts o = opts_for(f, NULL);
  assert_int_equal(cs_seal_open(&f->seal, &o), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  cs_seal_close(f->seal);
  cs_store_close(f->store);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void init(fixture *f, unsigned n, unsigned t) {
  assert_int_equal(run(f, cs_seal_init(f->seal, n, t, done_cb, f)), 0);
  expect(f, ""); /* the node stays sealed: nothing left memory */
  expect_key_changes(f, "init");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
}

static void unseal(fixture *f, unsigned t) {
  for (unsigned i = 0; i < t; i++)
    assert_int_equal(cs_seal_unseal(f->seal, f->shares[i], f->slen), 0);
  expect(f, "U");
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
}

static void put_raw(cs_store *st, const char *path, const uint8_t *v, size_t n) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(v != NULL ? cs_batch_put(&b, path, v, n) : cs_batch_del(&b, path), 0);
  assert_int_equal(cs_store_commit(st, &b), 0);
  cs_batch_clear(&b);
}

/* A 2-of-2 rekey with verification, its threshold of current shares
 * given: the ceremony waits for the new shares `ns`, under `vnonce`. */
static void rekey_to_verify(fixture *f, char vnonce[CS_NONCE_STR], uint8_t ns[2][CS_SHARE_LEN]) {
  cs_rekey_status st;
  char nonce[CS_NONCE_STR];
  assert_int_equal(cs_seal_rekey_init(f->seal, 2, 2, 1, &st), 0);
  memcpy(nonce, st.nonce, sizeof nonce);
  assert_int_equal(cs_seal_rekey_update(f->seal, nonce, f->shares[0], f->slen, &st, done_cb, f), 0);
  assert_int_equal(cs_seal_rekey_update(f->seal, nonce, f->shares[1], f->slen, &st, done_cb, f), 0);
  assert_true(st.complete);
  memcpy(ns, st.keys, 2 * CS_SHARE_LEN);
  memcpy(vnonce, st.verification_nonce, CS_NONCE_STR);
  cs_rekey_status_clear(&st);
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_REKEY_VERIFY);
}

/* ---------------------------------------------------------------- tests */

/* Init, shares below the threshold, a reset, wrong shares, the threshold,
 * a repeated unseal, a seal and a repeated seal. */
static void test_unseal_and_seal(void **state) {
  fixture *f = *state;
  expect_state(f, CS_SEAL_UNINITIALIZED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], CS_SHARE_LEN), CS_ENOTINIT);
  cs_seal_seal(f->seal); /* nothing to seal */
  init(f, 5, 3);

  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], f->slen), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_UNSEAL);
  cs_seal_reset(f->seal);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);

  /* Wrong length, a share of no key set: refused, nothing fired. */
  uint8_t bad[CS_SHARE_LEN];
  memset(bad, 0x5a, sizeof bad);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], 10), CS_EBADSHARE);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[1], f->slen), 0);
  assert_int_equal(cs_seal_unseal(f->seal, bad, sizeof bad), CS_ENOTMEMBER);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[1], f->slen), 0); /* repeated: ignored */
  expect(f, "");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_UNSEAL);
  cs_seal_reset(f->seal);

  unseal(f, 3);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[4], f->slen), 0); /* already */
  expect(f, "");
  cs_seal_seal(f->seal);
  expect(f, "S");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  cs_seal_seal(f->seal);
  expect(f, "");
  /* A seal request also drops unseal progress, without an event. */
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], f->slen), 0);
  cs_seal_seal(f->seal);
  expect(f, "");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  unseal(f, 3);
  expect_key_changes(f, "");
}

/* The threshold reached with member shares whose KEK opens nothing (the
 * sealed root key was replaced): refused, progress reset, nothing fired. */
static void test_failed_unseal_fires_nothing(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  uint8_t other[CS_KEY_LEN] = {7}, root[CS_KEY_LEN] = {9}, *ct, *saved;
  size_t ct_len, saved_len;
  assert_int_equal(cs_store_get(f->store, "core/unseal/root-key", &saved, &saved_len), 0);
  assert_int_equal(
      cs_barrier_seal_with(other, 0, "core/unseal/root-key", root, sizeof root, &ct, &ct_len), 0);
  put_raw(f->store, "core/unseal/root-key", ct, ct_len);
  free(ct);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], f->slen), 0);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[1], f->slen), CS_EKEYMISMATCH);
  expect(f, "");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  put_raw(f->store, "core/unseal/root-key", saved, saved_len);
  free(saved);
  unseal(f, 2);
}

/* The dev server's path: one share, unsealed from init's callback. */
static void on_dev_init(void *arg, int status, cs_seal_result *r) {
  fixture *f = arg;
  assert_int_equal(status, 0);
  assert_int_equal(r->share_len, CS_KEY_LEN);
  assert_int_equal(cs_seal_unseal(f->seal, r->shares, r->share_len), 0);
  f->last_rc = 0;
}

static void test_dev_auto_unseal(void **state) {
  fixture *f = *state;
  assert_int_equal(run(f, cs_seal_init(f->seal, 1, 1, on_dev_init, f)), 0);
  expect(f, "U");
  expect_key_changes(f, "init");
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
}

/* Rotation (by request and automatic) replaces the keyring: K each; the
 * rotate config and the counter flush leave it: nothing. */
static void test_rotate_fires_keyring_changed(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  unseal(f, 2);
  assert_int_equal(run(f, cs_seal_rotate(f->seal, done_cb, f)), 0);
  expect(f, "K");
  expect_key_changes(f, "rotate");
  cs_rotate_config rc = {.enabled = 1, .max_operations = CS_MIN_MAX_OPS};
  assert_int_equal(run(f, cs_seal_rotate_config_set(f->seal, &rc, done_cb, f)), 0);
  /* Encryptions past max-operations make the next tick rotate. */
  for (unsigned i = 0; i <= CS_MIN_MAX_OPS; i++) {
    uint8_t *ct;
    size_t ct_len;
    assert_int_equal(
        cs_barrier_encrypt(cs_seal_keyring(f->seal), "kv/x", (const uint8_t *)"v", 1, &ct, &ct_len),
        0);
    free(ct);
  }
  assert_int_equal(cs_seal_flush_counters(f->seal), 0);
  expect(f, "");
  int rotating = 0;
  assert_int_equal(cs_seal_tick(f->seal, cs_now(), 1, &rotating), 0);
  assert_int_equal(rotating, 1);
  expect(f, "K");
  expect_key_changes(f, "rotate");
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 3);
}

/* A rekey swaps the key set, not the keyring: no event; sealing during a
 * rekey ends the ceremony with the one SEALED event. */
static void test_rekey(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  unseal(f, 2);
  cs_rekey_status st;
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &st), 0);
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_REKEY);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  assert_int_equal(cs_seal_rekey_update(f->seal, nonce, f->shares[0], f->slen, &st, done_cb, f), 0);
  assert_int_equal(
      run(f, cs_seal_rekey_update(f->seal, nonce, f->shares[1], f->slen, &st, done_cb, f)), 0);
  expect(f, "");
  expect_key_changes(f, "rekey");
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);

  /* With verification: the first threshold writes nothing, the
   * verification's threshold swaps; still no event.  The first rekey's
   * shares came back through done_cb (f->shares). */
  uint8_t ns[2][CS_SHARE_LEN];
  rekey_to_verify(f, nonce, ns);
  assert_int_equal(cs_seal_rekey_verify(f->seal, nonce, ns[0], CS_SHARE_LEN, &st, done_cb, f), 0);
  assert_int_equal(
      run(f, cs_seal_rekey_verify(f->seal, nonce, ns[1], CS_SHARE_LEN, &st, done_cb, f)), 0);
  expect(f, "");
  expect_key_changes(f, "rekey");
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
  memcpy(f->shares, ns, sizeof ns);

  /* Sealing in the middle of a rekey ends it, with the one SEALED event;
   * the new shares unseal. */
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 1, &st), 0);
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_REKEY);
  cs_seal_seal(f->seal);
  expect(f, "S");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  expect_key_changes(f, "");
  unseal(f, 2);
}

/* Snapshot restore: the same installation reloads (K), a forced or
 * foreign one seals (S), a sealed node fires nothing, and an empty store
 * leaves the node uninitialized (S). */
static void test_restored(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0); /* sealed: stays so */
  expect(f, "");
  /* A sealed node's unseal progress survives a snapshot of the same key set
   * (a restarted node catching up), and not a forced or foreign one. */
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], f->slen), 0);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_UNSEAL);
  assert_int_equal(cs_seal_restored(f->seal, 1), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[1], f->slen), 0);
  expect(f, ""); /* one share of two: still sealed */
  uint8_t *cfg;
  size_t cfg_len;
  assert_int_equal(cs_store_get(f->store, "core/seal-config", &cfg, &cfg_len), 0);
  put_raw(f->store, "core/seal-config", NULL, 0); /* restored: no key set */
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect_state(f, CS_SEAL_UNINITIALIZED, CS_SEAL_CEREMONY_NONE);
  put_raw(f->store, "core/seal-config", cfg, cfg_len);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  /* Another key set (another salt): the progress is dropped.  The salt is
   * field 3 after shares and threshold, 2 bytes each: 0x1a 0x20 salt... */
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[1], f->slen), 0);
  assert_true(cfg_len > 6 + 32 && cfg[4] == 0x1a && cfg[5] == 32);
  cfg[6] ^= 1;
  put_raw(f->store, "core/seal-config", cfg, cfg_len);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  cfg[6] ^= 1;
  put_raw(f->store, "core/seal-config", cfg, cfg_len);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  /* The same through a sealed standby's poll (a rekey applied from the
   * log): a share of the old set must not survive into the new one, nor
   * through a later snapshot of the new set. */
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[1], f->slen), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_UNSEAL);
  cfg[6] ^= 1;
  put_raw(f->store, "core/seal-config", cfg, cfg_len);
  int installed = -1;
  assert_int_equal(cs_seal_follow(f->seal, cs_now(), &installed), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  cfg[6] ^= 1;
  put_raw(f->store, "core/seal-config", cfg, cfg_len);
  assert_int_equal(cs_seal_follow(f->seal, cs_now(), &installed), 0);
  free(cfg);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[2], f->slen), 0);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect(f, "");
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], f->slen), 0);
  expect(f, "U"); /* the share kept across the restore counted */
  cs_seal_seal(f->seal);
  expect(f, "S");
  unseal(f, 2);
  assert_int_equal(cs_seal_restore_begin(f->seal), 0);
  assert_int_equal(cs_seal_restored(f->seal, 0), 1);
  expect(f, "K");
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_restored(f->seal, 1), 0); /* forced: another key set */
  expect(f, "S");
  expect_state(f, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);

  /* A keyring the root key does not open: another installation. */
  unseal(f, 2);
  uint8_t *saved, other[CS_KEY_LEN] = {3}, junk[8] = {1}, *ct;
  size_t saved_len, ct_len;
  assert_int_equal(cs_store_get(f->store, "core/keyring", &saved, &saved_len), 0);
  assert_int_equal(
      cs_barrier_seal_with(other, 0, "core/keyring", junk, sizeof junk, &ct, &ct_len), 0);
  put_raw(f->store, "core/keyring", ct, ct_len);
  free(ct);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect(f, "S");
  put_raw(f->store, "core/keyring", saved, saved_len);
  free(saved);

  /* An empty store: uninitialized, the keys wiped. */
  unseal(f, 2);
  put_raw(f->store, "core/seal-config", NULL, 0);
  assert_int_equal(cs_seal_restored(f->seal, 0), 0);
  expect(f, "S");
  expect_state(f, CS_SEAL_UNINITIALIZED, CS_SEAL_CEREMONY_NONE);
}

/* A rekey awaiting verification when another node's rekey lands (seen by
 * this node's poll, or its reload on becoming active again) is over: its
 * new shares must not replace the newer set (a review's finding). */
static void test_stale_rekey_ends(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  unseal(f, 2);
  cs_rekey_status st;
  char nonce[CS_NONCE_STR];
  uint8_t ns[2][CS_SHARE_LEN];
  rekey_to_verify(f, nonce, ns);
  uint8_t *cfg, *now;
  size_t cfg_len, now_len;
  assert_int_equal(cs_store_get(f->store, "core/seal-config", &cfg, &cfg_len), 0);
  assert_true(cfg_len > 6 + 32 && cfg[4] == 0x1a && cfg[5] == 32);
  cfg[6] ^= 1; /* the other node's set: another salt */
  put_raw(f->store, "core/seal-config", cfg, cfg_len);
  int installed = -1;
  assert_int_equal(cs_seal_follow(f->seal, cs_now(), &installed), 0);
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_reload(f->seal), 0);
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
  assert_true(cs_seal_rekey_verify(f->seal, nonce, ns[0], CS_SHARE_LEN, &st, done_cb, f) < 0);
  assert_int_equal(cs_store_get(f->store, "core/seal-config", &now, &now_len), 0);
  assert_int_equal(now_len, cfg_len);
  assert_memory_equal(now, cfg, cfg_len); /* the newer set stands */
  free(now);
  free(cfg);
}

/* Becoming active reloads the keyring from storage (K); sealed, it is
 * refused and fires nothing. */
static void test_reload(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  assert_int_equal(cs_seal_reload(f->seal), CS_ESEALED);
  unseal(f, 2);
  assert_int_equal(cs_seal_reload(f->seal), 0);
  expect(f, "K");
  expect_state(f, CS_SEAL_UNSEALED, CS_SEAL_CEREMONY_NONE);
}

/* A standby on the same replica: learns of the init (state only), installs
 * terms from upgrade keys (one K per follow that installed any) and seals
 * itself after missing an upgrade window (S). */
static void test_standby_follow(void **state) {
  fixture *f = *state;
  fixture sb = {0};
  sb.store = f->store;
  cs_seal_opts o = opts_for(&sb, NULL);
  assert_int_equal(cs_seal_open(&sb.seal, &o), 0);
  init(f, 3, 2);
  int installed;
  expect_state(&sb, CS_SEAL_UNINITIALIZED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_follow(sb.seal, cs_now(), &installed), 0);
  expect_state(&sb, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  expect(&sb, "");
  memcpy(sb.shares, f->shares, sizeof sb.shares);
  sb.slen = f->slen;
  unseal(&sb, 2);
  unseal(f, 2);

  assert_int_equal(cs_seal_follow(sb.seal, cs_now(), &installed), 0);
  assert_int_equal(installed, 0);
  expect(&sb, "");
  for (int i = 0; i < 2; i++)
    assert_int_equal(run(f, cs_seal_rotate(f->seal, done_cb, f)), 0);
  assert_int_equal(cs_seal_follow(sb.seal, cs_now(), &installed), 0);
  assert_int_equal(installed, 2);
  expect(&sb, "K");
  assert_int_equal(run(f, cs_seal_rotate(f->seal, done_cb, f)), 0);
  assert_int_equal(cs_seal_follow(sb.seal, cs_now() + 100000, &installed), CS_ESEALED);
  expect(&sb, "S");
  expect_state(&sb, CS_SEAL_SEALED, CS_SEAL_CEREMONY_NONE);
  assert_int_equal(cs_seal_follow(sb.seal, cs_now(), &installed), 0); /* sealed: nothing */
  expect(&sb, "");
  unseal(&sb, 2);
  cs_seal_close(sb.seal); /* shutdown seals: S */
  expect(&sb, "S");
  expect_key_changes(&sb, "");
}

/* An asynchronous backend: the test completes the batch. */
typedef struct held {
  cs_batch b;
  cs_done_fn done;
  void *arg;
  int used;
} held;
static held holding;

static int hold_submit(void *ctx, cs_batch *b, cs_done_fn dn, void *arg) {
  (void)ctx;
  holding.b = *b;
  cs_batch_init(b);
  holding.done = dn;
  holding.arg = arg;
  holding.used = 1;
  return 0;
}

static void release(cs_store *st) {
  assert_true(holding.used);
  holding.used = 0;
  int rc = cs_store_commit(st, &holding.b);
  cs_batch_clear(&holding.b);
  holding.done(holding.arg, rc);
}

/* Events fire when memory changes, i.e. at the commit; a rotation whose
 * node was sealed meanwhile changes nothing and fires nothing. */
static void test_async_commit(void **state) {
  fixture *f = *state;
  init(f, 3, 2);
  cs_seal_close(f->seal);
  cs_seal_opts o = opts_for(f, hold_submit);
  assert_int_equal(cs_seal_open(&f->seal, &o), 0);
  unseal(f, 2);
  assert_int_equal(cs_seal_rotate(f->seal, done_cb, f), CS_SEAL_PENDING);
  expect(f, "");
  release(f->store);
  assert_int_equal(f->last_rc, 0);
  expect(f, "K");
  assert_int_equal(cs_seal_rotate(f->seal, done_cb, f), CS_SEAL_PENDING);
  cs_seal_seal(f->seal);
  expect(f, "S");
  release(f->store);
  assert_int_equal(f->last_rc, 0);
  expect(f, "");
  expect_key_changes(f, "rotate,rotate");
  unseal(f, 2);
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 3); /* the committed rotation, loaded at unseal */
  cs_seal_seal(f->seal);
  expect(f, "S");
  if (holding.used) /* the counter flush of the seal */
    release(f->store);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unseal_and_seal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_unseal_fires_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dev_auto_unseal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_fires_keyring_changed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_rekey_ends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_standby_follow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async_commit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
