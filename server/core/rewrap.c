/* rewrap: see rewrap.h. */
#include "rewrap.h"
#include "barrier.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "log.h"
#include "secmem.h"
#include "termcount.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P_UPGRADE "core/upgrade/"
/* Keys read per re-encryption staged, at most, in one step. */
#define SCAN_FACTOR 16

/* 1 when a value under `term` is to be moved by a pass with below_term. */
static int selected(uint32_t term, uint32_t active, uint32_t below) {
  return term < active && (below == 0 || term < below);
}

int cs_rewrap_remaining(cs_store *st, const cs_keyring *k, uint32_t below_term,
                        uint64_t *remaining) {
  cs_termcounts tc;
  int rc = cs_store_term_counts(st, &tc);
  if (rc < 0)
    return rc;
  uint64_t sum = 0;
  uint32_t active = cs_keyring_active(k);
  for (size_t i = 0; i < tc.n; i++)
    if (selected(tc.v[i].term, active, below_term))
      sum += tc.v[i].values;
  cs_termcounts_free(&tc);
  *remaining = sum;
  return 0;
}

/* ---- the cursor under the barrier ----------------------------------------- */

int cs_rewrap_stage_cursor(cs_keyring *k, const cs_rewrap_cursor *c, cs_batch *b) {
  Custos__RewrapCursor m = CUSTOS__REWRAP_CURSOR__INIT;
  m.after.data = (uint8_t *)c->after;
  m.after.len = strlen(c->after);
  m.below_term = c->below_term;
  m.target_term = c->target_term;
  m.done = c->done;
  m.total = c->total;
  m.skipped = c->skipped;
  m.started = c->started;
  m.updated = c->updated;
  m.finished = c->finished != 0;
  m.rate = c->rate;
  size_t len = custos__rewrap_cursor__get_packed_size(&m);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL)
    return CS_ENOMEM;
  custos__rewrap_cursor__pack(&m, buf);
  int rc = cs_barrier_stage_put(k, b, CS_REWRAP_PATH, buf, len);
  free(buf);
  return rc;
}

int cs_rewrap_load(cs_store *st, const cs_keyring *k, cs_rewrap_cursor *c) {
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_get(st, k, CS_REWRAP_PATH, &pt, &len);
  if (rc < 0)
    return rc;
  Custos__RewrapCursor *m = custos__rewrap_cursor__unpack(NULL, len, pt);
  free(pt);
  if (m == NULL || m->after.len > CS_STORE_KEY_MAX ||
      (m->after.len && memchr(m->after.data, '\0', m->after.len) != NULL)) {
    if (m != NULL)
      custos__rewrap_cursor__free_unpacked(m, NULL);
    return cs_error_set(CS_ESTORECORRUPT, CS_REWRAP_PATH " is corrupt");
  }
  memset(c, 0, sizeof *c);
  if (m->after.len)
    memcpy(c->after, m->after.data, m->after.len);
  c->below_term = m->below_term;
  c->target_term = m->target_term;
  c->done = m->done;
  c->total = m->total;
  c->skipped = m->skipped;
  c->started = m->started;
  c->updated = m->updated;
  c->finished = m->finished;
  c->rate = m->rate;
  custos__rewrap_cursor__free_unpacked(m, NULL);
  return 0;
}

/* Resets c to the first key of a pass towards the current active term. */
static int begin_pass(cs_store *st, const cs_keyring *k, uint32_t below_term, int64_t now,
                      cs_rewrap_cursor *c) {
  memset(c, 0, sizeof *c);
  c->below_term = below_term;
  c->target_term = cs_keyring_active(k);
  c->started = c->updated = now;
  return cs_rewrap_remaining(st, k, below_term, &c->total);
}

int cs_rewrap_start(cs_store *st, cs_keyring *k, uint32_t below_term, int64_t now,
                    cs_rewrap_cursor *c, cs_batch *b) {
  if (cs_keyring_active(k) == 0)
    return cs_error_set(CS_ESEALED, "barrier has no active key");
  int rc = begin_pass(st, k, below_term, now, c);
  return rc < 0 ? rc : cs_rewrap_stage_cursor(k, c, b);
}

/* ---- one step ----------------------------------------------------------- */

typedef struct step_ctx {
  cs_keyring *k;
  cs_rewrap_cursor *c;
  cs_batch *b;
  cs_rewrap_step *res;
  size_t max_values, max_keys;
  int stopped;            /* the scan stopped on a limit, not at the last key */
} step_ctx;

/* Re-encrypts one value read at `key` into a conditional put. */
static int rewrap_one(step_ctx *x, const char *key, const uint8_t *val, size_t len) {
  uint8_t *pt, *ct;
  size_t pt_len, ct_len;
  int rc = cs_barrier_decrypt(x->k, key, val, len, &pt, &pt_len);
  if (rc < 0) {
    /* Nothing we can do for it; it stays as it is, and keeps its term in use. */
    cs_warn("rewrap: %s: left as it is", cs_error_message(rc));
    x->c->skipped++;
    return 0;
  }
  rc = cs_barrier_encrypt(x->k, key, pt, pt_len, &ct, &ct_len);
  cs_wipe(pt, pt_len);
  free(pt);
  if (rc < 0)
    return rc;
  uint8_t digest[CS_STORE_DIGEST_LEN];
  cs_store_digest(val, len, digest);
  rc = cs_batch_put_if_digest(x->b, key, ct, ct_len, digest);
  free(ct);
  if (rc < 0)
    return rc;
  x->res->staged++;
  x->c->done++;
  return 0;
}

