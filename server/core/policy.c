/*
 * policy: see policy.h.
 *
 * A parsed policy is a flat array of rules in document order ("rules"
 * first, then "operator"), each tagged with its namespace.  Decisions
 * scan it linearly: at most 1000 short memcmp's per policy, which is far
 * below the cost of the TLS record that carried the request, and keeps the
 * "most specific rule decides" logic in a dozen obvious lines.
 */
#include "policy.h"
#include "cs_error.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct rule {
  char *path;      /* as written, NUL-terminated */
  size_t len;      /* bytes that must match: without the '*' of a prefix */
  int prefix;
  unsigned caps;
  cs_policy_ns ns;
} rule;

struct cs_policy {
  rule *rules;
  size_t n;
  unsigned refs; /* cs_policy_hold / cs_policy_free; loop thread only */
};

static const struct {
  const char *name;
  unsigned bit;
} cap_names[] = {
    {"read", CS_CAP_READ},     {"write", CS_CAP_WRITE}, {"list", CS_CAP_LIST},
    {"delete", CS_CAP_DELETE}, {"deny", CS_CAP_DENY},   {"sudo", CS_CAP_SUDO},
};

/* ----------------------------------------------------------------- errors */

/* A printable, bounded rendering of user bytes for an error detail: the
 * detail goes back to a terminal, so no raw control characters, and it must
 * fit the 256-byte detail with room for the rest of the message. */
static void show(const char *s, size_t n, char out[80]) {
  size_t o = 0;
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)s[k];
    if (o > 60) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
  }
  out[o] = '\0';
}

/* CS_EINVAL with "rule <i+1> (<path>): <why>", or "rule <i+1>: <why>" while
 * the rule's path is not known yet. */
/* The section being parsed: "rule N" names a secret rule, "operator rule N"
 * one of the operator section (thread-local: set by parse_rules). */
static __thread cs_policy_ns parsing_ns;

static int rule_error(size_t i, const char *path, size_t plen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rule_error(size_t i, const char *path, size_t plen, const char *fmt, ...) {
  char why[160], shown[80];
  const char *what = parsing_ns == CS_POLICY_NS_OPERATOR ? "operator rule" : "rule";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (path == NULL)
    return cs_error_set(CS_EINVAL, "%s %zu: %s", what, i + 1, why);
  show(path, plen, shown);
  return cs_error_set(CS_EINVAL, "%s %zu (%s): %s", what, i + 1, shown, why);
}

/*
 * The byte offset (from 0) that a jansson error is about.  jansson's
 * `position` counts the bytes it had consumed, which for most errors is one
 * past the offending byte (the last one read, often the end of the token
 * jansson quotes "near"), but is the offset itself where the bad byte was
 * not consumed: invalid UTF-8, a control character in a string, the end of
 * the text.  A duplicate key is reported where the repeated key starts,
 * found by walking back over the key token jansson has just validated (its
 * opening quote is the '"' preceded by an even number of backslashes).
 */
static size_t json_error_offset(const char *doc, const json_error_t *e) {
  size_t pos = e->position > 0 ? (size_t)e->position : 0;
  switch (json_error_code(e)) {
  case json_error_invalid_utf8:
  case json_error_premature_end_of_input:
    return pos;
  case json_error_duplicate_key:
    if (pos >= 2 && doc[pos - 1] == '"')
      for (size_t k = pos - 1; k-- > 0;) {
        /* backslashes are counted before quotes only: each run is then
         * counted once, so a key of a million backslashes stays linear */
        if (doc[k] != '"')
          continue;
        size_t bs = 0;
        while (bs < k && doc[k - 1 - bs] == '\\')
          bs++;
        if (bs % 2 == 0)
          return k;
      }
    break;
  default:
    if (strncmp(e->text, "control character", 17) == 0)
      return pos;
    break;
  }
  return pos > 0 ? pos - 1 : 0;
}

/* Copies jansson's text (which quotes the input) printable: bytes outside
 * 0x20..0x7e as \xHH.  At most `max` bytes are shown, then "..."; `out`
 * needs room for max + 8. */
static void printable(const char *s, char *out, size_t max) {
  size_t o = 0;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (o > max) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c >= 0x20 && c < 0x7f)
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
  }
  out[o] = '\0';
}

/* CS_EINVAL with "invalid JSON at byte N: <why>" for a jansson error, where
 * <why> is jansson's text, reworded where it speaks of its own API or is
 * unclear, and keeping its "near '...'" quote of the input. */
