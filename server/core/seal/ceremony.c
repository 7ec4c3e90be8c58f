/*
 * ceremony: the shares collected for one unseal, rekey or rekey
 * verification, in locked memory, with the nonce that names the attempt.
 * What a ceremony is for, and when it ends, is the seal state's business
 * (s->cer, state.c); this file only holds and combines shares.
 */
#include "seal_int.h"
#include "cs_error.h"
#include "crypto.h"
#include "secmem.h"

#include <stdio.h>
#include <string.h>

size_t cs_seal__share_len(unsigned n) { return n == 1 ? CS_KEY_LEN : CS_SHARE_LEN; }

static int make_nonce(char out[CS_NONCE_STR]) {
  uint8_t r[16];
  int rc = cs_random(r, sizeof r);
  if (rc < 0)
    return rc;
  r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* UUID v4 */
  r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
  snprintf(out, CS_NONCE_STR,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
           r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
  return 0;
}

int cs_seal__ceremony_start(ceremony *c) {
  if (c->parts == NULL && (c->parts = cs_secmem_alloc(PARTS_BYTES)) == NULL)
    return CS_ENOMEM;
  c->count = 0;
  return make_nonce(c->nonce);
}

void cs_seal__ceremony_clear(ceremony *c) {
  if (c->parts != NULL)
    cs_wipe(c->parts, PARTS_BYTES);
  c->count = 0;
  c->nonce[0] = '\0';
}

/* Forgets the shares but keeps the nonce: the ceremony goes on. */
void cs_seal__ceremony_drop_parts(ceremony *c) {
  if (c->parts != NULL)
    cs_wipe(c->parts, PARTS_BYTES);
  c->count = 0;
}

void cs_seal__ceremony_free(ceremony *c) {
  cs_secmem_free(c->parts, PARTS_BYTES);
  c->parts = NULL;
  c->count = 0;
  c->nonce[0] = '\0';
}

/* 1 when `share` was already submitted to c (constant time per part). */
int cs_seal__ceremony_has(const ceremony *c, const uint8_t *share, size_t len) {
  int found = 0;
  for (unsigned i = 0; i < c->count; i++)
    found |= cs_ct_equal(c->parts + (size_t)i * CS_SHARE_LEN, share, len);
  return found;
}

void cs_seal__ceremony_add(ceremony *c, const uint8_t *share, size_t len) {
  memcpy(c->parts + (size_t)c->count * CS_SHARE_LEN, share, len);
  c->count++;
}

/* Rebuilds the KEK from the collected shares into kek (CS_KEY_LEN). */
int cs_seal__ceremony_combine(const ceremony *c, const keyset *ks, uint8_t *kek) {
  if (ks->n == 1) {
    memcpy(kek, c->parts, CS_KEY_LEN);
    return 0;
  }
  const uint8_t *ptrs[CS_SHAMIR_MAX_SHARES];
  for (unsigned i = 0; i < c->count; i++)
    ptrs[i] = c->parts + (size_t)i * CS_SHARE_LEN;
  return cs_shamir_combine(ptrs, c->count, CS_SHARE_LEN, kek);
}
