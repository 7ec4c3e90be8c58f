/*
 * Unit tests of the seal state machine, keyring and barrier over a real
 * LMDB directory: init, unseal with every t-subset, wrong and foreign
 * shares, restart, rotate, rekey (with and without verification), and a
 * kill -9 during init.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "cs_error.h"
#include "kv.h"
#include "seal.h"
#include "token.h"

typedef struct fixture {
  char dir[64];
  cs_store *store;
  cs_seal *seal;
  uint8_t *shares;
  size_t slen;
  char *token;
} fixture;

/* The seal's writes complete through callbacks; with the synchronous
 * backend used here the callback runs before the call returns. */
static int last_rc;
static uint32_t last_term;
static uint8_t last_rekey_keys[8][CS_SHARE_LEN];
static unsigned last_rekey_n;

static void grab(void *arg, int status, cs_seal_result *r) {
  fixture *f = arg;
  last_rc = status;
  if (status < 0)
    return;
  last_term = r->term;
  if (r->shares != NULL && f != NULL) {
    f->shares = malloc((size_t)r->n * r->share_len);
    memcpy(f->shares, r->shares, (size_t)r->n * r->share_len);
    f->slen = r->share_len;
    f->token = strdup(r->root_token);
  }
  last_rekey_n = 0;
  if (r->rekey.keys != NULL) {
    last_rekey_n = r->rekey.n;
    memcpy(last_rekey_keys, r->rekey.keys, (size_t)r->rekey.n * r->rekey.key_len);
  }
}

/* Runs an operation that may complete asynchronously and returns its status. */
static int done(int rc) { return rc == CS_SEAL_PENDING ? last_rc : rc; }

static int do_init(fixture *f, unsigned n, unsigned t) { return done(cs_seal_init(f->seal, n, t, grab, f)); }
static int do_rotate(fixture *f, uint32_t *term) {
  int rc = done(cs_seal_rotate(f->seal, grab, NULL));
  *term = last_term;
  return rc;
}
static int do_rotcfg(fixture *f, const cs_rotate_config *c) {
  return done(cs_seal_rotate_config_set(f->seal, c, grab, NULL));
}

static void open_all(fixture *f) {
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  cs_seal_opts opts = {.store = f->store};
  assert_int_equal(cs_seal_open(&f->seal, &opts), 0);
}

static void close_all(fixture *f) {
  cs_seal_close(f->seal);
  cs_store_close(f->store);
  f->seal = NULL;
  f->store = NULL;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/custos-test-seal-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  open_all(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->seal)
    close_all(f);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f->shares);
  free(f->token);
  free(f);
  return 0;
}

static void init5of3(fixture *f) {
  assert_int_equal(do_init(f, 5, 3), 0);
  assert_int_equal(f->slen, CS_SHARE_LEN);
}

static const uint8_t *share(fixture *f, int i) { return f->shares + (size_t)i * f->slen; }

static int is_sealed(fixture *f) {
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  return st.sealed;
}

static void test_init_then_every_subset_unseals(void **state) {
  fixture *f = *state;
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_false(st.initialized);
  init5of3(f);
  cs_seal_get_status(f->seal, &st);
  assert_true(st.initialized);
  assert_true(st.sealed); /* like Vault: init leaves the node sealed */
  assert_int_equal(st.n, 5);
  assert_int_equal(st.t, 3);
  for (int a = 0; a < 5; a++)
    for (int b = a + 1; b < 5; b++)
      for (int c = b + 1; c < 5; c++) {
        assert_int_equal(cs_seal_unseal(f->seal, share(f, a), f->slen), 0);
        assert_int_equal(cs_seal_unseal(f->seal, share(f, b), f->slen), 0);
        cs_seal_get_status(f->seal, &st);
        assert_int_equal(st.progress, 2);
        assert_true(st.sealed);
        assert_true(strlen(st.nonce) == 36);
        assert_int_equal(cs_seal_unseal(f->seal, share(f, c), f->slen), 0);
        cs_seal_get_status(f->seal, &st);
        assert_false(st.sealed);
        assert_int_equal(st.term, 1);
        assert_int_equal(st.progress, 0);
        cs_seal_seal(f->seal);
        assert_true(is_sealed(f));
      }
  /* A second init is refused. */
  assert_int_equal(cs_seal_init(f->seal, 3, 2, grab, NULL), CS_EALREADYINIT);
}

