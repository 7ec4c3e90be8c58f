/*
 * kv2_ops: the handlers of versioned KV (kv2-put, kv2-get, kv2-delete,
 * kv2-undelete, kv2-destroy, kv2-meta-get, kv2-meta-put, kv2-meta-delete,
 * kv2-list, kv2-config), their policy paths and the secrets they carry.
 *
 * Policy paths are Vault's for a KV v2 mount named "kv" (docs/policy.md):
 *   kv/data/<path>      put (write), get (read), delete of the current version (delete)
 *   kv/delete/<path>    delete of given versions (delete)
 *   kv/undelete/<path>  undelete (write)
 *   kv/destroy/<path>   destroy (delete)
 *   kv/metadata/<path>  metadata get (read), put (write), delete (delete), list (list, on the folder)
 *   kv/config           the mount's settings (write, also to read them)
 *
 * Writes are a read-modify-write of the secret's metadata (kv2.h): the
 * batch is built here, handed to the commit queue, and, when its
 * precondition failed because another write committed first (CS_ECHANGED),
 * built again on the new state and resubmitted, up to KV2_ATTEMPTS times.
 * So two clients racing on one path both succeed one after the other,
 * unless one asked for check-and-set, which then fails properly.
 */
#include "api_int.h"

#include "barrier.h"
#include "commitq.h"
#include "cs_error.h"
#include "kv2.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV2_ATTEMPTS 16

/* ---------------------------------------------------------------- paths */

/* "kv/<sub>/<path>" into out; the path is checked with kv2's limits. */
static int kv2_path(const char *sub, const char *path, int is_prefix, char *out, size_t cap) {
  if (is_prefix) {
    char folder[CS_KV2_PATH_MAX + 2];
    cs_kv2_list_folder(path, folder, sizeof folder);
    snprintf(out, cap, "kv/%s/%s", sub, folder);
  } else {
    snprintf(out, cap, "kv/%s/%s", sub, path);
  }
  return cs_kv2_check_path(path, is_prefix);
}

int cs_path_kv2_put(const Custos__Request *req, char *out, size_t cap) {
  int rc = kv2_path("data", req->kv2_put->path, 0, out, cap);
  return rc < 0 ? rc : cs_kv_check_fields(req->kv2_put->data, req->kv2_put->n_data);
}

int cs_path_kv2_get(const Custos__Request *req, char *out, size_t cap) {
  return kv2_path("data", req->kv2_get->path, 0, out, cap);
}

/* The current version is deleted through data/ (Vault's DELETE data/:path),
 * given versions through delete/. */
int cs_path_kv2_delete(const Custos__Request *req, char *out, size_t cap) {
  const Custos__Kv2VersionsReq *q = req->kv2_delete;
  return kv2_path(q->n_versions ? "delete" : "data", q->path, 0, out, cap);
}

int cs_path_kv2_undelete(const Custos__Request *req, char *out, size_t cap) {
  return kv2_path("undelete", req->kv2_undelete->path, 0, out, cap);
}

int cs_path_kv2_destroy(const Custos__Request *req, char *out, size_t cap) {
  return kv2_path("destroy", req->kv2_destroy->path, 0, out, cap);
}

int cs_path_kv2_meta_get(const Custos__Request *req, char *out, size_t cap) {
  return kv2_path("metadata", req->kv2_meta_get->path, 0, out, cap);
}

int cs_path_kv2_meta_put(const Custos__Request *req, char *out, size_t cap) {
  const Custos__Kv2MetaPutReq *q = req->kv2_meta_put;
  int rc = kv2_path("metadata", q->path, 0, out, cap);
  if (rc == 0 && q->set_custom_metadata)
    rc = cs_kv2_check_custom(q->custom_metadata, q->n_custom_metadata);
  return rc;
}

int cs_path_kv2_meta_delete(const Custos__Request *req, char *out, size_t cap) {
  return kv2_path("metadata", req->kv2_meta_delete->path, 0, out, cap);
}

int cs_path_kv2_list(const Custos__Request *req, char *out, size_t cap) {
  return kv2_path("metadata", req->kv2_list->prefix, 1, out, cap);
}

int cs_path_kv2_config(const Custos__Request *req, char *out, size_t cap) {
  (void)req;
  snprintf(out, cap, "kv/config");
  return 0;
}

