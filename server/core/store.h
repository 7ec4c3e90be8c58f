/*
 * store: the LMDB environment custosd keeps everything in.
 *
 * Keys are plaintext storage paths ("core/keyring", "kv/app/db"); values are
 * opaque bytes (barrier ciphertext, except core/seal-config).  Every change
 * goes through a batch: one batch is one LMDB write transaction, committed
 * durably (fsync) by default, so a batch is all-or-nothing across a crash.
 * In a cluster one batch becomes one raft entry; the index of the last
 * applied entry is kept in the same transaction (cs_store_commit_indexed).
 *
 * Threads: the env is opened with MDB_NOTLS.  Reads may run on any thread;
 * LMDB serializes write transactions, so keep writes on one thread.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_store cs_store;

#define CS_STORE_DEFAULT_MAPSIZE ((size_t)1 << 30) /* 1 GiB */
/* The longest storage key: LMDB's compiled-in MDB_MAXKEYSIZE (511 on
 * Debian; cs_store_open refuses an LMDB built with less).  Every name that
 * becomes part of a key is limited so that the whole key fits (kv paths:
 * CS_KV_PATH_MAX), and batches refuse longer keys when they are staged, so
 * a staged batch cannot fail on its keys when applied. */
#define CS_STORE_KEY_MAX 511

typedef struct cs_store_opts {
  size_t map_size;   /* 0: CS_STORE_DEFAULT_MAPSIZE */
  int no_sync;       /* 1: MDB_NOSYNC (tests/benchmarks only; loses commits on OS crash) */
} cs_store_opts;

/*
 * Opens (creating the directory's files if needed) the store in the
 * existing directory `dir`, holding an exclusive lock on <dir>/custos.lock
 * (which records this PID) until cs_store_close: every program that opens
 * a store goes through here, so no two processes ever open one.  Errors:
 * CS_EDATADIRBUSY (another process holds the lock; the detail names its
 * PID), CS_ESTORERDONLY, CS_ESTORECORRUPT, CS_EIO (also: a filesystem whose
 * locks do not exclude), each with a detail naming the directory.
 */
int cs_store_open(cs_store **out, const char *dir, const cs_store_opts *opts)
    __attribute__((warn_unused_result));
void cs_store_close(cs_store *s);

/* Copies the value at `key` into a fresh malloc'd buffer (*val, *len).
 * CS_ENOTFOUND when absent. */
int cs_store_get(cs_store *s, const char *key, uint8_t **val, size_t *len)
    __attribute__((warn_unused_result));
/* Calls fn(arg, val, len) with the value at `key` as it lies in the map,
 * without a copy: valid only during the call, and read-only.  fn's
 * result, or CS_ENOTFOUND when absent, or a store error. */
typedef int (*cs_store_read_fn)(void *arg, const uint8_t *val, size_t len);
int cs_store_read(cs_store *s, const char *key, cs_store_read_fn fn, void *arg)
    __attribute__((warn_unused_result));
/* 1 when key exists, 0 when not, negative on error. */
int cs_store_exists(cs_store *s, const char *key);

/*
 * Calls fn for every key starting with `prefix`, in key order, with the
 * value (valid only during the call).  The key is NUL-terminated.  fn returns 0 to go on, 1 to stop,
 * negative to abort with that code.
 */
typedef int (*cs_store_iter_fn)(void *arg, const char *key, size_t key_len,
                                const uint8_t *val, size_t val_len);
int cs_store_scan(cs_store *s, const char *prefix, cs_store_iter_fn fn, void *arg);

/*
 * A read view: the store as of the last commit when it began, while later
 * commits go on.  The environment is MDB_NOTLS, so a view may be handed to
 * another thread and used there (one thread at a time; hand it over through
 * something that orders memory, such as uv_queue_work).  LMDB cannot
 * reuse the pages a view still sees, so the file grows by what is written
 * while one is open (cs_store_view_room).  End every view before
 * cs_store_close.
 */
typedef struct cs_store_view cs_store_view;
int cs_store_view_begin(cs_store *s, cs_store_view **out) __attribute__((warn_unused_result));
/* The applied raft index as of the view (0: none recorded). */
int cs_store_view_applied_index(cs_store_view *v, uint64_t *index)
    __attribute__((warn_unused_result));
/* The bytes in the pages of the data as of the view, and the room left in
 * the map above the file's high-water mark: while a view is open, what
 * later commits free cannot be reused, so the file grows into that room. */
int cs_store_view_room(cs_store_view *v, size_t *data_bytes, size_t *room)
    __attribute__((warn_unused_result));
/* cs_store_scan inside the view. */
int cs_store_view_scan(cs_store_view *v, const char *prefix, cs_store_iter_fn fn, void *arg);
void cs_store_view_end(cs_store_view *v);

/* Like cs_store_scan over every key, starting AFTER `after` (exclusive;
 * "" starts at the first key). */
