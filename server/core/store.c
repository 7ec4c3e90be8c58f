/*
 * store: the LMDB environment custosd keeps everything in (see store.h).
 *
 * Layout: two named databases in one environment.  "data" holds the
 * storage paths and their values; "meta" holds bookkeeping, today only
 * "applied_index" (8 bytes, big-endian), the last raft index applied, and
 * "term_counts", the number of values under each key term (termcount.h),
 * updated in the transaction of every batch that changes a value.
 * Data does NOT live in LMDB's unnamed database because named databases are
 * themselves records of the unnamed one: a data key "meta" would collide
 * with the sub-database (MDB_INCOMPATIBLE) and a scan would list it.
 *
 * Invariants:
 *  - One batch is one write transaction.  Every op of a batch is applied or
 *    none is: any error aborts the transaction, and a process crash before
 *    mdb_txn_commit returns leaves the previous state (LMDB is copy-on-write
 *    and flips a meta page last).
 *  - Durability: commits fsync unless opts->no_sync (MDB_NOSYNC), which
 *    survives a process crash but may lose the last commits on an OS crash.
 *  - applied_index is written in the same transaction as the batch it
 *    belongs to, so a replayed raft entry is recognised and skipped.
 *  - term_counts always equals a full scan (cs_termcount_scan): it changes
 *    only in apply_ops, in the transaction of the values it counts, and is
 *    recounted at open (a store last written by an older custosd).
 *  - Threads: MDB_NOTLS, so read transactions are not tied to a thread and
 *    one thread may hold several.  Reads use short read-only transactions
 *    and may run on any thread.  LMDB serializes writers (a second one
 *    blocks), so all commits should come from one thread.
 *  - Foreign error codes (errno, MDB_*) are translated here and nowhere
 *    else, with a detail naming the directory.
 */
#include "bytes.h"
#include "store.h"
#include "stats.h"
#include "termcount.h"

#include "crypto.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "log.h"
#include "secmem.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define META_APPLIED_INDEX "applied_index"
#define META_TERM_COUNTS "term_counts"     /* see termcount.h */
/* Sizes the scan key buffer; keys longer than CS_STORE_KEY_MAX never get in. */
#define KEYBUF_MAX CS_STORE_KEY_MAX

struct cs_store {
  MDB_env *env;
  MDB_dbi data;
  MDB_dbi meta;
  size_t map_size;
  size_t max_key;
  char *dir;
  int lock_fd;    /* <dir>/custos.lock, flock'ed LOCK_EX for the store's life */
  int sync_off;   /* cs_store_set_sync(s, 0): data commits without fsync */
  int full;       /* the last commit failed for lack of space (writer thread only) */
  _Atomic uint64_t restores;   /* committed clear batches (written by the writer thread) */
};

/* ---- error translation -------------------------------------------------- */

/* 1 when the filesystem of `dir` has (next to) no space left for us. */
static int disk_is_full(const char *dir) {
  struct statvfs v;
  if (statvfs(dir, &v) != 0)
    return 0;
  return (unsigned long long)v.f_bavail * v.f_frsize < (1u << 20); /* < 1 MiB */
}

/*
 * Translates an errno or MDB_* code from operation `op` on the store in
 * `dir` into a CS_E* code, recording a detail.  The only place that knows
 * LMDB's codes.
 */
static int store_error(int rc, const char *dir, const char *op) {
  const char *why = mdb_strerror(rc);
  switch (rc) {
  case MDB_MAP_FULL:
    return cs_error_set(CS_ESTOREFULL, "storage in %s is full (map size reached) during %s", dir, op);
  case MDB_TXN_FULL:
    return cs_error_set(CS_ESTOREFULL, "storage in %s: batch too large for one transaction", dir);
  case ENOSPC:
  case EDQUOT:
    return cs_error_set(CS_EDISKFULL, "disk full: no space left for storage in %s (%s during %s)",
                        dir, why, op);
  case EACCES:
  case EPERM:
  case EROFS:
    return cs_error_set(CS_ESTORERDONLY, "storage directory %s is read-only (%s during %s)", dir, why, op);
  case MDB_INVALID:
  case MDB_CORRUPTED:
  case MDB_VERSION_MISMATCH:
  case MDB_PAGE_NOTFOUND:
  case MDB_INCOMPATIBLE:
    return cs_error_set(CS_ESTORECORRUPT, "storage in %s is corrupt: %s (during %s)", dir, why, op);
  case ENOENT:
    return cs_error_set(CS_EIO, "storage directory %s does not exist", dir);
  case ENOMEM:
    return cs_error_set(CS_ENOMEM, "out of memory during %s in %s", op, dir);
  case MDB_BAD_VALSIZE:
    return cs_error_set(CS_EINVAL, "storage in %s: key or value size not accepted during %s", dir, op);
  case EIO:
    /* LMDB reports a short write (what a full filesystem gives it) as EIO:
     * tell that apart by the space left. */
    if (disk_is_full(dir))
      return cs_error_set(CS_EDISKFULL,
                          "disk full: no space left for storage in %s (short write during %s)",
                          dir, op);
    return cs_error_set(CS_EIO, "storage in %s: %s during %s", dir, why, op);
  default:
    return cs_error_set(CS_EIO, "storage in %s: %s during %s", dir, why, op);
  }
}

/* CS_EINVAL when a key of `len` bytes cannot be a storage key. */
static int check_key_len(size_t len) {
  if (len == 0)
    return cs_error_set(CS_EINVAL, "empty storage key");
  if (len > CS_STORE_KEY_MAX)
    return cs_error_set(CS_EINVAL, "storage key of %zu bytes exceeds the maximum of %d", len,
                        CS_STORE_KEY_MAX);
  return 0;
}

static int check_key(const cs_store *s, const char *key, size_t len) {
  (void)s;
  return check_key_len(len);
}

/* ---- open / close ------------------------------------------------------- */

static int recount(cs_store *s);
static int scan(cs_store *s, const char *prefix, const char *after, cs_store_iter_fn fn, void *arg);

/* A clean message before LMDB turns a missing or read-only directory into
 * a bare errno. */
static int check_dir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno == ENOENT)
      return cs_error_set(CS_EIO, "storage directory %s does not exist", dir);
    return store_error(errno, dir, "stat");
  }
  if (!S_ISDIR(st.st_mode))
    return cs_error_set(CS_EIO, "storage path %s is not a directory", dir);
  if (access(dir, W_OK | X_OK) != 0) {
    if (errno == EACCES || errno == EROFS || errno == EPERM)
      return cs_error_set(CS_ESTORERDONLY, "storage directory %s is read-only", dir);
    return store_error(errno, dir, "access");
  }
  return 0;
}

