/*
 * Unit tests for the commit queue (server/commit/commitq.c): grouping and
 * its one retry policy on both back ends, with fakes behind the backend
 * table: one with the writer thread's flags (a group that failed as a
 * whole was not applied: retried batch by batch), one plugged in the way
 * raft is (cs_commitq_set_backend: a refused group is retried, a group
 * whose done() reports a failure is not).  Also the real writer thread on
 * a real store.  Each test gets its own loop and mkdtemp store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commitq.h"
#include "cs_error.h"
#include "store.h"
#include "writer.h"

#define MAX_LOG 64

/* ---- fixture ---------------------------------------------------------- */

typedef struct result {
  char key[32];
  int status;
} result;

typedef struct fixture {
  char dir[64];
  uv_loop_t loop;
  cs_store *store;
  cs_commitq *q;
  result res[MAX_LOG]; /* callbacks, in the order they ran */
  size_t n_res;
} fixture;

static fixture *F; /* the fakes and callbacks reach the fixture here */

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  strcpy(f->dir, "/tmp/test_commitq.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  cs_store_opts so = {.map_size = 8u << 20};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  assert_int_equal(cs_commitq_start(&f->q, &f->loop, f->store), 0);
  F = f;
  *state = f;
  return 0;
}

static void unlink_store(const char *dir) {
  const char *files[] = {"data.mdb", "lock.mdb", "custos.lock"};
  char p[128];
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->q != NULL)
    cs_commitq_stop(f->q);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* close callbacks free the queue */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  cs_store_close(f->store);
  unlink_store(f->dir);
  free(f);
  F = NULL;
  return 0;
}

static void on_done(void *arg, int status) {
  const char *key = arg;
  assert_true(F->n_res < MAX_LOG);
  snprintf(F->res[F->n_res].key, sizeof F->res[0].key, "%s", key);
  F->res[F->n_res].status = status;
  F->n_res++;
}

/* Submits a one-put batch whose callback records `key` (a string literal). */
static void submit(fixture *f, const char *key) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, key, (const uint8_t *)"v", 1), 0);
  assert_int_equal(cs_commitq_submit(f->q, &b, on_done, (void *)key), 0);
  assert_int_equal(b.n, 0); /* the queue took it */
}

/* Turns the loop until `n` callbacks ran (bounded). */
static void run_until(fixture *f, size_t n) {
  for (int i = 0; i < 100000 && f->n_res < n; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (f->n_res < n)
      usleep(100);
  }
  assert_int_equal(f->n_res, n);
}

static void expect_result(fixture *f, size_t i, const char *key, int status) {
  assert_string_equal(f->res[i].key, key);
  assert_int_equal(f->res[i].status, status);
}

/* ---- the fakes ---------------------------------------------------------- */

/*
 * Every group handed on is logged as its keys ("a,b,bad").  Groups complete
 * on a later loop turn (never inside submit).  A group holding a key that
 * starts with "bad" fails as a whole with CS_EIO (a transaction that
 * aborted); a key starting with "dup" fails alone with CS_EEXISTS inside a
 * group that commits; a key starting with "big" makes a group of several
 * refused at submit (CS_ETOOBIG, like an entry too large for raft).
 */
typedef struct fake_group {
  struct fake_group *next;
  cs_commit_done_fn done;
  cs_commitq_group_cb raft_done;
  void *arg;
  size_t n;
  int whole;   /* the whole group's status */
  int each[16];
} fake_group;

static char group_log[MAX_LOG][128];
static size_t n_groups;
static fake_group *fake_pending;
static uv_idle_t fake_idle;
static int async_whole_failure; /* raft fake: done() reports CS_EUNAVAIL for all */

static void log_group(const cs_batch *const *batches, size_t n) {
  assert_true(n_groups < MAX_LOG);
  char *p = group_log[n_groups++];
  p[0] = 0;
  for (size_t i = 0; i < n; i++) {
    if (i)
      strcat(p, ",");
    strcat(p, batches[i]->ops[0].key);
  }
}

static int has_prefix(const cs_batch *const *batches, size_t n, const char *prefix) {
  for (size_t i = 0; i < n; i++)
    if (strncmp(batches[i]->ops[0].key, prefix, strlen(prefix)) == 0)
      return 1;
  return 0;
}

