/*
 * authz: the one access decision, with an interface a test can feed
 * (tests/unit/test_authz.c): where tokens and policies come from is a
 * cs_authz_src of function pointers, so cs_authz_decide() needs no daemon,
 * no store and no seal.
 *
 * Caches.  Decrypted token entries (core/token.c) and parsed policies
 * (core/policy_cache.c) are cached.  What they hold is valid for one value
 * of an auth generation owned by the daemon (cs_api_env.auth_gen), which
 * every change that may alter a decision bumps (cs_api_auth_changed: seal,
 * unseal, keyring change, a committed policy write or delete, a committed
 * token revoke or renew, a raft entry touching tokens or policies, a node
 * becoming active, the policy namespace migration).  Each decision first
 * compares the generation with the one the caches were filled at and
 * empties them when it moved (cs_authz_sync).  In custosd nothing else
 * empties them; the raft state machine bumps the generation through its
 * owner (cs_fsm_on_auth_change) and only empties them itself when it has
 * none (its unit tests).
 */
#ifndef CS_API_AUTHZ_H
#define CS_API_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "custos.pb-c.h"
#include "policy_cache.h"

struct cs_op;

/* Where a decision's facts come from. */
typedef struct cs_authz_src {
  void *ctx;
  /* 0 when tokens can be checked now; else the error a request that needs
   * a token gets (CS_EBUSY during a restore, CS_ESEALED, CS_ENOTINIT, with
   * a detail); *initialized says whether the server is initialized. */
  int (*state)(void *ctx, int *initialized);
  /* The entry of a presented token: 0 and *out (freed by the caller with
   * cs_token_entry_free), or CS_EPERM (missing, unknown,
   * revoked), CS_EEXPIRED, or a storage error.  hash: where to put the
   * token's SHA-256 once computed (the frame grant keys on it, so the
   * request path hashes a token once); may be left untouched. */
  int (*token_lookup)(void *ctx, const uint8_t *token, size_t len, uint8_t hash[32],
                      Custos__TokenEntry **out);
  /* A stored policy document (see cs_policy_load_fn). */
  cs_policy_load_fn load_policy;
} cs_authz_src;

/* What a decision learned about the caller (also when it refused). */
typedef struct cs_authz_who {
  char accessor[32];
  int looked_up;     /* a token was looked up (accepted or not) */
  int authed;        /* the token was accepted */
  int root;          /* ... and it is a root token */
  int may_write;     /* ... and it may write something (frame grant) */
  uint8_t token_hash[32]; /* the token's SHA-256, as the lookup computed it */
} cs_authz_who;

/*
 * Whether the request `req` for row `op`, on `path` (the row's path_of;
 * the decision uses op->sys_path instead when the row has one), presented
 * with `token`, may run: 0, or the error it fails with (the state's error,
 * the token's error, CS_EPERM "permission denied: <op> on <path>", or the
 * error of a policy that cannot be read or parsed).  `gen` is the daemon's
 * current auth generation (see above).  *who is filled in any case.
 *
 * Secrets are decided by the token's policies' secret rules on `path`;
 * operator actions by their operator rules on op->sys_path (the two never
 * decide for each other: policy.h).  A root token may do everything; a
 * token may look up, renew and (with the self flag) revoke itself.
 */
int cs_authz_decide(const cs_authz_src *src, uint64_t gen, const struct cs_op *op,
                    const Custos__Request *req, const char *path, const uint8_t *token,
                    size_t token_len, cs_authz_who *who) __attribute__((warn_unused_result));

/* Empties the caches when `gen` is not the generation they were filled
 * at (every decision does this first). */
void cs_authz_sync(uint64_t gen);

/* Whether token entry te may write anything (root, or a policy rule with
 * write or sudo and no deny).  Uses the policy cache at generation gen. */
int cs_authz_may_write(const cs_authz_src *src, uint64_t gen, const Custos__TokenEntry *te);

#endif
