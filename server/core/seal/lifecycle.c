/*
 * lifecycle: open and close, the unseal ceremony, sealing, status, and the
 * reload after a snapshot restore.  Each path that loads or wipes keys reads
 * everything it needs first and then hands the result to set_state (state.c),
 * which fires the event.
 */
#include "seal_int.h"
#include "cs_error.h"
#include "crypto.h"
#include "log.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

int cs_seal_open(cs_seal **out, const cs_seal_opts *opts) {
  int rc = cs_crypto_init();
  if (rc < 0)
    return rc;
  cs_seal *s = calloc(1, sizeof *s);
  if (s == NULL)
    return CS_ENOMEM;
  s->opts = *opts;
  if (s->opts.upgrade_ttl == 0)
    s->opts.upgrade_ttl = 120;
  s->state = CS_SEAL_UNINITIALIZED; /* SEALED once a key set is found */
  if ((rc = cs_seal__load_keyset(s)) < 0) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void cs_seal__free(cs_seal *s) {
  cs_seal__rekey_clear(s);
  cs_seal__genroot_clear(s);
  cs_seal__ceremony_free(&s->cur);
  cs_seal__keyset_free(&s->ks);
  free(s);
}

void cs_seal_close(cs_seal *s) {
  if (s == NULL)
    return;
  cs_seal_seal(s);
  s->closing = 1;
  if (s->inflight == 0)
    cs_seal__free(s);
}

/* ---------------------------------------------------------------- unseal */

/* With the KEK rebuilt: open the root key, then the keyring and its rotate
 * config; only then install them (event UNSEALED). */
static int unseal_with(cs_seal *s, const uint8_t *kek) {
  cs_keyring *kr = NULL;
  cs_rotate_config rot;
  uint8_t *root = cs_secmem_alloc(CS_KEY_LEN);
  if (root == NULL)
    return CS_ENOMEM;
  int rc = cs_seal__open_root_key(s, kek, root);
  if (rc == 0)
    rc = cs_seal__read_keyring(s, root, &kr);
  if (rc == 0)
    rc = cs_seal__load_rotate_config(s, kr, &rot);
  if (rc < 0) {
    cs_keyring_free(kr);
    cs_secmem_free(root, CS_KEY_LEN);
    return rc;
  }
  s->rot = rot;
  size_t retired = 0;
  cs_term_info ti;
  for (size_t i = 0; i < cs_keyring_count(kr); i++) {
    cs_keyring_info(kr, i, &ti);
    retired += ti.state == CS_TERM_RETIRED;
  }
  cs_info("unsealed: term %u active, %zu term(s) in the keyring, %zu of them retired (no key)",
          cs_keyring_active(kr), cs_keyring_count(kr), retired);
  cs_seal__set_state(s, CS_SEAL_UNSEALED, root, kr);
  return 0;
}

int cs_seal_unseal(cs_seal *s, const uint8_t *share, size_t len) {
  if (s->state == CS_SEAL_UNINITIALIZED)
    return cs_error_set(CS_ENOTINIT, "server is not initialized");
  if (s->state == CS_SEAL_UNSEALED)
    return 0;
  size_t want = cs_seal__share_len(s->ks.n);
  if (len != want)
    return cs_error_set(CS_EBADSHARE, "unseal key share must be %zu bytes, got %zu", want, len);
  if (!cs_seal__keyset_member(&s->ks, share, len))
    return cs_error_set(CS_ENOTMEMBER, "share is not part of the current key set");
  int rc;
  if (s->cer == CS_SEAL_CEREMONY_NONE) {
    if ((rc = cs_seal__ceremony_start(&s->cur)) < 0)
      return rc;
    s->cer = CS_SEAL_CEREMONY_UNSEAL;
  }
  if (cs_seal__ceremony_has(&s->cur, share, len))
    return 0; /* a repeated share is ignored */
  cs_seal__ceremony_add(&s->cur, share, len);
  if (s->cur.count < s->ks.t)
    return 0;

  uint8_t kek[CS_KEY_LEN];
  rc = cs_seal__ceremony_combine(&s->cur, &s->ks, kek);
  if (rc == 0)
    rc = unseal_with(s, kek); /* success ends the ceremony */
  cs_wipe(kek, sizeof kek);
  if (rc < 0)
    cs_seal__end_ceremony(s); /* the parts are done with: start over */
  return rc;
}

void cs_seal_reset(cs_seal *s) {
  if (s->cer == CS_SEAL_CEREMONY_UNSEAL)
    cs_seal__end_ceremony(s);
}

void cs_seal_seal(cs_seal *s) {
  s->reason[0] = '\0'; /* an operator's seal needs no explanation */
  if (s->state == CS_SEAL_UNSEALED) {
    int rc = cs_seal_flush_counters(s);
    if (rc < 0 && rc != CS_EBUSY)
      cs_warn("sealing: could not persist encryption counters: %s", cs_error_message(rc));
    cs_seal__set_state(s, CS_SEAL_SEALED, NULL, NULL);
  }
  cs_seal_reset(s); /* a seal request also drops the unseal progress */
}

void cs_seal_get_status(const cs_seal *s, cs_seal_status *st) {
  memset(st, 0, sizeof *st);
  st->state = s->state;
  st->ceremony = s->cer;
  st->initialized = s->state != CS_SEAL_UNINITIALIZED;
  st->sealed = s->state != CS_SEAL_UNSEALED;
  st->t = s->ks.t;
  st->n = s->ks.n;
  if (s->cer == CS_SEAL_CEREMONY_UNSEAL) {
    st->progress = s->cur.count;
    memcpy(st->nonce, s->cur.nonce, CS_NONCE_STR);
  }
  st->term = s->state == CS_SEAL_UNSEALED ? cs_keyring_active(s->kr) : 0;
  memcpy(st->reason, s->reason, sizeof st->reason);
}

cs_keyring *cs_seal_keyring(cs_seal *s) { return s->kr; }

/* ---------------------------------------------------------------- snapshots */

const uint8_t *cs_seal_root_key(const cs_seal *s) { return s->root_key; }

int cs_seal_restore_begin(cs_seal *s) {
  int rc = cs_seal__check_idle(s);
  if (rc < 0)
    return rc;
  s->busy = 1;
  return 0;
}

void cs_seal_restore_abort(cs_seal *s) { s->busy = 0; }

/* Reads the restored keyring and its rotate config with the root key we
 * hold.  It opens only for a snapshot of this installation (GCM tag under
 * the root key): otherwise CS_EAUTH. */
static int read_restored(cs_seal *s, cs_keyring **kr, cs_rotate_config *rot) {
  int rc = cs_seal__read_keyring(s, s->root_key, kr);
  if (rc == 0 && (rc = cs_seal__load_rotate_config(s, *kr, rot)) < 0) {
    cs_keyring_free(*kr);
    *kr = NULL;
  }
  return rc;
}

int cs_seal_restored(cs_seal *s, int seal) {
  s->busy = 0;
  /* A sealed node's unseal progress survives a snapshot of the same key set
   * (cs_seal__load_keyset ends it when the set changed): a restarted
   * cluster node often installs one while its key holders are submitting
   * shares, and those shares still open the restored root key.  A forced
   * restore, or any other ceremony, starts over. */
  if (seal || s->cer != CS_SEAL_CEREMONY_UNSEAL)
    cs_seal__end_ceremony(s); /* shares of the old set, maybe */
  int was_unsealed = s->state == CS_SEAL_UNSEALED;
  int rc = cs_seal__load_keyset(s); /* sealed: SEALED or UNINITIALIZED now */
  int found = rc == 1;
  if (rc < 0)
    cs_seal__end_ceremony(s); /* an unreadable key set: nothing to count against */
  cs_keyring *kr = NULL;
  cs_rotate_config rot;
  if (was_unsealed && !seal && found)
    rc = read_restored(s, &kr, &rot);
  if (was_unsealed && !seal && found && rc == 0) {
    s->rot = rot;
    cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, kr); /* its audit key, caches */
    return 1;
  }
  if (was_unsealed) {
    cs_info("restored a snapshot of another installation or key set: sealed; unseal with "
            "the snapshot's shares");
    if (rc == 0 && !found)
      cs_seal__keyset_free(&s->ks);
    /* No counter flush: it would write the old keyring back. */
    cs_seal__set_state(s, rc == 0 && !found ? CS_SEAL_UNINITIALIZED : CS_SEAL_SEALED, NULL, NULL);
  }
  return rc < 0 && rc != CS_EAUTH ? rc : 0;
}