static void test_bad_params(void **state) {
  fixture *f = *state;
  assert_int_equal(cs_seal_init(f->seal, 0, 0, grab, NULL), CS_EINVAL);
  assert_int_equal(cs_seal_init(f->seal, 3, 4, grab, NULL), CS_EINVAL);
  assert_int_equal(cs_seal_init(f->seal, 3, 1, grab, NULL), CS_EINVAL);
  assert_int_equal(cs_seal_init(f->seal, 256, 3, grab, NULL), CS_EINVAL);
  assert_int_equal(cs_seal_init(f->seal, 1, 2, grab, NULL), CS_EINVAL);
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_false(st.initialized);
}

static void test_single_share(void **state) {
  fixture *f = *state;
  assert_int_equal(do_init(f, 1, 1), 0);
  assert_int_equal(f->slen, CS_KEY_LEN);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares, f->slen), 0);
  assert_false(is_sealed(f));
}

static void test_wrong_and_foreign_shares(void **state) {
  fixture *f = *state;
  init5of3(f);
  uint8_t bad[CS_SHARE_LEN];
  /* Wrong length: refused at once. */
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 0), 10), CS_EBADSHARE);
  /* A tampered share is refused when submitted, progress kept. */
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 0), f->slen), 0);
  memcpy(bad, share(f, 1), sizeof bad);
  bad[3] ^= 1;
  assert_int_equal(cs_seal_unseal(f->seal, bad, sizeof bad), CS_ENOTMEMBER);
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.progress, 1);
  /* Repeated share is ignored. */
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 0), f->slen), 0);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.progress, 1);
  /* Reset clears progress. */
  cs_seal_reset(f->seal);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.progress, 0);

  /* Shares of another installation are not members. */
  fixture g = {0};
  strcpy(g.dir, "/tmp/custos-test-seal2-XXXXXX");
  assert_non_null(mkdtemp(g.dir));
  open_all(&g);
  init5of3(&g);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(f->seal, share(&g, i), g.slen), CS_ENOTMEMBER);
  assert_true(is_sealed(f));
  close_all(&g);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g.dir);
  assert_int_equal(system(cmd), 0);
  free(g.shares);
  free(g.token);
}

static void test_key_mismatch_detected(void **state) {
  fixture *f = *state;
  init5of3(f);
  /* Overwrite the sealed root key with one under another KEK: the members
   * check passes, the GCM tag fails, progress resets, nothing changes. */
  uint8_t other[CS_KEY_LEN] = {1, 2, 3}, root[CS_KEY_LEN] = {9};
  uint8_t *ct;
  size_t ct_len;
  assert_int_equal(cs_barrier_seal_with(other, 0, "core/unseal/root-key", root, sizeof root, &ct, &ct_len), 0);
  uint8_t *saved;
  size_t saved_len;
  assert_int_equal(cs_store_get(f->store, "core/unseal/root-key", &saved, &saved_len), 0);
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "core/unseal/root-key", ct, ct_len), 0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
  free(ct);
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 0), f->slen), 0);
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 1), f->slen), 0);
  int rc = cs_seal_unseal(f->seal, share(f, 2), f->slen);
  assert_int_equal(rc, CS_EKEYMISMATCH);
  assert_string_equal(cs_error_message(rc), "unseal key does not match");
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_true(st.sealed);
  assert_int_equal(st.progress, 0);
  /* Restore: unseals again. */
  assert_int_equal(cs_batch_put(&b, "core/unseal/root-key", saved, saved_len), 0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
  free(saved);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(f->seal, share(f, i), f->slen), 0);
  assert_false(is_sealed(f));
}

static void unseal3(fixture *f) {
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(f->seal, share(f, i), f->slen), 0);
  assert_false(is_sealed(f));
}

