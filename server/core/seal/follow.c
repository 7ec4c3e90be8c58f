/*
 * follow: how a cluster member keeps its keys in step with storage it did
 * not write.  A standby installs each next term from the upgrade key the
 * active node left under the previous term, and seals itself when it
 * missed one; the node that becomes active reloads the keyring from
 * storage.  Both change the keys in memory only through set_state.
 */
#include "seal_int.h"
#include "barrier.h"
#include "cs_error.h"
#include "log.h"
#include "secmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cs_seal_reload(cs_seal *s) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  cs_keyring *kr = NULL;
  cs_rotate_config rot;
  int rc = cs_seal__load_keyset(s);
  if (rc >= 0)
    rc = cs_seal__read_keyring(s, s->root_key, &kr);
  if (rc == 0)
    rc = cs_seal__load_rotate_config(s, kr, &rot);
  if (rc < 0) {
    cs_keyring_free(kr);
    return rc;
  }
  s->rot = rot;
  cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, kr);
  return 0;
}

/* Installs the term after the active one from core/upgrade/<active>, if the
 * replica has an unexpired upgrade key, as STAGED: it decrypts from now on
 * (what the active may write under it once activated) and becomes active
 * here when core/root-key moves to it (cs_seal__follow_activation).  1
 * installed, 0 none (or already held), <0 error. */
static int install_next(cs_seal *s, int64_t now) {
  uint32_t active = cs_keyring_active(s->kr);
  if (cs_keyring_staged(s->kr) != 0)
    return 0; /* held already (from the upgrade key or the stored keyring) */
  char path[64];
  snprintf(path, sizeof path, P_UPGRADE "%u", active);
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_store_get(s->opts.store, path, &ct, &ct_len);
  if (rc == CS_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  Custos__UpgradeKey *uk = NULL;
  int64_t expires = cs_seal__upgrade_expiry(s->kr, path, ct, ct_len, &uk);
  free(ct);
  if (uk == NULL)
    return 0;
  rc = 0;
  if (expires > now && uk->next->term == active + 1) {
    rc = cs_keyring_stage_key(s->kr, uk->next->term, uk->next->key.data, uk->next->install_time);
    if (rc == 0) {
      cs_info("standby: holds term %u (staged) from the upgrade key", uk->next->term);
      rc = 1;
    }
  }
  cs_wipe(uk->next->key.data, uk->next->key.len);
  custos__upgrade_key__free_unpacked(uk, NULL);
  return rc;
}

/* core/root-key is written under the newest term: if we lack that term, we
 * missed its upgrade window and our keyring is stale (1).  Otherwise the
 * root key is refreshed from it (0), or an error. */
static int check_root_key(cs_seal *s, uint32_t *missed) {
  uint8_t *ct, *pt;
  size_t ct_len, len;
  uint32_t term = 0;
  int rc = cs_store_get(s->opts.store, P_ROOT_KEY, &ct, &ct_len);
  if (rc < 0)
    return rc == CS_ENOTFOUND ? 0 : rc;
  rc = cs_barrier_term_of(ct, ct_len, &term);
  if (rc == 0 && cs_keyring_key(s->kr, term) == NULL) {
    free(ct);
    cs_error("standby missed the keyring upgrade to term %u (local keyring ends at term %u): "
             "sealing; unseal this node again to follow the cluster",
             term, cs_keyring_newest(s->kr));
    *missed = term;
    return 1;
  }
  if (rc == 0)
    rc = cs_barrier_decrypt(s->kr, P_ROOT_KEY, ct, ct_len, &pt, &len);
  free(ct);
  if (rc < 0)
    return rc;
  if (len == CS_KEY_LEN && !cs_ct_equal(pt, s->root_key, CS_KEY_LEN))
    memcpy(s->root_key, pt, CS_KEY_LEN);
  cs_wipe(pt, len);
  free(pt);
  return 0;
}

int cs_seal_follow(cs_seal *s, int64_t now, int *installed) {
  *installed = 0;
  /* A generate-root attempt lives on the active: one left from when this
   * node led is void (its holders start again on the active), and its
   * shares and OTP are not kept in a standby's memory. */
  if (s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT) {
    cs_warn("generate-root attempt %s ended: this node is not the active one any more",
            s->cur.nonce);
    cs_seal__end_ceremony(s);
  }
  int rc = cs_seal__load_keyset(s); /* a rekey on the active changes the share set */
  if (rc < 0 || s->state != CS_SEAL_UNSEALED)
    return rc < 0 ? rc : 0;
  /* Next terms are staged from upgrade keys and activated when
   * core/root-key moved to them; a replica several rotations ahead takes
   * several rounds of both. */
  int activated = 0;
  for (;;) {
    while ((rc = install_next(s, now)) == 1)
      (*installed)++;
    if (rc < 0)
      break;
    if ((rc = cs_seal__follow_activation(s)) != 1)
      break;
    activated++;
  }
  /* The ring grew or changed in place: one event for all of it. */
  if (*installed > 0 || activated > 0)
    cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, s->kr);
  if (rc < 0)
    return rc;
  uint32_t missed = 0;
  rc = check_root_key(s, &missed);
  if (rc == 1) {
    cs_seal_seal_because(s, "missed the keyring upgrade to term %u (it was activated without "
                         "this node; unseal this node again to follow the cluster)", missed);
    return cs_error_set(CS_ESEALED, "standby sealed itself after missing a keyring upgrade");
  }
  if (rc == 0 && (rc = cs_seal__follow_retired(s)) > 0)
    rc = 0; /* a term the active retired is wiped here too (retire.c) */
  return rc;
}