/* Every field of a put is on record (hashed), however many. */
size_t cs_sens_kv2_put(const Custos__Request *req, cs_audit_sensitive *s) {
  const Custos__Kv2PutReq *q = req->kv2_put;
  if (s != NULL)
    for (size_t i = 0; i < q->n_data; i++)
      s[i] = (cs_audit_sensitive){q->data[i]->key, q->data[i]->value.data, q->data[i]->value.len};
  return q->n_data;
}

/* ---------------------------------------------------------------- time */

/* Unix microseconds: the times a version records. */
static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- writes */

/*
 * One kv2 write per path at a time on this node: writes to a path queue
 * behind the one in flight (a slot per path), so concurrent writers to
 * one secret commit one after the other instead of all building on the
 * same state and all but one failing the precondition again and again.
 * The precondition stays the safety net for what this queue cannot see:
 * a rewrap step, or a write of a previous leader committed late.
 */
typedef struct kv2_job kv2_job;

typedef struct kv2_slot {
  char *path;
  kv2_job *head, *tail;   /* waiting behind the one in flight */
  struct kv2_slot *next;  /* bucket chain */
} kv2_slot;

struct kv2_job {
  cs_rq *r;
  cs_kv2_write w;
  int attempts;
  cs_kv2_version written;
  cs_kv2_meta after;      /* the metadata the last build wrote (w.after) */
  kv2_slot *slot;
  kv2_job *next;
};

#define SLOT_BUCKETS 256
static kv2_slot *slots[SLOT_BUCKETS];

static unsigned bucket(const char *path) {
  unsigned h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)path; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h % SLOT_BUCKETS;
}

/* The slot of path, or NULL. */
static kv2_slot *slot_find(const char *path) {
  for (kv2_slot *s = slots[bucket(path)]; s != NULL; s = s->next)
    if (strcmp(s->path, path) == 0)
      return s;
  return NULL;
}

static kv2_slot *slot_new(const char *path) {
  kv2_slot *s = calloc(1, sizeof *s);
  if (s == NULL || (s->path = strdup(path)) == NULL) {
    free(s);
    return NULL;
  }
  unsigned b = bucket(path);
  s->next = slots[b];
  slots[b] = s;
  return s;
}

static void slot_remove(kv2_slot *s) {
  kv2_slot **pp = &slots[bucket(s->path)];
  while (*pp != s)
    pp = &(*pp)->next;
  *pp = s->next;
  free(s->path);
  free(s);
}

/* The answer of a finished job (ok: rc 0); frees j. */
static void job_answer(kv2_job *j, int rc) {
  cs_rq *r = j->r;
  if (rc < 0 || j->w.kind != CS_KV2_PUT) {
    cs_kv2_meta_free(&j->after);
    free(j);
    if (rc < 0)
      respond(r, rc, NULL, NULL, 0);
    else
      respond_empty(r);
    return;
  }
  /* The answer of a put: the version written, and the custom metadata it
   * committed with (the metadata this build wrote). */
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Kv2WriteRes wr = CUSTOS__KV2_WRITE_RES__INIT;
  Custos__Kv2VersionInfo vi = CUSTOS__KV2_VERSION_INFO__INIT;
  vi.version = j->written.version;
  vi.created_time = j->written.created;
  vi.deletion_time = j->written.deleted;
  wr.version = &vi;
  cs_kv2_meta m = j->after;
  memset(&j->after, 0, sizeof j->after);
  Custos__KvPair *cp = NULL, **cpp = NULL;
  if (m.n_custom > 0) {
    cp = calloc(m.n_custom, sizeof *cp);
    cpp = calloc(m.n_custom, sizeof *cpp);
    if (cp != NULL && cpp != NULL) {
      for (size_t i = 0; i < m.n_custom; i++) {
        custos__kv_pair__init(&cp[i]);
        cp[i].key = m.custom[i].key;
        cp[i].value.data = (uint8_t *)m.custom[i].value;
        cp[i].value.len = strlen(m.custom[i].value);
        cpp[i] = &cp[i];
      }
      wr.n_custom_metadata = m.n_custom;
      wr.custom_metadata = cpp;
    }
  }
  res.result_case = CUSTOS__RESPONSE__RESULT_KV2_WRITE;
  res.kv2_write = &wr;
  free(j);
  respond(r, 0, &res, NULL, 0);
  free(cpp);
  free(cp);
  cs_kv2_meta_free(&m);
}

static void on_kv2_done(void *arg, int status);

/* Builds and submits j: 1 when it is in flight (its callback follows), 0
 * when it finished here (answered and freed). */
