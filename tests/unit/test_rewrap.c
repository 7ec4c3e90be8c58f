/*
 * Unit tests for the per-term value counts (store + termcount) and the
 * rewrap engine: counts equal a full scan after random puts, overwrites,
 * deletes, restores, rotations and rewrap steps; rewrap resumes from the
 * persisted cursor after a crash (a child process killed between steps);
 * a write racing a rewrap batch wins; retirement is refused while values
 * remain, also in the committing transaction; a value found later under a
 * retired term names it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "barrier.h"
#include "cs_error.h"
#include "keyring.h"
#include "rewrap.h"
#include "secmem.h"
#include "store.h"
#include "termcount.h"

typedef struct fixture {
  char dir[64];
  cs_store *s;
  cs_keyring *k;
} fixture;

static void rmtree(const char *path) {
  DIR *d = opendir(path);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char sub[512];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      unlink(sub);
    }
    closedir(d);
  }
  rmdir(path);
}

static void open_store(fixture *f) {
  cs_store_opts o = {.map_size = 64u << 20, .no_sync = 1};
  int rc = cs_store_open(&f->s, f->dir, &o);
  if (rc != 0)
    fail_msg("cs_store_open: %s", cs_error_message(rc));
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/test_rewrap.XXXXXX");
  if (f == NULL || mkdtemp(f->dir) == NULL)
    return -1;
  open_store(f);
  if (cs_keyring_new(&f->k) != 0 || cs_keyring_rotate(f->k, 1000, NULL) != 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  cs_store_close(f->s);
  cs_keyring_free(f->k);
  rmtree(f->dir);
  free(f);
  return 0;
}

static void commit(fixture *f, cs_batch *b) {
  int rc = cs_store_commit(f->s, b);
  if (rc != 0)
    fail_msg("commit: %s", cs_error_message(rc));
  cs_batch_clear(b);
}

static void put(fixture *f, const char *path, const char *val) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_barrier_stage_put(f->k, &b, path, (const uint8_t *)val, strlen(val)), 0);
  commit(f, &b);
}

static void del(fixture *f, const char *path) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_del(&b, path), 0);
  commit(f, &b);
}

/* The plaintext at path, or NULL when absent (fails on any other error). */
static char *get(fixture *f, const char *path) {
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_get(f->s, f->k, path, &pt, &len);
  if (rc == CS_ENOTFOUND)
    return NULL;
  if (rc != 0)
    fail_msg("get %s: %s", path, cs_error_message(rc));
  char *s = malloc(len + 1);
  memcpy(s, pt, len);
  s[len] = '\0';
  free(pt);
  return s;
}

static void assert_get(fixture *f, const char *path, const char *want) {
  char *got = get(f, path);
  if (want == NULL) {
    assert_null(got);
    return;
  }
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static uint32_t term_at(fixture *f, const char *path) {
  uint8_t *ct;
  size_t len;
  uint32_t t;
  assert_int_equal(cs_store_get(f->s, path, &ct, &len), 0);
  assert_int_equal(cs_barrier_term_of(ct, len, &t), 0);
  free(ct);
  return t;
}

/* The maintained counts equal a full scan. */
static void check_counts(fixture *f) {
  cs_termcounts kept, scan;
  assert_int_equal(cs_store_term_counts(f->s, &kept), 0);
  assert_int_equal(cs_termcount_scan(f->s, &scan), 0);
  if (!cs_termcounts_equal(&kept, &scan)) {
    for (size_t i = 0; i < kept.n; i++)
      print_message("kept term %u: %llu\n", kept.v[i].term, (unsigned long long)kept.v[i].values);
    for (size_t i = 0; i < scan.n; i++)
      print_message("scan term %u: %llu\n", scan.v[i].term, (unsigned long long)scan.v[i].values);
    fail_msg("maintained counts differ from the full scan");
  }
  cs_termcounts_free(&kept);
  cs_termcounts_free(&scan);
}

static uint64_t count_of(fixture *f, uint32_t term) {
  cs_termcounts c;
  assert_int_equal(cs_store_term_counts(f->s, &c), 0);
  uint64_t n = cs_termcounts_get(&c, term);
  cs_termcounts_free(&c);
  return n;
}

/* Runs a whole rewrap to the end, steps of `n`. */
static void rewrap_all(fixture *f, uint32_t below, size_t n) {
  cs_rewrap_cursor c;
  cs_rewrap_step st;
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_rewrap_start(f->s, f->k, below, 1, &c, &b), 0);
  commit(f, &b);
  for (int i = 0; i < 100000; i++) {
    assert_int_equal(cs_rewrap_build(f->s, f->k, &c, n, 2, &b, &st), 0);
    commit(f, &b);
    check_counts(f);
    if (st.finished)
      return;
  }
  fail_msg("rewrap did not finish");
}

