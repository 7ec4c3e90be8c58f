/* barrier: see barrier.h. */
#include "barrier.h"
#include "cs_error.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

#define HDR (4 + 1 + CS_NONCE_LEN)

int cs_barrier_seal_with(const uint8_t key[CS_KEY_LEN], uint32_t term, const char *path,
                         const uint8_t *pt, size_t len, uint8_t **out, size_t *out_len) {
  size_t n = len + CS_BARRIER_OVERHEAD;
  uint8_t *buf = malloc(n);
  if (buf == NULL)
    return CS_ENOMEM;
  buf[0] = (uint8_t)(term >> 24);
  buf[1] = (uint8_t)(term >> 16);
  buf[2] = (uint8_t)(term >> 8);
  buf[3] = (uint8_t)term;
  buf[4] = CS_BARRIER_VERSION;
  int rc = cs_random(buf + 5, CS_NONCE_LEN);
  if (rc == 0)
    rc = cs_gcm_seal(key, buf + 5, (const uint8_t *)path, strlen(path), pt, len, buf + HDR,
                     buf + HDR + len);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  *out_len = n;
  return 0;
}

int cs_barrier_term_of(const uint8_t *ct, size_t len, uint32_t *term) {
  if (len < CS_BARRIER_OVERHEAD)
    return cs_error_set(CS_ESTORECORRUPT, "ciphertext of %zu bytes is too short", len);
  *term = ((uint32_t)ct[0] << 24) | ((uint32_t)ct[1] << 16) | ((uint32_t)ct[2] << 8) | ct[3];
  return 0;
}

/* Opens ct into a fresh buffer *out of head + *out_len bytes, the
 * plaintext at *out + head (the first head bytes are the caller's). */
static int open_into(const uint8_t key[CS_KEY_LEN], const char *path, const uint8_t *ct,
                     size_t len, size_t head, uint8_t **out, size_t *out_len) {
  uint32_t term = 0;
  int rc = cs_barrier_term_of(ct, len, &term);
  if (rc < 0)
    return rc;
  if (ct[4] != CS_BARRIER_VERSION)
    return cs_error_set(CS_ESTORECORRUPT, "unknown barrier version %u at path %s", ct[4], path);
  size_t n = len - CS_BARRIER_OVERHEAD;
  if (head > SIZE_MAX - n - 1)
    return CS_ENOMEM;
  uint8_t *buf = malloc(head + n + 1); /* + 1: malloc(0) may be NULL */
  if (buf == NULL)
    return CS_ENOMEM;
  uint8_t *pt = buf + head;
  rc = cs_gcm_open(key, ct + 5, (const uint8_t *)path, strlen(path), ct + HDR, n, ct + HDR + n, pt);
  if (rc < 0) {
    free(buf);
    if (rc == CS_EAUTH)
      return cs_error_set(CS_EAUTH, "authentication failed for path %s", path);
    return rc;
  }
  *out = buf;
  *out_len = n;
  return 0;
}

int cs_barrier_open_with(const uint8_t key[CS_KEY_LEN], const char *path, const uint8_t *ct,
                         size_t len, uint8_t **out, size_t *out_len) {
  return open_into(key, path, ct, len, 0, out, out_len);
}

int cs_barrier_encrypt(cs_keyring *k, const char *path, const uint8_t *pt, size_t len,
                       uint8_t **out, size_t *out_len) {
  uint32_t term = cs_keyring_active(k);
  const uint8_t *key = cs_keyring_key(k, term);
  if (key == NULL)
    return cs_error_set(CS_ESEALED, "barrier has no active key");
  cs_keyring_count_encryption(k, term);
  return cs_barrier_seal_with(key, term, path, pt, len, out, out_len);
}

/* The error for a value under a term whose key we lack: a retired term is
 * named with its retirement date, because an operator reading "no key"
 * would look for a missed upgrade instead of a value left behind. */