static void put_secret(fixture *f, const char *path, const char *value) {
  Custos__KvPair p = CUSTOS__KV_PAIR__INIT, *pp = &p;
  p.key = "v";
  p.value.data = (uint8_t *)value;
  p.value.len = strlen(value);
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_kv_stage_put(cs_seal_keyring(f->seal), path, &pp, 1, &b), 0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
}

static void check_secret(fixture *f, const char *path, const char *value) {
  Custos__KvData *d;
  assert_int_equal(cs_kv_get(f->store, cs_seal_keyring(f->seal), path, &d), 0);
  assert_int_equal(d->n_data, 1);
  assert_int_equal(d->data[0]->value.len, strlen(value));
  assert_memory_equal(d->data[0]->value.data, value, strlen(value));
  cs_kv_data_free(d);
}

static void test_restart_keeps_everything(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  put_secret(f, "app/db", "hunter2");
  Custos__TokenEntry *te;
  assert_int_equal(cs_token_lookup(f->store, cs_seal_keyring(f->seal), (uint8_t *)f->token,
                                   strlen(f->token), 0, &te), 0);
  assert_true(te->root);
  cs_token_entry_free(te);
  close_all(f);
  open_all(f);
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_true(st.initialized);
  assert_true(st.sealed);
  unseal3(f);
  check_secret(f, "app/db", "hunter2");
}

static void test_rotate_keeps_old_data_readable(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  put_secret(f, "a", "under-term-1");
  uint32_t term;
  for (int i = 2; i <= 5; i++) {
    assert_int_equal(do_rotate(f, &term), 0);
    assert_int_equal(term, (uint32_t)i);
  }
  put_secret(f, "b", "under-term-5");
  uint8_t *ct;
  size_t len;
  uint32_t hdr_term;
  assert_int_equal(cs_store_get(f->store, "kv/b", &ct, &len), 0);
  assert_int_equal(cs_barrier_term_of(ct, len, &hdr_term), 0);
  assert_int_equal(hdr_term, 5);
  free(ct);
  /* Upgrade keys for standbys: core/upgrade/1..4 exist. */
  assert_int_equal(cs_store_exists(f->store, "core/upgrade/1"), 1);
  assert_int_equal(cs_store_exists(f->store, "core/upgrade/4"), 1);
  /* Expired upgrade keys are deleted by the tick. */
  int rotating;
  cs_rotate_config off = {.enabled = 0, .max_operations = CS_DEFAULT_MAX_OPS};
  assert_int_equal(do_rotcfg(f, &off), 0);
  assert_int_equal(cs_seal_tick(f->seal, cs_now() + 10000, 1, &rotating), 0);
  assert_int_equal(rotating, 0);
  assert_int_equal(cs_store_exists(f->store, "core/upgrade/1"), 0);
  close_all(f);
  open_all(f);
  unseal3(f);
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 5);
  check_secret(f, "a", "under-term-1");
  check_secret(f, "b", "under-term-5");
}

static void test_unknown_term_and_moved_ciphertext(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  put_secret(f, "x", "secret");
  uint8_t *ct, *pt;
  size_t len, plen;
  assert_int_equal(cs_store_get(f->store, "kv/x", &ct, &len), 0);
  /* Moved to another path: the AAD no longer matches. */
  int rc = cs_barrier_decrypt(cs_seal_keyring(f->seal), "kv/y", ct, len, &pt, &plen);
  assert_int_equal(rc, CS_EAUTH);
  assert_string_equal(cs_error_message(rc), "authentication failed for path kv/y");
  ct[3] = 77; /* term 77 */
  rc = cs_barrier_decrypt(cs_seal_keyring(f->seal), "kv/x", ct, len, &pt, &plen);
  assert_int_equal(rc, CS_ENOTERM);
  assert_non_null(strstr(cs_error_message(rc), "no key for term 77"));
  free(ct);
}

