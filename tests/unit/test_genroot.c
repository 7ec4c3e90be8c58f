/*
 * Unit tests of verify-share and the generate-root state machine
 * (server/core/seal/genroot.c) over a real LMDB directory: the OTP and age
 * paths end to end (the minted token is looked up in the token store),
 * every refusal (sealed, wrong/empty/old nonce, wrong length, foreign and
 * repeated shares, bad OTPs and recipients), expiry by time and by the
 * tick, cancel, seal during an attempt, exclusion with rekey, and, with an
 * asynchronous commit backend, two clients racing to complete and a
 * completing share meeting another key change in flight.
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
#include "seal.h"
#include "token.h"

typedef struct fixture {
  char dir[64];
  cs_store *store;
  cs_seal *seal;
  uint8_t shares[5][CS_SHARE_LEN];
  char root_token[CS_TOKEN_MAX];
  /* The asynchronous backend: one batch held until commit_held(). */
  int async;
  cs_batch held;
  cs_done_fn held_done;
  void *held_arg;
  int n_held;
} fixture;

/* Completion of the last operation. */
static int last_rc, n_cb;
static cs_genroot_status last_gr;

static void grab(void *arg, int status, cs_seal_result *r) {
  fixture *f = arg;
  last_rc = status;
  n_cb++;
  if (status < 0 || r == NULL)
    return;
  if (r->shares != NULL && f != NULL) {
    for (unsigned i = 0; i < r->n && i < 5; i++)
      memcpy(f->shares[i], r->shares + (size_t)i * r->share_len, r->share_len);
    snprintf(f->root_token, sizeof f->root_token, "%s", r->root_token);
  }
  cs_genroot_status_clear(&last_gr);
  last_gr = r->genroot;
  if (r->genroot.encoded_token)
    last_gr.encoded_token = strdup(r->genroot.encoded_token);
  if (r->genroot.encoded_token_age)
    last_gr.encoded_token_age = strdup(r->genroot.encoded_token_age);
}

static int submit(void *ctx, cs_batch *b, cs_done_fn done, void *arg) {
  fixture *f = ctx;
  if (!f->async) {
    int rc = cs_store_commit(f->store, b);
    if (rc == 0)
      done(arg, 0);
    return rc;
  }
  assert_int_equal(f->n_held, 0);
  f->held = *b;
  cs_batch_init(b);
  f->held_done = done;
  f->held_arg = arg;
  f->n_held = 1;
  return 0;
}

static void commit_held(fixture *f) {
  assert_int_equal(f->n_held, 1);
  int rc = cs_store_commit(f->store, &f->held);
  cs_batch_clear(&f->held);
  f->n_held = 0;
  f->held_done(f->held_arg, rc);
}

static void open_all(fixture *f) {
  cs_store_opts so = {.map_size = 64u << 20, .no_sync = 1};
  assert_int_equal(cs_store_open(&f->store, f->dir, &so), 0);
  cs_seal_opts opts = {.store = f->store, .submit = submit, .submit_ctx = f};
  assert_int_equal(cs_seal_open(&f->seal, &opts), 0);
}

static void unseal(fixture *f) {
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_unseal(f->seal, f->shares[i], CS_SHARE_LEN), 0);
  cs_seal_status st;
  cs_seal_get_status(f->seal, &st);
  assert_false(st.sealed);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/custos-test-genroot-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  open_all(f);
  assert_int_equal(cs_seal_init(f->seal, 5, 3, grab, f), CS_SEAL_PENDING);
  assert_int_equal(last_rc, 0);
  unseal(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->n_held)
    commit_held(f);
  cs_seal_close(f->seal);
  cs_store_close(f->store);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  cs_genroot_status_clear(&last_gr);
  free(f);
  return 0;
}

static const char OTP[] = "0123456789abcdefghijABCDEFGHIJ0123456789klmnop"; /* 46 */

/* Decodes an OTP-encoded token (base64url, no padding). */
static void decode_otp(const char *enc, const char *otp, char out[CS_TOKEN_MAX]) {
  char b64[80];
  size_t n = strlen(enc);
  assert_true(n < sizeof b64 - 3);
  for (size_t i = 0; i < n; i++)
    b64[i] = enc[i] == '-' ? '+' : enc[i] == '_' ? '/' : enc[i];
  while (n % 4)
    b64[n++] = '=';
  b64[n] = '\0';
  uint8_t raw[64];
  size_t len;
  assert_int_equal(cs_b64_decode(b64, raw, sizeof raw, &len), 0);
  assert_int_equal(len, CS_GENROOT_OTP_LEN);
  for (size_t i = 0; i < len; i++)
    out[i] = (char)(raw[i] ^ (uint8_t)otp[i]);
  out[len] = '\0';
}