/* ---- counts ---------------------------------------------------------------- */

static void test_classify(void **state) {
  fixture *f = *state;
  /* Barrier values everywhere under the barrier are counted ... */
  const char *counted[] = {"kv/a", "core/token/ab", "core/policy/p", "core/rotate-config",
                           "core/audit-key", "core/root-key", "core/rewrap"};
  for (size_t i = 0; i < sizeof counted / sizeof *counted; i++)
    put(f, counted[i], "x");
  /* ... plaintext, the key hierarchy (term 0) and upgrade keys are not. */
  cs_batch b;
  cs_batch_init(&b);
  uint8_t key[CS_KEY_LEN] = {0}, *ct;
  size_t ct_len;
  assert_int_equal(cs_batch_put(&b, "core/seal-config", (const uint8_t *)"plain", 5), 0);
  assert_int_equal(cs_batch_put(&b, "core/restore", (const uint8_t *)"123456789", 9), 0);
  assert_int_equal(cs_barrier_seal_with(key, 0, "core/keyring", key, sizeof key, &ct, &ct_len), 0);
  assert_int_equal(cs_batch_put(&b, "core/keyring", ct, ct_len), 0);
  free(ct);
  assert_int_equal(cs_barrier_seal_with(cs_keyring_key(f->k, 1), 1, "core/upgrade/1", key,
                                        sizeof key, &ct, &ct_len), 0);
  assert_int_equal(cs_batch_put(&b, "core/upgrade/1", ct, ct_len), 0);
  free(ct);
  commit(f, &b);
  assert_int_equal(count_of(f, 1), 7);
  check_counts(f);
}

