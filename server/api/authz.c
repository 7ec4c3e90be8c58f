/*
 * authz: whether a request may run.  cs_authz_decide() is the one place
 * where the op table's needs_token / sys_path / cap are enforced; nothing
 * else decides access (authz.h).  It knows no daemon: its facts come from
 * a cs_authz_src (authz_daemon.c for custosd, fakes in
 * tests/unit/test_authz.c).  Loop thread only.
 */
#include "authz.h"
#include "bytes.h"
#include "op.h"

#include "cs_error.h"
#include "policy.h"
#include "token.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- caches */

/* The auth generation the caches were filled at (they are per process,
 * like this stamp); the daemon's counter is the truth (authz.h). */
static uint64_t cache_gen;

void cs_authz_sync(uint64_t gen) {
  if (gen == cache_gen)
    return;
  cs_token_cache_invalidate();
  cs_policy_cache_invalidate();
  cache_gen = gen;
}

/* ---------------------------------------------------------------- decision */

/*
 * Whether a token's policies grant `cap` on `path` in namespace `ns`: 1 or
 * 0, or an error when one of them cannot be read or parsed (it may be the
 * deny that decides, so the request is refused rather than decided without
 * it).  A policy that no longer exists grants nothing.  Every policy is
 * held by reference until the decision is made (see policy_cache.h).
 */
static int policies_allow(const cs_authz_src *src, const Custos__TokenEntry *te, cs_policy_ns ns,
                          const char *path, unsigned cap) {
  cs_policy *pols[CS_TOKEN_MAX_POLICIES];
  if (te->n_policies > CS_TOKEN_MAX_POLICIES)
    return cs_error_set(CS_ESTORECORRUPT, "token entry holds %zu policies (at most %d)",
                        te->n_policies, CS_TOKEN_MAX_POLICIES);
  size_t n = 0;
  int rc = 0;
  for (size_t i = 0; i < te->n_policies && rc == 0; i++) {
    cs_policy *p;
    rc = cs_policy_cache_get(te->policies[i], src->load_policy, src->ctx, &p);
    if (rc == 0 && p != NULL)
      pols[n++] = p;
  }
  int allowed =
      rc == 0 && n > 0 && cs_policy_ns_allows((const cs_policy *const *)pols, n, ns, path, cap);
  for (size_t i = 0; i < n; i++)
    cs_policy_free(pols[i]);
  return rc < 0 ? rc : allowed;
}

static int token_is_root(const Custos__TokenEntry *te) {
  if (te->root)
    return 1;
  for (size_t i = 0; i < te->n_policies; i++)
    if (strcmp(te->policies[i], CS_POLICY_ROOT) == 0)
      return 1;
  return 0;
}

int cs_authz_may_write(const cs_authz_src *src, uint64_t gen, const Custos__TokenEntry *te) {
  if (token_is_root(te))
    return 1;
  cs_authz_sync(gen);
  int may = 0;
  for (size_t i = 0; i < te->n_policies && i < CS_TOKEN_MAX_POLICIES && !may; i++) {
    cs_policy *p;
    if (cs_policy_cache_get(te->policies[i], src->load_policy, src->ctx, &p) < 0 || p == NULL)
      continue;
    for (size_t j = 0; j < cs_policy_rule_count(p) && !may; j++) {
      unsigned caps = cs_policy_rule_caps(p, j);
      may = (caps & (CS_CAP_WRITE | CS_CAP_SUDO)) != 0 && (caps & CS_CAP_DENY) == 0;
    }
    cs_policy_free(p);
  }
  return may;
}

/* Operations a token may do on itself without sudo (like Vault's
 * lookup-self, renew-self and revoke-self).  A revoke names itself only
 * with the explicit self flag (see cs_op_token_revoke). */
static int has_text(const char *s) { return s != NULL && s[0] != '\0'; }

static int is_self_op(const Custos__Request *req) {
  /* Naming a token by its accessor is never "self": it needs sudo. */
  return (req->op_case == CUSTOS__REQUEST__OP_TOKEN_LOOKUP && req->token_lookup->token.len == 0 &&
          !has_text(req->token_lookup->accessor)) ||
         (req->op_case == CUSTOS__REQUEST__OP_TOKEN_RENEW && req->token_renew->token.len == 0) ||
         (req->op_case == CUSTOS__REQUEST__OP_TOKEN_REVOKE && req->token_revoke->self &&
          req->token_revoke->token.len == 0 && !has_text(req->token_revoke->accessor));
}

/*
 * Order: the node's state first (a sealed node cannot read its token
 * store), then the token (looked up on every request, so an expired or
 * revoked token is refused at once, also on connections that used it
 * before), then the capability.
 */
int cs_authz_decide(const cs_authz_src *src, uint64_t gen, const cs_op *op,
                    const Custos__Request *req, const char *path, const uint8_t *token,
                    size_t token_len, cs_authz_who *who) {
  memset(who, 0, sizeof *who);
  if (!op->needs_token)
    return 0;
  int initialized = 1;
  int rc = src->state(src->ctx, &initialized);
  if (rc < 0)
    return !initialized && op->needs_token == NEEDS_TOKEN_INIT ? 0 : rc;
  cs_authz_sync(gen);
  Custos__TokenEntry *te = NULL;
  who->looked_up = 1;
  if ((rc = src->token_lookup(src->ctx, token, token_len, who->token_hash, &te)) < 0)
    return rc;
  cs_strlcpy(who->accessor, te->accessor ? te->accessor : "", sizeof who->accessor);
  who->authed = 1;
  who->root = token_is_root(te);
  who->may_write = cs_authz_may_write(src, gen, te);
  int operator = op->sys_path != NULL;
  const char *where = operator ? op->sys_path : path;
  /* Not `a || b || policies_allow()`: that turns a policy's error into 1
   * (allowed).  Review finding, issue 12: dispatch.c did exactly that, so a
   * policy that could not be read or parsed granted everything. */
  int allowed = 1;
  if (!who->root && !is_self_op(req))
    allowed = policies_allow(src, te, operator ? CS_POLICY_NS_OPERATOR : CS_POLICY_NS_SECRET,
                             where, op->cap);
  cs_token_entry_free(te);
  if (allowed < 0)
    return allowed;
  if (!allowed)
    return cs_error_set(CS_EPERM, "permission denied: %s on %s", op->name, where);
  return 0;
}
