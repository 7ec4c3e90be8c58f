/* kv2: see kv2.h. */
#include "kv2.h"
#include "barrier.h"
#include "cs_error.h"
#include "kv.h"
#include "secmem.h"
#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof CS_KV2_DATA_PREFIX - 1 + CS_KV2_PATH_MAX + 1 + 16 <= CS_STORE_KEY_MAX,
               "a version key must fit a storage key");
_Static_assert(CS_KV2_PATH_MAX <= CS_KV_PATH_MAX, "kv2 paths are kv paths");

#define KEYCAP (CS_STORE_KEY_MAX + 1)

int cs_kv2_check_path(const char *path, int is_prefix) {
  if (strlen(path) > CS_KV2_PATH_MAX)
    return cs_error_set(CS_EINVAL, "path is longer than %d bytes", CS_KV2_PATH_MAX);
  return cs_kv_check_path(path, is_prefix);
}

void cs_kv2_meta_key(const char *path, char *out) {
  snprintf(out, KEYCAP, "%s%s", CS_KV2_META_PREFIX, path);
}

void cs_kv2_data_key(const char *path, uint64_t n, char *out) {
  snprintf(out, KEYCAP, "%s%s %016" PRIx64, CS_KV2_DATA_PREFIX, path, n);
}

static int cmp_pair(const void *a, const void *b) {
  return strcmp((*(Custos__KvPair *const *)a)->key, (*(Custos__KvPair *const *)b)->key);
}

int cs_kv2_check_custom(Custos__KvPair *const *pairs, size_t n) {
  if (n > CS_KV2_CUSTOM_MAX)
    return cs_error_set(CS_EINVAL, "custom_metadata has %zu keys, at most %d are allowed", n,
                        CS_KV2_CUSTOM_MAX);
  for (size_t i = 0; i < n; i++) {
    size_t kl = pairs[i]->key ? strlen(pairs[i]->key) : 0;
    if (kl == 0 || kl > CS_KV2_CUSTOM_KEY_MAX)
      return cs_error_set(CS_EINVAL, "custom_metadata key %zu must be 1..%d bytes", i + 1,
                          CS_KV2_CUSTOM_KEY_MAX);
    if (pairs[i]->value.len > CS_KV2_CUSTOM_VALUE_MAX)
      return cs_error_set(CS_EINVAL, "custom_metadata value of %s is longer than %d bytes",
                          pairs[i]->key, CS_KV2_CUSTOM_VALUE_MAX);
    if (cs_wire_string_check(pairs[i]->value.data, pairs[i]->value.len) != 0)
      return cs_error_set(CS_EINVAL, "custom_metadata value of %s is not UTF-8 text without NUL",
                          pairs[i]->key);
  }
  if (n < 2)
    return 0;
  Custos__KvPair *sorted[CS_KV2_CUSTOM_MAX];
  memcpy(sorted, pairs, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_pair);
  for (size_t i = 1; i < n; i++)
    if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
      return cs_error_set(CS_EINVAL, "custom_metadata key %s is given twice", sorted[i]->key);
  return 0;
}

/* ---------------------------------------------------------------- records */

void cs_kv2_meta_free(cs_kv2_meta *m) {
  for (size_t i = 0; i < m->n_custom; i++) {
    free(m->custom[i].key);
    if (m->custom[i].value != NULL)
      cs_wipe(m->custom[i].value, strlen(m->custom[i].value));
    free(m->custom[i].value);
  }
  free(m->custom);
  free(m->v);
  memset(m, 0, sizeof *m);
}

const cs_kv2_version *cs_kv2_meta_find(const cs_kv2_meta *m, uint64_t n) {
  /* Ascending: a binary search, as 1000 versions may be kept. */
  size_t lo = 0, hi = m->n_v;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->v[mid].version == n)
      return &m->v[mid];
    if (m->v[mid].version < n)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

int cs_kv2_is_deleted(const cs_kv2_version *v, int64_t now) {
  return v->deleted != 0 && v->deleted <= now;
}

