/*
 * kv: key/value secrets.  A secret at user path P ("app/db") holds a set of
 * fields and is stored at "kv/P" as a custos.KvData under the barrier.
 *
 * Paths: 1..CS_KV_PATH_MAX (508) bytes of printable ASCII (0x21..0x7e)
 * without empty, "." or ".." segments, not starting or ending with '/'.
 * 508 is what fits: "kv/" + path is the storage key, at most
 * CS_STORE_KEY_MAX (511) bytes.  The server checks this before
 * authorization, so every layer sees the same limit.  Listing a prefix
 * returns the next path segment of every secret below it; sub-folders end
 * in '/'.
 *
 * A secret has 1..CS_KV_MAX_FIELDS (1024) fields with distinct names of
 * 1..CS_KV_FIELD_NAME_MAX (1024) bytes (any UTF-8 but NUL: the wire
 * refuses NUL and invalid UTF-8 in every string).
 *
 * Writes are staged into a batch that the caller commits (the server
 * groups many clients' writes into one commit).
 */
#ifndef CS_KV_H
#define CS_KV_H

#include <stddef.h>
#include "custos.pb-c.h"
#include "keyring.h"
#include "store.h"

#define CS_KV_PREFIX "kv/"
#define CS_KV_PATH_MAX (CS_STORE_KEY_MAX - (int)(sizeof CS_KV_PREFIX - 1)) /* 508 */
#define CS_KV_MAX_FIELDS 1024
#define CS_KV_FIELD_NAME_MAX 1024

/* 0 when `path` is a valid secret path (CS_EINVAL with a detail otherwise).
 * `is_prefix` allows the empty path and a trailing '/'. */
int cs_kv_check_path(const char *path, int is_prefix) __attribute__((warn_unused_result));

/* 0 when n pairs make a valid secret: 1..CS_KV_MAX_FIELDS fields, names
 * of 1..CS_KV_FIELD_NAME_MAX bytes and distinct (checked in O(n log n));
 * CS_EINVAL with a detail, or CS_ENOMEM. */
int cs_kv_check_fields(Custos__KvPair *const *pairs, size_t n) __attribute__((warn_unused_result));

/* Encrypts fields (n pairs) for `path` and stages the put in b.  Paths
 * under "kv/" are refused (CS_EINVAL): they are the versioned mount's
 * policy paths (kv2.h), so a v1 secret there would share their rules. */
int cs_kv_stage_put(cs_keyring *k, const char *path, Custos__KvPair *const *pairs, size_t n,
                    cs_batch *b) __attribute__((warn_unused_result));
/* Stages a delete; CS_ENOTFOUND when the secret does not exist. */
int cs_kv_stage_delete(cs_store *st, const char *path, cs_batch *b) __attribute__((warn_unused_result));

/* Reads and decrypts a secret as stored: its KvData encoded, *len bytes at
 * *buf + head (the first head bytes are the caller's; wipe and free *buf,
 * head + *len bytes).  CS_ENOTFOUND, or the barrier's error. */
int cs_kv_get_encoded(cs_store *st, const cs_keyring *k, const char *path, size_t head,
                      uint8_t **buf, size_t *len) __attribute__((warn_unused_result));
/* Decodes what cs_kv_get_encoded read (path: for the error). */
int cs_kv_data_decode(const char *path, const uint8_t *pt, size_t len, Custos__KvData **out)
    __attribute__((warn_unused_result));
/* Whether what cs_kv_get_encoded read is a well-formed KvData, without
 * decoding it (cs_wire_check): 0 or CS_ESTORECORRUPT. */
int cs_kv_data_check(const char *path, const uint8_t *pt, size_t len)
    __attribute__((warn_unused_result));
/* Both: *out is freed with cs_kv_data_free. */
int cs_kv_get(cs_store *st, const cs_keyring *k, const char *path, Custos__KvData **out)
    __attribute__((warn_unused_result));
void cs_kv_data_free(Custos__KvData *d);

/* The folder listing `prefix` covers: "app" and "app/" both list "app/"
 * (also what a list is authorized against).  out has room for cap bytes. */
void cs_kv_list_folder(const char *prefix, char *out, size_t cap);
/* Lists the entries below `prefix` (free with cs_store_list_free). */
int cs_kv_list(cs_store *st, const char *prefix, char ***keys, size_t *n)
    __attribute__((warn_unused_result));

#endif
