/*
 * metrics_ops: GET /v1/sys/metrics (and the protobuf op): the server's
 * measurements in the Prometheus text format, built at scrape time from
 * the request counters (api.c), the process-wide histograms (core/stats),
 * and the current state of the seal, keyring, listener, cluster and
 * snapshots.  Names follow Prometheus's rules (docs/http-api.md, Metrics):
 * custos_ prefix, _total on counters, seconds and bytes as base units.
 * A sealed server still answers (with telemetry.unauthenticated_metrics_access):
 * the seal gauges matter most then.
 */
#include "api_int.h"

#include "cs_error.h"
#include "ha.h"
#include "keyring.h"
#include "seal.h"
#include "snapshots.h"
#include "stats.h"
#include "tls_gcm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void requests(cs_prom *p) {
  cs_prom_family(p, "custos_requests_total", CS_PROM_COUNTER,
                 "Answered requests, by operation and result code (ok or the CS_E name).");
  for (size_t i = 0; i < cs_op_rows(); i++) {
    size_t cursor = 0;
    int code;
    uint64_t count;
    while (cs_op_code_at(i, &cursor, &code, &count)) {
      cs_prom_label l[2] = {{"op", cs_op_row(i)->name},
                            {"code", code == 0 ? "ok" : cs_errname(code)}};
      cs_prom_sample_u64(p, l, 2, count);
    }
  }
  cs_prom_family(p, "custos_request_duration_seconds", CS_PROM_HISTOGRAM,
                 "Time from a request's arrival to its answer, by operation.");
  for (size_t i = 0; i < cs_op_rows(); i++) {
    const cs_hist *h = cs_op_latency(i);
    if (h == NULL)
      break;
    uint64_t seen = 0;
    for (unsigned b = 0; b <= h->nbounds; b++)
      seen += __atomic_load_n(&h->counts[b], __ATOMIC_RELAXED);
    if (seen == 0)
      continue;
    cs_prom_label l = {"op", cs_op_row(i)->name};
    cs_prom_hist(p, &l, 1, h, 1);
  }
}

static void commits(cs_prom *p) {
  cs_stats *s = cs_stats_get();
  cs_prom_family(p, "custos_commit_group_batches", CS_PROM_HISTOGRAM,
                 "Write batches per commit group handed to the storage or raft backend.");
  cs_prom_hist(p, NULL, 0, &s->commit_group_batches, 0);
  cs_prom_family(p, "custos_commit_duration_seconds", CS_PROM_HISTOGRAM,
                 "A commit group from hand-over to its backend until done (durable).");
  cs_prom_hist(p, NULL, 0, &s->commit_seconds, 1);
  cs_prom_family(p, "custos_storage_commit_duration_seconds", CS_PROM_HISTOGRAM,
                 "One LMDB write transaction's commit, its fsync included when durable.");
  cs_prom_hist(p, NULL, 0, &s->storage_commit_seconds, 1);
  cs_prom_family(p, "custos_audit_write_failures_total", CS_PROM_COUNTER,
                 "Audit records that could not be written (their requests were refused).");
  cs_prom_sample_u64(p, NULL, 0, __atomic_load_n(&s->audit_failures, __ATOMIC_RELAXED));
}

static int count_key(void *arg, const char *key, size_t key_len, const uint8_t *val,
                     size_t val_len) {
  (void)key, (void)key_len, (void)val, (void)val_len;
  ++*(uint64_t *)arg;
  return 0;
}

/* custos_keyring_terms's samples: the terms by state. */
static void term_states(cs_prom *p, const cs_keyring *kr) {
  static const cs_term_state states[] = {CS_TERM_STAGED, CS_TERM_ACTIVE, CS_TERM_DECRYPT_ONLY,
                                         CS_TERM_RETIRED};
  uint64_t n[5] = {0};
  for (size_t i = 0; kr != NULL && i < cs_keyring_count(kr); i++) {
    cs_term_info ti;
    cs_keyring_info(kr, i, &ti);
    if (ti.state >= CS_TERM_STAGED && ti.state <= CS_TERM_RETIRED)
      n[ti.state]++;
  }
  for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
    cs_prom_label l = {"state", cs_term_state_name(states[i])};
    cs_prom_sample_u64(p, &l, 1, n[states[i]]);
  }
}

