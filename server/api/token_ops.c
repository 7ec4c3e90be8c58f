/*
 * token_ops: the handlers of tokens (token-create, -lookup, -renew,
 * -revoke), token lifetimes (token.max_ttl), and the tokens a request
 * carries for the audit log.  The token store is server/core/token.
 */
#include "api_int.h"

#include "crypto.h"
#include "cs_error.h"
#include "log.h"
#include "secmem.h"
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t cs_sens_token_lookup(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"token", req->token_lookup->token.data, req->token_lookup->token.len};
  return 1;
}

size_t cs_sens_token_renew(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"token", req->token_renew->token.data, req->token_renew->token.len};
  return 1;
}

size_t cs_sens_token_revoke(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"token", req->token_revoke->token.data, req->token_revoke->token.len};
  return 1;
}

/* A revoke committed (or failed): it is refused from now on. */
void cs_after_token_change(cs_rq *r, int status) {
  (void)status;
  cs_api_auth_changed(r->d);
}

static void respond_token(cs_rq *r, const Custos__TokenEntry *te, const char *token) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__TokenRes tr = CUSTOS__TOKEN_RES__INIT;
  tr.token = (char *)(token ? token : "");
  tr.accessor = te->accessor;
  tr.n_policies = te->n_policies;
  tr.policies = te->policies;
  tr.expire_time = te->expire_time;
  tr.renewable = te->renewable;
  tr.issue_time = te->issue_time;
  res.result_case = CUSTOS__RESPONSE__RESULT_TOKEN;
  res.token = &tr;
  cs_audit_sensitive sens = {"token", (const uint8_t *)token, token ? strlen(token) : 0};
  respond(r, 0, &res, &sens, token ? 1 : 0);
}

/*
 * Token lifetimes.  No token but one created by a root token without a TTL
 * lives forever, and none lives longer than token.max_ttl after it was
 * issued (Vault's rule for non-periodic tokens: renewals cannot extend it
 * past its maximum TTL).  A TTL or increment above max_ttl is refused
 * rather than silently shortened, so a huge value cannot wrap the expiry
 * to 0 ("never") or overflow it; and every sum is checked anyway.
 */
static int ttl_in_range(const cs_rq *r, const char *what, uint64_t seconds) {
  uint64_t max = r->d->cfg->token_max_ttl;
  if (seconds > max)
    return cs_error_set(CS_EINVAL, "%s of %llu s exceeds the maximum token TTL of %llu s (token.max_ttl)",
                        what, (unsigned long long)seconds, (unsigned long long)max);
  return 0;
}

/* *out = t + seconds, or CS_EINVAL when that does not fit in an int64. */
static int time_add(int64_t t, uint64_t seconds, int64_t *out) {
  if (seconds > INT64_MAX || __builtin_add_overflow(t, (int64_t)seconds, out))
    return cs_error_set(CS_EINVAL, "time out of range: %lld + %llu s", (long long)t,
                        (unsigned long long)seconds);
  return 0;
}

/* The expiry a renew gives: now + inc, but not past issue + max_ttl. */
static int renewed_expiry(const cs_rq *r, const Custos__TokenEntry *te, uint64_t inc, int64_t now,
                          int64_t *expire) {
  int64_t want = 0, limit = 0;
  int rc = time_add(now, inc, &want);
  if (rc == 0)
    rc = time_add(te->issue_time, r->d->cfg->token_max_ttl, &limit);
  if (rc < 0)
    return rc;
  if (limit <= now)
    return cs_error_set(CS_EINVAL, "token has reached its maximum TTL (token.max_ttl, %llu s "
                        "after issue) and cannot be renewed", (unsigned long long)r->d->cfg->token_max_ttl);
  *expire = want < limit ? want : limit;
  return 0;
}

typedef struct pending_token {
  cs_rq *r;
  Custos__TokenEntry te;
  char token[CS_TOKEN_MAX];
  char path[CS_TOKEN_PATH_MAX];   /* renew: the entry it rewrites */
  char accessor[25];
  char **policies;
  size_t n;
} pending_token;

static void pending_token_free(pending_token *p) {
  for (size_t i = 0; i < p->n; i++)
    free(p->policies[i]);
  free(p->policies);
  cs_wipe(p->token, sizeof p->token);
  free(p);
}

static void on_token_created(void *arg, int status) {
  pending_token *p = arg;
  cs_error_clear();
  if (status < 0)
    respond(p->r, status, NULL, NULL, 0);
  else
    respond_token(p->r, &p->te, p->token);
  pending_token_free(p);
}

