/*
 * Unit tests of staged activation (server/core/seal/stage.c) over a real
 * LMDB directory: an "active" seal in cluster mode and "standby" seals
 * opened on the same store (the replica every member has), as in
 * test_seal.c's standby test.
 *
 *  - a rotation stages its term: writes stay under the old term, root key
 *    and upgrade key as documented, a second rotation is refused;
 *  - a standby stages the term from the upgrade key, proves it holds it
 *    (proofs bound to term and node, tampering refused), and activates it
 *    when core/root-key moves to it;
 *  - a standby that never got the term seals itself with a reason;
 *  - the new-leader key check (lacks the term / has it staged only);
 *  - standalone, a staged term found in the keyring is activated by the tick;
 *  - a self-seal with a reason writes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activation.h"
#include "barrier.h"
#include "cs_error.h"
#include "kv.h"
#include "seal.h"

typedef struct fixture {
  char dir[64];
  cs_store *store;
  cs_seal *active;
  uint8_t shares[3][CS_SHARE_LEN];
} fixture;

static int last_rc;
static cs_seal_result last;
static unsigned commits; /* batches the synchronous backend committed */

static void grab(void *arg, int status, cs_seal_result *r) {
  (void)arg;
  last_rc = status;
  if (status < 0)
    return;
  last.term = r->term;
  last.staged = r->staged;
  if (r->shares != NULL && arg != NULL) {
    fixture *f = arg;
    for (unsigned i = 0; i < 3; i++)
      memcpy(f->shares[i], r->shares + (size_t)i * r->share_len, CS_SHARE_LEN);
  }
}
static int done(int rc) { return rc == CS_SEAL_PENDING ? last_rc : rc; }

static int count_submit(void *ctx, cs_batch *b, cs_done_fn dn, void *arg) {
  int rc = cs_store_commit(ctx, b);
  cs_batch_clear(b);
  if (rc < 0)
    return rc;
  commits++;
  dn(arg, 0);
  return 0;
}

static cs_seal *open_seal(fixture *f) {
  cs_seal *s;
  cs_seal_opts opts = {.store = f->store, .submit = count_submit, .submit_ctx = f->store};
  assert_int_equal(cs_seal_open(&s, &opts), 0);
  return s;
}

