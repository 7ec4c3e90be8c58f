/*
 * Unit tests of a rekey whose new shares go to age recipients
 * (cs_seal_rekey_start): the shares come back only as age files that the
 * holders' identities open, those shares unseal, the backup is written in
 * the batch of the swap (and read, deleted), a rekey without backup drops
 * an older one, and bad recipients or counts are refused before anything
 * starts.  Real LMDB, synchronous commits.
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

#include "age.h"
#include "crypto.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "seal.h"

#define NH 3

typedef struct fixture {
  char dir[64];
  cs_store *store;
  cs_seal *seal;
  uint8_t shares[5][CS_SHARE_LEN];
  cs_age_identity id[NH];
  char rcpt[NH][CS_AGE_RECIPIENT_STRLEN + 1];
  char *rv[NH];
} fixture;

static int last_rc;
static char *last_age[NH];
static size_t last_nage;
static int last_had_plain;

static void grab(void *arg, int status, cs_seal_result *r) {
  fixture *f = arg;
  last_rc = status;
  if (status < 0)
    return;
  if (r->shares != NULL && f != NULL)
    memcpy(f->shares, r->shares, (size_t)r->n * r->share_len);
  last_had_plain = r->rekey.keys != NULL;
  for (size_t i = 0; i < r->rekey.n_age && i < NH; i++)
    last_age[i] = strdup(r->rekey.keys_age[i]);
  if (r->rekey.n_age)
    last_nage = r->rekey.n_age;
}

static void clear_age(void) {
  for (size_t i = 0; i < NH; i++) {
    free(last_age[i]);
    last_age[i] = NULL;
  }
  last_nage = 0;
  last_had_plain = 0;
}

static int done(int rc) { return rc == CS_SEAL_PENDING ? last_rc : rc; }

static void open_all(fixture *f) {
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  cs_seal_opts opts = {.store = f->store};
  assert_int_equal(cs_seal_open(&f->seal, &opts), 0);
}

static void close_all(fixture *f) {
  cs_seal_close(f->seal);
  cs_store_close(f->store);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/custos-test-rekeyage-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  open_all(f);
  for (int i = 0; i < NH; i++) {
    assert_int_equal(cs_age_identity_generate(&f->id[i]), 0);
    cs_age_recipient r;
    cs_age_identity_to_recipient(&f->id[i], &r);
    cs_age_recipient_format(&r, f->rcpt[i]);
    f->rv[i] = f->rcpt[i];
  }
  assert_int_equal(done(cs_seal_init(f->seal, 5, 3, grab, f)), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(f->seal, f->shares[i], CS_SHARE_LEN), 0);
  clear_age();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  close_all(f);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  clear_age();
  free(f);
  return 0;
}

/* Decrypts age file i with identity i into a binary share (33 bytes). */
static void open_share(fixture *f, const char *file, int i, uint8_t out[CS_SHARE_LEN]) {
  uint8_t *pt;
  size_t n;
  assert_int_equal(cs_age_decrypt(&f->id[i], 1, (const uint8_t *)file, strlen(file), &pt, &n), 0);
  assert_int_equal(n, 2 * CS_SHARE_LEN + 1);
  assert_int_equal(pt[n - 1], '\n');
  size_t got;
  char hex[2 * CS_SHARE_LEN + 1];
  memcpy(hex, pt, n - 1);
  hex[n - 1] = '\0';
  assert_int_equal(cs_hex_decode(hex, out, CS_SHARE_LEN, &got), 0);
  assert_int_equal(got, CS_SHARE_LEN);
  cs_age_free(pt, n);
}

