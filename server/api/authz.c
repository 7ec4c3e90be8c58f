/*
 * authz: whether a request may run.  cs_authorize() is the one place where
 * the op table's needs_token / sys_path / cap are enforced; nothing else
 * decides access.  Also owns the connection's frame grant (the larger
 * frame limit while the caller's token may write) and the caches of
 * decrypted token entries and parsed policies (emptied by
 * cs_daemon_auth_changed).  Loop thread only.
 */
#include "api_int.h"

#include "crypto.h"
#include "cs_error.h"
#include "policy_cache.h"
#include "snapshots.h"
#include "token.h"

#include <stdio.h>
#include <string.h>

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
    rc = cs_policy_cache_get(te->policies[i], cs_policy_loader, d, &p);
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
    if (cs_policy_cache_get(te->policies[i], cs_policy_loader, d, &p) < 0 || p == NULL)
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
static void grant_frames(cs_rq *r, const Custos__TokenEntry *te) {
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
 * with the explicit self flag (see cs_op_token_revoke). */
static int is_self_op(const Custos__Request *req) {
  return (req->op_case == CUSTOS__REQUEST__OP_TOKEN_LOOKUP && req->token_lookup->token.len == 0) ||
         (req->op_case == CUSTOS__REQUEST__OP_TOKEN_RENEW && req->token_renew->token.len == 0) ||
         (req->op_case == CUSTOS__REQUEST__OP_TOKEN_REVOKE && req->token_revoke->self &&
          req->token_revoke->token.len == 0);
}

/*
 * Order: sealed first (a sealed node cannot read its token store), then
 * the token (looked up on every request, so an expired or revoked token is
 * refused at once, also on connections that used it before), then the
 * capability.
 */
int cs_authorize(cs_rq *r) {
  const cs_op *op = r->op;
  if (!op->needs_token)
    return 0;
  cs_daemon *d = r->d;
  if (op->needs_token == NEEDS_TOKEN_UNLESS_PUBLIC && r->token_len == 0 &&
      d->cfg.metrics_unauthenticated)
    return 0;
  if (cs_snapshots_restoring(d))
    return cs_error_set(CS_EBUSY, "a snapshot restore is being applied; retry");
  cs_keyring *kr = cs_seal_keyring(d->seal);
  if (kr == NULL) {
    cs_seal_status st;
    cs_seal_get_status(d->seal, &st);
    if (!st.initialized && op->needs_token == NEEDS_TOKEN_INIT)
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
  const char *path = op->sys_path ? op->sys_path : r->path;
  int allowed = r->root || is_self_op(r->req) || policies_allow(d, te, path, op->cap);
  custos__token_entry__free_unpacked(te, NULL);
  if (allowed < 0)
    return allowed;
  if (!allowed)
    return cs_error_set(CS_EPERM, "permission denied: %s on %s", op->name, path);
  return 0;
}
