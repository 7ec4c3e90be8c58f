/*
 * dispatch: from a decoded Request to a Response.
 *
 * One table says, for every operation, whether it needs a token (and so an
 * unsealed node) and which path and capability it touches; authorize() is
 * the ONE place where that is enforced.  Every request gets an `rq`
 * context: handlers answer through respond(), the one place where the
 * response is audited and sent.  Handlers call the core (seal, kv, token,
 * policy) and never see a socket.  Writes are staged into a batch and
 * handed to the commit queue; the response goes out once the group holding
 * the batch is committed.
 *
 * Audit: a "request" record is written before anything is done and a
 * "response" record before the answer leaves; if either cannot be written
 * the request fails (no unaudited access).
 */
#include "daemon.h"
#include "ha.h"
#include "audit.h"
#include "barrier.h"
#include "crypto.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "holders.h"
#include "kv.h"
#include "log.h"
#include "policy.h"
#include "policy_cache.h"
#include "secmem.h"
#include "shamir.h"
#include "snapshots.h"
#include "token.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUSTOS_VERSION "0.1.0"
#define P_POLICY "core/policy/"
#define P_AUDIT_KEY "core/audit-key"

_Static_assert(sizeof P_POLICY - 1 + CS_POLICY_NAME_MAX <= CS_STORE_KEY_MAX,
               "a policy name must fit a storage key");

typedef struct op_rule {
  int op;                 /* Custos__Request__OpCase */
  const char *name;       /* for logs and the audit log */
  int needs_token;        /* also implies: refused while sealed; NEEDS_TOKEN_INIT: only once initialized */
  const char *sys_path;   /* operator actions: the sys/ path they need sudo on */
  unsigned cap;           /* CS_CAP_* needed on sys_path, or on the request's path */
} op_rule;

/* needs_token value: a token once the server is initialized; none before
 * (snapshot restore onto an uninitialized server, see server/snapshots.h). */
#define NEEDS_TOKEN_INIT 2

static const op_rule rules[] = {
    {CUSTOS__REQUEST__OP_STATUS, "status", 0, NULL, 0},
    {CUSTOS__REQUEST__OP_INIT, "init", 0, NULL, 0},
    {CUSTOS__REQUEST__OP_UNSEAL, "unseal", 0, NULL, 0},
    {CUSTOS__REQUEST__OP_SEAL, "seal", 1, "sys/seal", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_KV_PUT, "kv-put", 1, NULL, CS_CAP_WRITE},
    {CUSTOS__REQUEST__OP_KV_GET, "kv-get", 1, NULL, CS_CAP_READ},
    {CUSTOS__REQUEST__OP_KV_LIST, "kv-list", 1, NULL, CS_CAP_LIST},
    {CUSTOS__REQUEST__OP_KV_DELETE, "kv-delete", 1, NULL, CS_CAP_DELETE},
    {CUSTOS__REQUEST__OP_ROTATE, "rotate", 1, "sys/rotate", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_KEY_STATUS, "key-status", 1, "sys/key-status", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_ROTATE_CONFIG, "rotate-config", 1, "sys/rotate-config", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_INIT, "rekey-init", 1, "sys/rekey", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_UPDATE, "rekey-update", 1, "sys/rekey", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_STATUS, "rekey-status", 1, "sys/rekey", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_CANCEL, "rekey-cancel", 1, "sys/rekey", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_REKEY_VERIFY, "rekey-verify", 1, "sys/rekey", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_CREATE, "token-create", 1, "sys/token/create", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_LOOKUP, "token-lookup", 1, "sys/token/lookup", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_RENEW, "token-renew", 1, "sys/token/renew", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_TOKEN_REVOKE, "token-revoke", 1, "sys/token/revoke", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_WRITE, "policy-write", 1, "sys/policy", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_READ, "policy-read", 1, "sys/policy", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_LIST, "policy-list", 1, "sys/policy", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_POLICY_DELETE, "policy-delete", 1, "sys/policy", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_AUDIT_HASH, "audit-hash", 1, "sys/audit-hash", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_RAFT_LIST_PEERS, "raft-list-peers", 1, "sys/raft", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_RAFT_REMOVE_PEER, "raft-remove-peer", 1, "sys/raft", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_RAFT_ADD_PEER, "raft-add-peer", 1, "sys/raft", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_RAFT_STEP_DOWN, "raft-step-down", 1, "sys/raft", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_SNAPSHOT_SAVE, "snapshot-save", 1, "sys/storage/snapshot", CS_CAP_SUDO},
    {CUSTOS__REQUEST__OP_SNAPSHOT_RESTORE, "snapshot-restore", NEEDS_TOKEN_INIT,
     "sys/storage/snapshot", CS_CAP_SUDO},
};

static const op_rule *rule_for(int op) {
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (rules[i].op == op)
      return &rules[i];
  return NULL;
}

/* ---------------------------------------------------------------- request context */

typedef struct rq {
  cs_daemon *d;
  cs_reply *reply;
  const op_rule *rule;
  uint64_t id;
  char client[64];
  char accessor[32];
  char path[CS_KV_PATH_MAX + 2];   /* a path, or a listed folder with its "/" */
  int authed;                 /* a token was accepted */
  int root;                   /* ... and it is a root token */
  const uint8_t *token;       /* the caller's token (valid while req lives) */
  size_t token_len;
  Custos__Request *req;       /* freed with the rq */
  struct rq *held_next;       /* while held (see admit) */
  struct rq *next;            /* parked (see park()) */
} rq;

static void admit(rq *r);

static void rq_free(rq *r) {
  cs_wire_request_free(r->req);
  free(r);
}

static int audit(rq *r, cs_audit_type type, int err, const cs_audit_sensitive *sens, size_t n) {
  if (r->d->audit == NULL)
    return 0;
  cs_audit_record rec = {.type = type,
                         .time = cs_now(),
                         .request_id = r->id,
                         .client = r->client,
                         .accessor = r->accessor,
                         .operation = r->rule ? r->rule->name : "unknown",
                         .path = r->path,
                         .error = err,
                         .error_message = err ? cs_error_message(err) : NULL,
                         .sensitive = sens,
                         .n_sensitive = n};
  int rc = cs_audit_write(r->d->audit, &rec);
  if (rc < 0)
    cs_error("audit log write failed, refusing %s: %s", rec.operation, cs_error_message(rc));
  return rc;
}

static void send_error_raw(cs_reply *reply, int rc, int authed) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Error err = CUSTOS__ERROR__INIT;
  err.code = (Custos__ErrorCode)cs_error_wire_code(rc);
  err.message = (char *)cs_error_message(rc);
  res.error = &err;
  cs_reply_send(reply, &res, authed);
}

/*
 * The one way out: audits the response (with the sensitive values it
 * carries, hashed) and sends it; frees the rq.  If the audit record cannot
 * be written, the client gets an audit error instead of the result.
 */
static void respond(rq *r, Custos__Response *res, const cs_audit_sensitive *sens, size_t n) {
  int err = 0;
  if (res->error != NULL)
    err = cs_error_from_wire(res->error->code);
  if (audit(r, CS_AUDIT_RESPONSE, err, sens, n) < 0)
    send_error_raw(r->reply, CS_EAUDIT, r->authed);
  else
    cs_reply_send(r->reply, res, r->authed);
  rq_free(r);
}

static void respond_error(rq *r, int rc) {
  const char *msg = cs_error_message(rc);
  if (r->d->audit != NULL && audit(r, CS_AUDIT_RESPONSE, rc, NULL, 0) < 0)
    rc = CS_EAUDIT, msg = cs_strerror(CS_EAUDIT);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Error e = CUSTOS__ERROR__INIT;
  e.code = (Custos__ErrorCode)cs_error_wire_code(rc);
  e.message = (char *)msg;
  res.error = &e;
  cs_reply_send(r->reply, &res, r->authed);
  rq_free(r);
}

