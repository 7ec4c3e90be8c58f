/* policy_ns: the migration of stored policies to namespaces.  See policy_ns.h. */
#include "policy_ns.h"
#include "cs_error.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int cs_policy_ns_matches_sys(const char *path) {
  static const char sys[] = "sys/";
  size_t n = strlen(path);
  if (n > 0 && path[n - 1] == '*') {
    size_t q = n - 1; /* the prefix */
    size_t k = q < sizeof sys - 1 ? q : sizeof sys - 1;
    return memcmp(path, sys, k) == 0; /* one is a prefix of the other */
  }
  return n >= sizeof sys - 1 && memcmp(path, sys, sizeof sys - 1) == 0;
}

/* A copy of an old rule's capabilities without "sudo"; NULL when the rule
 * is not {path: string, capabilities: array of strings}. */
static json_t *caps_without_sudo(json_t *caps) {
  json_t *out = json_array();
  if (out == NULL)
    return NULL;
  for (size_t k = 0; k < json_array_size(caps); k++) {
    json_t *c = json_array_get(caps, k);
    if (!json_is_string(c)) {
      json_decref(out);
      return NULL;
    }
    if (strcmp(json_string_value(c), "sudo") != 0 && json_array_append(out, c) != 0) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

int cs_policy_ns_migrate(const char *doc, size_t len, char **out, size_t *out_len) {
  json_error_t e;
  json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &e);
  if (j == NULL || !json_is_object(j))
    goto bad;
  json_t *rules = json_object_get(j, "rules");
  if (json_object_get(j, "operator") != NULL) {
    /* Already namespaced (written by a server that has the marker). */
    json_decref(j);
    if ((*out = malloc(len + 1)) == NULL)
      return CS_ENOMEM;
    memcpy(*out, doc, len);
    (*out)[len] = '\0';
    *out_len = len;
    return 0;
  }
  if (!json_is_array(rules))
    goto bad;
  json_t *secret = json_array(), *ops = json_array(), *nd = json_object();
  int rc = secret == NULL || ops == NULL || nd == NULL ? CS_ENOMEM : 0;
  for (size_t i = 0; i < json_array_size(rules) && rc == 0; i++) {
    json_t *r = json_array_get(rules, i);
    json_t *path = json_object_get(r, "path"), *caps = json_object_get(r, "capabilities");
    if (!json_is_object(r) || !json_is_string(path) || !json_is_array(caps)) {
      rc = CS_EINVAL;
      break;
    }
    if (cs_policy_ns_matches_sys(json_string_value(path)) && json_array_append(ops, r) != 0)
      rc = CS_ENOMEM;
    json_t *kept = rc == 0 ? caps_without_sudo(caps) : NULL;
    if (rc == 0 && kept == NULL)
      rc = CS_EINVAL;
    if (rc == 0 && json_array_size(kept) > 0 &&
        json_array_append_new(secret, json_pack("{sOsO}", "path", path, "capabilities", kept)) != 0)
      rc = CS_ENOMEM;
    json_decref(kept);
  }
  char *s = NULL;
  if (rc == 0 && (json_object_set(nd, "rules", secret) != 0 ||
                  json_object_set(nd, "operator", ops) != 0 ||
                  (s = json_dumps(nd, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL))
    rc = CS_ENOMEM;
  json_decref(secret);
  json_decref(ops);
  json_decref(nd);
  json_decref(j);
  if (rc == CS_EINVAL)
    return cs_error_set(CS_EINVAL, "stored policy has a rule that is not {path, capabilities}");
  if (rc < 0)
    return rc;
  *out = s;
  *out_len = strlen(s);
  return 0;
bad:
  json_decref(j);
  return cs_error_set(CS_EINVAL, "stored policy is not a JSON object with a \"rules\" array");
}