static int job_step(kv2_job *j) {
  cs_rq *r = j->r;
  cs_keyring *k = cs_seal_keyring(r->d->seal);
  int rc = k == NULL ? cs_error_set(CS_ESEALED, "server is sealed") : 0;
  cs_batch b;
  cs_batch_init(&b);
  j->attempts++;
  cs_kv2_meta_free(&j->after); /* a rebuild replaces it */
  j->w.after = &j->after;
  if (rc == 0)
    rc = cs_kv2_build(r->d->store, k, &j->w, now_us(), &b, &j->written);
  if (rc == 0 && b.n == 0) {
    job_answer(j, 0); /* nothing to change */
    return 0;
  }
  if (rc == 0)
    rc = cs_commitq_submit(r->d->commitq, &b, on_kv2_done, j);
  cs_batch_clear(&b);
  if (rc < 0) {
    job_answer(j, rc);
    return 0;
  }
  return 1;
}

/* The job in flight on s finished: run the next one waiting (in a loop,
 * not recursively, as many may finish at once), or drop the slot.  A
 * waiting job was authorized when it arrived; its token may have been
 * revoked (or a policy changed) while it waited behind the others, so it
 * is decided again first, as a parked request is (api.c).  Review finding:
 * without this, 39 of 40 writes queued on one path were answered OK after
 * the revoke of their token. */
static void slot_done(kv2_slot *s) {
  for (;;) {
    kv2_job *j = s->head;
    if (j == NULL) {
      slot_remove(s);
      return;
    }
    s->head = j->next;
    if (s->head == NULL)
      s->tail = NULL;
    j->next = NULL;
    cs_error_clear();
    int rc = cs_authorize(j->r);
    if (rc < 0) {
      job_answer(j, rc);
      continue;
    }
    if (job_step(j))
      return;
  }
}

static void on_kv2_done(void *arg, int status) {
  kv2_job *j = arg;
  kv2_slot *s = j->slot;
  if (status == CS_ECHANGED && j->attempts < KV2_ATTEMPTS) {
    /* Something this node did not queue (a rewrap step) changed the
     * metadata first: decide again on the new state. */
    cs_error_clear();
    if (job_step(j))
      return;
  } else {
    job_answer(j, status < 0 ? status : 0);
  }
  slot_done(s);
}

