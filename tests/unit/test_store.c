/*
 * Unit tests for store (LMDB).  Each test gets a fresh mkdtemp directory
 * under /tmp (created in setup, removed in teardown).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cs_error.h"
#include "custos.pb-c.h"
#include "store.h"

typedef struct fixture {
  char dir[64];
  cs_store *s;
} fixture;

/* rm -r of a test directory tree (no symlinks are ever created in it). */
static void rmtree(const char *path) {
  DIR *d = opendir(path);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char sub[512];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      struct stat st;
      if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        rmtree(sub);
      else
        unlink(sub);
    }
    closedir(d);
  }
  rmdir(path);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  strcpy(f->dir, "/tmp/test_store.XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  cs_store_close(f->s);
  chmod(f->dir, 0700);
  rmtree(f->dir);
  free(f);
  return 0;
}

static cs_store *open_store(fixture *f, size_t map_size, int no_sync) {
  cs_store_opts o = {.map_size = map_size, .no_sync = no_sync};
  cs_store *s = NULL;
  int rc = cs_store_open(&s, f->dir, &o);
  if (rc != 0)
    fail_msg("cs_store_open(%s): %s", f->dir, cs_error_message(rc));
  return s;
}

static void put1(cs_store *s, const char *key, const char *val) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, key, (const uint8_t *)val, strlen(val)), 0);
  int rc = cs_store_commit(s, &b);
  if (rc != 0)
    fail_msg("commit %s: %s", key, cs_error_message(rc));
  cs_batch_clear(&b);
}

static void assert_value(cs_store *s, const char *key, const char *want) {
  uint8_t *v = NULL;
  size_t n = 0;
  int rc = cs_store_get(s, key, &v, &n);
  if (rc != 0)
    fail_msg("get %s: %s", key, cs_error_message(rc));
  assert_int_equal(n, strlen(want));
  assert_memory_equal(v, want, n);
  free(v);
}

static void assert_absent(cs_store *s, const char *key) {
  uint8_t *v = (uint8_t *)"x";
  size_t n = 7;
  assert_int_equal(cs_store_get(s, key, &v, &n), CS_ENOTFOUND);
  assert_null(v);
  assert_int_equal(cs_store_exists(s, key), 0);
}

/* ---- basic operations --------------------------------------------------- */

static void test_put_get_delete(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);

  assert_absent(s, "kv/a");
  put1(s, "kv/a", "alpha");
  assert_value(s, "kv/a", "alpha");
  assert_int_equal(cs_store_exists(s, "kv/a"), 1);

  put1(s, "kv/a", "alpha2"); /* overwrite */
  assert_value(s, "kv/a", "alpha2");

  put1(s, "kv/empty", ""); /* an empty value is a value */
  assert_value(s, "kv/empty", "");
  assert_int_equal(cs_store_exists(s, "kv/empty"), 1);

  /* "meta" is an ordinary data key (not LMDB's sub-database record). */
  put1(s, "meta", "m");
  assert_value(s, "meta", "m");

  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_del(&b, "kv/a"), 0);
  assert_int_equal(cs_batch_del(&b, "kv/never-there"), 0); /* not an error */
  assert_int_equal(cs_store_commit(s, &b), 0);
  cs_batch_clear(&b);
  assert_absent(s, "kv/a");
  assert_value(s, "kv/empty", "");

  size_t entries = 0, used = 0;
  assert_int_equal(cs_store_stat(s, &entries, &used), 0);
  assert_int_equal(entries, 2);
  assert_true(used > 0);

  /* Later ops of a batch win over earlier ones on the same key. */
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "k", (const uint8_t *)"1", 1), 0);
  assert_int_equal(cs_batch_del(&b, "k"), 0);
  assert_int_equal(cs_batch_put(&b, "j", (const uint8_t *)"1", 1), 0);
  assert_int_equal(cs_batch_put(&b, "j", (const uint8_t *)"2", 1), 0);
  assert_int_equal(cs_store_commit(s, &b), 0);
  cs_batch_clear(&b);
  assert_absent(s, "k");
  assert_value(s, "j", "2");
}

/* ---- scan ---------------------------------------------------------------- */

typedef struct collected {
  char keys[16][32];
  char vals[16][32];
  size_t n;
  size_t stop_after; /* 0: never stop */
  int fail_with;     /* negative: abort with this code on the first key */
} collected;

