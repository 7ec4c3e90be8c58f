/*
 * policy_cache: parsed policies by name, handed out by reference.
 *
 * A scoped token's request would otherwise cost a read, a decrypt and a JSON
 * parse per policy.  What the cache hands out is a reference of its own
 * (cs_policy_hold): a later lookup that evicts or replaces the entry never
 * frees a policy a caller still uses (issue 10: two colliding names of one
 * token freed the first while the decision still used it).
 *
 * Only present, well-formed policies are cached.  A missing policy is
 * never cached and never evicts a present one; a stored document that does
 * not parse is an error, never "absent" (it may have been a deny).
 *
 * The cache is one per process (a custosd has one store and one keyring) and
 * is used from the event loop thread only.
 */
#ifndef CS_POLICY_CACHE_H
#define CS_POLICY_CACHE_H

#include <stddef.h>
#include "policy.h"

/* Reads the stored document of policy `name` into a malloc'd buffer (the
 * caller frees it); CS_ENOTFOUND when there is no such policy. */
typedef int (*cs_policy_load_fn)(void *ctx, const char *name, char **doc, size_t *len);

/*
 * The parsed policy `name`, from the cache or loaded with load(ctx, ...).
 * Returns 0 and *out = a reference the caller drops with cs_policy_free
 * (valid whatever the cache does meanwhile); 0 and *out = NULL when there is
 * no policy of that name; or an error (the loader's, or CS_ESTORECORRUPT when
 * a stored document does not parse) with *out = NULL: the caller must then
 * refuse, not skip the policy.
 */
int cs_policy_cache_get(const char *name, cs_policy_load_fn load, void *ctx, cs_policy **out)
    __attribute__((warn_unused_result));

/* Drops every cached policy (references handed out stay valid): after a
 * policy is written or deleted, on seal and unseal, on becoming active. */
void cs_policy_cache_invalidate(void);

/* How many policies the cache holds (tests). */
size_t cs_policy_cache_count(void);

#endif
