/*
 * token: bearer tokens.
 *
 * A token is "cs." followed by 43 base64url characters (32 random bytes).
 * Only its SHA-256 is stored: core/token/<hex sha256> holds a
 * custos.TokenEntry under the barrier.  Lookup is by hash, so the secret
 * token is never compared byte-by-byte against stored data; the server
 * never keeps tokens in the clear.
 */
#ifndef CS_TOKEN_H
#define CS_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "custos.pb-c.h"
#include "keyring.h"
#include "store.h"

#define CS_TOKEN_MAX 64
#define CS_TOKEN_PATH_MAX 80
#define CS_TOKEN_MAX_POLICIES 16 /* policies one token may hold */

/* A fresh random token (NUL-terminated) into out. */
int cs_token_generate(char out[CS_TOKEN_MAX]) __attribute__((warn_unused_result));
/* core/token/<hex sha256(token)> into path. */
void cs_token_path(const uint8_t *token, size_t len, char path[CS_TOKEN_PATH_MAX]);
/* Adds the encrypted entry for `token` to batch b. */
int cs_token_stage(cs_keyring *k, const char *token, const Custos__TokenEntry *e, cs_batch *b)
    __attribute__((warn_unused_result));
/*
 * The same for an entry that already exists (a renew): a conditional put
 * (cs_batch_put_if_exists), so a revoke committed before it, or queued
 * before it in the commit queue, wins and the token stays revoked.
 */
int cs_token_stage_renewal(cs_keyring *k, const char *token, const Custos__TokenEntry *e,
                           cs_batch *b) __attribute__((warn_unused_result));
/*
 * Looks a presented token up.  Returns 0 and *out (free with
 * cs_token_entry_free), or CS_EPERM when it is missing,
 * unknown or revoked, CS_EEXPIRED when past its expiry.
 */
int cs_token_lookup(cs_store *st, const cs_keyring *k, const uint8_t *token, size_t len,
                    int64_t now, Custos__TokenEntry **out) __attribute__((warn_unused_result));

/* Frees an entry of cs_token_lookup*: it lives in one arena (wire.h),
 * which is wiped whole. */
void cs_token_entry_free(Custos__TokenEntry *e);

/* The same by the token's SHA-256 (what cs_token_path names), for a caller
 * that keeps the hash of a token rather than the token itself. */
int cs_token_lookup_hash(cs_store *st, const cs_keyring *k, const uint8_t hash[32], int64_t now,
                         Custos__TokenEntry **out) __attribute__((warn_unused_result));

/* The SHA-256 a presented token is stored under: 0, or CS_EPERM for an
 * empty token or one too long to be any token (what cs_token_lookup says). */
int cs_token_hash(const uint8_t *token, size_t len, uint8_t hash[32])
    __attribute__((warn_unused_result));

/*
 * The SHA-256 of the token whose accessor is `accessor` (what the audit
 * log shows), into hash: 0, CS_ENOTFOUND, CS_EINVAL for an empty or
 * oversized accessor, or a storage error.  A scan of every token entry
 * (decrypting each): an operator action, not a request-path lookup;
 * about 1 us per stored token.
 */
#define CS_TOKEN_ACCESSOR_MAX 64
int cs_token_find_accessor(cs_store *st, const cs_keyring *k, const char *accessor,
                           uint8_t hash[32]) __attribute__((warn_unused_result));

/* Empties the token entry cache (see token.c).  custosd calls it from one
 * place, when its auth generation moved (server/api/authz.h): after a
 * token entry changed or disappeared, on seal, unseal and leadership
 * changes. */
void cs_token_cache_invalidate(void);

#endif