static void respond_empty(rq *r) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Empty empty = CUSTOS__EMPTY__INIT;
  res.result_case = CUSTOS__RESPONSE__RESULT_EMPTY;
  res.empty = &empty;
  respond(r, &res, NULL, 0);
}

static void respond_status(rq *r) {
  cs_seal_status st;
  cs_seal_get_status(r->d->seal, &st);
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
  const char *mode, *active;
  cs_ha_status(r->d, &mode, &active);
  sr.ha_mode = (char *)mode;
  sr.active_address = (char *)active;
  sr.removed_from_cluster = cs_ha_removed(r->d);
  cs_snapshots_status(r->d, &sr);
  res.result_case = CUSTOS__RESPONSE__RESULT_STATUS;
  res.status = &sr;
  respond(r, &res, NULL, 0);
}

/* ---------------------------------------------------------------- policies */

static void policy_path(const char *name, char *out, size_t cap) {
  snprintf(out, cap, P_POLICY "%s", name);
}

/* Reads and decrypts one policy document (malloc'd, NUL-terminated). */
static int policy_read_doc(cs_daemon *d, const char *name, char **doc, size_t *len) {
  char path[CS_POLICY_NAME_MAX + sizeof P_POLICY + 1];
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

static int load_policy(void *ctx, const char *name, char **doc, size_t *len) {
  return policy_read_doc(ctx, name, doc, len);
}

/*
 * Whether a token's policies grant `cap` on `path`: 1 or 0, or an error
 * when one of them cannot be read or parsed (it may be the deny that
 * decides, so the request is refused rather than decided without it).  A
 * policy that no longer exists grants nothing.  Every policy is held by
 * reference until the decision is made (see policy_cache.h).
 */
static int policies_allow(cs_daemon *d, const Custos__TokenEntry *te, const char *path,
                          unsigned cap) {
  cs_policy *pols[CS_TOKEN_MAX_POLICIES];
  if (te->n_policies > CS_TOKEN_MAX_POLICIES)
    return cs_error_set(CS_ESTORECORRUPT, "token entry holds %zu policies (at most %d)",
                        te->n_policies, CS_TOKEN_MAX_POLICIES);
  size_t n = 0;
  int rc = 0;
  for (size_t i = 0; i < te->n_policies && rc == 0; i++) {
    cs_policy *p;
    rc = cs_policy_cache_get(te->policies[i], load_policy, d, &p);
    if (rc == 0 && p != NULL)
      pols[n++] = p;
  }
  int allowed = rc == 0 && n > 0 && cs_policy_allows((const cs_policy *const *)pols, n, path, cap);
  for (size_t i = 0; i < n; i++)
    cs_policy_free(pols[i]);
  return rc < 0 ? rc : allowed;
}

void cs_daemon_auth_changed(cs_daemon *d) {
  (void)d;
  cs_token_cache_invalidate();
  cs_policy_cache_invalidate();
}

/* ---------------------------------------------------------------- authorization */

static int token_is_root(const Custos__TokenEntry *te) {
  if (te->root)
    return 1;
  for (size_t i = 0; i < te->n_policies; i++)
    if (strcmp(te->policies[i], CS_POLICY_ROOT) == 0)
      return 1;
  return 0;
}

/* Whether a token may write anything: root, or a policy with a rule that
 * grants write or sudo (operator writes: policies, rotate, ...).  Only
 * such a token needs frames above the pre-authentication limit. */
static int token_may_write(cs_daemon *d, const Custos__TokenEntry *te) {
  if (token_is_root(te))
    return 1;
  int may = 0;
  for (size_t i = 0; i < te->n_policies && i < CS_TOKEN_MAX_POLICIES && !may; i++) {
    cs_policy *p;
    if (cs_policy_cache_get(te->policies[i], load_policy, d, &p) < 0 || p == NULL)
      continue;
    for (size_t j = 0; j < cs_policy_rule_count(p) && !may; j++) {
      unsigned caps = cs_policy_rule_caps(p, j);
      may = (caps & (CS_CAP_WRITE | CS_CAP_SUDO)) != 0 && (caps & CS_CAP_DENY) == 0;
    }
    cs_policy_free(p);
  }
  return may;
}

/* The connection's frame grant (cs_frame_grant_fn): the token whose hash
 * this is still exists, has not expired and may write. */
static int frame_grant_holds(void *ctx, const uint8_t token_hash[32]) {
  cs_daemon *d = ctx;
  cs_keyring *kr = d->seal != NULL ? cs_seal_keyring(d->seal) : NULL;
  Custos__TokenEntry *te = NULL;
  if (kr == NULL || cs_token_lookup_hash(d->store, kr, token_hash, cs_now(), &te) < 0) {
    cs_error_clear();
    return 0;
  }
  int may = token_may_write(d, te);
  custos__token_entry__free_unpacked(te, NULL);
  return may;
}

/* After a token was looked up for a request on this connection: the larger
 * frame limit while that token may write, else none. */
static void grant_frames(rq *r, const Custos__TokenEntry *te) {
  if (te == NULL || !token_may_write(r->d, te)) {
    cs_reply_grant_frames(r->reply, NULL, NULL, NULL);
    return;
  }
  uint8_t hash[32];
  cs_sha256(r->token, r->token_len, hash);
  cs_reply_grant_frames(r->reply, hash, frame_grant_holds, r->d);
}

/* Operations a token may do on itself without sudo (like Vault's
 * lookup-self, renew-self and revoke-self).  A revoke names itself only
 * with the explicit self flag (see handle_token_revoke). */
static int is_self_op(const Custos__Request *req) {
  return (req->op_case == CUSTOS__REQUEST__OP_TOKEN_LOOKUP && req->token_lookup->token.len == 0) ||
         (req->op_case == CUSTOS__REQUEST__OP_TOKEN_RENEW && req->token_renew->token.len == 0) ||
         (req->op_case == CUSTOS__REQUEST__OP_TOKEN_REVOKE && req->token_revoke->self &&
          req->token_revoke->token.len == 0);
}

/*
 * The one place that decides whether a request may run.  Order: sealed
 * first (a sealed node cannot read its token store), then the token (looked
 * up on every request, so an expired or revoked token is refused at once,
 * also on connections that used it before), then the capability.
 */
static int authorize(rq *r) {
  const op_rule *rule = r->rule;
  if (!rule->needs_token)
    return 0;
  cs_daemon *d = r->d;
  if (cs_snapshots_restoring(d))
    return cs_error_set(CS_EBUSY, "a snapshot restore is being applied; retry");
  cs_keyring *kr = cs_seal_keyring(d->seal);
  if (kr == NULL) {
    cs_seal_status st;
    cs_seal_get_status(d->seal, &st);
    if (!st.initialized && rule->needs_token == NEEDS_TOKEN_INIT)
      return 0;
    if (!st.initialized)
      return cs_error_set(CS_ENOTINIT, "server is not initialized");
    return cs_error_set(CS_ESEALED, "server is sealed");
  }
  Custos__TokenEntry *te = NULL;
  int rc = cs_token_lookup(d->store, kr, r->token, r->token_len, cs_now(), &te);
  if (rc < 0) {
    grant_frames(r, NULL);
    return rc;
  }
  snprintf(r->accessor, sizeof r->accessor, "%s", te->accessor ? te->accessor : "");
  r->authed = 1;
  r->root = token_is_root(te);
  grant_frames(r, te);
  const char *path = rule->sys_path ? rule->sys_path : r->path;
  int allowed = r->root || is_self_op(r->req) || policies_allow(d, te, path, rule->cap);
  custos__token_entry__free_unpacked(te, NULL);
  if (allowed < 0)
    return allowed;
  if (!allowed)
    return cs_error_set(CS_EPERM, "permission denied: %s on %s", rule->name, path);
  return 0;
}

/* ---------------------------------------------------------------- audit key */

/* Loads the per-installation audit HMAC key once the node is unsealed. */
static void load_audit_key(cs_daemon *d) {
  if (d->audit == NULL)
    return;
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_get(d->store, cs_seal_keyring(d->seal), P_AUDIT_KEY, &pt, &len);
  if (rc == 0) {
    if (len == 32)
      cs_audit_set_hmac_key(d->audit, pt);
    cs_wipe(pt, len);
    free(pt);
  }
  if (rc < 0)
    cs_warn("audit HMAC key unavailable (%s): sensitive values are logged as unavailable",
            cs_error_message(rc));
}

/*
 * The one owner of what follows the seal state, registered as the seal's
 * on_event (see enum cs_seal_event), so every way of sealing (a seal
 * request, a standby that sealed itself, a restore, shutdown), of
 * unsealing (the ceremony, the dev server) and of replacing the keyring
 * (rotation, reload on becoming active, a restore) runs the same steps.
 * Every event empties the caches of decrypted token entries and parsed
 * policies (storage may have changed).  Sealed: the audit HMAC key is
 * wiped.  Unsealed or a new keyring: the audit key is (re)loaded; a
 * restored store may hold another one.
 */
void cs_daemon_seal_changed(void *ctx, enum cs_seal_event ev) {
  static int warned;
  cs_daemon *d = ctx;
  cs_daemon_auth_changed(d);
  switch (ev) {
  case CS_SEAL_EVENT_SEALED:
    if (d->audit != NULL)
      cs_audit_clear_hmac_key(d->audit);
    return;
  case CS_SEAL_EVENT_UNSEALED:
  case CS_SEAL_EVENT_KEYRING_CHANGED:
    break;
  }
  load_audit_key(d);
  if (cs_secmem_lock_failures() > 0 && !warned) {
    warned = 1;
    cs_warn("key memory could not be locked (RLIMIT_MEMLOCK too low; run with CAP_IPC_LOCK or "
            "LimitMEMLOCK=infinity): keys may reach swap");
  }
}

/* ---------------------------------------------------------------- seal handlers */

static void on_init_done(void *arg, int status, cs_seal_result *res) {
  rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    respond_error(r, status);
    return;
  }
  ProtobufCBinaryData keys[CS_SHAMIR_MAX_SHARES];
  cs_audit_sensitive sens[CS_SHAMIR_MAX_SHARES + 1];
  for (unsigned i = 0; i < res->n; i++) {
    keys[i].data = res->shares + (size_t)i * res->share_len;
    keys[i].len = res->share_len;
    sens[i] = (cs_audit_sensitive){"unseal_key", keys[i].data, keys[i].len};
  }
  sens[res->n] = (cs_audit_sensitive){"root_token", (uint8_t *)res->root_token, strlen(res->root_token)};
  Custos__Response out = CUSTOS__RESPONSE__INIT;
  Custos__InitRes ir = CUSTOS__INIT_RES__INIT;
  ir.n_keys = res->n;
  ir.keys = keys;
  ir.root_token = res->root_token;
  ir.shares = res->n;
  ir.threshold = res->t;
  char *age_keys[CS_SHAMIR_MAX_SHARES], *age_root = NULL;
  const Custos__InitReq *q = r->req->init;
  size_t n_age = q->n_recipients;
  /* The recipients were checked before init: only memory or randomness can
   * fail here, after the commit.  The shares are then lost (nothing is
   * stored yet: a new data directory and a new init recover). */
  int rc = n_age ? cs_holders_encrypt_shares(q->recipients, n_age, res->shares, res->share_len,
                                              age_keys)
                 : 0;
  if (rc == 0 && q->root_token_recipient != NULL && q->root_token_recipient[0] != '\0' &&
      (rc = cs_holders_encrypt_text(q->root_token_recipient, res->root_token, &age_root)) != 0)
    cs_holders_free(age_keys, n_age);
  if (rc < 0) {
    cs_error("init: encrypting the shares to their age recipients failed: %s",
             cs_error_message(rc));
    respond_error(r, rc);
    return;
  }
  if (n_age > 0) { /* nobody but the holders sees a share */
    ir.n_keys = 0;
    ir.n_keys_age = n_age;
    ir.keys_age = age_keys;
  }
  if (age_root != NULL) {
    ir.root_token = "";
    ir.root_token_age = age_root;
  }
  out.result_case = CUSTOS__RESPONSE__RESULT_INIT;
  out.init = &ir;
  cs_info("initialized with %u shares, threshold %u%s", res->n, res->t,
          n_age ? ", shares encrypted to their age recipients" : "");
  respond(r, &out, sens, res->n + 1);
  cs_holders_free(age_keys, n_age);
  free(age_root);
}