static int collect(void *arg, const char *key, size_t key_len, const uint8_t *val, size_t val_len) {
  collected *c = arg;
  if (c->fail_with)
    return c->fail_with;
  assert_true(key_len < 32 && val_len < 32 && c->n < 16);
  assert_int_equal(strlen(key), key_len); /* NUL-terminated copy */
  memcpy(c->keys[c->n], key, key_len);
  c->keys[c->n][key_len] = '\0';
  memcpy(c->vals[c->n], val, val_len);
  c->vals[c->n][val_len] = '\0';
  c->n++;
  return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static void test_scan(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);
  /* Inserted out of order; "kv/" sorts between "a" and "kw". */
  put1(s, "kv/c", "3");
  put1(s, "kv/a", "1");
  put1(s, "kw", "x");
  put1(s, "kv/b/deep", "2");
  put1(s, "a", "0");
  put1(s, "kv", "bare");

  collected c = {0};
  assert_int_equal(cs_store_scan(s, "kv/", collect, &c), 0);
  assert_int_equal(c.n, 3);
  assert_string_equal(c.keys[0], "kv/a");
  assert_string_equal(c.vals[0], "1");
  assert_string_equal(c.keys[1], "kv/b/deep");
  assert_string_equal(c.vals[1], "2");
  assert_string_equal(c.keys[2], "kv/c");

  memset(&c, 0, sizeof c);
  c.stop_after = 2;
  assert_int_equal(cs_store_scan(s, "kv/", collect, &c), 0);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.keys[1], "kv/b/deep");

  memset(&c, 0, sizeof c);
  assert_int_equal(cs_store_scan(s, "nothing/", collect, &c), 0);
  assert_int_equal(c.n, 0);
  assert_int_equal(cs_store_scan(s, "zzz", collect, &c), 0); /* past the last key */
  assert_int_equal(c.n, 0);

  memset(&c, 0, sizeof c);
  assert_int_equal(cs_store_scan(s, "", collect, &c), 0);
  assert_int_equal(c.n, 6);
  const char *all[] = {"a", "kv", "kv/a", "kv/b/deep", "kv/c", "kw"};
  for (size_t i = 0; i < 6; i++)
    assert_string_equal(c.keys[i], all[i]);

  memset(&c, 0, sizeof c);
  c.fail_with = CS_EINTERNAL;
  assert_int_equal(cs_store_scan(s, "kv/", collect, &c), CS_EINTERNAL);
}

/* ---- atomicity ----------------------------------------------------------- */

static void test_batch_atomic_map_full(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 64 * 1024, 1);
  put1(s, "keep/1", "one");
  put1(s, "keep/2", "two");
  put1(s, "gone", "soon");

  uint8_t big[1024];
  memset(big, 0xab, sizeof big);
  cs_batch b;
  cs_batch_init(&b);
  char key[32];
  assert_int_equal(cs_batch_del(&b, "gone"), 0);
  assert_int_equal(cs_batch_put(&b, "keep/1", (const uint8_t *)"changed", 7), 0);
  for (int i = 0; i < 200; i++) { /* 200 KiB into a 64 KiB map */
    snprintf(key, sizeof key, "big/%03d", i);
    assert_int_equal(cs_batch_put(&b, key, big, sizeof big), 0);
    if (i % 10 == 0)
      assert_int_equal(cs_batch_del(&b, "keep/2"), 0);
  }
  int rc = cs_store_commit(s, &b);
  assert_int_equal(rc, CS_ESTOREFULL);
  assert_non_null(strstr(cs_error_message(rc), f->dir));
  cs_batch_clear(&b);
  assert_int_equal(b.n, 0);
  assert_null(b.ops);

  /* None of it happened. */
  assert_value(s, "keep/1", "one");
  assert_value(s, "keep/2", "two");
  assert_value(s, "gone", "soon");
  assert_int_equal(cs_store_exists(s, "big/000"), 0);
  collected c = {0};
  assert_int_equal(cs_store_scan(s, "big/", collect, &c), 0);
  assert_int_equal(c.n, 0);

  /* The store still works after the failed transaction. */
  put1(s, "after", "ok");
  assert_value(s, "after", "ok");

  /* And the same holds for the indexed commit: neither data nor index. */
  cs_batch_init(&b);
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "big/%03d", i);
    assert_int_equal(cs_batch_put(&b, key, big, sizeof big), 0);
  }
  assert_int_equal(cs_store_commit_indexed(s, &b, 5), CS_ESTOREFULL);
  cs_batch_clear(&b);
  assert_int_equal(cs_store_applied_index(s), 0);
  assert_int_equal(cs_store_exists(s, "big/199"), 0);
}

/*
 * Group commit: one batch that does not fit fails alone; the batches around
 * it commit in the same transaction, in order, with or without an index.
 */
