/* keyring: see keyring.h. */
#include "keyring.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "secmem.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct term_meta {
  uint32_t term;
  int64_t install_time;
  _Atomic uint64_t encryptions;
} term_meta;

struct cs_keyring {
  term_meta *meta;     /* ascending by term */
  uint8_t *keys;       /* cap * CS_KEY_LEN bytes of secmem; keys[i] belongs to meta[i] */
  size_t n, cap;
};

int cs_keyring_new(cs_keyring **out) {
  cs_keyring *k = calloc(1, sizeof *k);
  if (k == NULL)
    return CS_ENOMEM;
  *out = k;
  return 0;
}

void cs_keyring_free(cs_keyring *k) {
  if (k == NULL)
    return;
  cs_secmem_free(k->keys, k->cap * CS_KEY_LEN);
  free(k->meta);
  free(k);
}

/* Grows to hold at least `want` terms.  Keys move to a new locked block; the
 * old one is wiped by cs_secmem_free. */
static int reserve(cs_keyring *k, size_t want) {
  if (want <= k->cap)
    return 0;
  size_t cap = k->cap ? k->cap : 4;
  while (cap < want)
    cap *= 2;
  term_meta *meta = realloc(k->meta, cap * sizeof *meta);
  if (meta == NULL)
    return CS_ENOMEM;
  k->meta = meta;
  uint8_t *keys = cs_secmem_alloc(cap * CS_KEY_LEN);
  if (keys == NULL)
    return CS_ENOMEM;
  if (k->n > 0)
    memcpy(keys, k->keys, k->n * CS_KEY_LEN);
  cs_secmem_free(k->keys, k->cap * CS_KEY_LEN);
  k->keys = keys;
  k->cap = cap;
  return 0;
}

int cs_keyring_add(cs_keyring *k, uint32_t term, const uint8_t key[CS_KEY_LEN],
                   int64_t install_time, uint64_t encryptions) {
  assert(term > 0);
  assert(k->n == 0 || term > k->meta[k->n - 1].term);
  int rc = reserve(k, k->n + 1);
  if (rc < 0)
    return rc;
  term_meta *m = &k->meta[k->n];
  m->term = term;
  m->install_time = install_time;
  atomic_init(&m->encryptions, encryptions);
  memcpy(k->keys + k->n * CS_KEY_LEN, key, CS_KEY_LEN);
  k->n++;
  return 0;
}

int cs_keyring_rotate(cs_keyring *k, int64_t now, uint32_t *new_term) {
  uint8_t key[CS_KEY_LEN];
  uint32_t term = cs_keyring_active(k) + 1;
  int rc = cs_random(key, sizeof key);
  if (rc == 0)
    rc = cs_keyring_add(k, term, key, now, 0);
  cs_wipe(key, sizeof key);
  if (rc == 0 && new_term != NULL)
    *new_term = term;
  return rc;
}

int cs_keyring_clone(const cs_keyring *k, cs_keyring **out) {
  cs_keyring *c;
  int rc = cs_keyring_new(&c);
  if (rc < 0)
    return rc;
  if ((rc = reserve(c, k->n)) < 0) {
    cs_keyring_free(c);
    return rc;
  }
  for (size_t i = 0; i < k->n; i++) {
    c->meta[i].term = k->meta[i].term;
    c->meta[i].install_time = k->meta[i].install_time;
    atomic_init(&c->meta[i].encryptions, atomic_load(&k->meta[i].encryptions));
  }
  if (k->n > 0)
    memcpy(c->keys, k->keys, k->n * CS_KEY_LEN);
  c->n = k->n;
  *out = c;
  return 0;
}

uint32_t cs_keyring_active(const cs_keyring *k) { return k->n ? k->meta[k->n - 1].term : 0; }
size_t cs_keyring_count(const cs_keyring *k) { return k->n; }

/* Binary search: terms are ascending (usually 1..n, but a ring decoded from
 * storage need not start at 1). */
