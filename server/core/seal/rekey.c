/*
 * rekey: replaces the key set (new KEK, new shares) while unsealed.  A
 * threshold of the current shares starts it; with verification, a
 * threshold of the new shares must come back before anything is written.
 * The swap is one batch (new seal config + root key under the new KEK, and
 * the rekey backup or its deletion), so the old shares stop working only
 * once it is committed.  The keyring does not change: a rekey fires no
 * event (on_key_change says "rekey").
 *
 * New shares exist in the clear only in locked memory (REKEY_KEYS_BYTES
 * from secmem).  With age recipients they are encrypted at the threshold,
 * before the swap is submitted, and wiped right then: the response, the
 * backup and everything after carry only the age files.
 */
#include "seal_int.h"
#include "barrier.h"
#include "crypto.h"
#include "cs_error.h"
#include "holders.h"
#include "log.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

/* Every set of new plaintext shares gets the same locked allocation, so
 * whoever frees it (cs_rekey_status_clear) needs no size. */
#define REKEY_KEYS_BYTES PARTS_BYTES

static void free_strv(char **v, size_t n) {
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Copies n strings (NULL for n == 0); NULL when out of memory. */
static char **dup_strv(char *const *v, size_t n, int *err) {
  *err = 0;
  if (n == 0)
    return NULL;
  char **out = calloc(n, sizeof *out);
  if (out == NULL) {
    *err = CS_ENOMEM;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if ((out[i] = strdup(v[i])) == NULL) {
      free_strv(out, n);
      *err = CS_ENOMEM;
      return NULL;
    }
  return out;
}

void cs_seal__rekey_clear(cs_seal *s) {
  if (s->cer == CS_SEAL_CEREMONY_REKEY || s->cer == CS_SEAL_CEREMONY_REKEY_VERIFY) {
    cs_seal__ceremony_clear(&s->cur);
    s->cer = CS_SEAL_CEREMONY_NONE;
  }
  cs_seal__ceremony_free(&s->rk.ver);
  cs_secmem_free(s->rk.new_kek, CS_KEY_LEN);
  s->rk.new_kek = NULL;
  cs_seal__keyset_free(&s->rk.new_ks);
  free_strv(s->rk.keys_age, s->rk.nr);
  s->rk.keys_age = NULL;
  free_strv(s->rk.recipients, s->rk.nr);
  s->rk.recipients = NULL;
  s->rk.nr = 0;
  s->rk.backup = 0;
  s->rk.verify = 0;
  s->rk.n = s->rk.t = 0;
}

void cs_rekey_status_clear(cs_rekey_status *st) {
  cs_secmem_free(st->keys, REKEY_KEYS_BYTES);
  free_strv(st->keys_age, st->n_age);
  free_strv(st->recipients, st->n_recipients);
  memset(st, 0, sizeof *st);
}

void cs_seal_rekey_status(const cs_seal *s, cs_rekey_status *st) {
  memset(st, 0, sizeof *st);
  st->started = s->cer == CS_SEAL_CEREMONY_REKEY || s->cer == CS_SEAL_CEREMONY_REKEY_VERIFY;
  if (!st->started)
    return;
  memcpy(st->nonce, s->cur.nonce, CS_NONCE_STR);
  st->t = s->rk.t;
  st->n = s->rk.n;
  st->progress = s->cur.count;
  st->required = s->ks.t;
  st->verification_required = s->rk.verify;
  st->backup = s->rk.backup;
  int err;
  if ((st->recipients = dup_strv(s->rk.recipients, s->rk.nr, &err)) != NULL)
    st->n_recipients = s->rk.nr;
  if (s->cer == CS_SEAL_CEREMONY_REKEY_VERIFY) {
    memcpy(st->verification_nonce, s->rk.ver.nonce, CS_NONCE_STR);
    st->verification_progress = s->rk.ver.count;
  }
}

int cs_seal_rekey_init(cs_seal *s, unsigned n, unsigned t, int verify, cs_rekey_status *st) {
  cs_rekey_params p = {.n = n, .t = t, .verify = verify};
  return cs_seal_rekey_start(s, &p, st);
}

int cs_seal_rekey_start(cs_seal *s, const cs_rekey_params *p, cs_rekey_status *st) {
  unsigned n = p->n, t = p->t;
  int verify = p->verify;
  memset(st, 0, sizeof *st);
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT)
    return cs_error_set(CS_EINPROGRESS, "a generate-root attempt is in progress: cancel it or "
                                        "let it expire first");
  if (s->cer == CS_SEAL_CEREMONY_REKEY || s->cer == CS_SEAL_CEREMONY_REKEY_VERIFY)
    return cs_error_set(CS_EINPROGRESS, "a rekey is already in progress (nonce %s)", s->cur.nonce);
  if (s->cer != CS_SEAL_CEREMONY_NONE) /* generate-root: one key ceremony at a time */
    return cs_error_set(CS_EINPROGRESS, "another key ceremony (generate-root) is in progress; "
                                        "a rekey can start once it is done or cancelled");
  int rc = cs_seal__valid_params(n, t);
  if (rc < 0)
    return rc;
  if (p->backup && p->n_recipients == 0)
    return cs_error_set(CS_EINVAL, "a rekey backup needs age recipients: the backup stores the "
                                   "new shares encrypted to them, never in the clear");
  if ((rc = cs_holders_check(p->recipients, p->n_recipients, NULL, n)) < 0)
    return rc;
  char **rcpt = dup_strv(p->recipients, p->n_recipients, &rc);
  if (rc < 0)
    return rc;
  if ((rc = cs_seal__ceremony_start(&s->cur)) < 0) {
    free_strv(rcpt, p->n_recipients);
    return rc;
  }
  s->cer = CS_SEAL_CEREMONY_REKEY;
  s->rk.n = n;
  s->rk.t = t;
  s->rk.verify = verify != 0;
  s->rk.recipients = rcpt;
  s->rk.nr = p->n_recipients;
  s->rk.backup = p->backup != 0;
  cs_info("rekey started: %u shares, threshold %u%s%s%s", n, t, verify ? ", with verification" : "",
          s->rk.nr ? ", shares encrypted to their age recipients" : "",
          s->rk.backup ? ", with backup" : "");
  cs_seal_rekey_status(s, st);
  return 0;
}

int cs_seal_rekey_cancel(cs_seal *s) {
  if (s->cer != CS_SEAL_CEREMONY_REKEY && s->cer != CS_SEAL_CEREMONY_REKEY_VERIFY)
    return cs_error_set(CS_ENOOP, "no rekey is in progress");
  if (s->busy)
    return cs_error_set(CS_EBUSY, "the rekey is being committed; retry");
  cs_seal__rekey_clear(s);
  cs_info("rekey cancelled");
  return 0;
}

/* Stages the rekey backup (s->rk.backup: the encrypted shares keys_age
 * and the recipients, under the barrier) or the deletion of an older one. */
static int stage_backup(cs_seal *s, cs_batch *b, char *const *keys_age) {
  if (!s->rk.backup)
    return cs_batch_del(b, CS_SEAL_REKEY_BACKUP_PATH);
  Custos__RekeyBackup m = CUSTOS__REKEY_BACKUP__INIT;
  m.nonce = s->cur.nonce;
  m.n_keys_age = s->rk.nr;
  m.keys_age = (char **)keys_age;
  m.n_recipients = s->rk.nr;
  m.recipients = s->rk.recipients;
  m.shares = s->rk.n;
  m.threshold = s->rk.t;
  m.created = cs_now();
  size_t len = custos__rekey_backup__get_packed_size(&m);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL)
    return CS_ENOMEM;
  custos__rekey_backup__pack(&m, buf);
  int rc = cs_barrier_stage_put(s->kr, b, CS_SEAL_REKEY_BACKUP_PATH, buf, len);
  free(buf);
  return rc;
}