static void test_commit_group_one_bad(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 64 * 1024, 1);
  uint8_t big[1024];
  memset(big, 0xcd, sizeof big);
  cs_batch b[4];
  const cs_batch *ptrs[4];
  char key[32];
  for (int i = 0; i < 4; i++) {
    cs_batch_init(&b[i]);
    ptrs[i] = &b[i];
  }
  assert_int_equal(cs_batch_put(&b[0], "g/a", (const uint8_t *)"1", 1), 0);
  for (int i = 0; i < 200; i++) { /* 200 KiB into a 64 KiB map */
    snprintf(key, sizeof key, "g/big%03d", i);
    assert_int_equal(cs_batch_put(&b[1], key, big, sizeof big), 0);
  }
  assert_int_equal(cs_batch_put(&b[2], "g/a", (const uint8_t *)"2", 1), 0); /* after b[0] */
  assert_int_equal(cs_batch_put(&b[3], "g/c", (const uint8_t *)"3", 1), 0);
  int status[4] = {1, 1, 1, 1};
  assert_int_equal(cs_store_commit_group(s, ptrs, 4, status), 0);
  assert_int_equal(status[0], 0);
  assert_int_equal(status[1], CS_ESTOREFULL);
  assert_int_equal(status[2], 0);
  assert_int_equal(status[3], 0);
  assert_value(s, "g/a", "2");
  assert_value(s, "g/c", "3");
  assert_int_equal(cs_store_exists(s, "g/big000"), 0);

  /* Indexed (a raft entry on every node): same results, index recorded. */
  assert_int_equal(cs_batch_put(&b[3], "g/d", (const uint8_t *)"4", 1), 0);
  assert_int_equal(cs_store_commit_group_indexed(s, ptrs, 4, status, 9), 0);
  assert_int_equal(status[1], CS_ESTOREFULL);
  assert_int_equal(status[0] | status[2] | status[3], 0);
  assert_int_equal(cs_store_applied_index(s), 9);
  assert_value(s, "g/d", "4");
  /* Replayed: skipped, every status 0. */
  assert_int_equal(cs_store_commit_group_indexed(s, ptrs, 4, status, 9), 0);
  assert_int_equal(status[0] | status[1] | status[2] | status[3], 0);
  for (int i = 0; i < 4; i++)
    cs_batch_clear(&b[i]);

  /* All good: one transaction, all 0. */
  assert_int_equal(cs_batch_put(&b[0], "g/e", (const uint8_t *)"5", 1), 0);
  assert_int_equal(cs_batch_del(&b[1], "g/a"), 0);
  assert_int_equal(cs_store_commit_group(s, ptrs, 2, status), 0);
  assert_int_equal(status[0] | status[1], 0);
  assert_value(s, "g/e", "5");
  assert_int_equal(cs_store_exists(s, "g/a"), 0);
  for (int i = 0; i < 2; i++)
    cs_batch_clear(&b[i]);
}

/* ---- persistence ---------------------------------------------------------- */

static void test_reopen_keeps_data(void **state) {
  fixture *f = *state;
  f->s = open_store(f, 0, 0); /* durable commits */
  put1(f->s, "core/keyring", "ring");
  put1(f->s, "kv/x", "y");
  cs_store_close(f->s);
  f->s = open_store(f, 0, 0);
  assert_value(f->s, "core/keyring", "ring");
  assert_value(f->s, "kv/x", "y");
}

/* A read view scanned on another thread, as a raft snapshot is (fsm.c). */
typedef struct view_job {
  cs_store_view *v;
  collected c;
  uint64_t index;
  int rc;
} view_job;

static void *scan_view(void *arg) {
  view_job *j = arg;
  j->rc = cs_store_view_applied_index(j->v, &j->index); /* no cmocka asserts off its thread */
  if (j->rc == 0)
    j->rc = cs_store_view_scan(j->v, "", collect, &j->c);
  cs_store_view_end(j->v);
  return NULL;
}

/* A view is the store as of its begin: later commits, a clear and a
 * higher applied index do not show in it, on this thread or another. */
