/*
 * kv2: versioned key/value secrets (Vault's KV version 2), a storage
 * feature served by the protobuf ops kv2_* and the HTTP mount kv/.
 *
 * Storage layout (every value under the barrier, so counted by termcount.h
 * and re-encrypted by the rewrap like any other):
 *
 *   kv2/m/<path>                 the metadata record (custos.Kv2Meta)
 *   kv2/d/<path> <16 hex digits> version N's data (custos.KvData), e.g.
 *                                "kv2/d/app/db 000000000000000c" is v12
 *   kv2/config                   the mount's settings (custos.Kv2Config)
 *
 * The space between path and version cannot occur in a path (printable
 * ASCII 0x21..0x7e, as KV v1), so no path's versions can be mistaken for
 * another's, and all versions of one path are one contiguous key range
 * (the prefix "kv2/d/<path> ").
 * Paths are at most CS_KV2_PATH_MAX (488) bytes: the version key is the
 * longest, 6 + 488 + 1 + 16 = 511 = CS_STORE_KEY_MAX.
 *
 * The metadata lists every version still kept (oldest_version ..
 * current_version, ascending; destroyed ones included, without data).
 * Every change is a read-modify-write of that record, staged into ONE
 * batch (new version data, pruned versions' deletes, the new metadata)
 * behind a precondition (cs_batch_check) that the metadata record is still
 * the one read, or still absent.  So two writers racing on one path can
 * never both commit on the same state: the second batch fails with
 * CS_ECHANGED, changing nothing, and its caller reads again and rebuilds
 * (cs_kv2_build retries; a CAS write then fails properly against the
 * newer version).  A rewrap that re-encrypted the record meanwhile
 * changes its digest too: the write is rebuilt, never lost.
 *
 * Limits (CS_EINVAL with a detail past them): max_versions <=
 * CS_KV2_MAX_VERSIONS (1000; 0 means the mount's, whose 0 means 10);
 * custom metadata: at most 64 keys of 1..128 bytes and values of at most
 * 512 bytes, valid UTF-8 without NUL (Vault's limits); at most
 * CS_KV2_MAX_REQ_VERSIONS (1000) version numbers per delete, undelete or
 * destroy; version numbers start at 1; a secret's fields as KV v1.
 *
 * Times are Unix microseconds taken by the caller (the node that builds
 * the batch), so every cluster member stores the same.
 */
#ifndef CS_KV2_H
#define CS_KV2_H

#include <stddef.h>
#include <stdint.h>
#include "custos.pb-c.h"
#include "keyring.h"
#include "store.h"

#define CS_KV2_META_PREFIX "kv2/m/"
#define CS_KV2_DATA_PREFIX "kv2/d/"
#define CS_KV2_CONFIG_PATH "kv2/config"
#define CS_KV2_PATH_MAX 488
#define CS_KV2_MAX_VERSIONS 1000
#define CS_KV2_DEFAULT_VERSIONS 10
#define CS_KV2_MAX_REQ_VERSIONS 1000
#define CS_KV2_CUSTOM_MAX 64
#define CS_KV2_CUSTOM_KEY_MAX 128
#define CS_KV2_CUSTOM_VALUE_MAX 512
/* delete_version_after at most 100 years (microseconds must fit int64). */
#define CS_KV2_DELETE_AFTER_MAX ((uint64_t)100 * 366 * 86400)

typedef struct cs_kv2_version {
  uint64_t version;
  int64_t created, deleted; /* deleted 0: not deleted */
  int destroyed;
} cs_kv2_version;

typedef struct cs_kv2_pair {
  char *key, *value;
} cs_kv2_pair;

typedef struct cs_kv2_meta {
  uint64_t current, oldest;
  uint32_t max_versions;
  int cas_required;
  uint64_t delete_after; /* seconds; 0: never */
  cs_kv2_pair *custom;
  size_t n_custom;
  int64_t created, updated;
  cs_kv2_version *v; /* ascending */
  size_t n_v;
} cs_kv2_meta;

typedef struct cs_kv2_config {
  uint32_t max_versions;
  int cas_required;
  uint64_t delete_after;
} cs_kv2_config;

/* 0 when path is a valid versioned-secret path (is_prefix: a list prefix,
 * which may be empty or end in '/'); CS_EINVAL with a detail. */
int cs_kv2_check_path(const char *path, int is_prefix) __attribute__((warn_unused_result));

/* Custom metadata pairs (as on the wire): the limits above, distinct keys. */
int cs_kv2_check_custom(Custos__KvPair *const *pairs, size_t n) __attribute__((warn_unused_result));

