/* staging: the active's half of staged activation.  See staging.h. */
#include "staging.h"
#include "activation.h"
#include "cluster.h"
#include "crypto.h"
#include "cs_error.h"
#include "ha.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define MAX_REPORTS 16

/* One staged term watched by this process (there is one daemon per
 * process; the state lives here rather than in ha.c's struct so that an
 * activation callback can never outlive it). */
static struct {
  uint32_t term;              /* the staged term watched; 0: none */
  uint64_t seen_ms;           /* uv_now when this node first saw it staged as active */
  uint64_t index;             /* this node's applied raft index then (>= the staging entry's) */
  int activating;             /* an activation batch is in flight */
  char waiting_for[512];      /* laggards named in the last "waiting" line */
  uint64_t acked;             /* bit i: report i's acknowledgment was logged */
  uint64_t bad;               /* bit i: report i's bad proof was logged */
  char names[MAX_REPORTS][64];/* node id of report bit i */
  size_t n_names;
} w;

static void reset(uint32_t term, uint64_t now_ms, uint64_t index) {
  memset(&w, 0, sizeof w);
  w.term = term;
  w.seen_ms = now_ms;
  w.index = index;
}

/* The bit of `node_id` in acked/bad (names are remembered per term). */
static uint64_t bit_of(const char *node_id) {
  for (size_t i = 0; i < w.n_names; i++)
    if (strcmp(w.names[i], node_id) == 0)
      return 1ULL << i;
  if (w.n_names == MAX_REPORTS)
    return 0;
  snprintf(w.names[w.n_names], sizeof w.names[0], "%s", node_id);
  return 1ULL << w.n_names++;
}

/* Does member r hold `term`?  Logs acknowledgments and bad proofs once. */
static int holds(cs_seal *seal, const cs_member_report *r, uint32_t term) {
  if (!r->fresh)
    return 0;
  /* A sealed member loads the stored keyring at its unseal: once its
   * replica has applied the staging entry, that keyring holds the staged
   * term.  Before (a report from before the rotation, or a replica behind)
   * an unseal could still load the old ring: it holds activation back. */
  if (r->sealed)
    return r->applied >= w.index;
  if (r->staged_term != term && r->term < term)
    return 0;
  uint64_t b = bit_of(r->node_id);
  /* Only the proof counts: an active term >= the staged one cannot be
   * honest while the term is staged here, and a claim is not a key. */
  int ok = r->staged_term == term &&
           cs_seal_term_proof_ok(seal, term, r->node_id, r->staged_proof, sizeof r->staged_proof);
  if (ok && !(w.acked & b)) {
    w.acked |= b;
    cs_info("cluster: node %s acknowledged holding staged term %u", r->node_id, term);
  }
  if (!ok && !(w.bad & b)) {
    w.bad |= b;
    cs_warn("cluster: node %s claims to hold staged term %u but its proof does not verify: "
            "not counted as an acknowledgment",
            r->node_id, term);
  }
  return ok;
}

static void on_activated(void *arg, int status, cs_seal_result *res) {
  uint32_t term = (uint32_t)(uintptr_t)arg;
  if (w.term == term)
    w.activating = 0;
  if (status < 0)
    cs_warn("cluster: activating term %u failed (retried at the next poll): %s", term,
            cs_error_message(status));
  else
    cs_info("cluster: term %u is active", res->term);
}

/* Seconds waited for `term` (installed at install_time): see staging.h. */
static uint64_t waited(uv_loop_t *loop, int64_t install_time, int64_t now) {
  return cs_activation_waited(install_time, now, (uv_now(loop) - w.seen_ms) / 1000);
}

/* The voters lacking `term` now, comma-separated into buf; their count. */
static size_t laggards(cs_seal *seal, uint32_t term, const cs_member_report *r, size_t n,
                       cs_member_keys *mk, char *buf, size_t cap) {
  size_t lag = 0, off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    int h = holds(seal, &r[i], term);
    mk[i] = (cs_member_keys){.node_id = r[i].node_id, .voter = r[i].voter,
                             .newest_term = h ? term : 0};
    if (r[i].voter && !h) {
      lag++;
      if (off < cap) {
        int k = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "", r[i].node_id);
        off += k > 0 ? (size_t)k : 0;
      }
    }
  }
  return lag;
}