void cs_op_token_create(cs_rq *r) {
  const Custos__TokenCreateReq *q = r->req->token_create;
  int rc;
  if (q->n_policies == 0 || q->n_policies > 16) {
    respond(r, cs_error_set(CS_EINVAL, "a token needs 1 to 16 policies"), NULL, NULL, 0);
    return;
  }
  for (size_t i = 0; i < q->n_policies; i++) {
    if (strcmp(q->policies[i], CS_POLICY_ROOT) == 0 && !r->root) {
      respond(r, cs_error_set(CS_EPERM, "only a root token can create root tokens"), NULL, NULL, 0);
      return;
    }
    if (strcmp(q->policies[i], CS_POLICY_ROOT) != 0 && (rc = cs_policy_check_name(q->policies[i])) < 0) {
      respond(r, rc, NULL, NULL, 0);
      return;
    }
  }
  /* No TTL: forever for a root caller (as before), max_ttl for anyone else. */
  uint64_t ttl = q->ttl_seconds ? q->ttl_seconds : r->root ? 0 : r->d->cfg->token_max_ttl;
  int64_t now = cs_now(), expire = 0;
  if ((rc = ttl_in_range(r, "ttl", ttl)) < 0 || (ttl && (rc = time_add(now, ttl, &expire)) < 0)) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  pending_token *p = calloc(1, sizeof *p);
  if (p == NULL || (p->policies = calloc(q->n_policies, sizeof *p->policies)) == NULL) {
    free(p);
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  p->r = r;
  for (size_t i = 0; i < q->n_policies; i++)
    if ((p->policies[p->n++] = strdup(q->policies[i])) == NULL)
      goto nomem;
  uint8_t acc[12];
  if ((rc = cs_token_generate(p->token)) < 0 || (rc = cs_random(acc, sizeof acc)) < 0)
    goto fail;
  cs_hex_encode(acc, sizeof acc, p->accessor);
  custos__token_entry__init(&p->te);
  p->te.accessor = p->accessor;
  p->te.n_policies = p->n;
  p->te.policies = p->policies;
  p->te.issue_time = now;
  p->te.ttl_seconds = ttl;
  p->te.expire_time = expire;
  p->te.renewable = q->renewable;
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = cs_token_stage(cs_seal_keyring(r->d->seal), p->token, &p->te, &b)) < 0) {
    cs_batch_clear(&b);
    goto fail;
  }
  rc = cs_commitq_submit(r->d->commitq, &b, on_token_created, p);
  cs_batch_clear(&b);
  if (rc < 0)
    goto fail;
  cs_info("token created (accessor %s) by %s", p->accessor, r->accessor);
  return;
nomem:
  rc = CS_ENOMEM;
fail:
  pending_token_free(p);
  respond(r, rc, NULL, NULL, 0);
}

/* The target of lookup/renew/revoke: the given token, or the caller's. */
static void target_token(cs_rq *r, const ProtobufCBinaryData *given, const uint8_t **tok, size_t *len) {
  if (given->len > 0) {
    *tok = given->data;
    *len = given->len;
  } else {
    *tok = r->token;
    *len = r->token_len;
  }
}

static int has_text(const char *s) { return s != NULL && s[0] != '\0'; }

void cs_op_token_lookup(cs_rq *r) {
  const Custos__TokenLookupReq *q = r->req->token_lookup;
  cs_keyring *kr = cs_seal_keyring(r->d->seal);
  Custos__TokenEntry *te = NULL;
  int rc;
  if (has_text(q->accessor)) {
    /* By accessor (the audit log's handle): sudo on sys/token/lookup. */
    uint8_t hash[32];
    if (q->token.len > 0)
      rc = cs_error_set(CS_EINVAL, "give a token or an accessor to look up, not both");
    else if ((rc = cs_token_find_accessor(r->d->store, kr, q->accessor, hash)) == 0)
      rc = cs_token_lookup_hash(r->d->store, kr, hash, cs_now(), &te);
  } else {
    const uint8_t *tok;
    size_t len;
    target_token(r, &q->token, &tok, &len);
    rc = cs_token_lookup(r->d->store, kr, tok, len, cs_now(), &te);
  }
  if (rc == CS_EPERM || rc == CS_EEXPIRED)
    rc = cs_error_set(CS_ENOTFOUND, "no such token (or it expired)");
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  respond_token(r, te, NULL);
  cs_token_entry_free(te);
}

/* The renewal was a conditional put: if a revoke committed first it was
 * skipped, and the entry is gone (tokens are never re-created). */
static void on_token_renewed(void *arg, int status) {
  pending_token *p = arg;
  cs_error_clear();
  cs_api_auth_changed(p->r->d);
  if (status == 0 && (status = cs_store_exists(p->r->d->store, p->path)) == 0)
    status = cs_error_set(CS_ENOTFOUND, "no such token (it was revoked)");
  if (status < 0)
    respond(p->r, status, NULL, NULL, 0);
  else
    respond_token(p->r, &p->te, NULL);
  pending_token_free(p);
}

