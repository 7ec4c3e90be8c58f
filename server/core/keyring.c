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
  cs_term_state state;
  int64_t install_time;
  int64_t activation_time;
  int64_t retirement_time;
  _Atomic uint64_t encryptions;
} term_meta;

struct cs_keyring {
  term_meta *meta;     /* ascending by term */
  uint8_t *keys;       /* cap * CS_KEY_LEN bytes of secmem; keys[i] belongs to meta[i]
                        * (all zero for a retired term) */
  size_t n, cap;
  size_t active;       /* index of the active term; meaningful when n > 0 */
};

const char *cs_term_state_name(cs_term_state s) {
  switch (s) {
  case CS_TERM_STAGED:
    return "staged";
  case CS_TERM_ACTIVE:
    return "active";
  case CS_TERM_DECRYPT_ONLY:
    return "decrypt-only";
  case CS_TERM_RETIRED:
    return "retired";
  }
  return "unknown";
}

int cs_term_transition_allowed(cs_term_state from, cs_term_state to) {
  return (from == CS_TERM_STAGED && to == CS_TERM_ACTIVE) ||
         (from == CS_TERM_DECRYPT_ONLY && to == CS_TERM_RETIRED);
}

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

/* Appends one term as given (key NULL: a retired term, zero key slot).
 * Ordering and state rules are the callers'. */
static int append(cs_keyring *k, const term_meta *m, const uint8_t *key) {
  int rc = reserve(k, k->n + 1);
  if (rc < 0)
    return rc;
  term_meta *d = &k->meta[k->n];
  d->term = m->term;
  d->state = m->state;
  d->install_time = m->install_time;
  d->activation_time = m->activation_time;
  d->retirement_time = m->retirement_time;
  atomic_init(&d->encryptions, atomic_load(&m->encryptions));
  uint8_t *slot = k->keys + k->n * CS_KEY_LEN;
  if (key != NULL)
    memcpy(slot, key, CS_KEY_LEN);
  else
    cs_wipe(slot, CS_KEY_LEN);
  if (m->state == CS_TERM_ACTIVE)
    k->active = k->n;
  k->n++;
  return 0;
}

int cs_keyring_add(cs_keyring *k, uint32_t term, const uint8_t key[CS_KEY_LEN],
                   int64_t install_time, uint64_t encryptions) {
  assert(term > 0);
  assert(k->n == 0 || term > k->meta[k->n - 1].term);
  /* A staged term would end up below the active one: activate it first. */
  if (cs_keyring_staged(k) != 0)
    return cs_error_set(CS_ETERMSTATE, "term %u is staged: activate it before adding term %u",
                        cs_keyring_staged(k), term);
  term_meta m = {.term = term, .state = CS_TERM_ACTIVE, .install_time = install_time,
                 .activation_time = install_time};
  atomic_init(&m.encryptions, encryptions);
  size_t was = k->active, had = k->n;
  int rc = append(k, &m, key);
  if (rc == 0 && had > 0)
    k->meta[was].state = CS_TERM_DECRYPT_ONLY;
  return rc;
}

int cs_keyring_rotate(cs_keyring *k, int64_t now, uint32_t *new_term) {
  uint8_t key[CS_KEY_LEN];
  uint32_t term = cs_keyring_newest(k) + 1;
  int rc = cs_random(key, sizeof key);
  if (rc == 0)
    rc = cs_keyring_add(k, term, key, now, 0);
  cs_wipe(key, sizeof key);
  if (rc == 0 && new_term != NULL)
    *new_term = term;
  return rc;
}

int cs_keyring_stage_key(cs_keyring *k, uint32_t term, const uint8_t key[CS_KEY_LEN],
                         int64_t install_time) {
  if (k->n == 0)
    return cs_error_set(CS_ETERMSTATE, "the first term is active from the start, not staged");
  if (cs_keyring_staged(k) != 0)
    return cs_error_set(CS_ETERMSTATE, "term %u is already staged: activate it first",
                        cs_keyring_staged(k));
  if (term <= cs_keyring_newest(k))
    return cs_error_set(CS_ETERMSTATE, "term %u cannot be staged: the keyring holds term %u",
                        term, cs_keyring_newest(k));
  term_meta m = {.term = term, .state = CS_TERM_STAGED, .install_time = install_time};
  atomic_init(&m.encryptions, 0);
  return append(k, &m, key);
}

int cs_keyring_stage(cs_keyring *k, int64_t now, uint32_t *new_term) {
  uint8_t key[CS_KEY_LEN];
  uint32_t term = cs_keyring_newest(k) + 1;
  int rc = cs_random(key, sizeof key);
  if (rc == 0)
    rc = cs_keyring_stage_key(k, term, key, now);
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
  for (size_t i = 0; i < k->n; i++)
    (void)append(c, &k->meta[i], k->keys + i * CS_KEY_LEN); /* reserved: cannot fail */
  *out = c;
  return 0;
}

uint32_t cs_keyring_active(const cs_keyring *k) { return k->n ? k->meta[k->active].term : 0; }
uint32_t cs_keyring_newest(const cs_keyring *k) { return k->n ? k->meta[k->n - 1].term : 0; }
size_t cs_keyring_count(const cs_keyring *k) { return k->n; }

uint32_t cs_keyring_staged(const cs_keyring *k) {
  /* Only the newest term can be staged. */
  return k->n && k->meta[k->n - 1].state == CS_TERM_STAGED ? k->meta[k->n - 1].term : 0;
}

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
  if (i < 0 || k->meta[i].state == CS_TERM_RETIRED)
    return NULL;
  return k->keys + (size_t)i * CS_KEY_LEN;
}

