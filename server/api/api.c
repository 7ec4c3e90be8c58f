/*
 * api: from a decoded Request to its answer, for both transports (the
 * protobuf listener and the HTTP API build the same Custos__Request and
 * call cs_dispatch).
 *
 * Owns the op table (built from ops.def), the request context (cs_rq), the
 * order every request goes through (admit), the one way out (respond), the
 * write path (submit_write), and two queues: requests held while a new
 * leader catches up, and requests parked while the server holds the
 * key-change slot.  What may run is decided in authz.c; what each op does
 * is in its family's file (seal_ops.c, kv_ops.c, ...).
 *
 * Audit: a "request" record is written before anything is done and a
 * "response" record before the answer leaves; if either cannot be written
 * the request fails (no unaudited access).  Loop thread only.
 */
#include "api_int.h"
#include "bytes.h"
#include "api.h"

#include "cs_error.h"
#include "ha.h"
#include "log.h"
#include "stats.h"
#include "wire.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the op table */

static const cs_op ops[] = {
#define OP(tag, name, needs_token, sys_path, cap, handler, path_of, sensitive_of, after_commit) \
  {CUSTOS__REQUEST__OP_##tag, name, needs_token, sys_path, cap, handler, path_of, sensitive_of,      \
   after_commit},
#include "ops.def"
#undef OP
};

/* ---------------------------------------------------------------- request metrics */

#define NROWS (sizeof ops / sizeof ops[0])
/* Codes 0 (ok) .. -(NCODES-2); anything beyond counts in the last slot. */
#define NCODES 256
static uint64_t answers[NROWS][NCODES];
static cs_hist latency[NROWS];
static int latency_ready;

size_t cs_op_rows(void) { return NROWS; }
const cs_op *cs_op_row(size_t i) { return i < NROWS ? &ops[i] : NULL; }

static void count_answer(const cs_rq *r, int rc) {
  if (r->op == NULL)
    return;
  size_t i = (size_t)(r->op - ops);
  if (!latency_ready) {
    for (size_t k = 0; k < NROWS; k++)
      cs_hist_init(&latency[k], cs_hist_latency_bounds, cs_hist_latency_nbounds);
    latency_ready = 1;
  }
  size_t c = rc >= 0 ? 0 : -(long)rc < NCODES - 1 ? (size_t)-(long)rc : NCODES - 1;
  answers[i][c]++;
  cs_hist_observe_ns(&latency[i], cs_stats_now_ns() - r->t0_ns);
}

int cs_op_code_at(size_t i, size_t *cursor, int *code, uint64_t *count) {
  for (; i < NROWS && *cursor < NCODES; (*cursor)++) {
    if (answers[i][*cursor] == 0)
      continue;
    *code = -(int)*cursor;
    *count = answers[i][*cursor];
    (*cursor)++;
    return 1;
  }
  return 0;
}

const cs_hist *cs_op_latency(size_t i) {
  return i < NROWS && latency_ready ? &latency[i] : NULL;
}

const cs_op *cs_op_find(int op) {
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].op == op)
      return &ops[i];
  return NULL;
}

/* ---------------------------------------------------------------- the way out */

static void rq_free(cs_rq *r) {
  cs_wire_request_free(r->req);
  free(r);
}

/* An audit record for r: written at once, or staged (stage = 1) into the
 * group that group_flush writes before any answer of it leaves. */
static int rq_record(cs_rq *r, cs_audit_type type, int err, const cs_audit_sensitive *sens,
                     size_t n, int stage) {
  if (r->d->audit == NULL)
    return 0;
  cs_audit_record rec = {.type = type,
                         .time = cs_now(),
                         .request_id = r->id,
                         .client = r->client,
                         .accessor = r->accessor,
                         .operation = r->op ? r->op->name : "unknown",
                         .path = r->path,
                         .error = err,
                         .error_message = err ? cs_error_message(err) : NULL,
                         .sensitive = sens,
                         .n_sensitive = n};
  int rc = stage ? cs_audit_stage(r->d->audit, &rec) : cs_audit_write(r->d->audit, &rec);
  if (rc < 0)
    cs_stats_audit_failed();
  if (rc < 0)
    cs_error("audit log write failed, refusing %s: %s", rec.operation, cs_error_message(rc));
  return rc;
}

int cs_rq_audit(cs_rq *r, cs_audit_type type, int err, const cs_audit_sensitive *sens, size_t n) {
  return rq_record(r, type, err, sens, n, 0);
}

/* ---------------------------------------------------------------- grouped audit writes */