static void test_view(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "a", (const uint8_t *)"1", 1), 0);
  assert_int_equal(cs_batch_put(&b, "b", (const uint8_t *)"2", 1), 0);
  assert_int_equal(cs_store_commit_indexed(s, &b, 5), 0);
  cs_batch_clear(&b);
  view_job j = {0};
  assert_int_equal(cs_store_view_begin(s, &j.v), 0);

  cs_batch_init(&b);
  b.clear = 1; /* as a restored snapshot */
  assert_int_equal(cs_batch_put(&b, "c", (const uint8_t *)"3", 1), 0);
  assert_int_equal(cs_store_commit_indexed(s, &b, 9), 0);
  cs_batch_clear(&b);
  assert_int_equal(cs_store_exists(s, "a"), 0);
  assert_int_equal(cs_store_applied_index(s), 9);

  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, scan_view, &j), 0);
  for (int i = 0; i < 50; i++) { /* commits while the other thread scans */
    char k[16];
    snprintf(k, sizeof k, "d%02d", i);
    put1(s, k, "x");
  }
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(j.rc, 0);
  assert_int_equal(j.index, 5);
  assert_int_equal(j.c.n, 2);
  assert_string_equal(j.c.keys[0], "a");
  assert_string_equal(j.c.vals[1], "2");

  /* A prefix longer than any key matches nothing. */
  collected c = {0};
  char longp[600];
  memset(longp, 'k', sizeof longp - 1);
  longp[sizeof longp - 1] = '\0';
  cs_store_view *v;
  assert_int_equal(cs_store_view_begin(s, &v), 0);
  assert_int_equal(cs_store_view_scan(v, longp, collect, &c), 0);
  assert_int_equal(c.n, 0);
  assert_int_equal(cs_store_view_scan(v, "c", collect, &c), 0);
  assert_int_equal(c.n, 1);
  size_t data = 0, room = 0;
  assert_int_equal(cs_store_view_room(v, &data, &room), 0);
  assert_true(data > 0 && room > 0);
  cs_store_view_end(v);
  cs_store_view_end(NULL);
}

static void test_commit_indexed(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);
  assert_int_equal(cs_store_applied_index(s), 0);

  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "n", (const uint8_t *)"1", 1), 0);
  assert_int_equal(cs_store_commit_indexed(s, &b, 7), 0);
  assert_int_equal(cs_store_applied_index(s), 7);
  assert_value(s, "n", "1");

  /* The same entry replayed after the value moved on is skipped. */
  put1(s, "n", "local");
  assert_int_equal(cs_store_commit_indexed(s, &b, 7), 0);
  assert_value(s, "n", "local");
  cs_batch_clear(&b);

  /* A lower index is skipped too. */
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "low", (const uint8_t *)"x", 1), 0);
  assert_int_equal(cs_store_commit_indexed(s, &b, 3), 0);
  assert_int_equal(cs_store_exists(s, "low"), 0);
  assert_int_equal(cs_store_applied_index(s), 7);
  /* A higher one applies. */
  assert_int_equal(cs_store_commit_indexed(s, &b, 8), 0);
  assert_int_equal(cs_store_exists(s, "low"), 1);
  cs_batch_clear(&b);

  /* An empty batch still advances the index (raft no-op entries). */
  cs_batch_init(&b);
  assert_int_equal(cs_store_commit_indexed(s, &b, 1ull << 40), 0);
  assert_int_equal(cs_store_applied_index(s), 1ull << 40);

  cs_store_close(s);
  s = f->s = open_store(f, 0, 1);
  assert_int_equal(cs_store_applied_index(s), 1ull << 40);
  assert_int_equal(cs_store_commit_indexed(s, &b, 8), 0); /* still skipped */
  assert_int_equal(cs_store_applied_index(s), 1ull << 40);
  /* The index lives outside the data: it never shows in a scan. */
  collected c = {0};
  assert_int_equal(cs_store_scan(s, "", collect, &c), 0);
  assert_int_equal(c.n, 2);
}

/* ---- encode / decode -------------------------------------------------------- */

/*
 * A conditional put (cs_batch_put_if_exists) applies only if its key exists
 * in the committing transaction: a delete queued before it, in the same
 * batch or a batch appended before it (group commit, one raft entry), wins.
 * It survives the raft encoding, and a replica applying the decoded batch
 * skips it alike.
 */
static void test_put_if_exists(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);
  put1(s, "tok", "v1");

  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put_if_exists(&b, "tok", (const uint8_t *)"v2", 2), 0);
  assert_int_equal(cs_batch_put_if_exists(&b, "absent", (const uint8_t *)"x", 1), 0);
  assert_int_equal(cs_store_commit(s, &b), 0);
  assert_value(s, "tok", "v2");
  assert_int_equal(cs_store_exists(s, "absent"), 0);
  cs_batch_clear(&b);

  /* Revoke then renew, grouped as the commit queue does: the key stays gone. */
  cs_batch revoke, renew, group;
  cs_batch_init(&revoke);
  cs_batch_init(&renew);
  cs_batch_init(&group);
  assert_int_equal(cs_batch_del(&revoke, "tok"), 0);
  assert_int_equal(cs_batch_put_if_exists(&renew, "tok", (const uint8_t *)"v3", 2), 0);
  assert_int_equal(cs_batch_append(&group, &revoke), 0);
  assert_int_equal(cs_batch_append(&group, &renew), 0);
  assert_true(group.ops[1].if_exists);

  /* Through the raft entry codec, applied as a replica would. */
  uint8_t *enc;
  size_t len;
  assert_int_equal(cs_batch_encode(&group, &enc, &len), 0);
  cs_batch dec;
  assert_int_equal(cs_batch_decode(enc, len, &dec), 0);
  free(enc);
  assert_int_equal(dec.n, 2);
  assert_true(dec.ops[1].if_exists);
  assert_false(dec.ops[0].if_exists);
  assert_int_equal(cs_store_commit_indexed(s, &dec, 1), 0);
  assert_int_equal(cs_store_exists(s, "tok"), 0);
  cs_batch_clear(&dec);

  /* Batch by batch (the commit queue's retry path): the same outcome. */
  put1(s, "tok", "v1");
  assert_int_equal(cs_store_commit(s, &revoke), 0);
  assert_int_equal(cs_store_commit(s, &renew), 0);
  assert_int_equal(cs_store_exists(s, "tok"), 0);
  cs_batch_clear(&revoke);
  cs_batch_clear(&renew);
  cs_batch_clear(&group);
}

