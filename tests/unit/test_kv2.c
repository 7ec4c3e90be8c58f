/*
 * Unit tests for versioned KV (server/core/kv2.c) on a real LMDB store:
 * versions, CAS, max_versions pruning, soft delete / undelete / destroy,
 * metadata, the mount config, the per-term counts equal to a full scan
 * after every commit, two writers racing on one state (the second batch
 * fails with CS_ECHANGED and changes nothing), the check op through a
 * batch's encode/decode (raft entries) and group commit, rewrap covering
 * every version record, and hostile input (version 0, 2^64 - 1, huge
 * max_versions, 10k versions written, ".." and long paths, custom metadata
 * with too many keys or invalid UTF-8).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "cs_error.h"
#include "keyring.h"
#include "kv.h"
#include "kv2.h"
#include "rewrap.h"
#include "store.h"
#include "termcount.h"

typedef struct fixture {
  char dir[64];
  cs_store *s;
  cs_keyring *k;
  int64_t now;
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

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  strcpy(f->dir, "/tmp/test_kv2.XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  cs_store_opts o = {.map_size = 256u << 20, .no_sync = 1};
  if (cs_store_open(&f->s, f->dir, &o) != 0)
    return -1;
  if (cs_keyring_new(&f->k) != 0 || cs_keyring_rotate(f->k, 1000, NULL) != 0)
    return -1;
  f->now = 1700000000000000LL;
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

static void check_counts(fixture *f) {
  cs_termcounts kept, scan;
  assert_int_equal(cs_store_term_counts(f->s, &kept), 0);
  assert_int_equal(cs_termcount_scan(f->s, &scan), 0);
  if (!cs_termcounts_equal(&kept, &scan))
    fail_msg("maintained counts differ from the full scan");
  cs_termcounts_free(&kept);
  cs_termcounts_free(&scan);
}

/* Builds and commits w; returns the build's or the commit's result. */
static int run(fixture *f, const cs_kv2_write *w, cs_kv2_version *out) {
  cs_batch b;
  cs_batch_init(&b);
  f->now += 1000;
  int rc = cs_kv2_build(f->s, f->k, w, f->now, &b, out);
  if (rc == 0 && b.n > 0)
    rc = cs_store_commit(f->s, &b);
  cs_batch_clear(&b);
  check_counts(f);
  return rc;
}

typedef struct pairs {
  Custos__KvPair p[4];
  Custos__KvPair *ptr[4];
  size_t n;
} pairs;

static void one_pair(pairs *ps, const char *k, const char *v) {
  custos__kv_pair__init(&ps->p[0]);
  ps->p[0].key = (char *)k;
  ps->p[0].value.data = (uint8_t *)v;
  ps->p[0].value.len = strlen(v);
  ps->ptr[0] = &ps->p[0];
  ps->n = 1;
}

static int put(fixture *f, const char *path, const char *val, int has_cas, uint64_t cas,
               uint64_t *version) {
  pairs ps;
  one_pair(&ps, "v", val);
  cs_kv2_write w = {.kind = CS_KV2_PUT, .path = path, .data = ps.ptr, .n_data = 1,
                    .has_cas = has_cas, .cas = cas};
  cs_kv2_version v = {0};
  int rc = run(f, &w, &v);
  if (version != NULL)
    *version = v.version;
  return rc;
}

static int versions_op(fixture *f, cs_kv2_kind kind, const char *path, const uint64_t *vs, size_t n) {
  cs_kv2_write w = {.kind = kind, .path = path, .versions = vs, .n_versions = n};
  return run(f, &w, NULL);
}

/* The value of version n (0: current), "" when deleted or destroyed, NULL
 * when there is no such version. */
static char *get(fixture *f, const char *path, uint64_t n) {
  cs_kv2_meta m;
  Custos__KvData *d;
  const cs_kv2_version *v;
  int rc = cs_kv2_get(f->s, f->k, path, n, f->now, &m, &d, &v);
  if (rc == CS_ENOTFOUND)
    return NULL;
  if (rc != 0)
    fail_msg("get %s: %s", path, cs_error_message(rc));
  char *s;
  if (d == NULL) {
    s = strdup("");
  } else {
    assert_int_equal(d->n_data, 1);
    s = strndup((char *)d->data[0]->value.data, d->data[0]->value.len);
    cs_kv_data_free(d);
  }
  cs_kv2_meta_free(&m);
  return s;
}

