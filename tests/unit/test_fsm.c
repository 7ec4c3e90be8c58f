/*
 * Unit tests of the raft state machine's storage side (server/ha/fsm.c):
 * snapshot encode/restore between two real LMDB stores, skip when the store
 * is already ahead, replacement of stale data, garbage and truncated
 * snapshots refused with nothing changed, idempotent replay of entries, and
 * group entries in which one bad batch fails alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_error.h"
#include "fsm.h"
#include "policy_cache.h"
#include "store.h"

typedef struct fx {
  char da[64], db[64];
  cs_store *a, *b;
} fx;

static cs_store *open_store(char *dir) {
  cs_store *s;
  cs_store_opts o = {.map_size = 64u << 20, .no_sync = 1};
  assert_non_null(mkdtemp(dir));
  assert_int_equal(cs_store_open(&s, dir, &o), 0);
  return s;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  strcpy(f->da, "/tmp/custos-test-fsm-a-XXXXXX");
  strcpy(f->db, "/tmp/custos-test-fsm-b-XXXXXX");
  f->a = open_store(f->da);
  f->b = open_store(f->db);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  cs_store_close(f->a);
  cs_store_close(f->b);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", f->da, f->db);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* Entry i puts k<i> = v<i>. */
static void apply_entry(cs_store *s, uint64_t index) {
  char k[32], v[32];
  snprintf(k, sizeof k, "kv/k%llu", (unsigned long long)index);
  snprintf(v, sizeof v, "v%llu", (unsigned long long)index);
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, k, (const uint8_t *)v, strlen(v)), 0);
  assert_int_equal(cs_store_commit_indexed(s, &b, index), 0);
  cs_batch_clear(&b);
}

static void check_value(cs_store *s, const char *key, const char *want) {
  uint8_t *v;
  size_t n;
  assert_int_equal(cs_store_get(s, key, &v, &n), 0);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(v, want, n);
  free(v);
}

static void test_snapshot_round_trip(void **state) {
  fx *f = *state;
  for (uint64_t i = 1; i <= 100; i++)
    apply_entry(f->a, i);
  /* Stale data on b that the snapshot must replace. */
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "kv/stale", (const uint8_t *)"x", 1), 0);
  assert_int_equal(cs_store_commit_indexed(f->b, &b, 3), 0);
  cs_batch_clear(&b);

  uint8_t *snap;
  size_t len;
  assert_int_equal(cs_fsm_snapshot_encode(f->a, &snap, &len), 0);
  assert_int_equal(cs_fsm_snapshot_restore(f->b, snap, len), 0);
  assert_int_equal(cs_store_applied_index(f->b), 100);
  check_value(f->b, "kv/k1", "v1");
  check_value(f->b, "kv/k100", "v100");
  assert_int_equal(cs_store_exists(f->b, "kv/stale"), 0);

  /* Replay of entries the snapshot covers changes nothing. */
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "kv/k50", (const uint8_t *)"replayed", 8), 0);
  assert_int_equal(cs_store_commit_indexed(f->b, &b, 50), 0);
  cs_batch_clear(&b);
  check_value(f->b, "kv/k50", "v50");

  /* A snapshot at or below the store's index is not restored. */
  apply_entry(f->b, 101);
  assert_int_equal(cs_fsm_snapshot_restore(f->b, snap, len), 0);
  check_value(f->b, "kv/k101", "v101");
  assert_int_equal(cs_store_applied_index(f->b), 101);
  raft_free(snap);
}

static void test_bad_snapshots(void **state) {
  fx *f = *state;
  apply_entry(f->a, 1);
  apply_entry(f->b, 1);
  uint8_t *snap;
  size_t len;
  assert_int_equal(cs_fsm_snapshot_encode(f->a, &snap, &len), 0);
  /* Garbage, wrong magic, truncated: refused, store untouched. */
  uint8_t garbage[64];
  memset(garbage, 0xA5, sizeof garbage);
  assert_true(cs_fsm_snapshot_restore(f->b, garbage, sizeof garbage) < 0);
  assert_true(cs_fsm_snapshot_restore(f->b, snap, 10) < 0);
  snap[17] ^= 0x40; /* length field */
  assert_true(cs_fsm_snapshot_restore(f->b, snap, len) < 0);
  snap[17] ^= 0x40;
  /* Index 5 (ahead of b) with a corrupt body. */
  snap[15] = 5;
  if (len > 30)
    memset(snap + 24, 0xff, len - 24);
  assert_true(cs_fsm_snapshot_restore(f->b, snap, len) < 0);
  assert_int_equal(cs_store_applied_index(f->b), 1);
  check_value(f->b, "kv/k1", "v1");
  raft_free(snap);
}

