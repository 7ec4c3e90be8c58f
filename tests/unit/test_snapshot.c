/*
 * Unit tests of the snapshot file format (server/core/snapshot.c): a round
 * trip from an initialized store into a second store, the header's fields,
 * verification with shares, and refusal of a corrupt header, a bad
 * checksum, a bad MAC (header edited and checksum recomputed), another
 * installation's root key, an unknown version and every truncation.  Also
 * the store's clear batches (restore) and their grouping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "cs_error.h"
#include "seal.h"
#include "snapshot.h"
#include "store.h"

typedef struct fx {
  char da[64], db[64];
  cs_store *a, *b;
  cs_seal *seal;
  uint8_t shares[3][CS_SHARE_LEN];
} fx;

static cs_store *open_store(char *dir) {
  cs_store *s;
  cs_store_opts o = {.map_size = 64u << 20, .no_sync = 1};
  assert_non_null(mkdtemp(dir));
  assert_int_equal(cs_store_open(&s, dir, &o), 0);
  return s;
}

static void on_init(void *arg, int status, cs_seal_result *res) {
  fx *f = arg;
  assert_int_equal(status, 0);
  assert_int_equal(res->share_len, CS_SHARE_LEN);
  for (int i = 0; i < 3; i++)
    memcpy(f->shares[i], res->shares + i * CS_SHARE_LEN, CS_SHARE_LEN);
}

static void put(cs_store *s, const char *k, const char *v) {
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, k, (const uint8_t *)v, strlen(v)), 0);
  assert_int_equal(cs_store_commit(s, &b), 0);
  cs_batch_clear(&b);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  strcpy(f->da, "/tmp/custos-test-snap-a-XXXXXX");
  strcpy(f->db, "/tmp/custos-test-snap-b-XXXXXX");
  f->a = open_store(f->da);
  f->b = open_store(f->db);
  cs_seal_opts o = {.store = f->a};
  assert_int_equal(cs_seal_open(&f->seal, &o), 0);
  assert_int_equal(cs_seal_init(f->seal, 3, 2, on_init, f), CS_SEAL_PENDING);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[2], CS_SHARE_LEN), 0);
  assert_non_null(cs_seal_root_key(f->seal));
  put(f->a, "kv/app", "ciphertext-would-be-here");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  cs_seal_close(f->seal);
  cs_store_close(f->a);
  cs_store_close(f->b);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", f->da, f->db);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void build(fx *f, uint8_t **buf, size_t *len) {
  cs_snapshot_info info = {.server_version = "test", .node_id = "n1", .raft_index = 7, .raft_term = 3};
  assert_int_equal(cs_snapshot_build(f->a, cs_seal_root_key(f->seal), &info, buf, len), 0);
}

typedef struct dump {
  char text[8192];
  size_t n;
} dump;

static int dump_one(void *arg, const char *key, size_t key_len, const uint8_t *val, size_t vlen) {
  dump *d = arg;
  d->n += (size_t)snprintf(d->text + d->n, sizeof d->text - d->n, "%s=%zu:", key, vlen);
  for (size_t i = 0; i < vlen && d->n + 3 < sizeof d->text; i++)
    d->n += (size_t)snprintf(d->text + d->n, sizeof d->text - d->n, "%02x", val[i]);
  return 0;
}

static void test_round_trip(void **state) {
  fx *f = *state;
  uint8_t *buf;
  size_t len;
  build(f, &buf, &len);
  cs_snapshot s;
  assert_int_equal(cs_snapshot_parse(buf, len, &s), 0);
  assert_int_equal(s.hdr->format_version, CS_SNAPSHOT_VERSION);
  assert_int_equal(s.hdr->shares, 3);
  assert_int_equal(s.hdr->threshold, 2);
  assert_int_equal(s.hdr->active_term, 1);
  assert_int_equal(s.hdr->n_terms, 1);
  assert_int_equal(s.hdr->raft_index, 7);
  assert_int_equal(s.hdr->raft_term, 3);
  assert_string_equal(s.hdr->node_id, "n1");
  assert_int_equal(cs_snapshot_check_mac(&s, cs_seal_root_key(f->seal)), 0);
  /* Into another store holding stale data: replaced as a whole. */
  put(f->b, "kv/stale", "x");
  cs_batch b;
  assert_int_equal(cs_snapshot_batch(&s, &b), 0);
  assert_int_equal(b.clear, 1);
  assert_int_equal(cs_store_commit(f->b, &b), 0);
  cs_batch_clear(&b);
  assert_int_equal(cs_store_restores(f->b), 1);
  dump da = {0}, db = {0};
  assert_int_equal(cs_store_scan(f->a, "", dump_one, &da), 0);
  assert_int_equal(cs_store_scan(f->b, "", dump_one, &db), 0);
  assert_string_equal(da.text, db.text);
  assert_int_equal(cs_store_exists(f->b, "kv/stale"), 0);
  /* Verification with a threshold of shares, offline. */
  const uint8_t *sh[2] = {f->shares[1], f->shares[2]};
  size_t terms = 0;
  assert_int_equal(cs_snapshot_verify(&s, sh, 2, CS_SHARE_LEN, &terms), 0);
  assert_int_equal(terms, 1);
  assert_int_equal(cs_snapshot_verify(&s, sh, 1, CS_SHARE_LEN, &terms), CS_EBADSHARE);
  uint8_t wrong[CS_SHARE_LEN];
  memcpy(wrong, f->shares[1], sizeof wrong);
  wrong[0] ^= 1;
  const uint8_t *bad[2] = {wrong, f->shares[2]};
  assert_int_equal(cs_snapshot_verify(&s, bad, 2, CS_SHARE_LEN, &terms), CS_ENOTMEMBER);
  cs_snapshot_free(&s);
  free(buf);
}

