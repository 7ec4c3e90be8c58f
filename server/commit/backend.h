/*
 * backend: what the commit queue needs from whatever makes a group of
 * batches durable.  Two implement it: the LMDB writer thread (standalone,
 * writer.c) and raft (a cluster: one group is one log entry, applied by
 * every node's state machine, server/ha/fsm.c).
 *
 * The queue owns grouping and retrying (commitq.c); a backend only takes
 * a group and reports, once, on the loop thread, what became of it.  So
 * both back ends group and retry the same way, and a fake backend is all
 * a unit test of the queue needs (tests/unit/test_commitq.c).
 */
#ifndef CS_COMMIT_BACKEND_H
#define CS_COMMIT_BACKEND_H

#include <stddef.h>
#include "store.h"

/*
 * The outcome of one group, on the loop thread: status 0 and each[i] the
 * result of batch i; or status < 0 and each NULL when the group failed as
 * a whole.  `detail` (may be NULL, else one per batch, each may be NULL)
 * carries error details made on another thread; valid during the call.
 */
typedef void (*cs_commit_done_fn)(void *arg, int status, const int *each,
                                  const char *const *detail);

typedef struct cs_commit_backend {
  const char *name;
  /* Groups handed on and not yet done at most (0: no limit).  The writer
   * takes one at a time, so what arrives while it commits is the next
   * group; raft pipelines entries. */
  unsigned max_in_flight;
  /* 1 when a group that `done` reports failed as a whole was certainly not
   * applied, so the queue may retry its batches one by one (the writer:
   * the transaction aborted).  0 when such a failure may still be applied
   * later (raft: an entry whose leader stepped down may yet be committed
   * by the next one), so retrying could apply a batch twice. */
  int retry_after_done;
  /* 1 when the backend keeps its own durable log of every group (raft),
   * so the store may commit without fsync (cs_store_set_sync). */
  int durable_log;
  /*
   * Hands on the n batches (read during the call only: copy what is
   * needed).  Returns 0 and calls done(arg, ...) later on the loop, never
   * from inside submit; or an error, and then nothing of the group was
   * applied (the queue retries a group of several batches one by one).
   */
  int (*submit)(void *ctx, const cs_batch *const *batches, size_t n, cs_commit_done_fn done,
                void *arg);
  /* Optional: blocks until every group handed on is done and runs their
   * done callbacks (at shutdown).  NULL: the backend finishes them itself
   * while the loop runs (raft, until it closes). */
  void (*drain)(void *ctx);
} cs_commit_backend;

#endif