static void test_random_sequence(void **state) {
  fixture *f = *state;
  srand(14);
  const char *prefixes[] = {"kv/", "core/token/", "core/policy/"};
  char path[64], val[64];
  for (int step = 0; step < 3000; step++) {
    int r = rand() % 100;
    snprintf(path, sizeof path, "%s%d", prefixes[rand() % 3], rand() % 60);
    snprintf(val, sizeof val, "v%d", step);
    if (r < 50) {
      put(f, path, val);
    } else if (r < 70) {
      del(f, path);
    } else if (r < 75) {
      /* Several ops on one key in one batch: put, overwrite, delete, put. */
      cs_batch b;
      cs_batch_init(&b);
      for (int i = 0; i < 4; i++) {
        if (i == 2)
          assert_int_equal(cs_batch_del(&b, path), 0);
        else
          assert_int_equal(cs_barrier_stage_put(f->k, &b, path, (const uint8_t *)val, 2), 0);
      }
      commit(f, &b);
    } else if (r < 80) {
      cs_batch b;
      cs_batch_init(&b);
      assert_int_equal(cs_barrier_stage_put(f->k, &b, path, (const uint8_t *)val, 3), 0);
      b.ops[0].if_exists = 1;
      commit(f, &b);
    } else if (r < 83) {
      /* An immediate rotation; refused while a term is staged. */
      assert_int_equal(cs_keyring_rotate(f->k, step, NULL),
                       cs_keyring_staged(f->k) ? CS_ETERMSTATE : 0);
    } else if (r < 85) {
      uint32_t t;
      if (cs_keyring_staged(f->k) == 0)
        assert_int_equal(cs_keyring_stage(f->k, step, &t), 0);
      else
        assert_int_equal(cs_keyring_transition(f->k, cs_keyring_staged(f->k), CS_TERM_ACTIVE, step), 0);
    } else if (r < 95) {
      /* A few rewrap steps (below a random term). */
      cs_rewrap_cursor c;
      cs_rewrap_step st;
      cs_batch b;
      cs_batch_init(&b);
      assert_int_equal(cs_rewrap_start(f->s, f->k, (uint32_t)(rand() % 4), step, &c, &b), 0);
      commit(f, &b);
      for (int i = 0; i < 3; i++) {
        assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 5, step, &b, &st), 0);
        commit(f, &b);
      }
    } else if (r < 97) {
      /* A restore: the store replaced by a few values. */
      cs_batch b;
      cs_batch_init(&b);
      b.clear = 1;
      for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "kv/%d", rand() % 60);
        assert_int_equal(cs_barrier_stage_put(f->k, &b, path, (const uint8_t *)val, 2), 0);
      }
      commit(f, &b);
    } else {
      /* A group of batches, one of which fails (create of an existing key). */
      cs_batch a, x;
      cs_batch_init(&a);
      cs_batch_init(&x);
      assert_int_equal(cs_barrier_stage_put(f->k, &a, path, (const uint8_t *)val, 2), 0);
      assert_int_equal(cs_barrier_stage_put(f->k, &x, "kv/0", (const uint8_t *)val, 2), 0);
      x.ops[0].create = 1;
      const cs_batch *g[2] = {&a, &x};
      int status[2];
      assert_int_equal(cs_store_commit_group(f->s, g, 2, status), 0);
      cs_batch_clear(&a);
      cs_batch_clear(&x);
    }
    check_counts(f);
  }
  /* The record survives a restart and still matches. */
  cs_store_close(f->s);
  open_store(f);
  check_counts(f);
  /* Everything can be moved to the active term. */
  rewrap_all(f, 0, 7);
  cs_termcounts c;
  assert_int_equal(cs_store_term_counts(f->s, &c), 0);
  assert_true(c.n <= 1);
  if (c.n == 1)
    assert_int_equal(c.v[0].term, cs_keyring_active(f->k));
  cs_termcounts_free(&c);
}

static void test_recount_at_open(void **state) {
  fixture *f = *state;
  put(f, "kv/a", "1");
  put(f, "kv/b", "2");
  /* A store of an older custosd: no record, or a stale one. */
  assert_int_equal(cs_store_meta_put(f->s, "term_counts", (const uint8_t *)"", 0), 0);
  cs_store_close(f->s);
  open_store(f);
  assert_int_equal(count_of(f, 1), 2);
  check_counts(f);
}

static void test_batch_codec(void **state) {
  (void)state;
  cs_batch b, d;
  uint8_t digest[CS_STORE_DIGEST_LEN], *buf;
  size_t len;
  memset(digest, 7, sizeof digest);
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put_if_digest(&b, "kv/a", (const uint8_t *)"v", 1, digest), 0);
  b.require_empty_term = 3;
  assert_int_equal(cs_batch_encode(&b, &buf, &len), 0);
  assert_int_equal(cs_batch_decode(buf, len, &d), 0);
  free(buf);
  assert_int_equal(d.require_empty_term, 3);
  assert_int_equal(d.ops[0].if_digest, 1);
  assert_memory_equal(d.ops[0].digest, digest, sizeof digest);
  cs_batch_clear(&b);
  cs_batch_clear(&d);
}

/* ---- rewrap ---------------------------------------------------------------- */

