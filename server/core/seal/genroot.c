/*
 * genroot: share checks without a ceremony (verify-share) and the
 * generate-root ceremony, which mints a new root token from a threshold of
 * the current shares when the last one was lost or revoked.
 *
 * Invariants:
 *  - an attempt exists only while UNSEALED, in the ceremony slot
 *    (s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT), so it excludes a rekey and
 *    ends with every seal (set_state -> end_ceremony -> genroot_clear);
 *  - its shares live in s->cur (locked memory), its OTP in locked memory;
 *  - the token exists in the clear only inside genroot_mint, which stages
 *    it (one batch: the token entry), encodes it for the caller and wipes
 *    it before the batch is even submitted: no response, log or audit
 *    record can carry it;
 *  - an attempt that accepts no share for gr.timeout seconds ends by itself
 *    (checked at every call and by the tick), so an anonymous client
 *    cannot hold the one slot for ever; its nonce then answers
 *    CS_EGRTEXPIRED rather than "no attempt";
 *  - the nonce is handed to the initiator only (status does not show it):
 *    submitting and cancelling need it, compared in constant time.
 */
#include "seal_int.h"
#include "age.h"
#include "cs_error.h"
#include "crypto.h"
#include "holders.h"
#include "log.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(CS_GENROOT_OTP_LEN == 3 + 43, "an OTP is as long as a token");
_Static_assert(CS_GENROOT_RECIPIENT_MAX >= CS_AGE_RECIPIENT_STRLEN, "a recipient fits");

/* ---------------------------------------------------------------- verify */

int cs_seal_verify_share(const cs_seal *s, const uint8_t *share, size_t len) {
  if (s->state == CS_SEAL_UNINITIALIZED)
    return cs_error_set(CS_ENOTINIT, "server is not initialized");
  size_t want = cs_seal__share_len(s->ks.n);
  if (share == NULL || len != want)
    return cs_error_set(CS_EBADSHARE, "key share must be %zu bytes, got %zu", want, len);
  return cs_seal__keyset_member(&s->ks, share, len);
}

/* ---------------------------------------------------------------- state */

void cs_seal__genroot_clear(cs_seal *s) {
  if (s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT) {
    cs_seal__ceremony_clear(&s->cur);
    s->cer = CS_SEAL_CEREMONY_NONE;
  }
  cs_secmem_free(s->gr.otp, CS_GENROOT_OTP_LEN + 1);
  s->gr.otp = NULL;
  s->gr.recipient[0] = '\0';
  s->gr.last = 0;
}

void cs_genroot_status_clear(cs_genroot_status *st) {
  if (st->encoded_token != NULL) {
    cs_wipe(st->encoded_token, strlen(st->encoded_token));
    free(st->encoded_token);
  }
  if (st->encoded_token_age != NULL)
    free(st->encoded_token_age);
  cs_wipe(st, sizeof *st);
}

static int in_progress(const cs_seal *s) { return s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT; }

int cs_seal__genroot_expire(cs_seal *s, int64_t now) {
  if (!in_progress(s) || now < s->gr.last || (uint64_t)(now - s->gr.last) < s->gr.timeout)
    return 0;
  cs_warn("generate-root attempt %s expired: no share for %u s (%u of %u given)", s->cur.nonce,
          s->gr.timeout, s->cur.count, s->ks.t);
  memcpy(s->gr.expired, s->cur.nonce, CS_NONCE_STR);
  cs_seal__genroot_clear(s);
  return 1;
}

/* The status of the attempt, without its nonce. */
static void fill_status(const cs_seal *s, cs_genroot_status *st) {
  memset(st, 0, sizeof *st);
  st->started = in_progress(s);
  if (!st->started)
    return;
  st->progress = s->cur.count;
  st->required = s->ks.t;
  st->otp_length = s->gr.otp != NULL ? CS_GENROOT_OTP_LEN : 0;
  memcpy(st->recipient, s->gr.recipient, sizeof st->recipient);
  st->expires = s->gr.last + (int64_t)s->gr.timeout;
}