static int json_error(const char *doc, const json_error_t *e) {
  char text[JSON_ERROR_TEXT_LENGTH * 4 + 8];
  const char *near = strstr(e->text, " near ");
  const char *why;
  switch (json_error_code(e)) {
  case json_error_duplicate_key:
    why = "duplicate key";
    break;
  case json_error_null_character:
  case json_error_null_byte_in_key:
    why = "\\u0000 is not allowed";
    break;
  case json_error_stack_overflow:
    why = "nested too deeply";
    break;
  case json_error_invalid_utf8:
    printable(e->text, text, sizeof text - 8);
    return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: invalid UTF-8 (%s)",
                        json_error_offset(doc, e), text);
  default:
    why = "";
    near = e->text;
    break;
  }
  printable(near != NULL ? near : "", text, sizeof text - 8);
  return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: %s%s", json_error_offset(doc, e), why,
                      text);
}

/* ---------------------------------------------------------------- parsing */

/* NULL when the path is acceptable, else why not. */
static const char *path_problem(const char *p, size_t n) {
  if (n == 0)
    return "path is empty";
  if (n > CS_POLICY_PATH_MAX)
    return "path is longer than 512 bytes";
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)p[k];
    if (c <= 0x20 || c >= 0x7f)
      return "path may only hold printable ASCII without spaces";
    if (c == '*' && k != n - 1)
      return "'*' is only allowed as the last character";
  }
  return NULL;
}

static unsigned cap_bit(const char *s, size_t n) {
  for (size_t k = 0; k < sizeof cap_names / sizeof cap_names[0]; k++)
    if (strlen(cap_names[k].name) == n && memcmp(cap_names[k].name, s, n) == 0)
      return cap_names[k].bit;
  return 0;
}

/* 1 when the n-byte field name `key` is one of `allowed` (compared over its
 * whole length, so "path\0x" is not "path"). */
static int known_field(const char *key, size_t n, const char *const *allowed, size_t n_allowed) {
  for (size_t k = 0; k < n_allowed; k++)
    if (strlen(allowed[k]) == n && memcmp(allowed[k], key, n) == 0)
      return 1;
  return 0;
}

/* The first field of `obj` in text order that is not in `allowed` (its name
 * shown printable in `shown`), or 0 when there is none. */
static int unknown_field(json_t *obj, const char *const *allowed, size_t n_allowed,
                         char shown[80]) {
  for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
    const char *key = json_object_iter_key(it);
    size_t n = json_object_iter_key_len(it);
    if (!known_field(key, n, allowed, n_allowed)) {
      show(key, n, shown);
      return 1;
    }
  }
  return 0;
}

static int parse_caps(const json_t *caps, size_t i, const rule *r, unsigned *out) {
  char shown[80];
  if (caps == NULL)
    return rule_error(i, r->path, strlen(r->path), "missing \"capabilities\"");
  if (!json_is_array(caps))
    return rule_error(i, r->path, strlen(r->path), "\"capabilities\" is not an array");
  if (json_array_size(caps) == 0)
    return rule_error(i, r->path, strlen(r->path), "\"capabilities\" is empty");
  *out = 0;
  for (size_t k = 0; k < json_array_size(caps); k++) {
    const json_t *c = json_array_get(caps, k);
    if (!json_is_string(c))
      return rule_error(i, r->path, strlen(r->path), "capability %zu is not a string", k + 1);
    const char *s = json_string_value(c);
    size_t n = json_string_length(c);
    unsigned bit = cap_bit(s, n);
    show(s, n, shown);
    if (bit == 0)
      return rule_error(i, r->path, strlen(r->path), "unknown capability \"%s\"", shown);
    if (*out & bit)
      return rule_error(i, r->path, strlen(r->path), "capability \"%s\" given twice", shown);
    *out |= bit;
  }
  /* sudo decides operator actions only; on a secret it granted nothing,
   * and a sudo rule among secret rules was how a sys/ rule came to decide
   * a secret stored under sys/.  Refused, so an old-style document fails
   * loudly instead of silently losing its operator rights. */
  if (parsing_ns == CS_POLICY_NS_SECRET && (*out & CS_CAP_SUDO))
    return rule_error(i, r->path, strlen(r->path),
                      "sudo is an operator capability: put the rule in \"operator\" "
                      "(docs/policy.md)");
  return 0;
}