static void handle_init(rq *r, const Custos__InitReq *q) {
  unsigned n = q->shares ? q->shares : 5, t = q->threshold ? q->threshold : 3;
  if (q->shares == 1 && q->threshold == 0)
    t = 1;
  int rc = cs_ha_init_allowed(r->d);
  if (rc == 0)
    rc = cs_holders_check(q->recipients, q->n_recipients, q->root_token_recipient, n);
  if (rc == 0)
    rc = cs_seal_init(r->d->seal, n, t, on_init_done, r);
  if (rc < 0)
    respond_error(r, rc);
}

/*
 * A reset throws away the shares submitted so far, and needs no token (the
 * node is sealed): so it must name the ceremony it resets by its nonce, as
 * shown by status to those taking part, and every reset is logged with the
 * client's address.  With no ceremony in progress there is nothing to reset.
 */
static int unseal_reset(rq *r, const Custos__UnsealReq *q) {
  cs_seal_status st;
  cs_seal_get_status(r->d->seal, &st);
  if (st.progress == 0) {
    cs_info("unseal reset from %s: no unseal in progress", r->client);
    return 0;
  }
  const char *nonce = q->nonce ? q->nonce : "";
  if (strcmp(nonce, st.nonce) != 0) {
    cs_warn("unseal reset from %s refused: %s nonce (%u shares kept)", r->client,
            nonce[0] ? "wrong" : "no", st.progress);
    return cs_error_set(CS_EBADNONCE, "%s: a reset must carry the nonce of the unseal in progress",
                        nonce[0] ? "nonce does not match the unseal in progress" : "no nonce given");
  }
  cs_seal_reset(r->d->seal);
  cs_warn("unseal progress reset by %s (%u shares discarded, nonce %s)", r->client, st.progress,
          st.nonce);
  return 0;
}

static void handle_unseal(rq *r, const Custos__UnsealReq *q) {
  cs_daemon *d = r->d;
  if (q->reset) {
    int rc = unseal_reset(r, q);
    if (rc < 0) {
      respond_error(r, rc);
      return;
    }
  } else {
    cs_seal_status before, st;
    cs_seal_get_status(d->seal, &before);
    int rc = cs_seal_unseal(d->seal, q->key.data, q->key.len);
    if (rc < 0) {
      cs_warn("unseal share from %s refused: %s", r->client, cs_error_message(rc));
      respond_error(r, rc);
      return;
    }
    cs_seal_get_status(d->seal, &st);
    if (before.sealed && !st.sealed)
      cs_info("unsealed: term %u is active", st.term);
  }
  respond_status(r);
}

