/*
 * fsm: the raft state machine of a custos cluster, on the node's LMDB store.
 *
 * Every raft command entry is one group of batches (the commit queue's
 * batches of one loop turn), padded with zeros to a multiple of 8 bytes
 * (raft 0.15 reads its log back assuming that):
 *
 *   0xFFFFFFFF | count u32 BE | count x (length u32 BE | custos.Batch)
 *
 * (An older entry, a 4-byte big-endian length and ONE custos.Batch, is
 * still read: it is a group of one.)  Applying an entry is one LMDB
 * transaction that also records the entry's index
 * (cs_store_commit_group_indexed): each batch succeeds or fails alone, as
 * in standalone mode, and an entry at or below the recorded index is
 * skipped: raft replays its log after a restart, and the store must come
 * out the same.  A batch that does not decode fails alone too (CS_EPROTO).
 *
 * Durability: raft applies on the event loop, so the apply must never wait
 * for a disk.  Once the commit queue hands its groups to raft, the store
 * commits WITHOUT fsync (cs_store_set_sync; the commit queue's writer
 * thread flushes it in the background): an entry is applied only once
 * libraft has it durably in a majority's log, a process crash loses no
 * LMDB commit (the page cache holds them), and after an OS crash that lost
 * LMDB's unflushed commits raft replays every entry after the applied
 * index the store kept, in the same transaction as the data (or restores
 * a snapshot when its log no longer reaches back that far).
 *
 * A snapshot is the whole data database plus the applied index;
 * restoring one replaces the data database in one transaction (skipped when
 * the store is already at or past the snapshot's index).  Taking one opens
 * an LMDB read view on the loop and encodes it on a libuv worker (raft's
 * asynchronous snapshots, fsm version 3), so the loop does not stop for it;
 * it does when the io lacks async_work or the map has little room left
 * (fsm.c says why).
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
 * Runs during the apply of entry `index` with the result of each of its n
 * batches (on every node; the node that appended the entry hands them to
 * its submitters).  `status` is valid during the call only.
 */
typedef void (*cs_fsm_results_fn)(void *ctx, uint64_t index, const int *status, size_t n);

/*
 * Fills `fsm` to apply to `store`.  `r` is the raft instance it will be
 * given to (the entry index is raft_last_applied(r) + 1 during apply).
 * The result of an apply (void *) is (intptr_t) the entry's status: 0 when
 * its transaction committed (each batch's result went to `results`), or
 * the CS_E* code that failed all of it.
 */
void cs_fsm_init(struct raft_fsm *fsm, struct raft *r, cs_store *store, cs_fsm_results_fn results,
                 void *ctx);

/* Encodes n batches as one entry into out->base (raft_malloc'd) and
 * out->len.  0 or CS_ENOMEM / CS_ETOOBIG. */
int cs_fsm_entry_encode(const cs_batch *const *batches, size_t n, struct raft_buffer *out)
    __attribute__((warn_unused_result));
/*
 * Decodes an entry into *batches (malloc'd array of *n batches; free with
 * cs_fsm_entry_free).  A batch that does not decode is left empty with
 * CS_EPROTO in its (*status)[i] (malloc'd too).  CS_EPROTO for an entry
 * whose framing is broken (then nothing is allocated).
 */
int cs_fsm_entry_decode(const uint8_t *buf, size_t len, cs_batch **batches, int **status,
                        size_t *n) __attribute__((warn_unused_result));
void cs_fsm_entry_free(cs_batch *batches, int *status, size_t n);
/* An applied entry touching core/token/ or core/policy/, or a restored
 * snapshot, calls fn(ctx) (the owner bumps its auth generation, which
 * empties the caches: server/api/authz.h) instead of emptying the caches
 * itself (what it does with no fn, as in the unit tests). */
void cs_fsm_on_auth_change(struct raft_fsm *fsm, void (*fn)(void *ctx), void *ctx);
/* Snapshots every `threshold` entries (the value given to raft) or once the
 * entries applied since the last one hold `max_bytes` (0: no byte limit):
 * then the fsm lowers raft's threshold until the snapshot begins. */
void cs_fsm_set_snapshot_limits(struct raft_fsm *fsm, unsigned threshold, uint64_t max_bytes);
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