/* Fills r from the i-th rule of a document; r->path is malloc'd on success. */
static int parse_rule(json_t *j, size_t i, rule *r) {
  static const char *const fields[] = {"path", "capabilities"};
  char shown[80];
  if (!json_is_object(j))
    return rule_error(i, NULL, 0, "not an object");
  const json_t *pv = json_object_get(j, "path");
  if (pv == NULL)
    return rule_error(i, NULL, 0, "missing \"path\"");
  if (!json_is_string(pv))
    return rule_error(i, NULL, 0, "\"path\" is not a string");
  const char *path = json_string_value(pv);
  size_t plen = json_string_length(pv);
  const char *why = path_problem(path, plen);
  if (why != NULL)
    return rule_error(i, path, plen, "%s", why);
  if (unknown_field(j, fields, sizeof fields / sizeof fields[0], shown))
    return rule_error(i, path, plen, "unknown field \"%s\"", shown);
  r->path = (char *)path; /* borrowed until the capabilities are known good */
  int rc = parse_caps(json_object_get(j, "capabilities"), i, r, &r->caps);
  if (rc < 0)
    return rc;
  if ((r->path = strdup(path)) == NULL)
    return CS_ENOMEM;
  r->prefix = path[plen - 1] == '*';
  r->len = plen - (size_t)r->prefix;
  return 0;
}

/* The top level: {"rules": [...], "operator": [...]}, at least one of
 * them; no other field. */
static int rules_arrays(json_t *doc, json_t **rules, json_t **ops) {
  static const char *const fields[] = {"rules", "operator"};
  char shown[80];
  if (!json_is_object(doc))
    return cs_error_set(CS_EINVAL, "policy is not a JSON object");
  if (unknown_field(doc, fields, 2, shown))
    return cs_error_set(CS_EINVAL, "policy has an unknown top-level field \"%s\"", shown);
  *rules = json_object_get(doc, "rules");
  *ops = json_object_get(doc, "operator");
  if (*rules == NULL && *ops == NULL)
    return cs_error_set(CS_EINVAL, "policy has no \"rules\" array (nor \"operator\")");
  if (*rules != NULL && !json_is_array(*rules))
    return cs_error_set(CS_EINVAL, "policy \"rules\" is not an array");
  if (*ops != NULL && !json_is_array(*ops))
    return cs_error_set(CS_EINVAL, "policy \"operator\" is not an array");
  size_t n = json_array_size(*rules) + json_array_size(*ops);
  if (n > CS_POLICY_MAX_RULES)
    return cs_error_set(CS_EINVAL, "policy has %zu rules, at most %d are allowed", n,
                        CS_POLICY_MAX_RULES);
  return 0;
}

/* Appends the rules of one section (NULL: none) to p. */
static int parse_section(json_t *rules, cs_policy_ns ns, cs_policy *p) {
  size_t first = p->n, n = json_array_size(rules);
  parsing_ns = ns;
  for (size_t i = 0; i < n; i++) {
    rule *r = &p->rules[p->n];
    int rc = parse_rule(json_array_get(rules, i), i, r);
    if (rc < 0)
      return rc;
    r->ns = ns;
    p->n++;
    for (size_t k = first; k < p->n - 1; k++)
      if (strcmp(p->rules[k].path, r->path) == 0)
        return rule_error(i, r->path, strlen(r->path), "same path as rule %zu", k - first + 1);
  }
  return 0;
}

static int parse_rules(json_t *rules, json_t *ops, cs_policy *p) {
  size_t n = json_array_size(rules) + json_array_size(ops);
  p->rules = calloc(n ? n : 1, sizeof *p->rules);
  if (p->rules == NULL)
    return CS_ENOMEM;
  int rc = parse_section(rules, CS_POLICY_NS_SECRET, p);
  if (rc == 0)
    rc = parse_section(ops, CS_POLICY_NS_OPERATOR, p);
  parsing_ns = CS_POLICY_NS_SECRET;
  return rc;
}

/*
 * The document as a jansson tree, or CS_EINVAL naming the byte offset.
 * jansson is strict RFC 8259 (no comments, trailing commas or garbage,
 * UTF-8 validated, lone surrogates refused); on top of that: duplicate keys
 * are refused (JSON_REJECT_DUPLICATES), and so is \u0000 (JSON_ALLOW_NUL is
 * not given).  A raw NUL byte is caught here first, so that the error says
 * what it is.  JSON_DECODE_ANY lets a scalar document through to the
 * clearer "not a JSON object" below.
 */