/* The token is a root token in the store. */
static void assert_root_token(fixture *f, const char *token) {
  Custos__TokenEntry *te = NULL;
  assert_int_equal(cs_token_lookup(f->store, cs_seal_keyring(f->seal), (const uint8_t *)token,
                                   strlen(token), cs_now(), &te),
                   0);
  assert_true(te->root);
  assert_int_equal(te->n_policies, 1);
  assert_string_equal(te->policies[0], "root");
  cs_token_entry_free(te);
}

static int upd(fixture *f, const char *nonce, int i, int64_t now, cs_genroot_status *st) {
  return cs_seal_genroot_update(f->seal, nonce, f->shares[i], CS_SHARE_LEN, now, st, grab, f);
}

static void test_otp_path(void **state) {
  fixture *f = *state;
  cs_genroot_status st, s2;
  int64_t now = 1000;
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, now, &st), 0);
  assert_true(st.started);
  assert_int_equal(st.required, 3);
  assert_int_equal(st.progress, 0);
  assert_int_equal(st.otp_length, CS_GENROOT_OTP_LEN);
  assert_string_equal(st.otp, ""); /* the client's own OTP is not echoed */
  assert_int_equal(st.expires, now + CS_GENROOT_TIMEOUT_DEFAULT);
  assert_int_equal(strlen(st.nonce), CS_NONCE_STR - 1);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);

  /* Status shows the attempt but not its nonce. */
  cs_seal_genroot_status(f->seal, now, &s2);
  assert_true(s2.started);
  assert_string_equal(s2.nonce, "");
  /* One attempt at a time. */
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, now, &s2), CS_EINPROGRESS);

  assert_int_equal(upd(f, nonce, 0, now, &st), 0);
  assert_int_equal(st.progress, 1);
  assert_string_equal(st.nonce, nonce);
  assert_int_equal(upd(f, nonce, 1, now, &st), 0);
  assert_int_equal(st.progress, 2);
  n_cb = 0;
  assert_int_equal(upd(f, nonce, 2, now, &st), CS_SEAL_PENDING);
  assert_int_equal(n_cb, 1);
  assert_int_equal(last_rc, 0);
  assert_true(last_gr.complete);
  assert_non_null(last_gr.encoded_token);
  assert_null(last_gr.encoded_token_age);
  assert_int_equal(strlen(last_gr.encoded_token), 62); /* 46 bytes, base64 unpadded */
  assert_null(strstr(last_gr.encoded_token, "cs."));
  char token[CS_TOKEN_MAX];
  decode_otp(last_gr.encoded_token, OTP, token);
  assert_memory_equal(token, "cs.", 3);
  assert_string_not_equal(token, f->root_token);
  assert_root_token(f, token);
  assert_root_token(f, f->root_token); /* the old one is untouched */

  /* Over: the nonce is void, status empty, a new attempt may start. */
  cs_seal_genroot_status(f->seal, now, &s2);
  assert_false(s2.started);
  assert_int_equal(upd(f, nonce, 3, now, &st), CS_ENOOP);
  assert_int_equal(cs_seal_genroot_cancel(f->seal, nonce, now), CS_ENOOP);
  assert_int_equal(cs_seal_genroot_init(f->seal, NULL, 1, NULL, 0, now, &st), 0);
  /* A server-made OTP: 46 base62 characters, in the init result only. */
  assert_int_equal(strlen(st.otp), CS_GENROOT_OTP_LEN);
  for (size_t i = 0; i < CS_GENROOT_OTP_LEN; i++)
    assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                           st.otp[i]));
  char otp2[CS_GENROOT_OTP_LEN + 1];
  memcpy(otp2, st.otp, sizeof otp2);
  memcpy(nonce, st.nonce, sizeof nonce);
  cs_seal_genroot_status(f->seal, now, &s2);
  assert_string_equal(s2.otp, "");
  for (int i = 4; i >= 2; i--)
    assert_int_equal(upd(f, nonce, i, now, &st), i == 2 ? CS_SEAL_PENDING : 0);
  decode_otp(last_gr.encoded_token, otp2, token);
  assert_root_token(f, token);
  cs_genroot_status_clear(&st);
}