static void assert_get(fixture *f, const char *path, uint64_t n, const char *want) {
  char *got = get(f, path, n);
  if (want == NULL) {
    if (got != NULL)
      fail_msg("%s v%llu: expected none, got '%s'", path, (unsigned long long)n, got);
    return;
  }
  if (got == NULL)
    fail_msg("%s v%llu: expected '%s', got none", path, (unsigned long long)n, want);
  assert_string_equal(got, want);
  free(got);
}

static size_t data_keys(fixture *f, const char *path);

/* ---- tests ----------------------------------------------------------------- */

static void test_versions(void **state) {
  fixture *f = *state;
  uint64_t v;
  assert_int_equal(put(f, "app/db", "one", 0, 0, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(put(f, "app/db", "two", 0, 0, &v), 0);
  assert_int_equal(v, 2);
  assert_get(f, "app/db", 0, "two");
  assert_get(f, "app/db", 1, "one");
  assert_get(f, "app/db", 2, "two");
  assert_get(f, "app/db", 3, NULL);
  assert_get(f, "app/other", 0, NULL);
  cs_kv2_meta m;
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "app/db", &m), 0);
  assert_int_equal(m.current, 2);
  assert_int_equal(m.oldest, 1);
  assert_int_equal(m.n_v, 2);
  assert_true(m.created < m.updated);
  assert_int_equal(m.v[1].created, m.updated);
  cs_kv2_meta_free(&m);
  /* The metadata a build writes is handed to the caller when asked for. */
  pairs ps;
  one_pair(&ps, "v", "three");
  cs_kv2_meta after;
  cs_kv2_write w3 = {.kind = CS_KV2_PUT, .path = "app/db", .data = ps.ptr, .n_data = 1,
                     .after = &after};
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_kv2_build(f->s, f->k, &w3, ++f->now, &b, NULL), 0);
  assert_int_equal(after.current, 3);
  assert_int_equal(after.n_v, 3);
  cs_kv2_meta_free(&after);
  cs_batch_clear(&b); /* not committed */
  /* One data record per version, one metadata record. */
  assert_int_equal(data_keys(f, "app/db"), 2);
  /* A version key of one path never belongs to another ("app/db 0..1" vs "app/db/x"). */
  assert_int_equal(put(f, "app/db/x", "child", 0, 0, &v), 0);
  assert_int_equal(data_keys(f, "app/db"), 2);
  char **keys;
  size_t n;
  assert_int_equal(cs_kv2_list(f->s, "app", &keys, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(keys[0], "db");
  assert_string_equal(keys[1], "db/");
  cs_store_list_free(keys, n);
  /* v1 and v2 are separate namespaces. */
  Custos__KvData *d1;
  assert_int_equal(cs_kv_get(f->s, f->k, "app/db", &d1), CS_ENOTFOUND);
}

static void test_cas(void **state) {
  fixture *f = *state;
  uint64_t v;
  /* cas 0: only when absent. */
  assert_int_equal(put(f, "c", "a", 1, 0, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(put(f, "c", "b", 1, 0, NULL), CS_ECASMISMATCH);
  assert_int_equal(put(f, "c", "b", 1, 2, NULL), CS_ECASMISMATCH);
  assert_int_equal(put(f, "c", "b", 1, UINT64_MAX, NULL), CS_ECASMISMATCH);
  assert_int_equal(put(f, "c", "b", 1, 1, &v), 0);
  assert_int_equal(v, 2);
  assert_get(f, "c", 0, "b");
  /* cas_required on the secret: a write without cas is refused. */
  cs_kv2_write w = {.kind = CS_KV2_META_PUT, .path = "c", .has_cas_required = 1, .cas_required = 1};
  assert_int_equal(run(f, &w, NULL), 0);
  assert_int_equal(put(f, "c", "x", 0, 0, NULL), CS_EINVAL);
  assert_int_equal(put(f, "c", "x", 1, 2, &v), 0);
  assert_int_equal(v, 3);
  /* ... and on the mount. */
  cs_kv2_config cfg = {.cas_required = 1};
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_kv2_stage_config(f->k, &cfg, &b), 0);
  assert_int_equal(cs_store_commit(f->s, &b), 0);
  cs_batch_clear(&b);
  assert_int_equal(put(f, "d", "x", 0, 0, NULL), CS_EINVAL);
  assert_int_equal(put(f, "d", "x", 1, 0, &v), 0);
  assert_int_equal(v, 1);
}

/* Two writers read the same state; both build; the first commit wins and
 * the second fails as a whole, changing nothing; rebuilt, it applies on
 * top (or, for a CAS write, fails properly). */
static void test_race(void **state) {
  fixture *f = *state;
  assert_int_equal(put(f, "r", "base", 0, 0, NULL), 0);
  for (int cas = 0; cas < 2; cas++) {
    pairs pa, pb;
    one_pair(&pa, "v", "A");
    one_pair(&pb, "v", "B");
    cs_kv2_meta m;
    assert_int_equal(cs_kv2_meta_load(f->s, f->k, "r", &m), 0);
    uint64_t cur = m.current;
    cs_kv2_meta_free(&m);
    cs_kv2_write wa = {.kind = CS_KV2_PUT, .path = "r", .data = pa.ptr, .n_data = 1,
                       .has_cas = cas, .cas = cur};
    cs_kv2_write wb = wa;
    wb.data = pb.ptr;
    cs_batch ba, bb;
    cs_batch_init(&ba);
    cs_batch_init(&bb);
    cs_kv2_version va, vb;
    assert_int_equal(cs_kv2_build(f->s, f->k, &wa, ++f->now, &ba, &va), 0);
    assert_int_equal(cs_kv2_build(f->s, f->k, &wb, ++f->now, &bb, &vb), 0);
    assert_int_equal(va.version, vb.version); /* both built on the same state */
    /* Committed in one group (as the commit queue would): A wins, B alone fails. */
    const cs_batch *g[2] = {&ba, &bb};
    int st[2];
    assert_int_equal(cs_store_commit_group(f->s, g, 2, st), 0);
    assert_int_equal(st[0], 0);
    assert_int_equal(st[1], CS_ECHANGED);
    cs_batch_clear(&ba);
    cs_batch_clear(&bb);
    check_counts(f);
    assert_get(f, "r", 0, "A");
    assert_int_equal(data_keys(f, "r"), cur + 1);
    /* Rebuilt on the new state. */
    int rc = cs_kv2_build(f->s, f->k, &wb, ++f->now, &bb, &vb);
    if (cas) {
      assert_int_equal(rc, CS_ECASMISMATCH);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(vb.version, va.version + 1);
      assert_int_equal(cs_store_commit(f->s, &bb), 0);
    }
    cs_batch_clear(&bb);
  }
  assert_get(f, "r", 0, "A");
  assert_get(f, "r", 3, "B");
  /* Two creations of a new path: the check "absent" decides. */
  pairs pa;
  one_pair(&pa, "v", "n");
  cs_kv2_write w = {.kind = CS_KV2_PUT, .path = "new", .data = pa.ptr, .n_data = 1};
  cs_batch b1, b2;
  cs_batch_init(&b1);
  cs_batch_init(&b2);
  assert_int_equal(cs_kv2_build(f->s, f->k, &w, ++f->now, &b1, NULL), 0);
  assert_int_equal(cs_kv2_build(f->s, f->k, &w, ++f->now, &b2, NULL), 0);
  assert_int_equal(cs_store_commit(f->s, &b1), 0);
  assert_int_equal(cs_store_commit(f->s, &b2), CS_ECHANGED);
  cs_batch_clear(&b1);
  cs_batch_clear(&b2);
  assert_int_equal(data_keys(f, "new"), 1);
  check_counts(f);
}

/* The check op survives a batch's encoding (raft entries) and appending
 * (group commit), and a malformed one is refused. */
static void test_check_encoding(void **state) {
  fixture *f = *state;
  assert_int_equal(put(f, "e", "x", 0, 0, NULL), 0);
  pairs pa;
  one_pair(&pa, "v", "y");
  cs_kv2_write w = {.kind = CS_KV2_PUT, .path = "e", .data = pa.ptr, .n_data = 1};
  cs_batch b, d, all;
  cs_batch_init(&b);
  cs_batch_init(&d);
  cs_batch_init(&all);
  assert_int_equal(cs_kv2_build(f->s, f->k, &w, ++f->now, &b, NULL), 0);
  assert_true(b.ops[0].check);
  assert_false(b.ops[0].check_absent);
  uint8_t *buf;
  size_t len;
  assert_int_equal(cs_batch_encode(&b, &buf, &len), 0);
  assert_int_equal(cs_batch_decode(buf, len, &d), 0);
  free(buf);
  assert_int_equal(d.n, b.n);
  assert_true(d.ops[0].check);
  assert_memory_equal(d.ops[0].digest, b.ops[0].digest, CS_STORE_DIGEST_LEN);
  assert_int_equal(cs_batch_append(&all, &d), 0);
  assert_true(all.ops[0].check);
  /* A check that fails on the decoded copy fails it too. */
  assert_int_equal(put(f, "e", "z", 0, 0, NULL), 0);
  assert_int_equal(cs_store_commit(f->s, &d), CS_ECHANGED);
  assert_int_equal(cs_store_commit(f->s, &all), CS_ECHANGED);
  assert_get(f, "e", 0, "z");
  cs_batch_clear(&b);
  cs_batch_clear(&d);
  cs_batch_clear(&all);
  /* "Absent" round-trips as absent. */
  assert_int_equal(cs_batch_check(&b, "kv2/m/zz", NULL), 0);
  assert_int_equal(cs_batch_encode(&b, &buf, &len), 0);
  assert_int_equal(cs_batch_decode(buf, len, &d), 0);
  free(buf);
  assert_true(d.ops[0].check && d.ops[0].check_absent);
  assert_int_equal(cs_store_commit(f->s, &d), 0);
  cs_batch_clear(&b);
  cs_batch_clear(&d);
  /* A check carrying a value, or a short digest: malformed. */
  Custos__BatchOp op = CUSTOS__BATCH_OP__INIT, *ops[1] = {&op};
  Custos__Batch msg = CUSTOS__BATCH__INIT;
  op.key.data = (uint8_t *)"k";
  op.key.len = 1;
  op.check = 1;
  op.value.data = (uint8_t *)"v";
  op.value.len = 1;
  msg.n_ops = 1;
  msg.ops = ops;
  uint8_t raw[128];
  len = custos__batch__pack(&msg, raw);
  assert_int_equal(cs_batch_decode(raw, len, &d), CS_EPROTO);
  op.value.len = 0;
  op.check_digest.data = (uint8_t *)"short";
  op.check_digest.len = 5;
  len = custos__batch__pack(&msg, raw);
  assert_int_equal(cs_batch_decode(raw, len, &d), CS_EPROTO);
  op.check = 0;
  op.check_digest.len = 0;
  op.del = 1;
  len = custos__batch__pack(&msg, raw);
  assert_int_equal(cs_batch_decode(raw, len, &d), 0);
  cs_batch_clear(&d);
}

static size_t count_cb_n;
static int count_cb(void *arg, const char *key, size_t kl, const uint8_t *v, size_t vl) {
  (void)arg, (void)key, (void)kl, (void)v, (void)vl;
  count_cb_n++;
  return 0;
}

static size_t data_keys(fixture *f, const char *path) {
  char prefix[600];
  snprintf(prefix, sizeof prefix, "%s%s ", CS_KV2_DATA_PREFIX, path);
  count_cb_n = 0;
  assert_int_equal(cs_store_scan(f->s, prefix, count_cb, NULL), 0);
  return count_cb_n;
}

static void test_prune(void **state) {
  fixture *f = *state;
  uint64_t v;
  /* Default: 10 kept. */
  for (int i = 1; i <= 15; i++) {
    char val[16];
    snprintf(val, sizeof val, "v%d", i);
    assert_int_equal(put(f, "p", val, 0, 0, &v), 0);
    assert_int_equal(v, (uint64_t)i);
  }
  assert_int_equal(data_keys(f, "p"), 10);
  assert_get(f, "p", 5, NULL);
  assert_get(f, "p", 6, "v6");
  cs_kv2_meta m;
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "p", &m), 0);
  assert_int_equal(m.oldest, 6);
  assert_int_equal(m.current, 15);
  cs_kv2_meta_free(&m);
  /* Lowering max_versions prunes at once. */
  cs_kv2_write w = {.kind = CS_KV2_META_PUT, .path = "p", .has_max = 1, .max_versions = 3};
  assert_int_equal(run(f, &w, NULL), 0);
  assert_int_equal(data_keys(f, "p"), 3);
  assert_get(f, "p", 12, NULL);
  assert_get(f, "p", 13, "v13");
  assert_int_equal(put(f, "p", "v16", 0, 0, &v), 0);
  assert_int_equal(data_keys(f, "p"), 3);
  assert_get(f, "p", 13, NULL);
  /* max_versions 1; over the limit refused; 0 is the mount's (10). */
  w.max_versions = 1;
  assert_int_equal(run(f, &w, NULL), 0);
  assert_int_equal(data_keys(f, "p"), 1);
  assert_get(f, "p", 0, "v16");
  w.max_versions = CS_KV2_MAX_VERSIONS + 1;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  w.max_versions = UINT32_MAX;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  w.max_versions = 0;
  assert_int_equal(run(f, &w, NULL), 0);
  for (int i = 0; i < 12; i++)
    assert_int_equal(put(f, "p", "w", 0, 0, NULL), 0);
  assert_int_equal(data_keys(f, "p"), 10);
  /* A destroyed version that is pruned has no data to delete. */
  uint64_t cur = 28, dv = 19;
  assert_get(f, "p", cur, "w");
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "p", &dv, 1), 0);
  assert_int_equal(data_keys(f, "p"), 9);
  assert_int_equal(put(f, "p", "w", 0, 0, NULL), 0);
  assert_int_equal(data_keys(f, "p"), 10); /* 20..29: 19 left the list without a delete */
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "p", &m), 0);
  assert_int_equal(m.oldest, 20);
  assert_int_equal(m.n_v, 10);
  cs_kv2_meta_free(&m);
}

