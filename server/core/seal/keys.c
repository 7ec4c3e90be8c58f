/*
 * keys: the sealed values of the key hierarchy (see seal.h): staging them
 * into a batch, reading and opening them.  Nothing here changes the seal's
 * memory; callers install what they read through set_state only once
 * everything they need has been read.
 */
#include "seal_int.h"
#include "barrier.h"
#include "cs_error.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

/* Seals `pt` under `key` (term 0) and stages it at `path`. */
int cs_seal__stage_sealed(cs_batch *b, const uint8_t *key, const char *path, const uint8_t *pt,
                          size_t len) {
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_barrier_seal_with(key, 0, path, pt, len, &ct, &ct_len);
  if (rc < 0)
    return rc;
  rc = cs_batch_put(b, path, ct, ct_len);
  free(ct);
  return rc;
}

int cs_seal__stage_keyring(cs_batch *b, const uint8_t *root_key, const cs_keyring *k) {
  uint8_t *pt;
  size_t len;
  int rc = cs_keyring_encode(k, &pt, &len);
  if (rc < 0)
    return rc;
  rc = cs_seal__stage_sealed(b, root_key, P_KEYRING, pt, len);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

uint64_t cs_seal__total_encryptions(const cs_keyring *k) {
  uint64_t sum = 0;
  cs_term_info ti;
  for (size_t i = 0; i < cs_keyring_count(k); i++) {
    cs_keyring_info(k, i, &ti);
    sum += ti.encryptions;
  }
  return sum;
}

/* Reads and opens a term-0 sealed value. */
static int read_sealed(cs_seal *s, const uint8_t *key, const char *path, uint8_t **pt,
                       size_t *len) {
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_store_get(s->opts.store, path, &ct, &ct_len);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ESTORECORRUPT, "%s is missing", path);
  if (rc < 0)
    return rc;
  rc = cs_barrier_open_with(key, path, ct, ct_len, pt, len);
  free(ct);
  return rc;
}

/* Opens the root key with a candidate KEK: CS_EKEYMISMATCH when the KEK is
 * wrong (GCM tag), nothing changed. */
int cs_seal__open_root_key(cs_seal *s, const uint8_t *kek, uint8_t *root_key) {
  uint8_t *pt = NULL;
  size_t len;
  int rc = read_sealed(s, kek, P_UNSEAL_ROOT, &pt, &len);
  if (rc == CS_EAUTH)
    return cs_error_set(CS_EKEYMISMATCH, "unseal key does not match");
  if (rc < 0)
    return rc;
  if (len != CS_KEY_LEN)
    rc = cs_error_set(CS_ESTORECORRUPT, "root key has the wrong length");
  else
    memcpy(root_key, pt, CS_KEY_LEN);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

/* Reads core/keyring with the root key into a fresh keyring. */
int cs_seal__read_keyring(cs_seal *s, const uint8_t *root, cs_keyring **out) {
  uint8_t *pt = NULL;
  size_t len = 0;
  int rc = read_sealed(s, root, P_KEYRING, &pt, &len);
  if (rc < 0)
    return rc;
  rc = cs_keyring_decode(pt, len, out);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

/* core/rotate-config under `kr` into *rot; the defaults when there is none. */
int cs_seal__load_rotate_config(cs_seal *s, const cs_keyring *kr, cs_rotate_config *rot) {
  *rot = (cs_rotate_config){.enabled = 1, .max_operations = CS_DEFAULT_MAX_OPS};
  uint8_t *pt;
  size_t pt_len;
  int rc = cs_barrier_get(s->opts.store, kr, P_ROTATE_CONFIG, &pt, &pt_len);
  if (rc == CS_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  Custos__RotateConfig *m = custos__rotate_config__unpack(NULL, pt_len, pt);
  free(pt);
  if (m == NULL)
    return cs_error_set(CS_ESTORECORRUPT, "core/rotate-config is corrupt");
  rot->enabled = m->enabled;
  rot->max_operations = m->max_operations;
  rot->interval_seconds = m->interval_seconds;
  custos__rotate_config__free_unpacked(m, NULL);
  return 0;
}
