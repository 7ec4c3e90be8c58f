/*
 * commitq: group commit.  The one writer of the store.
 *
 * Handlers on the event loop submit batches; a dedicated writer thread
 * takes every batch queued since its last commit, applies them all in ONE
 * LMDB transaction (one fsync for the group), and hands each submitter its
 * result back on the loop through a uv_async.  A write is acknowledged only
 * after its group is on disk, and the loop never waits for an fsync.
 *
 * One bad batch never fails its neighbours: cs_store_commit_group leaves a
 * batch that fails out of the group's transaction alone, and a cluster's
 * state machine applies every raft entry (one group) with the same store
 * function, so both back ends give each submitter the same result.
 *
 * Key operations (init, rotate, rekey) are batches like any other: the seal
 * module submits them and changes its memory in the callback.
 */
#ifndef CS_COMMITQ_H
#define CS_COMMITQ_H

#include <uv.h>
#include "store.h"

typedef struct cs_commitq cs_commitq;
typedef void (*cs_commitq_cb)(void *arg, int status);

int cs_commitq_start(cs_commitq **out, uv_loop_t *loop, cs_store *store)
    __attribute__((warn_unused_result));
/* Takes the contents of *b (b is left empty); cb(arg, status) runs on the
 * loop after the commit. */
int cs_commitq_submit(cs_commitq *q, cs_batch *b, cs_commitq_cb cb, void *arg)
    __attribute__((warn_unused_result));
/*
 * Cluster mode: from now on every group goes to `fn` instead of the writer
 * thread.  The batches submitted during one turn of the loop (in submission
 * order) are handed to fn(ctx, batches, n, done, arg) on the loop; fn copies
 * what it needs before it returns, and calls done(arg, status, each) once
 * the group is applied (raft: one entry, applied by the local state
 * machine with cs_store_commit_group): status 0 and each[i] the result of
 * batches[i], or status < 0 for all (each may then be NULL).  Or fn returns
 * an error and never calls done.
 */
typedef void (*cs_commitq_group_cb)(void *arg, int status, const int *each);
typedef int (*cs_commitq_backend_fn)(void *ctx, const cs_batch *const *batches, size_t n,
                                     cs_commitq_group_cb done, void *arg);
void cs_commitq_set_backend(cs_commitq *q, cs_commitq_backend_fn fn, void *ctx);

/* Finishes every queued batch, runs the callbacks, stops the thread,
 * closes the async handle and frees the queue (after the loop turns). */
void cs_commitq_stop(cs_commitq *q);
/* Commits and groups so far (for the log and benchmarks). */
void cs_commitq_stats(const cs_commitq *q, unsigned long long *commits, unsigned long long *batches);

#endif
