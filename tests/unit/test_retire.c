/*
 * Unit tests of retiring a term through the seal (cs_seal_retire) over a
 * real LMDB directory: refused while values use the term (with the count),
 * for the active term, twice, for term 0 and unknown terms; allowed once a
 * rewrap moved every value; persisted across a restart; the upgrade keys
 * gone; a value found later under the term fails with "term N was retired
 * on DATE"; a second seal on the same store (a standby) wipes the key when
 * it follows; and the kept counts equal a full scan from one read
 * transaction (cs_store_term_counts_verify) after each step.
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

#include "barrier.h"
#include "cs_error.h"
#include "rewrap.h"
#include "seal.h"
#include "termcount.h"

typedef struct fixture {
  char dir[64];
  cs_store *store;
  cs_seal *seal;
  uint8_t share[64];
  size_t slen;
} fixture;

static int last_rc;
static cs_seal_result last_res;
static uint8_t init_share[64];
static size_t init_slen;

static void grab(void *arg, int status, cs_seal_result *r) {
  (void)arg;
  last_rc = status;
  if (status < 0)
    return;
  last_res.term = r->term;
  last_res.install_time = r->install_time;
  if (r->shares != NULL) {
    memcpy(init_share, r->shares, r->share_len);
    init_slen = r->share_len;
  }
}

static int done(int rc) { return rc == CS_SEAL_PENDING ? last_rc : rc; }

static void open_seal(fixture *f, cs_seal **s) {
  cs_seal_opts opts = {.store = f->store};
  assert_int_equal(cs_seal_open(s, &opts), 0);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/custos-test-retire-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  open_seal(f, &f->seal);
  assert_int_equal(done(cs_seal_init(f->seal, 1, 1, grab, NULL)), 0);
  memcpy(f->share, init_share, init_slen);
  f->slen = init_slen;
  assert_int_equal(cs_seal_unseal(f->seal, f->share, f->slen), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->seal)
    cs_seal_close(f->seal);
  cs_store_close(f->store);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void put(fixture *f, const char *path, const char *val) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_barrier_stage_put(cs_seal_keyring(f->seal), &b, path, (const uint8_t *)val,
                                        strlen(val)),
                   0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
}

static void assert_get(fixture *f, const char *path, const char *want) {
  uint8_t *pt;
  size_t len;
  assert_int_equal(cs_barrier_get(f->store, cs_seal_keyring(f->seal), path, &pt, &len), 0);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(pt, want, len);
  free(pt);
}

/* The kept counts equal a full scan, read in one transaction. */
static void check_counts(fixture *f) {
  cs_termcounts kept, scanned;
  assert_int_equal(cs_store_term_counts_verify(f->store, &kept, &scanned), 0);
  assert_true(cs_termcounts_equal(&kept, &scanned));
  cs_termcounts_free(&kept);
  cs_termcounts_free(&scanned);
}

static uint64_t values_under(fixture *f, uint32_t term) {
  cs_termcounts c;
  assert_int_equal(cs_store_term_counts(f->store, &c), 0);
  uint64_t v = cs_termcounts_get(&c, term);
  cs_termcounts_free(&c);
  return v;
}

static void rewrap_all(fixture *f) {
  cs_keyring *kr = cs_seal_keyring(f->seal);
  cs_rewrap_cursor c;
  cs_rewrap_step st;
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_rewrap_start(f->store, kr, 0, 10, &c, &b), 0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
  do {
    assert_int_equal(cs_rewrap_build(f->store, kr, &c, 3, 11, &b, &st), 0);
    assert_int_equal(cs_store_commit(f->store, &b), 0);
    cs_batch_clear(&b);
    check_counts(f);
  } while (!st.finished);
}

static int retire(fixture *f, cs_seal *s, uint32_t term) {
  (void)f;
  return done(cs_seal_retire(s, term, grab, NULL));
}

