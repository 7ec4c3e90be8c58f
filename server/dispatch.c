/*
 * dispatch: from a decoded Request to a Response.
 *
 * One table says, for every operation, whether it works while sealed,
 * whether it needs a token, and which path and capability it touches;
 * authorize() is the ONE place where that is enforced.  Handlers then call
 * the core (seal, kv, token) and never see a socket.  Writes are staged into
 * a batch and handed to the commit queue; the response goes out when the
 * group holding the batch is on disk.
 */
#include "daemon.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "kv.h"
#include "log.h"
#include "secmem.h"
#include "shamir.h"
#include "token.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUSTOS_VERSION "0.1.0"

enum cap { CAP_NONE = 0, CAP_READ, CAP_WRITE, CAP_LIST, CAP_DELETE, CAP_SUDO };

typedef struct op_rule {
  int op;                 /* Custos__Request__OpCase */
  const char *name;       /* for logs */
  int needs_token;        /* also implies: refused while sealed */
  const char *sys_path;   /* operator actions: the sys/ path they need sudo on */
  enum cap cap;           /* data operations: capability on the request's path */
} op_rule;

static const op_rule rules[] = {
    {CUSTOS__REQUEST__OP_STATUS, "status", 0, NULL, CAP_NONE},
    {CUSTOS__REQUEST__OP_INIT, "init", 0, NULL, CAP_NONE},
    {CUSTOS__REQUEST__OP_UNSEAL, "unseal", 0, NULL, CAP_NONE},
    {CUSTOS__REQUEST__OP_SEAL, "seal", 1, "sys/seal", CAP_SUDO},
    {CUSTOS__REQUEST__OP_KV_PUT, "kv-put", 1, NULL, CAP_WRITE},
    {CUSTOS__REQUEST__OP_KV_GET, "kv-get", 1, NULL, CAP_READ},
    {CUSTOS__REQUEST__OP_KV_LIST, "kv-list", 1, NULL, CAP_LIST},
    {CUSTOS__REQUEST__OP_KV_DELETE, "kv-delete", 1, NULL, CAP_DELETE},
    {CUSTOS__REQUEST__OP_ROTATE, "rotate", 1, "sys/rotate", CAP_SUDO},
    {CUSTOS__REQUEST__OP_KEY_STATUS, "key-status", 1, "sys/key-status", CAP_SUDO},
    {CUSTOS__REQUEST__OP_ROTATE_CONFIG, "rotate-config", 1, "sys/rotate-config", CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_INIT, "rekey-init", 1, "sys/rekey", CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_UPDATE, "rekey-update", 1, "sys/rekey", CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_STATUS, "rekey-status", 1, "sys/rekey", CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_CANCEL, "rekey-cancel", 1, "sys/rekey", CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_VERIFY, "rekey-verify", 1, "sys/rekey", CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_CREATE, "token-create", 1, "sys/token/create", CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_LOOKUP, "token-lookup", 1, "sys/token/lookup", CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_RENEW, "token-renew", 1, "sys/token/renew", CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_REVOKE, "token-revoke", 1, "sys/token/revoke", CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_WRITE, "policy-write", 1, "sys/policy", CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_READ, "policy-read", 1, "sys/policy", CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_LIST, "policy-list", 1, "sys/policy", CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_DELETE, "policy-delete", 1, "sys/policy", CAP_SUDO},
};

static const op_rule *rule_for(int op) {
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (rules[i].op == op)
      return &rules[i];
  return NULL;
}

/* ---------------------------------------------------------------- responses */

static void send_error(cs_reply *reply, int rc, int authed) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Error err = CUSTOS__ERROR__INIT;
  err.code = (Custos__ErrorCode)cs_error_wire_code(rc);
  err.message = (char *)cs_error_message(rc);
  res.error = &err;
  cs_reply_send(reply, &res, authed);
}

static void send_empty(cs_reply *reply, int authed) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Empty empty = CUSTOS__EMPTY__INIT;
  res.result_case = CUSTOS__RESPONSE__RESULT_EMPTY;
  res.empty = &empty;
  cs_reply_send(reply, &res, authed);
}

static void send_status(cs_daemon *d, cs_reply *reply) {
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__StatusRes sr = CUSTOS__STATUS_RES__INIT;
  sr.initialized = st.initialized;
  sr.sealed = st.sealed;
  sr.t = st.t;
  sr.n = st.n;
  sr.progress = st.progress;
  sr.nonce = st.nonce;
  sr.term = st.term;
  sr.version = CUSTOS_VERSION;
  sr.ha_mode = "standalone";
  sr.active_address = "";
  res.result_case = CUSTOS__RESPONSE__RESULT_STATUS;
  res.status = &sr;
  cs_reply_send(reply, &res, 0);
}

