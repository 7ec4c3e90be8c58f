/*
 * commitq: group commit.  The one writer of the store.
 *
 * Handlers on the event loop submit batches.  Once per loop turn, and
 * whenever its backend can take more, the queue hands everything submitted
 * since the last hand-off to the backend as ONE group (backend.h): the LMDB
 * writer thread commits a group in one transaction (one fsync), raft makes
 * it one log entry.  Each submitter gets its own batch's result back on the
 * loop.  A write is acknowledged only once its group is durable (on disk,
 * or in a majority's raft log), and the loop never waits for an fsync: in a
 * cluster the state machine applies entries without fsync because raft's
 * log is the durable record (docs/architecture.md, "Durability").
 *
 * One retry policy for both back ends: when a group of several batches
 * fails as a whole and nothing of it was applied (the backend refused it,
 * or the writer's transaction aborted), each of its batches is tried again
 * alone, in order, ahead of anything submitted later.  So one bad batch
 * (say one too large for a raft entry or for the disk) fails alone and
 * never its neighbours.  Failures of single batches inside a group that
 * committed are the store's (cs_store_commit_group).
 *
 * Key operations (init, rotate, rekey) are batches like any other: the seal
 * module submits them and changes its memory in the callback.
 */
#ifndef CS_COMMITQ_H
#define CS_COMMITQ_H

#include <uv.h>
#include "backend.h"
#include "cs_error.h"
#include "store.h"

typedef struct cs_commitq cs_commitq;

/* Starts the queue on the LMDB writer thread backend (writer.h). */
int cs_commitq_start(cs_commitq **out, uv_loop_t *loop, cs_store *store)
    __attribute__((warn_unused_result));
/* Takes the contents of *b (b is left empty); cb(arg, status) runs on the
 * loop after the commit.  CS_EUNAVAIL once the queue is stopping. */
int cs_commitq_submit(cs_commitq *q, cs_batch *b, cs_done_fn cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * From now on every group goes to `be` (ctx: be_ctx) instead of the writer
 * thread, which first finishes what it has.  When the backend keeps a
 * durable log (be->durable_log), the store stops fsyncing its commits and
 * the writer thread flushes it in the background instead.
 */
void cs_commitq_use_backend(cs_commitq *q, const cs_commit_backend *be, void *be_ctx);

/*
 * Cluster mode, the raft backend: fn(ctx, batches, n, done, arg) appends
 * the group as one raft entry (copying what it needs before it returns)
 * and calls done(arg, status, each) once the entry is applied by the local
 * state machine: status 0 and each[i] the result of batches[i], or
 * status < 0 for all (each may then be NULL: the entry may still be
 * committed by a later leader, so that is never retried).  Or fn returns
 * an error and never calls done (nothing was appended: retried batch by
 * batch).  raft's log is durable, so the store stops fsyncing.
 */
typedef void (*cs_commitq_group_cb)(void *arg, int status, const int *each);
typedef int (*cs_commitq_backend_fn)(void *ctx, const cs_batch *const *batches, size_t n,
                                     cs_commitq_group_cb done, void *arg);
void cs_commitq_set_backend(cs_commitq *q, cs_commitq_backend_fn fn, void *ctx);

/* Hands on every queued batch and finishes what the backend can finish
 * now (the writer: all of it, callbacks included), stops the writer
 * thread and frees the queue once its handles are closed and the last
 * group handed on is done (raft's, when raft closes). */
void cs_commitq_stop(cs_commitq *q);

#endif
