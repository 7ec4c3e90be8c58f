/*
 * stage: staged activation (issue 14; docs/ha.md, "Staged activation").
 *
 * In a cluster a rotation only STAGES its term (rotate.c): every member
 * receives it through core/upgrade/<active> and holds it, but nothing is
 * encrypted under it.  Once every voter has proved that it holds the term
 * (cs_seal_term_proof, carried by its status report), or the wait ran out
 * (seal.max_activation_delay), the active commits the activation here: one
 * batch with the keyring (staged -> active), core/root-key under the new
 * term and the deletion of the upgrade key.  A standby sees the activation
 * in its replica as core/root-key moving to the staged term and activates
 * the term in memory too (cs_seal__follow_activation); a standby that never
 * got the term meets core/root-key under a term it lacks and seals itself
 * (follow.c), as before staging existed.
 *
 * Invariants: at most one staged term, always the newest; the staged term
 * never encrypts (the barrier encrypts under cs_keyring_active only); the
 * active term is the term core/root-key is sealed under, in every committed
 * state of the store.
 */
#include "seal_int.h"
#include "barrier.h"
#include "crypto.h"
#include "cs_error.h"
#include "log.h"
#include "secmem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cs_seal_set_staged_activation(cs_seal *s, int on, unsigned max_delay) {
  s->staged_activation = on != 0;
  s->max_activation_delay = max_delay;
}

int cs_seal_activate(cs_seal *s, cs_seal_cb cb, void *arg) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  int rc = cs_seal__check_idle(s);
  if (rc < 0)
    return rc;
  uint32_t staged = cs_keyring_staged(s->kr), old = cs_keyring_active(s->kr);
  if (staged == 0)
    return cs_error_set(CS_ENOTERM, "no term is staged");
  change *c = cs_seal__change_new(s, CH_ACTIVATE, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  char path[64];
  snprintf(path, sizeof path, P_UPGRADE "%u", old);
  int64_t now = cs_now();
  c->res.term = staged;
  c->res.install_time = now;
  if ((rc = cs_keyring_clone(s->kr, &c->next_kr)) < 0 ||
      (rc = cs_keyring_transition(c->next_kr, staged, CS_TERM_ACTIVE, now)) < 0 ||
      /* Under the new active term: what tells every standby it is active. */
      (rc = cs_barrier_stage_put(c->next_kr, &b, P_ROOT_KEY, s->root_key, CS_KEY_LEN)) < 0 ||
      (rc = cs_batch_del(&b, path)) < 0 ||
      (rc = cs_seal__stage_keyring(&b, s->root_key, c->next_kr)) < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  return cs_seal__submit(s, c, &b);
}

/* ---------------------------------------------------------------- proofs */

static void proof_of(const uint8_t *key, uint32_t term, const char *node_id,
                     uint8_t out[CS_TERM_PROOF_LEN]) {
  static const char label[] = "custos term ack key v1";
  static const char prefix[] = "custos term ack";
  uint8_t k[32];
  uint8_t msg[sizeof prefix - 1 + 4 + 64];
  size_t id_len = strnlen(node_id, 64), n = 0;
  /* A key of its own for the proof, so the data key is only ever an AES
   * key and an HMAC-derivation input. */
  cs_hmac_sha256(key, CS_KEY_LEN, label, sizeof label - 1, k);
  memcpy(msg, prefix, sizeof prefix - 1);
  n = sizeof prefix - 1;
  msg[n++] = (uint8_t)(term >> 24);
  msg[n++] = (uint8_t)(term >> 16);
  msg[n++] = (uint8_t)(term >> 8);
  msg[n++] = (uint8_t)term;
  memcpy(msg + n, node_id, id_len);
  n += id_len;
  cs_hmac_sha256(k, sizeof k, msg, n, out);
  cs_wipe(k, sizeof k);
}

int cs_seal_term_proof(const cs_seal *s, uint32_t term, const char *node_id,
                       uint8_t out[CS_TERM_PROOF_LEN]) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  const uint8_t *key = term ? cs_keyring_key(s->kr, term) : NULL;
  if (key == NULL)
    return cs_error_set(CS_ENOTERM, "no key for term %u", term);
  proof_of(key, term, node_id, out);
  return 0;
}