static void test_rewrap_everything(void **state) {
  fixture *f = *state;
  char path[32], val[32];
  for (int i = 0; i < 50; i++) {
    snprintf(path, sizeof path, "kv/k%02d", i);
    snprintf(val, sizeof val, "value %d", i);
    put(f, path, val);
    if (i % 10 == 9)
      assert_int_equal(cs_keyring_rotate(f->k, 2000 + i, NULL), 0);
  }
  put(f, "core/audit-key", "audit");
  put(f, "core/rotate-config", "rot");
  assert_int_equal(cs_keyring_active(f->k), 6);
  uint64_t left;
  assert_int_equal(cs_rewrap_remaining(f->s, f->k, 0, &left), 0);
  assert_int_equal(left, 50); /* audit-key and rotate-config are under term 6 */
  /* Below term 3 only moves terms 1 and 2. */
  rewrap_all(f, 3, 4);
  assert_int_equal(count_of(f, 1), 0);
  assert_int_equal(count_of(f, 2), 0);
  assert_int_equal(count_of(f, 3), 10);
  rewrap_all(f, 0, 4);
  assert_int_equal(cs_rewrap_remaining(f->s, f->k, 0, &left), 0);
  assert_int_equal(left, 0);
  for (int i = 0; i < 50; i++) {
    snprintf(path, sizeof path, "kv/k%02d", i);
    snprintf(val, sizeof val, "value %d", i);
    assert_get(f, path, val);
    assert_int_equal(term_at(f, path), 6);
  }
  cs_rewrap_cursor c;
  assert_int_equal(cs_rewrap_load(f->s, f->k, &c), 0);
  assert_true(c.finished);
  assert_int_equal(c.done, 30); /* this pass: terms 3, 4 and 5 */
  assert_int_equal(c.total, 30);
}

/* A rotation during a pass restarts it under the new active term. */
static void test_rewrap_restarts_on_rotation(void **state) {
  fixture *f = *state;
  char path[32];
  for (int i = 0; i < 20; i++) {
    snprintf(path, sizeof path, "kv/k%02d", i);
    put(f, path, "v");
  }
  assert_int_equal(cs_keyring_rotate(f->k, 2000, NULL), 0);
  cs_rewrap_cursor c;
  cs_rewrap_step st;
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_rewrap_start(f->s, f->k, 0, 1, &c, &b), 0);
  commit(f, &b);
  assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 5, 2, &b, &st), 0);
  commit(f, &b);
  /* kv/k00..k04 are under term 2 now; rotate to 3 and write behind the cursor. */
  assert_int_equal(cs_keyring_rotate(f->k, 3000, NULL), 0);
  assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 100, 3, &b, &st), 0);
  assert_true(st.restarted);
  commit(f, &b);
  while (!st.finished) {
    assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 100, 3, &b, &st), 0);
    commit(f, &b);
  }
  uint64_t left;
  assert_int_equal(cs_rewrap_remaining(f->s, f->k, 0, &left), 0);
  assert_int_equal(left, 0);
  check_counts(f);
}

/* Kills a child process between two steps (after building a batch it never
 * commits), several times; the parent resumes from the persisted cursor. */
static void test_rewrap_resumes_after_crash(void **state) {
  fixture *f = *state;
  char path[32], val[32];
  for (int i = 0; i < 200; i++) {
    snprintf(path, sizeof path, "kv/k%03d", i);
    snprintf(val, sizeof val, "value %d", i);
    put(f, path, val);
  }
  assert_int_equal(cs_keyring_rotate(f->k, 2000, NULL), 0);
  cs_rewrap_cursor c;
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_rewrap_start(f->s, f->k, 0, 1, &c, &b), 0);
  commit(f, &b);
  uint64_t prev_done = 0;
  for (int round = 0; round < 6; round++) {
    cs_store_close(f->s); /* the child holds the store now */
    f->s = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      cs_store *s;
      cs_store_opts o = {.map_size = 64u << 20, .no_sync = 1};
      cs_rewrap_step st;
      if (cs_store_open(&s, f->dir, &o) != 0 || cs_rewrap_load(s, f->k, &c) != 0)
        _exit(2);
      for (int i = 0; i < 3; i++) {
        if (cs_rewrap_build(s, f->k, &c, 10, 2, &b, &st) != 0 || cs_store_commit(s, &b) != 0)
          _exit(3);
        cs_batch_clear(&b);
      }
      /* The fourth step is built but never committed: the crash. */
      if (cs_rewrap_build(s, f->k, &c, 10, 2, &b, &st) != 0)
        _exit(4);
      kill(getpid(), SIGKILL);
      _exit(5);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    open_store(f);
    check_counts(f);
    assert_int_equal(cs_rewrap_load(f->s, f->k, &c), 0);
    /* Exactly the three committed steps of this round were kept. */
    assert_int_equal(c.done, prev_done + 30);
    prev_done = c.done;
    assert_int_equal(count_of(f, 2), prev_done + 1); /* + the cursor itself */
    assert_int_equal(count_of(f, 1), 200 - prev_done);
  }
  /* The parent finishes the pass; every value is readable and moved. */
  cs_rewrap_step st = {0};
  while (!st.finished) {
    assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 25, 3, &b, &st), 0);
    commit(f, &b);
  }
  assert_int_equal(c.done, 200);
  assert_int_equal(count_of(f, 1), 0);
  for (int i = 0; i < 200; i++) {
    snprintf(path, sizeof path, "kv/k%03d", i);
    snprintf(val, sizeof val, "value %d", i);
    assert_get(f, path, val);
  }
  check_counts(f);
}