static void handle_seal(rq *r) {
  cs_seal_seal(r->d->seal); /* runs cs_daemon_seal_changed */
  cs_info("sealed by request from %s", r->client);
  respond_empty(r);
}

/* ---------------------------------------------------------------- writes */

static void on_write_done(void *arg, int status) {
  rq *r = arg;
  /* The commit queue set this status's detail (from the writer thread). */
  if (r->rule->op == CUSTOS__REQUEST__OP_TOKEN_REVOKE)
    cs_token_cache_invalidate(); /* committed: refused from now on */
  if (r->rule->op == CUSTOS__REQUEST__OP_POLICY_WRITE || r->rule->op == CUSTOS__REQUEST__OP_POLICY_DELETE)
    cs_policy_cache_invalidate(); /* committed: applies to the next request */
  if (status < 0)
    respond_error(r, status);
  else
    respond_empty(r);
}

/* Hands a staged batch to the commit queue; the rq answers when it is done. */
static void submit_write(rq *r, cs_batch *b) {
  int rc = cs_commitq_submit(r->d->commitq, b, on_write_done, r);
  cs_batch_clear(b);
  if (rc < 0)
    respond_error(r, rc);
}

/* Encrypts `pt` for `path` under the barrier and submits it alone. */
static void put_sealed_value(rq *r, const char *path, const uint8_t *pt, size_t len) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_barrier_stage_put(cs_seal_keyring(r->d->seal), &b, path, pt, len);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond_error(r, rc);
    return;
  }
  submit_write(r, &b);
}

/* ---------------------------------------------------------------- kv */

static void handle_kv_put(rq *r, const Custos__KvPutReq *q) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_kv_stage_put(cs_seal_keyring(r->d->seal), q->path, q->data, q->n_data, &b);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond_error(r, rc);
    return;
  }
  submit_write(r, &b);
}

static void handle_kv_delete(rq *r, const Custos__KvDeleteReq *q) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_kv_stage_delete(r->d->store, q->path, &b);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond_error(r, rc);
    return;
  }
  submit_write(r, &b);
}

static void handle_kv_get(rq *r, const Custos__KvGetReq *q) {
  Custos__KvData *data = NULL;
  int rc = cs_kv_get(r->d->store, cs_seal_keyring(r->d->seal), q->path, &data);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  /* Every field is on record, however many the secret has. */
  cs_audit_sensitive *sens = calloc(data->n_data ? data->n_data : 1, sizeof *sens);
  if (sens == NULL) {
    cs_kv_data_free(data);
    respond_error(r, CS_ENOMEM);
    return;
  }
  size_t ns = 0;
  for (size_t i = 0; i < data->n_data; i++, ns++)
    sens[ns] = (cs_audit_sensitive){data->data[i]->key, data->data[i]->value.data,
                                    data->data[i]->value.len};
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvGetRes gr = CUSTOS__KV_GET_RES__INIT;
  gr.n_data = data->n_data;
  gr.data = data->data;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV_GET;
  res.kv_get = &gr;
  respond(r, &res, sens, ns);
  free(sens);
  cs_kv_data_free(data);
}

static void respond_names(rq *r, char **names, size_t n, int policy_list) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvListRes lr = CUSTOS__KV_LIST_RES__INIT;
  Custos__PolicyListRes pl = CUSTOS__POLICY_LIST_RES__INIT;
  if (policy_list) {
    pl.n_names = n;
    pl.names = names;
    res.result_case = CUSTOS__RESPONSE__RESULT_POLICY_LIST;
    res.policy_list = &pl;
  } else {
    lr.n_keys = n;
    lr.keys = names;
    res.result_case = CUSTOS__RESPONSE__RESULT_KV_LIST;
    res.kv_list = &lr;
  }
  respond(r, &res, NULL, 0);
}

static void handle_kv_list(rq *r, const Custos__KvListReq *q) {
  char **keys = NULL;
  size_t n = 0;
  int rc = cs_kv_list(r->d->store, q->prefix, &keys, &n);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  respond_names(r, keys, n, 0);
  cs_store_list_free(keys, n);
}

/* ---------------------------------------------------------------- key lifecycle */

/*
 * The server's own key changes (automatic rotation) never fail an
 * operator's request: one refused with CS_EBUSY while the server holds
 * the key-change slot is parked and run again, in arrival order, once the
 * slot is free, authorized again first (its token may be gone by then).
 * Handlers refuse before changing anything, so running one
 * again is safe.  Loop thread only.
 */
static rq *parked_head, *parked_tail;
static void run(rq *r);

static void unpark(void *ctx) {
  cs_daemon *d = ctx;
  rq *list = parked_head;
  parked_head = parked_tail = NULL;
  while (list != NULL) {
    rq *r = list;
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
    int rc = authorize(r);
    if (rc < 0)
      respond_error(r, rc);
    else
      run(r);
  }
}

/* 1 when r was parked (it will be answered later), 0 to answer rc now. */
static int park(rq *r, int rc) {
  cs_daemon *d = r->d;
  if (rc != CS_EBUSY || cs_seal_key_slot(d->seal) != CS_SEAL_SLOT_SERVER)
    return 0;
  cs_seal_on_key_slot_free(d->seal, unpark, d);
  r->next = NULL;
  if (parked_tail != NULL)
    parked_tail->next = r;
  else
    parked_head = r;
  parked_tail = r;
  cs_debug("%s from %s waits for an automatic key change", r->rule->name, r->client);
  return 1;
}

static void on_rotate_done(void *arg, int status, cs_seal_result *res) {
  rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    respond_error(r, status);
    return;
  }
  Custos__Response out = CUSTOS__RESPONSE__INIT;
  Custos__RotateRes rr = CUSTOS__ROTATE_RES__INIT;
  rr.term = res->term;
  rr.install_time = res->install_time;
  out.result_case = CUSTOS__RESPONSE__RESULT_ROTATE;
  out.rotate = &rr;
  respond(r, &out, NULL, 0);
}

static void handle_rotate(rq *r) {
  int rc = cs_seal_rotate(r->d->seal, on_rotate_done, r);
  if (rc < 0 && !park(r, rc))
    respond_error(r, rc);
}

static void handle_key_status(rq *r) {
  cs_keyring *kr = cs_seal_keyring(r->d->seal);
  size_t n = cs_keyring_count(kr);
  Custos__TermStatus *ts = calloc(n, sizeof *ts);
  Custos__TermStatus **ptrs = calloc(n, sizeof *ptrs);
  if (ts == NULL || ptrs == NULL) {
    free(ts);
    free(ptrs);
    respond_error(r, CS_ENOMEM);
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
  respond(r, &res, NULL, 0);
  free(ts);
  free(ptrs);
}

static void respond_rotate_config(rq *r, const cs_rotate_config *cfg) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RotateConfigRes cr = CUSTOS__ROTATE_CONFIG_RES__INIT;
  cr.enabled = cfg->enabled;
  cr.max_operations = cfg->max_operations;
  cr.interval_seconds = cfg->interval_seconds;
  res.result_case = CUSTOS__RESPONSE__RESULT_ROTATE_CONFIG;
  res.rotate_config = &cr;
  respond(r, &res, NULL, 0);
}

static void on_rotate_config_done(void *arg, int status, cs_seal_result *res) {
  rq *r = arg;
  cs_error_clear();
  cs_rotate_config cfg;
  if (status == 0)
    status = cs_seal_rotate_config_get(r->d->seal, &cfg);
  if (status < 0) {
    respond_error(r, status);
    return;
  }
  cs_info("rotate config: %s, max operations %llu, interval %llu s",
          cfg.enabled ? "enabled" : "disabled", (unsigned long long)cfg.max_operations,
          (unsigned long long)cfg.interval_seconds);
  respond_rotate_config(r, &cfg);
}