/* Recomputes the trailing checksum after an edit (what an attacker can do). */
static void reseal_checksum(uint8_t *buf, size_t len) {
  cs_sha256(buf, len - CS_SNAPSHOT_TRAILER, buf + len - CS_SNAPSHOT_TRAILER);
}

static void test_corrupt(void **state) {
  fx *f = *state;
  uint8_t *buf;
  size_t len;
  build(f, &buf, &len);
  cs_snapshot s;
  /* Every truncation is refused. */
  for (size_t n = 0; n < len; n++) {
    int rc = cs_snapshot_parse(buf, n, &s);
    assert_true(rc == CS_ESNAPCORRUPT);
  }
  /* A flipped byte anywhere (header, payload, checksum) is refused. */
  for (size_t i = 0; i < len - 32; i++) {
    buf[i] ^= 0x40;
    int rc = cs_snapshot_parse(buf, len, &s);
    assert_true(rc == CS_ESNAPCORRUPT || rc == CS_ESNAPVERSION);
    buf[i] ^= 0x40;
  }
  /* Bad MAC: parse passes (checksum fine), the MAC check does not. */
  buf[len - 1] ^= 1;
  assert_int_equal(cs_snapshot_parse(buf, len, &s), 0);
  assert_int_equal(cs_snapshot_check_mac(&s, cs_seal_root_key(f->seal)), CS_ESNAPAUTH);
  cs_snapshot_free(&s);
  buf[len - 1] ^= 1;
  /* A header edited (t/n) with the checksum recomputed: the MAC tells. */
  uint32_t hlen = (uint32_t)buf[12] << 24 | (uint32_t)buf[13] << 16 | (uint32_t)buf[14] << 8 | buf[15];
  Custos__SnapshotHeader *h = custos__snapshot_header__unpack(NULL, hlen, buf + 16);
  assert_non_null(h);
  h->threshold = 3;
  assert_int_equal(custos__snapshot_header__get_packed_size(h), hlen);
  custos__snapshot_header__pack(h, buf + 16);
  custos__snapshot_header__free_unpacked(h, NULL);
  reseal_checksum(buf, len);
  assert_int_equal(cs_snapshot_parse(buf, len, &s), 0);
  assert_int_equal(s.hdr->threshold, 3);
  assert_int_equal(cs_snapshot_check_mac(&s, cs_seal_root_key(f->seal)), CS_ESNAPAUTH);
  /* Another installation's root key does not verify it either. */
  uint8_t other[CS_KEY_LEN] = {0};
  assert_int_equal(cs_snapshot_check_mac(&s, other), CS_ESNAPAUTH);
  cs_snapshot_free(&s);
  /* Unknown version. */
  free(buf);
  build(f, &buf, &len);
  buf[11] = 2;
  reseal_checksum(buf, len);
  assert_int_equal(cs_snapshot_parse(buf, len, &s), CS_ESNAPVERSION);
  /* Not a snapshot at all. */
  assert_int_equal(cs_snapshot_parse((const uint8_t *)"hello", 5, &s), CS_ESNAPCORRUPT);
  free(buf);
}