static ssize_t find(const cs_keyring *k, uint32_t term) {
  size_t lo = 0, hi = k->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (k->meta[mid].term == term)
      return (ssize_t)mid;
    if (k->meta[mid].term < term)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

const uint8_t *cs_keyring_key(const cs_keyring *k, uint32_t term) {
  ssize_t i = find(k, term);
  return i < 0 ? NULL : k->keys + (size_t)i * CS_KEY_LEN;
}

void cs_keyring_info(const cs_keyring *k, size_t i, cs_term_info *out) {
  assert(i < k->n);
  out->term = k->meta[i].term;
  out->install_time = k->meta[i].install_time;
  out->encryptions = atomic_load(&k->meta[i].encryptions);
}

int cs_keyring_term_info(const cs_keyring *k, uint32_t term, cs_term_info *out) {
  ssize_t i = find(k, term);
  if (i < 0)
    return cs_error_set(CS_ENOTERM, "no key for term %u", term);
  cs_keyring_info(k, (size_t)i, out);
  return 0;
}

void cs_keyring_count_encryption(cs_keyring *k, uint32_t term) {
  assert(k->n > 0 && term == k->meta[k->n - 1].term && "encryption under a non-active term");
  atomic_fetch_add_explicit(&k->meta[k->n - 1].encryptions, 1, memory_order_relaxed);
}

int cs_keyring_encode(const cs_keyring *k, uint8_t **out, size_t *len) {
  int rc = CS_ENOMEM;
  Custos__Keyring ring = CUSTOS__KEYRING__INIT;
  Custos__KeyringTerm *terms = calloc(k->n ? k->n : 1, sizeof *terms);
  Custos__KeyringTerm **ptrs = calloc(k->n ? k->n : 1, sizeof *ptrs);
  uint8_t *buf = NULL;
  if (terms == NULL || ptrs == NULL)
    goto out;
  for (size_t i = 0; i < k->n; i++) {
    custos__keyring_term__init(&terms[i]);
    terms[i].term = k->meta[i].term;
    terms[i].install_time = k->meta[i].install_time;
    terms[i].encryptions = atomic_load(&k->meta[i].encryptions);
    terms[i].key.data = k->keys + i * CS_KEY_LEN;
    terms[i].key.len = CS_KEY_LEN;
    ptrs[i] = &terms[i];
  }
  ring.active_term = cs_keyring_active(k);
  ring.n_terms = k->n;
  ring.terms = ptrs;
  size_t n = custos__keyring__get_packed_size(&ring);
  /* The packed keyring holds every key: the caller wipes it after use. */
  buf = malloc(n ? n : 1);
  if (buf == NULL)
    goto out;
  custos__keyring__pack(&ring, buf);
  *out = buf;
  *len = n;
  rc = 0;
out:
  free(terms);
  free(ptrs);
  return rc;
}

int cs_keyring_decode(const uint8_t *buf, size_t len, cs_keyring **out) {
  cs_keyring *k = NULL;
  int rc;
  Custos__Keyring *ring = custos__keyring__unpack(NULL, len, buf);
  if (ring == NULL)
    return cs_error_set(CS_ESTORECORRUPT, "keyring does not parse");
  if ((rc = cs_keyring_new(&k)) < 0 || (rc = reserve(k, ring->n_terms)) < 0)
    goto out;
  rc = cs_error_set(CS_ESTORECORRUPT, "keyring is inconsistent");
  for (size_t i = 0; i < ring->n_terms; i++) {
    Custos__KeyringTerm *t = ring->terms[i];
    if (t->term == 0 || t->key.len != CS_KEY_LEN || (k->n > 0 && t->term <= cs_keyring_active(k)))
      goto out;
    if (cs_keyring_add(k, t->term, t->key.data, t->install_time, t->encryptions) < 0)
      goto out;
  }
  if (k->n == 0 || ring->active_term != cs_keyring_active(k))
    goto out;
  rc = 0;
out:
  for (size_t i = 0; i < ring->n_terms; i++)
    if (ring->terms[i]->key.data != NULL)
      cs_wipe(ring->terms[i]->key.data, ring->terms[i]->key.len);
  custos__keyring__free_unpacked(ring, NULL);
  if (rc < 0) {
    cs_keyring_free(k);
    return rc;
  }
  *out = k;
  return 0;
}