int cs_seal_term_proof_ok(const cs_seal *s, uint32_t term, const char *node_id,
                          const uint8_t *proof, size_t len) {
  uint8_t want[CS_TERM_PROOF_LEN];
  if (len != CS_TERM_PROOF_LEN || cs_seal_term_proof(s, term, node_id, want) != 0)
    return 0;
  int ok = cs_ct_equal(want, proof, CS_TERM_PROOF_LEN);
  cs_wipe(want, sizeof want);
  return ok;
}

/* ---------------------------------------------------------------- followers */

int cs_seal__follow_activation(cs_seal *s) {
  uint32_t staged = cs_keyring_staged(s->kr);
  if (staged == 0)
    return 0;
  uint8_t *ct;
  size_t ct_len;
  uint32_t term = 0;
  int rc = cs_store_get(s->opts.store, P_ROOT_KEY, &ct, &ct_len);
  if (rc < 0)
    return rc == CS_ENOTFOUND ? 0 : rc;
  rc = cs_barrier_term_of(ct, ct_len, &term);
  free(ct);
  /* Root key under the staged term, or under a later one: the staged term
   * was activated (no term is staged after a staged one before it is
   * activated), so the upgrade key after it, if any, is next. */
  if (rc < 0 || term < staged)
    return rc;
  if ((rc = cs_keyring_transition(s->kr, staged, CS_TERM_ACTIVE, cs_now())) < 0)
    return rc;
  cs_info("standby: term %u is active (the active node activated it)", staged);
  return 1;
}

/* ---------------------------------------------------------------- a new active */

int cs_seal_check_active_keys(cs_seal *s) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  uint8_t *ct, *pt = NULL;
  size_t ct_len, len = 0;
  uint32_t term = 0;
  int rc = cs_store_get(s->opts.store, P_ROOT_KEY, &ct, &ct_len);
  if (rc == CS_ENOTFOUND)
    return 0; /* nothing initialized yet: nothing to lack */
  if (rc < 0)
    return rc;
  if ((rc = cs_barrier_term_of(ct, ct_len, &term)) < 0) {
    free(ct);
    return rc;
  }
  uint32_t mine = cs_keyring_active(s->kr);
  if (cs_keyring_key(s->kr, term) == NULL) {
    free(ct);
    return cs_error_set(CS_ELACKSTERM, "this node lacks the active keyring term %u (its "
                        "keyring ends at term %u)", term, cs_keyring_newest(s->kr));
  }
  if (mine != term) {
    free(ct);
    return cs_error_set(CS_ELACKSTERM, "the active keyring term is %u but this node's keyring "
                        "has term %u active", term, mine);
  }
  rc = cs_barrier_decrypt(s->kr, P_ROOT_KEY, ct, ct_len, &pt, &len);
  free(ct);
  if (rc < 0) {
    char why[160]; /* the detail buffer is reused by cs_error_set */
    snprintf(why, sizeof why, "%s", cs_error_message(rc));
    rc = cs_error_set(CS_ELACKSTERM, "core/root-key does not open under this node's key for "
                      "term %u: %s", term, why);
  } else if (len != CS_KEY_LEN || !cs_ct_equal(pt, s->root_key, CS_KEY_LEN)) {
    rc = cs_error_set(CS_ELACKSTERM, "core/root-key under term %u does not hold this node's "
                      "root key", term);
  }
  if (pt != NULL) {
    cs_wipe(pt, len);
    free(pt);
  }
  return rc;
}

void cs_seal_seal_because(cs_seal *s, const char *fmt, ...) {
  char why[sizeof s->reason];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  /* No counter flush, unlike an operator's seal: the keyring in memory is
   * the one found wanting, and on a raft leader the flush would write it
   * over the stored one. */
  if (s->state == CS_SEAL_UNSEALED)
    cs_seal__set_state(s, CS_SEAL_SEALED, NULL, NULL);
  cs_seal_reset(s);
  memcpy(s->reason, why, sizeof why);
}
