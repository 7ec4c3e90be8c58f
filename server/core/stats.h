/*
 * stats: the process-wide measurements that /v1/sys/metrics exports and
 * that are observed below the request path (the commit queue, the store,
 * the audit log), where no request context reaches.  Each is observed
 * where it happens, from any thread (cs_hist uses relaxed atomics), and
 * read by the metrics op (server/api/metrics_ops.c), which also asks the
 * seal, the listener and the cluster for their current state.
 */
#ifndef CS_STATS_H
#define CS_STATS_H

#include <stdint.h>

#include "metrics.h"

typedef struct cs_stats {
  cs_hist commit_group_batches;   /* batches per commit group handed to a backend */
  cs_hist commit_seconds;         /* a group: handed to its backend -> done */
  cs_hist storage_commit_seconds; /* one LMDB write transaction's commit (its fsync included) */
  uint64_t audit_failures;        /* audit records that could not be written (atomic) */
} cs_stats;

/* The one instance, initialized on first use (thread-safe). */
cs_stats *cs_stats_get(void);

/* Monotonic nanoseconds (CLOCK_MONOTONIC), for durations. */
uint64_t cs_stats_now_ns(void);

void cs_stats_audit_failed(void);

#endif
