/* token: see token.h. */
#include "token.h"
#include "barrier.h"
#include "crypto.h"
#include "cs_error.h"
#include "secmem.h"
#include "store.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int cs_token_generate(char out[CS_TOKEN_MAX]) {
  uint8_t raw[32];
  char b64[48];
  int rc = cs_random(raw, sizeof raw);
  if (rc < 0)
    return rc;
  cs_b64_encode(raw, sizeof raw, b64);
  /* base64url without padding, so the token is shell- and URL-safe. */
  size_t j = 0;
  memcpy(out, "cs.", 3);
  for (size_t i = 0; b64[i] != '\0' && b64[i] != '='; i++)
    out[3 + j++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  out[3 + j] = '\0';
  cs_wipe(raw, sizeof raw);
  cs_wipe(b64, sizeof b64);
  return 0;
}

void cs_token_path(const uint8_t *token, size_t len, char path[CS_TOKEN_PATH_MAX]) {
  uint8_t h[32];
  cs_sha256(token, len, h);
  memcpy(path, "core/token/", 11);
  cs_hex_encode(h, sizeof h, path + 11);
}

/* Encrypts the entry for `path`; a renewal is a conditional put. */
static int stage(cs_keyring *k, const char *token, const Custos__TokenEntry *e, int renewal,
                 cs_batch *b) {
  char path[CS_TOKEN_PATH_MAX];
  cs_token_path((const uint8_t *)token, strlen(token), path);
  size_t n = custos__token_entry__get_packed_size(e);
  uint8_t *pt = malloc(n ? n : 1), *ct = NULL;
  size_t ct_len = 0;
  if (pt == NULL)
    return CS_ENOMEM;
  custos__token_entry__pack(e, pt);
  int rc = cs_barrier_encrypt(k, path, pt, n, &ct, &ct_len);
  free(pt);
  if (rc < 0)
    return rc;
  rc = renewal ? cs_batch_put_if_exists(b, path, ct, ct_len) : cs_batch_put(b, path, ct, ct_len);
  free(ct);
  return rc;
}

int cs_token_stage(cs_keyring *k, const char *token, const Custos__TokenEntry *e, cs_batch *b) {
  return stage(k, token, e, 0, b);
}

int cs_token_stage_renewal(cs_keyring *k, const char *token, const Custos__TokenEntry *e,
                           cs_batch *b) {
  return stage(k, token, e, 1, b);
}

/*
 * A small direct-mapped cache of token entries (decrypted TokenEntry bytes,
 * keyed by the token's SHA-256 and the store), so a busy client does not
 * cost an LMDB read and an AES-GCM decrypt per request.  Entries hold no
 * secret (the token itself is never kept).  The cache's bytes never leave
 * this file: a lookup unpacks its own copy before anything else can touch
 * the slot, so no later lookup can free what a caller holds (issue 10).
 * A missing token is not cached and does not evict a present one.
 * cs_token_cache_invalidate() empties it: the server calls it after a
 * token change is committed or applied (revoke, renew, and every raft entry
 * touching core/token/), on seal, on unseal and when a cluster node becomes
 * active, so a revoked token is refused at once.  Expiry is checked on
 * every lookup.  Loop thread only.
 */
#define CACHE_SLOTS 1024

typedef struct cache_slot {
  uint8_t hash[32];
  const cs_store *st;   /* NULL: empty */
  uint8_t *pt;
  size_t len;
} cache_slot;

static cache_slot cache[CACHE_SLOTS];

void cs_token_cache_invalidate(void) {
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    free(cache[i].pt);
    memset(&cache[i], 0, sizeof cache[i]);
  }
}

static cache_slot *slot_for(const uint8_t hash[32]) {
  return &cache[((size_t)hash[0] << 8 | hash[1]) % CACHE_SLOTS];
}

/* A stored entry (at `key`, for the error) into *out: 0, CS_ESTORECORRUPT
 * when it does not parse, CS_ENOMEM. */
static int unpack_entry(const uint8_t *pt, size_t len, const char *key, Custos__TokenEntry **out) {
  ProtobufCMessage *m;
  int rc = cs_wire_unpack(&custos__token_entry__descriptor, pt, len, &m);
  *out = (Custos__TokenEntry *)m;
  if (rc == CS_EPROTO || rc == CS_ETOOBIG)
    return cs_error_set(CS_ESTORECORRUPT, "token entry %s%sdoes not parse", key, *key ? " " : "");
  return rc;
}