static void test_counters_persist_in_batches(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  for (int i = 0; i < 50; i++)
    put_secret(f, "c", "v");
  cs_term_info ti;
  assert_int_equal(cs_keyring_term_info(cs_seal_keyring(f->seal), 1, &ti), 0);
  assert_true(ti.encryptions >= 50);
  uint64_t before = ti.encryptions;
  assert_int_equal(cs_seal_flush_counters(f->seal), 0);
  close_all(f);
  open_all(f);
  unseal3(f);
  assert_int_equal(cs_keyring_term_info(cs_seal_keyring(f->seal), 1, &ti), 0);
  assert_true(ti.encryptions >= before);
}

static void test_auto_rotation(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  cs_rotate_config cfg = {.enabled = 1, .max_operations = 10};
  assert_int_equal(cs_seal_rotate_config_set(f->seal, &cfg, grab, NULL), CS_EINVAL);
  cfg.max_operations = CS_MIN_MAX_OPS;
  assert_int_equal(do_rotcfg(f, &cfg), 0);
  int rotating;
  cs_seal_status st;
  assert_int_equal(cs_seal_tick(f->seal, cs_now(), 0, &rotating), 0);
  assert_int_equal(rotating, 0);
  for (unsigned i = 0; i <= CS_MIN_MAX_OPS; i++)
    put_secret(f, "k", "v");
  assert_int_equal(cs_seal_tick(f->seal, cs_now(), 0, &rotating), 0);
  assert_int_equal(rotating, 1);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 2);
  /* Interval-based. */
  cfg.max_operations = CS_DEFAULT_MAX_OPS;
  cfg.interval_seconds = 3600;
  assert_int_equal(do_rotcfg(f, &cfg), 0);
  assert_int_equal(cs_seal_tick(f->seal, cs_now() + 3600, 0, &rotating), 0);
  assert_int_equal(rotating, 1);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 3);
  /* Config survives restart. */
  close_all(f);
  open_all(f);
  unseal3(f);
  cs_rotate_config got;
  assert_int_equal(cs_seal_rotate_config_get(f->seal, &got), 0);
  assert_int_equal(got.interval_seconds, 3600);
  assert_int_equal(got.max_operations, CS_DEFAULT_MAX_OPS);
}

static int upd(fixture *f, const char *nonce, const uint8_t *sh, cs_rekey_status *st) {
  return cs_seal_rekey_update(f->seal, nonce, sh, CS_SHARE_LEN, st, grab, NULL);
}
static int ver(fixture *f, const char *nonce, const uint8_t *sh, cs_rekey_status *st) {
  return cs_seal_rekey_verify(f->seal, nonce, sh, CS_SHARE_LEN, st, grab, NULL);
}

static void test_rekey(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  put_secret(f, "r", "before-rekey");
  cs_rekey_status st;
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &st), 0);
  char nonce[CS_NONCE_STR];
  strcpy(nonce, st.nonce);
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &st), CS_EINPROGRESS);
  assert_int_equal(upd(f, "wrong", share(f, 0), &st), CS_EBADNONCE);
  assert_int_equal(upd(f, nonce, share(f, 0), &st), 0);
  assert_int_equal(st.progress, 1);
  assert_int_equal(upd(f, nonce, share(f, 0), &st), CS_EDUPSHARE);
  uint8_t bad[CS_SHARE_LEN];
  memcpy(bad, share(f, 1), sizeof bad);
  bad[0] ^= 0x80;
  assert_int_equal(upd(f, nonce, bad, &st), CS_ENOTMEMBER);
  assert_int_equal(upd(f, nonce, share(f, 1), &st), 0);
  assert_int_equal(cs_seal_rekey_update(f->seal, nonce, share(f, 2), f->slen, &st, grab, NULL), CS_SEAL_PENDING);
  assert_int_equal(last_rc, 0);
  assert_int_equal(last_rekey_n, 3);
  uint8_t newshares[3][CS_SHARE_LEN];
  memcpy(newshares, last_rekey_keys, sizeof newshares);
  /* Old shares are refused now, the new ones unseal. */
  cs_seal_seal(f->seal);
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 0), f->slen), CS_ENOTMEMBER);
  assert_int_equal(cs_seal_unseal(f->seal, newshares[2], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_unseal(f->seal, newshares[0], CS_SHARE_LEN), 0);
  assert_false(is_sealed(f));
  check_secret(f, "r", "before-rekey");
}

