/*
 * snapshot: the one serialized form of a whole store, and the snapshot file.
 *
 * Payload: every key of the data database with its value as stored (barrier
 * ciphertext; core/seal-config is the only plaintext record and holds no
 * secret), read in ONE LMDB read transaction, as a custos.Batch of puts.
 * The raft snapshots of a cluster (server/ha/fsm.c) carry the same payload.
 *
 * File (`custos operator snapshot save`, scheduled snapshots):
 *
 *   "CUSTOSSN" | version u32 BE | header length u32 BE | custos.SnapshotHeader
 *   | payload | SHA-256 of everything before | HMAC-SHA256 of everything before
 *
 * The SHA-256 lets anyone tell a corrupt or truncated file (inspect, no key
 * needed).  The HMAC key is HKDF-SHA256(root key, info "custos snapshot mac
 * v1"): only the installation that made a snapshot (or whoever holds its
 * shares) can check it, so a snapshot of another installation, or a file
 * whose header was edited and checksum recomputed, is told apart.
 *
 * Nothing here holds a plaintext secret but the root key passed in (wiped by
 * the caller) and, in verify, the combined key (wiped here).
 */
#ifndef CS_SNAPSHOT_H
#define CS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include "crypto.h"
#include "custos.pb-c.h"
#include "keyring.h"
#include "store.h"

#define CS_SNAPSHOT_MAGIC "CUSTOSSN"
#define CS_SNAPSHOT_VERSION 1
#define CS_SNAPSHOT_PREFIX 16                  /* magic, version, header length */
#define CS_SNAPSHOT_TRAILER 64                 /* SHA-256, HMAC */
#define CS_SNAPSHOT_HEADER_MAX (4u << 20)      /* a keyring of ~200k terms */

/*
 * The payload of `store`: *out (malloc'd) is a custos.Batch of a put per
 * key, from one read transaction; *entries counts them.  If `batch` is not
 * NULL it receives the collected batch too (clear it).
 */
int cs_snapshot_payload(cs_store *store, uint8_t **out, size_t *len, size_t *entries,
                        cs_batch *batch) __attribute__((warn_unused_result));
/* The same from a read view (any thread: see cs_store_view_begin). */
int cs_snapshot_payload_view(cs_store_view *view, uint8_t **out, size_t *len, size_t *entries,
                             cs_batch *batch) __attribute__((warn_unused_result));

/* What the header says besides what is read from the store. */
typedef struct cs_snapshot_info {
  const char *server_version;
  const char *node_id;      /* "" standalone */
  uint64_t raft_index, raft_term;
} cs_snapshot_info;

/*
 * Builds a snapshot file of `store` (one read transaction) into *out
 * (malloc'd).  root_key must open the store's core/keyring (the terms go in
 * the header) and keys the HMAC.  Errors: CS_ENOTINIT (no seal config),
 * CS_EAUTH/CS_ESTORECORRUPT (root key does not open the keyring), store
 * errors.
 */
int cs_snapshot_build(cs_store *store, const uint8_t root_key[CS_KEY_LEN],
                      const cs_snapshot_info *info, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));

/* A parsed file: views into the caller's buffer plus the unpacked header. */
typedef struct cs_snapshot {
  Custos__SnapshotHeader *hdr;
  const uint8_t *payload;
  size_t payload_len;
  const uint8_t *body;        /* what the checksum and MAC cover */
  size_t body_len;
  const uint8_t *mac;
} cs_snapshot;

/*
 * Parses and checks a file image: magic, version, exact lengths, header,
 * checksum, payload checksum.  Errors (with a detail saying what is wrong):
 * CS_ESNAPCORRUPT, CS_ESNAPVERSION.  Free with cs_snapshot_free.
 */
int cs_snapshot_parse(const uint8_t *buf, size_t len, cs_snapshot *out)
    __attribute__((warn_unused_result));
void cs_snapshot_free(cs_snapshot *s);

/* 0 when the HMAC verifies under root_key, else CS_ESNAPAUTH. */
int cs_snapshot_check_mac(const cs_snapshot *s, const uint8_t root_key[CS_KEY_LEN])
    __attribute__((warn_unused_result));

/* The payload as a batch that replaces the whole store (clear set). */
int cs_snapshot_batch(const cs_snapshot *s, cs_batch *b) __attribute__((warn_unused_result));
/* The value of `key` among the puts of b; NULL when absent. */
const cs_batch_op *cs_snapshot_find(const cs_batch *b, const char *key);

/*
 * Before a restore of this installation's snapshot (batch b, from
 * cs_snapshot_batch) onto a server whose live keyring is `live`: a term
 * `live` retired that the snapshot still holds the key of would come back
 * with it.  When no value of the snapshot is stored under any such term
 * (and none is its active term), b's core/keyring is rewritten, sealed
 * under root_key, with those terms retired as in `live`, and *kept says how
 * many: the restore brings no retired key back.  Otherwise the restore is
 * refused with CS_ETERMSTATE (the terms and the values under them in the
 * detail), unless allow_revive, and then *revived says how many keys come
 * back (the caller says so).  0 when nothing would be revived.
 */
int cs_snapshot_guard_retired(cs_batch *b, const uint8_t root_key[CS_KEY_LEN],
                              const cs_keyring *live, int allow_revive, size_t *kept,
                              size_t *revived) __attribute__((warn_unused_result));

/*
 * Offline verification with shares (n of them, each `share_len` bytes):
 * checks each share against the snapshot's key set, combines them, opens
 * the root key, checks the HMAC and opens the keyring.  On success
 * *terms is the number of keyring terms.  Errors: CS_ENOTMEMBER (a share is
 * not of the snapshot's key set, detail names it), CS_EBADSHARE,
 * CS_EKEYMISMATCH, CS_ESNAPAUTH, CS_ESNAPCORRUPT.
 */
int cs_snapshot_verify(const cs_snapshot *s, const uint8_t *const *shares, size_t n,
                       size_t share_len, size_t *terms) __attribute__((warn_unused_result));

/*
 * Every restore also writes CS_SNAPSHOT_MARKER (plaintext, no secret: an id
 * u64 big-endian and whether it was forced over another installation or
 * key set, u8), so that each node of a cluster, seeing its store replaced,
 * tells a forced restore (seal) from a raft catch-up snapshot (reload).
 * Reads it: 0 with *id 0 when absent, or a store error.
 */
#define CS_SNAPSHOT_MARKER "core/restore"
int cs_snapshot_marker_read(cs_store *store, uint64_t *id, int *forced)
    __attribute__((warn_unused_result));

#endif