static void fake_complete(uv_idle_t *h) {
  uv_idle_stop(h);
  fake_group *list = fake_pending;
  fake_pending = NULL;
  /* in submission order */
  fake_group *rev = NULL;
  while (list) {
    fake_group *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  for (fake_group *g = rev, *next; g; g = next) {
    next = g->next;
    if (g->done)
      g->done(g->arg, g->whole, g->whole < 0 ? NULL : g->each, NULL);
    else
      g->raft_done(g->arg, g->whole, g->whole < 0 ? NULL : g->each);
    free(g);
  }
}

static fake_group *fake_accept(const cs_batch *const *batches, size_t n, int whole) {
  fake_group *g = calloc(1, sizeof *g);
  assert_non_null(g);
  assert_true(n <= 16);
  g->n = n;
  g->whole = whole;
  for (size_t i = 0; i < n; i++)
    g->each[i] = strncmp(batches[i]->ops[0].key, "dup", 3) == 0 ? CS_EEXISTS : 0;
  g->next = fake_pending;
  fake_pending = g;
  if (!uv_is_active((uv_handle_t *)&fake_idle))
    uv_idle_start(&fake_idle, fake_complete);
  return g;
}

/* Behaves as the writer thread: a failed transaction applied nothing. */
static int writer_like_submit(void *ctx, const cs_batch *const *batches, size_t n,
                              cs_commit_done_fn done, void *arg) {
  (void)ctx;
  log_group(batches, n);
  fake_group *g = fake_accept(batches, n, has_prefix(batches, n, "bad") ? CS_EIO : 0);
  g->done = done;
  g->arg = arg;
  return 0;
}

static cs_commit_backend writer_like;

/* Plugged in the way ha.c plugs raft in. */
static int raft_like_submit(void *ctx, const cs_batch *const *batches, size_t n,
                            cs_commitq_group_cb done, void *arg) {
  (void)ctx;
  log_group(batches, n);
  if (n > 1 && has_prefix(batches, n, "big"))
    return cs_error_set(CS_ETOOBIG, "too large for one entry");
  if (n == 1 && has_prefix(batches, n, "big"))
    return cs_error_set(CS_ETOOBIG, "a batch too large for one entry");
  fake_group *g = fake_accept(batches, n, async_whole_failure ? CS_EUNAVAIL : 0);
  g->raft_done = done;
  g->arg = arg;
  return 0;
}

static int fake_setup(void **state) {
  setup(state);
  fixture *f = *state;
  n_groups = 0;
  fake_pending = NULL;
  async_whole_failure = 0;
  uv_idle_init(&f->loop, &fake_idle);
  /* The flags of the real writer table, the fake's submit. */
  writer_like = cs_commit_writer_backend;
  writer_like.name = "fake writer";
  writer_like.submit = writer_like_submit;
  writer_like.drain = NULL;
  return 0;
}

static int fake_teardown(void **state) {
  fixture *f = *state;
  cs_commitq_stop(f->q);
  f->q = NULL;
  /* a fake group still pending completes while the loop closes */
  while (fake_pending != NULL)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_close((uv_handle_t *)&fake_idle, NULL);
  return teardown(state);
}

/* ---- tests: writer-thread flags ------------------------------------------ */

/* One loop turn's batches go on as one group. */
static void test_writer_groups_one_turn(void **state) {
  fixture *f = *state;
  cs_commitq_use_backend(f->q, &writer_like, NULL);
  submit(f, "a");
  submit(f, "b");
  submit(f, "c");
  run_until(f, 3);
  assert_int_equal(n_groups, 1);
  assert_string_equal(group_log[0], "a,b,c");
  expect_result(f, 0, "a", 0);
  expect_result(f, 1, "b", 0);
  expect_result(f, 2, "c", 0);
}

/* A group that failed as a whole is retried batch by batch, in order: the
 * bad batch fails alone, its neighbours commit. */
static void test_writer_retries_batch_by_batch(void **state) {
  fixture *f = *state;
  cs_commitq_use_backend(f->q, &writer_like, NULL);
  submit(f, "a");
  submit(f, "b");
  submit(f, "bad");
  submit(f, "c");
  run_until(f, 4);
  assert_int_equal(n_groups, 5);
  assert_string_equal(group_log[0], "a,b,bad,c");
  assert_string_equal(group_log[1], "a");
  assert_string_equal(group_log[2], "b");
  assert_string_equal(group_log[3], "bad");
  assert_string_equal(group_log[4], "c");
  expect_result(f, 0, "a", 0);
  expect_result(f, 1, "b", 0);
  expect_result(f, 2, "bad", CS_EIO);
  expect_result(f, 3, "c", 0);
}

/* Retried batches go on before anything submitted after their group: the
 * writer takes one group at a time, so nothing later was in flight. */
static void test_writer_retry_keeps_order(void **state) {
  fixture *f = *state;
  cs_commitq_use_backend(f->q, &writer_like, NULL);
  submit(f, "bad1");
  submit(f, "x");
  uv_run(&f->loop, UV_RUN_NOWAIT); /* handed on: "bad1,x" */
  assert_int_equal(n_groups, 1);
  submit(f, "later"); /* queued while the failing group is in flight */
  run_until(f, 3);
  assert_int_equal(n_groups, 4);
  assert_string_equal(group_log[0], "bad1,x");
  assert_string_equal(group_log[1], "bad1");
  assert_string_equal(group_log[2], "x");
  assert_string_equal(group_log[3], "later");
  expect_result(f, 0, "bad1", CS_EIO);
  expect_result(f, 1, "x", 0);
  expect_result(f, 2, "later", 0);
}

/* A batch that fails inside a group that commits fails alone: no retry. */
static void test_writer_per_batch_failure(void **state) {
  fixture *f = *state;
  cs_commitq_use_backend(f->q, &writer_like, NULL);
  submit(f, "a");
  submit(f, "dup");
  submit(f, "b");
  run_until(f, 3);
  assert_int_equal(n_groups, 1);
  expect_result(f, 0, "a", 0);
  expect_result(f, 1, "dup", CS_EEXISTS);
  expect_result(f, 2, "b", 0);
}

/* A lone bad batch fails with its error, once. */
static void test_writer_single_bad_fails_once(void **state) {
  fixture *f = *state;
  cs_commitq_use_backend(f->q, &writer_like, NULL);
  submit(f, "bad");
  run_until(f, 1);
  assert_int_equal(n_groups, 1);
  expect_result(f, 0, "bad", CS_EIO);
}

/* ---- tests: raft -------------------------------------------------------- */

/* A group raft refuses (too large for one entry) is retried batch by
 * batch: the large batch fails alone, in order with the others. */
static void test_raft_refused_group_retried(void **state) {
  fixture *f = *state;
  cs_commitq_set_backend(f->q, raft_like_submit, NULL);
  submit(f, "a");
  submit(f, "big");
  submit(f, "b");
  run_until(f, 3);
  assert_int_equal(n_groups, 4);
  assert_string_equal(group_log[0], "a,big,b");
  assert_string_equal(group_log[1], "a");
  assert_string_equal(group_log[2], "big");
  assert_string_equal(group_log[3], "b");
  /* "big" was refused at once; a and b commit a turn later */
  expect_result(f, 0, "big", CS_ETOOBIG);
  expect_result(f, 1, "a", 0);
  expect_result(f, 2, "b", 0);
}

/* An entry whose apply was not confirmed (leadership lost) may still be
 * committed by the next leader: never retried, all of it fails. */
static void test_raft_unconfirmed_not_retried(void **state) {
  fixture *f = *state;
  cs_commitq_set_backend(f->q, raft_like_submit, NULL);
  async_whole_failure = 1;
  submit(f, "a");
  submit(f, "b");
  run_until(f, 2);
  assert_int_equal(n_groups, 1);
  expect_result(f, 0, "a", CS_EUNAVAIL);
  expect_result(f, 1, "b", CS_EUNAVAIL);
}

/* Per-batch results of an applied entry reach their own submitters, and
 * entries pipeline (a second turn's group goes on before the first is
 * applied). */
static void test_raft_results_and_pipelining(void **state) {
  fixture *f = *state;
  cs_commitq_set_backend(f->q, raft_like_submit, NULL);
  submit(f, "a");
  submit(f, "dup");
  uv_run(&f->loop, UV_RUN_NOWAIT);
  submit(f, "c");
  run_until(f, 3);
  assert_int_equal(n_groups, 2);
  assert_string_equal(group_log[0], "a,dup");
  assert_string_equal(group_log[1], "c");
  expect_result(f, 0, "a", 0);
  expect_result(f, 1, "dup", CS_EEXISTS);
  expect_result(f, 2, "c", 0);
}

/* ---- tests: the real writer thread on a real store ------------------------ */

static void submit_new(fixture *f, const char *key) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put_new(&b, key, (const uint8_t *)"n", 1), 0);
  assert_int_equal(cs_commitq_submit(f->q, &b, on_done, (void *)key), 0);
}