void cs_op_token_renew(cs_rq *r) {
  const Custos__TokenRenewReq *q = r->req->token_renew;
  const uint8_t *tok;
  size_t len;
  target_token(r, &q->token, &tok, &len);
  Custos__TokenEntry *te;
  int64_t now = cs_now();
  int rc = cs_token_lookup(r->d->store, cs_seal_keyring(r->d->seal), tok, len, now, &te);
  if (rc == CS_EPERM || rc == CS_EEXPIRED)
    rc = cs_error_set(CS_ENOTFOUND, "no such token (or it expired)");
  if (rc == 0 && (!te->renewable || te->expire_time == 0)) {
    rc = cs_error_set(CS_EINVAL, te->renewable ? "token does not expire" : "token is not renewable");
    cs_token_entry_free(te);
  }
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  uint64_t inc = q->increment_seconds ? q->increment_seconds : te->ttl_seconds;
  pending_token *p = NULL;
  cs_batch b;
  cs_batch_init(&b);
  /* An entry written before max_ttl existed may carry a longer ttl. */
  if (q->increment_seconds == 0 && inc > r->d->cfg->token_max_ttl)
    inc = r->d->cfg->token_max_ttl;
  if ((rc = ttl_in_range(r, "increment", inc)) < 0 ||
      (rc = renewed_expiry(r, te, inc, now, &te->expire_time)) < 0)
    goto fail;
  /* Keep what the response shows; the entry itself is re-staged as is. */
  p = calloc(1, sizeof *p);
  if (p == NULL || (p->policies = calloc(te->n_policies + 1, sizeof *p->policies)) == NULL) {
    rc = CS_ENOMEM;
    goto fail;
  }
  p->r = r;
  cs_token_path(tok, len, p->path);
  for (size_t i = 0; i < te->n_policies; i++)
    if ((p->policies[p->n++] = strdup(te->policies[i])) == NULL) {
      rc = CS_ENOMEM;
      goto fail;
    }
  snprintf(p->accessor, sizeof p->accessor, "%s", te->accessor);
  custos__token_entry__init(&p->te);
  p->te.accessor = p->accessor;
  p->te.n_policies = p->n;
  p->te.policies = p->policies;
  p->te.issue_time = te->issue_time;
  p->te.expire_time = te->expire_time;
  p->te.renewable = te->renewable;
  p->te.ttl_seconds = te->ttl_seconds;
  p->te.root = te->root;
  /* cs_token_stage hashes the token it is given: stage under its path. */
  char token[CS_TOKEN_MAX];
  memcpy(token, tok, len);
  token[len] = '\0';
  rc = cs_token_stage_renewal(cs_seal_keyring(r->d->seal), token, &p->te, &b);
  cs_wipe(token, sizeof token);
  if (rc == 0)
    rc = cs_commitq_submit(r->d->commitq, &b, on_token_renewed, p);
  if (rc < 0)
    goto fail;
  cs_batch_clear(&b);
  cs_token_entry_free(te);
  return;
fail:
  cs_batch_clear(&b);
  cs_token_entry_free(te);
  if (p != NULL)
    pending_token_free(p);
  respond(r, rc, NULL, NULL, 0);
}

/* The token a revoke names: the given one, or with the self flag (and only
 * then) the caller's.  An empty request used to mean "self": a root client
 * that forgot the field revoked root. */
/* The storage path of the token to revoke: the given token, the caller's
 * own (self), or the one with the given accessor; exactly one of them. */
static int revoke_target(cs_rq *r, const Custos__TokenRevokeReq *q, char path[CS_TOKEN_PATH_MAX]) {
  int by_accessor = has_text(q->accessor);
  int given = (q->self != 0) + (q->token.len > 0) + by_accessor;
  if (given == 0)
    return cs_error_set(CS_EINVAL, "no token to revoke: name one (a token or its accessor), or "
                                   "set self to revoke the caller's own token");
  if (given > 1)
    return cs_error_set(CS_EINVAL, "name only one token to revoke: a token, its accessor, or "
                                   "self for the caller's own token");
  if (by_accessor) {
    uint8_t hash[32];
    int rc = cs_token_find_accessor(r->d->store, cs_seal_keyring(r->d->seal), q->accessor, hash);
    if (rc < 0)
      return rc;
    memcpy(path, "core/token/", 11);
    cs_hex_encode(hash, sizeof hash, path + 11);
    return 1;
  }
  const uint8_t *tok;
  size_t len;
  target_token(r, &q->token, &tok, &len);
  if (len == 0 || len >= CS_TOKEN_MAX)
    return 0;
  cs_token_path(tok, len, path);
  return 1;
}

void cs_op_token_revoke(cs_rq *r) {
  const Custos__TokenRevokeReq *q = r->req->token_revoke;
  char path[CS_TOKEN_PATH_MAX];
  int rc = revoke_target(r, q, path);
  if (rc == 1)
    rc = cs_store_exists(r->d->store, path);
  if (rc <= 0) {
    respond(r, rc < 0 ? rc : cs_error_set(CS_ENOTFOUND, "no such token"), NULL, NULL, 0);
    return;
  }
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = cs_batch_del(&b, path)) < 0) {
    cs_batch_clear(&b);
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  cs_info("token revoked by %s%s%s", r->accessor, q->self ? " (itself)" : "",
          has_text(q->accessor) ? " (by accessor)" : "");
  submit_write(r, &b);
}
