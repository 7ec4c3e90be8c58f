/*
 * policy_ops: the handlers of policies (policy-write, -read, -list,
 * -delete) and the reading of stored policy documents (also the policy
 * cache's loader, authz.c).  Documents are stored encrypted under
 * core/policy/<name>; a write or delete bumps the auth generation once
 * committed (after_commit), which empties the policy cache.
 *
 * Namespaces (core/policy_ns.h): documents stored before namespaces are
 * migrated in ONE transaction (all of them plus the marker
 * CS_POLICY_NS_MARKER, which the batch must create: a second migration,
 * from another node or a race, fails whole and changes nothing) as soon as
 * an unsealed leader finds the marker missing; until it is committed the
 * loader migrates each document in memory, and policy writes are refused
 * with CS_EBUSY (retry) so no document can be written in one format and
 * read in the other.  Each migrated document is staged behind a check of
 * the value it was read from, so a delete or restore that lands first
 * fails the migration (which then runs again) instead of being undone.
 */
#include "api_int.h"

#include "barrier.h"
#include "cs_error.h"
#include "log.h"
#include "ha.h"
#include "policy_ns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof CS_P_POLICY - 1 + CS_POLICY_NAME_MAX <= CS_STORE_KEY_MAX,
               "a policy name must fit a storage key");

#define POLICY_PATH_MAX (CS_POLICY_NAME_MAX + sizeof CS_P_POLICY + 1)

static void policy_path(const char *name, char *out, size_t cap) {
  snprintf(out, cap, CS_P_POLICY "%s", name);
}

int cs_policy_read_doc(cs_api_env *d, const char *name, char **doc, size_t *len) {
  char path[POLICY_PATH_MAX];
  policy_path(name, path, sizeof path);
  uint8_t *pt;
  size_t pt_len;
  int rc = cs_barrier_get(d->store, cs_seal_keyring(d->seal), path, &pt, &pt_len);
  if (rc == CS_ENOTFOUND)
    return cs_error_set(CS_ENOTFOUND, "no policy named %s", name);
  if (rc < 0)
    return rc;
  char *s = realloc(pt, pt_len + 1);
  if (s == NULL) {
    free(pt);
    return CS_ENOMEM;
  }
  s[pt_len] = '\0';
  *doc = s;
  *len = pt_len;
  return 0;
}

/* 1 when the stored documents are namespaced, 0 not yet, or an error. */
static int namespaced(cs_api_env *d) {
  return cs_store_exists(d->store, CS_POLICY_NS_MARKER);
}

int cs_policy_loader(void *ctx, const char *name, char **doc, size_t *len) {
  cs_api_env *d = ctx;
  int rc = cs_policy_read_doc(d, name, doc, len);
  int ns = rc == 0 ? namespaced(d) : 0;
  if (rc == 0 && ns == 0) { /* stored before namespaces: as it will be migrated */
    char *m;
    size_t mlen;
    ns = cs_policy_ns_migrate(*doc, *len, &m, &mlen);
    if (ns == 0) {
      free(*doc);
      *doc = m;
      *len = mlen;
    }
  }
  if (rc == 0 && ns < 0) {
    free(*doc);
    return cs_error_set(CS_ESTORECORRUPT, "policy %s: %s", name, cs_error_message(ns));
  }
  return rc;
}

/* ---------------------------------------------------------------- migration */

static int migrating; /* a migration batch is in the commit queue */

static void on_migrated(void *arg, int status) {
  cs_api_env *d = arg;
  migrating = 0;
  cs_api_auth_changed(d);
  if (status == 0)
    cs_info("policies: migrated to separate secret and operator namespaces (%s)",
            CS_POLICY_NS_MARKER);
  else if (status == CS_EEXISTS)
    cs_debug("policies: already migrated by another node");
  else if (status == CS_ECHANGED)
    cs_info("policies: a policy changed during the namespace migration; it runs again");
  else
    cs_warn("policies: namespace migration failed (will retry at the next unseal or "
            "activation): %s", cs_error_message(status));
}