static char *dup_n(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (s != NULL) {
    if (n)
      memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static int set_custom(cs_kv2_meta *m, Custos__KvPair *const *pairs, size_t n) {
  cs_kv2_pair *c = calloc(n ? n : 1, sizeof *c);
  if (c == NULL)
    return CS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    c[i].key = dup_n(pairs[i]->key, strlen(pairs[i]->key));
    c[i].value = dup_n(pairs[i]->value.data, pairs[i]->value.len);
    if (c[i].key == NULL || c[i].value == NULL) {
      cs_kv2_meta tmp = {.custom = c, .n_custom = i + 1};
      cs_kv2_meta_free(&tmp);
      return CS_ENOMEM;
    }
  }
  for (size_t i = 0; i < m->n_custom; i++) {
    free(m->custom[i].key);
    cs_wipe(m->custom[i].value, strlen(m->custom[i].value));
    free(m->custom[i].value);
  }
  free(m->custom);
  m->custom = c;
  m->n_custom = n;
  return 0;
}

/* The record's invariants: what every reader relies on. */
static int meta_valid(const cs_kv2_meta *m) {
  if (m->max_versions > CS_KV2_MAX_VERSIONS || m->n_v > CS_KV2_MAX_VERSIONS ||
      m->n_custom > CS_KV2_CUSTOM_MAX || m->oldest > m->current)
    return 0;
  for (size_t i = 0; i < m->n_v; i++) {
    if (m->v[i].version == 0 || m->v[i].version > m->current || m->v[i].version < m->oldest)
      return 0;
    if (i > 0 && m->v[i].version <= m->v[i - 1].version)
      return 0;
  }
  return 1;
}

static int meta_decode(const uint8_t *pt, size_t len, const char *path, cs_kv2_meta *m) {
  memset(m, 0, sizeof *m);
  Custos__Kv2Meta *r = custos__kv2_meta__unpack(NULL, len, pt);
  if (r == NULL)
    return cs_error_set(CS_ESTORECORRUPT, "metadata of %s does not parse", path);
  int rc = 0;
  m->current = r->current_version;
  m->oldest = r->oldest_version;
  m->max_versions = r->max_versions;
  m->cas_required = r->cas_required;
  m->delete_after = r->delete_version_after;
  m->created = r->created_time;
  m->updated = r->updated_time;
  if (r->n_versions > CS_KV2_MAX_VERSIONS || r->n_custom_metadata > CS_KV2_CUSTOM_MAX) {
    rc = cs_error_set(CS_ESTORECORRUPT, "metadata of %s holds too many entries", path);
    goto out;
  }
  m->v = calloc(r->n_versions ? r->n_versions : 1, sizeof *m->v);
  if (m->v == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < r->n_versions; i++) {
    m->v[i].version = r->versions[i]->version;
    m->v[i].created = r->versions[i]->created_time;
    m->v[i].deleted = r->versions[i]->deletion_time;
    m->v[i].destroyed = r->versions[i]->destroyed;
  }
  m->n_v = r->n_versions;
  if ((rc = set_custom(m, r->custom_metadata, r->n_custom_metadata)) != 0)
    goto out;
  if (!meta_valid(m))
    rc = cs_error_set(CS_ESTORECORRUPT, "metadata of %s is inconsistent", path);
out:
  for (size_t i = 0; i < r->n_custom_metadata; i++)
    if (r->custom_metadata[i]->value.data != NULL)
      cs_wipe(r->custom_metadata[i]->value.data, r->custom_metadata[i]->value.len);
  custos__kv2_meta__free_unpacked(r, NULL);
  if (rc != 0)
    cs_kv2_meta_free(m);
  return rc;
}

/* The metadata, and the digest of the stored ciphertext (for the check). */
static int meta_read(cs_store *st, const cs_keyring *k, const char *path, cs_kv2_meta *m,
                     uint8_t digest[CS_STORE_DIGEST_LEN]) {
  char key[KEYCAP];
  cs_kv2_meta_key(path, key);
  uint8_t *ct, *pt;
  size_t clen, plen;
  int rc = cs_store_get(st, key, &ct, &clen);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ENOTFOUND, "no secret at %s", path);
  if (rc < 0)
    return rc;
  if (digest != NULL)
    cs_store_digest(ct, clen, digest);
  rc = cs_barrier_decrypt(k, key, ct, clen, &pt, &plen);
  free(ct);
  if (rc < 0)
    return rc;
  rc = meta_decode(pt, plen, path, m);
  cs_wipe(pt, plen);
  free(pt);
  return rc;
}

int cs_kv2_meta_load(cs_store *st, const cs_keyring *k, const char *path, cs_kv2_meta *m) {
  int rc = cs_kv2_check_path(path, 0);
  if (rc < 0)
    return rc;
  return meta_read(st, k, path, m, NULL);
}