int cs_store_scan_after(cs_store *s, const char *after, cs_store_iter_fn fn, void *arg);

/*
 * Lists the next path segment of every key under `prefix` (which should end
 * in '/'), once each, in key order; a segment with keys below it ends in
 * '/'.  *names is a malloc'd array of malloc'd strings (cs_store_list_free).
 */
int cs_store_list(cs_store *s, const char *prefix, char ***names, size_t *n)
    __attribute__((warn_unused_result));
void cs_store_list_free(char **names, size_t n);

/* ---- batches ------------------------------------------------------------ */

#define CS_STORE_DIGEST_LEN 32

typedef struct cs_batch_op {
  char *key;
  uint8_t *val;      /* NULL for a delete */
  size_t val_len;
  int del;
  int if_exists;     /* a put applied only if the key exists at commit time */
  int create;        /* put only if absent: else the batch fails with CS_EEXISTS */
  int if_digest;     /* a put applied only if the stored value has `digest` */
  int check;         /* no write: the batch fails (CS_ECHANGED) unless `key` holds
                        a value with `digest` (check_absent: holds nothing) */
  int check_absent;
  uint8_t digest[CS_STORE_DIGEST_LEN];
} cs_batch_op;

typedef struct cs_batch {
  cs_batch_op *ops;
  size_t n, cap;
  int clear;         /* delete every key before the ops (snapshot restore), same transaction */
  /* Nonzero: the batch fails with CS_ETERMINUSE, changing nothing, unless
   * no stored value is under this term once its ops are applied (retiring
   * a term, decided in the transaction that retires it). */
  uint32_t require_empty_term;
} cs_batch;

void cs_batch_init(cs_batch *b);
/* Copies key and value.  0, CS_EINVAL (empty key or one longer than
 * CS_STORE_KEY_MAX, with a detail; b unchanged) or CS_ENOMEM. */
int cs_batch_put(cs_batch *b, const char *key, const uint8_t *val, size_t len)
    __attribute__((warn_unused_result));
int cs_batch_del(cs_batch *b, const char *key) __attribute__((warn_unused_result));
/*
 * A conditional put: applied only if `key` exists in the transaction that
 * commits it (so after every op queued before it, in this batch or in the
 * group it is committed with), and silently skipped otherwise.  This is how
 * a read-modify-write of an entry (a token renew) is decided against the
 * state it commits on rather than the state it read: a delete queued before
 * it wins.  Deterministic, so every cluster member skips it alike.
 */
int cs_batch_put_if_exists(cs_batch *b, const char *key, const uint8_t *val, size_t len)
    __attribute__((warn_unused_result));
/* A put that must create the key: when `key` already exists at commit
 * time, the whole batch fails with CS_EEXISTS and nothing is written (on
 * every node alike in a cluster: the flag travels in the raft entry). */
int cs_batch_put_new(cs_batch *b, const char *key, const uint8_t *val, size_t len)
    __attribute__((warn_unused_result));
/*
 * A put applied only if `key` exists at commit time and its stored value
 * has SHA-256 `digest` (cs_store_digest of the value read), else silently
 * skipped: a rewrap's re-encryption never overwrites a write that happened
 * after the value was read, nor brings back a deleted key.  Deterministic,
 * so every cluster member decides alike.
 */
int cs_batch_put_if_digest(cs_batch *b, const char *key, const uint8_t *val, size_t len,
                           const uint8_t digest[CS_STORE_DIGEST_LEN])
    __attribute__((warn_unused_result));
/*
 * A precondition, no write: the whole batch fails with CS_ECHANGED,
 * changing nothing, unless at commit time (after every op queued before
 * it) `key` holds a value with SHA-256 `digest`, or, with digest NULL,
 * holds nothing.  This is how a read-modify-write of a record (a versioned
 * secret's metadata, kv2.h) is decided against the state it commits on:
 * the caller reads, builds, and on CS_ECHANGED reads again and rebuilds.
 * Deterministic, so every cluster member decides alike.
 */
int cs_batch_check(cs_batch *b, const char *key, const uint8_t digest[CS_STORE_DIGEST_LEN])
    __attribute__((warn_unused_result));
/* The digest cs_batch_put_if_digest compares with. */
void cs_store_digest(const uint8_t *val, size_t len, uint8_t out[CS_STORE_DIGEST_LEN]);
/* Appends every op of src to dst (copies).  Used by group commit.  When src
 * clears the store, what dst held so far is dropped and dst clears too: the
 * same end state as applying the two in sequence. */
int cs_batch_append(cs_batch *dst, const cs_batch *src) __attribute__((warn_unused_result));
/* Wipes values (they may be key material) and frees; leaves b empty. */
void cs_batch_clear(cs_batch *b);

/* Serializes a batch as a protobuf custos.Batch (for raft entries). */
int cs_batch_encode(const cs_batch *b, uint8_t **out, size_t *len) __attribute__((warn_unused_result));
int cs_batch_decode(const uint8_t *buf, size_t len, cs_batch *b) __attribute__((warn_unused_result));