static void handle_rotate_config(rq *r, const Custos__RotateConfigReq *q) {
  cs_rotate_config cfg;
  int rc = cs_seal_rotate_config_get(r->d->seal, &cfg);
  if (rc == 0 && !q->set) {
    respond_rotate_config(r, &cfg);
    return;
  }
  if (rc == 0) {
    if (q->enabled_opt_case == CUSTOS__ROTATE_CONFIG_REQ__ENABLED_OPT_ENABLED)
      cfg.enabled = q->enabled;
    if (q->max_operations_opt_case == CUSTOS__ROTATE_CONFIG_REQ__MAX_OPERATIONS_OPT_MAX_OPERATIONS)
      cfg.max_operations = q->max_operations;
    if (q->interval_opt_case == CUSTOS__ROTATE_CONFIG_REQ__INTERVAL_OPT_INTERVAL_SECONDS)
      cfg.interval_seconds = q->interval_seconds;
    rc = cs_seal_rotate_config_set(r->d->seal, &cfg, on_rotate_config_done, r);
  }
  if (rc < 0 && !park(r, rc))
    respond_error(r, rc);
}

static void respond_rekey(rq *r, cs_rekey_status *st) {
  ProtobufCBinaryData keys[CS_SHAMIR_MAX_SHARES];
  cs_audit_sensitive sens[CS_SHAMIR_MAX_SHARES];
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
  size_t ns = 0;
  if (st->keys != NULL) {
    for (unsigned i = 0; i < st->n; i++, ns++) {
      keys[i].data = st->keys + (size_t)i * st->key_len;
      keys[i].len = st->key_len;
      sens[i] = (cs_audit_sensitive){"new_unseal_key", keys[i].data, keys[i].len};
    }
    rs.n_keys = st->n;
    rs.keys = keys;
  }
  res.result_case = CUSTOS__RESPONSE__RESULT_REKEY;
  res.rekey = &rs;
  respond(r, &res, sens, ns);
  cs_rekey_status_clear(st);
}

static void on_rekey_done(void *arg, int status, cs_seal_result *res) {
  rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    cs_warn("rekey: %s", cs_error_message(status));
    respond_error(r, status);
    return;
  }
  cs_rekey_status copy = res->rekey;
  memset(&res->rekey, 0, sizeof res->rekey); /* respond_rekey wipes and frees the keys */
  respond_rekey(r, &copy);
}

static void handle_rekey(rq *r, const Custos__Request *req) {
  cs_seal *seal = r->d->seal;
  cs_rekey_status st = {0};
  int rc = 0;
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_REKEY_INIT: {
    unsigned n = req->rekey_init->shares ? req->rekey_init->shares : 5;
    unsigned t = req->rekey_init->threshold ? req->rekey_init->threshold : n == 1 ? 1 : 3;
    rc = cs_seal_rekey_init(seal, n, t, req->rekey_init->verify, &st);
    break;
  }
  case CUSTOS__REQUEST__OP_REKEY_UPDATE:
    rc = cs_seal_rekey_update(seal, req->rekey_update->nonce, req->rekey_update->key.data,
                              req->rekey_update->key.len, &st, on_rekey_done, r);
    break;
  case CUSTOS__REQUEST__OP_REKEY_VERIFY:
    rc = cs_seal_rekey_verify(seal, req->rekey_verify->nonce, req->rekey_verify->key.data,
                              req->rekey_verify->key.len, &st, on_rekey_done, r);
    break;
  case CUSTOS__REQUEST__OP_REKEY_CANCEL:
    rc = cs_seal_rekey_cancel(seal);
    break;
  default:
    cs_seal_rekey_status(seal, &st);
    break;
  }
  if (rc < 0 && park(r, rc)) {
    cs_rekey_status_clear(&st);
  } else if (rc < 0) {
    if (rc != CS_EBADNONCE && rc != CS_ENOOP && rc != CS_EINPROGRESS && rc != CS_EBUSY)
      cs_warn("rekey: %s", cs_error_message(rc));
    respond_error(r, rc);
  } else if (rc != CS_SEAL_PENDING) { /* else on_rekey_done answers after the swap */
    respond_rekey(r, &st);
  }
}

/* ---------------------------------------------------------------- tokens */

static void respond_token(rq *r, const Custos__TokenEntry *te, const char *token) {
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
  respond(r, &res, &sens, token ? 1 : 0);
}

/*
 * Token lifetimes.  No token but one created by a root token without a TTL
 * lives forever, and none lives longer than token.max_ttl after it was
 * issued (Vault's rule for non-periodic tokens: renewals cannot extend it
 * past its maximum TTL).  A TTL or increment above max_ttl is refused
 * rather than silently shortened, so a huge value cannot wrap the expiry
 * to 0 ("never") or overflow it; and every sum is checked anyway.
 */