void cs_seal_genroot_status(cs_seal *s, int64_t now, cs_genroot_status *st) {
  cs_seal__genroot_expire(s, now);
  fill_status(s, st);
}

/* 1 when `nonce` names the attempt in progress (constant time). */
static int nonce_is(const char *nonce, const char *want) {
  size_t n = strlen(want);
  return want[0] != '\0' && strlen(nonce) == n && cs_ct_equal(nonce, want, n);
}

/* The attempt named by `nonce`, or why there is none. */
static int check_nonce(cs_seal *s, const char *nonce) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (nonce == NULL || nonce[0] == '\0')
    return cs_error_set(CS_EBADNONCE, "no nonce given: the generate-root nonce is required");
  if (!in_progress(s)) {
    if (nonce_is(nonce, s->gr.expired))
      return cs_error_set(CS_EGRTEXPIRED, "the generate-root attempt %s expired (no share for "
                                          "%u s): start a new one", nonce, s->gr.timeout);
    return cs_error_set(CS_ENOOP, "no generate-root attempt is in progress");
  }
  if (!nonce_is(nonce, s->cur.nonce))
    return cs_error_set(CS_EBADNONCE, "nonce does not match the generate-root attempt in progress");
  return 0;
}

/* ---------------------------------------------------------------- init */

/* 46 random characters of [0-9A-Za-z] (rejection sampling: uniform). */
static int make_otp(char out[CS_GENROOT_OTP_LEN + 1]) {
  static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint8_t r[64];
  size_t n = 0;
  while (n < CS_GENROOT_OTP_LEN) {
    int rc = cs_random(r, sizeof r);
    if (rc < 0) {
      cs_wipe(r, sizeof r);
      return rc;
    }
    for (size_t i = 0; i < sizeof r && n < CS_GENROOT_OTP_LEN; i++)
      if (r[i] < 248) /* 248 = 4 * 62 */
        out[n++] = alphabet[r[i] % 62];
  }
  out[n] = '\0';
  cs_wipe(r, sizeof r);
  return 0;
}

/* An OTP from a client: exactly CS_GENROOT_OTP_LEN printable ASCII
 * characters other than space (a NUL inside would have cut the string
 * short; the length check catches that too). */
static int check_otp(const char *otp) {
  size_t n = strlen(otp);
  if (n != CS_GENROOT_OTP_LEN)
    return cs_error_set(CS_EINVAL, "the OTP must be %d characters, got %zu", CS_GENROOT_OTP_LEN,
                        n);
  for (size_t i = 0; i < n; i++)
    if (otp[i] <= ' ' || otp[i] > '~')
      return cs_error_set(CS_EINVAL, "the OTP must be printable ASCII (character %zu is not)",
                          i + 1);
  return 0;
}