/*
 * The directory lock.  LMDB itself lets any number of processes open one
 * environment, so two custosd on one directory both started, and the one
 * holding an older keyring wrote it back over a rotation ("no key for term
 * N", for good).  Whoever opens the store takes an exclusive flock on
 * <dir>/custos.lock for as long as it is open (the kernel drops it when the
 * process dies, even by kill -9) and writes its PID there, so that a second
 * opener is refused with the holder's PID.  The raft log lives in
 * <dir>/raft: the same lock covers it.
 *
 * A lock that does not exclude is worse than none (some network and FUSE
 * filesystems accept flock and enforce nothing): after taking it, a second
 * open file description must be refused the same lock, or the directory is
 * refused.
 */
#define LOCK_NAME "custos.lock"

static int lock_refused(const char *dir, const char *what, int err) {
  return cs_error_set(CS_EIO,
                      "storage directory %s: file locks do not work on its filesystem (%s%s%s); "
                      "custosd needs a local filesystem (ext4, xfs, tmpfs) so that two "
                      "processes can never open one store",
                      dir, what, err ? ": " : "", err ? strerror(err) : "");
}

/* The PID recorded by the holder of the lock at `path` (0 when unreadable). */
static long lock_holder(const char *path) {
  FILE *f = fopen(path, "re");
  long pid = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld", &pid) != 1)
      pid = 0;
    fclose(f);
  }
  return pid;
}

static int take_lock(const char *dir, int *out_fd) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/" LOCK_NAME, dir) >= (int)sizeof path)
    return cs_error_set(CS_EINVAL, "storage directory path too long");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return store_error(errno, dir, "opening " LOCK_NAME);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      long pid = lock_holder(path);
      if (pid > 0)
        return cs_error_set(CS_EDATADIRBUSY,
                            "storage directory %s is in use by another process (pid %ld holds "
                            "%s): stop it first; two servers on one store corrupt it",
                            dir, pid, path);
      return cs_error_set(CS_EDATADIRBUSY,
                          "storage directory %s is in use by another process (it holds %s)", dir,
                          path);
    }
    return lock_refused(dir, "flock", err);
  }
  /* Does the lock exclude?  A second open file description must not get it. */
  int probe = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (probe < 0) {
    int err = errno;
    close(fd);
    return store_error(err, dir, "opening " LOCK_NAME);
  }
  int excluded = flock(probe, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(probe); /* also drops probe's lock if the filesystem granted one */
  if (!excluded) {
    close(fd);
    return lock_refused(dir, "a second lock on " LOCK_NAME " was granted", 0);
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    int err = errno;
    close(fd);
    return store_error(err, dir, "writing " LOCK_NAME);
  }
  *out_fd = fd;
  return 0;
}

int cs_store_open(cs_store **out, const char *dir, const cs_store_opts *opts) {
  assert(out != NULL && dir != NULL);
  *out = NULL;
  size_t map_size = (opts && opts->map_size) ? opts->map_size : CS_STORE_DEFAULT_MAPSIZE;
  unsigned flags = MDB_NOTLS | ((opts && opts->no_sync) ? MDB_NOSYNC : 0);
  MDB_txn *txn = NULL;
  int rc;

  if ((rc = check_dir(dir)) != 0)
    return rc;
  int lock_fd;
  if ((rc = take_lock(dir, &lock_fd)) != 0)
    return rc;

  cs_store *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(lock_fd);
    return cs_error_set(CS_ENOMEM, "out of memory opening storage in %s", dir);
  }
  s->lock_fd = lock_fd;
  s->dir = strdup(dir);
  if (s->dir == NULL) {
    rc = cs_error_set(CS_ENOMEM, "out of memory opening storage in %s", dir);
    goto fail_dir;
  }
  s->map_size = map_size;

  if ((rc = mdb_env_create(&s->env)) != 0) {
    rc = store_error(rc, dir, "mdb_env_create");
    goto fail_env;
  }
  if ((rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
      (rc = mdb_env_set_maxreaders(s->env, 1024)) != 0 ||
      (rc = mdb_env_set_maxdbs(s->env, 4)) != 0) {
    rc = store_error(rc, dir, "environment setup");
    goto fail_open;
  }
  /* 0600: values are ciphertext, but nobody else has any business here. */
  if ((rc = mdb_env_open(s->env, dir, flags, 0600)) != 0) {
    rc = store_error(rc, dir, "open");
    goto fail_open;
  }
  /* Reader slots of a process killed mid-read would pin old pages and make
   * the file grow; drop them (the count is of no interest). */
  int dead;
  (void)mdb_reader_check(s->env, &dead);
  s->max_key = (size_t)mdb_env_get_maxkeysize(s->env);
  if (s->max_key < CS_STORE_KEY_MAX) {
    /* Staged batches are checked against CS_STORE_KEY_MAX: with a smaller
     * LMDB limit a batch could pass staging and fail to apply. */
    rc = cs_error_set(CS_ESTORECORRUPT, "LMDB accepts keys of at most %zu bytes; custos needs %d",
                      s->max_key, CS_STORE_KEY_MAX);
    goto fail_open;
  }
  s->max_key = CS_STORE_KEY_MAX;

  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
    rc = store_error(rc, dir, "open (begin)");
    goto fail_open;
  }
  if ((rc = mdb_dbi_open(txn, "data", MDB_CREATE, &s->data)) != 0 ||
      (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0) {
    mdb_txn_abort(txn);
    rc = store_error(rc, dir, "open (databases)");
    goto fail_open;
  }
  if ((rc = mdb_txn_commit(txn)) != 0) {
    rc = store_error(rc, dir, "open (commit)");
    goto fail_open;
  }
  if ((rc = recount(s)) != 0)
    goto fail_open;
  *out = s;
  return 0;

fail_open:
  mdb_env_close(s->env); /* allowed after a failed mdb_env_open */
fail_env:
  free(s->dir);
fail_dir:
  close(s->lock_fd);
  free(s);
  return rc;
}

void cs_store_close(cs_store *s) {
  if (s == NULL)
    return;
  mdb_env_close(s->env);
  close(s->lock_fd); /* releases the directory lock, last */
  free(s->dir);
  free(s);
}

/* ---- reads -------------------------------------------------------------- */

static int begin_read(cs_store *s, MDB_txn **txn) {
  int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
  return rc ? store_error(rc, s->dir, "read transaction") : 0;
}

/* Looks `key` up in a fresh read transaction, left open in *txn (abort it
 * after using *v, which points into the map).  0, CS_ENOTFOUND (no txn
 * left open) or an error. */
