/* stats: see stats.h. */
#include "stats.h"

#include <pthread.h>
#include <time.h>

static cs_stats stats;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
  cs_hist_init(&stats.commit_group_batches, cs_hist_size_bounds, cs_hist_size_nbounds);
  cs_hist_init(&stats.commit_seconds, cs_hist_latency_bounds, cs_hist_latency_nbounds);
  cs_hist_init(&stats.storage_commit_seconds, cs_hist_latency_bounds, cs_hist_latency_nbounds);
}

cs_stats *cs_stats_get(void) {
  pthread_once(&once, init);
  return &stats;
}

uint64_t cs_stats_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cs_stats_audit_failed(void) {
  __atomic_add_fetch(&cs_stats_get()->audit_failures, 1, __ATOMIC_RELAXED);
}