/*
 * With an audit log, the records of a loop turn go out in one write(2)
 * instead of one each (two per request).  Every response record is staged
 * and its answer held (cs_reply_hold); so is every request record.  A
 * request without side effects (a secret read or list: nothing happens
 * before the answer but the read) runs at once, unless requests admitted
 * before it wait; one with effects waits in the group (acts) and runs only
 * once the write holding its request record has succeeded, so nothing acts
 * before it is on record.  After the turn's I/O callbacks, the check handle
 * writes the group, then the waiting requests act and the answers go, each
 * only for the records of that write; if the write failed, each answer is
 * replaced by the audit error and each waiting request gets it instead of
 * acting.  Answers released and requests run here may add to the group
 * (buffered requests run, synchronous answers): the loop goes on until
 * nothing is staged, so none waits for the next turn.
 */
static struct {
  uv_check_t check;
  int started, inited;
  cs_audit *audit;
  cs_reply **replies;
  size_t n, cap;
  cs_rq *acts, **acts_tail;   /* requests with effects waiting for the write, in arrival order */
  uint64_t passes;            /* group writes so far (run_acts checks against it) */
  int closing;  /* cs_api_close is flushing: waiting requests are refused, not run */
  int closed;   /* cs_api_close ran: records are written at once from then on */
} group = {.acts_tail = &group.acts};

/*
 * The requests whose request records were in the write just made (rc):
 * they act now, in arrival order, or get the error.  One authorized under
 * an older auth generation (a seal, a revoke, a policy change, a restore
 * or a role change in between, or an earlier one of this list that did
 * one of those) is authorized again first, as a parked one is.
 */
static void run_acts(cs_rq *list, int rc) {
  while (list != NULL) {
    cs_rq *r = list;
    list = r->next;
    r->next = NULL;
    assert(r->pass < group.passes); /* its record was in the write just made */
    cs_error_clear();
    int arc = rc < 0            ? CS_EAUDIT
              : group.closing   ? cs_error_set(CS_EUNAVAIL, "the server is stopping")
              : r->gen != r->d->auth_gen ? cs_authorize(r)
                                         : 0;
    if (arc < 0)
      respond(r, arc, NULL, NULL, 0);
    else
      r->op->handler(r);
  }
}

static void group_flush(void) {
  while (group.n > 0 || group.acts != NULL ||
         (group.audit != NULL && cs_audit_staged(group.audit) > 0)) {
    int rc = cs_audit_flush(group.audit);
    group.passes++;
    if (rc < 0)
      cs_stats_audit_failed();
    if (rc < 0)
      cs_error("audit log write failed, refusing %zu answers: %s", group.n,
               cs_error_message(rc));
    /* Exactly the answers and requests whose records this write held:
     * whatever they add (synchronous answers, buffered requests of their
     * connections) goes to the next pass. */
    cs_rq *acts = group.acts;
    group.acts = NULL;
    group.acts_tail = &group.acts;
    cs_reply **list = group.replies;
    size_t n = group.n;
    group.replies = NULL;
    group.n = group.cap = 0;
    /* The waiting requests act before the answers go: a request that a
     * released answer lets run (a read behind it on its connection) must
     * not run ahead of a seal or a revoke admitted before it. */
    run_acts(acts, rc);
    cs_reply_release_many(list, n, rc < 0 ? CS_EAUDIT : 0);
    if (group.replies == NULL) {
      group.replies = list; /* keep the array for the next turn */
      group.cap = n > 0 ? n : 0;
    } else {
      free(list);
    }
  }
  if (group.started) {
    uv_check_stop(&group.check);
    group.started = 0;
  }
}

static void on_check(uv_check_t *h) {
  (void)h;
  group_flush();
}

/* Makes sure the group is written at the end of this turn. */
static void group_touch(cs_rq *r) {
  if (!group.inited) {
    uv_check_init(r->d->loop, &group.check);
    uv_unref((uv_handle_t *)&group.check);
    group.inited = 1;
  }
  group.audit = r->d->audit;
  if (!group.started) {
    uv_check_start(&group.check, on_check);
    group.started = 1;
  }
}

/* Room for one more held answer: 0 or CS_ENOMEM. */
static int group_reserve(void) {
  if (group.n < group.cap)
    return 0;
  size_t cap = group.cap ? group.cap * 2 : 64;
  cs_reply **p = realloc(group.replies, cap * sizeof *p);
  if (p == NULL)
    return CS_ENOMEM;
  group.replies = p;
  group.cap = cap;
  return 0;
}