static int lookup(cs_store *s, const char *key, const char *what, MDB_txn **txn, MDB_val *v) {
  size_t klen = strlen(key);
  int rc = check_key(s, key, klen);
  if (rc)
    return rc;
  if ((rc = begin_read(s, txn)) != 0)
    return rc;
  MDB_val k = {klen, (void *)key};
  rc = mdb_get(*txn, s->data, &k, v);
  if (rc == 0)
    return 0;
  mdb_txn_abort(*txn);
  return rc == MDB_NOTFOUND ? CS_ENOTFOUND : store_error(rc, s->dir, what);
}

int cs_store_get(cs_store *s, const char *key, uint8_t **val, size_t *len) {
  assert(s && key && val && len);
  *val = NULL;
  *len = 0;
  MDB_txn *txn;
  MDB_val v;
  int rc = lookup(s, key, "get", &txn, &v);
  if (rc)
    return rc;
  /* malloc(0) may return NULL; an empty value is still a value. */
  uint8_t *copy = malloc(v.mv_size ? v.mv_size : 1);
  if (copy == NULL) {
    rc = cs_error_set(CS_ENOMEM, "out of memory reading a %zu-byte value", v.mv_size);
  } else {
    memcpy(copy, v.mv_data, v.mv_size);
    *val = copy;
    *len = v.mv_size;
  }
  mdb_txn_abort(txn);
  return rc;
}

int cs_store_read(cs_store *s, const char *key, cs_store_read_fn fn, void *arg) {
  assert(s && key && fn);
  MDB_txn *txn;
  MDB_val v;
  int rc = lookup(s, key, "get", &txn, &v);
  if (rc)
    return rc;
  rc = fn(arg, v.mv_data, v.mv_size);
  mdb_txn_abort(txn);
  return rc;
}

int cs_store_exists(cs_store *s, const char *key) {
  assert(s && key);
  MDB_txn *txn;
  MDB_val v;
  int rc = lookup(s, key, "exists", &txn, &v);
  if (rc == CS_ENOTFOUND)
    return 0;
  if (rc)
    return rc;
  mdb_txn_abort(txn);
  return 1;
}

/*
 * The key handed to fn is a NUL-terminated copy (so it can be used as a C
 * string) and key_len is its length; both are valid only during the call,
 * like the value, which points into the map.  Returns 0 when the scan ran
 * to the end or fn returned 1, fn's negative code when it aborted, or a
 * store error.
 */
int cs_store_scan(cs_store *s, const char *prefix, cs_store_iter_fn fn, void *arg) {
  assert(s && prefix && fn);
  return scan(s, prefix, NULL, fn, arg);
}

int cs_store_scan_after(cs_store *s, const char *after, cs_store_iter_fn fn, void *arg) {
  assert(s && after && fn);
  if (strlen(after) > s->max_key)
    return cs_error_set(CS_EINVAL, "scan start of %zu bytes is longer than any key", strlen(after));
  return scan(s, "", after[0] ? after : NULL, fn, arg);
}

static int scan_in(cs_store *s, MDB_txn *txn, const char *prefix, const char *after,
                   cs_store_iter_fn fn, void *arg);

/* Keys starting with prefix, or (prefix "") every key after `after`. */
static int scan(cs_store *s, const char *prefix, const char *after, cs_store_iter_fn fn, void *arg) {
  if (strlen(prefix) > s->max_key)
    return 0; /* no key can be that long */
  MDB_txn *txn;
  int rc = begin_read(s, &txn);
  if (rc)
    return rc;
  rc = scan_in(s, txn, prefix, after, fn, arg);
  mdb_txn_abort(txn);
  return rc;
}

/* The same inside an open read transaction (left open). */
static int scan_in(cs_store *s, MDB_txn *txn, const char *prefix, const char *after,
                   cs_store_iter_fn fn, void *arg) {
  size_t plen = strlen(prefix);
  MDB_cursor *cur;
  int rc;
  if ((rc = mdb_cursor_open(txn, s->data, &cur)) != 0)
    return store_error(rc, s->dir, "scan");
  char kbuf[KEYBUF_MAX + 1];
  MDB_val k = {plen, (void *)prefix}, v;
  if (after != NULL) {
    size_t alen = strlen(after);
    k.mv_size = alen;
    k.mv_data = (void *)after;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* exclusive */
  } else {
    rc = plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  }
  while (rc == 0) {
    if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
      break;
    if (k.mv_size > KEYBUF_MAX) {
      rc = cs_error_set(CS_ESTORECORRUPT, "storage in %s is corrupt: key of %zu bytes", s->dir,
                        k.mv_size);
      goto out;
    }
    memcpy(kbuf, k.mv_data, k.mv_size);
    kbuf[k.mv_size] = '\0';
    int r = fn(arg, kbuf, k.mv_size, v.mv_data, v.mv_size);
    if (r < 0) {
      rc = r;
      goto out;
    }
    if (r > 0)
      break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (rc == MDB_NOTFOUND || rc == 0)
    rc = 0;
  else
    rc = store_error(rc, s->dir, "scan");
out:
  mdb_cursor_close(cur);
  return rc;
}

typedef struct list_acc {
  size_t skip;          /* bytes of the prefix */
  char **names;
  size_t n, cap;
} list_acc;

static int list_one(void *arg, const char *key, size_t key_len, const uint8_t *val, size_t vlen) {
  list_acc *a = arg;
  const char *rest = key + a->skip;
  size_t rlen = key_len - a->skip;
  const char *slash = memchr(rest, '/', rlen);
  size_t elen = slash ? (size_t)(slash - rest) + 1 : rlen;
  /* Keys arrive in order, so a folder's entries are adjacent: compare with
   * the last one only. */
  if (a->n > 0 && strlen(a->names[a->n - 1]) == elen && memcmp(a->names[a->n - 1], rest, elen) == 0)
    return 0;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    char **k = realloc(a->names, cap * sizeof *k);
    if (k == NULL)
      return CS_ENOMEM;
    a->names = k;
    a->cap = cap;
  }
  if ((a->names[a->n] = strndup(rest, elen)) == NULL)
    return CS_ENOMEM;
  a->n++;
  return 0;
}

int cs_store_list(cs_store *s, const char *prefix, char ***names, size_t *n) {
  list_acc a = {.skip = strlen(prefix)};
  int rc = cs_store_scan(s, prefix, list_one, &a);
  if (rc < 0) {
    cs_store_list_free(a.names, a.n);
    return rc;
  }
  *names = a.names;
  *n = a.n;
  return 0;
}

void cs_store_list_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* ---- batches ------------------------------------------------------------ */

void cs_batch_init(cs_batch *b) {
  assert(b);
  b->ops = NULL;
  b->n = b->cap = 0;
  b->clear = 0;
  b->require_empty_term = 0;
}