static int visit(void *arg, const char *key, size_t key_len, const uint8_t *val, size_t len) {
  step_ctx *x = arg;
  uint32_t term;
  x->res->examined++;
  memcpy(x->c->after, key, key_len + 1); /* key_len <= CS_STORE_KEY_MAX */
  if (strcmp(key, CS_REWRAP_PATH) != 0 && cs_termcount_classify(key, key_len, val, len, &term) &&
      selected(term, x->c->target_term, x->c->below_term)) {
    int rc = rewrap_one(x, key, val, len);
    if (rc < 0)
      return rc;
  }
  if (x->res->staged >= x->max_values || x->res->examined >= x->max_keys) {
    x->stopped = 1;
    return 1;
  }
  return 0;
}

int cs_rewrap_build(cs_store *st, cs_keyring *k, cs_rewrap_cursor *c, size_t max_values,
                    int64_t now, cs_batch *b, cs_rewrap_step *res) {
  memset(res, 0, sizeof *res);
  if (max_values == 0)
    return cs_error_set(CS_EINVAL, "a rewrap step needs a batch size of at least 1");
  if (cs_keyring_active(k) == 0)
    return cs_error_set(CS_ESEALED, "barrier has no active key");
  if (c->finished) {
    res->finished = 1;
    return 0;
  }
  int rc;
  if (c->target_term != cs_keyring_active(k)) {
    cs_info("rewrap: the active term is now %u (was %u): the pass starts again",
            cs_keyring_active(k), c->target_term);
    int64_t started = c->started;
    uint64_t rate = c->rate;
    if ((rc = begin_pass(st, k, c->below_term, now, c)) < 0)
      return rc;
    c->started = started;
    c->rate = rate;
    res->restarted = 1;
  }
  step_ctx x = {k, c, b, res, max_values, max_values * SCAN_FACTOR, 0};
  if (x.max_keys / SCAN_FACTOR != max_values)
    x.max_keys = SIZE_MAX;
  if ((rc = cs_store_scan_after(st, c->after, visit, &x)) < 0)
    return rc;
  c->finished = !x.stopped;
  res->finished = c->finished;
  c->updated = now;
  return cs_rewrap_stage_cursor(k, c, b); /* last: the batch carries its own progress */
}

/* ---- retirement --------------------------------------------------------- */

int cs_rewrap_retire_check(cs_store *st, const cs_keyring *k, uint32_t term) {
  cs_term_info ti;
  /* A term the keyring never had is the caller's NOT_FOUND, not the
   * INTERNAL that a missing key for a stored value is. */
  if (cs_keyring_term_info(k, term, &ti) < 0)
    return cs_error_set(CS_ENOTFOUND, "no key for term %u: the keyring has no such term", term);
  int rc;
  if (ti.state == CS_TERM_ACTIVE)
    return cs_error_set(CS_ETERMSTATE, "term %u is the active term: it can never be retired", term);
  if (ti.state == CS_TERM_RETIRED) {
    char when[32];
    cs_rfc3339(ti.retirement_time, when, sizeof when);
    return cs_error_set(CS_ETERMSTATE, "term %u was already retired on %s", term, when);
  }
  if (!cs_term_transition_allowed(ti.state, CS_TERM_RETIRED))
    return cs_error_set(CS_ETERMSTATE, "term %u is %s: it cannot become retired", term,
                        cs_term_state_name(ti.state));
  cs_termcounts tc;
  if ((rc = cs_store_term_counts(st, &tc)) < 0)
    return rc;
  uint64_t left = cs_termcounts_get(&tc, term);
  cs_termcounts_free(&tc);
  if (left != 0)
    return cs_error_set(CS_ETERMINUSE, "term %u still encrypts %llu stored value(s): rewrap them first "
                        "(custos operator rewrap --wait)",
                        term, (unsigned long long)left);
  return 0;
}

int cs_rewrap_stage_retire(cs_store *st, cs_keyring *next, uint32_t term, int64_t now,
                           cs_batch *b) {
  int rc = cs_rewrap_retire_check(st, next, term);
  if (rc < 0)
    return rc;
  char path[64];
  /* core/upgrade/<term-1> holds this term's key (under term-1), and
   * core/upgrade/<term> is sealed under it: both would keep it alive. */
  if (term > 1) {
    snprintf(path, sizeof path, P_UPGRADE "%u", term - 1);
    if ((rc = cs_batch_del(b, path)) < 0)
      return rc;
  }
  snprintf(path, sizeof path, P_UPGRADE "%u", term);
  if ((rc = cs_batch_del(b, path)) < 0)
    return rc;
  if ((rc = cs_keyring_transition(next, term, CS_TERM_RETIRED, now)) < 0)
    return rc;
  b->require_empty_term = term;
  return 0;
}
