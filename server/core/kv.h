/*
 * kv: key/value secrets.  A secret at user path P ("app/db") holds a set of
 * fields and is stored at "kv/P" as a custos.KvData under the barrier.
 *
 * Paths: 1..512 bytes of printable ASCII without "//", "." or ".."
 * segments, not starting or ending with '/'.  Listing a prefix returns the
 * next path segment of every secret below it; sub-folders end in '/'.
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
#define CS_KV_PATH_MAX 512

/* 0 when `path` is a valid secret path (CS_EINVAL with a detail otherwise).
 * `is_prefix` allows the empty path and a trailing '/'. */
int cs_kv_check_path(const char *path, int is_prefix) __attribute__((warn_unused_result));

/* Encrypts fields (n pairs) for `path` and stages the put in b. */
int cs_kv_stage_put(cs_keyring *k, const char *path, Custos__KvPair *const *pairs, size_t n,
                    cs_batch *b) __attribute__((warn_unused_result));
/* Stages a delete; CS_ENOTFOUND when the secret does not exist. */
int cs_kv_stage_delete(cs_store *st, const char *path, cs_batch *b) __attribute__((warn_unused_result));

/* Reads and decrypts a secret: *out is freed with cs_kv_data_free. */
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