/* A policy document for any name, so the cache can be filled. */
static int load_any(void *ctx, const char *name, char **doc, size_t *len) {
  (void)ctx;
  (void)name;
  static const char d[] = "{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"]}]}";
  *doc = strdup(d);
  *len = sizeof d - 1;
  return *doc ? 0 : CS_ENOMEM;
}

static void fill_policy_cache(void) {
  cs_policy *p;
  assert_int_equal(cs_policy_cache_get("p", load_any, NULL, &p), 0);
  cs_policy_free(p);
  assert_int_equal(cs_policy_cache_count(), 1);
}

/* raft's entry: [u32 BE length][custos.Batch][zero padding to 8]. */
static void apply_raft_entry(struct raft_fsm *fsm, const char *key) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, key, (const uint8_t *)"x", 1), 0);
  uint8_t *enc;
  size_t len;
  assert_int_equal(cs_batch_encode(&b, &enc, &len), 0);
  cs_batch_clear(&b);
  uint8_t *buf = calloc(1, (4 + len + 7) & ~(size_t)7);
  assert_non_null(buf);
  buf[0] = (uint8_t)(len >> 24), buf[1] = (uint8_t)(len >> 16), buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  memcpy(buf + 4, enc, len);
  struct raft_buffer rb = {.base = buf, .len = (4 + len + 7) & ~(size_t)7};
  void *result = NULL;
  assert_int_equal(fsm->apply(fsm, &rb, &result), 0);
  assert_int_equal(cs_fsm_result(result), 0);
  free(buf);
  free(enc);
}

/* Issue 10: an applied entry touching core/policy/ (or core/token/) empties
 * the cache on every node; other entries leave it alone; so does a
 * restored snapshot. */
static void test_apply_forgets_cached_policies(void **state) {
  fx *f = *state;
  struct raft r;
  memset(&r, 0, sizeof r); /* apply only asks raft_last_applied() */
  struct raft_fsm fsm;
  cs_fsm_init(&fsm, &r, f->a, NULL, NULL);
  fill_policy_cache();
  apply_raft_entry(&fsm, "kv/unrelated");
  assert_int_equal(cs_policy_cache_count(), 1);
  r.last_applied = 1;
  apply_raft_entry(&fsm, "core/policy/p");
  assert_int_equal(cs_policy_cache_count(), 0);
  fill_policy_cache();
  r.last_applied = 2;
  apply_raft_entry(&fsm, "core/token/00");
  assert_int_equal(cs_policy_cache_count(), 1);
  uint8_t *snap;
  size_t len;
  assert_int_equal(cs_fsm_snapshot_encode(f->a, &snap, &len), 0);
  assert_int_equal(cs_fsm_snapshot_restore(f->b, snap, len), 0);
  assert_int_equal(cs_policy_cache_count(), 0);
  raft_free(snap);
  cs_fsm_close(&fsm);
}

/* ---- raft snapshots in two steps (fsm version 3) --------------------------- */

typedef struct async_job {
  struct raft_fsm *fsm;
  struct raft_buffer *bufs;
  unsigned n;
  int rc;
} async_job;

static void *run_async(void *arg) {
  async_job *j = arg;
  j->rc = j->fsm->snapshot_async(j->fsm, &j->bufs, &j->n);
  return NULL;
}

/* fsm_snapshot opens a view on the "loop" (this thread) and the worker
 * encodes it while entries go on being applied: the snapshot holds exactly
 * the state when it began, labelled with that state's applied index. */