/* A delete carrying a condition is not a valid op on the wire. */
static void test_put_if_exists_decode_invalid(void **state) {
  (void)state;
  Custos__BatchOp op = CUSTOS__BATCH_OP__INIT, *ops[1] = {&op};
  Custos__Batch msg = CUSTOS__BATCH__INIT;
  op.key.data = (uint8_t *)"k";
  op.key.len = 1;
  op.del = 1;
  op.if_exists = 1;
  msg.n_ops = 1;
  msg.ops = ops;
  uint8_t buf[64];
  size_t len = custos__batch__pack(&msg, buf);
  cs_batch b;
  assert_int_equal(cs_batch_decode(buf, len, &b), CS_EPROTO);
  assert_int_equal(b.n, 0);
}

static void test_batch_codec(void **state) {
  (void)state;
  cs_batch b, d, all;
  cs_batch_init(&b);
  uint8_t bin[5] = {0, 1, 0xff, 0, 2};
  assert_int_equal(cs_batch_put(&b, "kv/a", bin, sizeof bin), 0);
  assert_int_equal(cs_batch_del(&b, "kv/b"), 0);
  assert_int_equal(cs_batch_put(&b, "kv/empty", NULL, 0), 0);

  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(cs_batch_encode(&b, &buf, &len), 0);
  assert_int_equal(cs_batch_decode(buf, len, &d), 0);
  free(buf);
  assert_int_equal(d.n, 3);
  assert_string_equal(d.ops[0].key, "kv/a");
  assert_false(d.ops[0].del);
  assert_int_equal(d.ops[0].val_len, sizeof bin);
  assert_memory_equal(d.ops[0].val, bin, sizeof bin);
  assert_string_equal(d.ops[1].key, "kv/b");
  assert_true(d.ops[1].del);
  assert_null(d.ops[1].val);
  assert_string_equal(d.ops[2].key, "kv/empty");
  assert_false(d.ops[2].del);
  assert_non_null(d.ops[2].val);
  assert_int_equal(d.ops[2].val_len, 0);

  /* append copies: clearing the source leaves dst intact. */
  cs_batch_init(&all);
  assert_int_equal(cs_batch_append(&all, &b), 0);
  assert_int_equal(cs_batch_append(&all, &d), 0);
  cs_batch_clear(&b);
  cs_batch_clear(&d);
  assert_int_equal(all.n, 6);
  assert_string_equal(all.ops[3].key, "kv/a");
  assert_memory_equal(all.ops[3].val, bin, sizeof bin);
  assert_true(all.ops[4].del);
  cs_batch_clear(&all);

  /* An empty batch round-trips. */
  cs_batch_init(&b);
  assert_int_equal(cs_batch_encode(&b, &buf, &len), 0);
  assert_int_equal(len, 0);
  assert_int_equal(cs_batch_decode(buf, len, &d), 0);
  assert_int_equal(d.n, 0);
  free(buf);
  cs_batch_clear(&d);
}

