/*
 * writer: the commit backend of a standalone server, one thread that owns
 * every LMDB write transaction.
 *
 * A group handed on is committed on the thread in ONE transaction
 * (cs_store_commit_group: one fsync for the group); its result comes back
 * to the loop through a uv_async, with each failing batch's error detail
 * (details are per thread).  The loop never waits for an fsync.
 *
 * In a cluster the groups go to raft instead and the store commits without
 * fsync (raft's log is the durable record, see docs/architecture.md); the
 * thread then flushes the store in the background (cs_commit_writer_sync_every),
 * which bounds what an OS crash makes raft replay, again off the loop.
 */
#ifndef CS_COMMIT_WRITER_H
#define CS_COMMIT_WRITER_H

#include <uv.h>
#include "backend.h"

typedef struct cs_commit_writer cs_commit_writer;

/* The backend table of the writer (its ctx is a cs_commit_writer). */
extern const cs_commit_backend cs_commit_writer_backend;

/* Starts the thread.  0, CS_ENOMEM or CS_EINTERNAL. */
int cs_commit_writer_start(cs_commit_writer **out, uv_loop_t *loop, cs_store *store)
    __attribute__((warn_unused_result));
/* From now on the thread flushes the store every `ms` milliseconds
 * (mdb_env_sync) while it has nothing else to do; 0 stops that. */
void cs_commit_writer_sync_every(cs_commit_writer *w, unsigned ms);
/* Finishes every group handed on (their callbacks run), flushes the store
 * once more, joins the thread and closes the async handle; the writer is
 * freed once the handle is closed (after the loop turns). */
void cs_commit_writer_stop(cs_commit_writer *w);

#endif