int cs_seal_genroot_init(cs_seal *s, const char *otp, int generate_otp, const char *recipient,
                         unsigned timeout, int64_t now, cs_genroot_status *st) {
  memset(st, 0, sizeof *st);
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  cs_seal__genroot_expire(s, now);
  if (in_progress(s))
    return cs_error_set(CS_EINPROGRESS, "a generate-root attempt is already in progress "
                                        "(cancel it with its nonce; it expires in %lld s unless "
                                        "a share comes first)",
                        (long long)(s->gr.last + (int64_t)s->gr.timeout - now));
  if (s->cer != CS_SEAL_CEREMONY_NONE)
    return cs_error_set(CS_EINPROGRESS, "a rekey is in progress: generate-root waits until it "
                                        "is done or cancelled");
  int has_otp = otp != NULL && otp[0] != '\0';
  int has_rcpt = recipient != NULL && recipient[0] != '\0';
  if (has_otp + (generate_otp != 0) + has_rcpt != 1)
    return cs_error_set(CS_EINVAL, "generate-root needs exactly one of an OTP, generate_otp or "
                                   "an age recipient");
  int rc;
  if (has_otp && (rc = check_otp(otp)) < 0)
    return rc;
  if (has_rcpt) {
    cs_age_recipient r;
    if (strlen(recipient) > CS_GENROOT_RECIPIENT_MAX ||
        cs_age_recipient_parse(&r, recipient, strlen(recipient)) != 0)
      return cs_error_set(CS_EAGEKEY, "the recipient is not an age recipient (age1...)");
  }
  char *pad = NULL;
  if (!has_rcpt) {
    if ((pad = cs_secmem_alloc(CS_GENROOT_OTP_LEN + 1)) == NULL)
      return CS_ENOMEM;
    if (has_otp)
      memcpy(pad, otp, CS_GENROOT_OTP_LEN + 1);
    else if ((rc = make_otp(pad)) < 0) {
      cs_secmem_free(pad, CS_GENROOT_OTP_LEN + 1);
      return rc;
    }
  }
  if ((rc = cs_seal__ceremony_start(&s->cur)) < 0) {
    cs_secmem_free(pad, CS_GENROOT_OTP_LEN + 1);
    return rc;
  }
  s->cer = CS_SEAL_CEREMONY_GENERATE_ROOT;
  s->gr.otp = pad;
  if (has_rcpt)
    memcpy(s->gr.recipient, recipient, strlen(recipient) + 1);
  s->gr.timeout = timeout ? timeout : CS_GENROOT_TIMEOUT_DEFAULT;
  s->gr.last = now;
  s->gr.expired[0] = '\0';
  fill_status(s, st);
  memcpy(st->nonce, s->cur.nonce, CS_NONCE_STR);
  if (generate_otp)
    memcpy(st->otp, pad, CS_GENROOT_OTP_LEN + 1);
  cs_info("generate-root attempt %s started (token %s; expires after %u s without a share)",
          s->cur.nonce, has_rcpt ? "to be encrypted to an age recipient" : "to be encoded with an OTP",
          s->gr.timeout);
  return 0;
}

int cs_seal_genroot_cancel(cs_seal *s, const char *nonce, int64_t now) {
  cs_seal__genroot_expire(s, now);
  int rc = check_nonce(s, nonce);
  if (rc < 0)
    return rc;
  cs_info("generate-root attempt %s cancelled (%u of %u shares discarded)", s->cur.nonce,
          s->cur.count, s->ks.t);
  cs_seal__genroot_clear(s);
  return 0;
}

/* ---------------------------------------------------------------- mint */

/* base64url without padding of token XOR otp (both CS_GENROOT_OTP_LEN). */
static int encode_otp(const char *token, const char *otp, char **out) {
  uint8_t x[CS_GENROOT_OTP_LEN];
  char b64[4 * ((CS_GENROOT_OTP_LEN + 2) / 3) + 1];
  for (size_t i = 0; i < CS_GENROOT_OTP_LEN; i++)
    x[i] = (uint8_t)(token[i] ^ otp[i]);
  cs_b64_encode(x, sizeof x, b64);
  size_t n = 0;
  for (; b64[n] != '\0' && b64[n] != '='; n++)
    b64[n] = b64[n] == '+' ? '-' : b64[n] == '/' ? '_' : b64[n];
  b64[n] = '\0';
  char *s = malloc(n + 1);
  if (s != NULL)
    memcpy(s, b64, n + 1);
  cs_wipe(x, sizeof x);
  cs_wipe(b64, sizeof b64);
  if (s == NULL)
    return CS_ENOMEM;
  *out = s;
  return 0;
}