/* Room for `extra` more ops.  0 or CS_ENOMEM. */
static int batch_reserve(cs_batch *b, size_t extra) {
  if (extra <= b->cap - b->n)
    return 0;
  if (extra > SIZE_MAX / sizeof(cs_batch_op) - b->n)
    return cs_error_set(CS_ENOMEM, "batch too large");
  size_t need = b->n + extra;
  size_t cap = b->cap ? b->cap : 8;
  while (cap < need)
    cap = cap > SIZE_MAX / sizeof(cs_batch_op) / 2 ? need : cap * 2;
  cs_batch_op *ops = realloc(b->ops, cap * sizeof *ops);
  if (ops == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory growing a batch to %zu ops", cap);
  b->ops = ops;
  b->cap = cap;
  return 0;
}

static void op_free(cs_batch_op *op) {
  if (op->val) {
    mbedtls_platform_zeroize(op->val, op->val_len);
    free(op->val);
  }
  free(op->key);
  memset(op, 0, sizeof *op);
}

/* Fills b->ops[b->n] with copies and bumps n.  Capacity must be reserved. */
static int op_push(cs_batch *b, const char *key, size_t klen, const uint8_t *val, size_t len,
                   int del, int if_exists, int create, const uint8_t *digest, int check) {
  cs_batch_op *op = &b->ops[b->n];
  memset(op, 0, sizeof *op);
  op->key = malloc(klen + 1);
  if (op->key == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory copying a batch key");
  memcpy(op->key, key, klen);
  op->key[klen] = '\0';
  if (check) {
    /* A precondition: no value, no other flag. */
    op->check = 1;
    op->check_absent = digest == NULL;
    if (digest != NULL)
      memcpy(op->digest, digest, CS_STORE_DIGEST_LEN);
    b->n++;
    return 0;
  }
  if (!del) {
    /* A put always has a non-NULL val, even when empty. */
    op->val = malloc(len ? len : 1);
    if (op->val == NULL) {
      free(op->key);
      op->key = NULL;
      return cs_error_set(CS_ENOMEM, "out of memory copying a %zu-byte value", len);
    }
    if (len)
      memcpy(op->val, val, len);
    op->val_len = len;
  }
  op->del = del;
  op->if_exists = !del && if_exists;
  op->create = !del && create;
  if (!del && digest != NULL) {
    op->if_digest = 1;
    memcpy(op->digest, digest, CS_STORE_DIGEST_LEN);
  }
  b->n++;
  return 0;
}

int cs_batch_put(cs_batch *b, const char *key, const uint8_t *val, size_t len) {
  assert(b && key && (val || len == 0));
  size_t klen = strlen(key);
  int rc = check_key_len(klen);
  if (rc == 0)
    rc = batch_reserve(b, 1);
  return rc ? rc : op_push(b, key, klen, val, len, 0, 0, 0, NULL, 0);
}

int cs_batch_put_if_exists(cs_batch *b, const char *key, const uint8_t *val, size_t len) {
  assert(b && key && (val || len == 0));
  size_t klen = strlen(key);
  int rc = check_key_len(klen);
  if (rc == 0)
    rc = batch_reserve(b, 1);
  return rc ? rc : op_push(b, key, klen, val, len, 0, 1, 0, NULL, 0);
}

int cs_batch_put_new(cs_batch *b, const char *key, const uint8_t *val, size_t len) {
  assert(b && key && (val || len == 0));
  size_t klen = strlen(key);
  int rc = check_key_len(klen);
  if (rc == 0)
    rc = batch_reserve(b, 1);
  return rc ? rc : op_push(b, key, klen, val, len, 0, 0, 1, NULL, 0);
}

int cs_batch_put_if_digest(cs_batch *b, const char *key, const uint8_t *val, size_t len,
                           const uint8_t digest[CS_STORE_DIGEST_LEN]) {
  assert(b && key && (val || len == 0) && digest);
  size_t klen = strlen(key);
  int rc = check_key_len(klen);
  if (rc == 0)
    rc = batch_reserve(b, 1);
  return rc ? rc : op_push(b, key, klen, val, len, 0, 0, 0, digest, 0);
}

int cs_batch_check(cs_batch *b, const char *key, const uint8_t digest[CS_STORE_DIGEST_LEN]) {
  assert(b && key);
  size_t klen = strlen(key);
  int rc = check_key_len(klen);
  if (rc == 0)
    rc = batch_reserve(b, 1);
  return rc ? rc : op_push(b, key, klen, NULL, 0, 0, 0, 0, digest, 1);
}

void cs_store_digest(const uint8_t *val, size_t len, uint8_t out[CS_STORE_DIGEST_LEN]) {
  cs_sha256(val, len, out);
}

int cs_batch_del(cs_batch *b, const char *key) {
  assert(b && key);
  size_t klen = strlen(key);
  int rc = check_key_len(klen);
  if (rc == 0)
    rc = batch_reserve(b, 1);
  return rc ? rc : op_push(b, key, klen, NULL, 0, 1, 0, 0, NULL, 0);
}

/* All or nothing: on CS_ENOMEM dst is left as it was. */
int cs_batch_append(cs_batch *dst, const cs_batch *src) {
  assert(dst && src && dst != src);
  if (src->require_empty_term && dst->require_empty_term &&
      src->require_empty_term != dst->require_empty_term)
    return cs_error_set(CS_EINVAL, "batches requiring different empty terms cannot be merged");
  int rc = batch_reserve(dst, src->n);
  if (rc)
    return rc;
  if (src->clear) {
    /* Everything before a clear is erased by it anyway. */
    while (dst->n > 0)
      op_free(&dst->ops[--dst->n]);
    dst->clear = 1;
  }
  size_t n0 = dst->n;
  for (size_t i = 0; i < src->n; i++) {
    const cs_batch_op *op = &src->ops[i];
    const uint8_t *dg = op->check ? (op->check_absent ? NULL : op->digest)
                                  : (op->if_digest ? op->digest : NULL);
    if ((rc = op_push(dst, op->key, strlen(op->key), op->val, op->val_len, op->del,
                      op->if_exists, op->create, dg, op->check)) != 0) {
      while (dst->n > n0)
        op_free(&dst->ops[--dst->n]);
      return rc;
    }
  }
  if (src->require_empty_term)
    dst->require_empty_term = src->require_empty_term;
  return 0;
}

void cs_batch_clear(cs_batch *b) {
  assert(b);
  for (size_t i = 0; i < b->n; i++)
    op_free(&b->ops[i]);
  free(b->ops);
  cs_batch_init(b);
}

/*
 * The output (malloc'd, caller frees) contains the values in clear: wipe it
 * (mbedtls_platform_zeroize / cs_wipe) before freeing when they are secret.
 * An empty batch encodes to zero bytes (*out is still a valid allocation).
 */
int cs_batch_encode(const cs_batch *b, uint8_t **out, size_t *len) {
  assert(b && out && len);
  *out = NULL;
  *len = 0;
  Custos__Batch msg = CUSTOS__BATCH__INIT;
  Custos__BatchOp *ops = NULL, **ptrs = NULL;
  int rc = 0;
  if (b->n) {
    ops = calloc(b->n, sizeof *ops);
    ptrs = calloc(b->n, sizeof *ptrs);
    if (ops == NULL || ptrs == NULL) {
      rc = cs_error_set(CS_ENOMEM, "out of memory encoding a batch of %zu ops", b->n);
      goto out;
    }
  }
  for (size_t i = 0; i < b->n; i++) {
    const cs_batch_op *op = &b->ops[i];
    Custos__BatchOp init = CUSTOS__BATCH_OP__INIT;
    ops[i] = init;
    /* Borrowed, not copied: nothing secret is left behind but the output. */
    ops[i].key.data = (uint8_t *)op->key;
    ops[i].key.len = strlen(op->key);
    if (op->check) {
      ops[i].check = 1;
      if (!op->check_absent) {
        ops[i].check_digest.data = (uint8_t *)op->digest;
        ops[i].check_digest.len = CS_STORE_DIGEST_LEN;
      }
      ptrs[i] = &ops[i];
      continue;
    }
    if (!op->del) {
      ops[i].value.data = op->val;
      ops[i].value.len = op->val_len;
    }
    ops[i].del = op->del ? 1 : 0;
    ops[i].if_exists = op->if_exists ? 1 : 0;
    ops[i].create = op->create ? 1 : 0;
    if (op->if_digest) {
      ops[i].if_digest.data = (uint8_t *)op->digest;
      ops[i].if_digest.len = CS_STORE_DIGEST_LEN;
    }
    ptrs[i] = &ops[i];
  }
  msg.n_ops = b->n;
  msg.ops = ptrs;
  msg.clear_all = b->clear != 0;
  msg.require_empty_term = b->require_empty_term;
  size_t need = custos__batch__get_packed_size(&msg);
  uint8_t *buf = malloc(need ? need : 1);
  if (buf == NULL) {
    rc = cs_error_set(CS_ENOMEM, "out of memory encoding a %zu-byte batch", need);
    goto out;
  }
  size_t got = custos__batch__pack(&msg, buf);
  assert(got == need);
  *out = buf;
  *len = got;
out:
  free(ptrs);
  free(ops);
  return rc;
}

/*
 * Decodes untrusted bytes into *b, which is (re)initialized: it must not
 * hold ops (clear it first).  Everything is copied, and the values in the
 * unpacked message are wiped before it is freed.  CS_EPROTO on garbage or
 * an invalid op (empty key, key with a NUL or longer than LMDB accepts, a
 * delete carrying a value); then *b is empty.
 */
int cs_batch_decode(const uint8_t *buf, size_t len, cs_batch *b) {
  assert(b && (buf || len == 0));
  cs_batch_init(b);
  Custos__Batch *msg = custos__batch__unpack(NULL, len, buf);
  if (msg == NULL)
    return cs_error_set(CS_EPROTO, "malformed storage batch (%zu bytes)", len);
  int rc = 0;
  for (size_t i = 0; i < msg->n_ops; i++) {
    const Custos__BatchOp *op = msg->ops[i];
    if (op->key.len == 0 || op->key.len > KEYBUF_MAX ||
        memchr(op->key.data, '\0', op->key.len) != NULL) {
      rc = cs_error_set(CS_EPROTO, "storage batch op %zu has an invalid key (%zu bytes)", i,
                        op->key.len);
      goto out;
    }
    if (op->if_digest.len != 0 && op->if_digest.len != CS_STORE_DIGEST_LEN) {
      rc = cs_error_set(CS_EPROTO, "storage batch op %zu has a digest of %zu bytes", i,
                        op->if_digest.len);
      goto out;
    }
    if (op->check_digest.len != 0 && op->check_digest.len != CS_STORE_DIGEST_LEN) {
      rc = cs_error_set(CS_EPROTO, "storage batch op %zu has a check digest of %zu bytes", i,
                        op->check_digest.len);
      goto out;
    }
    if (op->check_digest.len != 0 && !op->check) {
      rc = cs_error_set(CS_EPROTO, "storage batch op %zu has a check digest but is no check", i);
      goto out;
    }
    if (op->check && (op->del || op->value.len != 0 || op->if_exists || op->create ||
                      op->if_digest.len)) {
      rc = cs_error_set(CS_EPROTO, "storage batch op %zu is a check but carries a write", i);
      goto out;
    }
    if (op->del && (op->value.len != 0 || op->if_exists || op->create || op->if_digest.len)) {
      rc = cs_error_set(CS_EPROTO, "storage batch op %zu deletes but carries a value or condition", i);
      goto out;
    }
  }
  if ((rc = batch_reserve(b, msg->n_ops)) != 0)
    goto out;
  for (size_t i = 0; i < msg->n_ops; i++) {
    const Custos__BatchOp *op = msg->ops[i];
    if ((rc = op_push(b, (const char *)op->key.data, op->key.len, op->value.data, op->value.len,
                      op->del ? 1 : 0, op->if_exists ? 1 : 0, op->create ? 1 : 0,
                      op->check ? (op->check_digest.len ? op->check_digest.data : NULL)
                                : (op->if_digest.len ? op->if_digest.data : NULL),
                      op->check ? 1 : 0)) != 0)
      goto out;
  }
  b->clear = msg->clear_all ? 1 : 0;
  b->require_empty_term = msg->require_empty_term;
out:
  for (size_t i = 0; i < msg->n_ops; i++)
    if (msg->ops[i]->value.data)
      mbedtls_platform_zeroize(msg->ops[i]->value.data, msg->ops[i]->value.len);
  custos__batch__free_unpacked(msg, NULL);
  if (rc)
    cs_batch_clear(b);
  return rc;
}

/* ---- writes ------------------------------------------------------------- */

/* Reads meta/applied_index inside `txn` into *index (0 when absent). */
static int read_applied(cs_store *s, MDB_txn *txn, uint64_t *index) {
  MDB_val k = {sizeof META_APPLIED_INDEX - 1, (void *)META_APPLIED_INDEX}, v;
  int rc = mdb_get(txn, s->meta, &k, &v);
  *index = 0;
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc)
    return store_error(rc, s->dir, "reading the applied index");
  if (v.mv_size != 8)
    return cs_error_set(CS_ESTORECORRUPT, "storage in %s is corrupt: applied index of %zu bytes",
                        s->dir, v.mv_size);
  *index = cs_get_be64(v.mv_data);
  return 0;
}

/* ---- value counts per term (termcount.h) -------------------------------- */

/* Reads meta/term_counts inside txn into c (empty when absent). */
static int read_counts(cs_store *s, MDB_txn *txn, cs_termcounts *c) {
  MDB_val k = {sizeof META_TERM_COUNTS - 1, (void *)META_TERM_COUNTS}, v;
  int rc = mdb_get(txn, s->meta, &k, &v);
  cs_termcounts_init(c);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc)
    return store_error(rc, s->dir, "reading the value counts");
  return cs_termcounts_decode(v.mv_data, v.mv_size, c);
}