static int missing_key(const cs_keyring *k, uint32_t term, const char *path) {
  cs_term_info ti;
  if (cs_keyring_term_info(k, term, &ti) == 0 && ti.state == CS_TERM_RETIRED) {
    char when[32];
    cs_rfc3339(ti.retirement_time, when, sizeof when);
    return cs_error_set(CS_ETERMRETIRED, "term %u was retired on %s (path %s)", term, when, path);
  }
  return cs_error_set(CS_ENOTERM, "no key for term %u (path %s)", term, path);
}

/* cs_barrier_decrypt into open_into's layout. */
static int decrypt_into(const cs_keyring *k, const char *path, const uint8_t *ct, size_t len,
                        size_t head, uint8_t **out, size_t *out_len) {
  uint32_t term = 0;
  int rc = cs_barrier_term_of(ct, len, &term);
  if (rc < 0)
    return rc;
  const uint8_t *key = cs_keyring_key(k, term);
  if (key == NULL)
    return missing_key(k, term, path);
  return open_into(key, path, ct, len, head, out, out_len);
}

int cs_barrier_decrypt(const cs_keyring *k, const char *path, const uint8_t *ct, size_t len,
                       uint8_t **out, size_t *out_len) {
  return decrypt_into(k, path, ct, len, 0, out, out_len);
}

int cs_barrier_stage_put(cs_keyring *k, cs_batch *b, const char *path, const uint8_t *pt,
                         size_t len) {
  uint8_t *ct;
  size_t ct_len;
  int rc = cs_barrier_encrypt(k, path, pt, len, &ct, &ct_len);
  if (rc < 0)
    return rc;
  rc = cs_batch_put(b, path, ct, ct_len);
  free(ct);
  return rc;
}

typedef struct get_ctx {
  const cs_keyring *k;
  const char *path;
  size_t head;
  uint8_t **buf;
  size_t *len;
} get_ctx;

static int decrypt_from_map(void *arg, const uint8_t *ct, size_t len) {
  get_ctx *g = arg;
  return decrypt_into(g->k, g->path, ct, len, g->head, g->buf, g->len);
}

int cs_barrier_get_spaced(cs_store *st, const cs_keyring *k, const char *path, size_t head,
                          uint8_t **buf, size_t *len) {
  /* Straight from the map into the plaintext: no copy of the ciphertext. */
  get_ctx g = {k, path, head, buf, len};
  return cs_store_read(st, path, decrypt_from_map, &g);
}

int cs_barrier_get(cs_store *st, const cs_keyring *k, const char *path, uint8_t **pt, size_t *len) {
  return cs_barrier_get_spaced(st, k, path, 0, pt, len);
}

#define P_KEYRING "core/keyring"

int cs_barrier_stage_keyring(cs_batch *b, const uint8_t root_key[CS_KEY_LEN], const cs_keyring *k) {
  uint8_t *pt, *ct;
  size_t len, ct_len;
  int rc = cs_keyring_encode(k, &pt, &len);
  if (rc < 0)
    return rc;
  rc = cs_barrier_seal_with(root_key, 0, P_KEYRING, pt, len, &ct, &ct_len);
  cs_wipe(pt, len);
  free(pt);
  if (rc < 0)
    return rc;
  rc = cs_batch_put(b, P_KEYRING, ct, ct_len);
  free(ct);
  return rc;
}

int cs_barrier_open_keyring(const uint8_t root_key[CS_KEY_LEN], const uint8_t *ct, size_t len,
                            cs_keyring **out) {
  uint8_t *pt = NULL;
  size_t pt_len = 0;
  int rc = cs_barrier_open_with(root_key, P_KEYRING, ct, len, &pt, &pt_len);
  if (rc < 0)
    return rc;
  rc = cs_keyring_decode(pt, pt_len, out);
  cs_wipe(pt, pt_len);
  free(pt);
  return rc;
}