static void test_real_writer(void **state) {
  fixture *f = *state;
  submit(f, "kv/a");
  submit_new(f, "kv/a"); /* the first put commits before it: exists */
  submit(f, "kv/b");
  run_until(f, 3);
  expect_result(f, 0, "kv/a", 0);
  expect_result(f, 1, "kv/a", CS_EEXISTS);
  expect_result(f, 2, "kv/b", 0);
  uint8_t *v;
  size_t len;
  assert_int_equal(cs_store_get(f->store, "kv/b", &v, &len), 0);
  free(v);
  assert_int_equal(cs_store_get(f->store, "kv/a", &v, &len), 0);
  assert_memory_equal(v, "v", 1); /* the create did not overwrite */
  free(v);
}

/* Stopping finishes what is queued (callbacks run) and refuses more. */
static void test_real_writer_stop(void **state) {
  fixture *f = *state;
  submit(f, "kv/x");
  submit(f, "kv/y");
  cs_commitq *q = f->q;
  cs_commitq_stop(q);
  assert_int_equal(f->n_res, 2);
  expect_result(f, 0, "kv/x", 0);
  expect_result(f, 1, "kv/y", 0);
  f->q = NULL;
  assert_int_equal(cs_store_exists(f->store, "kv/y"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_writer_groups_one_turn, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_writer_retries_batch_by_batch, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_writer_retry_keeps_order, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_writer_per_batch_failure, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_writer_single_bad_fails_once, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_raft_refused_group_retried, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_raft_unconfirmed_not_retried, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_raft_results_and_pipelining, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_real_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_real_writer_stop, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