/* ---------------------------------------------------------------- authorization */

/*
 * The one place that decides whether a request may run.  Returns 0 and sets
 * *authed when a token was accepted, or an error to send back.
 * Order: sealed first (a sealed node cannot read its token store), then the
 * token, then the capability.
 */
static int authorize(cs_daemon *d, const op_rule *rule, const Custos__Request *req,
                     const char *path, int *authed) {
  *authed = 0;
  if (!rule->needs_token)
    return 0;
  cs_keyring *kr = cs_seal_keyring(d->seal);
  if (kr == NULL) {
    cs_seal_status st;
    cs_seal_get_status(d->seal, &st);
    if (!st.initialized)
      return cs_error_set(CS_ENOTINIT, "server is not initialized");
    return cs_error_set(CS_ESEALED, "server is sealed");
  }
  Custos__TokenEntry *te = NULL;
  int rc = cs_token_lookup(d->store, kr, req->token.data, req->token.len, cs_now(), &te);
  if (rc < 0)
    return rc;
  /* Until named policies exist (token create), only root tokens exist, and
   * the root policy grants every capability on every path. */
  int allowed = te->root;
  for (size_t i = 0; i < te->n_policies && !allowed; i++)
    allowed = strcmp(te->policies[i], "root") == 0;
  custos__token_entry__free_unpacked(te, NULL);
  *authed = 1;
  if (!allowed)
    return cs_error_set(CS_EPERM, "permission denied on %s", rule->sys_path ? rule->sys_path : path);
  return 0;
}

/* ---------------------------------------------------------------- handlers */

static void on_init_done(void *arg, int status, cs_seal_result *r) {
  cs_reply *reply = arg;
  cs_error_clear();
  if (status < 0) {
    send_error(reply, status, 0);
    return;
  }
  ProtobufCBinaryData keys[CS_SHAMIR_MAX_SHARES];
  for (unsigned i = 0; i < r->n; i++) {
    keys[i].data = r->shares + (size_t)i * r->share_len;
    keys[i].len = r->share_len;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__InitRes ir = CUSTOS__INIT_RES__INIT;
  ir.n_keys = r->n;
  ir.keys = keys;
  ir.root_token = r->root_token;
  ir.shares = r->n;
  ir.threshold = r->t;
  res.result_case = CUSTOS__RESPONSE__RESULT_INIT;
  res.init = &ir;
  cs_reply_send(reply, &res, 0);
  cs_info("initialized with %u shares, threshold %u", r->n, r->t);
}

static void handle_init(cs_daemon *d, const Custos__InitReq *r, cs_reply *reply) {
  unsigned n = r->shares ? r->shares : 5, t = r->threshold ? r->threshold : 3;
  if (r->shares == 1 && r->threshold == 0)
    t = 1;
  int rc = cs_seal_init(d->seal, n, t, on_init_done, reply);
  if (rc < 0)
    send_error(reply, rc, 0);
}

static void handle_unseal(cs_daemon *d, const Custos__UnsealReq *r, cs_reply *reply) {
  if (r->reset) {
    cs_seal_reset(d->seal);
    cs_info("unseal progress reset");
  } else {
    cs_seal_status before;
    cs_seal_get_status(d->seal, &before);
    int rc = cs_seal_unseal(d->seal, r->key.data, r->key.len);
    if (rc < 0) {
      cs_warn("unseal share refused: %s", cs_error_message(rc));
      send_error(reply, rc, 0);
      return;
    }
    cs_seal_status st;
    cs_seal_get_status(d->seal, &st);
    if (before.sealed && !st.sealed)
      cs_info("unsealed: term %u is active", st.term);
  }
  send_status(d, reply);
}

/* A write waiting for its group commit. */
typedef struct pending_write {
  cs_reply *reply;
} pending_write;

static void on_write_done(void *arg, int status) {
  pending_write *p = arg;
  cs_error_clear(); /* the detail, if any, was set on the writer thread */
  if (status < 0)
    send_error(p->reply, status, 1);
  else
    send_empty(p->reply, 1);
  free(p);
}

static void submit_write(cs_daemon *d, cs_batch *b, cs_reply *reply) {
  pending_write *p = malloc(sizeof *p);
  int rc = p ? 0 : CS_ENOMEM;
  if (rc == 0) {
    p->reply = reply;
    rc = cs_commitq_submit(d->commitq, b, on_write_done, p);
  }
  if (rc < 0) {
    free(p);
    send_error(reply, rc, 1);
  }
  cs_batch_clear(b);
}

static void handle_kv_put(cs_daemon *d, const Custos__KvPutReq *r, cs_reply *reply) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_kv_stage_put(cs_seal_keyring(d->seal), r->path, r->data, r->n_data, &b);
  if (rc < 0) {
    cs_batch_clear(&b);
    send_error(reply, rc, 1);
    return;
  }
  submit_write(d, &b, reply);
}

