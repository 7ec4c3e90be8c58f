/*
 * policy: ACL policies and the access decision.
 *
 * A policy is a JSON document (see docs/policy.md; "app/" + '*' below is
 * spelled "app/ *" only because a C comment cannot contain slash-star):
 *   {"rules":[{"path":"secret/app/ *","capabilities":["read","list"]},
 *             {"path":"secret/app/admin","capabilities":["deny"]}],
 *    "operator":[{"path":"sys/rotate","capabilities":["sudo"]}]}
 * "rules" decide secrets, "operator" rules decide operator actions (see
 * cs_policy_ns below); a document has at least one of the two.  A rule's path is exact, or a prefix when it ends in '*' (the only place a
 * '*' may appear; "*" alone matches every path).  Paths are 1..512 bytes of
 * printable ASCII without spaces.  Capabilities: read, write, list, delete,
 * deny, sudo; at least one, none twice.  At most CS_POLICY_MAX_RULES rules
 * in all, no two with the same path in one section.  Unknown fields are errors, so a typo never
 * silently grants or withholds access.
 *
 * The server stores the document text itself under the barrier and parses
 * it again when loading, so what an operator wrote is what is read back.
 *
 * Decision (cs_policy_allows): deny by default.  In each policy the most
 * specific matching rule decides: an exact rule beats every prefix rule,
 * the longest prefix beats shorter ones.  The deciding rules of all the
 * token's policies are unioned; one deciding "deny" refuses everything.
 *
 * The "root" policy is not a document: it is reserved and handled by the
 * caller (a token holding it is allowed everything, before any policy is
 * consulted).  This module only refuses to parse it into existence through
 * cs_policy_check_name().
 */
#ifndef CS_POLICY_H
#define CS_POLICY_H

#include <stddef.h>

#define CS_CAP_READ 1u
#define CS_CAP_WRITE 2u
#define CS_CAP_LIST 4u
#define CS_CAP_DELETE 8u
#define CS_CAP_DENY 16u
#define CS_CAP_SUDO 32u
#define CS_CAP_ALL 63u

#define CS_POLICY_MAX_RULES 1000
#define CS_POLICY_PATH_MAX 512
#define CS_POLICY_NAME_MAX 128
#define CS_POLICY_DOC_MAX (1024 * 1024)
#define CS_POLICY_ROOT "root"

typedef struct cs_policy cs_policy;

/*
 * Two namespaces that never decide for each other: a document's "rules"
 * decide secrets (kv paths, as the client names them), its "operator"
 * rules decide operator actions (their sys/ paths, docs/policy.md).  So a
 * sys/ operator rule never decides a secret stored under sys/, and no
 * secret rule ever grants an operator action.  `sudo` is refused among
 * secret rules (it means nothing there).
 */
typedef enum cs_policy_ns { CS_POLICY_NS_SECRET = 0, CS_POLICY_NS_OPERATOR = 1 } cs_policy_ns;

/*
 * Parses and validates a policy document of `len` bytes (at most
 * CS_POLICY_DOC_MAX) with jansson.  Returns 0 and *out (free with
 * cs_policy_free), CS_EINVAL with a detail that names the offending rule
 * ("rule 2 (secret/app/ *): unknown capability \"raed\"", without the space)
 * or the JSON error and its byte offset ("invalid JSON at byte 12: duplicate
 * key near '\"rules\"'"), or CS_ENOMEM.  Refused as JSON errors: anything
 * outside RFC 8259, invalid UTF-8, a key twice in one object, \u0000 and raw
 * NUL bytes; refused as policy errors: every field not documented.
 */
int cs_policy_parse(const char *doc, size_t len, cs_policy **out) __attribute__((warn_unused_result));
/* A parsed policy is reference counted, so a cache can hand out a policy
 * that stays valid however the cache changes meanwhile: cs_policy_hold adds
 * a reference (and returns p), cs_policy_free drops one and frees the
 * policy with the last.  A fresh policy holds one reference. */
cs_policy *cs_policy_hold(cs_policy *p);
void cs_policy_free(cs_policy *p);

/*
 * 1 when the union of the deciding rules of `n` policies on `path` holds
 * every capability in `want_caps` and none of them is a deny; 0 otherwise
 * (also when no rule matches).  want_caps is a non-empty set of CS_CAP_*
 * other than CS_CAP_DENY.  A NULL entry in `policies` is skipped (a policy
 * name on a token that no longer exists grants nothing).
 */
int cs_policy_ns_allows(const cs_policy *const *policies, size_t n, cs_policy_ns ns,
                        const char *path, unsigned want_caps) __attribute__((warn_unused_result));
/* cs_policy_ns_allows in the secret namespace. */
int cs_policy_allows(const cs_policy *const *policies, size_t n, const char *path,
                     unsigned want_caps) __attribute__((warn_unused_result));
/* The union of the deciding rules' capabilities (CS_CAP_DENY included when
 * any deciding rule denies), e.g. for a "what may I do here" answer. */
unsigned cs_policy_ns_capabilities(const cs_policy *const *policies, size_t n, cs_policy_ns ns,
                                   const char *path);
/* cs_policy_ns_capabilities in the secret namespace. */
unsigned cs_policy_capabilities(const cs_policy *const *policies, size_t n, const char *path);

/* Rules in document order, for listing and tests.  i < cs_policy_rule_count(). */
size_t cs_policy_rule_count(const cs_policy *p);
const char *cs_policy_rule_path(const cs_policy *p, size_t i); /* as written, with any '*' */
unsigned cs_policy_rule_caps(const cs_policy *p, size_t i);
/* The section rule i came from (secret "rules" first, then "operator"). */
cs_policy_ns cs_policy_rule_ns(const cs_policy *p, size_t i);

/* 1 when `name` is 1..128 characters of [A-Za-z0-9_.-] ("root" included),
 * else 0. */
int cs_policy_name_valid(const char *name) __attribute__((warn_unused_result));
/* 0 when a policy called `name` may be written or deleted; CS_EINVAL for a
 * malformed name, CS_EPERM for the reserved "root" (both with a detail). */
int cs_policy_check_name(const char *name) __attribute__((warn_unused_result));

#endif