static void test_age_path(void **state) {
  fixture *f = *state;
  cs_age_identity id;
  cs_age_recipient r;
  char rcpt[CS_AGE_RECIPIENT_STRLEN + 1];
  assert_int_equal(cs_age_identity_generate(&id), 0);
  cs_age_identity_to_recipient(&id, &r);
  cs_age_recipient_format(&r, rcpt);
  cs_genroot_status st;
  assert_int_equal(cs_seal_genroot_init(f->seal, NULL, 0, rcpt, 0, 5, &st), 0);
  assert_int_equal(st.otp_length, 0);
  assert_string_equal(st.recipient, rcpt);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  for (int i = 0; i < 3; i++)
    assert_int_equal(upd(f, nonce, i, 5, &st), i == 2 ? CS_SEAL_PENDING : 0);
  assert_int_equal(last_rc, 0);
  assert_null(last_gr.encoded_token);
  assert_non_null(last_gr.encoded_token_age);
  assert_non_null(strstr(last_gr.encoded_token_age, "-----BEGIN AGE ENCRYPTED FILE-----"));
  uint8_t *pt;
  size_t n;
  assert_int_equal(cs_age_decrypt(&id, 1, (const uint8_t *)last_gr.encoded_token_age,
                                  strlen(last_gr.encoded_token_age), &pt, &n),
                   0);
  assert_int_equal(n, CS_GENROOT_OTP_LEN + 1);
  assert_int_equal(pt[n - 1], '\n');
  char token[CS_TOKEN_MAX];
  memcpy(token, pt, n - 1);
  token[n - 1] = '\0';
  cs_age_free(pt, n);
  assert_root_token(f, token);
  /* Another identity does not open it. */
  cs_age_identity other;
  assert_int_equal(cs_age_identity_generate(&other), 0);
  assert_int_equal(cs_age_decrypt(&other, 1, (const uint8_t *)last_gr.encoded_token_age,
                                  strlen(last_gr.encoded_token_age), &pt, &n),
                   CS_EAGENOMATCH);
  cs_age_identity_wipe(&id);
  cs_age_identity_wipe(&other);
}

static void test_init_refusals(void **state) {
  fixture *f = *state;
  cs_genroot_status st;
  /* None, two at once. */
  assert_int_equal(cs_seal_genroot_init(f->seal, NULL, 0, NULL, 0, 1, &st), CS_EINVAL);
  assert_int_equal(cs_seal_genroot_init(f->seal, "", 0, "", 0, 1, &st), CS_EINVAL);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 1, NULL, 0, 1, &st), CS_EINVAL);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, "age1x", 0, 1, &st), CS_EINVAL);
  /* OTP: too short, too long, a space, a control character. */
  assert_int_equal(cs_seal_genroot_init(f->seal, "short", 0, NULL, 0, 1, &st), CS_EINVAL);
  char bad[64];
  snprintf(bad, sizeof bad, "%sX", OTP);
  assert_int_equal(cs_seal_genroot_init(f->seal, bad, 0, NULL, 0, 1, &st), CS_EINVAL);
  memcpy(bad, OTP, sizeof OTP);
  bad[10] = ' ';
  assert_int_equal(cs_seal_genroot_init(f->seal, bad, 0, NULL, 0, 1, &st), CS_EINVAL);
  bad[10] = '\x01';
  assert_int_equal(cs_seal_genroot_init(f->seal, bad, 0, NULL, 0, 1, &st), CS_EINVAL);
  /* Recipient: not age, a broken checksum, an identity instead. */
  assert_int_equal(cs_seal_genroot_init(f->seal, NULL, 0, "age1notarecipient", 0, 1, &st),
                   CS_EAGEKEY);
  assert_int_equal(
      cs_seal_genroot_init(f->seal, NULL, 0,
                           "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8q", 0, 1,
                           &st),
      CS_EAGEKEY);
  cs_genroot_status s2;
  cs_seal_genroot_status(f->seal, 1, &s2);
  assert_false(s2.started); /* nothing was started by a refusal */
  /* Sealed: refused. */
  cs_seal_seal(f->seal);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 1, &st), CS_ESEALED);
}