static int ttl_in_range(const rq *r, const char *what, uint64_t seconds) {
  uint64_t max = r->d->cfg.token_max_ttl;
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
static int renewed_expiry(const rq *r, const Custos__TokenEntry *te, uint64_t inc, int64_t now,
                          int64_t *expire) {
  int64_t want = 0, limit = 0;
  int rc = time_add(now, inc, &want);
  if (rc == 0)
    rc = time_add(te->issue_time, r->d->cfg.token_max_ttl, &limit);
  if (rc < 0)
    return rc;
  if (limit <= now)
    return cs_error_set(CS_EINVAL, "token has reached its maximum TTL (token.max_ttl, %llu s "
                        "after issue) and cannot be renewed", (unsigned long long)r->d->cfg.token_max_ttl);
  *expire = want < limit ? want : limit;
  return 0;
}

typedef struct pending_token {
  rq *r;
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
    respond_error(p->r, status);
  else
    respond_token(p->r, &p->te, p->token);
  pending_token_free(p);
}

static void handle_token_create(rq *r, const Custos__TokenCreateReq *q) {
  int rc;
  if (q->n_policies == 0 || q->n_policies > 16) {
    respond_error(r, cs_error_set(CS_EINVAL, "a token needs 1 to 16 policies"));
    return;
  }
  for (size_t i = 0; i < q->n_policies; i++) {
    if (strcmp(q->policies[i], CS_POLICY_ROOT) == 0 && !r->root) {
      respond_error(r, cs_error_set(CS_EPERM, "only a root token can create root tokens"));
      return;
    }
    if (strcmp(q->policies[i], CS_POLICY_ROOT) != 0 && (rc = cs_policy_check_name(q->policies[i])) < 0) {
      respond_error(r, rc);
      return;
    }
  }
  /* No TTL: forever for a root caller (as before), max_ttl for anyone else. */
  uint64_t ttl = q->ttl_seconds ? q->ttl_seconds : r->root ? 0 : r->d->cfg.token_max_ttl;
  int64_t now = cs_now(), expire = 0;
  if ((rc = ttl_in_range(r, "ttl", ttl)) < 0 || (ttl && (rc = time_add(now, ttl, &expire)) < 0)) {
    respond_error(r, rc);
    return;
  }
  pending_token *p = calloc(1, sizeof *p);
  if (p == NULL || (p->policies = calloc(q->n_policies, sizeof *p->policies)) == NULL) {
    free(p);
    respond_error(r, CS_ENOMEM);
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
  respond_error(r, rc);
}

/* The target of lookup/renew/revoke: the given token, or the caller's. */
static void target_token(rq *r, const ProtobufCBinaryData *given, const uint8_t **tok, size_t *len) {
  if (given->len > 0) {
    *tok = given->data;
    *len = given->len;
  } else {
    *tok = r->token;
    *len = r->token_len;
  }
}

static void handle_token_lookup(rq *r, const ProtobufCBinaryData *given) {
  const uint8_t *tok;
  size_t len;
  target_token(r, given, &tok, &len);
  Custos__TokenEntry *te;
  int rc = cs_token_lookup(r->d->store, cs_seal_keyring(r->d->seal), tok, len, cs_now(), &te);
  if (rc == CS_EPERM || rc == CS_EEXPIRED)
    rc = cs_error_set(CS_ENOTFOUND, "no such token (or it expired)");
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  respond_token(r, te, NULL);
  custos__token_entry__free_unpacked(te, NULL);
}

/* The renewal was a conditional put: if a revoke committed first it was
 * skipped, and the entry is gone (tokens are never re-created). */
static void on_token_renewed(void *arg, int status) {
  pending_token *p = arg;
  cs_error_clear();
  cs_token_cache_invalidate();
  if (status == 0 && (status = cs_store_exists(p->r->d->store, p->path)) == 0)
    status = cs_error_set(CS_ENOTFOUND, "no such token (it was revoked)");
  if (status < 0)
    respond_error(p->r, status);
  else
    respond_token(p->r, &p->te, NULL);
  pending_token_free(p);
}

static void handle_token_renew(rq *r, const Custos__TokenRenewReq *q) {
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
    custos__token_entry__free_unpacked(te, NULL);
  }
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  uint64_t inc = q->increment_seconds ? q->increment_seconds : te->ttl_seconds;
  pending_token *p = NULL;
  cs_batch b;
  cs_batch_init(&b);
  /* An entry written before max_ttl existed may carry a longer ttl. */
  if (q->increment_seconds == 0 && inc > r->d->cfg.token_max_ttl)
    inc = r->d->cfg.token_max_ttl;
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
  custos__token_entry__free_unpacked(te, NULL);
  return;
fail:
  cs_batch_clear(&b);
  custos__token_entry__free_unpacked(te, NULL);
  if (p != NULL)
    pending_token_free(p);
  respond_error(r, rc);
}

/* The token a revoke names: the given one, or with the self flag (and only
 * then) the caller's.  An empty request used to mean "self": a root client
 * that forgot the field revoked root. */
static int revoke_target(rq *r, const Custos__TokenRevokeReq *q, const uint8_t **tok, size_t *len) {
  if (q->self && q->token.len > 0)
    return cs_error_set(CS_EINVAL, "give a token to revoke or set self, not both");
  if (!q->self && q->token.len == 0)
    return cs_error_set(CS_EINVAL, "no token to revoke: name one, or set self to revoke the "
                                   "caller's own token");
  target_token(r, &q->token, tok, len);
  return 0;
}

static void handle_token_revoke(rq *r, const Custos__TokenRevokeReq *q) {
  const uint8_t *tok = NULL;
  size_t len = 0;
  int rc = revoke_target(r, q, &tok, &len);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  char path[CS_TOKEN_PATH_MAX];
  cs_token_path(tok, len, path);
  rc = len == 0 || len >= CS_TOKEN_MAX ? 0 : cs_store_exists(r->d->store, path);
  if (rc <= 0) {
    respond_error(r, rc < 0 ? rc : cs_error_set(CS_ENOTFOUND, "no such token"));
    return;
  }
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = cs_batch_del(&b, path)) < 0) {
    cs_batch_clear(&b);
    respond_error(r, rc);
    return;
  }
  cs_info("token revoked by %s%s", r->accessor, q->self ? " (itself)" : "");
  submit_write(r, &b);
}

/* ---------------------------------------------------------------- policies */

static void handle_policy_write(rq *r, const Custos__PolicyWriteReq *q) {
  int rc = cs_policy_check_name(q->name);
  cs_policy *p = NULL;
  size_t len = q->document ? strlen(q->document) : 0;
  if (rc == 0)
    rc = cs_policy_parse(q->document ? q->document : "", len, &p);
  cs_policy_free(p);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  char path[CS_POLICY_NAME_MAX + sizeof P_POLICY + 1];
  policy_path(q->name, path, sizeof path);
  cs_info("policy %s written by %s", q->name, r->accessor);
  put_sealed_value(r, path, (const uint8_t *)q->document, len);
}

static void handle_policy_read(rq *r, const Custos__PolicyReadReq *q) {
  char *doc;
  size_t len;
  int rc = cs_policy_check_name(q->name);
  if (rc == 0)
    rc = policy_read_doc(r->d, q->name, &doc, &len);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__PolicyRes pr = CUSTOS__POLICY_RES__INIT;
  pr.name = q->name;
  pr.document = doc;
  res.result_case = CUSTOS__RESPONSE__RESULT_POLICY;
  res.policy = &pr;
  respond(r, &res, NULL, 0);
  free(doc);
}

static void handle_policy_list(rq *r) {
  char **names = NULL;
  size_t n = 0;
  int rc = cs_store_list(r->d->store, P_POLICY, &names, &n);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  respond_names(r, names, n, 1);
  cs_store_list_free(names, n);
}

static void handle_policy_delete(rq *r, const Custos__PolicyDeleteReq *q) {
  char path[CS_POLICY_NAME_MAX + sizeof P_POLICY + 1];
  int rc = cs_policy_check_name(q->name);
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
    respond_error(r, rc);
    return;
  }
  cs_info("policy %s deleted by %s", q->name, r->accessor);
  submit_write(r, &b);
}

/* ---------------------------------------------------------------- audit */

/* The audit log's form of a value, for auditors checking whether a given
 * secret, share or token was read or written. */
static void handle_audit_hash(rq *r, const Custos__AuditHashReq *q) {
  if (r->d->audit == NULL) {
    respond_error(r, cs_error_set(CS_EINVAL, "no audit log is configured"));
    return;
  }
  char hash[CS_AUDIT_HMAC_STR_MAX];
  cs_audit_hmac_hex(r->d->audit, q->value.data, q->value.len, hash);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__AuditHashRes ah = CUSTOS__AUDIT_HASH_RES__INIT;
  ah.hash = hash;
  res.result_case = CUSTOS__RESPONSE__RESULT_AUDIT_HASH;
  res.audit_hash = &ah;
  respond(r, &res, NULL, 0);
}

/* ---------------------------------------------------------------- entry point */

static const char *request_path(const Custos__Request *req) {
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_KV_PUT: return req->kv_put->path;
  case CUSTOS__REQUEST__OP_KV_GET: return req->kv_get->path;
  case CUSTOS__REQUEST__OP_KV_LIST: return req->kv_list->prefix;
  case CUSTOS__REQUEST__OP_KV_DELETE: return req->kv_delete->path;
  case CUSTOS__REQUEST__OP_POLICY_WRITE: return req->policy_write->name;
  case CUSTOS__REQUEST__OP_POLICY_READ: return req->policy_read->name;
  case CUSTOS__REQUEST__OP_POLICY_DELETE: return req->policy_delete->name;
  default: return "";
  }
}

/* How many entries request_sensitive() fills (sizes the list, so no
 * field of a large put is left out of the audit record). */
static size_t request_sensitive_count(const Custos__Request *req) {
  return req->op_case == CUSTOS__REQUEST__OP_KV_PUT ? req->kv_put->n_data : 1;
}

/* The secrets a request carries, for the audit log (hashed there); s has
 * room for request_sensitive_count(req) entries. */
