/*
 * Unit tests of the raft state machine's storage side (server/ha/fsm.c):
 * snapshot encode/restore between two real LMDB stores, skip when the store
 * is already ahead, replacement of stale data, garbage and truncated
 * snapshots refused with nothing changed, and idempotent replay of entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_error.h"
#include "fsm.h"
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_snapshots, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