static void start(cs_rq *r, const cs_kv2_write *w) {
  kv2_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  j->r = r;
  j->w = *w;
  kv2_slot *s = slot_find(w->path);
  if (s != NULL) { /* a write to this path is in flight: wait for it */
    j->slot = s;
    if (s->tail != NULL)
      s->tail->next = j;
    else
      s->head = j;
    s->tail = j;
    return;
  }
  if ((s = slot_new(w->path)) == NULL) {
    free(j);
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  j->slot = s;
  if (!job_step(j))
    slot_done(s);
}

void cs_op_kv2_put(cs_rq *r) {
  const Custos__Kv2PutReq *q = r->req->kv2_put;
  cs_kv2_write w = {.kind = CS_KV2_PUT, .path = q->path, .data = q->data, .n_data = q->n_data,
                    .has_cas = q->cas_opt_case == CUSTOS__KV2_PUT_REQ__CAS_OPT_CAS, .cas = q->cas};
  start(r, &w);
}

static void versions_op(cs_rq *r, cs_kv2_kind kind, const Custos__Kv2VersionsReq *q) {
  cs_kv2_write w = {.kind = kind, .path = q->path, .versions = q->versions,
                    .n_versions = q->n_versions};
  start(r, &w);
}

void cs_op_kv2_delete(cs_rq *r) { versions_op(r, CS_KV2_DELETE, r->req->kv2_delete); }
void cs_op_kv2_undelete(cs_rq *r) { versions_op(r, CS_KV2_UNDELETE, r->req->kv2_undelete); }
void cs_op_kv2_destroy(cs_rq *r) { versions_op(r, CS_KV2_DESTROY, r->req->kv2_destroy); }

void cs_op_kv2_meta_put(cs_rq *r) {
  const Custos__Kv2MetaPutReq *q = r->req->kv2_meta_put;
  cs_kv2_write w = {
      .kind = CS_KV2_META_PUT,
      .path = q->path,
      .has_max = q->max_versions_opt_case == CUSTOS__KV2_META_PUT_REQ__MAX_VERSIONS_OPT_MAX_VERSIONS,
      .max_versions = q->max_versions,
      .has_cas_required =
          q->cas_required_opt_case == CUSTOS__KV2_META_PUT_REQ__CAS_REQUIRED_OPT_CAS_REQUIRED,
      .cas_required = q->cas_required,
      .has_delete_after = q->delete_version_after_opt_case ==
                          CUSTOS__KV2_META_PUT_REQ__DELETE_VERSION_AFTER_OPT_DELETE_VERSION_AFTER,
      .delete_after = q->delete_version_after,
      .set_custom = q->set_custom_metadata,
      .custom = q->custom_metadata,
      .n_custom = q->n_custom_metadata};
  start(r, &w);
}

void cs_op_kv2_meta_delete(cs_rq *r) {
  cs_kv2_write w = {.kind = CS_KV2_META_DELETE, .path = r->req->kv2_meta_delete->path};
  start(r, &w);
}

/* ---------------------------------------------------------------- reads */

static void fill_version(Custos__Kv2VersionInfo *vi, const cs_kv2_version *v) {
  custos__kv2_version_info__init(vi);
  vi->version = v->version;
  vi->created_time = v->created;
  vi->deletion_time = v->deleted;
  vi->destroyed = v->destroyed;
}

/* The custom metadata of m as pairs borrowed from it (NULL when none or
 * out of memory: then n is 0). */
static Custos__KvPair **custom_pairs(const cs_kv2_meta *m, Custos__KvPair **store, size_t *n) {
  *n = 0;
  *store = NULL;
  if (m->n_custom == 0)
    return NULL;
  Custos__KvPair *cp = calloc(m->n_custom, sizeof *cp);
  Custos__KvPair **cpp = calloc(m->n_custom, sizeof *cpp);
  if (cp == NULL || cpp == NULL) {
    free(cp);
    free(cpp);
    return NULL;
  }
  for (size_t i = 0; i < m->n_custom; i++) {
    custos__kv_pair__init(&cp[i]);
    cp[i].key = m->custom[i].key;
    cp[i].value.data = (uint8_t *)m->custom[i].value;
    cp[i].value.len = strlen(m->custom[i].value);
    cpp[i] = &cp[i];
  }
  *store = cp;
  *n = m->n_custom;
  return cpp;
}

void cs_op_kv2_get(cs_rq *r) {
  const Custos__Kv2GetReq *q = r->req->kv2_get;
  cs_kv2_meta m;
  Custos__KvData *data = NULL;
  const cs_kv2_version *v = NULL;
  int rc = cs_kv2_get(r->d->store, cs_seal_keyring(r->d->seal), q->path, q->version, now_us(), &m,
                      &data, &v);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  size_t nd = data != NULL ? data->n_data : 0;
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Kv2GetRes gr = CUSTOS__KV2_GET_RES__INIT;
  Custos__Kv2VersionInfo vi;
  fill_version(&vi, v);
  gr.version = &vi;
  gr.n_data = nd;
  gr.data = data != NULL ? data->data : NULL;
  gr.destroyed = v->destroyed;
  gr.deleted = !v->destroyed && data == NULL;
  Custos__KvPair *cp;
  gr.custom_metadata = custom_pairs(&m, &cp, &gr.n_custom_metadata);
  res.result_case = CUSTOS__RESPONSE__RESULT_KV2_GET;
  res.kv2_get = &gr;
  respond_pairs(r, &res, gr.data, nd);
  free(gr.custom_metadata);
  free(cp);
  cs_kv_data_free(data);
  cs_kv2_meta_free(&m);
}

void cs_op_kv2_meta_get(cs_rq *r) {
  cs_kv2_meta m;
  int rc = cs_kv2_meta_load(r->d->store, cs_seal_keyring(r->d->seal), r->req->kv2_meta_get->path, &m);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  Custos__Kv2VersionInfo *vi = calloc(m.n_v ? m.n_v : 1, sizeof *vi);
  Custos__Kv2VersionInfo **vp = calloc(m.n_v ? m.n_v : 1, sizeof *vp);
  if (vi == NULL || vp == NULL) {
    free(vi);
    free(vp);
    cs_kv2_meta_free(&m);
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  for (size_t i = 0; i < m.n_v; i++) {
    fill_version(&vi[i], &m.v[i]);
    vp[i] = &vi[i];
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Kv2MetaRes mr = CUSTOS__KV2_META_RES__INIT;
  mr.current_version = m.current;
  mr.oldest_version = m.oldest;
  mr.max_versions = m.max_versions;
  mr.cas_required = m.cas_required;
  mr.delete_version_after = m.delete_after;
  mr.created_time = m.created;
  mr.updated_time = m.updated;
  mr.n_versions = m.n_v;
  mr.versions = vp;
  Custos__KvPair *cp;
  mr.custom_metadata = custom_pairs(&m, &cp, &mr.n_custom_metadata);
  res.result_case = CUSTOS__RESPONSE__RESULT_KV2_META;
  res.kv2_meta = &mr;
  respond(r, 0, &res, NULL, 0);
  free(mr.custom_metadata);
  free(cp);
  free(vp);
  free(vi);
  cs_kv2_meta_free(&m);
}

void cs_op_kv2_list(cs_rq *r) {
  char **keys = NULL;
  size_t n = 0;
  int rc = cs_kv2_list(r->d->store, r->req->kv2_list->prefix, &keys, &n);
  respond_keys(r, rc, keys, n);
}

/* ---------------------------------------------------------------- config */

static void respond_config(cs_rq *r, const cs_kv2_config *c) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Kv2ConfigRes cr = CUSTOS__KV2_CONFIG_RES__INIT;
  cr.max_versions = c->max_versions;
  cr.cas_required = c->cas_required;
  cr.delete_version_after = c->delete_after;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV2_CONFIG;
  res.kv2_config = &cr;
  respond(r, 0, &res, NULL, 0);
}

typedef struct config_job {
  cs_rq *r;
  cs_kv2_config c;
  int attempts;
} config_job;

/*
 * A settings write is a read-modify-write of one record: it changes only
 * the fields it was given.  Built behind a check of the record it read, so
 * two writers at once (each changing another field) cannot both succeed
 * on the same old record and lose one change (review finding: a
 * cas_required = true could be silently undone); the one that finds the
 * other's write applies its fields to it and commits again.  0 when
 * submitted (on_config_done follows), else the error.
 */
static void on_config_done(void *arg, int status);

static int config_step(config_job *j) {
  cs_rq *r = j->r;
  const Custos__Kv2ConfigReq *q = r->req->kv2_config;
  cs_keyring *k = cs_seal_keyring(r->d->seal);
  cs_batch b;
  cs_batch_init(&b);
  j->attempts++;
  int rc = k == NULL ? cs_error_set(CS_ESEALED, "server is sealed") : 0;
  /* The check first: a write landing before the load fails it. */
  if (rc == 0 && (rc = cs_kv2_config_check(r->d->store, &b)) == 0)
    rc = cs_kv2_config_load(r->d->store, k, &j->c);
  if (rc == 0) {
    if (q->max_versions_opt_case == CUSTOS__KV2_CONFIG_REQ__MAX_VERSIONS_OPT_MAX_VERSIONS)
      j->c.max_versions = q->max_versions;
    if (q->cas_required_opt_case == CUSTOS__KV2_CONFIG_REQ__CAS_REQUIRED_OPT_CAS_REQUIRED)
      j->c.cas_required = q->cas_required;
    if (q->delete_version_after_opt_case ==
        CUSTOS__KV2_CONFIG_REQ__DELETE_VERSION_AFTER_OPT_DELETE_VERSION_AFTER)
      j->c.delete_after = q->delete_version_after;
    rc = cs_kv2_stage_config(k, &j->c, &b);
  }
  if (rc == 0)
    rc = cs_commitq_submit(r->d->commitq, &b, on_config_done, j);
  cs_batch_clear(&b);
  return rc;
}

static void on_config_done(void *arg, int status) {
  config_job *j = arg;
  cs_rq *r = j->r;
  if (status == CS_ECHANGED && j->attempts < KV2_ATTEMPTS) {
    cs_error_clear();
    if ((status = config_step(j)) == 0)
      return;
  }
  cs_kv2_config c = j->c;
  free(j);
  if (status < 0)
    respond(r, status, NULL, NULL, 0);
  else
    respond_config(r, &c);
}

/* One op reads and changes the mount's settings, so both need write on
 * kv/config (docs/policy.md): a read-only grant can never change them. */
void cs_op_kv2_config(cs_rq *r) {
  const Custos__Kv2ConfigReq *q = r->req->kv2_config;
  if (!q->set) {
    cs_kv2_config c;
    int rc = cs_kv2_config_load(r->d->store, cs_seal_keyring(r->d->seal), &c);
    if (rc < 0)
      respond(r, rc, NULL, NULL, 0);
    else
      respond_config(r, &c);
    return;
  }
  config_job *j = calloc(1, sizeof *j);
  int rc = j == NULL ? CS_ENOMEM : 0;
  if (j != NULL) {
    j->r = r;
    rc = config_step(j);
  }
  if (rc < 0) {
    free(j);
    respond(r, rc, NULL, NULL, 0);
  }
}