/* The shares combine to the KEK that opens the root key held in memory. */
static int check_combined(cs_seal *s) {
  uint8_t kek[CS_KEY_LEN], root[CS_KEY_LEN];
  int rc = cs_seal__ceremony_combine(&s->cur, &s->ks, kek);
  if (rc == 0)
    rc = cs_seal__open_root_key(s, kek, root);
  if (rc == 0 && !cs_ct_equal(root, s->root_key, CS_KEY_LEN))
    rc = cs_error_set(CS_EKEYMISMATCH, "unseal key does not match");
  cs_wipe(kek, sizeof kek);
  cs_wipe(root, sizeof root);
  return rc;
}

/* Stages the new root token, encodes it for the caller (into the change's
 * result) and submits the batch. */
static int genroot_mint(cs_seal *s, cs_seal_cb cb, void *arg) {
  char token[CS_TOKEN_MAX] = {0};
  change *c = cs_seal__change_new(s, CH_GENROOT, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_seal__stage_root_token(s->kr, &b, token);
  if (rc == 0 && strlen(token) != CS_GENROOT_OTP_LEN)
    rc = cs_error_set(CS_EINTERNAL, "a token is %zu characters, not %d", strlen(token),
                      CS_GENROOT_OTP_LEN);
  if (rc == 0 && s->gr.otp != NULL)
    rc = encode_otp(token, s->gr.otp, &c->res.genroot.encoded_token);
  else if (rc == 0)
    rc = cs_holders_encrypt_text(s->gr.recipient, token, &c->res.genroot.encoded_token_age);
  cs_wipe(token, sizeof token);
  if (rc < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  c->res.genroot.started = 1; /* as Vault: started and complete */
  c->res.genroot.complete = 1;
  c->res.genroot.progress = s->cur.count;
  c->res.genroot.required = s->ks.t;
  c->res.genroot.otp_length = s->gr.otp != NULL ? CS_GENROOT_OTP_LEN : 0;
  memcpy(c->res.genroot.recipient, s->gr.recipient, sizeof s->gr.recipient);
  memcpy(c->res.genroot.nonce, s->cur.nonce, CS_NONCE_STR);
  return cs_seal__submit(s, c, &b);
}

int cs_seal_genroot_update(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                           int64_t now, cs_genroot_status *st, cs_seal_cb cb, void *arg) {
  memset(st, 0, sizeof *st);
  cs_seal__genroot_expire(s, now);
  int rc = check_nonce(s, nonce);
  if (rc < 0)
    return rc;
  size_t want = cs_seal__share_len(s->ks.n);
  if (share == NULL || len != want)
    return cs_error_set(CS_EBADSHARE, "key share must be %zu bytes, got %zu", want, len);
  if (!cs_seal__keyset_member(&s->ks, share, len))
    return cs_error_set(CS_ENOTMEMBER, "share is not part of the current key set");
  if (cs_seal__ceremony_has(&s->cur, share, len))
    return cs_error_set(CS_EDUPSHARE, "this share was already submitted");
  /* The completing share needs the key-change slot for the token's batch. */
  if (s->cur.count + 1 >= s->ks.t && (rc = cs_seal__check_idle(s)) < 0)
    return rc;
  cs_seal__ceremony_add(&s->cur, share, len);
  s->gr.last = now;
  if (s->cur.count < s->ks.t) {
    fill_status(s, st);
    memcpy(st->nonce, s->cur.nonce, CS_NONCE_STR);
    return 0;
  }
  if ((rc = check_combined(s)) == 0)
    rc = genroot_mint(s, cb, arg);
  if (rc < 0) {
    /* Like a rekey: the shares are done with, the attempt goes on. */
    cs_warn("generate-root attempt %s: %s; its shares were discarded", s->cur.nonce,
            cs_error_message(rc));
    cs_seal__ceremony_drop_parts(&s->cur);
    return rc;
  }
  /* Submitted: the attempt is over; a second client completing at the same
   * time finds none (CS_ENOOP), and nobody can submit into it again. */
  cs_info("generate-root attempt %s complete: a new root token is being written",
          s->cur.nonce);
  cs_seal__genroot_clear(s);
  return rc;
}