/* Runs a rekey 3 of 2 to f's recipients to completion; returns its nonce. */
static void rekey(fixture *f, int backup, char nonce[CS_NONCE_STR]) {
  cs_rekey_params p = {.n = NH, .t = 2, .recipients = f->rv, .n_recipients = NH, .backup = backup};
  cs_rekey_status st;
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), 0);
  assert_int_equal(st.n_recipients, NH);
  assert_string_equal(st.recipients[1], f->rcpt[1]);
  assert_int_equal(st.backup, backup);
  strcpy(nonce, st.nonce);
  cs_rekey_status_clear(&st);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(cs_seal_rekey_update(f->seal, nonce, f->shares[i], CS_SHARE_LEN, &st, grab, f), 0);
    cs_rekey_status_clear(&st);
  }
  assert_int_equal(done(cs_seal_rekey_update(f->seal, nonce, f->shares[2], CS_SHARE_LEN, &st, grab, f)), 0);
  assert_int_equal(last_nage, NH);
  assert_false(last_had_plain);
}

static void test_shares_only_encrypted(void **state) {
  fixture *f = *state;
  char nonce[CS_NONCE_STR];
  rekey(f, 0, nonce);
  uint8_t ns[NH][CS_SHARE_LEN];
  for (int i = 0; i < NH; i++) {
    assert_non_null(strstr(last_age[i], "-----BEGIN AGE ENCRYPTED FILE-----"));
    open_share(f, last_age[i], i, ns[i]);
  }
  /* Each file opens only with its own holder's identity. */
  uint8_t *pt;
  size_t n;
  assert_int_equal(cs_age_decrypt(&f->id[1], 1, (const uint8_t *)last_age[0], strlen(last_age[0]), &pt, &n),
                   CS_EAGENOMATCH);
  /* The new shares unseal; the old ones are void. */
  cs_seal_seal(f->seal);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], CS_SHARE_LEN), CS_ENOTMEMBER);
  assert_int_equal(cs_seal_unseal(f->seal, ns[2], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_unseal(f->seal, ns[0], CS_SHARE_LEN), 0);
  cs_seal_status ss;
  cs_seal_get_status(f->seal, &ss);
  assert_false(ss.sealed);
  uint8_t *buf;
  size_t len;
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), CS_ENOBACKUP);
}

static void test_backup_with_swap(void **state) {
  fixture *f = *state;
  char nonce[CS_NONCE_STR];
  rekey(f, 1, nonce);
  uint8_t *buf;
  size_t len;
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), 0);
  Custos__RekeyBackup *b = custos__rekey_backup__unpack(NULL, len, buf);
  free(buf);
  assert_non_null(b);
  assert_string_equal(b->nonce, nonce);
  assert_int_equal(b->n_keys_age, NH);
  assert_int_equal(b->shares, NH);
  assert_int_equal(b->threshold, 2);
  for (int i = 0; i < NH; i++) {
    assert_string_equal(b->keys_age[i], last_age[i]);
    assert_string_equal(b->recipients[i], f->rcpt[i]);
  }
  /* The backup's shares are the new key set (after a restart too). */
  uint8_t ns[2][CS_SHARE_LEN];
  open_share(f, b->keys_age[0], 0, ns[0]);
  open_share(f, b->keys_age[2], 2, ns[1]);
  custos__rekey_backup__free_unpacked(b, NULL);
  close_all(f);
  open_all(f);
  assert_int_equal(cs_seal_unseal(f->seal, ns[0], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_unseal(f->seal, ns[1], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), 0);
  free(buf);
  /* A later rekey without backup drops the stale one in its own batch. */
  clear_age();
  memcpy(f->shares[0], ns[0], CS_SHARE_LEN);
  memcpy(f->shares[1], ns[1], CS_SHARE_LEN);
  cs_rekey_params p = {.n = NH, .t = 2, .recipients = f->rv, .n_recipients = NH};
  cs_rekey_status st;
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), 0);
  strcpy(nonce, st.nonce);
  cs_rekey_status_clear(&st);
  assert_int_equal(cs_seal_rekey_update(f->seal, nonce, ns[0], CS_SHARE_LEN, &st, grab, f), 0);
  cs_rekey_status_clear(&st);
  assert_int_equal(done(cs_seal_rekey_update(f->seal, nonce, ns[1], CS_SHARE_LEN, &st, grab, f)), 0);
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), CS_ENOBACKUP);
}