static void test_retire_lifecycle(void **state) {
  fixture *f = *state;
  put(f, "kv/a", "one");
  put(f, "kv/b", "two");
  put(f, "core/policy/p", "doc");
  uint8_t *old_ct;
  size_t old_len;
  assert_int_equal(cs_store_get(f->store, "kv/a", &old_ct, &old_len), 0);
  check_counts(f);

  /* Term 1 is active: never. */
  assert_int_equal(retire(f, f->seal, 1), CS_ETERMSTATE);
  assert_non_null(strstr(cs_error_message(CS_ETERMSTATE), "active term"));
  assert_int_equal(done(cs_seal_rotate(f->seal, grab, NULL)), 0);
  assert_int_equal(last_res.term, 2);
  assert_int_equal(cs_store_exists(f->store, "core/upgrade/1"), 1);

  /* Values (and the audit key init stored) hold term 1 back. */
  uint64_t left = values_under(f, 1);
  assert_true(left >= 3);
  assert_int_equal(retire(f, f->seal, 1), CS_ETERMINUSE);
  char want[128];
  snprintf(want, sizeof want, "term 1 still encrypts %llu stored value(s)", (unsigned long long)left);
  assert_non_null(strstr(cs_error_message(CS_ETERMINUSE), want));
  assert_int_equal(retire(f, f->seal, 0), CS_ENOTFOUND);
  assert_int_equal(retire(f, f->seal, 9), CS_ENOTFOUND);

  /* A standby on the same storage, unsealed before the retirement. */
  cs_seal *standby;
  open_seal(f, &standby);
  assert_int_equal(cs_seal_unseal(standby, f->share, f->slen), 0);
  assert_non_null(cs_keyring_key(cs_seal_keyring(standby), 1));

  rewrap_all(f);
  assert_int_equal(values_under(f, 1), 0);
  assert_int_equal(retire(f, f->seal, 1), 0);
  assert_int_equal(last_res.term, 1);
  assert_true(last_res.install_time > 0);
  check_counts(f);

  cs_keyring *kr = cs_seal_keyring(f->seal);
  cs_term_info ti;
  assert_int_equal(cs_keyring_term_info(kr, 1, &ti), 0);
  assert_int_equal(ti.state, CS_TERM_RETIRED);
  assert_null(cs_keyring_key(kr, 1));
  assert_int_equal(cs_store_exists(f->store, "core/upgrade/1"), 0);
  assert_get(f, "kv/a", "one");
  assert_get(f, "core/policy/p", "doc");

  /* Twice: refused with the date. */
  assert_int_equal(retire(f, f->seal, 1), CS_ETERMSTATE);
  assert_non_null(strstr(cs_error_message(CS_ETERMSTATE), "already retired on"));

  /* The standby wipes the key when it follows. */
  int installed;
  assert_int_equal(cs_seal_follow(standby, 20, &installed), 0);
  assert_null(cs_keyring_key(cs_seal_keyring(standby), 1));
  assert_int_equal(cs_keyring_term_info(cs_seal_keyring(standby), 1, &ti), 0);
  assert_int_equal(ti.state, CS_TERM_RETIRED);
  cs_seal_close(standby);

  /* An old ciphertext under term 1 found later (written back raw). */
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "kv/a", old_ct, old_len), 0);
  assert_int_equal(cs_store_commit(f->store, &b), 0);
  cs_batch_clear(&b);
  free(old_ct);
  uint8_t *pt;
  size_t len;
  assert_int_equal(cs_barrier_get(f->store, kr, "kv/a", &pt, &len), CS_ETERMRETIRED);
  assert_non_null(strstr(cs_error_message(CS_ETERMRETIRED), "term 1 was retired on "));
  check_counts(f);

  /* Persisted: after a restart the term is still retired. */
  cs_seal_close(f->seal);
  open_seal(f, &f->seal);
  assert_int_equal(cs_seal_unseal(f->seal, f->share, f->slen), 0);
  assert_int_equal(cs_keyring_term_info(cs_seal_keyring(f->seal), 1, &ti), 0);
  assert_int_equal(ti.state, CS_TERM_RETIRED);
  assert_true(ti.retirement_time > 0);
  assert_null(cs_keyring_key(cs_seal_keyring(f->seal), 1));
  assert_get(f, "kv/b", "two");
}

/* A write under the term, committed between the check and the retirement's
 * commit, makes the retirement fail as a whole (keyring unchanged). */
static void test_retire_race(void **state) {
  fixture *f = *state;
  put(f, "kv/a", "one");
  uint8_t *old_ct;
  size_t old_len;
  assert_int_equal(cs_store_get(f->store, "kv/a", &old_ct, &old_len), 0);
  assert_int_equal(done(cs_seal_rotate(f->seal, grab, NULL)), 0);
  rewrap_all(f);
  /* Build the retirement by hand, then land a term-1 value first. */
  cs_keyring *next;
  assert_int_equal(cs_keyring_clone(cs_seal_keyring(f->seal), &next), 0);
  cs_batch r, w;
  cs_batch_init(&r);
  cs_batch_init(&w);
  assert_int_equal(cs_rewrap_stage_retire(f->store, next, 1, 30, &r), 0);
  assert_int_equal(cs_batch_put(&w, "kv/late", old_ct, old_len), 0);
  assert_int_equal(cs_store_commit(f->store, &w), 0);
  assert_int_equal(cs_store_commit(f->store, &r), CS_ETERMINUSE);
  cs_batch_clear(&r);
  cs_batch_clear(&w);
  cs_keyring_free(next);
  free(old_ct);
  assert_int_equal(values_under(f, 1), 1);
  assert_non_null(cs_keyring_key(cs_seal_keyring(f->seal), 1));
  check_counts(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_retire_lifecycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retire_race, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