static void test_update_refusals(void **state) {
  fixture *f = *state;
  cs_genroot_status st;
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 10, &st), 0);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  assert_int_equal(upd(f, nonce, 0, 10, &st), 0);
  /* Nonce: none, empty, wrong, a prefix, longer. */
  assert_int_equal(upd(f, NULL, 1, 10, &st), CS_EBADNONCE);
  assert_int_equal(upd(f, "", 1, 10, &st), CS_EBADNONCE);
  assert_int_equal(upd(f, "00000000-0000-4000-8000-000000000000", 1, 10, &st), CS_EBADNONCE);
  char pre[CS_NONCE_STR];
  memcpy(pre, nonce, sizeof pre);
  pre[20] = '\0';
  assert_int_equal(upd(f, pre, 1, 10, &st), CS_EBADNONCE);
  char longer[CS_NONCE_STR + 2];
  snprintf(longer, sizeof longer, "%sx", nonce);
  assert_int_equal(upd(f, longer, 1, 10, &st), CS_EBADNONCE);
  /* Shares: wrong length (short, long, empty), foreign, repeated. */
  uint8_t buf[CS_SHARE_LEN + 1];
  memcpy(buf, f->shares[1], CS_SHARE_LEN);
  buf[CS_SHARE_LEN] = 0;
  assert_int_equal(cs_seal_genroot_update(f->seal, nonce, buf, CS_SHARE_LEN - 1, 10, &st, grab, f),
                   CS_EBADSHARE);
  assert_int_equal(cs_seal_genroot_update(f->seal, nonce, buf, CS_SHARE_LEN + 1, 10, &st, grab, f),
                   CS_EBADSHARE);
  assert_int_equal(cs_seal_genroot_update(f->seal, nonce, NULL, 0, 10, &st, grab, f), CS_EBADSHARE);
  buf[5] ^= 1; /* tampered */
  assert_int_equal(cs_seal_genroot_update(f->seal, nonce, buf, CS_SHARE_LEN, 10, &st, grab, f),
                   CS_ENOTMEMBER);
  memset(buf, 0, sizeof buf); /* all NUL */
  assert_int_equal(cs_seal_genroot_update(f->seal, nonce, buf, CS_SHARE_LEN, 10, &st, grab, f),
                   CS_ENOTMEMBER);
  assert_int_equal(upd(f, nonce, 0, 10, &st), CS_EDUPSHARE);
  /* Progress kept through all of it. */
  cs_seal_genroot_status(f->seal, 10, &st);
  assert_int_equal(st.progress, 1);
  /* Rekey is excluded, and a rekey update cannot use the attempt's nonce
   * (its shares sit in the same buffer). */
  cs_rekey_status rs;
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &rs), CS_EINPROGRESS);
  assert_int_equal(cs_seal_rekey_update(f->seal, nonce, f->shares[1], CS_SHARE_LEN, &rs, grab, f),
                   CS_ENOOP);
  assert_int_equal(cs_seal_rekey_cancel(f->seal), CS_ENOOP);
  cs_seal_genroot_status(f->seal, 10, &st);
  assert_int_equal(st.progress, 1);
  /* Cancel: the nonce is needed. */
  assert_int_equal(cs_seal_genroot_cancel(f->seal, "", 10), CS_EBADNONCE);
  assert_int_equal(cs_seal_genroot_cancel(f->seal, pre, 10), CS_EBADNONCE);
  assert_int_equal(cs_seal_genroot_cancel(f->seal, nonce, 10), 0);
  cs_seal_genroot_status(f->seal, 10, &st);
  assert_false(st.started);
  assert_int_equal(upd(f, nonce, 1, 10, &st), CS_ENOOP);
  /* The other way round: a rekey excludes generate-root. */
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &rs), 0);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 10, &st), CS_EINPROGRESS);
  cs_seal_genroot_status(f->seal, 10, &st);
  assert_false(st.started);
  assert_int_equal(cs_seal_genroot_cancel(f->seal, rs.nonce, 10), CS_ENOOP);
  assert_int_equal(cs_seal_rekey_cancel(f->seal), 0);
}

