/*
 * snapshots: what custosd does with snapshot files (the format is
 * server/core/snapshot.h): chunked save and restore over the protocol, and
 * scheduled snapshots (config `snapshot`, also after every init, rotate and
 * rekey commit).
 *
 * Save: a request with id 0 builds a snapshot of the whole store off the
 * event loop (uv_work) and answers with its first chunk; the client then
 * asks for (id, offset) until it has every byte.  A transfer idle for 2
 * minutes is dropped.
 *
 * Restore: chunks are appended, in order, to a staging file in the data
 * directory (outside the live store); the last one (commit) has the file
 * parsed and checked, then its contents replace the store in ONE batch that
 * clears it first (one LMDB transaction; in a cluster one raft entry that
 * every node applies).  A kill -9 at any instant leaves the old or the new
 * state.  One upload at a time; one idle for 2 minutes is dropped.
 *
 * Who may restore: a token with sudo on sys/storage/snapshot, or anyone
 * while the server is not initialized (the same trust as `init`, which
 * anyone who reaches an uninitialized server can run); the latter is logged
 * with the client's address and audited like every request.
 *
 * Loop thread only, one daemon per process.
 */
#ifndef CS_SNAPSHOTS_H
#define CS_SNAPSHOTS_H

#include "custos.pb-c.h"
#include "store.h"

struct cs_api_env;

/* The answer to a snapshot request: status < 0 (detail set on the loop
 * thread) or the response to send (valid during the call). */
typedef void (*cs_snapshots_reply_fn)(void *arg, int status, Custos__Response *res);

/* Starts the housekeeping timer (expiry, schedule).  0 or an error. */
int cs_snapshots_start(struct cs_api_env *d) __attribute__((warn_unused_result));
/* Drops transfers and the staging file; stops the timer. */
void cs_snapshots_stop(struct cs_api_env *d);

/* The seal's on_key_change hook (ctx = the daemon): schedules a snapshot
 * when the config asks for one after key changes. */
void cs_snapshots_on_key_change(void *ctx, const char *what);

/* 1 while a restore is being committed (requests needing a token wait). */
int cs_snapshots_restoring(struct cs_api_env *d);

/* Fills the snapshot fields of a StatusRes (strings owned here). */
void cs_snapshots_status(struct cs_api_env *d, Custos__StatusRes *sr);

void cs_snapshots_save(struct cs_api_env *d, const Custos__SnapshotSaveReq *q,
                       cs_snapshots_reply_fn fn, void *arg);
/* `authed`: the request carried an accepted token (the connection then
 * takes frames up to max_frame, which sizes the chunks the client may send). */
void cs_snapshots_restore(struct cs_api_env *d, const Custos__SnapshotRestoreReq *q,
                          const char *client, int authed, cs_snapshots_reply_fn fn, void *arg);

#endif
