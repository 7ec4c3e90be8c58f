/*
 * logid: which raft log a node's store was applied from.
 *
 * The store records the index of the last raft entry it applied and skips
 * entries at or below it (raft replays its log after a restart).  That is
 * only right for the log the store was applied from: a store copied from
 * another node or restored from an mdb_copy backup next to a fresh raft log
 * skipped entries 1..N of the NEW log as "already applied", and writes
 * acknowledged with Success were gone.
 *
 * So every raft directory gets a random identity when its log is created
 * (<raft dir>/custos-log-id, 32 hex digits), and the store records the
 * identity of the log it applies from (meta "raft_log_id").  At start-up,
 * before raft runs, the two must agree:
 *  - a fresh (empty) raft log with a store that applied entries or holds
 *    data: refused (the store does not come from this log);
 *  - a log identity different from the store's: refused;
 *  - otherwise the identity is created or recorded as needed (stores and
 *    logs of older versions have none: they are adopted).
 */
#ifndef CS_LOGID_H
#define CS_LOGID_H

#include "store.h"

/*
 * Checks (and creates or records) the identity of the raft log in
 * `raft_dir` (created if missing) against `store`.  0, or
 * CS_ESTOREMISMATCH with a detail saying what to do, or CS_EIO.
 */
int cs_logid_check(cs_store *store, const char *raft_dir) __attribute__((warn_unused_result));

#endif
