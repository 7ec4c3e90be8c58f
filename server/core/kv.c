/* kv: see kv.h. */
#include "kv.h"
#include "barrier.h"
#include "cs_error.h"
#include "secmem.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof CS_KV_PREFIX - 1 + CS_KV_PATH_MAX <= CS_STORE_KEY_MAX,
               "a kv path must fit a storage key");

int cs_kv_check_path(const char *path, int is_prefix) {
  size_t n = strlen(path);
  if (n == 0 && !is_prefix)
    return cs_error_set(CS_EINVAL, "path is empty");
  if (n > CS_KV_PATH_MAX)
    return cs_error_set(CS_EINVAL, "path is longer than %d bytes", CS_KV_PATH_MAX);
  if (n == 0)
    return 0;
  if (path[0] == '/' || (!is_prefix && path[n - 1] == '/'))
    return cs_error_set(CS_EINVAL, "path must not start%s with '/'", is_prefix ? "" : " or end");
  const char *seg = path;
  for (size_t i = 0; i <= n; i++) {
    unsigned char c = (unsigned char)path[i];
    if (c == '/' || c == '\0') {
      size_t len = (size_t)(path + i - seg);
      if (len == 0 && !(c == '\0' && is_prefix))
        return cs_error_set(CS_EINVAL, "path has an empty segment");
      if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
        return cs_error_set(CS_EINVAL, "path has a '.' or '..' segment");
      seg = path + i + 1;
    } else if (c < 0x21 || c > 0x7e) {
      return cs_error_set(CS_EINVAL, "path has a character outside printable ASCII");
    }
  }
  return 0;
}

static int cmp_field(const void *a, const void *b) {
  return strcmp((*(Custos__KvPair *const *)a)->key, (*(Custos__KvPair *const *)b)->key);
}

int cs_kv_check_fields(Custos__KvPair *const *pairs, size_t n) {
  if (n == 0)
    return cs_error_set(CS_EINVAL, "a secret needs at least one field");
  if (n > CS_KV_MAX_FIELDS)
    return cs_error_set(CS_EINVAL, "a secret has at most %d fields, this one has %zu",
                        CS_KV_MAX_FIELDS, n);
  for (size_t i = 0; i < n; i++) {
    if (pairs[i]->key == NULL || pairs[i]->key[0] == '\0')
      return cs_error_set(CS_EINVAL, "field %zu has an empty name", i + 1);
    if (strlen(pairs[i]->key) > CS_KV_FIELD_NAME_MAX)
      return cs_error_set(CS_EINVAL, "field %zu has a name longer than %d bytes", i + 1,
                          CS_KV_FIELD_NAME_MAX);
  }
  /* Sorted copy, so a duplicate is a neighbour: O(n log n), not n^2 compares
   * on the event loop. */
  Custos__KvPair **sorted = malloc(n * sizeof *sorted);
  if (sorted == NULL)
    return CS_ENOMEM;
  memcpy(sorted, pairs, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_field);
  int rc = 0;
  for (size_t i = 1; i < n && rc == 0; i++)
    if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
      rc = cs_error_set(CS_EINVAL, "field %s is given twice", sorted[i]->key);
  free(sorted);
  return rc;
}

static void store_key(const char *path, char *out) {
  memcpy(out, CS_KV_PREFIX, sizeof CS_KV_PREFIX - 1);
  strcpy(out + sizeof CS_KV_PREFIX - 1, path);
}