static void test_async_snapshot(void **state) {
  fx *f = *state;
  struct raft r;
  memset(&r, 0, sizeof r);
  r.snapshot.threshold = 16;
  struct raft_fsm fsm;
  cs_fsm_init(&fsm, &r, f->a, NULL, NULL);
  assert_int_equal(fsm.version, 3);
  assert_non_null(fsm.snapshot_async);
  for (uint64_t i = 1; i <= 100; i++)
    apply_entry(f->a, i);
  r.last_applied = 100;
  async_job j = {.fsm = &fsm};
  assert_int_equal(fsm.snapshot(&fsm, &j.bufs, &j.n), 0);
  assert_null(j.bufs); /* nothing encoded on the loop */
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, run_async, &j), 0);
  for (uint64_t i = 101; i <= 150; i++)
    apply_entry(f->a, i); /* the loop applies meanwhile */
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(j.rc, 0);
  assert_int_equal(j.n, 1);
  assert_int_equal(cs_fsm_snapshot_restore(f->b, j.bufs[0].base, j.bufs[0].len), 0);
  assert_int_equal(cs_store_applied_index(f->b), 100);
  check_value(f->b, "kv/k100", "v100");
  assert_int_equal(cs_store_exists(f->b, "kv/k101"), 0);
  assert_int_equal(fsm.snapshot_finalize(&fsm, &j.bufs, &j.n), 0);
  assert_null(j.bufs);
  /* Finalized without the worker ever running (raft gave up): the view
   * is ended there, and the next snapshot can begin. */
  assert_int_equal(fsm.snapshot(&fsm, &j.bufs, &j.n), 0);
  assert_int_equal(fsm.snapshot_finalize(&fsm, &j.bufs, &j.n), 0);
  assert_int_equal(fsm.snapshot(&fsm, &j.bufs, &j.n), 0);
  assert_int_equal(fsm.snapshot_async(&fsm, &j.bufs, &j.n), 0);
  assert_int_equal(fsm.snapshot_finalize(&fsm, &j.bufs, &j.n), 0);
  cs_fsm_close(&fsm);
}

/* With little room left in the map (the open view would make the file grow
 * into it), the snapshot is encoded on the loop and the worker step does
 * nothing. */