static void test_backup_delete(void **state) {
  fixture *f = *state;
  char nonce[CS_NONCE_STR];
  assert_int_equal(cs_seal_rekey_backup_delete(f->seal, grab, f), CS_ENOBACKUP);
  rekey(f, 1, nonce);
  last_rc = 1;
  assert_int_equal(done(cs_seal_rekey_backup_delete(f->seal, grab, f)), 0);
  uint8_t *buf;
  size_t len;
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), CS_ENOBACKUP);
  assert_int_equal(cs_seal_rekey_backup_delete(f->seal, grab, f), CS_ENOBACKUP);
  /* The delete was no key change: the slot is free. */
  assert_int_equal(cs_seal_key_slot(f->seal), CS_SEAL_SLOT_FREE);
}

static void test_verify_with_recipients(void **state) {
  fixture *f = *state;
  cs_rekey_params p = {.n = NH, .t = 2, .verify = 1, .recipients = f->rv, .n_recipients = NH,
                       .backup = 1};
  cs_rekey_status st;
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), 0);
  char nonce[CS_NONCE_STR], vnonce[CS_NONCE_STR];
  strcpy(nonce, st.nonce);
  cs_rekey_status_clear(&st);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(cs_seal_rekey_update(f->seal, nonce, f->shares[i], CS_SHARE_LEN, &st, grab, f), 0);
    if (i < 2)
      cs_rekey_status_clear(&st);
  }
  assert_true(st.complete);
  assert_null(st.keys);
  assert_int_equal(st.n_age, NH);
  strcpy(vnonce, st.verification_nonce);
  uint8_t ns[NH][CS_SHARE_LEN];
  for (int i = 0; i < NH; i++)
    open_share(f, st.keys_age[i], i, ns[i]);
  cs_rekey_status_clear(&st);
  /* Nothing stored before verification. */
  uint8_t *buf;
  size_t len;
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), CS_ENOBACKUP);
  assert_int_equal(cs_seal_rekey_verify(f->seal, vnonce, ns[1], CS_SHARE_LEN, &st, grab, f), 0);
  cs_rekey_status_clear(&st);
  assert_int_equal(done(cs_seal_rekey_verify(f->seal, vnonce, ns[2], CS_SHARE_LEN, &st, grab, f)), 0);
  assert_int_equal(cs_seal_rekey_backup_read(f->seal, &buf, &len), 0);
  free(buf);
  cs_seal_seal(f->seal);
  assert_int_equal(cs_seal_unseal(f->seal, ns[0], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_unseal(f->seal, ns[1], CS_SHARE_LEN), 0);
  cs_seal_status ss;
  cs_seal_get_status(f->seal, &ss);
  assert_false(ss.sealed);
}

static void test_refused_params(void **state) {
  fixture *f = *state;
  cs_rekey_status st;
  cs_rekey_params p = {.n = NH, .t = 2, .backup = 1};
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), CS_EINVAL);      /* backup, no recipients */
  p = (cs_rekey_params){.n = 2, .t = 2, .recipients = f->rv, .n_recipients = NH};
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), CS_EINVAL);      /* more recipients than shares */
  p = (cs_rekey_params){.n = 5, .t = 2, .recipients = f->rv, .n_recipients = NH};
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), CS_EINVAL);      /* fewer */
  char bad[CS_AGE_RECIPIENT_STRLEN + 1];
  strcpy(bad, f->rcpt[1]);
  bad[20] = bad[20] == 'q' ? 'p' : 'q';                                  /* checksum */
  char *rv[NH] = {f->rv[0], bad, f->rv[2]};
  p = (cs_rekey_params){.n = NH, .t = 2, .recipients = rv, .n_recipients = NH};
  assert_int_equal(cs_seal_rekey_start(f->seal, &p, &st), CS_EAGEKEY);
  /* Nothing started. */
  cs_seal_rekey_status(f->seal, &st);
  assert_false(st.started);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_shares_only_encrypted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backup_with_swap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backup_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_with_recipients, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_params, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