static void test_many_versions(void **state) {
  fixture *f = *state;
  cs_kv2_write w = {.kind = CS_KV2_META_PUT, .path = "big", .has_max = 1,
                    .max_versions = CS_KV2_MAX_VERSIONS};
  assert_int_equal(run(f, &w, NULL), 0);
  uint64_t v = 0;
  /* 10k versions written, 1000 kept; cheap enough to do unchecked. */
  for (int i = 0; i < 10000; i++) {
    pairs ps;
    one_pair(&ps, "v", "x");
    cs_kv2_write p = {.kind = CS_KV2_PUT, .path = "big", .data = ps.ptr, .n_data = 1};
    cs_kv2_version out;
    cs_batch b;
    cs_batch_init(&b);
    assert_int_equal(cs_kv2_build(f->s, f->k, &p, ++f->now, &b, &out), 0);
    assert_int_equal(cs_store_commit(f->s, &b), 0);
    cs_batch_clear(&b);
    v = out.version;
  }
  check_counts(f);
  assert_int_equal(v, 10000);
  assert_int_equal(data_keys(f, "big"), CS_KV2_MAX_VERSIONS);
  assert_get(f, "big", 9000, NULL);
  assert_get(f, "big", 9001, "x");
  /* Deleting all of it: one batch. */
  cs_kv2_write d = {.kind = CS_KV2_META_DELETE, .path = "big"};
  assert_int_equal(run(f, &d, NULL), 0);
  assert_int_equal(data_keys(f, "big"), 0);
  assert_get(f, "big", 0, NULL);
}