static void test_batch_decode_garbage(void **state) {
  (void)state;
  cs_batch d;
  /* Truncated / garbage wire data. */
  const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  assert_int_equal(cs_batch_decode(garbage, sizeof garbage, &d), CS_EPROTO);
  assert_int_equal(d.n, 0);
  const uint8_t junk[] = {0xff, 0xff, 0xff};
  assert_int_equal(cs_batch_decode(junk, sizeof junk, &d), CS_EPROTO);

  /* Well-formed protobuf, invalid ops.  Batch{ops=[BatchOp{...}]} by hand:
   * 0x0a len BatchOp; BatchOp: 0x0a klen key, 0x12 vlen value, 0x18 del. */
  const uint8_t empty_key[] = {0x0a, 0x04, 0x12, 0x02, 'h', 'i'};
  assert_int_equal(cs_batch_decode(empty_key, sizeof empty_key, &d), CS_EPROTO);
  const uint8_t nul_key[] = {0x0a, 0x05, 0x0a, 0x03, 'a', 0, 'b'};
  assert_int_equal(cs_batch_decode(nul_key, sizeof nul_key, &d), CS_EPROTO);
  const uint8_t del_val[] = {0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x01, 'v', 0x18, 0x01};
  assert_int_equal(cs_batch_decode(del_val, sizeof del_val, &d), CS_EPROTO);
  /* ...one valid op followed by an invalid one leaves d empty. */
  const uint8_t mixed[] = {0x0a, 0x03, 0x0a, 0x01, 'k', 0x0a, 0x00};
  assert_int_equal(cs_batch_decode(mixed, sizeof mixed, &d), CS_EPROTO);
  assert_int_equal(d.n, 0);
  assert_null(d.ops);

  /* A put without a value field is a put of an empty value. */
  const uint8_t novalue[] = {0x0a, 0x03, 0x0a, 0x01, 'k'};
  assert_int_equal(cs_batch_decode(novalue, sizeof novalue, &d), 0);
  assert_int_equal(d.n, 1);
  assert_string_equal(d.ops[0].key, "k");
  assert_false(d.ops[0].del);
  assert_int_equal(d.ops[0].val_len, 0);
  cs_batch_clear(&d);

  /* Random bytes never crash (either an error or a valid batch). */
  srand(1234);
  uint8_t rnd[64];
  for (int i = 0; i < 2000; i++) {
    size_t n = (size_t)(rand() % (int)sizeof rnd);
    for (size_t j = 0; j < n; j++)
      rnd[j] = (uint8_t)rand();
    int rc = cs_batch_decode(rnd, n, &d);
    assert_true(rc == 0 || rc == CS_EPROTO);
    cs_batch_clear(&d);
  }
}

/* ---- error paths -------------------------------------------------------------- */

static void test_missing_dir(void **state) {
  fixture *f = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/does-not-exist", f->dir);
  cs_store *s = (cs_store *)1;
  int rc = cs_store_open(&s, path, NULL);
  assert_int_equal(rc, CS_EIO);
  assert_null(s);
  const char *msg = cs_error_message(rc);
  assert_non_null(strstr(msg, path));
  assert_non_null(strstr(msg, "does not exist"));
}

/* Opens dir and returns the code (for the unprivileged child below too). */
static int try_open(const char *dir) {
  cs_store *s = NULL;
  int rc = cs_store_open(&s, dir, NULL);
  cs_store_close(s);
  return rc;
}

static void test_readonly_dir(void **state) {
  fixture *f = *state;
  /* A store created earlier, then made read-only, as well as a fresh one. */
  f->s = open_store(f, 0, 1);
  put1(f->s, "k", "v");
  cs_store_close(f->s);
  f->s = NULL;
  char fresh[128];
  snprintf(fresh, sizeof fresh, "%s/fresh", f->dir);
  assert_int_equal(mkdir(fresh, 0700), 0);
  char data[128], lock[128];
  snprintf(data, sizeof data, "%s/data.mdb", f->dir);
  snprintf(lock, sizeof lock, "%s/lock.mdb", f->dir);

  if (geteuid() != 0) {
    assert_int_equal(chmod(fresh, 0500), 0);
    int rc = try_open(fresh);
    assert_int_equal(rc, CS_ESTORERDONLY);
    assert_non_null(strstr(cs_error_message(rc), fresh));
    /* Writable directory, read-only data file. */
    assert_int_equal(chmod(data, 0400), 0);
    assert_int_equal(try_open(f->dir), CS_ESTORERDONLY);
    chmod(fresh, 0700);
    return;
  }
  /* root ignores permissions: check as an unprivileged user in a child. */
  assert_int_equal(chmod(fresh, 0555), 0);
  assert_int_equal(chmod(f->dir, 0777), 0);  /* so nobody can reach fresh/ */
  assert_int_equal(chmod(data, 0444), 0);    /* readable, not writable */
  assert_int_equal(chmod(lock, 0666), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(77);
    int a = try_open(fresh);
    int b = try_open(f->dir);
    _exit(a == CS_ESTORERDONLY && b == CS_ESTORERDONLY ? 0 : 1);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  chmod(f->dir, 0700);
  chmod(fresh, 0700);
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) == 77)
    skip(); /* no CAP_SETUID: nothing reliable to check */
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_corrupt_dir(void **state) {
  fixture *f = *state;
  char data[128];
  snprintf(data, sizeof data, "%s/data.mdb", f->dir);
  uint8_t junk[3 * 4096];
  srand(42);
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)rand();
  for (size_t size = 100; size <= sizeof junk; size *= 4) {
    FILE *fp = fopen(data, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, size, fp), size);
    fclose(fp);
    cs_store *s = (cs_store *)1;
    int rc = cs_store_open(&s, f->dir, NULL);
    assert_int_equal(rc, CS_ESTORECORRUPT);
    assert_null(s);
    assert_non_null(strstr(cs_error_message(rc), f->dir));
    assert_non_null(strstr(cs_error_message(rc), "corrupt"));
  }
}