/* The entry of the token whose SHA-256 is `hash`, unpacked into *out
 * (owned by the caller): from the cache, or read, decrypted and cached. */
static int entry_unpack(cs_store *st, const cs_keyring *k, const uint8_t hash[32],
                        Custos__TokenEntry **out) {
  cache_slot *c = slot_for(hash);
  if (c->st != st || !cs_ct_equal(c->hash, hash, 32)) {
    char path[CS_TOKEN_PATH_MAX];
    memcpy(path, "core/token/", 11);
    cs_hex_encode(hash, 32, path + 11);
    uint8_t *buf;
    size_t n;
    int rc = cs_barrier_get(st, k, path, &buf, &n);
    if (rc < 0)
      return rc;
    free(c->pt);
    memcpy(c->hash, hash, 32);
    c->st = st;
    c->pt = buf;
    c->len = n;
  }
  return unpack_entry(c->pt, c->len, "", out);
}

void cs_token_entry_free(Custos__TokenEntry *e) {
  if (e != NULL)
    cs_wire_unpacked_free(&e->base);
}

int cs_token_lookup_hash(cs_store *st, const cs_keyring *k, const uint8_t hash[32], int64_t now,
                         Custos__TokenEntry **out) {
  Custos__TokenEntry *e;
  int rc = entry_unpack(st, k, hash, &e);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_EPERM, "permission denied: invalid token");
  if (rc < 0)
    return rc;
  if (e->expire_time != 0 && now >= e->expire_time) {
    cs_token_entry_free(e);
    return cs_error_set(CS_EEXPIRED, "permission denied: token expired");
  }
  *out = e;
  return 0;
}

int cs_token_hash(const uint8_t *token, size_t len, uint8_t hash[32]) {
  if (len == 0)
    return cs_error_set(CS_EPERM, "permission denied: no token");
  if (len >= CS_TOKEN_MAX)
    return cs_error_set(CS_EPERM, "permission denied: invalid token");
  cs_sha256(token, len, hash);
  return 0;
}

int cs_token_lookup(cs_store *st, const cs_keyring *k, const uint8_t *token, size_t len,
                    int64_t now, Custos__TokenEntry **out) {
  uint8_t hash[32];
  int rc = cs_token_hash(token, len, hash);
  if (rc < 0)
    return rc;
  return cs_token_lookup_hash(st, k, hash, now, out);
}

/* ---------------------------------------------------------------- by accessor */

typedef struct find_ctx {
  const cs_keyring *k;
  const char *accessor;
  size_t len;
  int found;
  uint8_t hash[32];
  int err;
} find_ctx;

static int find_one(void *arg, const char *key, size_t key_len, const uint8_t *val,
                    size_t val_len) {
  find_ctx *f = arg;
  /* core/token/<64 hex> */
  size_t hl;
  if (key_len != 11 + 64 || cs_hex_decode(key + 11, f->hash, sizeof f->hash, &hl) != 0 ||
      hl != 32)
    return 0;
  uint8_t *pt;
  size_t n;
  int rc = cs_barrier_decrypt(f->k, key, val, val_len, &pt, &n);
  if (rc < 0) {
    f->err = rc;
    return rc;
  }
  Custos__TokenEntry *e;
  rc = unpack_entry(pt, n, key, &e);
  cs_wipe(pt, n);
  free(pt);
  if (rc < 0) {
    f->err = rc;
    return f->err;
  }
  int match = e->accessor != NULL && strlen(e->accessor) == f->len &&
              cs_ct_equal(e->accessor, f->accessor, f->len);
  cs_token_entry_free(e);
  if (match) {
    f->found = 1;
    return 1;
  }
  return 0;
}

int cs_token_find_accessor(cs_store *st, const cs_keyring *k, const char *accessor,
                           uint8_t hash[32]) {
  size_t len = strlen(accessor);
  if (len == 0 || len > CS_TOKEN_ACCESSOR_MAX)
    return cs_error_set(CS_EINVAL, "an accessor is 1..%d characters", CS_TOKEN_ACCESSOR_MAX);
  find_ctx f = {.k = k, .accessor = accessor, .len = len};
  int rc = cs_store_scan(st, "core/token/", find_one, &f);
  if (rc < 0)
    return f.err < 0 ? f.err : rc;
  if (!f.found)
    return cs_error_set(CS_ENOTFOUND, "no token with accessor %s", accessor);
  memcpy(hash, f.hash, 32);
  return 0;
}
