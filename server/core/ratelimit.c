/* ratelimit: token buckets per client address (see ratelimit.h). */
#include "ratelimit.h"
#include "cs_error.h"

#include <stdlib.h>
#include <string.h>

#define HOST_MAX 64
/* A token is 60000 units, so a rate of R per minute adds exactly R units
 * per millisecond: no rounding is ever lost. */
#define UNIT 60000u

typedef struct bucket {
  int used;
  char host[HOST_MAX];
  uint64_t units;             /* UNIT per token */
  uint64_t at_ms;             /* when units was last brought up to date */
} bucket;

struct cs_ratelimit {
  unsigned per_minute;
  size_t n;
  bucket *b;
};

int cs_ratelimit_new(cs_ratelimit **out, unsigned per_minute, size_t slots) {
  if (per_minute == 0 || slots == 0)
    return cs_error_set(CS_EINVAL, "a rate limit needs a rate and slots");
  cs_ratelimit *rl = calloc(1, sizeof *rl);
  if (rl == NULL || (rl->b = calloc(slots, sizeof *rl->b)) == NULL) {
    free(rl);
    return CS_ENOMEM;
  }
  rl->per_minute = per_minute;
  rl->n = slots;
  *out = rl;
  return 0;
}

void cs_ratelimit_free(cs_ratelimit *rl) {
  if (rl == NULL)
    return;
  free(rl->b);
  free(rl);
}

static uint64_t cap_of(const cs_ratelimit *rl) { return (uint64_t)rl->per_minute * UNIT; }

void cs_ratelimit_set_rate(cs_ratelimit *rl, unsigned per_minute) {
  if (per_minute == 0)
    return;
  rl->per_minute = per_minute;
  for (size_t i = 0; i < rl->n; i++)
    if (rl->b[i].units > cap_of(rl))
      rl->b[i].units = cap_of(rl);
}

/* The address without its port: "a.b.c.d:p" -> "a.b.c.d", "[v6]:p" ->
 * "[v6]"; anything else as it is (cut to HOST_MAX - 1). */
static void host_of(const char *client, char out[HOST_MAX]) {
  size_t n = strlen(client);
  const char *colon = strrchr(client, ':');
  if (client[0] == '[') {
    const char *end = strchr(client, ']');
    if (end != NULL)
      n = (size_t)(end - client) + 1;
  } else if (colon != NULL && strchr(client, ':') == colon) {
    n = (size_t)(colon - client);
  }
  if (n >= HOST_MAX)
    n = HOST_MAX - 1;
  memcpy(out, client, n);
  out[n] = '\0';
}

/* Refills b up to now (a clock that went back refills nothing). */
static void refill(const cs_ratelimit *rl, bucket *b, uint64_t now_ms) {
  if (now_ms > b->at_ms) {
    uint64_t dt = now_ms - b->at_ms;
    /* A minute refills any bucket (and keeps the product small). */
    uint64_t add = dt >= 60000 ? cap_of(rl) : dt * rl->per_minute;
    b->units = b->units + add >= cap_of(rl) ? cap_of(rl) : b->units + add;
    b->at_ms = now_ms;
  }
}

int cs_ratelimit_take(cs_ratelimit *rl, const char *client, uint64_t now_ms) {
  char host[HOST_MAX];
  host_of(client != NULL ? client : "", host);
  bucket *found = NULL, *victim = NULL;
  for (size_t i = 0; i < rl->n && found == NULL; i++) {
    bucket *b = &rl->b[i];
    if (b->used && strcmp(b->host, host) == 0)
      found = b;
    else if (victim == NULL || !b->used || (victim->used && b->at_ms < victim->at_ms))
      victim = b;
  }
  if (found == NULL) {
    found = victim;
    found->used = 1;
    memcpy(found->host, host, sizeof host);
    found->units = cap_of(rl);
    found->at_ms = now_ms;
  }
  refill(rl, found, now_ms);
  if (found->units < UNIT) {
    uint64_t wait_ms = (UNIT - found->units + rl->per_minute - 1) / rl->per_minute;
    return cs_error_set(CS_ERATELIMIT, "rate limit reached for %s: %u per minute; retry in %llu s",
                        host, rl->per_minute, (unsigned long long)(wait_ms + 999) / 1000);
  }
  found->units -= UNIT;
  return 0;
}
