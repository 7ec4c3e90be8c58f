/* termcount: see termcount.h. */
#include "termcount.h"
#include "barrier.h"
#include "bytes.h"
#include "cs_error.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define P_SEAL_CONFIG "core/seal-config"
#define P_RESTORE "core/restore"
#define P_UPGRADE "core/upgrade/"

static int key_is(const char *key, size_t len, const char *name) {
  return len == strlen(name) && memcmp(key, name, len) == 0;
}

int cs_termcount_classify(const char *key, size_t key_len, const uint8_t *val, size_t len,
                          uint32_t *term) {
  if (key_is(key, key_len, P_SEAL_CONFIG) || key_is(key, key_len, P_RESTORE))
    return 0;
  if (key_len >= sizeof P_UPGRADE - 1 && memcmp(key, P_UPGRADE, sizeof P_UPGRADE - 1) == 0)
    return 0;
  uint32_t t;
  if (cs_barrier_term_of(val, len, &t) != 0 || val[4] != CS_BARRIER_VERSION || t == 0)
    return 0;
  *term = t;
  return 1;
}

void cs_termcounts_init(cs_termcounts *c) { memset(c, 0, sizeof *c); }

void cs_termcounts_free(cs_termcounts *c) {
  free(c->v);
  cs_termcounts_init(c);
}

/* Index of term, or where it would go (*found 0). */
static size_t locate(const cs_termcounts *c, uint32_t term, int *found) {
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->v[mid].term < term)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < c->n && c->v[lo].term == term;
  return lo;
}

uint64_t cs_termcounts_get(const cs_termcounts *c, uint32_t term) {
  int found;
  size_t i = locate(c, term, &found);
  return found ? c->v[i].values : 0;
}

uint64_t cs_termcounts_total(const cs_termcounts *c) {
  uint64_t sum = 0;
  for (size_t i = 0; i < c->n; i++)
    sum += c->v[i].values;
  return sum;
}

int cs_termcounts_inc(cs_termcounts *c, uint32_t term) {
  int found;
  size_t i = locate(c, term, &found);
  if (found) {
    c->v[i].values++;
    return 0;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 4;
    cs_term_count *v = realloc(c->v, cap * sizeof *v);
    if (v == NULL)
      return cs_error_set(CS_ENOMEM, "out of memory counting values per term");
    c->v = v;
    c->cap = cap;
  }
  memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof *c->v);
  c->v[i].term = term;
  c->v[i].values = 1;
  c->n++;
  return 0;
}

int cs_termcounts_dec(cs_termcounts *c, uint32_t term) {
  int found;
  size_t i = locate(c, term, &found);
  if (!found)
    return cs_error_set(CS_ESTORECORRUPT, "value counts: term %u has no value to remove", term);
  if (--c->v[i].values == 0) {
    memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof *c->v);
    c->n--;
  }
  return 0;
}

int cs_termcounts_equal(const cs_termcounts *a, const cs_termcounts *b) {
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i].term != b->v[i].term || a->v[i].values != b->v[i].values)
      return 0;
  return 1;
}

int cs_termcounts_encode(const cs_termcounts *c, uint8_t **out, size_t *len) {
  size_t n = c->n * CS_TERMCOUNT_ENTRY;
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory encoding value counts");
  for (size_t i = 0; i < c->n; i++) {
    cs_put_be32(buf + i * CS_TERMCOUNT_ENTRY, c->v[i].term);
    cs_put_be64(buf + i * CS_TERMCOUNT_ENTRY + 4, c->v[i].values);
  }
  *out = buf;
  *len = n;
  return 0;
}

int cs_termcounts_decode(const uint8_t *buf, size_t len, cs_termcounts *c) {
  cs_termcounts_init(c);
  if (len % CS_TERMCOUNT_ENTRY != 0)
    return cs_error_set(CS_ESTORECORRUPT, "value counts record of %zu bytes", len);
  size_t n = len / CS_TERMCOUNT_ENTRY;
  if (n == 0)
    return 0;
  if ((c->v = malloc(n * sizeof *c->v)) == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory reading value counts");
  c->cap = n;
  for (size_t i = 0; i < n; i++) {
    c->v[i].term = cs_get_be32(buf + i * CS_TERMCOUNT_ENTRY);
    c->v[i].values = cs_get_be64(buf + i * CS_TERMCOUNT_ENTRY + 4);
    if (c->v[i].values == 0 || (i > 0 && c->v[i].term <= c->v[i - 1].term)) {
      cs_termcounts_free(c);
      return cs_error_set(CS_ESTORECORRUPT, "value counts record is inconsistent");
    }
    c->n++;
  }
  return 0;
}

static int count_one(void *arg, const char *key, size_t key_len, const uint8_t *val,
                     size_t val_len) {
  uint32_t term;
  if (!cs_termcount_classify(key, key_len, val, val_len, &term))
    return 0;
  return cs_termcounts_inc(arg, term);
}

int cs_termcount_scan(cs_store *s, cs_termcounts *c) {
  cs_termcounts_init(c);
  int rc = cs_store_scan(s, "", count_one, c);
  if (rc < 0)
    cs_termcounts_free(c);
  return rc;
}