static int stage_meta(cs_keyring *k, const char *path, const cs_kv2_meta *m, cs_batch *b) {
  Custos__Kv2Meta r = CUSTOS__KV2_META__INIT;
  Custos__Kv2VersionInfo *vi = calloc(m->n_v ? m->n_v : 1, sizeof *vi);
  Custos__Kv2VersionInfo **vp = calloc(m->n_v ? m->n_v : 1, sizeof *vp);
  Custos__KvPair *cp = calloc(m->n_custom ? m->n_custom : 1, sizeof *cp);
  Custos__KvPair **cpp = calloc(m->n_custom ? m->n_custom : 1, sizeof *cpp);
  int rc = 0;
  uint8_t *pt = NULL;
  size_t len = 0;
  if (vi == NULL || vp == NULL || cp == NULL || cpp == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  r.current_version = m->current;
  r.oldest_version = m->oldest;
  r.max_versions = m->max_versions;
  r.cas_required = m->cas_required;
  r.delete_version_after = m->delete_after;
  r.created_time = m->created;
  r.updated_time = m->updated;
  for (size_t i = 0; i < m->n_v; i++) {
    custos__kv2_version_info__init(&vi[i]);
    vi[i].version = m->v[i].version;
    vi[i].created_time = m->v[i].created;
    vi[i].deletion_time = m->v[i].deleted;
    vi[i].destroyed = m->v[i].destroyed;
    vp[i] = &vi[i];
  }
  r.n_versions = m->n_v;
  r.versions = vp;
  for (size_t i = 0; i < m->n_custom; i++) {
    custos__kv_pair__init(&cp[i]);
    cp[i].key = m->custom[i].key;
    cp[i].value.data = (uint8_t *)m->custom[i].value;
    cp[i].value.len = strlen(m->custom[i].value);
    cpp[i] = &cp[i];
  }
  r.n_custom_metadata = m->n_custom;
  r.custom_metadata = cpp;
  len = custos__kv2_meta__get_packed_size(&r);
  pt = malloc(len ? len : 1);
  if (pt == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  custos__kv2_meta__pack(&r, pt);
  char key[KEYCAP];
  cs_kv2_meta_key(path, key);
  rc = cs_barrier_stage_put(k, b, key, pt, len);
out:
  if (pt != NULL)
    cs_wipe(pt, len);
  free(pt);
  free(cpp);
  free(cp);
  free(vp);
  free(vi);
  return rc;
}

/* ---------------------------------------------------------------- config */

int cs_kv2_config_load(cs_store *st, const cs_keyring *k, cs_kv2_config *c) {
  memset(c, 0, sizeof *c);
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_get(st, k, CS_KV2_CONFIG_PATH, &pt, &len);
  if (rc == CS_ENOTFOUND) {
    cs_error_clear();
    return 0;
  }
  if (rc < 0)
    return rc;
  Custos__Kv2Config *r = custos__kv2_config__unpack(NULL, len, pt);
  cs_wipe(pt, len);
  free(pt);
  if (r == NULL || r->max_versions > CS_KV2_MAX_VERSIONS) {
    if (r != NULL)
      custos__kv2_config__free_unpacked(r, NULL);
    return cs_error_set(CS_ESTORECORRUPT, "%s does not parse", CS_KV2_CONFIG_PATH);
  }
  c->max_versions = r->max_versions;
  c->cas_required = r->cas_required;
  c->delete_after = r->delete_version_after;
  custos__kv2_config__free_unpacked(r, NULL);
  return 0;
}

int cs_kv2_config_check(cs_store *st, cs_batch *b) {
  uint8_t *ct, digest[CS_STORE_DIGEST_LEN];
  size_t len;
  int rc = cs_store_get(st, CS_KV2_CONFIG_PATH, &ct, &len);
  if (rc == CS_ENOTFOUND) {
    cs_error_clear();
    return cs_batch_check(b, CS_KV2_CONFIG_PATH, NULL);
  }
  if (rc < 0)
    return rc;
  cs_store_digest(ct, len, digest);
  free(ct);
  return cs_batch_check(b, CS_KV2_CONFIG_PATH, digest);
}

int cs_kv2_stage_config(cs_keyring *k, const cs_kv2_config *c, cs_batch *b) {
  if (c->max_versions > CS_KV2_MAX_VERSIONS)
    return cs_error_set(CS_EINVAL, "max_versions must be at most %d", CS_KV2_MAX_VERSIONS);
  if (c->delete_after > CS_KV2_DELETE_AFTER_MAX)
    return cs_error_set(CS_EINVAL, "delete_version_after must be at most 100 years");
  Custos__Kv2Config r = CUSTOS__KV2_CONFIG__INIT;
  r.max_versions = c->max_versions;
  r.cas_required = c->cas_required;
  r.delete_version_after = c->delete_after;
  uint8_t buf[64];
  size_t len = custos__kv2_config__pack(&r, buf);
  return cs_barrier_stage_put(k, b, CS_KV2_CONFIG_PATH, buf, len);
}

/* ---------------------------------------------------------------- writes */

static uint32_t effective_max(const cs_kv2_meta *m, const cs_kv2_config *c) {
  if (m->max_versions)
    return m->max_versions;
  return c->max_versions ? c->max_versions : CS_KV2_DEFAULT_VERSIONS;
}

/* Drops the oldest versions beyond max (their data deleted in b). */
static int prune(const char *path, cs_kv2_meta *m, uint32_t max, cs_batch *b) {
  size_t drop = m->n_v > max ? m->n_v - max : 0;
  char key[KEYCAP];
  for (size_t i = 0; i < drop; i++) {
    if (!m->v[i].destroyed) {
      cs_kv2_data_key(path, m->v[i].version, key);
      int rc = cs_batch_del(b, key);
      if (rc < 0)
        return rc;
    }
  }
  if (drop > 0) {
    memmove(m->v, m->v + drop, (m->n_v - drop) * sizeof *m->v);
    m->n_v -= drop;
  }
  /* Vault's oldest_version: the oldest kept, or the next one to write. */
  m->oldest = m->n_v > 0 ? m->v[0].version : m->current == 0 ? 0 : m->current;
  return 0;
}

static int stage_data(cs_keyring *k, const char *path, uint64_t n, Custos__KvPair *const *pairs,
                      size_t np, cs_batch *b) {
  Custos__KvData d = CUSTOS__KV_DATA__INIT;
  d.n_data = np;
  d.data = (Custos__KvPair **)pairs;
  size_t len = custos__kv_data__get_packed_size(&d);
  uint8_t *pt = malloc(len ? len : 1);
  if (pt == NULL)
    return CS_ENOMEM;
  custos__kv_data__pack(&d, pt);
  char key[KEYCAP];
  cs_kv2_data_key(path, n, key);
  int rc = cs_barrier_stage_put(k, b, key, pt, len);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

static int build_put(cs_keyring *k, const cs_kv2_write *w, const cs_kv2_config *cfg,
                     cs_kv2_meta *m, int exists, int64_t now, cs_batch *b, cs_kv2_version *out) {
  int rc;
  if ((m->cas_required || cfg->cas_required) && !w->has_cas)
    return cs_error_set(CS_EINVAL, "check-and-set parameter required for this call");
  if (w->has_cas && w->cas != m->current)
    return cs_error_set(CS_ECASMISMATCH, "check-and-set parameter did not match the current "
                        "version (%" PRIu64 " given, %s %" PRIu64 ")", w->cas,
                        exists ? "current" : "no secret, so", m->current);
  if (m->current >= UINT64_MAX - 1)
    return cs_error_set(CS_ELIMIT, "%s has reached the last version number", w->path);
  cs_kv2_version *nv = realloc(m->v, (m->n_v + 1) * sizeof *m->v);
  if (nv == NULL)
    return CS_ENOMEM;
  m->v = nv;
  uint64_t after = m->delete_after ? m->delete_after : cfg->delete_after;
  cs_kv2_version v = {.version = m->current + 1, .created = now,
                      .deleted = after ? now + (int64_t)after * 1000000 : 0};
  m->v[m->n_v++] = v;
  m->current = v.version;
  if (!exists)
    m->created = now;
  m->updated = now;
  if ((rc = stage_data(k, w->path, v.version, w->data, w->n_data, b)) < 0)
    return rc;
  if ((rc = prune(w->path, m, effective_max(m, cfg), b)) < 0)
    return rc;
  if (out != NULL)
    *out = v;
  return 1;
}

/* Soft delete, undelete, destroy of the given versions: 1 if any changed. */
static int build_versions(const cs_kv2_write *w, cs_kv2_meta *m, int64_t now, cs_batch *b) {
  uint64_t latest = m->current;
  size_t n = w->n_versions ? w->n_versions : 1;
  int changed = 0;
  char key[KEYCAP];
  for (size_t i = 0; i < n; i++) {
    /* Versions never written or already pruned are skipped, as Vault. */
    cs_kv2_version *v = (cs_kv2_version *)cs_kv2_meta_find(m, w->n_versions ? w->versions[i] : latest);
    if (v == NULL || v->destroyed)
      continue;
    switch (w->kind) {
    case CS_KV2_DELETE:
      if (!cs_kv2_is_deleted(v, now)) {
        v->deleted = now;
        changed = 1;
      }
      break;
    case CS_KV2_UNDELETE:
      if (v->deleted != 0) {
        v->deleted = 0;
        changed = 1;
      }
      break;
    default: { /* CS_KV2_DESTROY */
      v->destroyed = 1;
      cs_kv2_data_key(w->path, v->version, key);
      int rc = cs_batch_del(b, key);
      if (rc < 0)
        return rc;
      changed = 1;
    }
    }
  }
  return changed;
}

static int build_meta_put(const cs_kv2_write *w, const cs_kv2_config *cfg, cs_kv2_meta *m,
                          int exists, int64_t now, cs_batch *b) {
  int rc;
  if (w->has_max && w->max_versions > CS_KV2_MAX_VERSIONS)
    return cs_error_set(CS_EINVAL, "max_versions must be at most %d (0: the mount's setting)",
                        CS_KV2_MAX_VERSIONS);
  if (w->has_delete_after && w->delete_after > CS_KV2_DELETE_AFTER_MAX)
    return cs_error_set(CS_EINVAL, "delete_version_after must be at most 100 years");
  if (w->set_custom && (rc = cs_kv2_check_custom(w->custom, w->n_custom)) < 0)
    return rc;
  if (w->has_max)
    m->max_versions = w->max_versions;
  if (w->has_cas_required)
    m->cas_required = w->cas_required;
  if (w->has_delete_after)
    m->delete_after = w->delete_after;
  if (w->set_custom && (rc = set_custom(m, w->custom, w->n_custom)) < 0)
    return rc;
  if (!exists)
    m->created = now;
  m->updated = now;
  if ((rc = prune(w->path, m, effective_max(m, cfg), b)) < 0)
    return rc;
  return 1;
}

typedef struct collect {
  cs_batch *b;
  int rc;
} collect;

static int del_each(void *arg, const char *key, size_t key_len, const uint8_t *val, size_t len) {
  (void)key_len, (void)val, (void)len;
  collect *c = arg;
  c->rc = cs_batch_del(c->b, key);
  return c->rc < 0 ? c->rc : 0;
}

/* Every version key of path (a scan, so nothing is left behind even if
 * the metadata and the data ever disagreed) and the metadata. */
static int build_meta_delete(cs_store *st, const char *path, cs_batch *b) {
  char prefix[KEYCAP], key[KEYCAP];
  snprintf(prefix, sizeof prefix, "%s%s ", CS_KV2_DATA_PREFIX, path);
  collect c = {b, 0};
  int rc = cs_store_scan(st, prefix, del_each, &c);
  if (rc < 0)
    return rc;
  cs_kv2_meta_key(path, key);
  if ((rc = cs_batch_del(b, key)) < 0)
    return rc;
  return 1;
}

int cs_kv2_build(cs_store *st, cs_keyring *k, const cs_kv2_write *w, int64_t now, cs_batch *b,
                 cs_kv2_version *written) {
  cs_kv2_meta m;
  cs_kv2_config cfg;
  uint8_t digest[CS_STORE_DIGEST_LEN];
  if (w->after != NULL)
    memset(w->after, 0, sizeof *w->after);
  int rc = cs_kv2_check_path(w->path, 0);
  if (rc < 0)
    return rc;
  if (w->kind == CS_KV2_DELETE || w->kind == CS_KV2_UNDELETE || w->kind == CS_KV2_DESTROY) {
    if (w->n_versions > CS_KV2_MAX_REQ_VERSIONS)
      return cs_error_set(CS_EINVAL, "at most %d versions per request", CS_KV2_MAX_REQ_VERSIONS);
    if (w->kind != CS_KV2_DELETE && w->n_versions == 0)
      return cs_error_set(CS_EINVAL, "no version number provided");
    for (size_t i = 0; i < w->n_versions; i++)
      if (w->versions[i] == 0)
        return cs_error_set(CS_EINVAL, "version numbers start at 1");
  }
  if (w->kind == CS_KV2_PUT && (rc = cs_kv_check_fields(w->data, w->n_data)) < 0)
    return rc;
  if ((rc = cs_kv2_config_load(st, k, &cfg)) < 0)
    return rc;
  rc = meta_read(st, k, w->path, &m, digest);
  int exists = rc == 0;
  if (rc == CS_ENOTFOUND) {
    cs_error_clear();
    memset(&m, 0, sizeof m);
  } else if (rc < 0) {
    return rc;
  }
  /* Nothing to change on a secret that does not exist: success. */
  if (!exists && w->kind != CS_KV2_PUT && w->kind != CS_KV2_META_PUT)
    return 0;
  char key[KEYCAP];
  cs_kv2_meta_key(w->path, key);
  /* The precondition goes first: the batch is decided on the state read. */
  if ((rc = cs_batch_check(b, key, exists ? digest : NULL)) < 0)
    goto out;
  switch (w->kind) {
  case CS_KV2_PUT: rc = build_put(k, w, &cfg, &m, exists, now, b, written); break;
  case CS_KV2_DELETE:
  case CS_KV2_UNDELETE:
  case CS_KV2_DESTROY: rc = build_versions(w, &m, now, b); break;
  case CS_KV2_META_PUT: rc = build_meta_put(w, &cfg, &m, exists, now, b); break;
  case CS_KV2_META_DELETE: rc = build_meta_delete(st, w->path, b); break;
  default: rc = CS_EINTERNAL;
  }
  if (rc == 1 && w->kind != CS_KV2_META_DELETE)
    rc = stage_meta(k, w->path, &m, b);
  else if (rc == 0)
    cs_batch_clear(b); /* nothing changed: no commit */
  if (rc > 0)
    rc = 0;
  if (rc == 0 && w->after != NULL && b->n > 0 && w->kind != CS_KV2_META_DELETE) {
    *w->after = m; /* handed over, not freed */
    return 0;
  }
out:
  cs_kv2_meta_free(&m);
  return rc;
}

/* ---------------------------------------------------------------- reads */

int cs_kv2_get(cs_store *st, const cs_keyring *k, const char *path, uint64_t version, int64_t now,
               cs_kv2_meta *m, Custos__KvData **data, const cs_kv2_version **ver) {
  *data = NULL;
  *ver = NULL;
  int rc = cs_kv2_meta_load(st, k, path, m);
  if (rc < 0)
    return rc;
  uint64_t n = version ? version : m->current;
  const cs_kv2_version *v = n ? cs_kv2_meta_find(m, n) : NULL;
  if (v == NULL) {
    cs_kv2_meta_free(m);
    if (n == 0)
      return cs_error_set(CS_ENOTFOUND, "%s has metadata but no version", path);
    return cs_error_set(CS_ENOTFOUND, "%s has no version %" PRIu64, path, n);
  }
  *ver = v;
  if (v->destroyed || cs_kv2_is_deleted(v, now))
    return 0;
  char key[KEYCAP];
  cs_kv2_data_key(path, n, key);
  uint8_t *pt;
  size_t len;
  rc = cs_barrier_get(st, k, key, &pt, &len);
  if (rc == CS_ENOTFOUND)
    rc = cs_error_set(CS_ESTORECORRUPT, "data of %s version %" PRIu64 " is missing", path, n);
  if (rc < 0) {
    cs_kv2_meta_free(m);
    *ver = NULL;
    return rc;
  }
  rc = cs_kv_data_decode(path, pt, len, data);
  if (rc == CS_ESTORECORRUPT) /* the message names the version (formatted only now) */
    rc = cs_error_set(CS_ESTORECORRUPT, "data of %s version %" PRIu64 " does not parse", path, n);
  cs_wipe(pt, len);
  free(pt);
  if (rc < 0) {
    cs_kv2_meta_free(m);
    *ver = NULL;
  }
  return rc;
}

void cs_kv2_list_folder(const char *prefix, char *out, size_t cap) {
  cs_kv_list_folder(prefix, out, cap);
}

int cs_kv2_list(cs_store *st, const char *prefix, char ***keys, size_t *n) {
  char folder[CS_KV2_PATH_MAX + 2], key[KEYCAP + 1];
  int rc = cs_kv2_check_path(prefix, 1);
  if (rc < 0)
    return rc;
  cs_kv2_list_folder(prefix, folder, sizeof folder);
  snprintf(key, sizeof key, "%s%s", CS_KV2_META_PREFIX, folder);
  return cs_store_list(st, key, keys, n);
}