static void test_expiry(void **state) {
  fixture *f = *state;
  cs_genroot_status st;
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 5, 1000, &st), 0);
  assert_int_equal(st.expires, 1005);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  /* A share refreshes the deadline; a refused one does not. */
  assert_int_equal(upd(f, nonce, 0, 1004, &st), 0);
  assert_int_equal(st.expires, 1009);
  assert_int_equal(upd(f, nonce, 0, 1008, &st), CS_EDUPSHARE);
  cs_seal_genroot_status(f->seal, 1008, &st);
  assert_true(st.started);
  assert_int_equal(st.expires, 1009);
  /* A clock that went back expires nothing. */
  cs_seal_genroot_status(f->seal, 10, &st);
  assert_true(st.started);
  cs_seal_genroot_status(f->seal, 1009, &st);
  assert_false(st.started);
  /* The expired nonce says so; a new attempt may start; the old nonce is
   * then just wrong. */
  assert_int_equal(upd(f, nonce, 1, 1010, &st), CS_EGRTEXPIRED);
  assert_int_equal(cs_seal_genroot_cancel(f->seal, nonce, 1010), CS_EGRTEXPIRED);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 5, 1010, &st), 0);
  char nonce2[CS_NONCE_STR];
  memcpy(nonce2, st.nonce, sizeof nonce2);
  assert_string_not_equal(nonce, nonce2);
  assert_int_equal(upd(f, nonce, 1, 1010, &st), CS_EBADNONCE);
  /* Expiry by the tick, with no call naming the attempt; then init
   * expires a stale attempt by itself too. */
  int rot;
  assert_int_equal(cs_seal_tick(f->seal, 1014, 0, &rot), 0);
  cs_seal_genroot_status(f->seal, 1014, &st);
  assert_true(st.started);
  assert_int_equal(cs_seal_tick(f->seal, 1015, 0, &rot), 0);
  cs_seal_genroot_status(f->seal, 1015, &st);
  assert_false(st.started);
  assert_int_equal(upd(f, nonce2, 1, 1016, &st), CS_EGRTEXPIRED);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 5, 1016, &st), 0);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 5, 1020, &st), CS_EINPROGRESS);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 5, 1021, &st), 0);
}

static void test_seal_ends_attempt(void **state) {
  fixture *f = *state;
  cs_genroot_status st;
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 1, &st), 0);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  assert_int_equal(upd(f, nonce, 0, 1, &st), 0);
  cs_seal_seal(f->seal);
  assert_int_equal(upd(f, nonce, 1, 1, &st), CS_ESEALED);
  /* The unseal ceremony starts clean: the attempt's share is not in it. */
  cs_seal_status ss;
  cs_seal_get_status(f->seal, &ss);
  assert_int_equal(ss.progress, 0);
  unseal(f);
  cs_seal_genroot_status(f->seal, 1, &st);
  assert_false(st.started);
  assert_int_equal(upd(f, nonce, 1, 1, &st), CS_ENOOP);
  /* A node that follows another (a standby) keeps no attempt. */
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 1, &st), 0);
  memcpy(nonce, st.nonce, sizeof nonce);
  int installed;
  assert_int_equal(cs_seal_follow(f->seal, 1, &installed), 0);
  cs_seal_genroot_status(f->seal, 1, &st);
  assert_false(st.started);
  assert_int_equal(upd(f, nonce, 1, 1, &st), CS_ENOOP);
}

static void test_verify_share(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 5; i++)
    assert_int_equal(cs_seal_verify_share(f->seal, f->shares[i], CS_SHARE_LEN), 1);
  uint8_t buf[CS_SHARE_LEN + 1];
  memcpy(buf, f->shares[0], CS_SHARE_LEN);
  buf[CS_SHARE_LEN - 1] ^= 0x80; /* another x coordinate */
  assert_int_equal(cs_seal_verify_share(f->seal, buf, CS_SHARE_LEN), 0);
  memset(buf, 0, sizeof buf);
  assert_int_equal(cs_seal_verify_share(f->seal, buf, CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_verify_share(f->seal, buf, CS_SHARE_LEN - 1), CS_EBADSHARE);
  assert_int_equal(cs_seal_verify_share(f->seal, buf, CS_SHARE_LEN + 1), CS_EBADSHARE);
  assert_int_equal(cs_seal_verify_share(f->seal, NULL, 0), CS_EBADSHARE);
  /* Sealed: works, and adds no unseal progress. */
  cs_seal_seal(f->seal);
  assert_int_equal(cs_seal_unseal(f->seal, f->shares[0], CS_SHARE_LEN), 0);
  for (int i = 1; i < 5; i++)
    assert_int_equal(cs_seal_verify_share(f->seal, f->shares[i], CS_SHARE_LEN), 1);
  cs_seal_status ss;
  cs_seal_get_status(f->seal, &ss);
  assert_true(ss.sealed);
  assert_int_equal(ss.progress, 1);

  /* Another installation's share is not a member; after a rekey the old
   * shares are not either, the new ones are. */
  fixture g = {0};
  strcpy(g.dir, "/tmp/custos-test-genroot2-XXXXXX");
  assert_non_null(mkdtemp(g.dir));
  open_all(&g);
  assert_int_equal(cs_seal_verify_share(g.seal, f->shares[0], CS_SHARE_LEN), CS_ENOTINIT);
  assert_int_equal(cs_seal_init(g.seal, 5, 3, grab, &g), CS_SEAL_PENDING);
  assert_int_equal(cs_seal_verify_share(g.seal, f->shares[0], CS_SHARE_LEN), 0);
  assert_int_equal(cs_seal_verify_share(f->seal, g.shares[0], CS_SHARE_LEN), 0);
  cs_seal_close(g.seal);
  cs_store_close(g.store);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g.dir);
  assert_int_equal(system(cmd), 0);
}

