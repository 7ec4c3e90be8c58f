/*
 * api_int.h: what the files of server/api share, and nothing outside it
 * includes.
 *
 * Every request gets a cs_rq (request context) that lives until it is
 * answered.  The way of every request (api.c): the op table row
 * (ops.def) -> wait while a new leader catches up, or redirect from a
 * standby -> path_of (names checked) -> authorize() (authz.c) -> the
 * "request" audit record -> the row's handler.  A handler answers exactly
 * once, by respond() (now, or from a callback later on the loop thread) or
 * by handing a batch to submit_write(), whose completion runs the row's
 * after_commit and then responds.  respond() is the one way out: it writes
 * the "response" audit record with the exact error code, sends, and frees
 * the cs_rq.  Loop thread only.
 */
#ifndef CS_API_INT_H
#define CS_API_INT_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "authz.h"
#include "metrics.h"
#include "custos.pb-c.h"
#include "api.h"
#include "kv.h"
#include "policy.h"
#include "store.h"

#include "op.h"

struct cs_rq {
  cs_api_env *d;              /* the daemon's env (api.h): store, seal, queue, audit, HA */
  cs_reply *reply;
  const cs_op *op;            /* never NULL once admitted */
  uint64_t id;
  char client[64];
  char accessor[32];
  char path[CS_KV_PATH_MAX + 2];   /* a path, or a listed folder with its "/" */
  int path_rc;                /* the row's check of the names (path_of): 0 or its error */
  int authed;                 /* a token was accepted */
  int root;                   /* ... and it is a root token */
  const uint8_t *token;       /* the caller's token (valid while req lives) */
  size_t token_len;
  Custos__Request *req;       /* freed with the cs_rq */
  cs_rq *held_next;           /* while held (api.c: a leader catching up) */
  cs_rq *next;                /* while parked (park()), or waiting for its request record */
  uint64_t gen;               /* the auth generation it was authorized at (when it waits) */
  uint64_t pass;              /* the audit group's write count when it began to wait */
  uint64_t t0_ns;             /* arrival (cs_stats_now_ns): the latency metric */
};

/* The row for `op`, or NULL when this server has none (api.c). */
const cs_op *cs_op_find(int op);

/* Request metrics (api.c): for row i of the table (i < cs_op_rows()),
 * how many answers had error code `code` (0 = ok) and their latency.
 * cs_op_code_at walks the non-zero codes: returns 0 past the last. */
size_t cs_op_rows(void);
const cs_op *cs_op_row(size_t i);
int cs_op_code_at(size_t i, size_t *cursor, int *code, uint64_t *count);
const cs_hist *cs_op_latency(size_t i);

/*
 * The one way out (api.c).  rc < 0: the request failed with rc; the
 * response is built from rc (res NULL), or is `res` when the caller filled
 * its Error itself (a redirect naming the active).  rc == 0: `res` is the
 * result.  The "response" audit record carries exactly rc and the
 * sensitive values sens[0..n) (hashed); if it cannot be written the client
 * gets CS_EAUDIT instead.  Frees r (and its request); res and sens stay
 * the caller's.
 */
void respond(cs_rq *r, int rc, Custos__Response *res, const cs_audit_sensitive *sens, size_t n);
/* respond(r, 0, res, ...) with the values of pairs[0..n) (a secret's
 * fields) as the response record's sensitive values. */
void respond_pairs(cs_rq *r, Custos__Response *res, Custos__KvPair *const *pairs, size_t n);
/* respond() with an Empty result. */
void respond_empty(cs_rq *r);
/* respond() with a KvListRes of keys[0..n) (rc < 0: the error); frees keys. */
void respond_keys(cs_rq *r, int rc, char **keys, size_t n);

/*
 * Hands a staged batch to the commit queue (api.c); b is cleared.  When the
 * group holding it is committed (or failed) the row's after_commit runs
 * and r is answered: Empty, or the error.
 */
void submit_write(cs_rq *r, cs_batch *b);

/*
 * rc from a key-changing seal call (api.c): 1 when r was parked (the server
 * holds the key-change slot for an automatic rotation; r runs again,
 * authorized again, once the slot is free), 0 when the caller must answer
 * rc now.
 */
int park(cs_rq *r, int rc);

/* Writes an audit record for r (api.c): 0, or the error (the request must
 * then fail).  0 when no audit log is configured. */
int cs_rq_audit(cs_rq *r, cs_audit_type type, int err, const cs_audit_sensitive *sens, size_t n);

/*
 * The one place that decides whether a request may run (authz.c): 0, or
 * CS_EBUSY / CS_ENOTINIT / CS_ESEALED / the token's error / CS_EPERM.  Sets
 * r->accessor, r->authed, r->root and the connection's frame grant.
 */
int cs_authorize(cs_rq *r) __attribute__((warn_unused_result));

/* Policy documents (policy_ops.c). */
#define CS_P_POLICY "core/policy/"
int cs_policy_read_doc(cs_api_env *d, const char *name, char **doc, size_t *len)
    __attribute__((warn_unused_result));
int cs_policy_loader(void *ctx, const char *name, char **doc, size_t *len);
/* Migrates stored policies to namespaces if the store is not yet (an
 * unsealed leader only; once in flight at a time).  Seal events and
 * activation call it. */
void cs_policies_migrate(cs_api_env *d);

/* The handlers: one declaration per row. */
#define OP(tag, name, needs_token, sys_path, cap, handler, path_of, sensitive_of, after_commit) \
  void handler(cs_rq *r);
#include "ops.def"
#undef OP

/* path_of, sensitive_of and after_commit functions named in ops.def. */
int cs_path_kv_put(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv_get(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv_list(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv_delete(const Custos__Request *req, char *out, size_t cap);
int cs_path_policy_write(const Custos__Request *req, char *out, size_t cap);
int cs_path_policy_read(const Custos__Request *req, char *out, size_t cap);
int cs_path_policy_delete(const Custos__Request *req, char *out, size_t cap);
size_t cs_sens_unseal(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_rekey_update(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_rekey_verify(const Custos__Request *req, cs_audit_sensitive *s);
/* unseal --cluster (rekey_ops.c, seal_ops.c). */
void cs_unseal_cluster(cs_rq *r);
void cs_op_status_relayed(cs_rq *r, Custos__UnsealRelayResult **relayed, size_t n_relayed);
size_t cs_sens_kv_put(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_token_lookup(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_token_renew(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_token_revoke(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_audit_hash(const Custos__Request *req, cs_audit_sensitive *s);
int cs_path_kv2_put(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_get(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_delete(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_undelete(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_destroy(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_meta_get(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_meta_put(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_meta_delete(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_list(const Custos__Request *req, char *out, size_t cap);
int cs_path_kv2_config(const Custos__Request *req, char *out, size_t cap);
size_t cs_sens_kv2_put(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_verify_share(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_genroot_init(const Custos__Request *req, cs_audit_sensitive *s);
size_t cs_sens_genroot_update(const Custos__Request *req, cs_audit_sensitive *s);
void cs_after_token_change(cs_rq *r, int status);
void cs_after_policy_change(cs_rq *r, int status);

#endif