static void test_snapshot_little_room(void **state) {
  (void)state;
  char dir[64] = "/tmp/custos-test-fsm-c-XXXXXX";
  cs_store *s;
  cs_store_opts o = {.map_size = 1u << 20, .no_sync = 1};
  assert_non_null(mkdtemp(dir));
  assert_int_equal(cs_store_open(&s, dir, &o), 0);
  uint8_t val[1000];
  memset(val, 'x', sizeof val);
  for (uint64_t i = 1; i <= 300; i++) {
    char k[32];
    snprintf(k, sizeof k, "kv/big%llu", (unsigned long long)i);
    cs_batch b;
    cs_batch_init(&b);
    assert_int_equal(cs_batch_put(&b, k, val, sizeof val), 0);
    assert_int_equal(cs_store_commit_indexed(s, &b, i), 0);
    cs_batch_clear(&b);
  }
  struct raft r;
  memset(&r, 0, sizeof r);
  r.snapshot.threshold = 16;
  r.last_applied = 300;
  struct raft_fsm fsm;
  cs_fsm_init(&fsm, &r, s, NULL, NULL);
  struct raft_buffer *bufs = NULL;
  unsigned n = 0;
  assert_int_equal(fsm.snapshot(&fsm, &bufs, &n), 0);
  assert_non_null(bufs); /* encoded here */
  assert_int_equal(n, 1);
  struct raft_buffer *same = bufs;
  assert_int_equal(fsm.snapshot_async(&fsm, &bufs, &n), 0);
  assert_ptr_equal(bufs, same);
  assert_int_equal(fsm.snapshot_finalize(&fsm, &bufs, &n), 0);
  cs_fsm_close(&fsm);
  cs_store_close(s);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* ---- entries: one group of batches, each failing alone -------------------- */

typedef struct results {
  int calls;
  uint64_t index;
  int status[8];
  size_t n;
} results;

static void on_results(void *ctx, uint64_t index, const int *status, size_t n) {
  results *r = ctx;
  r->calls++;
  r->index = index;
  r->n = n;
  for (size_t i = 0; i < n && i < 8; i++)
    r->status[i] = status[i];
}

/* Applies an entry through the raft FSM callback, as raft does. */
static int apply_buf(struct raft_fsm *fsm, struct raft *r, void *base, size_t len) {
  struct raft_buffer buf = {.base = base, .len = len};
  void *result = NULL;
  assert_int_equal(fsm->apply(fsm, &buf, &result), 0);
  r->last_applied++;
  return cs_fsm_result(result);
}

static void test_group_entry_one_bad(void **state) {
  fx *f = *state;
  /* A small store, so that one batch of the group cannot fit. */
  char dir[64] = "/tmp/custos-test-fsm-g-XXXXXX";
  cs_store *s;
  cs_store_opts o = {.map_size = 64u << 10, .no_sync = 1};
  assert_non_null(mkdtemp(dir));
  assert_int_equal(cs_store_open(&s, dir, &o), 0);
  struct raft r;
  memset(&r, 0, sizeof r);
  struct raft_fsm fsm;
  results res = {0};
  cs_fsm_init(&fsm, &r, s, on_results, &res);

  cs_batch b[3];
  const cs_batch *ptrs[3] = {&b[0], &b[1], &b[2]};
  for (int i = 0; i < 3; i++)
    cs_batch_init(&b[i]);
  static uint8_t big[1024];
  char key[32];
  assert_int_equal(cs_batch_put(&b[0], "kv/a", (const uint8_t *)"1", 1), 0);
  for (int i = 0; i < 200; i++) { /* 200 KiB into a 64 KiB map */
    snprintf(key, sizeof key, "kv/big%03d", i);
    assert_int_equal(cs_batch_put(&b[1], key, big, sizeof big), 0);
  }
  assert_int_equal(cs_batch_put(&b[2], "kv/c", (const uint8_t *)"3", 1), 0);
  struct raft_buffer e;
  assert_int_equal(cs_fsm_entry_encode(ptrs, 3, &e), 0);
  assert_int_equal(e.len % 8, 0);
  assert_int_equal(apply_buf(&fsm, &r, e.base, e.len), 0);
  assert_int_equal(res.calls, 1);
  assert_int_equal(res.index, 1);
  assert_int_equal(res.n, 3);
  assert_int_equal(res.status[0], 0);
  assert_int_equal(res.status[1], CS_ESTOREFULL);
  assert_int_equal(res.status[2], 0);
  check_value(s, "kv/a", "1");
  check_value(s, "kv/c", "3");
  assert_int_equal(cs_store_exists(s, "kv/big000"), 0);
  assert_int_equal(cs_store_applied_index(s), 1);

  /* A batch that does not decode fails alone too. */
  uint8_t *p = e.base;
  size_t len0 = (size_t)p[8] << 24 | (size_t)p[9] << 16 | (size_t)p[10] << 8 | p[11];
  uint8_t *second = p + 8 + 4 + len0;
  size_t len1 = (size_t)second[0] << 24 | (size_t)second[1] << 16 | (size_t)second[2] << 8 | second[3];
  memset(second + 4, 0xff, len1 > 16 ? 16 : len1);
  assert_int_equal(apply_buf(&fsm, &r, e.base, e.len), 0);
  assert_int_equal(res.calls, 2);
  assert_int_equal(res.status[0], 0);
  assert_int_equal(res.status[1], CS_EPROTO);
  assert_int_equal(res.status[2], 0);
  assert_int_equal(cs_store_applied_index(s), 2);
  raft_free(e.base);

  /* An entry in the older format (one length-prefixed batch) still applies. */
  cs_batch_clear(&b[0]);
  assert_int_equal(cs_batch_put(&b[0], "kv/x", (const uint8_t *)"y", 1), 0);
  uint8_t *enc;
  size_t elen;
  assert_int_equal(cs_batch_encode(&b[0], &enc, &elen), 0);
  uint8_t old[256] = {0};
  assert_true(elen + 4 <= sizeof old);
  old[0] = (uint8_t)(elen >> 24), old[1] = (uint8_t)(elen >> 16);
  old[2] = (uint8_t)(elen >> 8), old[3] = (uint8_t)elen;
  memcpy(old + 4, enc, elen);
  free(enc);
  assert_int_equal(apply_buf(&fsm, &r, old, (elen + 4 + 7) & ~(size_t)7), 0);
  assert_int_equal(res.calls, 3);
  assert_int_equal(res.n, 1);
  assert_int_equal(res.status[0], 0);
  check_value(s, "kv/x", "y");

  /* Broken framing: the entry fails as a whole, every node alike. */
  uint8_t bad[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0, 0, 200};
  assert_int_equal(apply_buf(&fsm, &r, bad, sizeof bad), CS_EPROTO);
  assert_int_equal(res.calls, 3);
  uint8_t shortb[2] = {0};
  assert_int_equal(apply_buf(&fsm, &r, shortb, sizeof shortb), CS_EPROTO);

  for (int i = 0; i < 3; i++)
    cs_batch_clear(&b[i]);
  cs_fsm_close(&fsm);
  cs_store_close(s);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  (void)f;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_snapshots, setup, teardown),
      cmocka_unit_test_setup_teardown(test_apply_forgets_cached_policies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_group_entry_one_bad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async_snapshot, setup, teardown),
      cmocka_unit_test(test_snapshot_little_room),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
