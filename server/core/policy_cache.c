/* policy_cache: see policy_cache.h. */
#include "policy_cache.h"
#include "cs_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set-associative (16 sets of 4, least recently used out): a token's
 * policies whose names share a set no longer evict each other on every
 * request.  Collisions only cost a reload, never correctness, because an
 * entry leaves the cache by dropping the cache's reference only. */
#define SETS 16
#define WAYS 4

typedef struct slot {
  char name[CS_POLICY_NAME_MAX + 1];
  cs_policy *p;      /* NULL: empty; else the cache's own reference */
  uint64_t used;     /* tick of the last hit or fill, for LRU */
} slot;

static slot cache[SETS][WAYS];
static uint64_t tick;

static slot *set_for(const char *name) {
  size_t h = 5381;
  for (const char *c = name; *c; c++)
    h = h * 33 + (unsigned char)*c;
  return cache[h % SETS];
}

/* The way holding name, or NULL. */
static slot *find(slot *set, const char *name) {
  for (size_t w = 0; w < WAYS; w++)
    if (set[w].p != NULL && strcmp(set[w].name, name) == 0)
      return &set[w];
  return NULL;
}

/* An empty way, else the least recently used one. */
static slot *victim(slot *set) {
  slot *v = &set[0];
  for (size_t w = 0; w < WAYS; w++) {
    if (set[w].p == NULL)
      return &set[w];
    if (set[w].used < v->used)
      v = &set[w];
  }
  return v;
}

int cs_policy_cache_get(const char *name, cs_policy_load_fn load, void *ctx, cs_policy **out) {
  *out = NULL;
  if (strlen(name) > CS_POLICY_NAME_MAX)
    return 0; /* no policy can have that name */
  slot *set = set_for(name);
  slot *sl = find(set, name);
  if (sl != NULL) {
    sl->used = ++tick;
    *out = cs_policy_hold(sl->p);
    return 0;
  }
  char *doc;
  size_t len;
  int rc = load(ctx, name, &doc, &len);
  if (rc == CS_ENOTFOUND)
    return 0; /* not cached: evicts no present policy */
  if (rc < 0)
    return rc;
  cs_policy *p;
  rc = cs_policy_parse(doc, len, &p);
  free(doc);
  if (rc == CS_ENOMEM)
    return rc;
  if (rc < 0)
    return cs_error_set(CS_ESTORECORRUPT, "stored policy %s does not parse", name);
  sl = victim(set);
  cs_policy_free(sl->p); /* the cache's reference; callers keep theirs */
  snprintf(sl->name, sizeof sl->name, "%s", name);
  sl->p = cs_policy_hold(p);
  sl->used = ++tick;
  *out = p;
  return 0;
}

void cs_policy_cache_invalidate(void) {
  for (size_t i = 0; i < SETS; i++)
    for (size_t w = 0; w < WAYS; w++) {
      cs_policy_free(cache[i][w].p);
      cache[i][w].p = NULL;
      cache[i][w].name[0] = '\0';
    }
}

size_t cs_policy_cache_count(void) {
  size_t n = 0;
  for (size_t i = 0; i < SETS; i++)
    for (size_t w = 0; w < WAYS; w++)
      n += cache[i][w].p != NULL;
  return n;
}