/* The SHA-256 of the stored (encrypted) value at path. */
static int stored_digest(cs_api_env *d, const char *path, uint8_t out[CS_STORE_DIGEST_LEN]) {
  uint8_t *v;
  size_t len;
  int rc = cs_store_get(d->store, path, &v, &len);
  if (rc < 0)
    return rc;
  cs_store_digest(v, len, out);
  free(v);
  return 0;
}

/*
 * Stages every stored document, migrated, into b, each behind a check
 * that the stored value is still the one migrated: a policy deleted (or a
 * store restored) between this read and the commit fails the whole batch
 * instead of bringing a document back or migrating one and not another;
 * the next auth generation (the delete's or the restore's) tries again.
 */
static int stage_migration(cs_api_env *d, cs_batch *b, size_t *count) {
  char **names = NULL;
  size_t n = 0;
  int rc = cs_store_list(d->store, CS_P_POLICY, &names, &n);
  for (size_t i = 0; i < n && rc == 0; i++) {
    char *doc = NULL, *m = NULL;
    size_t len = 0, mlen = 0;
    char path[POLICY_PATH_MAX];
    uint8_t before[CS_STORE_DIGEST_LEN], after[CS_STORE_DIGEST_LEN];
    policy_path(names[i], path, sizeof path);
    rc = stored_digest(d, path, before);
    if (rc == 0)
      rc = cs_policy_read_doc(d, names[i], &doc, &len);
    if (rc == 0)
      rc = stored_digest(d, path, after);
    if (rc == 0 && memcmp(before, after, sizeof before) != 0)
      rc = cs_error_set(CS_EBUSY, "policy %s changed while it was read", names[i]);
    if (rc == 0)
      rc = cs_policy_ns_migrate(doc, len, &m, &mlen);
    if (rc == 0)
      rc = cs_batch_check(b, path, before);
    if (rc == 0)
      rc = cs_barrier_stage_put(cs_seal_keyring(d->seal), b, path, (const uint8_t *)m, mlen);
    if (rc < 0)
      cs_warn("policies: cannot migrate policy %s: %s", names[i], cs_error_message(rc));
    free(doc);
    free(m);
  }
  *count = n;
  cs_store_list_free(names, n);
  if (rc == 0)
    rc = cs_batch_put_new(b, CS_POLICY_NS_MARKER, (const uint8_t *)CS_POLICY_NS_VERSION,
                          sizeof CS_POLICY_NS_VERSION - 1);
  return rc;
}

void cs_policies_migrate(cs_api_env *d) {
  if (migrating || d->seal == NULL || cs_seal_keyring(d->seal) == NULL || !cs_ha_is_leader(d))
    return;
  int rc = namespaced(d);
  if (rc != 0) {
    if (rc < 0)
      cs_warn("policies: cannot read %s: %s", CS_POLICY_NS_MARKER, cs_error_message(rc));
    return;
  }
  cs_batch b;
  cs_batch_init(&b);
  size_t n = 0;
  rc = stage_migration(d, &b, &n);
  if (rc == 0)
    rc = cs_commitq_submit(d->commitq, &b, on_migrated, d);
  cs_batch_clear(&b);
  if (rc < 0) {
    cs_warn("policies: namespace migration not started: %s", cs_error_message(rc));
    return;
  }
  migrating = 1;
  cs_info("policies: migrating %zu stored policies to separate namespaces", n);
}

/* Policy writes wait for the migration (CS_EBUSY: retry): a document
 * written now would be read in the old format until it commits. */
static int migrated_or_busy(cs_rq *r) {
  int rc = namespaced(r->d);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  cs_policies_migrate(r->d);
  return cs_error_set(CS_EBUSY, "stored policies are being migrated to separate namespaces; retry");
}

