/*
 * keyset: core/seal-config, the plaintext description of the current key
 * set (n, t, a random salt and an HMAC of every share).  Read while sealed:
 * it is what lets a share be refused at submission when it is foreign,
 * tampered or from before a rekey.  The HMACs reveal nothing usable: the
 * salt is random per key set and the shares carry 256 bits of entropy.
 */
#include "seal_int.h"
#include "cs_error.h"
#include "crypto.h"
#include "log.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

void cs_seal__keyset_free(keyset *ks) {
  free(ks->macs);
  memset(ks, 0, sizeof *ks);
}

/* 1 when the share belongs to the key set.  Every MAC is compared, in
 * constant time, so timing says nothing about which share matched. */
int cs_seal__keyset_member(const keyset *ks, const uint8_t *share, size_t len) {
  uint8_t mac[MAC_LEN];
  int found = 0;
  cs_hmac_sha256(ks->salt, sizeof ks->salt, share, len, mac);
  for (unsigned i = 0; i < ks->n; i++)
    found |= cs_ct_equal(ks->macs[i], mac, MAC_LEN);
  cs_wipe(mac, sizeof mac);
  return found;
}

/* Same n, t, salt and MACs: the same shares (all public data). */
static int keyset_equal(const keyset *a, const keyset *b) {
  return a->n == b->n && a->t == b->t && memcmp(a->salt, b->salt, MAC_LEN) == 0 &&
         (a->n == 0 || (a->macs != NULL && b->macs != NULL &&
                        memcmp(a->macs, b->macs, (size_t)a->n * MAC_LEN) == 0));
}

/* A key set for freshly split shares. */
int cs_seal__keyset_make(keyset *ks, unsigned n, unsigned t, const uint8_t *shares, size_t slen) {
  memset(ks, 0, sizeof *ks);
  ks->macs = calloc(n, MAC_LEN);
  if (ks->macs == NULL)
    return CS_ENOMEM;
  ks->n = n;
  ks->t = t;
  int rc = cs_random(ks->salt, sizeof ks->salt);
  if (rc < 0)
    return rc;
  for (unsigned i = 0; i < n; i++)
    cs_hmac_sha256(ks->salt, sizeof ks->salt, shares + (size_t)i * slen, slen, ks->macs[i]);
  return 0;
}

/* `create`: init's seal config must not exist yet (see change.c). */
int cs_seal__keyset_stage(const keyset *ks, cs_batch *b, int create) {
  Custos__SealConfig sc = CUSTOS__SEAL_CONFIG__INIT;
  ProtobufCBinaryData macs[CS_SHAMIR_MAX_SHARES];
  sc.shares = ks->n;
  sc.threshold = ks->t;
  sc.share_salt.data = (uint8_t *)ks->salt;
  sc.share_salt.len = MAC_LEN;
  for (unsigned i = 0; i < ks->n; i++) {
    macs[i].data = (uint8_t *)ks->macs[i];
    macs[i].len = MAC_LEN;
  }
  sc.n_share_macs = ks->n;
  sc.share_macs = macs;
  sc.created = cs_now();
  size_t len = custos__seal_config__get_packed_size(&sc);
  uint8_t *buf = malloc(len);
  if (buf == NULL)
    return CS_ENOMEM;
  custos__seal_config__pack(&sc, buf);
  int rc = create ? cs_batch_put_new(b, P_SEAL_CONFIG, buf, len)
                  : cs_batch_put(b, P_SEAL_CONFIG, buf, len);
  free(buf);
  return rc;
}

int cs_seal__valid_params(unsigned n, unsigned t) {
  if (n < 1 || n > CS_SHAMIR_MAX_SHARES)
    return cs_error_set(CS_EINVAL, "key shares must be between 1 and 255, not %u", n);
  if (t > n)
    return cs_error_set(CS_EINVAL, "key threshold %u is greater than key shares %u", t, n);
  if (n > 1 && t < 2)
    return cs_error_set(CS_EINVAL, "key threshold must be at least 2 when shares > 1");
  if (n == 1 && t != 1)
    return cs_error_set(CS_EINVAL, "key threshold must be 1 when there is one share");
  return 0;
}

/* Parses and validates a core/seal-config value into ks. */
static int keyset_decode(const uint8_t *buf, size_t len, keyset *out) {
  Custos__SealConfig *sc = custos__seal_config__unpack(NULL, len, buf);
  int rc = cs_error_set(CS_ESTORECORRUPT, "core/seal-config is corrupt");
  if (sc == NULL)
    return rc;
  if (sc->shares < 1 || sc->shares > CS_SHAMIR_MAX_SHARES || sc->threshold > sc->shares ||
      (sc->shares > 1 && sc->threshold < 2) || (sc->shares == 1 && sc->threshold != 1) ||
      sc->share_salt.len != MAC_LEN || sc->n_share_macs != sc->shares)
    goto out;
  for (size_t i = 0; i < sc->n_share_macs; i++)
    if (sc->share_macs[i].len != MAC_LEN)
      goto out;
  keyset ks = {.n = sc->shares, .t = sc->threshold, .macs = calloc(sc->shares, MAC_LEN)};
  if (ks.macs == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  memcpy(ks.salt, sc->share_salt.data, MAC_LEN);
  for (unsigned i = 0; i < ks.n; i++)
    memcpy(ks.macs[i], sc->share_macs[i].data, MAC_LEN);
  *out = ks;
  rc = 0;
out:
  custos__seal_config__free_unpacked(sc, NULL);
  return rc;
}

int cs_seal_config_check(const uint8_t *buf, size_t len) {
  keyset ks = {0};
  int rc = keyset_decode(buf, len, &ks);
  cs_seal__keyset_free(&ks);
  return rc;
}

int cs_seal__load_keyset(cs_seal *s) {
  uint8_t *buf;
  size_t len;
  int rc = cs_store_get(s->opts.store, P_SEAL_CONFIG, &buf, &len);
  if (rc == CS_ENOTFOUND) {
    /* Unsealed, the keys in memory still need their key set (a rekey). */
    if (s->state != CS_SEAL_UNSEALED) {
      if (s->cer == CS_SEAL_CEREMONY_UNSEAL)
        cs_seal__end_ceremony(s); /* no key set: no share counts */
      cs_seal__keyset_free(&s->ks);
      cs_seal__set_state(s, CS_SEAL_UNINITIALIZED, NULL, NULL);
    }
    return 0;
  }
  if (rc < 0)
    return rc;
  keyset ks = {0};
  rc = keyset_decode(buf, len, &ks);
  free(buf);
  if (rc < 0)
    return rc;
  /* A ceremony's shares were checked against the set they were submitted
   * under (the store changed under it: a standby's poll after a rekey on
   * the active, a restored snapshot, a node active again).  Another set
   * voids them: unseal shares would combine with the new set's, and a rekey
   * awaiting verification would replace the newer rekey's set on the
   * authority of revoked shares. */
  if (s->cer != CS_SEAL_CEREMONY_NONE && !keyset_equal(&s->ks, &ks)) {
    if (s->cer != CS_SEAL_CEREMONY_UNSEAL)
      cs_warn("the key set changed (a rekey on another node, or a restore): the %s in progress "
              "ended", s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT ? "generate-root attempt" : "rekey");
    cs_seal__end_ceremony(s);
  }
  cs_seal__keyset_free(&s->ks);
  s->ks = ks;
  if (s->state == CS_SEAL_UNINITIALIZED)
    cs_seal__set_state(s, CS_SEAL_SEALED, NULL, NULL);
  return 1;
}