static void test_delete_undelete_destroy(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 4; i++)
    assert_int_equal(put(f, "s", i == 3 ? "last" : "old", 0, 0, NULL), 0);
  /* Delete the latest (no versions). */
  assert_int_equal(versions_op(f, CS_KV2_DELETE, "s", NULL, 0), 0);
  assert_get(f, "s", 0, "");
  assert_get(f, "s", 4, "");
  assert_get(f, "s", 3, "old");
  assert_int_equal(data_keys(f, "s"), 4); /* soft: the data is still there */
  /* Deleting it again changes nothing (no batch). */
  cs_batch b;
  cs_batch_init(&b);
  cs_kv2_write w = {.kind = CS_KV2_DELETE, .path = "s"};
  assert_int_equal(cs_kv2_build(f->s, f->k, &w, ++f->now, &b, NULL), 0);
  assert_int_equal(b.n, 0);
  uint64_t vs[] = {1, 2, 99};
  assert_int_equal(versions_op(f, CS_KV2_DELETE, "s", vs, 3), 0);
  assert_get(f, "s", 1, "");
  cs_kv2_meta m;
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "s", &m), 0);
  assert_true(m.v[0].deleted > 0 && m.v[1].deleted > 0 && m.v[2].deleted == 0);
  cs_kv2_meta_free(&m);
  /* Undelete. */
  uint64_t u[] = {1, 4};
  assert_int_equal(versions_op(f, CS_KV2_UNDELETE, "s", u, 2), 0);
  assert_get(f, "s", 1, "old");
  assert_get(f, "s", 0, "last");
  assert_get(f, "s", 2, "");
  /* Destroy: the data is gone for good, undelete cannot bring it back. */
  uint64_t d[] = {4, 2};
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "s", d, 2), 0);
  assert_int_equal(data_keys(f, "s"), 2);
  assert_get(f, "s", 0, "");
  assert_int_equal(versions_op(f, CS_KV2_UNDELETE, "s", d, 2), 0);
  assert_get(f, "s", 4, "");
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "s", &m), 0);
  assert_true(m.v[3].destroyed && m.v[1].destroyed && !m.v[0].destroyed);
  cs_kv2_meta_free(&m);
  /* A new write after a destroyed current version. */
  uint64_t v;
  assert_int_equal(put(f, "s", "five", 1, 4, &v), 0);
  assert_int_equal(v, 5);
  /* Bad requests: version 0, no versions for undelete/destroy, too many. */
  uint64_t zero = 0;
  assert_int_equal(versions_op(f, CS_KV2_DELETE, "s", &zero, 1), CS_EINVAL);
  assert_int_equal(versions_op(f, CS_KV2_UNDELETE, "s", NULL, 0), CS_EINVAL);
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "s", NULL, 0), CS_EINVAL);
  uint64_t *many = calloc(CS_KV2_MAX_REQ_VERSIONS + 1, sizeof *many);
  for (size_t i = 0; i <= CS_KV2_MAX_REQ_VERSIONS; i++)
    many[i] = i + 1;
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "s", many, CS_KV2_MAX_REQ_VERSIONS + 1), CS_EINVAL);
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "s", many, CS_KV2_MAX_REQ_VERSIONS), 0);
  free(many);
  uint64_t huge = UINT64_MAX;
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "s", &huge, 1), 0); /* skipped */
  assert_int_equal(data_keys(f, "s"), 0);
  /* On a secret that does not exist: nothing to do, success. */
  assert_int_equal(versions_op(f, CS_KV2_DELETE, "nope", NULL, 0), 0);
  assert_int_equal(versions_op(f, CS_KV2_DESTROY, "nope", u, 2), 0);
  assert_get(f, "nope", 0, NULL);
}