void cs_api_close(void) {
  group.closing = 1;
  group_flush();
  group.closing = 0;
  group.closed = 1; /* a request still running later (parked) must not re-arm the handle */
  free(group.replies);
  group.replies = NULL;
  group.n = group.cap = 0;
  if (group.inited) {
    uv_close((uv_handle_t *)&group.check, NULL);
    group.inited = 0;
  }
}

/* An op whose request record may be staged: no effect before its answer. */
static int side_effect_free(const cs_op *op) {
  return op->sys_path == NULL && (op->cap == CS_CAP_READ || op->cap == CS_CAP_LIST);
}

/* The one builder of an error response: code rc, message msg. */
static void error_response(Custos__Response *res, Custos__Error *e, int rc, const char *msg) {
  custos__response__init(res);
  custos__error__init(e);
  e->code = (Custos__ErrorCode)cs_error_wire_code(rc);
  e->message = (char *)msg;
  res->error = e;
}

void respond(cs_rq *r, int rc, Custos__Response *res, const cs_audit_sensitive *sens, size_t n) {
  Custos__Response eres;
  Custos__Error e;
  if (rc < 0 && res == NULL) {
    error_response(&eres, &e, rc, cs_error_message(rc));
    res = &eres;
  }
  int err = rc < 0 ? rc : 0;
  if (rc < 0)
    sens = NULL, n = 0;
  count_answer(r, rc);
  if (r->d->audit != NULL && !group.closed && group_reserve() == 0 &&
      rq_record(r, CS_AUDIT_RESPONSE, err, sens, n, 1) == 0) {
    group_touch(r);
    cs_reply_hold(r->reply, res, r->authed);
    group.replies[group.n++] = r->reply;
    rq_free(r);
    return;
  }
  /* No log, or the record could not be staged: written at once (a
   * failure is reported, the staged group is unaffected). */
  if (rq_record(r, CS_AUDIT_RESPONSE, err, sens, n, 0) < 0) {
    /* The fixed message: the detail names the log's path. */
    error_response(&eres, &e, CS_EAUDIT, cs_strerror(CS_EAUDIT));
    res = &eres;
  }
  cs_reply_send(r->reply, res, r->authed);
  rq_free(r);
}

void respond_empty(cs_rq *r) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Empty empty = CUSTOS__EMPTY__INIT;
  res.result_case = CUSTOS__RESPONSE__RESULT_EMPTY;
  res.empty = &empty;
  respond(r, 0, &res, NULL, 0);
}

