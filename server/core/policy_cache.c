/* policy_cache: see policy_cache.h. */
#include "policy_cache.h"
#include "cs_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Direct-mapped: collisions only cost a reload, never correctness, because
 * an entry leaves the cache by dropping the cache's reference only. */
#define SLOTS 64

typedef struct slot {
  char name[CS_POLICY_NAME_MAX + 1];
  cs_policy *p; /* NULL: empty; else the cache's own reference */
} slot;

static slot cache[SLOTS];

static slot *slot_for(const char *name) {
  size_t h = 5381;
  for (const char *c = name; *c; c++)
    h = h * 33 + (unsigned char)*c;
  return &cache[h % SLOTS];
}

int cs_policy_cache_get(const char *name, cs_policy_load_fn load, void *ctx, cs_policy **out) {
  *out = NULL;
  if (strlen(name) > CS_POLICY_NAME_MAX)
    return 0; /* no policy can have that name */
  slot *sl = slot_for(name);
  if (sl->p != NULL && strcmp(sl->name, name) == 0) {
    *out = cs_policy_hold(sl->p);
    return 0;
  }
  char *doc;
  size_t len;
  int rc = load(ctx, name, &doc, &len);
  if (rc == CS_ENOTFOUND)
    return 0; /* not cached: the slot keeps whatever present policy it has */
  if (rc < 0)
    return rc;
  cs_policy *p;
  rc = cs_policy_parse(doc, len, &p);
  free(doc);
  if (rc == CS_ENOMEM)
    return rc;
  if (rc < 0)
    return cs_error_set(CS_ESTORECORRUPT, "stored policy %s does not parse", name);
  cs_policy_free(sl->p); /* the cache's reference; callers keep theirs */
  snprintf(sl->name, sizeof sl->name, "%s", name);
  sl->p = cs_policy_hold(p);
  *out = p;
  return 0;
}

void cs_policy_cache_invalidate(void) {
  for (size_t i = 0; i < SLOTS; i++) {
    cs_policy_free(cache[i].p);
    cache[i].p = NULL;
    cache[i].name[0] = '\0';
  }
}

size_t cs_policy_cache_count(void) {
  size_t n = 0;
  for (size_t i = 0; i < SLOTS; i++)
    n += cache[i].p != NULL;
  return n;
}