static void test_delete_after(void **state) {
  fixture *f = *state;
  cs_kv2_write w = {.kind = CS_KV2_META_PUT, .path = "t", .has_delete_after = 1, .delete_after = 60};
  assert_int_equal(run(f, &w, NULL), 0);
  assert_get(f, "t", 0, NULL); /* metadata without versions */
  assert_int_equal(put(f, "t", "x", 0, 0, NULL), 0);
  assert_get(f, "t", 0, "x");
  f->now += 61 * 1000000LL;
  assert_get(f, "t", 0, "");
  w.delete_after = CS_KV2_DELETE_AFTER_MAX + 1;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
}

static void test_metadata(void **state) {
  fixture *f = *state;
  Custos__KvPair cp[3], *cpp[3];
  const char *ks[] = {"owner", "team", "owner"};
  for (int i = 0; i < 3; i++) {
    custos__kv_pair__init(&cp[i]);
    cp[i].key = (char *)ks[i];
    cp[i].value.data = (uint8_t *)"alice";
    cp[i].value.len = 5;
    cpp[i] = &cp[i];
  }
  cs_kv2_write w = {.kind = CS_KV2_META_PUT, .path = "m", .set_custom = 1, .custom = cpp,
                    .n_custom = 2};
  assert_int_equal(run(f, &w, NULL), 0);
  cs_kv2_meta m;
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "m", &m), 0);
  assert_int_equal(m.n_custom, 2);
  assert_string_equal(m.custom[1].key, "team");
  assert_int_equal(m.current, 0);
  cs_kv2_meta_free(&m);
  /* Duplicate keys, too many keys, long keys, invalid UTF-8, NUL. */
  w.n_custom = 3;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  size_t nbig = 10000;
  Custos__KvPair *bp = calloc(nbig, sizeof *bp), **bpp = calloc(nbig, sizeof *bpp);
  char (*names)[16] = calloc(nbig, 16);
  for (size_t i = 0; i < nbig; i++) {
    custos__kv_pair__init(&bp[i]);
    snprintf(names[i], 16, "k%zu", i);
    bp[i].key = names[i];
    bpp[i] = &bp[i];
  }
  w.custom = bpp;
  w.n_custom = nbig;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  w.n_custom = CS_KV2_CUSTOM_MAX;
  assert_int_equal(run(f, &w, NULL), 0);
  w.n_custom = CS_KV2_CUSTOM_MAX + 1;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  free(bp);
  free(bpp);
  free(names);
  char longk[CS_KV2_CUSTOM_KEY_MAX + 2];
  memset(longk, 'k', sizeof longk - 1);
  longk[sizeof longk - 1] = 0;
  cp[0].key = longk;
  w.custom = cpp;
  w.n_custom = 1;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  cp[0].key = "k";
  cp[0].value.data = (uint8_t *)"\xff\xfe";
  cp[0].value.len = 2;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  cp[0].value.data = (uint8_t *)"a\0b";
  cp[0].value.len = 3;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  char longv[CS_KV2_CUSTOM_VALUE_MAX + 1];
  memset(longv, 'v', sizeof longv);
  cp[0].value.data = (uint8_t *)longv;
  cp[0].value.len = sizeof longv;
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
  /* Metadata delete removes everything. */
  assert_int_equal(put(f, "m", "x", 0, 0, NULL), 0);
  assert_int_equal(put(f, "m", "y", 0, 0, NULL), 0);
  cs_kv2_write d = {.kind = CS_KV2_META_DELETE, .path = "m"};
  assert_int_equal(run(f, &d, NULL), 0);
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "m", &m), CS_ENOTFOUND);
  assert_int_equal(data_keys(f, "m"), 0);
  assert_int_equal(run(f, &d, NULL), 0); /* again: nothing to do */
  /* A new secret at the path starts at version 1. */
  uint64_t v;
  assert_int_equal(put(f, "m", "z", 0, 0, &v), 0);
  assert_int_equal(v, 1);
}