/* A policy write or delete committed (or failed): applies to the next request. */
void cs_after_policy_change(cs_rq *r, int status) {
  (void)status;
  cs_api_auth_changed(r->d);
}

/* The audited path of a policy op is the policy's name.  "root" is the
 * handlers' business (CS_EPERM). */
static int policy_name_path(const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s", name);
  return cs_policy_name_valid(name) ? 0 : cs_policy_check_name(name);
}

int cs_path_policy_write(const Custos__Request *req, char *out, size_t cap) {
  return policy_name_path(req->policy_write->name, out, cap);
}

int cs_path_policy_read(const Custos__Request *req, char *out, size_t cap) {
  return policy_name_path(req->policy_read->name, out, cap);
}

int cs_path_policy_delete(const Custos__Request *req, char *out, size_t cap) {
  return policy_name_path(req->policy_delete->name, out, cap);
}

/* Encrypts `pt` for `path` under the barrier and submits it alone. */
static void put_sealed_value(cs_rq *r, const char *path, const uint8_t *pt, size_t len) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_barrier_stage_put(cs_seal_keyring(r->d->seal), &b, path, pt, len);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  submit_write(r, &b);
}

void cs_op_policy_write(cs_rq *r) {
  const Custos__PolicyWriteReq *q = r->req->policy_write;
  int rc = cs_policy_check_name(q->name);
  cs_policy *p = NULL;
  size_t len = q->document ? strlen(q->document) : 0;
  if (rc == 0)
    rc = migrated_or_busy(r);
  if (rc == 0)
    rc = cs_policy_parse(q->document ? q->document : "", len, &p);
  cs_policy_free(p);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  char path[POLICY_PATH_MAX];
  policy_path(q->name, path, sizeof path);
  cs_info("policy %s written by %s", q->name, r->accessor);
  put_sealed_value(r, path, (const uint8_t *)q->document, len);
}

void cs_op_policy_read(cs_rq *r) {
  const Custos__PolicyReadReq *q = r->req->policy_read;
  char *doc;
  size_t len;
  int rc = cs_policy_check_name(q->name);
  if (rc == 0)
    rc = cs_policy_read_doc(r->d, q->name, &doc, &len);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__PolicyRes pr = CUSTOS__POLICY_RES__INIT;
  pr.name = q->name;
  pr.document = doc;
  res.result_case = CUSTOS__RESPONSE__RESULT_POLICY;
  res.policy = &pr;
  respond(r, 0, &res, NULL, 0);
  free(doc);
}

void cs_op_policy_list(cs_rq *r) {
  char **names = NULL;
  size_t n = 0;
  int rc = cs_store_list(r->d->store, CS_P_POLICY, &names, &n);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__PolicyListRes pl = CUSTOS__POLICY_LIST_RES__INIT;
  pl.n_names = n;
  pl.names = names;
  res.result_case = CUSTOS__RESPONSE__RESULT_POLICY_LIST;
  res.policy_list = &pl;
  respond(r, 0, &res, NULL, 0);
  cs_store_list_free(names, n);
}

void cs_op_policy_delete(cs_rq *r) {
  const Custos__PolicyDeleteReq *q = r->req->policy_delete;
  char path[POLICY_PATH_MAX];
  int rc = cs_policy_check_name(q->name);
  /* A delete needs no migration first: either format of the others stays
   * what it was, and the migration's checks notice the delete. */
  if (rc == 0) {
    policy_path(q->name, path, sizeof path);
    rc = cs_store_exists(r->d->store, path);
    if (rc == 0)
      rc = cs_error_set(CS_ENOTFOUND, "no policy named %s", q->name);
  }
  cs_batch b;
  cs_batch_init(&b);
  if (rc >= 0)
    rc = cs_batch_del(&b, path);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  cs_info("policy %s deleted by %s", q->name, r->accessor);
  submit_write(r, &b);
}