static void test_rekey_verify(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  cs_rekey_status st;
  assert_int_equal(cs_seal_rekey_init(f->seal, 2, 2, 1, &st), 0);
  char nonce[CS_NONCE_STR];
  strcpy(nonce, st.nonce);
  for (int i = 0; i < 3; i++)
    assert_int_equal(upd(f, nonce, share(f, i), &st), 0);
  assert_true(st.complete);
  assert_true(st.verification_required);
  char vnonce[CS_NONCE_STR];
  strcpy(vnonce, st.verification_nonce);
  uint8_t ns[2][CS_SHARE_LEN];
  memcpy(ns, st.keys, sizeof ns);
  cs_rekey_status_clear(&st);
  /* Not yet in effect: old shares still unseal after a restart. */
  close_all(f);
  open_all(f);
  unseal3(f);
  /* The pending rekey died with the process; start again. */
  assert_int_equal(cs_seal_rekey_init(f->seal, 2, 2, 1, &st), 0);
  strcpy(nonce, st.nonce);
  for (int i = 0; i < 3; i++)
    assert_int_equal(upd(f, nonce, share(f, i), &st), 0);
  strcpy(vnonce, st.verification_nonce);
  memcpy(ns, st.keys, sizeof ns);
  cs_rekey_status_clear(&st);
  /* Old shares are not accepted as verification. */
  assert_int_equal(ver(f, vnonce, share(f, 0), &st), CS_ENOTMEMBER);
  assert_int_equal(ver(f, "nope", ns[0], &st), CS_EBADNONCE);
  assert_int_equal(ver(f, vnonce, ns[0], &st), 0);
  assert_false(st.complete);
  assert_int_equal(cs_seal_rekey_verify(f->seal, vnonce, ns[1], CS_SHARE_LEN, &st, grab, NULL), CS_SEAL_PENDING);
  assert_int_equal(last_rc, 0);
  cs_seal_seal(f->seal);
  assert_int_equal(cs_seal_unseal(f->seal, share(f, 0), f->slen), CS_ENOTMEMBER);
  assert_int_equal(cs_seal_unseal(f->seal, ns[0], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_unseal(f->seal, ns[1], CS_SHARE_LEN), 0);
  assert_false(is_sealed(f));
}

static void test_sealed_refusals(void **state) {
  fixture *f = *state;
  init5of3(f);
  cs_rekey_status st;
  cs_rotate_config cfg;
  assert_int_equal(cs_seal_rotate(f->seal, grab, NULL), CS_ESEALED);
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &st), CS_ESEALED);
  assert_int_equal(cs_seal_rotate_config_get(f->seal, &cfg), CS_ESEALED);
  assert_null(cs_seal_keyring(f->seal));
}

/*
 * kill -9 during init: a child initializes the same directory (durably) and
 * is killed after a random delay.  Afterwards the directory holds either no
 * initialization or a complete one that unseals with the shares the child
 * wrote out before committing... the child cannot report shares after the
 * kill, so we check structure: seal-config present <=> root key, keyring,
 * core/root-key and a token all present.
 */
static void test_kill9_during_init(void **state) {
  (void)state;
  srand((unsigned)time(NULL));
  int complete = 0, empty = 0;
  for (int round = 0; round < 25; round++) {
    char dir[64] = "/tmp/custos-test-kill-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      cs_store *st;
      cs_seal *s;
      cs_store_opts so = {.map_size = 64u << 20};
      if (cs_store_open(&st, dir, &so) < 0)
        _exit(3);
      cs_seal_opts opts = {.store = st};
      if (cs_seal_open(&s, &opts) < 0)
        _exit(3);
      _exit(cs_seal_init(s, 5, 3, grab, NULL) == CS_SEAL_PENDING && last_rc == 0 ? 0 : 4);
    }
    usleep((useconds_t)(rand() % 4000));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status))
      assert_int_equal(WEXITSTATUS(status), 0);
    cs_store *st;
    cs_store_opts so = {.map_size = 64u << 20};
    assert_int_equal(cs_store_open(&st, dir, &so), 0);
    int has_cfg = cs_store_exists(st, "core/seal-config");
    int n = has_cfg + cs_store_exists(st, "core/unseal/root-key") +
            cs_store_exists(st, "core/keyring") + cs_store_exists(st, "core/root-key");
    assert_true(n == 0 || n == 4);
    if (n == 4)
      complete++;
    else
      empty++;
    cs_seal *s;
    cs_seal_opts opts = {.store = st};
    assert_int_equal(cs_seal_open(&s, &opts), 0);
    cs_seal_close(s);
    cs_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
  }
  print_message("kill -9 during init: %d complete, %d empty\n", complete, empty);
}