static void test_paths(void **state) {
  fixture *f = *state;
  const char *bad[] = {"", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", ".", "..", "a b",
                       "a\x01", "caf\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(put(f, bad[i], "x", 0, 0, NULL), CS_EINVAL);
  char path[CS_KV2_PATH_MAX + 2];
  memset(path, 'a', sizeof path - 1);
  path[sizeof path - 1] = 0;
  assert_int_equal(put(f, path, "x", 0, 0, NULL), CS_EINVAL);
  path[CS_KV2_PATH_MAX] = 0;
  uint64_t v;
  assert_int_equal(put(f, path, "x", 0, 0, &v), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(put(f, path, "y", 0, 0, &v), 0);
  assert_get(f, path, 0, "y");
  char **keys;
  size_t n;
  assert_int_equal(cs_kv2_list(f->s, "../", &keys, &n), CS_EINVAL);
  /* No fields, a field twice: refused as KV v1 does. */
  cs_kv2_write w = {.kind = CS_KV2_PUT, .path = "f", .n_data = 0};
  assert_int_equal(run(f, &w, NULL), CS_EINVAL);
}

/* The last version number: refused, not wrapped to 0. */
static void test_last_version(void **state) {
  fixture *f = *state;
  assert_int_equal(put(f, "l", "x", 0, 0, NULL), 0);
  cs_kv2_meta m;
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "l", &m), 0);
  /* Forge a record at the end of the number space. */
  m.current = UINT64_MAX - 1;
  m.oldest = UINT64_MAX - 1;
  m.v[0].version = UINT64_MAX - 1;
  Custos__Kv2Meta r = CUSTOS__KV2_META__INIT;
  Custos__Kv2VersionInfo vi = CUSTOS__KV2_VERSION_INFO__INIT, *vp = &vi;
  vi.version = m.current;
  r.current_version = m.current;
  r.oldest_version = m.oldest;
  r.n_versions = 1;
  r.versions = &vp;
  uint8_t buf[128];
  size_t len = custos__kv2_meta__pack(&r, buf);
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_barrier_stage_put(f->k, &b, "kv2/m/l", buf, len), 0);
  assert_int_equal(cs_store_commit(f->s, &b), 0);
  cs_batch_clear(&b);
  cs_kv2_meta_free(&m);
  assert_int_equal(put(f, "l", "y", 0, 0, NULL), CS_ELIMIT);
  /* A record breaking its invariants is reported, not trusted. */
  vi.version = 5;
  len = custos__kv2_meta__pack(&r, buf);
  assert_int_equal(cs_barrier_stage_put(f->k, &b, "kv2/m/l", buf, len), 0);
  assert_int_equal(cs_store_commit(f->s, &b), 0);
  cs_batch_clear(&b);
  assert_int_equal(cs_kv2_meta_load(f->s, f->k, "l", &m), CS_ESTORECORRUPT);
}