void cs_staging_tick(cs_ha *ha) {
  cs_seal *seal = cs_ha_seal(ha);
  if (seal == NULL)
    return; /* shutting down */
  cs_keyring *kr = cs_seal_keyring(seal);
  uint32_t term = kr ? cs_keyring_staged(kr) : 0;
  if (term == 0) {
    if (w.term != 0)
      reset(0, 0, 0);
    return;
  }
  if (w.term != term)
    reset(term, uv_now(cs_ha_loop(ha)), cs_cluster_applied(cs_ha_cluster(ha)));
  if (w.activating)
    return;
  cs_term_info ti;
  if (cs_keyring_term_info(kr, term, &ti) < 0)
    return;
  cs_member_report r[MAX_REPORTS];
  cs_member_keys mk[MAX_REPORTS];
  size_t n = cs_cluster_reports(cs_ha_cluster(ha), r, MAX_REPORTS);
  char lag_names[512];
  laggards(seal, term, r, n, mk, lag_names, sizeof lag_names);
  int64_t now = cs_now();
  uint64_t wait_s = waited(cs_ha_loop(ha), ti.install_time, now);
  uint64_t max = cs_ha_activation_delay(ha);
  size_t lag = 0;
  cs_activation how = cs_activation_decide(term, now - (int64_t)wait_s, now, max, mk, n, &lag);
  if (how == CS_ACTIVATION_WAIT) {
    /* Logged again whenever the set of laggards changes. */
    if (strcmp(w.waiting_for, lag_names) != 0)
      cs_info("cluster: term %u is staged; waiting for %s to acknowledge holding it (it "
              "activates anyway in at most %llu s: seal.max_activation_delay)",
              term, lag_names, (unsigned long long)(max - wait_s));
    snprintf(w.waiting_for, sizeof w.waiting_for, "%s", lag_names);
    return;
  }
  if (how == CS_ACTIVATION_NOW)
    cs_info("cluster: every voter holds staged term %u: activating it", term);
  else
    cs_warn("cluster: activating term %u without the acknowledgment of %s after "
            "seal.max_activation_delay (%llu s): %s lacks the new term and will seal itself "
            "when it meets it (unseal it again then)",
            term, lag_names, (unsigned long long)max, lag == 1 ? "that node" : "each of them");
  int rc = cs_seal_activate(seal, on_activated, (void *)(uintptr_t)term);
  if (rc == CS_SEAL_PENDING)
    w.activating = 1;
  else if (rc < 0 && rc != CS_EBUSY)
    cs_warn("cluster: cannot activate term %u yet: %s", term, cs_error_message(rc));
}

size_t cs_staging_laggards(cs_ha *ha, cs_seal *seal, unsigned max_delay, char (*names)[64],
                           size_t cap, int64_t *deadline) {
  *deadline = 0;
  cs_keyring *kr = seal ? cs_seal_keyring(seal) : NULL;
  uint32_t term = kr ? cs_keyring_staged(kr) : 0;
  cs_term_info ti;
  if (term == 0 || cs_keyring_term_info(kr, term, &ti) < 0)
    return 0;
  int64_t now = cs_now();
  uint64_t wait_s = w.term == term && ha != NULL ? waited(cs_ha_loop(ha), ti.install_time, now) : 0;
  uint64_t max = max_delay;
  *deadline = now + (int64_t)(wait_s < max ? max - wait_s : 0);
  if (ha == NULL)
    return 0;
  cs_member_report r[MAX_REPORTS];
  size_t n = cs_cluster_reports(cs_ha_cluster(ha), r, MAX_REPORTS), k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!r[i].voter || holds(seal, &r[i], term))
      continue;
    if (k < cap) {
      memcpy(names[k], r[i].node_id, sizeof r[i].node_id);
      names[k][63] = '\0';
    }
    k++;
  }
  return k;
}