static int load(const char *doc, size_t len, json_t **out) {
  if (len > CS_POLICY_DOC_MAX)
    return cs_error_set(CS_EINVAL, "policy document is longer than %d bytes", CS_POLICY_DOC_MAX);
  const char *nul = len > 0 ? memchr(doc, '\0', len) : NULL;
  if (nul != NULL)
    return cs_error_set(CS_EINVAL, "invalid JSON at byte %zu: NUL byte", (size_t)(nul - doc));
  json_error_t e;
  json_t *j = json_loadb(len > 0 ? doc : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (j == NULL)
    return json_error_code(&e) == json_error_out_of_memory ? CS_ENOMEM : json_error(doc, &e);
  *out = j;
  return 0;
}

int cs_policy_parse(const char *doc, size_t len, cs_policy **out) {
  json_t *j = NULL, *rules = NULL, *ops = NULL;
  int rc = load(doc, len, &j);
  if (rc < 0)
    return rc;
  cs_policy *p = calloc(1, sizeof *p);
  if (p == NULL)
    rc = CS_ENOMEM;
  else if ((p->refs = 1, rc = rules_arrays(j, &rules, &ops)) == 0)
    rc = parse_rules(rules, ops, p);
  json_decref(j);
  if (rc < 0) {
    cs_policy_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

cs_policy *cs_policy_hold(cs_policy *p) {
  assert(p->refs > 0 && p->refs < UINT_MAX);
  p->refs++;
  return p;
}

void cs_policy_free(cs_policy *p) {
  if (p == NULL)
    return;
  assert(p->refs > 0);
  if (--p->refs > 0)
    return;
  for (size_t i = 0; i < p->n; i++)
    free(p->rules[i].path);
  free(p->rules);
  free(p);
}

/* --------------------------------------------------------------- decision */

/* The rule of p that decides on path: the exact rule if there is one,
 * else the longest matching prefix, else NULL. */
static const rule *deciding_rule(const cs_policy *p, cs_policy_ns ns, const char *path, size_t n) {
  const rule *best = NULL;
  for (size_t i = 0; i < p->n; i++) {
    const rule *r = &p->rules[i];
    if (r->ns != ns)
      continue; /* the other namespace never decides here */
    if (!r->prefix) {
      if (r->len == n && memcmp(r->path, path, n) == 0)
        return r;
    } else if (r->len <= n && memcmp(r->path, path, r->len) == 0 &&
               (best == NULL || r->len > best->len)) {
      best = r;
    }
  }
  return best;
}

unsigned cs_policy_ns_capabilities(const cs_policy *const *policies, size_t n, cs_policy_ns ns,
                                   const char *path) {
  unsigned caps = 0;
  size_t plen = strlen(path);
  for (size_t i = 0; i < n; i++) {
    if (policies[i] == NULL)
      continue;
    const rule *r = deciding_rule(policies[i], ns, path, plen);
    if (r != NULL)
      caps |= r->caps;
  }
  return caps;
}

unsigned cs_policy_capabilities(const cs_policy *const *policies, size_t n, const char *path) {
  return cs_policy_ns_capabilities(policies, n, CS_POLICY_NS_SECRET, path);
}

int cs_policy_ns_allows(const cs_policy *const *policies, size_t n, cs_policy_ns ns,
                        const char *path, unsigned want_caps) {
  assert(want_caps != 0 && (want_caps & ~(CS_CAP_ALL & ~CS_CAP_DENY)) == 0);
  unsigned caps = cs_policy_ns_capabilities(policies, n, ns, path);
  if (caps & CS_CAP_DENY)
    return 0;
  return (caps & want_caps) == want_caps;
}

int cs_policy_allows(const cs_policy *const *policies, size_t n, const char *path,
                     unsigned want_caps) {
  return cs_policy_ns_allows(policies, n, CS_POLICY_NS_SECRET, path, want_caps);
}

size_t cs_policy_rule_count(const cs_policy *p) {
  return p->n;
}

const char *cs_policy_rule_path(const cs_policy *p, size_t i) {
  assert(i < p->n);
  return p->rules[i].path;
}

unsigned cs_policy_rule_caps(const cs_policy *p, size_t i) {
  assert(i < p->n);
  return p->rules[i].caps;
}

cs_policy_ns cs_policy_rule_ns(const cs_policy *p, size_t i) {
  assert(i < p->n);
  return p->rules[i].ns;
}

/* ------------------------------------------------------------------ names */

int cs_policy_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > CS_POLICY_NAME_MAX)
    return 0;
  for (size_t k = 0; k < n; k++) {
    char c = name[k];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

int cs_policy_check_name(const char *name) {
  if (!cs_policy_name_valid(name))
    return cs_error_set(CS_EINVAL,
                        "policy names are 1..%d characters of A-Z, a-z, 0-9, '_', '.' and '-'",
                        CS_POLICY_NAME_MAX);
  if (strcmp(name, CS_POLICY_ROOT) == 0)
    return cs_error_set(CS_EPERM, "policy \"root\" is built in and cannot be changed");
  return 0;
}