int cs_kv_stage_put(cs_keyring *k, const char *path, Custos__KvPair *const *pairs, size_t n,
                    cs_batch *b) {
  char key[CS_KV_PATH_MAX + sizeof CS_KV_PREFIX];
  int rc = cs_kv_check_path(path, 0);
  if (rc < 0)
    return rc;
  if ((rc = cs_kv_check_fields(pairs, n)) < 0)
    return rc;
  /* The versioned mount's policy paths are kv/data/..., kv/metadata/...
   * (kv2.h): a new KV v1 secret there would share their policy rules. */
  if (strncmp(path, "kv/", 3) == 0)
    return cs_error_set(CS_EINVAL, "paths under kv/ are reserved for the versioned mount's "
                        "policy paths: write versioned secrets with kv2 (custos kv put --mount kv)");
  store_key(path, key);
  Custos__KvData d = CUSTOS__KV_DATA__INIT;
  d.n_data = n;
  d.data = (Custos__KvPair **)pairs;
  size_t len = custos__kv_data__get_packed_size(&d);
  uint8_t *pt = malloc(len ? len : 1);
  if (pt == NULL)
    return CS_ENOMEM;
  custos__kv_data__pack(&d, pt);
  rc = cs_barrier_stage_put(k, b, key, pt, len);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

int cs_kv_stage_delete(cs_store *st, const char *path, cs_batch *b) {
  char key[CS_KV_PATH_MAX + sizeof CS_KV_PREFIX];
  int rc = cs_kv_check_path(path, 0);
  if (rc < 0)
    return rc;
  store_key(path, key);
  rc = cs_store_exists(st, key);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return cs_error_set(CS_ENOTFOUND, "no secret at %s", path);
  return cs_batch_del(b, key);
}

int cs_kv_get_encoded(cs_store *st, const cs_keyring *k, const char *path, size_t head,
                      uint8_t **buf, size_t *len) {
  char key[CS_KV_PATH_MAX + sizeof CS_KV_PREFIX];
  int rc = cs_kv_check_path(path, 0);
  if (rc < 0)
    return rc;
  store_key(path, key);
  rc = cs_barrier_get_spaced(st, k, key, head, buf, len);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ENOTFOUND, "no secret at %s", path);
  return rc;
}

int cs_kv_data_decode(const char *path, const uint8_t *pt, size_t len, Custos__KvData **out) {
  ProtobufCMessage *m;
  int rc = cs_wire_unpack(&custos__kv_data__descriptor, pt, len, &m);
  *out = (Custos__KvData *)m;
  /* Past the arena's budget is no secret this server wrote: corrupt too. */
  return rc == CS_EPROTO || rc == CS_ETOOBIG
             ? cs_error_set(CS_ESTORECORRUPT, "secret at %s does not parse", path)
             : rc;
}

int cs_kv_data_check(const char *path, const uint8_t *pt, size_t len) {
  return cs_wire_check(&custos__kv_data__descriptor, pt, len) == 0
             ? 0
             : cs_error_set(CS_ESTORECORRUPT, "secret at %s does not parse", path);
}

int cs_kv_get(cs_store *st, const cs_keyring *k, const char *path, Custos__KvData **out) {
  uint8_t *pt;
  size_t len;
  int rc = cs_kv_get_encoded(st, k, path, 0, &pt, &len);
  if (rc < 0)
    return rc;
  rc = cs_kv_data_decode(path, pt, len, out);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

void cs_kv_data_free(Custos__KvData *d) {
  if (d != NULL)
    cs_wire_unpacked_free(&d->base); /* wipes the values, and the keys too */
}

void cs_kv_list_folder(const char *prefix, char *out, size_t cap) {
  size_t n = strlen(prefix);
  snprintf(out, cap, "%s%s", prefix, n > 0 && prefix[n - 1] != '/' ? "/" : "");
}

int cs_kv_list(cs_store *st, const char *prefix, char ***keys, size_t *n) {
  char folder[CS_KV_PATH_MAX + 2], key[CS_KV_PATH_MAX + sizeof CS_KV_PREFIX + 1];
  int rc = cs_kv_check_path(prefix, 1);
  if (rc < 0)
    return rc;
  cs_kv_list_folder(prefix, folder, sizeof folder);
  store_key(folder, key);
  return cs_store_list(st, key, keys, n);
}
