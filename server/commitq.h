/*
 * commitq: group commit.  The one writer of the store.
 *
 * Handlers on the event loop submit batches; a dedicated writer thread
 * takes every batch queued since its last commit, applies them all in ONE
 * LMDB transaction (one fsync for the group), and hands each submitter its
 * result back on the loop through a uv_async.  A write is acknowledged only
 * after its group is on disk, and the loop never waits for an fsync.
 *
 * If a group fails as a whole (say the map is full), each batch is retried
 * alone so that one oversized write cannot fail its neighbours.
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
 * thread.  Batches submitted during one turn of the loop are grouped (in
 * submission order) into one batch handed to fn(ctx, group, done, arg) on
 * the loop; fn takes the group's contents and calls done(arg, status) once
 * it is applied (raft: one entry, applied by the local state machine), or
 * returns an error and never calls done.  Each submitter's callback then
 * gets that status.
 */
typedef int (*cs_commitq_backend_fn)(void *ctx, cs_batch *group, cs_commitq_cb done, void *arg);
void cs_commitq_set_backend(cs_commitq *q, cs_commitq_backend_fn fn, void *ctx);

/* Finishes every queued batch, runs the callbacks, stops the thread,
 * closes the async handle and frees the queue (after the loop turns). */
void cs_commitq_stop(cs_commitq *q);
/* Commits and groups so far (for the log and benchmarks). */
void cs_commitq_stats(const cs_commitq *q, unsigned long long *commits, unsigned long long *batches);

#endif