/* opts.on_event: the last event seen and how many. */
typedef struct changes {
  int n;
  enum cs_seal_event last;
} changes;

static void on_event(void *ctx, enum cs_seal_event ev) {
  changes *c = ctx;
  c->n++;
  c->last = ev;
}

/* A standby on the same replica follows rotations and a rekey through
 * upgrade keys, and seals itself when it missed an upgrade window; that
 * self-seal is the same seal event as every other (issue 10, finding 10). */
static void test_standby_follows(void **state) {
  fixture *f = *state;
  init5of3(f);
  unseal3(f);
  cs_seal *standby;
  changes ch = {0, 0};
  cs_seal_opts opts = {.store = f->store, .on_event = on_event, .on_event_ctx = &ch};
  assert_int_equal(cs_seal_open(&standby, &opts), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(standby, share(f, i), f->slen), 0);
  assert_int_equal(ch.n, 1);
  assert_int_equal(ch.last, CS_SEAL_EVENT_UNSEALED);
  uint32_t term;
  for (int i = 0; i < 3; i++)
    assert_int_equal(do_rotate(f, &term), 0);
  put_secret(f, "s", "under-term-4");
  int installed;
  assert_int_equal(cs_seal_follow(standby, cs_now(), &installed), 0);
  assert_int_equal(installed, 3);
  assert_int_equal(ch.n, 2); /* one event for the three terms */
  assert_int_equal(ch.last, CS_SEAL_EVENT_KEYRING_CHANGED);
  cs_seal_status st;
  cs_seal_get_status(standby, &st);
  assert_int_equal(st.term, 4);
  Custos__KvData *d;
  assert_int_equal(cs_kv_get(f->store, cs_seal_keyring(standby), "s", &d), 0);
  cs_kv_data_free(d);
  /* An expired upgrade key is never used: rotate, let it expire, then the
   * standby finds core/root-key under a term it cannot get: it seals. */
  assert_int_equal(do_rotate(f, &term), 0);
  assert_int_equal(ch.n, 2);
  assert_int_equal(cs_seal_follow(standby, cs_now() + 100000, &installed), CS_ESEALED);
  assert_int_equal(installed, 0);
  cs_seal_get_status(standby, &st);
  assert_true(st.sealed);
  assert_int_equal(ch.n, 3);
  assert_int_equal(ch.last, CS_SEAL_EVENT_SEALED);
  /* Unsealed again, sealed by request: each one event; closing a sealed
   * node changes nothing, so it fires nothing. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(standby, share(f, i), f->slen), 0);
  assert_int_equal(ch.n, 4);
  assert_int_equal(ch.last, CS_SEAL_EVENT_UNSEALED);
  cs_seal_seal(standby);
  assert_int_equal(ch.n, 5);
  assert_int_equal(ch.last, CS_SEAL_EVENT_SEALED);
  cs_seal_close(standby);
  assert_int_equal(ch.n, 5);
}

/* An asynchronous backend: batches wait until the test completes them. */
typedef struct held {
  cs_batch b;
  cs_done_fn done;
  void *arg;
  int used;
} held;
static held holding;

static int hold_submit(void *ctx, cs_batch *b, cs_done_fn dn, void *arg) {
  holding.b = *b;
  cs_batch_init(b);
  holding.done = dn;
  holding.arg = arg;
  holding.used = 1;
  return 0;
}

static void release(cs_store *st, int fail) {
  assert_true(holding.used);
  holding.used = 0;
  int rc = fail ? CS_EIO : cs_store_commit(st, &holding.b);
  cs_batch_clear(&holding.b);
  holding.done(holding.arg, rc);
}

static void test_async_changes_exclusive(void **state) {
  fixture *f = *state;
  init5of3(f);
  close_all(f);
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  cs_seal_opts opts = {.store = f->store, .submit = hold_submit};
  assert_int_equal(cs_seal_open(&f->seal, &opts), 0);
  unseal3(f);
  put_secret(f, "x", "y");
  assert_int_equal(cs_seal_rotate(f->seal, grab, NULL), CS_SEAL_PENDING);
  /* Nothing changes in memory before the commit; other key changes wait. */
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 1);
  assert_int_equal(cs_seal_rotate(f->seal, grab, NULL), CS_EBUSY);
  assert_int_equal(cs_seal_flush_counters(f->seal), CS_EBUSY);
  release(f->store, 0);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 2);
  /* A failed commit changes nothing. */
  assert_int_equal(cs_seal_rotate(f->seal, grab, NULL), CS_SEAL_PENDING);
  release(f->store, 1);
  assert_int_equal(last_rc, CS_EIO);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 2);
  /* Sealed while a rotation is in flight: the commit is not applied to the
   * (wiped) memory, and the next unseal loads it from storage. */
  assert_int_equal(cs_seal_rotate(f->seal, grab, NULL), CS_SEAL_PENDING);
  cs_seal_seal(f->seal);
  release(f->store, 0);
  unseal3(f);
  cs_seal_get_status(f->seal, &st);
  assert_int_equal(st.term, 3);
  check_secret(f, "x", "y");
  /* Close with a write in flight: freed when it completes. */
  put_secret(f, "z", "w");
  cs_seal_close(f->seal);
  if (holding.used)
    release(f->store, 0);
  f->seal = NULL;
  cs_store_close(f->store);
}

