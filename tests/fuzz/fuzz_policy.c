/*
 * libFuzzer target for cs_policy_parse: policy documents come from
 * operators over the network.  Besides surviving any bytes, it checks two
 * invariants: a rejection leaves a printable detail, and in an accepted
 * policy every exact rule decides its own path (so it grants its own
 * capabilities unless it denies).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_error.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cs_policy *p = NULL;
  int rc = cs_policy_parse((const char *)data, size, &p);
  if (rc != 0) {
    const char *msg = cs_error_message(rc);
    if (rc != CS_EINVAL && rc != CS_ENOMEM)
      abort();
    for (const char *c = msg; *c != '\0'; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
        abort(); /* details reach terminals: printable only */
    return 0;
  }
  const cs_policy *ps[1] = {p};
  for (size_t i = 0; i < cs_policy_rule_count(p); i++) {
    const char *path = cs_policy_rule_path(p, i);
    unsigned caps = cs_policy_rule_caps(p, i);
    size_t n = strlen(path);
    if (n == 0 || caps == 0 || (caps & ~CS_CAP_ALL) != 0)
      abort();
    if (path[n - 1] == '*')
      continue;
    unsigned want = caps & ~CS_CAP_DENY;
    if (cs_policy_capabilities(ps, 1, path) != caps)
      abort();
    if (want != 0 && cs_policy_allows(ps, 1, path, want) != !(caps & CS_CAP_DENY))
      abort();
  }
  cs_policy_free(p);
  return 0;
}