static size_t request_sensitive(const Custos__Request *req, cs_audit_sensitive *s) {
  size_t n = 0;
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_UNSEAL:
    s[n++] = (cs_audit_sensitive){"unseal_key", req->unseal->key.data, req->unseal->key.len};
    break;
  case CUSTOS__REQUEST__OP_REKEY_UPDATE:
    s[n++] = (cs_audit_sensitive){"unseal_key", req->rekey_update->key.data, req->rekey_update->key.len};
    break;
  case CUSTOS__REQUEST__OP_REKEY_VERIFY:
    s[n++] = (cs_audit_sensitive){"new_unseal_key", req->rekey_verify->key.data, req->rekey_verify->key.len};
    break;
  case CUSTOS__REQUEST__OP_KV_PUT:
    for (size_t i = 0; i < req->kv_put->n_data; i++)
      s[n++] = (cs_audit_sensitive){req->kv_put->data[i]->key, req->kv_put->data[i]->value.data,
                                    req->kv_put->data[i]->value.len};
    break;
  case CUSTOS__REQUEST__OP_TOKEN_LOOKUP:
    s[n++] = (cs_audit_sensitive){"token", req->token_lookup->token.data, req->token_lookup->token.len};
    break;
  case CUSTOS__REQUEST__OP_TOKEN_RENEW:
    s[n++] = (cs_audit_sensitive){"token", req->token_renew->token.data, req->token_renew->token.len};
    break;
  case CUSTOS__REQUEST__OP_TOKEN_REVOKE:
    s[n++] = (cs_audit_sensitive){"token", req->token_revoke->token.data, req->token_revoke->token.len};
    break;
  case CUSTOS__REQUEST__OP_AUDIT_HASH:
    s[n++] = (cs_audit_sensitive){"value", req->audit_hash->value.data, req->audit_hash->value.len};
    break;
  default:
    break;
  }
  return n;
}

/*
 * The names in a request that become storage keys, checked before
 * authorization with the same functions (and so the same limits) the
 * handlers use: a kv path of at most CS_KV_PATH_MAX bytes ("kv/" + path is
 * an LMDB key), a policy name of at most CS_POLICY_NAME_MAX, at most
 * CS_KV_MAX_FIELDS fields per put.  Refusing here means authorization, the
 * audit record and r->path never see a name the store could not hold, and
 * an oversized put is refused before its fields are hashed for the audit
 * log.  "root" as a policy name is the handlers' business (CS_EPERM).
 */
static int check_request_names(const Custos__Request *req) {
  const char *name = NULL;
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_KV_PUT: {
    int rc = cs_kv_check_path(req->kv_put->path, 0);
    return rc < 0 ? rc : cs_kv_check_fields(req->kv_put->data, req->kv_put->n_data);
  }
  case CUSTOS__REQUEST__OP_KV_GET: return cs_kv_check_path(req->kv_get->path, 0);
  case CUSTOS__REQUEST__OP_KV_DELETE: return cs_kv_check_path(req->kv_delete->path, 0);
  case CUSTOS__REQUEST__OP_KV_LIST: return cs_kv_check_path(req->kv_list->prefix, 1);
  case CUSTOS__REQUEST__OP_POLICY_WRITE: name = req->policy_write->name; break;
  case CUSTOS__REQUEST__OP_POLICY_READ: name = req->policy_read->name; break;
  case CUSTOS__REQUEST__OP_POLICY_DELETE: name = req->policy_delete->name; break;
  default: return 0;
  }
  return cs_policy_name_valid(name) ? 0 : cs_policy_check_name(name);
}

/* ---------------------------------------------------------------- cluster (HA) */

/*
 * Cluster mode: a node that is not the raft leader answers only status and
 * unseal itself; init, data and operator requests get STANDBY with the
 * active's API address (the client library follows it).  Returns 1 when it
 * answered (and freed r).
 */
static int standby_redirect(rq *r) {
  int op = r->req->op_case;
  /* A removed node refuses even unseal: it must not serve again. */
  int removed = cs_ha_removed(r->d);
  if (op == CUSTOS__REQUEST__OP_STATUS || (op == CUSTOS__REQUEST__OP_UNSEAL && !removed) ||
      (!removed && cs_ha_is_leader(r->d)))
    return 0;
  /* A redirect is a refusal: on record like any other (request first). */
  if (audit(r, CS_AUDIT_REQUEST, 0, NULL, 0) < 0) {
    respond_error(r, CS_EAUDIT);
    return 1;
  }
  const char *mode, *active;
  cs_ha_status(r->d, &mode, &active);
  int rc = active[0] && !removed
               ? cs_error_set(CS_ESTANDBY, "this node is a standby; the active node is %s", active)
               : cs_ha_no_leader_error(r->d);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Error e = CUSTOS__ERROR__INIT;
  e.code = (Custos__ErrorCode)cs_error_wire_code(rc);
  e.message = (char *)cs_error_message(rc);
  e.active_address = (char *)active;
  res.error = &e;
  respond(r, &res, NULL, 0);
  return 1;
}