/* Swaps to a new KEK: the new seal config and the root key sealed under the
 * new KEK, and the backup (or the deletion of an old one), in one batch.
 * Only after the commit do the old shares stop working.  `keys` (may be
 * NULL) go to the caller with the result; keys_age are the encrypted
 * shares for the backup (NULL without recipients). */
static int rekey_swap(cs_seal *s, const uint8_t *new_kek, keyset *new_ks, char *const *keys_age,
                      cs_rekey_status *keys, cs_seal_cb cb, void *arg) {
  change *c = cs_seal__change_new(s, CH_REKEY, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  c->ks = *new_ks;
  memset(new_ks, 0, sizeof *new_ks);
  if (keys != NULL) {
    c->res.rekey = *keys;
    memset(keys, 0, sizeof *keys);
  }
  c->res.rekey.complete = 1;
  c->res.rekey.n = c->ks.n;
  c->res.rekey.t = c->ks.t;
  c->res.rekey.backup = s->rk.backup;
  int err;
  if ((c->res.rekey.recipients = dup_strv(s->rk.recipients, s->rk.nr, &err)) != NULL)
    c->res.rekey.n_recipients = s->rk.nr;
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_seal__keyset_stage(&c->ks, &b, 0);
  if (rc == 0)
    rc = cs_seal__stage_sealed(&b, new_kek, P_UNSEAL_ROOT, s->root_key, CS_KEY_LEN);
  if (rc == 0)
    rc = stage_backup(s, &b, keys_age);
  if (rc < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  return cs_seal__submit(s, c, &b);
}

/* Checks a share for a ceremony against a key set: length, membership,
 * duplicates.  Duplicates are explicit errors in a rekey (unlike unseal). */
static int check_share(const keyset *ks, const ceremony *c, const uint8_t *share, size_t len) {
  size_t want = cs_seal__share_len(ks->n);
  if (len != want)
    return cs_error_set(CS_EBADSHARE, "key share must be %zu bytes, got %zu", want, len);
  if (!cs_seal__keyset_member(ks, share, len))
    return cs_error_set(CS_ENOTMEMBER, "share is not part of the current key set");
  if (cs_seal__ceremony_has(c, share, len))
    return cs_error_set(CS_EDUPSHARE, "this share was already submitted");
  return 0;
}

/* Adds a share to a rekey ceremony (checked against `ks`).  Returns 1 when
 * it completed the threshold, 0 with *st filled when more are needed, or an
 * error.  The completing share is refused while another key change is
 * being committed, so the ceremony's result can be committed. */
static int ceremony_submit(cs_seal *s, const keyset *ks, ceremony *c, const uint8_t *share,
                           size_t len, cs_rekey_status *st) {
  int rc = check_share(ks, c, share, len);
  if (rc < 0)
    return rc;
  if (c->count + 1 >= ks->t && (rc = cs_seal__check_idle(s)) < 0)
    return rc;
  cs_seal__ceremony_add(c, share, len);
  if (c->count < ks->t) {
    cs_seal_rekey_status(s, st);
    return 0;
  }
  return 1;
}

/* The current shares reached the threshold: check them, make the new key
 * and shares.  On success *new_kek (secmem), *ks and st->keys are set. */
static int rekey_generate(cs_seal *s, uint8_t **new_kek, keyset *ks, cs_rekey_status *st) {
  uint8_t kek[CS_KEY_LEN], root[CS_KEY_LEN];
  size_t slen = cs_seal__share_len(s->rk.n);
  uint8_t *shares = NULL, *nk = NULL;
  int rc = cs_seal__ceremony_combine(&s->cur, &s->ks, kek);
  if (rc == 0)
    rc = cs_seal__open_root_key(s, kek, root);
  if (rc == 0 && !cs_ct_equal(root, s->root_key, CS_KEY_LEN))
    rc = cs_error_set(CS_EKEYMISMATCH, "unseal key does not match");
  if (rc < 0) {
    cs_seal__ceremony_drop_parts(&s->cur); /* like unseal: start over, same nonce */
    goto out;
  }
  rc = CS_ENOMEM;
  if ((nk = cs_secmem_alloc(CS_KEY_LEN)) == NULL || (shares = cs_secmem_alloc(REKEY_KEYS_BYTES)) == NULL)
    goto out;
  if ((rc = cs_random(nk, CS_KEY_LEN)) < 0)
    goto out;
  if (s->rk.n == 1)
    memcpy(shares, nk, CS_KEY_LEN);
  else if ((rc = cs_shamir_split(nk, CS_KEY_LEN, s->rk.n, s->rk.t, shares)) < 0)
    goto out;
  if ((rc = cs_seal__keyset_make(ks, s->rk.n, s->rk.t, shares, slen)) < 0)
    goto out;
  if (s->rk.nr > 0) {
    /* Encrypted to the holders now, before anything is written: a failure
     * here leaves the old key set as it was.  The plaintext goes at once. */
    char **age = calloc(s->rk.nr, sizeof *age);
    if (age == NULL)
      rc = CS_ENOMEM;
    else
      rc = cs_holders_encrypt_shares(s->rk.recipients, s->rk.nr, shares, slen, age);
    if (rc < 0) {
      free(age);
      cs_seal__keyset_free(ks);
      cs_error("rekey: encrypting the new shares to their age recipients failed: %s "
               "(nothing written; the current shares stay valid)", cs_error_message(rc));
      goto out;
    }
    st->keys_age = age;
    st->n_age = s->rk.nr;
  } else {
    st->keys = shares;
    shares = NULL;
  }
  st->key_len = slen;
  st->n = s->rk.n;
  st->t = s->rk.t;
  st->complete = 1;
  *new_kek = nk;
  nk = NULL;
out:
  cs_wipe(kek, sizeof kek);
  cs_wipe(root, sizeof root);
  cs_secmem_free(nk, CS_KEY_LEN);
  cs_secmem_free(shares, REKEY_KEYS_BYTES);
  return rc;
}

int cs_seal_rekey_update(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st, cs_seal_cb cb, void *arg) {
  memset(st, 0, sizeof *st);
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  /* Not NONE alone: the shares of a generate-root are in `cur` too. */
  if (s->cer != CS_SEAL_CEREMONY_REKEY && s->cer != CS_SEAL_CEREMONY_REKEY_VERIFY)
    return cs_error_set(CS_ENOOP, "no rekey is in progress");
  if (s->cer == CS_SEAL_CEREMONY_REKEY_VERIFY)
    return cs_error_set(CS_EINPROGRESS, "rekey is awaiting verification of the new shares");
  if (nonce == NULL || strcmp(nonce, s->cur.nonce) != 0)
    return cs_error_set(CS_EBADNONCE, "nonce does not match the rekey in progress");
  int rc = ceremony_submit(s, &s->ks, &s->cur, share, len, st);
  if (rc <= 0)
    return rc;

  uint8_t *new_kek = NULL;
  keyset ks = {0};
  cs_rekey_status keys = {0};
  if ((rc = rekey_generate(s, &new_kek, &ks, &keys)) < 0) {
    if (rc != CS_EKEYMISMATCH)
      cs_seal__ceremony_drop_parts(&s->cur); /* start over, same nonce */
    return rc;
  }
  if (s->rk.verify) {
    /* Hold the new key until a threshold of the new shares comes back;
     * nothing is written yet, the old shares stay valid. */
    if ((rc = cs_seal__ceremony_start(&s->rk.ver)) < 0) {
      cs_secmem_free(new_kek, CS_KEY_LEN);
      cs_seal__keyset_free(&ks);
      cs_rekey_status_clear(&keys);
      return rc;
    }
    /* The backup needs the encrypted shares at the swap: keep a copy
     * (ciphertext) until then. */
    int err = 0;
    char **held = dup_strv(keys.keys_age, keys.n_age, &err);
    if (err < 0) {
      cs_seal__ceremony_clear(&s->rk.ver);
      cs_secmem_free(new_kek, CS_KEY_LEN);
      cs_seal__keyset_free(&ks);
      cs_rekey_status_clear(&keys);
      cs_seal__ceremony_drop_parts(&s->cur);
      return err;
    }
    s->rk.keys_age = held;
    s->rk.new_kek = new_kek;
    s->rk.new_ks = ks;
    s->cer = CS_SEAL_CEREMONY_REKEY_VERIFY;
    cs_seal_rekey_status(s, st);
    st->complete = 1;
    st->keys = keys.keys;
    st->key_len = keys.key_len;
    st->n = keys.n;
    st->keys_age = keys.keys_age;
    st->n_age = keys.n_age;
    return 0;
  }
  char **age_for_backup = keys.keys_age;
  rc = rekey_swap(s, new_kek, &ks, age_for_backup, &keys, cb, arg);
  cs_secmem_free(new_kek, CS_KEY_LEN);
  cs_seal__keyset_free(&ks);
  cs_rekey_status_clear(&keys);
  if (rc < 0) {
    cs_seal__ceremony_drop_parts(&s->cur);
    return rc;
  }
  cs_seal__rekey_clear(s);
  return rc;
}

int cs_seal_rekey_verify(cs_seal *s, const char *nonce, const uint8_t *share, size_t len,
                         cs_rekey_status *st, cs_seal_cb cb, void *arg) {
  memset(st, 0, sizeof *st);
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (s->cer != CS_SEAL_CEREMONY_REKEY_VERIFY)
    return cs_error_set(CS_ENOOP, "no rekey is awaiting verification");
  if (nonce == NULL || strcmp(nonce, s->rk.ver.nonce) != 0)
    return cs_error_set(CS_EBADNONCE, "nonce does not match the rekey verification in progress");
  int rc = ceremony_submit(s, &s->rk.new_ks, &s->rk.ver, share, len, st);
  if (rc <= 0)
    return rc;
  uint8_t kek[CS_KEY_LEN];
  rc = cs_seal__ceremony_combine(&s->rk.ver, &s->rk.new_ks, kek);
  if (rc == 0 && !cs_ct_equal(kek, s->rk.new_kek, CS_KEY_LEN))
    rc = cs_error_set(CS_EKEYMISMATCH, "new shares do not combine to the new unseal key");
  cs_wipe(kek, sizeof kek);
  if (rc == 0) {
    cs_rekey_status none = {.verification_required = 1, .backup = s->rk.backup};
    rc = rekey_swap(s, s->rk.new_kek, &s->rk.new_ks, s->rk.keys_age, &none, cb, arg);
  }
  if (rc < 0) {
    cs_seal__ceremony_drop_parts(&s->rk.ver);
    return rc;
  }
  cs_seal__rekey_clear(s);
  return rc;
}

/* ---------------------------------------------------------------- backup */

int cs_seal_rekey_backup_read(cs_seal *s, uint8_t **buf, size_t *len) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  int rc = cs_barrier_get(s->opts.store, s->kr, CS_SEAL_REKEY_BACKUP_PATH, buf, len);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ENOBACKUP, "no rekey backup is stored (only a rekey with --backup "
                                      "and age recipients stores one)");
  if (rc < 0)
    return rc;
  Custos__RekeyBackup *m = custos__rekey_backup__unpack(NULL, *len, *buf);
  if (m == NULL) {
    free(*buf);
    *buf = NULL;
    return cs_error_set(CS_ESTORECORRUPT, "%s does not decode", CS_SEAL_REKEY_BACKUP_PATH);
  }
  custos__rekey_backup__free_unpacked(m, NULL);
  return 0;
}

int cs_seal_rekey_backup_delete(cs_seal *s, cs_seal_cb cb, void *arg) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  uint8_t *v;
  size_t vlen;
  int rc = cs_store_get(s->opts.store, CS_SEAL_REKEY_BACKUP_PATH, &v, &vlen);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ENOBACKUP, "no rekey backup is stored");
  if (rc < 0)
    return rc;
  free(v);
  change *c = cs_seal__change_new(s, CH_BACKUP_DELETE, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = cs_batch_del(&b, CS_SEAL_REKEY_BACKUP_PATH)) < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  cs_info("rekey backup: deletion submitted");
  return cs_seal__submit(s, c, &b);
}
