/*
 * seal_ops: the handlers of the seal's operations: status, init, unseal,
 * seal (sealing and the unseal ceremony) and the key lifecycle (rotate,
 * key-status, rotate-config; rekey-* are in rekey_ops.c).  The seal (server/core/seal) does
 * the work; these turn requests into its calls and its results into
 * responses.  Key changes refused with CS_EBUSY while the server rotates
 * are parked (park()).
 */
#include "api_int.h"
#include "cs_version.h"

#include "cs_error.h"
#include "ha.h"
#include "holders.h"
#include "log.h"
#include "shamir.h"
#include "snapshots.h"
#include "unseal_relay.h"

#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- status */

void cs_op_status(cs_rq *r) { cs_op_status_relayed(r, NULL, 0); }

/* The status answer, with what the other members did with a share this
 * node relayed (unseal --cluster, rekey_ops.c). */
void cs_op_status_relayed(cs_rq *r, Custos__UnsealRelayResult **relayed, size_t n_relayed) {
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
  sr.version = CS_VERSION; /* common/cs_version.h; also HTTP sys/health */
  const char *mode, *active;
  cs_ha_status(r->d, &mode, &active);
  sr.ha_mode = (char *)mode;
  sr.active_address = (char *)active;
  sr.removed_from_cluster = cs_ha_removed(r->d);
  sr.seal_reason = st.reason;
  cs_snapshots_status(r->d, &sr);
  sr.n_relayed = n_relayed;
  sr.relayed = relayed;
  res.result_case = CUSTOS__RESPONSE__RESULT_STATUS;
  res.status = &sr;
  respond(r, 0, &res, NULL, 0);
}

/* ---------------------------------------------------------------- init */

static void on_init_done(void *arg, int status, cs_seal_result *res) {
  cs_rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    respond(r, status, NULL, NULL, 0);
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
    respond(r, rc, NULL, NULL, 0);
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
  respond(r, 0, &out, sens, res->n + 1);
  cs_holders_free(age_keys, n_age);
  free(age_root);
}

void cs_op_init(cs_rq *r) {
  const Custos__InitReq *q = r->req->init;
  unsigned n = q->shares ? q->shares : 5, t = q->threshold ? q->threshold : 3;
  if (q->shares == 1 && q->threshold == 0)
    t = 1;
  int rc = cs_ha_init_allowed(r->d);
  if (rc == 0)
    rc = cs_holders_check(q->recipients, q->n_recipients, q->root_token_recipient, n);
  if (rc == 0)
    rc = cs_seal_init(r->d->seal, n, t, on_init_done, r);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- unseal, seal */

size_t cs_sens_unseal(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"unseal_key", req->unseal->key.data, req->unseal->key.len};
  return 1;
}

/*
 * A reset throws away the shares submitted so far, and needs no token (the
 * node is sealed): so it must name the ceremony it resets by its nonce, as
 * shown by status to those taking part, and every reset is logged with the
 * client's address.  With no ceremony in progress there is nothing to reset.
 */
static int unseal_reset(cs_rq *r, const Custos__UnsealReq *q) {
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

void cs_op_unseal(cs_rq *r) {
  const Custos__UnsealReq *q = r->req->unseal;
  cs_api_env *d = r->d;
  /* unseal --cluster (rekey_ops.c): refused before anything counts here
   * when this node cannot relay; a reset stays local. */
  int rc0 = q->cluster && q->reset
                ? cs_error_set(CS_EINVAL, "a reset is per node: reset without --cluster")
                : q->cluster ? cs_unseal_relay_allowed(d) : 0;
  if (rc0 < 0) {
    respond(r, rc0, NULL, NULL, 0);
    return;
  }
  if (q->reset) {
    int rc = unseal_reset(r, q);
    if (rc < 0) {
      respond(r, rc, NULL, NULL, 0);
      return;
    }
  } else {
    cs_seal_status before, st;
    cs_seal_get_status(d->seal, &before);
    int rc = cs_seal_unseal(d->seal, q->key.data, q->key.len);
    if (rc < 0) {
      cs_warn("unseal share from %s refused: %s", r->client, cs_error_message(rc));
      respond(r, rc, NULL, NULL, 0);
      return;
    }
    cs_seal_get_status(d->seal, &st);
    if (before.sealed && !st.sealed)
      cs_info("unsealed: term %u is active", st.term);
    if (q->cluster) { /* answers once every other member did */
      cs_unseal_cluster(r);
      return;
    }
  }
  cs_op_status(r);
}

void cs_op_seal(cs_rq *r) {
  cs_seal_seal(r->d->seal); /* the seal event runs in daemon.c */
  cs_info("sealed by request from %s", r->client);
  respond_empty(r);
}

/* ---------------------------------------------------------------- key lifecycle */

static void on_rotate_done(void *arg, int status, cs_seal_result *res) {
  cs_rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    respond(r, status, NULL, NULL, 0);
    return;
  }
  Custos__Response out = CUSTOS__RESPONSE__INIT;
  Custos__RotateRes rr = CUSTOS__ROTATE_RES__INIT;
  rr.term = res->term;
  rr.install_time = res->install_time;
  rr.staged = res->staged != 0;
  out.result_case = CUSTOS__RESPONSE__RESULT_ROTATE;
  out.rotate = &rr;
  respond(r, 0, &out, NULL, 0);
}

void cs_op_rotate(cs_rq *r) {
  int rc = cs_seal_rotate(r->d->seal, on_rotate_done, r);
  if (rc < 0 && !park(r, rc))
    respond(r, rc, NULL, NULL, 0);
}

/* key-status: server/api/lifecycle_ops.c */

static void respond_rotate_config(cs_rq *r, const cs_rotate_config *cfg) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RotateConfigRes cr = CUSTOS__ROTATE_CONFIG_RES__INIT;
  cr.enabled = cfg->enabled;
  cr.max_operations = cfg->max_operations;
  cr.interval_seconds = cfg->interval_seconds;
  res.result_case = CUSTOS__RESPONSE__RESULT_ROTATE_CONFIG;
  res.rotate_config = &cr;
  respond(r, 0, &res, NULL, 0);
}

static void on_rotate_config_done(void *arg, int status, cs_seal_result *res) {
  cs_rq *r = arg;
  cs_error_clear();
  cs_rotate_config cfg;
  if (status == 0)
    status = cs_seal_rotate_config_get(r->d->seal, &cfg);
  if (status < 0) {
    respond(r, status, NULL, NULL, 0);
    return;
  }
  cs_info("rotate config: %s, max operations %llu, interval %llu s",
          cfg.enabled ? "enabled" : "disabled", (unsigned long long)cfg.max_operations,
          (unsigned long long)cfg.interval_seconds);
  respond_rotate_config(r, &cfg);
}

void cs_op_rotate_config(cs_rq *r) {
  const Custos__RotateConfigReq *q = r->req->rotate_config;
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
    respond(r, rc, NULL, NULL, 0);
}