static void handle_raft_list_peers(rq *r) {
  cs_peer_info info[16];
  Custos__RaftPeer peers[16], *ptrs[16];
  size_t n = 0;
  int rc = cs_ha_peers(r->d, info, 16, &n);
  if (rc < 0) {
    respond_error(r, rc);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    custos__raft_peer__init(&peers[i]);
    peers[i].node_id = info[i].node_id;
    peers[i].address = info[i].address;
    peers[i].api_address = info[i].api_address;
    peers[i].voter = info[i].voter;
    peers[i].leader = info[i].leader;
    peers[i].applied_index = info[i].applied;
    peers[i].reachable = info[i].reachable;
    peers[i].last_contact_ms = info[i].last_contact_ms;
    peers[i].sealed = info[i].sealed;
    peers[i].keyring_term = info[i].term;
    peers[i].reported = info[i].reported;
    ptrs[i] = &peers[i];
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RaftPeersRes pr = CUSTOS__RAFT_PEERS_RES__INIT;
  pr.n_peers = n;
  pr.peers = ptrs;
  res.result_case = CUSTOS__RESPONSE__RESULT_RAFT_PEERS;
  res.raft_peers = &pr;
  respond(r, &res, NULL, 0);
}

/* A membership change finished (add or remove). */
static void on_peer_removed(void *arg, int status) {
  rq *r = arg;
  cs_error_clear();
  if (status < 0)
    respond_error(r, status);
  else
    respond_empty(r);
}

static void handle_raft_remove_peer(rq *r, const Custos__RaftRemovePeerReq *q) {
  int rc = cs_ha_remove_peer(r->d, q->node_id, on_peer_removed, r);
  if (rc < 0)
    respond_error(r, rc);
}

/* The operator's approval of a new member: nothing else adds one (a
 * certificate from the cluster CA alone does not). */
static void handle_raft_add_peer(rq *r, const Custos__RaftAddPeerReq *q) {
  int rc = cs_ha_add_peer(r->d, q->node_id, q->address, on_peer_removed, r);
  if (rc < 0)
    respond_error(r, rc);
}

static void handle_raft_step_down(rq *r) {
  int rc = cs_ha_step_down(r->d, on_peer_removed, r);
  if (rc < 0)
    respond_error(r, rc);
}

static void on_snapshot_reply(void *arg, int status, Custos__Response *res) {
  rq *r = arg;
  if (status < 0)
    respond_error(r, status);
  else
    respond(r, res, NULL, 0);
}

static void run(rq *r) {
  const Custos__Request *req = r->req;
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_STATUS: respond_status(r); break;
  case CUSTOS__REQUEST__OP_INIT: handle_init(r, req->init); break;
  case CUSTOS__REQUEST__OP_UNSEAL: handle_unseal(r, req->unseal); break;
  case CUSTOS__REQUEST__OP_SEAL: handle_seal(r); break;
  case CUSTOS__REQUEST__OP_KV_PUT: handle_kv_put(r, req->kv_put); break;
  case CUSTOS__REQUEST__OP_KV_GET: handle_kv_get(r, req->kv_get); break;
  case CUSTOS__REQUEST__OP_KV_LIST: handle_kv_list(r, req->kv_list); break;
  case CUSTOS__REQUEST__OP_KV_DELETE: handle_kv_delete(r, req->kv_delete); break;
  case CUSTOS__REQUEST__OP_ROTATE: handle_rotate(r); break;
  case CUSTOS__REQUEST__OP_KEY_STATUS: handle_key_status(r); break;
  case CUSTOS__REQUEST__OP_ROTATE_CONFIG: handle_rotate_config(r, req->rotate_config); break;
  case CUSTOS__REQUEST__OP_REKEY_INIT:
  case CUSTOS__REQUEST__OP_REKEY_UPDATE:
  case CUSTOS__REQUEST__OP_REKEY_STATUS:
  case CUSTOS__REQUEST__OP_REKEY_CANCEL:
  case CUSTOS__REQUEST__OP_REKEY_VERIFY: handle_rekey(r, req); break;
  case CUSTOS__REQUEST__OP_TOKEN_CREATE: handle_token_create(r, req->token_create); break;
  case CUSTOS__REQUEST__OP_TOKEN_LOOKUP: handle_token_lookup(r, &req->token_lookup->token); break;
  case CUSTOS__REQUEST__OP_TOKEN_RENEW: handle_token_renew(r, req->token_renew); break;
  case CUSTOS__REQUEST__OP_TOKEN_REVOKE: handle_token_revoke(r, req->token_revoke); break;
  case CUSTOS__REQUEST__OP_POLICY_WRITE: handle_policy_write(r, req->policy_write); break;
  case CUSTOS__REQUEST__OP_POLICY_READ: handle_policy_read(r, req->policy_read); break;
  case CUSTOS__REQUEST__OP_POLICY_LIST: handle_policy_list(r); break;
  case CUSTOS__REQUEST__OP_POLICY_DELETE: handle_policy_delete(r, req->policy_delete); break;
  case CUSTOS__REQUEST__OP_AUDIT_HASH: handle_audit_hash(r, req->audit_hash); break;
  case CUSTOS__REQUEST__OP_RAFT_LIST_PEERS: handle_raft_list_peers(r); break;
  case CUSTOS__REQUEST__OP_RAFT_REMOVE_PEER: handle_raft_remove_peer(r, req->raft_remove_peer); break;
  case CUSTOS__REQUEST__OP_RAFT_ADD_PEER: handle_raft_add_peer(r, req->raft_add_peer); break;
  case CUSTOS__REQUEST__OP_RAFT_STEP_DOWN: handle_raft_step_down(r); break;
  case CUSTOS__REQUEST__OP_SNAPSHOT_SAVE:
    cs_snapshots_save(r->d, req->snapshot_save, on_snapshot_reply, r);
    break;
  case CUSTOS__REQUEST__OP_SNAPSHOT_RESTORE:
    cs_snapshots_restore(r->d, req->snapshot_restore, r->client, r->authed, on_snapshot_reply, r);
    break;
  default:
    respond_error(r, cs_error_set(CS_EPROTO, "%s is not supported by this server", r->rule->name));
    break;
  }
}

void cs_dispatch(void *ctx, const cs_peer *peer, Custos__Request *req, cs_reply *reply) {
  cs_daemon *d = ctx;
  cs_error_clear();
  rq *r = calloc(1, sizeof *r);
  if (r == NULL) {
    send_error_raw(reply, CS_ENOMEM, 0);
    cs_wire_request_free(req);
    return;
  }
  r->d = d;
  r->reply = reply;
  r->req = req;
  r->id = req->id;
  r->token = req->token.data;
  r->token_len = req->token.len;
  snprintf(r->client, sizeof r->client, "%s", peer->address);
  /* A list is authorized against the folder it lists ("app" -> "app/"). */
  if (req->op_case == CUSTOS__REQUEST__OP_KV_LIST)
    cs_kv_list_folder(request_path(req), r->path, sizeof r->path);
  else
    snprintf(r->path, sizeof r->path, "%s", request_path(req));
  r->rule = rule_for(req->op_case);
  if (r->rule == NULL) {
    respond_error(r, cs_error_set(CS_EPROTO, "unknown operation %d", (int)req->op_case));
    return;
  }
  admit(r);
}

/*
 * Requests that reach a raft leader while it is still catching up (unsealed,
 * its activation barrier not yet applied: see ha.c) wait here, in order,
 * instead of being served from a state that may predate the last leader's
 * writes.  cs_daemon_activation_done() runs them again.  Status and unseal
 * never wait.  Loop thread only.
 */
static rq *held_head;
static rq **held_tail = &held_head;

static int must_wait(rq *r) {
  int op = r->req->op_case;
  if (op == CUSTOS__REQUEST__OP_STATUS || op == CUSTOS__REQUEST__OP_UNSEAL)
    return 0;
  cs_daemon *d = r->d;
  if (d->seal == NULL || !cs_ha_is_leader(d))
    return 0;
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  return !st.sealed && !cs_ha_is_active(d); /* cs_ha_is_active starts the catch-up */
}

void cs_daemon_activation_done(cs_daemon *d) {
  (void)d;
  rq *list = held_head;
  held_head = NULL;
  held_tail = &held_head;
  while (list != NULL) {
    rq *r = list;
    list = r->held_next;
    r->held_next = NULL;
    admit(r); /* served, redirected, or held again for the next attempt */
  }
}

/* From a request with its context to its answer: wait, redirect, or
 * authorize, audit and run. */
static void admit(rq *r) {
  if (must_wait(r)) {
    *held_tail = r;
    held_tail = &r->held_next;
    return;
  }
  cs_error_clear(); /* a held request runs again later */
  if (standby_redirect(r))
    return;
  Custos__Request *req = r->req;
  int rc = check_request_names(req);
  /* A malformed request (e.g. a put over the field cap) is logged without
   * its values; any other, refused or not, with every one of them. */
  size_t cap = rc == 0 ? request_sensitive_count(req) : 0;
  if (rc == 0)
    rc = authorize(r);
  cs_audit_sensitive *sens = calloc(cap ? cap : 1, sizeof *sens);
  if (sens == NULL) {
    respond_error(r, CS_ENOMEM);
    return;
  }
  size_t ns = cap ? request_sensitive(req, sens) : 0;
  /* The request is on record before anything happens, refused or not. */
  int arc = audit(r, CS_AUDIT_REQUEST, 0, sens, ns);
  free(sens);
  if (arc < 0) {
    respond_error(r, CS_EAUDIT);
    return;
  }
  if (rc < 0) {
    if (rc == CS_EPERM || rc == CS_EEXPIRED)
      cs_info("%s from %s refused: %s", r->rule->name, r->client, cs_error_message(rc));
    respond_error(r, rc);
    return;
  }
  run(r);
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

void cs_daemon_tick(uv_timer_t *t) {
  cs_daemon *d = t->data;
  uint64_t now_ms = uv_now(d->loop);
  int flush = now_ms - d->last_flush_ms >= d->cfg.counter_flush_ms;
  if (flush)
    d->last_flush_ms = now_ms;
  if (!cs_ha_is_active(d))
    return; /* key maintenance is the active's job; standbys follow (ha.c) */
  int rotating;
  int rc = cs_seal_tick(d->seal, cs_now(), flush, &rotating);
  if (rc < 0)
    cs_warn("periodic key maintenance failed: %s", cs_error_message(rc));
}