static void seal_state(cs_prom *p, cs_api_env *d) {
  cs_seal_status st = {0};
  if (d->seal != NULL)
    cs_seal_get_status(d->seal, &st);
  cs_prom_family(p, "custos_initialized", CS_PROM_GAUGE, "1 once the server is initialized.");
  cs_prom_sample(p, NULL, 0, st.initialized);
  cs_prom_family(p, "custos_sealed", CS_PROM_GAUGE, "1 while the server is sealed.");
  cs_prom_sample(p, NULL, 0, d->seal == NULL || st.sealed);
  const cs_keyring *kr = d->seal != NULL ? cs_seal_keyring(d->seal) : NULL;
  cs_prom_family(p, "custos_keyring_active_term", CS_PROM_GAUGE,
                 "The keyring term that encrypts new values (0 while sealed).");
  cs_prom_sample(p, NULL, 0, kr != NULL ? cs_keyring_active(kr) : 0);
  cs_prom_family(p, "custos_keyring_terms", CS_PROM_GAUGE,
                 "Terms in the keyring, by state (all 0 while sealed).");
  term_states(p, kr);
  cs_prom_family(p, "custos_keyring_active_term_encryptions", CS_PROM_GAUGE,
                 "Encryptions made under the active term (automatic rotation counts these).");
  uint64_t enc = 0;
  if (kr != NULL) {
    cs_term_info ti;
    if (cs_keyring_term_info(kr, cs_keyring_active(kr), &ti) == 0)
      enc = ti.encryptions;
  }
  cs_prom_sample_u64(p, NULL, 0, enc);
  uint64_t upgrades = 0;
  if (kr != NULL && cs_store_scan(d->store, "core/upgrade/", count_key, &upgrades) < 0)
    upgrades = 0;
  cs_prom_family(p, "custos_upgrade_keys", CS_PROM_GAUGE,
                 "Upgrade keys stored for standbys to follow a rotation (they expire).");
  cs_prom_sample_u64(p, NULL, 0, upgrades);
}

static void server_state(cs_prom *p, cs_api_env *d) {
  cs_prom_family(p, "custos_connections", CS_PROM_GAUGE, "Open client connections.");
  cs_prom_sample(p, NULL, 0, d->listener != NULL ? cs_listener_connections(d->listener) : 0);
  Custos__StatusRes sr = CUSTOS__STATUS_RES__INIT;
  cs_snapshots_status(d, &sr);
  cs_prom_family(p, "custos_snapshot_age_seconds", CS_PROM_GAUGE,
                 "Seconds since the last scheduled snapshot file was written (-1: none yet).");
  int64_t now = (int64_t)time(NULL);
  cs_prom_sample(p, NULL, 0,
                 sr.snapshot_last_time > 0 ? (double)(now - sr.snapshot_last_time) : -1.0);
  /* How near the map is: writes fail with STORAGE once the file reaches it
   * (and in a cluster a node that is fuller than the others can lack a
   * write they hold: docs/ha.md). */
  size_t entries = 0, used = 0;
  if (cs_store_stat(d->store, &entries, &used) < 0)
    used = 0;
  cs_prom_family(p, "custos_storage_used_bytes", CS_PROM_GAUGE,
                 "Size the data file has reached (LMDB's last page; it never shrinks).");
  cs_prom_sample_u64(p, NULL, 0, used);
  cs_prom_family(p, "custos_storage_map_bytes", CS_PROM_GAUGE,
                 "The largest the data file may grow (storage.map_size_mb).");
  cs_prom_sample_u64(p, NULL, 0, cs_store_map_size(d->store));
  /* 0 on a CPU without AES-NI and PCLMUL, or with peers that offer only
   * other suites: their records run on mbedTLS (common/tls_gcm.h). */
  cs_prom_family(p, "custos_tls_gcm_records_total", CS_PROM_COUNTER,
                 "TLS records (API and cluster ports) sealed or opened by libsodium's AES-256-GCM.");
  cs_prom_sample_u64(p, NULL, 0, cs_tls_gcm_records());
}

