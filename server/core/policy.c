/*
 * policy: see policy.h.
 *
 * A parsed policy is a flat array of rules in document order.  Decisions
 * scan it linearly: at most 1000 short memcmp's per policy, which is far
 * below the cost of the TLS record that carried the request, and keeps the
 * "most specific rule decides" logic in a dozen obvious lines.
 */
#include "policy.h"
#include "cs_error.h"
#include "json.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
  char *path;      /* as written, NUL-terminated */
  size_t len;      /* bytes that must match: without the '*' of a prefix */
  int prefix;
  unsigned caps;
} rule;

struct cs_policy {
  rule *rules;
  size_t n;
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
static int rule_error(size_t i, const char *path, size_t plen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rule_error(size_t i, const char *path, size_t plen, const char *fmt, ...) {
  char why[160], shown[80];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (path == NULL)
    return cs_error_set(CS_EINVAL, "rule %zu: %s", i + 1, why);
  show(path, plen, shown);
  return cs_error_set(CS_EINVAL, "rule %zu (%s): %s", i + 1, shown, why);
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

static int parse_caps(const cs_json *caps, size_t i, const rule *r, unsigned *out) {
  char shown[80];
  if (caps == NULL)
    return rule_error(i, r->path, strlen(r->path), "missing \"capabilities\"");
  if (cs_json_type(caps) != CS_JSON_ARRAY)
    return rule_error(i, r->path, strlen(r->path), "\"capabilities\" is not an array");
  if (cs_json_size(caps) == 0)
    return rule_error(i, r->path, strlen(r->path), "\"capabilities\" is empty");
  *out = 0;
  for (size_t k = 0; k < cs_json_size(caps); k++) {
    size_t n;
    const char *s = cs_json_string(cs_json_array_at(caps, k), &n);
    if (s == NULL)
      return rule_error(i, r->path, strlen(r->path), "capability %zu is not a string", k + 1);
    unsigned bit = cap_bit(s, n);
    show(s, n, shown);
    if (bit == 0)
      return rule_error(i, r->path, strlen(r->path), "unknown capability \"%s\"", shown);
    if (*out & bit)
      return rule_error(i, r->path, strlen(r->path), "capability \"%s\" given twice", shown);
    *out |= bit;
  }
  return 0;
}

/* 1 when a member name of klen bytes is exactly `want`.  By length, not
 * strcmp: JSON allows "\u0000" in a name, and "rules\u0000x" must be an
 * unknown field, not "rules". */
static int key_is(const char *key, size_t klen, const char *want) {
  return klen == strlen(want) && memcmp(key, want, klen) == 0;
}

/* Fills r from the i-th rule of a document; r->path is malloc'd on success. */
static int parse_rule(const cs_json *j, size_t i, rule *r) {
  char shown[80];
  size_t plen;
  if (cs_json_type(j) != CS_JSON_OBJECT)
    return rule_error(i, NULL, 0, "not an object");
  const cs_json *pv = cs_json_object_get(j, "path");
  if (pv == NULL)
    return rule_error(i, NULL, 0, "missing \"path\"");
  const char *path = cs_json_string(pv, &plen);
  if (path == NULL)
    return rule_error(i, NULL, 0, "\"path\" is not a string");
  const char *why = path_problem(path, plen);
  if (why != NULL)
    return rule_error(i, path, plen, "%s", why);
  for (size_t k = 0; k < cs_json_size(j); k++) {
    size_t klen;
    const char *key = cs_json_object_key(j, k, &klen);
    if (!key_is(key, klen, "path") && !key_is(key, klen, "capabilities")) {
      show(key, klen, shown);
      return rule_error(i, path, plen, "unknown field \"%s\"", shown);
    }
  }
  r->path = (char *)path; /* borrowed until the capabilities are known good */
  int rc = parse_caps(cs_json_object_get(j, "capabilities"), i, r, &r->caps);
  if (rc < 0)
    return rc;
  if ((r->path = strdup(path)) == NULL)
    return CS_ENOMEM;
  r->prefix = path[plen - 1] == '*';
  r->len = plen - (size_t)r->prefix;
  return 0;
}

/* The top level: exactly {"rules": [...]}. */
static int rules_array(const cs_json *doc, const cs_json **rules) {
  char shown[80];
  if (cs_json_type(doc) != CS_JSON_OBJECT)
    return cs_error_set(CS_EINVAL, "policy is not a JSON object");
  for (size_t k = 0; k < cs_json_size(doc); k++) {
    size_t klen;
    const char *key = cs_json_object_key(doc, k, &klen);
    if (!key_is(key, klen, "rules")) {
      show(key, klen, shown);
      return cs_error_set(CS_EINVAL, "policy has an unknown top-level field \"%s\"", shown);
    }
  }
  *rules = cs_json_object_get(doc, "rules");
  if (*rules == NULL)
    return cs_error_set(CS_EINVAL, "policy has no \"rules\" array");
  if (cs_json_type(*rules) != CS_JSON_ARRAY)
    return cs_error_set(CS_EINVAL, "policy \"rules\" is not an array");
  if (cs_json_size(*rules) > CS_POLICY_MAX_RULES)
    return cs_error_set(CS_EINVAL, "policy has %zu rules, at most %d are allowed",
                        cs_json_size(*rules), CS_POLICY_MAX_RULES);
  return 0;
}

static int parse_rules(const cs_json *rules, cs_policy *p) {
  size_t n = cs_json_size(rules);
  p->rules = calloc(n ? n : 1, sizeof *p->rules);
  if (p->rules == NULL)
    return CS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    rule *r = &p->rules[i];
    int rc = parse_rule(cs_json_array_at(rules, i), i, r);
    if (rc < 0)
      return rc;
    p->n++;
    for (size_t k = 0; k < i; k++)
      if (strcmp(p->rules[k].path, r->path) == 0)
        return rule_error(i, r->path, strlen(r->path), "same path as rule %zu", k + 1);
  }
  return 0;
}

int cs_policy_parse(const char *doc, size_t len, cs_policy **out) {
  cs_json *j = NULL;
  const cs_json *rules = NULL;
  int rc = cs_json_parse(doc, len, &j);
  if (rc < 0)
    return rc;
  cs_policy *p = calloc(1, sizeof *p);
  if (p == NULL)
    rc = CS_ENOMEM;
  else if ((rc = rules_array(j, &rules)) == 0)
    rc = parse_rules(rules, p);
  cs_json_free(j);
  if (rc < 0) {
    cs_policy_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void cs_policy_free(cs_policy *p) {
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n; i++)
    free(p->rules[i].path);
  free(p->rules);
  free(p);
}

/* --------------------------------------------------------------- decision */

/* The rule of p that decides on path: the exact rule if there is one,
 * else the longest matching prefix, else NULL. */
static const rule *deciding_rule(const cs_policy *p, const char *path, size_t n) {
  const rule *best = NULL;
  for (size_t i = 0; i < p->n; i++) {
    const rule *r = &p->rules[i];
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

unsigned cs_policy_capabilities(const cs_policy *const *policies, size_t n, const char *path) {
  unsigned caps = 0;
  size_t plen = strlen(path);
  for (size_t i = 0; i < n; i++) {
    if (policies[i] == NULL)
      continue;
    const rule *r = deciding_rule(policies[i], path, plen);
    if (r != NULL)
      caps |= r->caps;
  }
  return caps;
}

int cs_policy_allows(const cs_policy *const *policies, size_t n, const char *path,
                     unsigned want_caps) {
  assert(want_caps != 0 && (want_caps & ~(CS_CAP_ALL & ~CS_CAP_DENY)) == 0);
  unsigned caps = cs_policy_capabilities(policies, n, path);
  if (caps & CS_CAP_DENY)
    return 0;
  return (caps & want_caps) == want_caps;
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