static void test_max_key(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);
  char key[600];
  memset(key, 'k', sizeof key);
  key[511] = '\0';
  put1(s, key, "max"); /* 511 bytes: the largest LMDB key */
  assert_value(s, key, "max");

  key[511] = 'k';
  key[512] = '\0';
  /* Refused when staged, not when applied: nothing that was staged can
   * fail on its key later (one raft entry carries many clients' batches). */
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "fine", (const uint8_t *)"1", 1), 0);
  int rc = cs_batch_put(&b, key, (const uint8_t *)"x", 1);
  assert_int_equal(rc, CS_EINVAL);
  assert_non_null(strstr(cs_error_message(rc), "512"));
  assert_int_equal(b.n, 1); /* unchanged */
  assert_int_equal(cs_batch_del(&b, key), CS_EINVAL);
  assert_int_equal(cs_batch_put(&b, "", (const uint8_t *)"x", 1), CS_EINVAL);
  assert_int_equal(cs_batch_del(&b, ""), CS_EINVAL);
  assert_int_equal(b.n, 1);
  assert_int_equal(cs_store_commit(s, &b), 0);
  assert_value(s, "fine", "1");
  cs_batch_clear(&b);

  uint8_t *v;
  size_t n;
  assert_int_equal(cs_store_get(s, key, &v, &n), CS_EINVAL);
  assert_int_equal(cs_store_exists(s, key), CS_EINVAL);
  collected c = {0};
  assert_int_equal(cs_store_scan(s, key, collect, &c), 0);
  assert_int_equal(c.n, 0);
}

static void test_backup(void **state) {
  fixture *f = *state;
  cs_store *s = f->s = open_store(f, 0, 1);
  for (int i = 0; i < 50; i++) {
    char k[16];
    snprintf(k, sizeof k, "kv/%02d", i);
    put1(s, k, "value");
  }
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "last", (const uint8_t *)"x", 1), 0);
  assert_int_equal(cs_store_commit_indexed(s, &b, 42), 0);
  cs_batch_clear(&b);

  char bak[128];
  snprintf(bak, sizeof bak, "%s/backup", f->dir);
  int rc = cs_store_backup(s, bak);
  assert_int_equal(rc, CS_EIO); /* does not exist */
  assert_non_null(strstr(cs_error_message(rc), bak));
  assert_int_equal(mkdir(bak, 0700), 0);
  assert_int_equal(cs_store_backup(s, bak), 0);
  assert_int_equal(cs_store_backup(s, bak), CS_EINVAL); /* not empty any more */

  cs_store *copy = NULL;
  assert_int_equal(cs_store_open(&copy, bak, NULL), 0);
  size_t entries, used;
  assert_int_equal(cs_store_stat(copy, &entries, &used), 0);
  assert_int_equal(entries, 51);
  assert_value(copy, "kv/49", "value");
  assert_int_equal(cs_store_applied_index(copy), 42);
  cs_store_close(copy);
}

/* ---- crash safety ------------------------------------------------------------ */

/* Child: commits batches {b/<seq>/0..9, last=<seq>} forever from last+1. */
static void crash_child(const char *dir, int no_sync) {
  cs_store_opts o = {.no_sync = no_sync};
  cs_store *s;
  if (cs_store_open(&s, dir, &o) != 0)
    _exit(2);
  uint64_t seq = 1;
  uint8_t *v;
  size_t n;
  if (cs_store_get(s, "last", &v, &n) == 0) {
    char tmp[32];
    if (n >= sizeof tmp)
      _exit(3);
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    seq = strtoull(tmp, NULL, 10) + 1;
    free(v);
  }
  for (;; seq++) {
    cs_batch b;
    cs_batch_init(&b);
    char key[48], val[32];
    for (int i = 0; i < 10; i++) {
      snprintf(key, sizeof key, "b/%llu/%d", (unsigned long long)seq, i);
      if (cs_batch_put(&b, key, (const uint8_t *)key, strlen(key)) != 0)
        _exit(4);
    }
    snprintf(val, sizeof val, "%llu", (unsigned long long)seq);
    if (cs_batch_put(&b, "last", (const uint8_t *)val, strlen(val)) != 0)
      _exit(4);
    if (cs_store_commit(s, &b) != 0)
      _exit(5);
    cs_batch_clear(&b);
  }
}

typedef struct seq_count {
  unsigned counts[1000000];
  unsigned long long max_seq;
  int bad;
} seq_count;