/* A rotation, then a whole rewrap: every version record and the metadata
 * move to the new term, and read back the same. */
static void test_rewrap(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 5; i++)
    assert_int_equal(put(f, "w/a", "a", 0, 0, NULL), 0);
  uint64_t one = 1;
  assert_int_equal(versions_op(f, CS_KV2_DELETE, "w/a", &one, 1), 0);
  assert_int_equal(put(f, "w/b", "b", 0, 0, NULL), 0);
  uint32_t old = cs_keyring_active(f->k), nt;
  assert_int_equal(cs_keyring_rotate(f->k, 2000, &nt), 0);
  cs_termcounts c;
  assert_int_equal(cs_store_term_counts(f->s, &c), 0);
  assert_int_equal(cs_termcounts_get(&c, old), 8); /* 6 versions + 2 metadata */
  cs_termcounts_free(&c);
  cs_rewrap_cursor cur;
  cs_rewrap_step st;
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_rewrap_start(f->s, f->k, 0, 1, &cur, &b), 0);
  assert_int_equal(cs_store_commit(f->s, &b), 0);
  cs_batch_clear(&b);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(cs_rewrap_build(f->s, f->k, &cur, 3, 2, &b, &st), 0);
    /* A write racing the rewrap step: its batch was built first. */
    if (i == 0)
      assert_int_equal(put(f, "w/a", "a6", 0, 0, NULL), 0);
    assert_int_equal(cs_store_commit(f->s, &b), 0);
    cs_batch_clear(&b);
    check_counts(f);
    if (st.finished)
      break;
  }
  assert_int_equal(cs_store_term_counts(f->s, &c), 0);
  assert_int_equal(cs_termcounts_get(&c, old), 0);
  cs_termcounts_free(&c);
  assert_get(f, "w/a", 0, "a6");
  assert_get(f, "w/a", 2, "a");
  assert_get(f, "w/a", 1, "");
  assert_get(f, "w/b", 0, "b");
}

/* A version's data that decrypts but does not parse is corruption, named
 * with its version (and refused, never handed out). */
static void test_corrupt_data(void **state) {
  fixture *f = *state;
  assert_int_equal(put(f, "app/x", "one", 0, 0, NULL), 0);
  char key[CS_STORE_KEY_MAX + 1];
  cs_kv2_data_key("app/x", 1, key);
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_barrier_stage_put(f->k, &b, key, junk, sizeof junk), 0);
  assert_int_equal(cs_store_commit(f->s, &b), 0);
  cs_batch_clear(&b);
  cs_kv2_meta m;
  Custos__KvData *d = NULL;
  const cs_kv2_version *v = NULL;
  int rc = cs_kv2_get(f->s, f->k, "app/x", 1, f->now, &m, &d, &v);
  assert_int_equal(rc, CS_ESTORECORRUPT);
  assert_string_equal(cs_error_message(rc), "data of app/x version 1 does not parse");
  assert_null(d);
  assert_null(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_race, setup, teardown),
      cmocka_unit_test_setup_teardown(test_check_encoding, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_versions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_undelete_destroy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_after, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
      cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rewrap, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