void respond_pairs(cs_rq *r, Custos__Response *res, Custos__KvPair *const *pairs, size_t n) {
  /* Every field is on record, however many the secret has (and none
   * without an audit log). */
  size_t ns = r->d->audit != NULL ? n : 0;
  cs_audit_sensitive few[4] = {{0}}, *sens = ns <= 4 ? few : calloc(ns, sizeof *sens);
  if (sens == NULL) {
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  for (size_t i = 0; i < ns; i++)
    sens[i] = (cs_audit_sensitive){pairs[i]->key, pairs[i]->value.data, pairs[i]->value.len};
  respond(r, 0, res, sens, ns);
  if (sens != few)
    free(sens);
}

void respond_keys(cs_rq *r, int rc, char **keys, size_t n) {
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvListRes lr = CUSTOS__KV_LIST_RES__INIT;
  lr.n_keys = n;
  lr.keys = keys;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV_LIST;
  res.kv_list = &lr;
  respond(r, 0, &res, NULL, 0);
  cs_store_list_free(keys, n);
}

/* ---------------------------------------------------------------- writes */

static void on_write_done(void *arg, int status) {
  cs_rq *r = arg;
  /* The commit queue set this status's detail (from the writer thread). */
  if (r->op->after_commit != NULL)
    r->op->after_commit(r, status);
  if (status < 0)
    respond(r, status, NULL, NULL, 0);
  else
    respond_empty(r);
}

void submit_write(cs_rq *r, cs_batch *b) {
  int rc = cs_commitq_submit(r->d->commitq, b, on_write_done, r);
  cs_batch_clear(b);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- parking */

/*
 * The server's own key changes (automatic rotation) never fail an
 * operator's request: one refused with CS_EBUSY while the server holds
 * the key-change slot is parked and run again, in arrival order, once the
 * slot is free, authorized again first (its token may be gone by then).
 * Handlers refuse before changing anything, so running one again is safe.
 */
static cs_rq *parked_head, *parked_tail;

static void unpark(void *ctx) {
  cs_api_env *d = ctx;
  cs_rq *list = parked_head;
  parked_head = parked_tail = NULL;
  while (list != NULL) {
    cs_rq *r = list;
    list = r->next;
    r->next = NULL;
    if (cs_seal_key_slot(d->seal) != CS_SEAL_SLOT_FREE) {
      /* Taken again (by a request run just now): the rest keep waiting. */
      r->next = list;
      list = NULL;
      if (parked_tail != NULL)
        parked_tail->next = r;
      else
        parked_head = r;
      for (parked_tail = r; parked_tail->next != NULL; parked_tail = parked_tail->next)
        ;
      break;
    }
    cs_error_clear();
    /* Authorized when it arrived, but the token may have been revoked or
     * have expired while it waited, or a restore may have replaced the
     * token store: decide again, as for a held request (admit). */
    int rc = cs_authorize(r);
    if (rc < 0)
      respond(r, rc, NULL, NULL, 0);
    else
      r->op->handler(r);
  }
}

int park(cs_rq *r, int rc) {
  cs_api_env *d = r->d;
  if (rc != CS_EBUSY || cs_seal_key_slot(d->seal) != CS_SEAL_SLOT_SERVER)
    return 0;
  cs_seal_on_key_slot_free(d->seal, unpark, d);
  r->next = NULL;
  if (parked_tail != NULL)
    parked_tail->next = r;
  else
    parked_head = r;
  parked_tail = r;
  cs_debug("%s from %s waits for an automatic key change", r->op->name, r->client);
  return 1;
}

/* ---------------------------------------------------------------- cluster (HA) */

/*
 * Cluster mode: a node that is not the raft leader answers only status,
 * unseal and metrics itself; init, data and operator requests get STANDBY
 * with the active's API address (the client library follows it).  Metrics
 * are this node's own telemetry: redirected, a scraper (Prometheus follows
 * redirects) saw the active's gauges under every member's name, so a
 * sealed standby looked unsealed.  Returns 1 when it answered (and freed r).
 */
static int standby_redirect(cs_rq *r) {
  int op = r->req->op_case;
  /* A removed node refuses even unseal: it must not serve again. */
  int removed = cs_ha_removed(r->d);
  if (op == CUSTOS__REQUEST__OP_STATUS || op == CUSTOS__REQUEST__OP_METRICS ||
      (op == CUSTOS__REQUEST__OP_UNSEAL && !removed) || (!removed && cs_ha_is_leader(r->d)))
    return 0;
  /* A redirect is a refusal: on record like any other (request first). */
  if (cs_rq_audit(r, CS_AUDIT_REQUEST, 0, NULL, 0) < 0) {
    respond(r, CS_EAUDIT, NULL, NULL, 0);
    return 1;
  }
  const char *mode, *active;
  cs_ha_status(r->d, &mode, &active);
  int rc = active[0] && !removed
               ? cs_error_set(CS_ESTANDBY, "this node is a standby; the active node is %s", active)
               : cs_ha_no_leader_error(r->d);
  Custos__Response res;
  Custos__Error e;
  error_response(&res, &e, rc, cs_error_message(rc));
  e.active_address = (char *)active;
  respond(r, rc, &res, NULL, 0);
  return 1;
}

/*
 * Requests that reach a raft leader while it is still catching up (unsealed,
 * its activation barrier not yet applied: see ha.c) wait here, in order,
 * instead of being served from a state that may predate the last leader's
 * writes.  cs_api_activation_done() runs them again.  Status and unseal
 * never wait.
 */
static cs_rq *held_head;
static cs_rq **held_tail = &held_head;

static int must_wait(cs_rq *r) {
  int op = r->req->op_case;
  if (op == CUSTOS__REQUEST__OP_STATUS || op == CUSTOS__REQUEST__OP_UNSEAL)
    return 0;
  cs_api_env *d = r->d;
  if (d->seal == NULL || !cs_ha_is_leader(d))
    return 0;
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  return !st.sealed && !cs_ha_is_active(d); /* cs_ha_is_active starts the catch-up */
}

static void admit(cs_rq *r);

void cs_api_activation_done(cs_api_env *d) {
  (void)d;
  cs_rq *list = held_head;
  held_head = NULL;
  held_tail = &held_head;
  while (list != NULL) {
    cs_rq *r = list;
    list = r->held_next;
    r->held_next = NULL;
    admit(r); /* served, redirected, or held again for the next attempt */
  }
}

/* ---------------------------------------------------------------- entry point */

/* The row's path into r->path; 0 or the names' error (path_of). */
static int request_path(cs_rq *r) {
  r->path[0] = '\0';
  return r->op->path_of != NULL ? r->op->path_of(r->req, r->path, sizeof r->path) : 0;
}

/* From a request with its context to its answer: wait, redirect, or
 * authorize, audit and run. */
static void admit(cs_rq *r) {
  if (must_wait(r)) {
    *held_tail = r;
    held_tail = &r->held_next;
    return;
  }
  cs_error_clear(); /* a held request runs again later */
  if (standby_redirect(r))
    return;
  Custos__Request *req = r->req;
  /*
   * The names that become storage keys are checked (path_of) before
   * authorization with the same functions, and so the same limits, the
   * handlers use: authorization and the audit record never see a name the
   * store could not hold, and an oversized put is refused before its
   * fields are hashed for the audit log.  A malformed request is logged
   * without its values; any other, refused or not, with every one of them.
   */
  /* Checked on arrival; again only for a refusal's detail, which an
   * earlier turn's cs_error_clear may have dropped. */
  int rc = r->path_rc < 0 ? request_path(r) : 0;
  const cs_op *op = r->op;
  /* The values go on record only (no audit log: no list of them). */
  size_t cap = rc == 0 && op->sensitive_of != NULL && r->d->audit != NULL
                   ? op->sensitive_of(req, NULL)
                   : 0;
  if (rc == 0)
    rc = cs_authorize(r);
  cs_audit_sensitive few[4], *sens = cap <= 4 ? few : calloc(cap, sizeof *sens);
  if (sens == NULL) {
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  size_t ns = cap ? op->sensitive_of(req, sens) : 0;
  /* The request is on record before anything happens, refused or not:
   * staged with the turn's group when there is one (see group_flush). */
  int stage = r->d->audit != NULL && !group.closed;
  int arc = rq_record(r, CS_AUDIT_REQUEST, 0, sens, ns, stage);
  if (stage && arc == 0)
    group_touch(r);
  if (sens != few)
    free(sens);
  if (arc < 0) {
    respond(r, CS_EAUDIT, NULL, NULL, 0);
    return;
  }
  if (rc < 0) {
    if (rc == CS_EPERM || rc == CS_EEXPIRED)
      cs_info("%s from %s refused: %s", op->name, r->client, cs_error_message(rc));
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  /* A read waits too while a request before it waits: it must not run
   * ahead of a seal or a revoke admitted before it in this turn. */
  if (stage && (!side_effect_free(op) || group.acts != NULL)) {
    r->gen = r->d->auth_gen;
    r->pass = group.passes;
    *group.acts_tail = r;
    group.acts_tail = &r->next;
    return; /* it acts once its record is written (run_acts) */
  }
  op->handler(r);
}

/*
 * Once per auth generation (so after every unseal, keyring change or
 * activation, whoever reports it): stored policies from before namespaces
 * are migrated (policy_ops.c) by the first request that finds them so.
 * Until that commit lands they are migrated in memory when loaded.
 */
static void policies_check(cs_api_env *d) {
  static uint64_t checked = UINT64_MAX;
  uint64_t gen = d->auth_gen;
  if (gen == checked)
    return;
  checked = gen;
  cs_policies_migrate(d);
}

void cs_dispatch(void *ctx, const cs_client_info *client, Custos__Request *req, cs_reply *reply) {
  cs_api_env *d = ctx;
  cs_error_clear();
  cs_rq *r = calloc(1, sizeof *r);
  if (r == NULL) {
    Custos__Response res;
    Custos__Error e;
    error_response(&res, &e, CS_ENOMEM, cs_strerror(CS_ENOMEM));
    cs_reply_send(reply, &res, 0);
    cs_wire_request_free(req);
    return;
  }
  r->d = d;
  r->t0_ns = cs_stats_now_ns();
  r->reply = reply;
  r->req = req;
  r->id = req->id;
  r->token = req->token.data;
  r->token_len = req->token.len;
  cs_strlcpy(r->client, client->address, sizeof r->client);
  policies_check(d);
  r->op = cs_op_find(req->op_case);
  if (r->op == NULL) {
    respond(r, cs_error_set(CS_EPROTO, "unknown operation %d", (int)req->op_case), NULL, NULL, 0);
    return;
  }
  /* The path is on every record, a redirect's too; admit checks it. */
  r->path_rc = request_path(r);
  admit(r);
}

/*
 * Which requests may overtake unanswered requests of their connection (see
 * net.h).  Only a kv put: it reads no kv data (a delete reads whether the
 * secret exists, a get reads it), and its authorization reads tokens and
 * policies, which no kv write changes.  Everything else waits for every
 * request before it, so a read, a delete or an operator action behind a
 * write on the same connection sees that write.
 */
int cs_dispatch_independent(const Custos__Request *req) {
  return req->op_case == CUSTOS__REQUEST__OP_KV_PUT;
}