static int count_seq(void *arg, const char *key, size_t key_len, const uint8_t *val,
                     size_t val_len) {
  seq_count *c = arg;
  char *end;
  unsigned long long seq = strtoull(key + 2, &end, 10);
  if (*end != '/' || seq == 0 || seq >= 1000000 || val_len != key_len ||
      memcmp(val, key, key_len) != 0) {
    c->bad = 1;
    return 1;
  }
  c->counts[seq]++;
  if (seq > c->max_seq)
    c->max_seq = seq;
  return 0;
}

static void test_crash_atomicity(void **state) {
  fixture *f = *state;
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  srand((unsigned)(getpid() ^ t0.tv_nsec));
  seq_count *c = malloc(sizeof *c);
  assert_non_null(c);
  unsigned long long prev_last = 0;
  int rounds = 0;
  for (; rounds < 20; rounds++) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - t0.tv_sec >= 8)
      break; /* stay well inside the time budget on a slow disk */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      crash_child(f->dir, rounds % 2); /* durable and no_sync alternately */
    usleep((useconds_t)(2000 + rand() % 20000));
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st))
      fail_msg("round %d: child exited with %d before the kill", rounds, WEXITSTATUS(st));

    f->s = open_store(f, 0, 1);
    unsigned long long last = 0;
    uint8_t *v;
    size_t n;
    int rc = cs_store_get(f->s, "last", &v, &n);
    if (rc == 0) {
      char tmp[32];
      assert_true(n < sizeof tmp);
      memcpy(tmp, v, n);
      tmp[n] = '\0';
      last = strtoull(tmp, NULL, 10);
      free(v);
    } else {
      assert_int_equal(rc, CS_ENOTFOUND);
    }
    assert_true(last >= prev_last);
    memset(c, 0, sizeof *c);
    assert_int_equal(cs_store_scan(f->s, "b/", count_seq, c), 0);
    assert_false(c->bad);
    assert_true(c->max_seq == last);
    for (unsigned long long i = 1; i <= last; i++)
      if (c->counts[i] != 10)
        fail_msg("round %d: batch %llu has %u of 10 keys (last %llu)", rounds, i, c->counts[i],
                 last);
    cs_store_close(f->s);
    f->s = NULL;
    prev_last = last;
  }
  free(c);
  print_message("crash test: %d kills, %llu batches committed\n", rounds, prev_last);
  assert_true(rounds >= 5);
  assert_true(prev_last > 0); /* some batches were actually committed */
}

/* A create op never overwrites: the whole batch fails with CS_EEXISTS and
 * nothing of it lands, through a raft entry's encode/decode and an indexed
 * commit too (a cluster node's state machine refusing an init entry on an
 * initialized store). */
static void test_put_new_never_overwrites(void **state) {
  fixture *f = *state;
  f->s = open_store(f, 0, 1);
  put1(f->s, "core/seal-config", "original");
  cs_batch b, d;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "core/keyring", (const uint8_t *)"k2", 2), 0);
  assert_int_equal(cs_batch_put_new(&b, "core/seal-config", (const uint8_t *)"other", 5), 0);
  assert_int_equal(cs_store_commit(f->s, &b), CS_EEXISTS);
  assert_non_null(strstr(cs_error_message(CS_EEXISTS), "core/seal-config"));
  assert_value(f->s, "core/seal-config", "original");
  assert_absent(f->s, "core/keyring");

  uint8_t *enc;
  size_t len;
  assert_int_equal(cs_batch_encode(&b, &enc, &len), 0);
  assert_int_equal(cs_batch_decode(enc, len, &d), 0);
  free(enc);
  assert_int_equal(d.ops[1].create, 1);
  assert_int_equal(d.ops[0].create, 0);
  assert_int_equal(cs_store_commit_indexed(f->s, &d, 7), CS_EEXISTS);
  assert_int_equal(cs_store_applied_index(f->s), 0);
  assert_value(f->s, "core/seal-config", "original");
  assert_absent(f->s, "core/keyring");
  cs_batch_clear(&d);

  /* On a store without the key, the same batch commits. */
  assert_int_equal(cs_batch_del(&d, "core/seal-config"), 0);
  assert_int_equal(cs_store_commit(f->s, &d), 0);
  cs_batch_clear(&d);
  assert_int_equal(cs_store_commit_indexed(f->s, &b, 8), 0);
  assert_value(f->s, "core/seal-config", "other");
  assert_int_equal(cs_store_applied_index(f->s), 8);
  cs_batch_clear(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_new_never_overwrites, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_group_one_bad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_atomic_map_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_indexed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_view, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_codec, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_decode_garbage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_readonly_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_atomicity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_if_exists, setup, teardown),
      cmocka_unit_test(test_put_if_exists_decode_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
