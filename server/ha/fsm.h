/*
 * fsm: the raft state machine of a custos cluster, on the node's LMDB store.
 *
 * Every raft command entry is a 4-byte big-endian length and one serialized
 * custos.Batch padded with zeros to a multiple of 8 bytes (raft 0.15 reads its log back
 * assuming that).  Applying it is
 * one LMDB transaction that also records the entry's index
 * (cs_store_commit_indexed), and an entry at or below the recorded index is
 * skipped: raft replays its log after a restart, and the store must come out
 * the same.  A snapshot is the whole data database plus the applied index;
 * restoring one replaces the data database in one transaction (skipped when
 * the store is already at or past the snapshot's index).
 *
 * Snapshot format: "CSNAP001" | applied index u64 BE | length u64 BE |
 * custos.Batch of puts: the payload of server/core/snapshot.h, the same
 * serialization as `custos operator snapshot` files.
 */
#ifndef CS_FSM_H
#define CS_FSM_H

#include <raft.h>
#include "store.h"

/*
 * Fills `fsm` to apply to `store`.  `r` is the raft instance it will be
 * given to (the entry index is raft_last_applied(r) + 1 during apply).
 * The result of an apply (void *) is (intptr_t) the store's status: 0 or a
 * CS_E* code, identical on every node.
 */
void cs_fsm_init(struct raft_fsm *fsm, struct raft *r, cs_store *store);
/* Frees what cs_fsm_init allocated (after raft_close completed). */
void cs_fsm_close(struct raft_fsm *fsm);

/* Status of an applied entry from raft_apply's `result`. */
static inline int cs_fsm_result(void *result) { return (int)(intptr_t)result; }

/* For tests: serialize / restore without raft (buffers from raft_malloc). */
int cs_fsm_snapshot_encode(cs_store *store, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
int cs_fsm_snapshot_restore(cs_store *store, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

#endif