/* A write (and a delete) committed between a batch's build and its commit win. */
static void test_newer_write_wins(void **state) {
  fixture *f = *state;
  put(f, "kv/raced", "old");
  put(f, "kv/deleted", "old");
  put(f, "kv/quiet", "old");
  assert_int_equal(cs_keyring_rotate(f->k, 2000, NULL), 0);
  cs_rewrap_cursor c;
  cs_rewrap_step st;
  cs_batch b, rw;
  cs_batch_init(&b);
  cs_batch_init(&rw);
  assert_int_equal(cs_rewrap_start(f->s, f->k, 0, 1, &c, &b), 0);
  commit(f, &b);
  assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 10, 2, &rw, &st), 0);
  assert_int_equal(st.staged, 3);
  /* Meanwhile: */
  put(f, "kv/raced", "new");
  del(f, "kv/deleted");
  commit(f, &rw);
  assert_get(f, "kv/raced", "new");
  assert_get(f, "kv/deleted", NULL); /* not brought back */
  assert_get(f, "kv/quiet", "old");
  assert_int_equal(term_at(f, "kv/quiet"), 2);
  assert_int_equal(count_of(f, 1), 0);
  check_counts(f);
}

/* ---- retirement ------------------------------------------------------------ */

static void test_retire(void **state) {
  fixture *f = *state;
  put(f, "kv/a", "1");
  put(f, "kv/b", "2");
  put(f, "core/token/t", "3");
  uint8_t *old_ct;
  size_t old_len;
  assert_int_equal(cs_store_get(f->s, "kv/a", &old_ct, &old_len), 0);
  assert_int_equal(cs_keyring_rotate(f->k, 2000, NULL), 0);
  /* The active term can never be retired; values hold term 1 back. */
  assert_int_equal(cs_rewrap_retire_check(f->s, f->k, 2), CS_ETERMSTATE);
  assert_int_equal(cs_rewrap_retire_check(f->s, f->k, 1), CS_ETERMINUSE);
  assert_string_equal(cs_error_message(CS_ETERMINUSE),
                      "term 1 still encrypts 3 stored value(s): rewrap them first "
                      "(custos operator rewrap --wait)");
  assert_int_equal(cs_rewrap_retire_check(f->s, f->k, 7), CS_ENOTFOUND);
  rewrap_all(f, 0, 2);
  /* Built while no value is left, but a value under term 1 arrives before
   * it commits (a restore, say): the transaction refuses it. */
  cs_keyring *next;
  cs_batch b, late;
  cs_batch_init(&b);
  cs_batch_init(&late);
  assert_int_equal(cs_keyring_clone(f->k, &next), 0);
  uint8_t root[CS_KEY_LEN];
  memset(root, 0x5a, sizeof root);
  assert_int_equal(cs_rewrap_stage_retire(f->s, next, 1, 1796194800, &b), 0);
  assert_int_equal(cs_barrier_stage_keyring(&b, root, next), 0);
  assert_int_equal(cs_batch_put(&late, "kv/late", old_ct, old_len), 0);
  /* kv/late has kv/a's ciphertext: AAD differs, but it is counted. */
  commit(f, &late);
  assert_int_equal(cs_store_commit(f->s, &b), CS_ETERMINUSE);
  assert_int_equal(cs_store_exists(f->s, "core/keyring"), 0); /* nothing changed */
  del(f, "kv/late");
  assert_int_equal(cs_store_commit(f->s, &b), 0);
  cs_batch_clear(&b);
  /* The keyring committed with it is the retired one: term 1 has no key. */
  uint8_t *kct;
  size_t klen;
  cs_keyring *stored;
  assert_int_equal(cs_store_get(f->s, "core/keyring", &kct, &klen), 0);
  assert_int_equal(cs_barrier_open_keyring(root, kct, klen, &stored), 0);
  free(kct);
  cs_term_info ti;
  assert_int_equal(cs_keyring_term_info(stored, 1, &ti), 0);
  assert_int_equal(ti.state, CS_TERM_RETIRED);
  assert_int_equal(ti.retirement_time, 1796194800);
  assert_null(cs_keyring_key(stored, 1));
  assert_int_equal(cs_keyring_active(stored), 2);
  cs_keyring_free(stored);
  cs_keyring_free(f->k);
  f->k = next;
  assert_int_equal(cs_rewrap_retire_check(f->s, f->k, 1), CS_ETERMSTATE);
  assert_non_null(strstr(cs_error_message(CS_ETERMSTATE), "already retired"));
  /* A value found later under term 1 names the retirement. */
  assert_int_equal(cs_batch_put(&b, "kv/a", old_ct, old_len), 0);
  commit(f, &b);
  uint8_t *pt;
  size_t len;
  assert_int_equal(cs_barrier_get(f->s, f->k, "kv/a", &pt, &len), CS_ETERMRETIRED);
  assert_string_equal(cs_error_message(CS_ETERMRETIRED),
                      "term 1 was retired on 2026-12-02T07:00:00Z (path kv/a)");
  /* And the rewrap leaves it as it is, counted as skipped. */
  cs_rewrap_cursor c;
  cs_rewrap_step st;
  assert_int_equal(cs_rewrap_start(f->s, f->k, 0, 1, &c, &b), 0);
  commit(f, &b);
  assert_int_equal(cs_rewrap_build(f->s, f->k, &c, 10, 2, &b, &st), 0);
  commit(f, &b);
  assert_true(st.finished);
  assert_int_equal(c.skipped, 1);
  free(old_ct);
  check_counts(f);
}