/* A backend like a cluster's: by the time the init entry is applied, the
 * store already holds a seal config (another member's init, or a store
 * that did not come from this log). */
static int submit_after_other_init(void *ctx, cs_batch *b, cs_done_fn d, void *arg) {
  cs_store *st = ctx;
  cs_batch other;
  cs_batch_init(&other);
  assert_int_equal(cs_batch_put(&other, "core/seal-config", (const uint8_t *)"theirs", 6), 0);
  assert_int_equal(cs_store_commit(st, &other), 0);
  cs_batch_clear(&other);
  int rc = cs_store_commit(st, b);
  cs_batch_clear(b);
  d(arg, rc);
  return 0;
}

static void test_init_never_overwrites_seal_config(void **state) {
  fixture *f = *state;
  cs_seal_close(f->seal);
  cs_seal_opts opts = {.store = f->store, .submit = submit_after_other_init,
                       .submit_ctx = f->store};
  assert_int_equal(cs_seal_open(&f->seal, &opts), 0);
  assert_int_equal(do_init(f, 3, 2), CS_EALREADYINIT);
  uint8_t *v;
  size_t n;
  assert_int_equal(cs_store_get(f->store, "core/seal-config", &v, &n), 0);
  assert_int_equal(n, 6);
  assert_memory_equal(v, "theirs", 6);
  free(v);
  assert_int_equal(cs_store_exists(f->store, "core/keyring"), 0); /* nothing of the init landed */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_init_then_every_subset_unseals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_params, setup, teardown),
      cmocka_unit_test_setup_teardown(test_init_never_overwrites_seal_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_single_share, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_and_foreign_shares, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_mismatch_detected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_keeps_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotate_keeps_old_data_readable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_term_and_moved_ciphertext, setup, teardown),
      cmocka_unit_test_setup_teardown(test_counters_persist_in_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auto_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rekey_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sealed_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_standby_follows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async_changes_exclusive, setup, teardown),
      cmocka_unit_test(test_kill9_during_init),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