static int write_counts(cs_store *s, MDB_txn *txn, const cs_termcounts *c) {
  uint8_t *buf;
  size_t len;
  int rc = cs_termcounts_encode(c, &buf, &len);
  if (rc)
    return rc;
  MDB_val k = {sizeof META_TERM_COUNTS - 1, (void *)META_TERM_COUNTS}, v = {len, buf};
  rc = mdb_put(txn, s->meta, &k, &v, 0);
  free(buf);
  return rc ? store_error(rc, s->dir, "writing the value counts") : 0;
}

/* One value at key enters (+1) or leaves (-1) the counts.  A value leaving a
 * term that has none means the counts are wrong: that is said loudly, but
 * it must not fail the write of the data it counts. */
static int count_value(cs_termcounts *c, const MDB_val *k, const void *val, size_t len, int dir) {
  uint32_t term;
  if (!cs_termcount_classify(k->mv_data, k->mv_size, val, len, &term))
    return 0;
  if (dir > 0)
    return cs_termcounts_inc(c, term);
  if (cs_termcounts_dec(c, term) != 0)
    cs_error("value counts: no value was counted under term %u (%.*s); counts are off until "
             "the next start recounts them", term, (int)k->mv_size, (const char *)k->mv_data);
  return 0;
}

/*
 * Recounts every value at open and rewrites the record when it differs
 * (absent: a store of an older custosd; different: one that an older
 * custosd wrote to since).  One read scan and at most one small write.
 */