static void test_retire_deletes_upgrade_keys(void **state) {
  fixture *f = *state;
  assert_int_equal(cs_keyring_rotate(f->k, 2000, NULL), 0);
  assert_int_equal(cs_keyring_rotate(f->k, 3000, NULL), 0);
  cs_batch b;
  cs_batch_init(&b);
  const char *up[] = {"core/upgrade/1", "core/upgrade/2", "core/upgrade/3"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_batch_put(&b, up[i], (const uint8_t *)"u", 1), 0);
  commit(f, &b);
  cs_keyring *next;
  assert_int_equal(cs_keyring_clone(f->k, &next), 0);
  assert_int_equal(cs_rewrap_stage_retire(f->s, next, 2, 5000, &b), 0);
  commit(f, &b);
  assert_int_equal(cs_store_exists(f->s, "core/upgrade/1"), 0); /* held term 2's key */
  assert_int_equal(cs_store_exists(f->s, "core/upgrade/2"), 0); /* sealed under term 2 */
  assert_int_equal(cs_store_exists(f->s, "core/upgrade/3"), 1);
  assert_null(cs_keyring_key(next, 2));
  cs_keyring_free(next);
}

int main(void) {
  if (cs_crypto_init() != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_classify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_sequence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recount_at_open, setup, teardown),
      cmocka_unit_test(test_batch_codec),
      cmocka_unit_test_setup_teardown(test_rewrap_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rewrap_restarts_on_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rewrap_resumes_after_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_newer_write_wins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retire_deletes_upgrade_keys, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