/* Reads and decrypts the metadata of path into *m (free with
 * cs_kv2_meta_free).  CS_ENOTFOUND when there is none; CS_ESTORECORRUPT
 * when it does not parse or breaks its invariants. */
int cs_kv2_meta_load(cs_store *st, const cs_keyring *k, const char *path, cs_kv2_meta *m)
    __attribute__((warn_unused_result));
void cs_kv2_meta_free(cs_kv2_meta *m);
/* The entry of version n in m, or NULL. */
const cs_kv2_version *cs_kv2_meta_find(const cs_kv2_meta *m, uint64_t n);
/* 1 when v counts as deleted at `now` (a deletion time at or before it). */
int cs_kv2_is_deleted(const cs_kv2_version *v, int64_t now);

/* The mount's settings (all zero when never set). */
int cs_kv2_config_load(cs_store *st, const cs_keyring *k, cs_kv2_config *c)
    __attribute__((warn_unused_result));
/* The precondition of a settings write: b fails with CS_ECHANGED unless the
 * stored record is, at commit, the one stored now (or still none).  Call
 * it BEFORE cs_kv2_config_load: a write landing in between then fails the
 * check instead of being overwritten (read again and rebuild). */
int cs_kv2_config_check(cs_store *st, cs_batch *b) __attribute__((warn_unused_result));
int cs_kv2_stage_config(cs_keyring *k, const cs_kv2_config *c, cs_batch *b)
    __attribute__((warn_unused_result));

/* What a write asks for (one of the kinds). */
typedef enum cs_kv2_kind {
  CS_KV2_PUT,
  CS_KV2_DELETE,    /* versions; none: the current one */
  CS_KV2_UNDELETE,
  CS_KV2_DESTROY,
  CS_KV2_META_PUT,
  CS_KV2_META_DELETE,
} cs_kv2_kind;

typedef struct cs_kv2_write {
  cs_kv2_kind kind;
  const char *path;
  /* PUT */
  Custos__KvPair *const *data;
  size_t n_data;
  int has_cas;
  uint64_t cas;
  /* DELETE, UNDELETE, DESTROY */
  const uint64_t *versions;
  size_t n_versions;
  /* META_PUT: each has_* says whether it is given */
  int has_max, has_cas_required, has_delete_after, set_custom;
  uint32_t max_versions;
  int cas_required;
  uint64_t delete_after;
  Custos__KvPair *const *custom;
  size_t n_custom;
  /* Optional: when not NULL and the build succeeds, *after receives the
   * metadata as the batch writes it (free with cs_kv2_meta_free; zeroed
   * when there was nothing to write). */
  cs_kv2_meta *after;
} cs_kv2_write;

/*
 * Builds write w at time now (Unix microseconds) into b, which must be
 * empty: reads the metadata (and the mount's settings), checks, encrypts,
 * and stages the batch with its precondition.  *written (may be NULL) gets
 * the version a PUT wrote.  b may be left empty when there is nothing to
 * do (a delete of what is already deleted, of a secret that does not
 * exist): that is success, answer without committing.  Errors: CS_EINVAL
 * (bad input, a missing cas where it is required), CS_ECASMISMATCH,
 * CS_ELIMIT (2^64 - 1 versions), CS_ENOMEM, store and barrier errors.
 * When the commit of b fails with CS_ECHANGED, clear b and build again.
 */
int cs_kv2_build(cs_store *st, cs_keyring *k, const cs_kv2_write *w, int64_t now, cs_batch *b,
                 cs_kv2_version *written) __attribute__((warn_unused_result));

/*
 * Reads version `version` (0: the current one) of path: *m the metadata
 * (always, on success), *data the fields (NULL when the version is deleted
 * at `now` or destroyed; free with cs_kv_data_free), *ver its entry in m.
 * CS_ENOTFOUND when the secret, or that version, does not exist (pruned,
 * never written, metadata without versions).
 */
int cs_kv2_get(cs_store *st, const cs_keyring *k, const char *path, uint64_t version, int64_t now,
               cs_kv2_meta *m, Custos__KvData **data, const cs_kv2_version **ver)
    __attribute__((warn_unused_result));

/* The folder a list of prefix covers ("app" and "app/" -> "app/"). */
void cs_kv2_list_folder(const char *prefix, char *out, size_t cap);
/* Lists the entries below prefix that have metadata (cs_store_list_free). */
int cs_kv2_list(cs_store *st, const char *prefix, char ***keys, size_t *n)
    __attribute__((warn_unused_result));

/* The storage keys of path's metadata and of its version n
 * (out: CS_STORE_KEY_MAX + 1 bytes). */
void cs_kv2_meta_key(const char *path, char *out);
void cs_kv2_data_key(const char *path, uint64_t n, char *out);

#endif