static int recount(cs_store *s) {
  cs_termcounts scan, have;
  MDB_txn *txn;
  int rc = cs_termcount_scan(s, &scan);
  if (rc)
    return rc;
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
    cs_termcounts_free(&scan);
    return store_error(rc, s->dir, "write transaction");
  }
  MDB_val k = {sizeof META_TERM_COUNTS - 1, (void *)META_TERM_COUNTS}, v;
  int absent = mdb_get(txn, s->meta, &k, &v) == MDB_NOTFOUND;
  rc = read_counts(s, txn, &have);
  if (rc == CS_ESTORECORRUPT || (rc == 0 && !absent && !cs_termcounts_equal(&scan, &have)))
    cs_warn("storage in %s: value counts per term did not match the data: recounted", s->dir);
  if ((rc != 0 && rc != CS_ESTORECORRUPT) ||
      (rc == 0 && !absent && cs_termcounts_equal(&scan, &have))) {
    mdb_txn_abort(txn); /* an error, or nothing to write */
  } else if ((rc = write_counts(s, txn, &scan)) != 0) {
    mdb_txn_abort(txn);
  } else if ((rc = mdb_txn_commit(txn)) != 0) {
    rc = store_error(rc, s->dir, "commit");
  }
  cs_termcounts_free(&scan);
  cs_termcounts_free(&have);
  return rc;
}

static int count_scanned(void *arg, const char *key, size_t key_len, const uint8_t *val,
                         size_t len) {
  uint32_t term;
  if (!cs_termcount_classify(key, key_len, val, len, &term))
    return 0;
  return cs_termcounts_inc(arg, term);
}

int cs_store_term_counts_verify(cs_store *s, cs_termcounts *kept, cs_termcounts *scanned) {
  assert(s && kept && scanned);
  MDB_txn *txn;
  cs_termcounts_init(scanned);
  int rc = begin_read(s, &txn);
  if (rc)
    return rc;
  if ((rc = read_counts(s, txn, kept)) == 0 &&
      (rc = scan_in(s, txn, "", NULL, count_scanned, scanned)) < 0)
    cs_termcounts_free(kept);
  if (rc < 0)
    cs_termcounts_free(scanned);
  mdb_txn_abort(txn);
  return rc;
}

int cs_store_term_counts(cs_store *s, cs_termcounts *c) {
  assert(s && c);
  MDB_txn *txn;
  int rc = begin_read(s, &txn);
  if (rc)
    return rc;
  rc = read_counts(s, txn, c);
  mdb_txn_abort(txn);
  return rc;
}

/* 1 when the value v has the digest an if_digest op expects. */
static int digest_matches(const MDB_val *v, const uint8_t *want) {
  uint8_t d[CS_STORE_DIGEST_LEN];
  cs_store_digest(v->mv_data, v->mv_size, d);
  return cs_ct_equal(d, want, CS_STORE_DIGEST_LEN);
}

/*
 * One op inside txn, keeping the counts c: the value it replaces or deletes
 * leaves them, the value it writes enters them.  A conditional put whose
 * condition fails at this point is skipped (0).
 */
static int apply_op(cs_store *s, MDB_txn *txn, const cs_batch_op *op, cs_termcounts *c) {
  MDB_val k = {strlen(op->key), op->key}, cur;
  int rc = mdb_get(txn, s->data, &k, &cur);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return store_error(rc, s->dir, op->del ? "delete" : "put");
  int found = rc == 0;
  if (op->check) {
    if (op->check_absent ? found : (!found || !digest_matches(&cur, op->digest)))
      return cs_error_set(CS_ECHANGED, "%s changed since it was read", op->key);
    return 0;
  }
  if (op->del && !found)
    return 0;
  if (!op->del) {
    if ((op->if_exists || op->if_digest) && !found)
      return 0; /* deleted meanwhile: never brought back */
    if (op->if_digest && !digest_matches(&cur, op->digest))
      return 0; /* rewritten meanwhile: the newer write stays */
    if (op->create && found)
      return cs_error_set(CS_EEXISTS, "storage in %s already holds %s: not overwritten", s->dir,
                          op->key);
  }
  /* cur points into the map: count it before the write that may move it. */
  if (found && (rc = count_value(c, &k, cur.mv_data, cur.mv_size, -1)) != 0)
    return rc;
  if (op->del) {
    rc = mdb_del(txn, s->data, &k, NULL);
  } else {
    MDB_val v = {op->val_len, op->val};
    rc = mdb_put(txn, s->data, &k, &v, 0);
  }
  if (rc)
    return store_error(rc, s->dir, op->del ? "delete" : "put");
  return op->del ? 0 : count_value(c, &k, op->val, op->val_len, 1);
}

/* Applies every op of b inside txn (after dropping every key when b clears
 * the store: a snapshot restore), with the value counts in the same
 * transaction.  0, CS_ETERMINUSE (b requires a term without values and
 * values remain under it) or a store error. */
