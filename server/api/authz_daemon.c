/*
 * authz_daemon: custosd's side of authorization.  Feeds cs_authz_decide()
 * with the daemon's facts (snapshot restore, seal, token store, stored
 * policies), applies the decision to the request (accessor, root) and to
 * its connection (the frame grant), and bumps the auth generation.
 */
#include "api_int.h"
#include "bytes.h"
#include "api.h"

#include "cs_error.h"
#include "snapshots.h"
#include "token.h"

#include <stdio.h>

/* ---------------------------------------------------------------- the daemon's facts */

static int daemon_state(void *ctx, int *initialized) {
  cs_api_env *d = ctx;
  *initialized = 1;
  if (cs_snapshots_restoring(d))
    return cs_error_set(CS_EBUSY, "a snapshot restore is being applied; retry");
  if (cs_seal_keyring(d->seal) != NULL)
    return 0;
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  *initialized = st.initialized;
  if (!st.initialized)
    return cs_error_set(CS_ENOTINIT, "server is not initialized");
  if (st.reason[0] != '\0') /* it sealed itself (staged activation, docs/ha.md) */
    return cs_error_set(CS_ESEALED, "server is sealed: it %s", st.reason);
  return cs_error_set(CS_ESEALED, "server is sealed");
}

static int daemon_token_lookup(void *ctx, const uint8_t *token, size_t len, uint8_t hash[32],
                               Custos__TokenEntry **out) {
  cs_api_env *d = ctx;
  int rc = cs_token_hash(token, len, hash);
  if (rc < 0)
    return rc;
  return cs_token_lookup_hash(d->store, cs_seal_keyring(d->seal), hash, cs_now(), out);
}

static const cs_authz_src *daemon_src(cs_api_env *d) {
  static cs_authz_src src = {.state = daemon_state, .token_lookup = daemon_token_lookup,
                             .load_policy = cs_policy_loader};
  src.ctx = d;
  return &src;
}

/* ---------------------------------------------------------------- frame grants */

/* The connection's frame grant (cs_frame_grant_fn): the token whose hash
 * this is still exists, has not expired and may write. */
static int frame_grant_holds(void *ctx, const uint8_t token_hash[32]) {
  cs_api_env *d = ctx;
  cs_keyring *kr = d->seal != NULL ? cs_seal_keyring(d->seal) : NULL;
  Custos__TokenEntry *te = NULL;
  cs_authz_sync(d->auth_gen);
  if (kr == NULL || cs_token_lookup_hash(d->store, kr, token_hash, cs_now(), &te) < 0) {
    cs_error_clear();
    return 0;
  }
  int may = cs_authz_may_write(daemon_src(d), d->auth_gen, te);
  cs_token_entry_free(te);
  cs_error_clear();
  return may;
}

/* After a request's token was looked up: the larger frame limit for its
 * connection while that token may write, else none. */
static void grant_frames(cs_rq *r, const cs_authz_who *who) {
  if (!who->authed || !who->may_write) {
    cs_reply_grant_frames(r->reply, NULL, NULL, NULL);
    return;
  }
  cs_reply_grant_frames(r->reply, who->token_hash, frame_grant_holds, r->d);
}

int cs_authorize(cs_rq *r) {
  /* An op the configuration opens to anyone (metrics: Prometheus
   * scrapers), asked without a token: runs, sealed or not.  With a token,
   * the token is checked as for any request. */
  if (r->op->needs_token == NEEDS_TOKEN_UNLESS_PUBLIC && r->token_len == 0 &&
      r->d->cfg->metrics_unauthenticated)
    return 0;
  cs_authz_who who;
  int rc = cs_authz_decide(daemon_src(r->d), r->d->auth_gen, r->op, r->req,
                           r->path, r->token, r->token_len, &who);
  if (who.authed) {
    cs_strlcpy(r->accessor, who.accessor, sizeof r->accessor);
    r->authed = 1;
    r->root = who.root;
  }
  /* A looked-up token, accepted or refused, sets the connection's grant. */
  if (who.looked_up)
    grant_frames(r, &who);
  return rc;
}