static void handle_kv_delete(cs_daemon *d, const Custos__KvDeleteReq *r, cs_reply *reply) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_kv_stage_delete(d->store, r->path, &b);
  if (rc < 0) {
    cs_batch_clear(&b);
    send_error(reply, rc, 1);
    return;
  }
  submit_write(d, &b, reply);
}

static void handle_kv_get(cs_daemon *d, const Custos__KvGetReq *r, cs_reply *reply) {
  Custos__KvData *data = NULL;
  int rc = cs_kv_get(d->store, cs_seal_keyring(d->seal), r->path, &data);
  if (rc < 0) {
    send_error(reply, rc, 1);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvGetRes gr = CUSTOS__KV_GET_RES__INIT;
  gr.n_data = data->n_data;
  gr.data = data->data;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV_GET;
  res.kv_get = &gr;
  cs_reply_send(reply, &res, 1);
  cs_kv_data_free(data);
}

static void handle_kv_list(cs_daemon *d, const Custos__KvListReq *r, cs_reply *reply) {
  char **keys = NULL;
  size_t n = 0;
  int rc = cs_kv_list(d->store, r->prefix, &keys, &n);
  if (rc < 0) {
    send_error(reply, rc, 1);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvListRes lr = CUSTOS__KV_LIST_RES__INIT;
  lr.n_keys = n;
  lr.keys = keys;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV_LIST;
  res.kv_list = &lr;
  cs_reply_send(reply, &res, 1);
  cs_kv_list_free(keys, n);
}

static void on_rotate_done(void *arg, int status, cs_seal_result *r) {
  cs_reply *reply = arg;
  cs_error_clear();
  if (status < 0) {
    send_error(reply, status, 1);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RotateRes rr = CUSTOS__ROTATE_RES__INIT;
  rr.term = r->term;
  rr.install_time = r->install_time;
  res.result_case = CUSTOS__RESPONSE__RESULT_ROTATE;
  res.rotate = &rr;
  cs_reply_send(reply, &res, 1);
}

static void handle_rotate(cs_daemon *d, cs_reply *reply) {
  int rc = cs_seal_rotate(d->seal, on_rotate_done, reply);
  if (rc < 0)
    send_error(reply, rc, 1);
}

static void handle_key_status(cs_daemon *d, cs_reply *reply) {
  cs_keyring *kr = cs_seal_keyring(d->seal);
  size_t n = cs_keyring_count(kr);
  Custos__TermStatus *ts = calloc(n, sizeof *ts);
  Custos__TermStatus **ptrs = calloc(n, sizeof *ptrs);
  if (ts == NULL || ptrs == NULL) {
    free(ts);
    free(ptrs);
    send_error(reply, CS_ENOMEM, 1);
    return;
  }
  cs_term_info ti;
  for (size_t i = 0; i < n; i++) {
    cs_keyring_info(kr, i, &ti);
    custos__term_status__init(&ts[i]);
    ts[i].term = ti.term;
    ts[i].install_time = ti.install_time;
    ts[i].encryptions = ti.encryptions;
    ptrs[i] = &ts[i];
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KeyStatusRes ks = CUSTOS__KEY_STATUS_RES__INIT;
  ks.term = ts[n - 1].term;
  ks.install_time = ts[n - 1].install_time;
  ks.encryptions = ts[n - 1].encryptions;
  ks.n_terms = n;
  ks.terms = ptrs;
  res.result_case = CUSTOS__RESPONSE__RESULT_KEY_STATUS;
  res.key_status = &ks;
  cs_reply_send(reply, &res, 1);
  free(ts);
  free(ptrs);
}

static void send_rotate_config(cs_reply *reply, const cs_rotate_config *cfg) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RotateConfigRes cr = CUSTOS__ROTATE_CONFIG_RES__INIT;
  cr.enabled = cfg->enabled;
  cr.max_operations = cfg->max_operations;
  cr.interval_seconds = cfg->interval_seconds;
  res.result_case = CUSTOS__RESPONSE__RESULT_ROTATE_CONFIG;
  res.rotate_config = &cr;
  cs_reply_send(reply, &res, 1);
}

typedef struct pending_rotcfg {
  cs_reply *reply;
  cs_rotate_config cfg;
} pending_rotcfg;

static void on_rotate_config_done(void *arg, int status, cs_seal_result *r) {
  pending_rotcfg *p = arg;
  cs_error_clear();
  if (status < 0) {
    send_error(p->reply, status, 1);
  } else {
    cs_info("rotate config: %s, max operations %llu, interval %llu s",
            p->cfg.enabled ? "enabled" : "disabled", (unsigned long long)p->cfg.max_operations,
            (unsigned long long)p->cfg.interval_seconds);
    send_rotate_config(p->reply, &p->cfg);
  }
  free(p);
}

static void handle_rotate_config(cs_daemon *d, const Custos__RotateConfigReq *r, cs_reply *reply) {
  cs_rotate_config cfg;
  int rc = cs_seal_rotate_config_get(d->seal, &cfg);
  if (rc == 0 && !r->set) {
    send_rotate_config(reply, &cfg);
    return;
  }
  if (rc == 0) {
    if (r->enabled_opt_case == CUSTOS__ROTATE_CONFIG_REQ__ENABLED_OPT_ENABLED)
      cfg.enabled = r->enabled;
    if (r->max_operations_opt_case == CUSTOS__ROTATE_CONFIG_REQ__MAX_OPERATIONS_OPT_MAX_OPERATIONS)
      cfg.max_operations = r->max_operations;
    if (r->interval_opt_case == CUSTOS__ROTATE_CONFIG_REQ__INTERVAL_OPT_INTERVAL_SECONDS)
      cfg.interval_seconds = r->interval_seconds;
    pending_rotcfg *p = malloc(sizeof *p);
    rc = CS_ENOMEM;
    if (p != NULL) {
      p->reply = reply;
      p->cfg = cfg;
      rc = cs_seal_rotate_config_set(d->seal, &cfg, on_rotate_config_done, p);
      if (rc < 0)
        free(p);
    }
  }
  if (rc < 0)
    send_error(reply, rc, 1);
}

static void send_rekey(cs_reply *reply, cs_rekey_status *st) {
  ProtobufCBinaryData keys[CS_SHAMIR_MAX_SHARES];
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RekeyStatusRes rs = CUSTOS__REKEY_STATUS_RES__INIT;
  rs.started = st->started;
  rs.nonce = st->nonce;
  rs.t = st->t;
  rs.n = st->n;
  rs.progress = st->progress;
  rs.required = st->required;
  rs.verification_required = st->verification_required;
  rs.complete = st->complete;
  rs.verification_nonce = st->verification_nonce;
  rs.verification_progress = st->verification_progress;
  if (st->keys != NULL) {
    for (unsigned i = 0; i < st->n; i++) {
      keys[i].data = st->keys + (size_t)i * st->key_len;
      keys[i].len = st->key_len;
    }
    rs.n_keys = st->n;
    rs.keys = keys;
  }
  res.result_case = CUSTOS__RESPONSE__RESULT_REKEY;
  res.rekey = &rs;
  cs_reply_send(reply, &res, 1);
  cs_rekey_status_clear(st);
}

static void on_rekey_done(void *arg, int status, cs_seal_result *r) {
  cs_reply *reply = arg;
  cs_error_clear();
  if (status < 0) {
    cs_warn("rekey: %s", cs_error_message(status));
    send_error(reply, status, 1);
    return;
  }
  send_rekey(reply, &r->rekey);
}

static void handle_rekey(cs_daemon *d, const Custos__Request *req, cs_reply *reply) {
  cs_rekey_status st = {0};
  int rc = 0;
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_REKEY_INIT:
    rc = cs_seal_rekey_init(d->seal, req->rekey_init->shares ? req->rekey_init->shares : 5,
                            req->rekey_init->threshold ? req->rekey_init->threshold
                            : req->rekey_init->shares == 1 ? 1 : 3,
                            req->rekey_init->verify, &st);
    break;
  case CUSTOS__REQUEST__OP_REKEY_UPDATE:
    rc = cs_seal_rekey_update(d->seal, req->rekey_update->nonce, req->rekey_update->key.data,
                              req->rekey_update->key.len, &st, on_rekey_done, reply);
    break;
  case CUSTOS__REQUEST__OP_REKEY_VERIFY:
    rc = cs_seal_rekey_verify(d->seal, req->rekey_verify->nonce, req->rekey_verify->key.data,
                              req->rekey_verify->key.len, &st, on_rekey_done, reply);
    break;
  case CUSTOS__REQUEST__OP_REKEY_CANCEL:
    rc = cs_seal_rekey_cancel(d->seal);
    break;
  default:
    cs_seal_rekey_status(d->seal, &st);
    break;
  }
  if (rc < 0) {
    if (rc != CS_EBADNONCE && rc != CS_ENOOP && rc != CS_EINPROGRESS)
      cs_warn("rekey: %s", cs_error_message(rc));
    send_error(reply, rc, 1);
    return;
  }
  if (rc == CS_SEAL_PENDING)
    return; /* on_rekey_done answers once the swap is committed */
  send_rekey(reply, &st);
}

/* ---------------------------------------------------------------- entry point */

static const char *request_path(const Custos__Request *req) {
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_KV_PUT: return req->kv_put->path;
  case CUSTOS__REQUEST__OP_KV_GET: return req->kv_get->path;
  case CUSTOS__REQUEST__OP_KV_LIST: return req->kv_list->prefix;
  case CUSTOS__REQUEST__OP_KV_DELETE: return req->kv_delete->path;
  default: return "";
  }
}

void cs_dispatch(void *ctx, const cs_peer *peer, Custos__Request *req, cs_reply *reply) {
  cs_daemon *d = ctx;
  cs_error_clear();
  const op_rule *rule = rule_for(req->op_case);
  if (rule == NULL) {
    send_error(reply, cs_error_set(CS_EPROTO, "unknown operation %d", (int)req->op_case), 0);
    goto out;
  }
  int authed;
  int rc = authorize(d, rule, req, request_path(req), &authed);
  if (rc < 0) {
    if (rc == CS_EPERM || rc == CS_EEXPIRED)
      cs_info("%s from %s refused: %s", rule->name, peer->address, cs_error_message(rc));
    send_error(reply, rc, authed);
    goto out;
  }
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_STATUS: send_status(d, reply); break;
  case CUSTOS__REQUEST__OP_INIT: handle_init(d, req->init, reply); break;
  case CUSTOS__REQUEST__OP_UNSEAL: handle_unseal(d, req->unseal, reply); break;
  case CUSTOS__REQUEST__OP_SEAL:
    cs_seal_seal(d->seal);
    cs_info("sealed by request from %s", peer->address);
    send_empty(reply, 1);
    break;
  case CUSTOS__REQUEST__OP_KV_PUT: handle_kv_put(d, req->kv_put, reply); break;
  case CUSTOS__REQUEST__OP_KV_GET: handle_kv_get(d, req->kv_get, reply); break;
  case CUSTOS__REQUEST__OP_KV_LIST: handle_kv_list(d, req->kv_list, reply); break;
  case CUSTOS__REQUEST__OP_KV_DELETE: handle_kv_delete(d, req->kv_delete, reply); break;
  case CUSTOS__REQUEST__OP_ROTATE: handle_rotate(d, reply); break;
  case CUSTOS__REQUEST__OP_KEY_STATUS: handle_key_status(d, reply); break;
  case CUSTOS__REQUEST__OP_ROTATE_CONFIG: handle_rotate_config(d, req->rotate_config, reply); break;
  case CUSTOS__REQUEST__OP_REKEY_INIT:
  case CUSTOS__REQUEST__OP_REKEY_UPDATE:
  case CUSTOS__REQUEST__OP_REKEY_STATUS:
  case CUSTOS__REQUEST__OP_REKEY_CANCEL:
  case CUSTOS__REQUEST__OP_REKEY_VERIFY: handle_rekey(d, req, reply); break;
  default:
    send_error(reply, cs_error_set(CS_EPROTO, "%s is not supported by this server", rule->name), 1);
    break;
  }
out:
  cs_wire_request_free(req);
}

void cs_daemon_tick(uv_timer_t *t) {
  cs_daemon *d = t->data;
  uint64_t now_ms = uv_now(d->loop);
  int flush = now_ms - d->last_flush_ms >= d->cfg.counter_flush_ms;
  if (flush)
    d->last_flush_ms = now_ms;
  int rotating;
  int rc = cs_seal_tick(d->seal, cs_now(), flush, &rotating);
  if (rc < 0)
    cs_warn("periodic key maintenance failed: %s", cs_error_message(rc));
}