/* A payload that names a key twice: the checks (seal config, root key,
 * keyring: cs_snapshot_find) would read the first, the store would keep
 * the last, so a forced restore could pass the checks and still install an
 * unusable key set.  A real snapshot (one scan) holds every key once. */
static void test_duplicate_key(void **state) {
  (void)state;
  cs_batch b;
  cs_batch_init(&b);
  assert_int_equal(cs_batch_put(&b, "core/seal-config", (const uint8_t *)"good", 4), 0);
  assert_int_equal(cs_batch_put(&b, "kv/app", (const uint8_t *)"x", 1), 0);
  assert_int_equal(cs_batch_put(&b, "core/seal-config", (const uint8_t *)"junk", 4), 0);
  uint8_t *payload;
  size_t plen;
  assert_int_equal(cs_batch_encode(&b, &payload, &plen), 0);
  cs_batch_clear(&b);
  cs_snapshot s = {.payload = payload, .payload_len = plen};
  cs_batch out;
  assert_int_equal(cs_snapshot_batch(&s, &out), CS_ESNAPCORRUPT);
  free(payload);
}

/* Grouping: a clear batch erases what precedes it in the group. */
static void test_clear_grouping(void **state) {
  fx *f = *state;
  cs_batch g, x, c;
  cs_batch_init(&g);
  cs_batch_init(&x);
  cs_batch_init(&c);
  assert_int_equal(cs_batch_put(&x, "kv/before", (const uint8_t *)"1", 1), 0);
  assert_int_equal(cs_batch_put(&c, "kv/restored", (const uint8_t *)"2", 1), 0);
  c.clear = 1;
  assert_int_equal(cs_batch_append(&g, &x), 0);
  assert_int_equal(cs_batch_append(&g, &c), 0);
  assert_int_equal(cs_batch_append(&g, &x), 0); /* after the clear: kept */
  assert_int_equal(g.clear, 1);
  assert_int_equal(g.n, 2);
  /* Round trip through the raft encoding keeps the flag. */
  uint8_t *enc;
  size_t elen;
  cs_batch d;
  assert_int_equal(cs_batch_encode(&g, &enc, &elen), 0);
  assert_int_equal(cs_batch_decode(enc, elen, &d), 0);
  assert_int_equal(d.clear, 1);
  free(enc);
  put(f->b, "kv/old", "x");
  assert_int_equal(cs_store_commit(f->b, &d), 0);
  assert_int_equal(cs_store_exists(f->b, "kv/old"), 0);
  assert_int_equal(cs_store_exists(f->b, "kv/restored"), 1);
  assert_int_equal(cs_store_exists(f->b, "kv/before"), 1);
  cs_batch_clear(&d);
  cs_batch_clear(&g);
  cs_batch_clear(&x);
  cs_batch_clear(&c);
}

/* An uninitialized store has nothing to snapshot. */
static void test_uninitialized(void **state) {
  fx *f = *state;
  uint8_t *buf;
  size_t len;
  cs_snapshot_info info = {0};
  uint8_t key[CS_KEY_LEN] = {0};
  assert_int_equal(cs_snapshot_build(f->b, key, &info, &buf, &len), CS_ENOTINIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test_setup_teardown(test_clear_grouping, setup, teardown),
      cmocka_unit_test_setup_teardown(test_uninitialized, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