void cs_keyring_info(const cs_keyring *k, size_t i, cs_term_info *out) {
  assert(i < k->n);
  out->term = k->meta[i].term;
  out->state = k->meta[i].state;
  out->install_time = k->meta[i].install_time;
  out->activation_time = k->meta[i].activation_time;
  out->retirement_time = k->meta[i].retirement_time;
  out->encryptions = atomic_load(&k->meta[i].encryptions);
}

int cs_keyring_term_info(const cs_keyring *k, uint32_t term, cs_term_info *out) {
  ssize_t i = find(k, term);
  if (i < 0)
    return cs_error_set(CS_ENOTERM, "no key for term %u", term);
  cs_keyring_info(k, (size_t)i, out);
  return 0;
}

int cs_keyring_transition(cs_keyring *k, uint32_t term, cs_term_state to, int64_t now) {
  ssize_t i = find(k, term);
  if (i < 0)
    return cs_error_set(CS_ENOTERM, "no key for term %u", term);
  term_meta *m = &k->meta[i];
  if (!cs_term_transition_allowed(m->state, to)) {
    if (m->state == CS_TERM_ACTIVE && to == CS_TERM_RETIRED)
      return cs_error_set(CS_ETERMSTATE, "term %u is the active term: it can never be retired",
                          term);
    return cs_error_set(CS_ETERMSTATE, "term %u is %s: it cannot become %s", term,
                        cs_term_state_name(m->state), cs_term_state_name(to));
  }
  if (to == CS_TERM_ACTIVE) {
    k->meta[k->active].state = CS_TERM_DECRYPT_ONLY;
    m->state = CS_TERM_ACTIVE;
    m->activation_time = now;
    k->active = (size_t)i;
  } else {
    cs_wipe(k->keys + (size_t)i * CS_KEY_LEN, CS_KEY_LEN);
    m->state = CS_TERM_RETIRED;
    m->retirement_time = now;
  }
  return 0;
}

void cs_keyring_count_encryption(cs_keyring *k, uint32_t term) {
  assert(k->n > 0 && term == k->meta[k->active].term && "encryption under a non-active term");
  atomic_fetch_add_explicit(&k->meta[k->active].encryptions, 1, memory_order_relaxed);
}

size_t cs_keyring_revived(const cs_keyring *cur, const cs_keyring *restored, uint32_t *terms,
                          size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < cur->n; i++) {
    if (cur->meta[i].state != CS_TERM_RETIRED || cs_keyring_key(restored, cur->meta[i].term) == NULL)
      continue;
    if (n < cap)
      terms[n] = cur->meta[i].term;
    n++;
  }
  return n;
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
    const term_meta *m = &k->meta[i];
    custos__keyring_term__init(&terms[i]);
    terms[i].term = m->term;
    terms[i].install_time = m->install_time;
    terms[i].encryptions = atomic_load(&m->encryptions);
    terms[i].state = (Custos__TermState)m->state;
    terms[i].activation_time = m->activation_time;
    terms[i].retirement_time = m->retirement_time;
    /* A retired term is stored without its key: that is what retiring means. */
    if (m->state != CS_TERM_RETIRED) {
      terms[i].key.data = k->keys + i * CS_KEY_LEN;
      terms[i].key.len = CS_KEY_LEN;
    }
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

/*
 * The state of stored term t: its own field, or for a keyring written
 * before states existed (every field unset) what that keyring meant.
 * 0 when invalid.
 */
static cs_term_state stored_state(const Custos__KeyringTerm *t, uint32_t active_term, int legacy) {
  if (legacy)
    return t->term == active_term ? CS_TERM_ACTIVE : CS_TERM_DECRYPT_ONLY;
  switch (t->state) {
  case CUSTOS__TERM_STATE__TERM_STATE_STAGED:
  case CUSTOS__TERM_STATE__TERM_STATE_ACTIVE:
  case CUSTOS__TERM_STATE__TERM_STATE_DECRYPT_ONLY:
  case CUSTOS__TERM_STATE__TERM_STATE_RETIRED:
    return (cs_term_state)t->state;
  default:
    return 0;
  }
}

/* 1 when term t (state st) may sit where it is relative to the active term
 * and hold the key it holds. */
static int term_consistent(const Custos__KeyringTerm *t, cs_term_state st, uint32_t active_term) {
  if (t->term == 0 || st == 0)
    return 0;
  if (st == CS_TERM_RETIRED ? t->key.len != 0 : t->key.len != CS_KEY_LEN)
    return 0;
  switch (st) {
  case CS_TERM_ACTIVE:
    return t->term == active_term;
  case CS_TERM_STAGED:
    return t->term > active_term;
  default:
    return t->term < active_term;
  }
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
  int legacy = 1, actives = 0, staged = 0;
  for (size_t i = 0; i < ring->n_terms; i++)
    legacy &= ring->terms[i]->state == CUSTOS__TERM_STATE__TERM_STATE_UNSET;
  for (size_t i = 0; i < ring->n_terms; i++) {
    Custos__KeyringTerm *t = ring->terms[i];
    cs_term_state st = stored_state(t, ring->active_term, legacy);
    if (!term_consistent(t, st, ring->active_term) || (k->n > 0 && t->term <= cs_keyring_newest(k)))
      goto out;
    actives += st == CS_TERM_ACTIVE;
    staged += st == CS_TERM_STAGED;
    term_meta m = {.term = t->term, .state = st, .install_time = t->install_time,
                   .activation_time = legacy ? t->install_time : t->activation_time,
                   .retirement_time = st == CS_TERM_RETIRED ? t->retirement_time : 0};
    atomic_init(&m.encryptions, t->encryptions);
    if (append(k, &m, st == CS_TERM_RETIRED ? NULL : t->key.data) < 0)
      goto out;
  }
  if (actives != 1 || staged > 1)
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
