/*
 * policy_ns: the migration of stored policies to separate namespaces.
 *
 * Before namespaces, one list of rules decided both secrets (kv paths) and
 * operator actions (sys/ paths): a rule "sys/ *" with sudo also decided a
 * secret stored at "sys/x" (and, being the most specific, refused it where
 * a "*" read rule would have granted it).  Now a document's "rules" decide
 * secrets only and its "operator" rules operator actions only
 * (policy.h, docs/policy.md).
 *
 * An old document is rewritten so that every operator action is decided
 * exactly as before, and every secret as before except that sudo no longer
 * counts among secret rules:
 *  - "operator": every old rule that can match a sys/ path (an exact path
 *    starting with "sys/", a prefix rule whose prefix starts with "sys/" or
 *    is a prefix of "sys/", such as "*"), verbatim;
 *  - "rules": every old rule with sudo removed from its capabilities; a
 *    rule left with none (a sudo-only rule such as "sys/ *") is dropped.
 *
 * The store says which format its documents are in: CS_POLICY_NS_MARKER
 * present = every stored document is namespaced.  The daemon migrates
 * every document and writes the marker in ONE transaction, once, when an
 * unsealed active node finds it missing (api/policy_ops.c); until then a
 * loaded document is migrated in memory, so decisions never depend on
 * whether that commit has happened yet.
 */
#ifndef CS_POLICY_NS_H
#define CS_POLICY_NS_H

#include <stddef.h>

#define CS_POLICY_NS_MARKER "core/policy-ns"
#define CS_POLICY_NS_VERSION "2"

/*
 * Rewrites an old (single-namespace) document `doc` of `len` bytes into
 * the namespaced form: *out is malloc'd, NUL-terminated, *out_len bytes of
 * compact JSON (the caller frees it).  A document that already has an
 * "operator" section is copied unchanged.  Returns 0, CS_EINVAL when `doc`
 * is not a JSON object with a "rules" array of {path, capabilities}
 * objects (stored data is then corrupt: the caller refuses), CS_ENOMEM.
 */
int cs_policy_ns_migrate(const char *doc, size_t len, char **out, size_t *out_len)
    __attribute__((warn_unused_result));

/* 1 when an old rule with this path (as written, '*' last for a prefix)
 * can match some path starting with "sys/". */
int cs_policy_ns_matches_sys(const char *path);

#endif
