/*
 * init: the first key set of an installation, and what init mints with it:
 * the root token and the audit log's HMAC key.  Everything goes in one
 * batch, so a crash leaves either nothing or a complete initialization;
 * the store refuses the batch if a seal config exists by then (change.c).
 */
#include "seal_int.h"
#include "barrier.h"
#include "cs_error.h"
#include "crypto.h"
#include "policy_ns.h"
#include "secmem.h"
#include "token.h"

#include <stdlib.h>
#include <string.h>

/* The root token: a fresh token with the "root" policy; its text goes to
 * `token` (CS_TOKEN_MAX, the caller wipes it).  generate-root mints its
 * tokens here too. */
int cs_seal__stage_root_token(cs_keyring *kr, cs_batch *b, char token[CS_TOKEN_MAX]) {
  char accessor[25];
  uint8_t acc_raw[12];
  int rc;
  if ((rc = cs_token_generate(token)) < 0 || (rc = cs_random(acc_raw, sizeof acc_raw)) < 0)
    return rc;
  cs_hex_encode(acc_raw, sizeof acc_raw, accessor);
  Custos__TokenEntry te = CUSTOS__TOKEN_ENTRY__INIT;
  char *root_policy[] = {"root"};
  te.accessor = accessor;
  te.n_policies = 1;
  te.policies = root_policy;
  te.issue_time = cs_now();
  te.root = 1;
  return cs_token_stage(kr, token, &te, b);
}

/* A new store holds no policy from before namespaces: it is namespaced
 * from its init (policy_ns.h), so its first request does not start a
 * migration of nothing that a policy write would wait for (RETRY). */
static int stage_policy_ns(cs_batch *b) {
  return cs_batch_put(b, CS_POLICY_NS_MARKER, (const uint8_t *)CS_POLICY_NS_VERSION,
                      strlen(CS_POLICY_NS_VERSION));
}

/* The audit log's HMAC key is per installation, under the barrier. */
static int stage_audit_key(cs_keyring *kr, cs_batch *b) {
  uint8_t key[CS_KEY_LEN];
  int rc = cs_random(key, sizeof key);
  if (rc == 0)
    rc = cs_barrier_stage_put(kr, b, CS_SEAL_AUDIT_KEY_PATH, key, sizeof key);
  cs_wipe(key, sizeof key);
  return rc;
}

int cs_seal_audit_key(cs_seal *s, uint8_t key[CS_KEY_LEN]) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_get(s->opts.store, s->kr, CS_SEAL_AUDIT_KEY_PATH, &pt, &len);
  if (rc < 0)
    return rc;
  if (len == CS_KEY_LEN)
    memcpy(key, pt, CS_KEY_LEN);
  else
    rc = cs_error_set(CS_ESTORECORRUPT, "%s has the wrong length", CS_SEAL_AUDIT_KEY_PATH);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

static int build_init(change *c, unsigned n, unsigned t, cs_batch *b) {
  int rc;
  uint8_t kek[CS_KEY_LEN], root[CS_KEY_LEN];
  char token[CS_TOKEN_MAX] = {0};
  cs_keyring *kr = NULL;
  size_t slen = cs_seal__share_len(n);
  uint8_t *shares = malloc((size_t)n * slen);

  rc = CS_ENOMEM;
  if (shares == NULL)
    goto out;
  if ((rc = cs_random(kek, sizeof kek)) < 0 || (rc = cs_random(root, sizeof root)) < 0)
    goto out;
  if (n == 1)
    memcpy(shares, kek, CS_KEY_LEN);
  else if ((rc = cs_shamir_split(kek, CS_KEY_LEN, n, t, shares)) < 0)
    goto out;
  if ((rc = cs_seal__keyset_make(&c->ks, n, t, shares, slen)) < 0)
    goto out;
  if ((rc = cs_keyring_new(&kr)) < 0 || (rc = cs_keyring_rotate(kr, cs_now(), NULL)) < 0)
    goto out;
  if ((rc = stage_audit_key(kr, b)) < 0 || (rc = cs_seal__stage_root_token(kr, b, token)) < 0 ||
      (rc = cs_seal__keyset_stage(&c->ks, b, 1)) < 0 ||
      (rc = cs_seal__stage_sealed(b, kek, P_UNSEAL_ROOT, root, sizeof root)) < 0 ||
      (rc = cs_barrier_stage_put(kr, b, P_ROOT_KEY, root, sizeof root)) < 0 ||
      (rc = stage_policy_ns(b)) < 0 ||
      (rc = cs_seal__stage_keyring(b, root, kr)) < 0) /* last: it carries the counters */
    goto out;
  rc = CS_ENOMEM;
  if ((c->res.root_token = strdup(token)) == NULL)
    goto out;
  c->res.shares = shares;
  c->res.share_len = slen;
  c->res.n = n;
  c->res.t = t;
  shares = NULL;
  rc = 0;
out:
  cs_wipe(kek, sizeof kek);
  cs_wipe(root, sizeof root);
  cs_wipe(token, sizeof token);
  if (shares != NULL) {
    cs_wipe(shares, (size_t)n * slen);
    free(shares);
  }
  cs_keyring_free(kr);
  return rc;
}

int cs_seal_init(cs_seal *s, unsigned n, unsigned t, cs_seal_cb cb, void *arg) {
  int rc;
  if (s->state != CS_SEAL_UNINITIALIZED)
    return cs_error_set(CS_EALREADYINIT, "server is already initialized");
  if ((rc = cs_seal__valid_params(n, t)) < 0 || (rc = cs_seal__check_idle(s)) < 0)
    return rc;
  /* Another process may have initialized the same directory meanwhile. */
  if ((rc = cs_store_exists(s->opts.store, P_SEAL_CONFIG)) != 0)
    return rc < 0 ? rc : cs_error_set(CS_EALREADYINIT, "server is already initialized");
  change *c = cs_seal__change_new(s, CH_INIT, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = build_init(c, n, t, &b)) < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  return cs_seal__submit(s, c, &b);
}