static void cluster(cs_prom *p, cs_api_env *d) {
  const char *mode = "standalone", *active = "";
  if (d->ha != NULL)
    cs_ha_status(d, &mode, &active);
  cs_prom_family(p, "custos_ha_mode", CS_PROM_GAUGE,
                 "1 for this node's role: standalone, active or standby.");
  cs_prom_label l = {"mode", mode};
  cs_prom_sample(p, &l, 1, 1);
  if (d->ha == NULL)
    return;
  cs_peer_info peers[64];
  size_t n = 0;
  if (cs_ha_peers(d, peers, sizeof peers / sizeof peers[0], &n) < 0)
    n = 0;
  cs_prom_family(p, "custos_raft_peer_leader", CS_PROM_GAUGE, "1 for the raft leader.");
  for (size_t i = 0; i < n; i++) {
    cs_prom_label pl = {"peer", peers[i].node_id};
    cs_prom_sample(p, &pl, 1, peers[i].leader);
  }
  cs_prom_family(p, "custos_raft_peer_voter", CS_PROM_GAUGE, "1 for a voting member.");
  for (size_t i = 0; i < n; i++) {
    cs_prom_label pl = {"peer", peers[i].node_id};
    cs_prom_sample(p, &pl, 1, peers[i].voter);
  }
  cs_prom_family(p, "custos_raft_peer_applied_index", CS_PROM_GAUGE,
                 "The last raft index each member reported applied (this node: its own).");
  for (size_t i = 0; i < n; i++) {
    cs_prom_label pl = {"peer", peers[i].node_id};
    cs_prom_sample_u64(p, &pl, 1, peers[i].applied);
  }
  cs_prom_family(p, "custos_raft_peer_last_contact_seconds", CS_PROM_GAUGE,
                 "Seconds since a member's last sign of life (-1: never seen).");
  for (size_t i = 0; i < n; i++) {
    cs_prom_label pl = {"peer", peers[i].node_id};
    double v = peers[i].last_contact_ms < 0 ? -1.0 : peers[i].last_contact_ms / 1000.0;
    cs_prom_sample(p, &pl, 1, v);
  }
  cs_prom_family(p, "custos_raft_peer_keyring_term", CS_PROM_GAUGE,
                 "The keyring term each member last reported (0: no report yet).");
  for (size_t i = 0; i < n; i++) {
    cs_prom_label pl = {"peer", peers[i].node_id};
    cs_prom_sample_u64(p, &pl, 1, peers[i].reported ? peers[i].term : 0);
  }
}

void cs_op_metrics(cs_rq *r) {
  cs_api_env *d = r->d;
  cs_prom p;
  cs_prom_init(&p);
  requests(&p);
  commits(&p);
  seal_state(&p, d);
  server_state(&p, d);
  cluster(&p, d);
  const char *text;
  size_t len;
  int rc = cs_prom_result(&p, &text, &len);
  if (rc < 0) {
    cs_prom_free(&p);
    respond(r, cs_error_set(rc, "cannot build the metrics text"), NULL, NULL, 0);
    return;
  }
  Custos__MetricsRes mr = CUSTOS__METRICS_RES__INIT;
  mr.text = (char *)text;
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  res.result_case = CUSTOS__RESPONSE__RESULT_METRICS;
  res.metrics = &mr;
  respond(r, 0, &res, NULL, 0);
  cs_prom_free(&p);
}