static int apply_ops(cs_store *s, MDB_txn *txn, const cs_batch *b) {
  cs_termcounts c;
  int rc;
  if (b->clear) {
    if ((rc = mdb_drop(txn, s->data, 0)) != 0)
      return store_error(rc, s->dir, "clear");
    cs_termcounts_init(&c); /* nothing left to count */
  } else if ((rc = read_counts(s, txn, &c)) != 0) {
    return rc;
  }
  for (size_t i = 0; i < b->n && rc == 0; i++)
    rc = apply_op(s, txn, &b->ops[i], &c);
  uint64_t left = b->require_empty_term ? cs_termcounts_get(&c, b->require_empty_term) : 0;
  if (rc == 0 && left != 0)
    rc = cs_error_set(CS_ETERMINUSE, "%llu stored value(s) are still encrypted under term %u",
                      (unsigned long long)left, b->require_empty_term);
  if (rc == 0 && (b->n > 0 || b->clear)) /* an empty batch changes no count */
    rc = write_counts(s, txn, &c);
  cs_termcounts_free(&c);
  return rc;
}

static int write_applied(cs_store *s, MDB_txn *txn, uint64_t index) {
  uint8_t be[8];
  cs_put_be64(be, index);
  MDB_val k = {sizeof META_APPLIED_INDEX - 1, (void *)META_APPLIED_INDEX}, v = {8, be};
  int rc = mdb_put(txn, s->meta, &k, &v, 0);
  return rc ? store_error(rc, s->dir, "writing the applied index") : 0;
}

/* The key check of every batch (staging checks them already; a batch built
 * any other way is refused alone).  Returns how many passed. */
static size_t check_batches(cs_store *s, const cs_batch *const *b, size_t n, int *status) {
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) {
    status[i] = 0;
    for (size_t j = 0; j < b[i]->n && status[i] == 0; j++)
      status[i] = check_key(s, b[i]->ops[j].key, strlen(b[i]->ops[j].key));
    ok += status[i] == 0;
  }
  return ok;
}

/* Slow path of a group: each batch (that passed its checks) in a nested
 * transaction of txn; a failing one is aborted alone. */
static void apply_nested(cs_store *s, MDB_txn *txn, const cs_batch *const *b, size_t n,
                         int *status) {
  for (size_t i = 0; i < n; i++) {
    if (status[i] != 0)
      continue;
    MDB_txn *child;
    int rc = mdb_txn_begin(s->env, txn, 0, &child);
    if (rc != 0) {
      status[i] = store_error(rc, s->dir, "nested write transaction");
      continue;
    }
    if ((rc = apply_ops(s, child, b[i])) != 0) {
      mdb_txn_abort(child);
      status[i] = rc;
      continue;
    }
    if ((rc = mdb_txn_commit(child)) != 0)
      status[i] = store_error(rc, s->dir, "nested commit");
  }
}

/*
 * The one write path: the batches in order, plus the applied index when
 * `indexed`, in one transaction; see cs_store_commit_group.  Any error of
 * the transaction itself aborts it, so nothing changes.
 */
static int commit_group(cs_store *s, const cs_batch *const *b, size_t n, int *status,
                        int indexed, uint64_t index) {
  size_t valid = check_batches(s, b, n, status);
  int rc, slow = 0;
  MDB_txn *txn;
  if (valid == 0 && !indexed)
    return 0; /* nothing to write (a raft entry still records its index) */
again:
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
    rc = store_error(rc, s->dir, "write transaction");
    goto fail_all;
  }
  if (indexed) {
    uint64_t applied;
    if ((rc = read_applied(s, txn, &applied)) != 0)
      goto abort_all;
    if (index <= applied) { /* a replayed raft entry: already in the store */
      mdb_txn_abort(txn);
      for (size_t i = 0; i < n; i++)
        status[i] = 0;
      return 0;
    }
  }
  if (slow) {
    apply_nested(s, txn, b, n, status);
  } else if (valid == n) {
    /* Fast path: everything in the one transaction. */
    for (size_t i = 0; i < n && rc == 0; i++)
      rc = apply_ops(s, txn, b[i]);
    if (rc != 0 && n > 1) {
      mdb_txn_abort(txn);
      slow = 1;
      goto again;
    }
    if (rc != 0)
      goto abort_all;
  } else {
    apply_nested(s, txn, b, n, status);
  }
  if (indexed && (rc = write_applied(s, txn, index)) != 0)
    goto abort_all;
  /* mdb_txn_commit frees the txn even when it fails. */
  uint64_t t0 = cs_stats_now_ns();
  rc = mdb_txn_commit(txn);
  cs_hist_observe_ns(&cs_stats_get()->storage_commit_seconds, cs_stats_now_ns() - t0);
  if (rc != 0) {
    rc = store_error(rc, s->dir, "commit");
    goto fail_all;
  }
  for (size_t i = 0; i < n; i++)
    if (b[i]->clear && status[i] == 0)
      s->restores++;
  return 0;

abort_all:
  mdb_txn_abort(txn);
fail_all:
  for (size_t i = 0; i < n; i++)
    status[i] = rc;
  return rc;
}

/*
 * A full disk or map is an operator's problem: say so in the log once when
 * writes start failing for lack of space, and once when they succeed again
 * (space freed, or the map enlarged and the server restarted).
 */
static int note_space(cs_store *s, int rc) {
  int full = rc == CS_EDISKFULL || rc == CS_ESTOREFULL;
  if (full && !s->full)
    cs_error("%s: writes fail until space is freed", cs_error_message(rc));
  else if (rc == 0 && s->full)
    cs_warn("storage in %s: writes succeed again (space is available)", s->dir);
  if (full || rc == 0)
    s->full = full;
  return rc;
}

/* note_space for a group: the whole result, or a batch that ran out of
 * space, or success. */
static int note_group_space(cs_store *s, int rc, const int *status, size_t n) {
  int r = rc;
  for (size_t i = 0; i < n && r == 0; i++)
    if (status[i] == CS_EDISKFULL || status[i] == CS_ESTOREFULL)
      r = status[i];
  (void)note_space(s, r);
  return rc;
}

int cs_store_commit_group(cs_store *s, const cs_batch *const *batches, size_t n, int *status) {
  assert(s && (batches || n == 0) && (status || n == 0));
  return note_group_space(s, commit_group(s, batches, n, status, 0, 0), status, n);
}

int cs_store_commit_group_indexed(cs_store *s, const cs_batch *const *batches, size_t n,
                                  int *status, uint64_t index) {
  assert(s && (batches || n == 0) && (status || n == 0));
  return note_group_space(s, commit_group(s, batches, n, status, 1, index), status, n);
}