static void unseal(fixture *f, cs_seal *s) {
  for (int i = 0; i < 2; i++)
    assert_int_equal(cs_seal_unseal(s, f->shares[i], CS_SHARE_LEN), 0);
  cs_seal_status st;
  cs_seal_get_status(s, &st);
  assert_false(st.sealed);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/custos-test-staged-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  f->active = open_seal(f);
  assert_int_equal(done(cs_seal_init(f->active, 3, 2, grab, f)), 0);
  unseal(f, f->active);
  cs_seal_set_staged_activation(f->active, 1, 600);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  cs_seal_close(f->active);
  cs_store_close(f->store);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void put(fixture *f, const char *path, const char *value) {
  Custos__KvPair p = CUSTOS__KV_PAIR__INIT, *pp = &p;
  p.key = "v";
  p.value.data = (uint8_t *)value;
  p.value.len = strlen(value);
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_kv_stage_put(cs_seal_keyring(f->active), path, &pp, 1, &b), 0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
}

/* The term a stored value's ciphertext names. */
static uint32_t term_of(fixture *f, const char *key) {
  uint8_t *ct;
  size_t len;
  uint32_t t = 0;
  assert_int_equal(cs_store_get(f->store, key, &ct, &len), 0);
  assert_int_equal(cs_barrier_term_of(ct, len, &t), 0);
  free(ct);
  return t;
}

static int exists(fixture *f, const char *key) {
  uint8_t *v;
  size_t len;
  int rc = cs_store_get(f->store, key, &v, &len);
  if (rc == 0)
    free(v);
  return rc == 0;
}

static void readable(fixture *f, cs_seal *s, const char *path) {
  Custos__KvData *d;
  assert_int_equal(cs_kv_get(f->store, cs_seal_keyring(s), path, &d), 0);
  cs_kv_data_free(d);
}

static uint32_t active_term(cs_seal *s) {
  cs_seal_status st;
  cs_seal_get_status(s, &st);
  return st.term;
}

static void test_rotation_stages(void **state) {
  fixture *f = *state;
  put(f, "before", "1");
  assert_int_equal(done(cs_seal_rotate(f->active, grab, NULL)), 0);
  assert_int_equal(last.term, 2);
  assert_true(last.staged);
  cs_keyring *kr = cs_seal_keyring(f->active);
  assert_int_equal(cs_keyring_staged(kr), 2);
  assert_int_equal(cs_keyring_active(kr), 1);
  /* Writes continue under the old term; the root key stays under it; the
   * upgrade key carries the staged term. */
  put(f, "during", "2");
  assert_int_equal(term_of(f, "kv/during"), 1);
  assert_int_equal(term_of(f, "core/root-key"), 1);
  assert_true(exists(f, "core/upgrade/1"));
  /* One staged term at a time: a second rotation is refused, nothing written. */
  unsigned before = commits;
  assert_int_equal(cs_seal_rotate(f->active, grab, NULL), CS_ESTAGED);
  assert_non_null(strstr(cs_error_message(CS_ESTAGED), "term 2 is staged"));
  assert_int_equal(commits, before);
  /* The tick neither rotates nor expires the staged upgrade key, even far
   * past the upgrade key TTL (cluster mode: ha.c activates). */
  int rotating;
  assert_int_equal(cs_seal_tick(f->active, cs_now() + 3600, 0, &rotating), 0);
  assert_false(rotating);
  assert_true(exists(f, "core/upgrade/1"));
  assert_int_equal(cs_keyring_staged(cs_seal_keyring(f->active)), 2);
}

static void test_standby_holds_then_activates(void **state) {
  fixture *f = *state;
  cs_seal *sb = open_seal(f);
  unseal(f, sb);
  assert_int_equal(done(cs_seal_rotate(f->active, grab, NULL)), 0);
  uint8_t proof[CS_TERM_PROOF_LEN];
  /* Before it follows, the standby does not hold term 2: no proof. */
  assert_int_equal(cs_seal_term_proof(sb, 2, "n2", proof), CS_ENOTERM);
  int installed;
  assert_int_equal(cs_seal_follow(sb, cs_now(), &installed), 0);
  assert_int_equal(installed, 1);
  assert_int_equal(cs_keyring_staged(cs_seal_keyring(sb)), 2);
  assert_int_equal(active_term(sb), 1);
  /* Following again changes nothing (already held). */
  assert_int_equal(cs_seal_follow(sb, cs_now(), &installed), 0);
  assert_int_equal(installed, 0);
  /* Its proof verifies on the active, for that node and term only. */
  assert_int_equal(cs_seal_term_proof(sb, 2, "n2", proof), 0);
  assert_true(cs_seal_term_proof_ok(f->active, 2, "n2", proof, sizeof proof));
  assert_false(cs_seal_term_proof_ok(f->active, 2, "n3", proof, sizeof proof));
  assert_false(cs_seal_term_proof_ok(f->active, 1, "n2", proof, sizeof proof));
  assert_false(cs_seal_term_proof_ok(f->active, 3, "n2", proof, sizeof proof));
  assert_false(cs_seal_term_proof_ok(f->active, 2, "n2", proof, sizeof proof - 1));
  proof[7] ^= 1;
  assert_false(cs_seal_term_proof_ok(f->active, 2, "n2", proof, sizeof proof));
  /* A proof for term 1 (which everyone holds) is not one for term 2. */
  assert_int_equal(cs_seal_term_proof(sb, 1, "n2", proof), 0);
  assert_false(cs_seal_term_proof_ok(f->active, 2, "n2", proof, sizeof proof));

  /* The activation: one batch; root key under 2, upgrade key gone. */
  unsigned before = commits;
  assert_int_equal(done(cs_seal_activate(f->active, grab, NULL)), 0);
  assert_int_equal(commits, before + 1);
  assert_int_equal(last.term, 2);
  assert_int_equal(active_term(f->active), 2);
  assert_int_equal(cs_keyring_staged(cs_seal_keyring(f->active)), 0);
  assert_int_equal(term_of(f, "core/root-key"), 2);
  assert_false(exists(f, "core/upgrade/1"));
  put(f, "after", "3");
  assert_int_equal(term_of(f, "kv/after"), 2);
  /* The standby could already open it (a staged key decrypts) ... */
  readable(f, sb, "after");
  /* ... and, before following, its keys would not do for an active node. */
  assert_int_equal(cs_seal_check_active_keys(sb), CS_ELACKSTERM);
  assert_non_null(strstr(cs_error_message(CS_ELACKSTERM), "has term 1 active"));
  /* Following activates it there too (no new term installed). */
  assert_int_equal(cs_seal_follow(sb, cs_now(), &installed), 0);
  assert_int_equal(installed, 0);
  assert_int_equal(active_term(sb), 2);
  assert_int_equal(cs_seal_check_active_keys(sb), 0);
  assert_int_equal(cs_seal_check_active_keys(f->active), 0);
  /* Nothing left to activate. */
  assert_int_equal(cs_seal_activate(f->active, grab, NULL), CS_ENOTERM);
  cs_seal_close(sb);
}

static void test_laggard_seals_itself(void **state) {
  fixture *f = *state;
  cs_seal *lag = open_seal(f);
  unseal(f, lag);
  /* Staged and activated without the laggard ever following. */
  assert_int_equal(done(cs_seal_rotate(f->active, grab, NULL)), 0);
  assert_int_equal(done(cs_seal_activate(f->active, grab, NULL)), 0);
  /* As a new leader it would refuse to serve: it lacks the active term. */
  assert_int_equal(cs_seal_check_active_keys(lag), CS_ELACKSTERM);
  assert_non_null(strstr(cs_error_message(CS_ELACKSTERM),
                         "lacks the active keyring term 2 (its keyring ends at term 1)"));
  /* Reloading from storage (what a new leader does first) gives it the
   * whole keyring, and then its keys do. */
  cs_seal *other = open_seal(f);
  unseal(f, other);
  assert_int_equal(cs_seal_check_active_keys(other), 0);
  cs_seal_close(other);
  /* Following, it meets core/root-key under term 2 and seals itself, with
   * the reason in its status. */
  int installed;
  assert_int_equal(cs_seal_follow(lag, cs_now(), &installed), CS_ESEALED);
  cs_seal_status st;
  cs_seal_get_status(lag, &st);
  assert_true(st.sealed);
  assert_non_null(strstr(st.reason, "missed the keyring upgrade to term 2"));
  /* Unsealed again: everything from storage, the reason is gone. */
  unseal(f, lag);
  cs_seal_get_status(lag, &st);
  assert_string_equal(st.reason, "");
  assert_int_equal(st.term, 2);
  cs_seal_close(lag);
}

static void test_seal_because_writes_nothing(void **state) {
  fixture *f = *state;
  cs_seal *sb = open_seal(f);
  unseal(f, sb);
  unsigned before = commits;
  cs_seal_seal_because(sb, "refused to serve as active: %s", "test");
  assert_int_equal(commits, before); /* no counter flush of the ring it doubts */
  cs_seal_status st;
  cs_seal_get_status(sb, &st);
  assert_true(st.sealed);
  assert_string_equal(st.reason, "refused to serve as active: test");
  /* An operator's seal carries no reason. */
  unseal(f, sb);
  cs_seal_seal(sb);
  cs_seal_get_status(sb, &st);
  assert_string_equal(st.reason, "");
  cs_seal_close(sb);
}

static void test_standalone_activates_staged(void **state) {
  fixture *f = *state;
  assert_int_equal(done(cs_seal_rotate(f->active, grab, NULL)), 0);
  assert_int_equal(cs_keyring_staged(cs_seal_keyring(f->active)), 2);
  /* The store leaves the cluster (or a restore brings a staged term into a
   * standalone server): nobody else must hold it first. */
  cs_seal_set_staged_activation(f->active, 0, 0);
  int rotating;
  assert_int_equal(cs_seal_tick(f->active, cs_now(), 0, &rotating), 0);
  assert_int_equal(active_term(f->active), 2);
  assert_int_equal(term_of(f, "core/root-key"), 2);
  /* And standalone rotations activate at once, as before. */
  assert_int_equal(done(cs_seal_rotate(f->active, grab, NULL)), 0);
  assert_false(last.staged);
  assert_int_equal(active_term(f->active), 3);
  assert_int_equal(term_of(f, "core/root-key"), 3);
}

/* A restart (kill -9) between staging and activation keeps the staged term:
 * it is in the stored keyring, with its upgrade key. */
static void test_restart_keeps_staged(void **state) {
  fixture *f = *state;
  assert_int_equal(done(cs_seal_rotate(f->active, grab, NULL)), 0);
  cs_seal_close(f->active);
  f->active = open_seal(f);
  unseal(f, f->active);
  cs_seal_set_staged_activation(f->active, 1, 600);
  assert_int_equal(cs_keyring_staged(cs_seal_keyring(f->active)), 2);
  assert_int_equal(active_term(f->active), 1);
  assert_true(exists(f, "core/upgrade/1"));
  /* A standby unsealed now gets the staged term from the stored keyring
   * and does not stage it twice from the upgrade key. */
  cs_seal *sb = open_seal(f);
  unseal(f, sb);
  int installed;
  assert_int_equal(cs_seal_follow(sb, cs_now(), &installed), 0);
  assert_int_equal(installed, 0);
  uint8_t proof[CS_TERM_PROOF_LEN];
  assert_int_equal(cs_seal_term_proof(sb, 2, "n3", proof), 0);
  assert_true(cs_seal_term_proof_ok(f->active, 2, "n3", proof, sizeof proof));
  assert_int_equal(done(cs_seal_activate(f->active, grab, NULL)), 0);
  assert_int_equal(cs_seal_follow(sb, cs_now(), &installed), 0);
  assert_int_equal(active_term(sb), 2);
  cs_seal_close(sb);
}

/* The wait a leader counts (ha/staging.c): the clock set back does not
 * restart it (monotonic time keeps counting), a new leader keeps the wall
 * clock's count; with the decision, a laggard holds activation back for at
 * most the delay. */
static void test_waited_and_clock(void **state) {
  (void)state;
  int64_t t0 = 1000000;
  assert_int_equal(cs_activation_waited(t0, t0 + 30, 0), 30);          /* new leader: wall clock */
  assert_int_equal(cs_activation_waited(t0, t0 - 3600, 7), 7);         /* clock went back 1 h */
  assert_int_equal(cs_activation_waited(t0, t0 + 5, 9), 9);
  cs_member_keys m[2] = {{"n2", 1, 2}, {"n3", 1, 1}};
  size_t lag;
  uint64_t w = cs_activation_waited(t0, t0 - 3600, 600);
  assert_int_equal(cs_activation_decide(2, t0 + 30 - (int64_t)w, t0 + 30, 600, m, 2, &lag),
                   CS_ACTIVATION_OVERDUE);
  assert_int_equal(lag, 1);
  w = cs_activation_waited(t0, t0 - 3600, 599);
  assert_int_equal(cs_activation_decide(2, t0 - (int64_t)w, t0, 600, m, 2, &lag),
                   CS_ACTIVATION_WAIT);
  m[1].newest_term = 2;
  assert_int_equal(cs_activation_decide(2, t0, t0, 600, m, 2, &lag), CS_ACTIVATION_NOW);
  /* A non-voter never holds it back. */
  m[1] = (cs_member_keys){"n4", 0, 0};
  assert_int_equal(cs_activation_decide(2, t0, t0, 600, m, 2, &lag), CS_ACTIVATION_NOW);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_rotation_stages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_standby_holds_then_activates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_laggard_seals_itself, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seal_because_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_standalone_activates_staged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_keeps_staged, setup, teardown),
      cmocka_unit_test(test_waited_and_clock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