/*
 * Applies every op of `b` in ONE write transaction and commits it (fsync
 * unless no_sync).  Deleting an absent key is not an error, nor is a
 * conditional put of an absent key (it is skipped).  On failure nothing is
 * changed.  Errors: CS_ESTOREFULL (map full), CS_EDISKFULL (the filesystem
 * is full), CS_EEXISTS (a create op's key exists), CS_ESTORERDONLY, CS_EIO.
 */
int cs_store_commit(cs_store *s, const cs_batch *b) __attribute__((warn_unused_result));
/* Same, also recording `index` as the last applied raft index, and
 * skipping the batch (returning 0) when index <= the recorded one. */
int cs_store_commit_indexed(cs_store *s, const cs_batch *b, uint64_t index)
    __attribute__((warn_unused_result));
/* Counts the committed batches that cleared the store (restores) since it
 * was opened: a node notices that a snapshot replaced its contents. */
uint64_t cs_store_restores(cs_store *s);
/*
 * Group commit, the one retry policy of both back ends (the standalone
 * writer thread and every cluster node's state machine): the n batches are
 * applied in order in ONE write transaction (one fsync).  If one of them
 * fails (say it does not fit in the map), the transaction is redone with
 * each batch in its own nested transaction: a batch that fails is left out
 * with its error in status[i], the others commit together.  So one bad
 * batch never fails its neighbours, and the result per batch is the same
 * as committing them one by one.  Returns 0 when the transaction committed
 * (then status[i] is each batch's result), or the error that failed the
 * whole transaction (then every status[i] is that error).
 */
int cs_store_commit_group(cs_store *s, const cs_batch *const *batches, size_t n, int *status)
    __attribute__((warn_unused_result));
/* Same, recording `index` as the last applied raft index in the same
 * transaction; an index at or below the recorded one is skipped (0, every
 * status 0). */
int cs_store_commit_group_indexed(cs_store *s, const cs_batch *const *batches, size_t n,
                                  int *status, uint64_t index) __attribute__((warn_unused_result));
/*
 * The number of stored values under each key term, as maintained in every
 * write transaction (termcount.h; c is initialized here, free it with
 * cs_termcounts_free).  Always equal to cs_termcount_scan.
 */
struct cs_termcounts;
int cs_store_term_counts(cs_store *s, struct cs_termcounts *c) __attribute__((warn_unused_result));
/*
 * Both at once, from ONE read transaction: the maintained counts (*kept)
 * and a full scan of every value's term header (*scanned, the rule of
 * cs_termcount_scan), so concurrent writes cannot make them differ.  What
 * `key-status --verify` reports.  Both initialized here (free both).
 */
int cs_store_term_counts_verify(cs_store *s, struct cs_termcounts *kept,
                                struct cs_termcounts *scanned) __attribute__((warn_unused_result));
/* Last applied raft index (0 when none). */
uint64_t cs_store_applied_index(cs_store *s);

/*
 * Small bookkeeping records of the "meta" database, next to applied_index
 * (e.g. "raft_log_id", see server/ha/logid.c).  get copies at most cap
 * bytes and sets *len to the record's length; CS_ENOTFOUND when absent.
 * put is one durable transaction (flushed even with sync turned off).
 */
int cs_store_meta_get(cs_store *s, const char *name, uint8_t *buf, size_t cap, size_t *len)
    __attribute__((warn_unused_result));
int cs_store_meta_put(cs_store *s, const char *name, const uint8_t *val, size_t len)
    __attribute__((warn_unused_result));
/*
 * Turns fsync at commit on (1) or off (0: MDB_NOSYNC, which survives a
 * process crash but may lose the last commits on an OS crash).  A cluster
 * turns it off once raft's log, which libraft fsyncs, is the durable
 * record (server/commit/commitq.c).  Call it while no write transaction is
 * open (LMDB reads the flag at commit).  0 or CS_EIO.
 */
int cs_store_set_sync(cs_store *s, int sync) __attribute__((warn_unused_result));
/* Flushes every commit so far to disk (mdb_env_sync; any thread). */
int cs_store_sync(cs_store *s) __attribute__((warn_unused_result));
/* 1 when the data database holds no key, 0 when it holds some, or an error. */
int cs_store_is_empty(cs_store *s);
/* The store's directory (as given to cs_store_open). */
const char *cs_store_dir(const cs_store *s);
/* The map size: the largest the data file may grow (storage.map_size_mb). */
size_t cs_store_map_size(const cs_store *s);

/* Statistics for benchmarks: number of entries and bytes used by the map. */
int cs_store_stat(cs_store *s, size_t *entries, size_t *used_bytes);
/* Compact copy into an existing empty directory (backups). */
int cs_store_backup(cs_store *s, const char *dir) __attribute__((warn_unused_result));

#endif