/* One batch: a group of one, whose result is its status. */
static int commit_one(cs_store *s, const cs_batch *b, int indexed, uint64_t index) {
  int status;
  int rc = commit_group(s, &b, 1, &status, indexed, index);
  return note_space(s, rc < 0 ? rc : status);
}

int cs_store_commit(cs_store *s, const cs_batch *b) {
  assert(s && b);
  return commit_one(s, b, 0, 0);
}

int cs_store_commit_indexed(cs_store *s, const cs_batch *b, uint64_t index) {
  assert(s && b);
  return commit_one(s, b, 1, index);
}

uint64_t cs_store_restores(cs_store *s) { return s->restores; }

uint64_t cs_store_applied_index(cs_store *s) {
  assert(s);
  MDB_txn *txn;
  uint64_t index = 0;
  if (begin_read(s, &txn) != 0)
    return 0;
  (void)read_applied(s, txn, &index); /* the header gives no way to report an error */
  mdb_txn_abort(txn);
  return index;
}

/* ---- read views --------------------------------------------------------- */

struct cs_store_view {
  cs_store *s;
  MDB_txn *txn;
};

int cs_store_view_begin(cs_store *s, cs_store_view **out) {
  assert(s && out);
  cs_store_view *v = calloc(1, sizeof *v);
  if (v == NULL)
    return CS_ENOMEM;
  int rc = begin_read(s, &v->txn);
  if (rc < 0) {
    free(v);
    return rc;
  }
  v->s = s;
  *out = v;
  return 0;
}

int cs_store_view_applied_index(cs_store_view *v, uint64_t *index) {
  *index = 0;
  return read_applied(v->s, v->txn, index);
}

int cs_store_view_room(cs_store_view *v, size_t *data_bytes, size_t *room) {
  MDB_stat st;
  MDB_envinfo info;
  int rc = mdb_stat(v->txn, v->s->data, &st);
  if (rc == 0)
    rc = mdb_env_info(v->s->env, &info);
  if (rc != 0)
    return store_error(rc, v->s->dir, "stat");
  size_t psize = st.ms_psize;
  size_t high = ((size_t)info.me_last_pgno + 1) * psize;
  *data_bytes = (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * psize;
  *room = info.me_mapsize > high ? info.me_mapsize - high : 0;
  return 0;
}

int cs_store_view_scan(cs_store_view *v, const char *prefix, cs_store_iter_fn fn, void *arg) {
  assert(v && prefix && fn);
  if (strlen(prefix) > v->s->max_key)
    return 0; /* no key can be that long */
  return scan_in(v->s, v->txn, prefix, NULL, fn, arg);
}

void cs_store_view_end(cs_store_view *v) {
  if (v == NULL)
    return;
  mdb_txn_abort(v->txn);
  free(v);
}

/* ---- meta records ------------------------------------------------------- */

int cs_store_meta_get(cs_store *s, const char *name, uint8_t *buf, size_t cap, size_t *len) {
  assert(s && name && (buf || cap == 0) && len);
  *len = 0;
  MDB_txn *txn;
  int rc = begin_read(s, &txn);
  if (rc)
    return rc;
  MDB_val k = {strlen(name), (void *)name}, v;
  rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == 0) {
    *len = v.mv_size;
    memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
  }
  mdb_txn_abort(txn);
  if (rc == MDB_NOTFOUND)
    return CS_ENOTFOUND;
  return rc ? store_error(rc, s->dir, "reading meta") : 0;
}

int cs_store_meta_put(cs_store *s, const char *name, const uint8_t *val, size_t len) {
  assert(s && name && (val || len == 0));
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc)
    return store_error(rc, s->dir, "write transaction");
  MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)val};
  if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) {
    mdb_txn_abort(txn);
    return store_error(rc, s->dir, "writing meta");
  }
  if ((rc = mdb_txn_commit(txn)) != 0)
    return store_error(rc, s->dir, "commit");
  /* Meta records are durable even while data commits are not (a
   * cluster's log identity must not be lost to an OS crash). */
  return s->sync_off ? cs_store_sync(s) : 0;
}

int cs_store_set_sync(cs_store *s, int sync) {
  assert(s);
  int rc = mdb_env_set_flags(s->env, MDB_NOSYNC, sync ? 0 : 1);
  if (rc != 0)
    return store_error(rc, s->dir, "setting the sync mode");
  s->sync_off = !sync;
  return 0;
}

int cs_store_sync(cs_store *s) {
  assert(s);
  int rc = mdb_env_sync(s->env, 1);
  return rc ? store_error(rc, s->dir, "flushing to disk") : 0;
}

static int stop_at_first(void *arg, const char *key, size_t key_len, const uint8_t *val,
                         size_t val_len) {
  (void)key, (void)key_len, (void)val, (void)val_len;
  *(int *)arg = 0;
  return 1;
}

int cs_store_is_empty(cs_store *s) {
  int empty = 1;
  int rc = cs_store_scan(s, "", stop_at_first, &empty);
  return rc < 0 ? rc : empty;
}

const char *cs_store_dir(const cs_store *s) { return s->dir; }

size_t cs_store_map_size(const cs_store *s) { return s->map_size; }

/* ---- statistics and backups -------------------------------------------- */

int cs_store_stat(cs_store *s, size_t *entries, size_t *used_bytes) {
  assert(s && entries && used_bytes);
  MDB_txn *txn;
  MDB_stat st;
  MDB_envinfo info;
  int rc = begin_read(s, &txn);
  if (rc)
    return rc;
  rc = mdb_stat(txn, s->data, &st);
  mdb_txn_abort(txn);
  if (rc)
    return store_error(rc, s->dir, "stat");
  if ((rc = mdb_env_info(s->env, &info)) != 0)
    return store_error(rc, s->dir, "stat");
  *entries = st.ms_entries;
  *used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
  return 0;
}

/*
 * Compact copy (free pages dropped) into `dir`, which must exist and be
 * empty.  A consistent snapshot: it runs in its own read transaction, so
 * writes may go on meanwhile.
 */
int cs_store_backup(cs_store *s, const char *dir) {
  assert(s && dir);
  DIR *d = opendir(dir);
  if (d == NULL) {
    if (errno == ENOENT)
      return cs_error_set(CS_EIO, "backup directory %s does not exist", dir);
    if (errno == ENOTDIR)
      return cs_error_set(CS_EIO, "backup path %s is not a directory", dir);
    return store_error(errno, dir, "backup");
  }
  struct dirent *e;
  int empty = 1;
  errno = 0;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      empty = 0;
      break;
    }
  closedir(d);
  if (!empty)
    return cs_error_set(CS_EINVAL, "backup directory %s is not empty", dir);
  int rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
  if (rc)
    return store_error(rc, dir, "backup");
  return 0;
}