/* Asynchronous commits: the attempt ends when its batch is submitted, so a
 * second client completing at the same time finds none; and a completing
 * share that meets another key change is refused with nothing added. */
static void test_race(void **state) {
  fixture *f = *state;
  f->async = 1;
  cs_genroot_status st;
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 1, &st), 0);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  assert_int_equal(upd(f, nonce, 0, 1, &st), 0);
  assert_int_equal(upd(f, nonce, 1, 1, &st), 0);
  /* A rotation in flight holds the key-change slot. */
  assert_int_equal(cs_seal_rotate(f->seal, grab, NULL), CS_SEAL_PENDING);
  assert_int_equal(upd(f, nonce, 2, 1, &st), CS_EBUSY);
  cs_seal_genroot_status(f->seal, 1, &st);
  assert_int_equal(st.progress, 2);
  commit_held(f);
  /* Two completing shares, one after the other on the loop. */
  n_cb = 0;
  assert_int_equal(upd(f, nonce, 2, 1, &st), CS_SEAL_PENDING);
  assert_int_equal(upd(f, nonce, 3, 1, &st), CS_ENOOP);
  assert_int_equal(n_cb, 0);
  cs_seal_genroot_status(f->seal, 1, &st);
  assert_false(st.started);
  /* A new attempt may start while the token is being written; it cannot
   * complete until the slot is free. */
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 1, &st), 0);
  commit_held(f);
  assert_int_equal(n_cb, 1);
  assert_int_equal(last_rc, 0);
  char token[CS_TOKEN_MAX];
  decode_otp(last_gr.encoded_token, OTP, token);
  assert_root_token(f, token);
  f->async = 0;
}

/* A generate-root attempt started while a rekey's swap is being committed
 * collects shares of the old set: it ends when the swap lands. */
static void test_rekey_in_flight(void **state) {
  fixture *f = *state;
  f->async = 1;
  cs_rekey_status rs;
  cs_genroot_status st;
  assert_int_equal(cs_seal_rekey_init(f->seal, 3, 2, 0, &rs), 0);
  char rn[CS_NONCE_STR];
  memcpy(rn, rs.nonce, sizeof rn);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_seal_rekey_update(f->seal, rn, f->shares[i], CS_SHARE_LEN, &rs, grab, f),
                     i == 2 ? CS_SEAL_PENDING : 0);
  cs_rekey_status_clear(&rs);
  assert_int_equal(cs_seal_genroot_init(f->seal, OTP, 0, NULL, 0, 1, &st), 0);
  char nonce[CS_NONCE_STR];
  memcpy(nonce, st.nonce, sizeof nonce);
  assert_int_equal(upd(f, nonce, 3, 1, &st), 0);
  assert_int_equal(upd(f, nonce, 4, 1, &st), 0);
  /* The completing share waits for the slot. */
  assert_int_equal(upd(f, nonce, 0, 1, &st), CS_EBUSY);
  commit_held(f);
  cs_seal_genroot_status(f->seal, 1, &st);
  assert_false(st.started);
  assert_int_equal(upd(f, nonce, 0, 1, &st), CS_ENOOP);
  /* The old shares are not part of the new set any more. */
  assert_int_equal(cs_seal_verify_share(f->seal, f->shares[0], CS_SHARE_LEN), 0);
  f->async = 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_otp_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_age_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_init_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_update_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seal_ends_attempt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_share, setup, teardown),
      cmocka_unit_test_setup_teardown(test_race, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rekey_in_flight, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
