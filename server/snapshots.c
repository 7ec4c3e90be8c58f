/* snapshots: save/restore transfers and scheduled snapshots.  See snapshots.h. */
#define _GNU_SOURCE
#include "snapshots.h"
#include "cs_version.h"
#include "cs_error.h"
#include "api.h"
#include "fdio.h"
#include "ha.h"
#include "log.h"
#include "secmem.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SERVER_VERSION CS_VERSION
#define MAX_XFERS 4
#define XFER_IDLE_MS 120000
#define CHUNK_MAX (1u << 20)
#define UPLOAD_NAME "snapshot-upload.tmp"
#define FILE_PREFIX "custos-"
#define FILE_SUFFIX ".snap"
#define P_RESTORE CS_SNAPSHOT_MARKER   /* id u64 BE, forced u8 (core/snapshot.h) */

typedef struct xfer {
  uint64_t id;                /* 0: free slot */
  uint8_t *buf;
  size_t len;
  uint64_t used_ms;
} xfer;

static struct {
  cs_api_env *d;
  uv_timer_t timer;
  int started;
  xfer xfers[MAX_XFERS];
  struct {
    uint64_t id;
    int fd;                   /* -1: none */
    uint64_t offset;
    uint64_t used_ms;
    char path[4096];
  } up;
  int restoring;
  /* schedule */
  int writing;                /* a scheduled snapshot is being written */
  int pending;                /* after a key change: write one as soon as possible */
  uint64_t next_due_ms;
  int64_t last_time, last_error_time;
  char last_path[4096];
  char last_error[512];
} S = {.up.fd = -1};

static uint64_t random_id(void) {
  uint64_t id = 0;
  while (id == 0)
    if (cs_random(&id, sizeof id) < 0)
      return 0;
  return id;
}

/* ---------------------------------------------------------------- building (off the loop) */

typedef struct build_job {
  uv_work_t work;
  cs_api_env *d;
  cs_store *store;
  uint8_t *root;              /* secmem copy of the root key */
  cs_snapshot_info info;
  char node_id[64];
  uint8_t *out;
  size_t len;
  int rc;
  char err[512];
  /* a save request */
  int whole;                  /* answer the whole file in one chunk (HTTP) */
  cs_snapshots_reply_fn fn;
  void *arg;
  /* a scheduled snapshot */
  int scheduled;
  char reason[32];
  char path[4096];
  const char *dir;
  unsigned retain;
} build_job;

static int sort_names(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_snapshot_name(const char *n) {
  size_t l = strlen(n);
  return strncmp(n, FILE_PREFIX, sizeof FILE_PREFIX - 1) == 0 && l > sizeof FILE_SUFFIX &&
         strcmp(n + l - (sizeof FILE_SUFFIX - 1), FILE_SUFFIX) == 0;
}

static int is_stale_temp(const struct dirent *e) {
  return strncmp(e->d_name, "." FILE_PREFIX, sizeof FILE_PREFIX) == 0;
}

static int select_snapshot(const struct dirent *e) { return is_snapshot_name(e->d_name); }

/* Keeps the `retain` newest snapshot files of dir (names sort by time) and
 * removes temporary files a crash left behind. */
static void prune(const char *dir, unsigned retain) {
  struct dirent **list;
  DIR *dh = opendir(dir);
  if (dh != NULL) {
    struct dirent *e;
    while ((e = readdir(dh)) != NULL)
      if (is_stale_temp(e))
        (void)unlinkat(dirfd(dh), e->d_name, 0);
    closedir(dh);
  }
  int n = scandir(dir, &list, select_snapshot, sort_names);
  if (n < 0)
    return;
  char p[4400];
  for (int i = 0; i < n; i++) {
    if ((unsigned)(n - i) > retain) {
      snprintf(p, sizeof p, "%s/%s", dir, list[i]->d_name);
      if (unlink(p) != 0)
        cs_warn("snapshot: cannot remove old snapshot %s: %s", p, strerror(errno));
    }
    free(list[i]);
  }
  free(list);
}

/* Writes buf to `final` atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. */
static int write_atomic(const char *dir, const char *final, const char *tmp, const uint8_t *buf,
                        size_t len) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return cs_error_set(CS_EIO, "cannot create %s: %s", tmp, strerror(errno));
  int e = cs_write_all(fd, buf, len, NULL);
  if (e != 0) {
    close(fd);
    unlink(tmp);
    return cs_error_set(e == ENOSPC ? CS_ESTOREFULL : CS_EIO, "cannot write %s: %s", tmp,
                        strerror(e));
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return cs_error_set(CS_EIO, "cannot sync %s: %s", tmp, strerror(e));
  }
  if (rename(tmp, final) != 0) {
    int e = errno;
    unlink(tmp);
    return cs_error_set(CS_EIO, "cannot rename %s to %s: %s", tmp, final, strerror(e));
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
}

static void build_work(uv_work_t *w) {
  build_job *j = w->data;
  j->rc = cs_snapshot_build(j->store, j->root, &j->info, &j->out, &j->len);
  if (j->rc == 0 && j->scheduled) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32], tmp[4400];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    snprintf(j->path, sizeof j->path, "%s/" FILE_PREFIX "%s.%03ldZ" FILE_SUFFIX, j->dir, stamp,
             ts.tv_nsec / 1000000);
    snprintf(tmp, sizeof tmp, "%s/." FILE_PREFIX "%s.%03ldZ.tmp", j->dir, stamp,
             ts.tv_nsec / 1000000);
    j->rc = write_atomic(j->dir, j->path, tmp, j->out, j->len);
    if (j->rc == 0)
      prune(j->dir, j->retain);
  }
  if (j->rc < 0)
    snprintf(j->err, sizeof j->err, "%s", cs_error_message(j->rc)); /* the detail is per thread */
}

static void send_chunk(xfer *x, uint64_t offset, int whole, cs_snapshots_reply_fn fn, void *arg);
static xfer *xfer_new(void);

static void build_done(uv_work_t *w, int status) {
  build_job *j = w->data;
  cs_secmem_free(j->root, CS_KEY_LEN);
  if (status != 0 && j->rc == 0) {
    j->rc = CS_EINTERNAL;
    snprintf(j->err, sizeof j->err, "snapshot was cancelled");
  }
  if (j->scheduled) {
    S.writing = 0;
    if (j->rc == 0) {
      S.last_time = cs_now();
      snprintf(S.last_path, sizeof S.last_path, "%s", j->path);
      S.last_error[0] = '\0';
      cs_info("snapshot: wrote %s (%zu bytes, %s)", j->path, j->len, j->reason);
    } else {
      S.last_error_time = cs_now();
      snprintf(S.last_error, sizeof S.last_error, "%s", j->err);
      cs_error("snapshot: scheduled snapshot (%s) failed: %s", j->reason, j->err);
    }
    free(j->out);
  } else if (j->rc < 0 || !S.started) {
    j->fn(j->arg, j->rc < 0 ? cs_error_set(j->rc, "%s", j->err)
                            : cs_error_set(CS_EUNAVAIL, "the server is shutting down"), NULL);
    free(j->out);
  } else {
    xfer *x = xfer_new();
    x->id = random_id();
    x->buf = j->out;
    x->len = j->len;
    x->used_ms = uv_now(j->d->loop);
    cs_info("snapshot: built %zu bytes for a save (transfer %016llx)", j->len,
            (unsigned long long)x->id);
    send_chunk(x, 0, j->whole, j->fn, j->arg);
  }
  free(j);
}

/* Queues a build; the job owns a copy of the root key until it is done. */
static int start_build(cs_api_env *d, build_job *j) {
  const uint8_t *root = cs_seal_root_key(d->seal);
  if (root == NULL) {
    free(j);
    return cs_error_set(CS_ESEALED, "server is sealed");
  }
  if ((j->root = cs_secmem_alloc(CS_KEY_LEN)) == NULL) {
    free(j);
    return CS_ENOMEM;
  }
  memcpy(j->root, root, CS_KEY_LEN);
  j->d = d;
  j->store = d->store;
  j->work.data = j;
  j->info.server_version = SERVER_VERSION;
  snprintf(j->node_id, sizeof j->node_id, "%s", cs_ha_node_id(d->ha));
  j->info.node_id = j->node_id;
  j->info.raft_index = cs_store_applied_index(d->store);
  j->info.raft_term = cs_ha_raft_term(d->ha);
  int rc = uv_queue_work(d->loop, &j->work, build_work, build_done);
  if (rc != 0) {
    cs_secmem_free(j->root, CS_KEY_LEN);
    free(j);
    return cs_error_set(CS_EINTERNAL, "cannot queue the snapshot: %s", uv_strerror(rc));
  }
  return 0;
}

/* ---------------------------------------------------------------- save */

static void xfer_free(xfer *x) {
  free(x->buf);
  memset(x, 0, sizeof *x);
}

/* A free slot, or the least recently used one (dropped). */
static xfer *xfer_new(void) {
  xfer *lru = &S.xfers[0];
  for (size_t i = 0; i < MAX_XFERS; i++) {
    if (S.xfers[i].id == 0)
      return &S.xfers[i];
    if (S.xfers[i].used_ms < lru->used_ms)
      lru = &S.xfers[i];
  }
  cs_warn("snapshot: dropping an unfinished save transfer (%d in progress)", MAX_XFERS);
  xfer_free(lru);
  return lru;
}

static size_t chunk_size(const cs_api_env *d) {
  size_t max = d->cfg->listener.max_frame;
  size_t c = max > 8192 ? max - 4096 : max / 2;
  return c < CHUNK_MAX ? c : CHUNK_MAX;
}

static void send_chunk(xfer *x, uint64_t offset, int whole, cs_snapshots_reply_fn fn, void *arg) {
  if (offset > x->len) {
    fn(arg, cs_error_set(CS_EINVAL, "offset %llu is beyond the snapshot's %zu bytes",
                         (unsigned long long)offset, x->len), NULL);
    return;
  }
  size_t n = x->len - (size_t)offset, max = chunk_size(S.d);
  if (n > max && !whole)
    n = max;
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__SnapshotChunkRes cr = CUSTOS__SNAPSHOT_CHUNK_RES__INIT;
  cr.id = x->id;
  cr.offset = offset;
  cr.data.data = x->buf + offset;
  cr.data.len = n;
  cr.total_len = x->len;
  res.result_case = CUSTOS__RESPONSE__RESULT_SNAPSHOT_CHUNK;
  res.snapshot_chunk = &cr;
  x->used_ms = uv_now(S.d->loop);
  fn(arg, 0, &res); /* packed before it returns */
  if (offset + n == x->len)
    xfer_free(x); /* the client has every byte */
}

void cs_snapshots_save(cs_api_env *d, const Custos__SnapshotSaveReq *q, cs_snapshots_reply_fn fn,
                       void *arg) {
  if (q->whole && q->id != 0) {
    fn(arg, cs_error_set(CS_EINVAL, "whole is for a new snapshot (id 0)"), NULL);
    return;
  }
  if (q->id != 0) {
    for (size_t i = 0; i < MAX_XFERS; i++)
      if (S.xfers[i].id == q->id) {
        send_chunk(&S.xfers[i], q->offset, 0, fn, arg);
        return;
      }
    fn(arg, cs_error_set(CS_ESNAPXFER, "no snapshot transfer %016llx (finished, or idle for "
                         "more than %d s)", (unsigned long long)q->id, XFER_IDLE_MS / 1000), NULL);
    return;
  }
  if (q->offset != 0) {
    fn(arg, cs_error_set(CS_EINVAL, "a new snapshot starts at offset 0"), NULL);
    return;
  }
  if (S.restoring) {
    fn(arg, cs_error_set(CS_EBUSY, "a snapshot restore is being applied; retry"), NULL);
    return;
  }
  build_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    fn(arg, CS_ENOMEM, NULL);
    return;
  }
  j->fn = fn;
  j->arg = arg;
  j->whole = q->whole;
  int rc = start_build(d, j);
  if (rc < 0)
    fn(arg, rc, NULL);
}

/* ---------------------------------------------------------------- restore */

static void upload_drop(void) {
  if (S.up.fd >= 0) {
    close(S.up.fd);
    unlink(S.up.path);
  }
  S.up.fd = -1;
  S.up.id = 0;
  S.up.offset = 0;
}

static uint64_t max_upload_chunk(const cs_api_env *d, int authed) {
  size_t max = authed ? d->cfg->listener.max_frame : d->cfg->listener.max_frame_preauth;
  size_t c = max > 2048 ? max - 1024 : max / 2; /* room for the envelope */
  return c < CHUNK_MAX ? c : CHUNK_MAX;
}

static void reply_restore(cs_snapshots_reply_fn fn, void *arg, int committed, int foreign,
                          uint64_t max_chunk) {
  cs_seal_status st;
  cs_seal_get_status(S.d->seal, &st);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__SnapshotRestoreRes rr = CUSTOS__SNAPSHOT_RESTORE_RES__INIT;
  rr.upload_id = S.up.id;
  rr.received = S.up.offset;
  rr.committed = committed;
  rr.sealed = st.sealed;
  rr.t = st.t;
  rr.n = st.n;
  rr.foreign = foreign;
  rr.max_chunk = max_chunk;
  res.result_case = CUSTOS__RESPONSE__RESULT_SNAPSHOT_RESTORE;
  res.snapshot_restore = &rr;
  fn(arg, 0, &res);
}

typedef struct restore_job {
  cs_snapshots_reply_fn fn;
  void *arg;
  int foreign;
  char client[64];
} restore_job;

static void on_restored(void *arg, int status) {
  restore_job *j = arg;
  cs_api_env *d = S.d;
  S.restoring = 0;
  cs_error_clear();
  if (d->seal == NULL) { /* shutting down: the queue drained after the seal closed */
    cs_warn("snapshot: restore for %s %s during shutdown", j->client,
            status < 0 ? "failed" : "committed");
    j->fn(j->arg, status < 0 ? status : cs_error_set(CS_EUNAVAIL, "the restore was committed; "
                                                     "the server is shutting down"), NULL);
    upload_drop();
    free(j);
    return;
  }
  if (status < 0 && d->ha != NULL && (status == CS_EUNAVAIL || status == CS_ESTANDBY)) {
    /* The raft entry may still commit under the next leader. */
    cs_seal_restore_abort(d->seal);
    status = cs_error_set(CS_EUNAVAIL, "the restore is not confirmed: leadership changed before "
                          "it committed, and it may still be applied; check `custos status` on "
                          "every node before retrying");
    cs_error("snapshot: restore requested by %s: %s", j->client, cs_error_message(status));
    upload_drop();
    j->fn(j->arg, status, NULL);
    free(j);
    return;
  }
  if (status < 0) {
    cs_seal_restore_abort(d->seal);
    cs_error("snapshot: restore requested by %s failed, nothing changed: %s", j->client,
             cs_error_message(status));
    upload_drop();
    j->fn(j->arg, status, NULL);
    free(j);
    return;
  }
  /* Reloads or seals through the one seal event (daemon.c):
   * caches dropped, the audit key reloaded (it may differ) or wiped. */
  int rc = cs_seal_restored(d->seal, j->foreign);
  if (rc < 0)
    cs_error("snapshot: restored, but the keys could not be reloaded (sealed): %s",
             cs_error_message(rc));
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  cs_warn("snapshot: store replaced by a snapshot uploaded by %s%s; %s (t=%u, n=%u)", j->client,
          j->foreign ? " (forced: another installation or key set)" : "",
          st.sealed ? "sealed: unseal with the snapshot's shares" : "serving with the restored keyring",
          st.t, st.n);
  reply_restore(j->fn, j->arg, 1, j->foreign, 0);
  upload_drop();
  free(j);
}

/* Reads the staging file back. */
static int read_upload(uint8_t **out, size_t *len) {
  size_t n = (size_t)S.up.offset;
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory reading a %zu-byte snapshot", n);
  size_t off = 0;
  while (off < n) {
    ssize_t r = pread(S.up.fd, buf + off, n - off, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      free(buf);
      return cs_error_set(CS_EIO, "cannot read back %s: %s", S.up.path,
                          r < 0 ? strerror(errno) : "short file");
    }
    off += (size_t)r;
  }
  *out = buf;
  *len = n;
  return 0;
}

/* 1 when the live store's key set is byte for byte the snapshot's. */
static int same_keyset(cs_store *st, const cs_batch *b) {
  const cs_batch_op *op = cs_snapshot_find(b, "core/seal-config");
  uint8_t *live;
  size_t len;
  if (op == NULL || cs_store_get(st, "core/seal-config", &live, &len) < 0)
    return 0;
  int same = len == op->val_len && memcmp(live, op->val, len) == 0;
  free(live);
  return same;
}

/* The whole file is staged: check it, decide, hand the replacement to the
 * commit queue. */
static int commit_upload(cs_api_env *d, int force, const char *client, cs_snapshots_reply_fn fn,
                         void *arg) {
  uint8_t *buf = NULL;
  size_t len = 0;
  cs_snapshot snap;
  cs_batch b;
  cs_batch_init(&b);
  int rc = read_upload(&buf, &len);
  if (rc < 0)
    return rc;
  rc = cs_snapshot_parse(buf, len, &snap);
  if (rc == 0)
    rc = cs_snapshot_batch(&snap, &b);
  /* Even a forced restore must leave something a threshold of shares can
   * open: a key set, the wrapped root key and the keyring. */
  const cs_batch_op *sc = rc == 0 ? cs_snapshot_find(&b, "core/seal-config") : NULL;
  if (rc == 0 && (sc == NULL || cs_seal_config_check(sc->val, sc->val_len) < 0))
    rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot has no valid key set (core/seal-config)");
  if (rc == 0 && (cs_snapshot_find(&b, "core/unseal/root-key") == NULL ||
                  cs_snapshot_find(&b, "core/keyring") == NULL))
    rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot lacks the wrapped root key or the keyring");
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  int foreign = 0;
  if (rc == 0 && st.initialized) {
    const uint8_t *root = cs_seal_root_key(d->seal);
    int mac_ok = root != NULL && cs_snapshot_check_mac(&snap, root) == 0;
    int same = same_keyset(d->store, &b);
    foreign = !mac_ok || !same;
    if (foreign && !force)
      rc = cs_error_set(CS_ESNAPFOREIGN,
                        "%s; nothing was changed. Restore with --force to replace everything: "
                        "the server will then be sealed and need the shares that were current "
                        "when the snapshot was taken (t=%u, n=%u)",
                        !mac_ok ? "the snapshot is of another installation (its MAC does not "
                                  "verify under this server's root key)"
                                : "the snapshot is of this installation but under other shares "
                                  "(a rekey happened since it was taken)",
                        snap.hdr->threshold, snap.hdr->shares);
  }
  /* Retired keys never come back silently (core/snapshot.h). */
  size_t kept = 0, revived = 0;
  if (rc == 0 && !foreign && cs_seal_keyring(d->seal) != NULL)
    rc = cs_snapshot_guard_retired(&b, cs_seal_root_key(d->seal), cs_seal_keyring(d->seal), force,
                                   &kept, &revived);
  if (kept)
    cs_warn("snapshot: %zu term(s) retired since the snapshot was taken stay retired (no value "
            "of the snapshot uses them)", kept);
  if (revived)
    cs_warn("snapshot: restore forced by %s brings back the keys of %zu retired term(s)", client,
            revived);
  if (rc == 0) {
    uint8_t marker[9];
    uint64_t id = random_id();
    for (int i = 0; i < 8; i++)
      marker[i] = (uint8_t)(id >> (56 - 8 * i));
    marker[8] = (uint8_t)foreign;
    rc = cs_batch_put(&b, P_RESTORE, marker, sizeof marker); /* after the snapshot's own */
  }
  if (rc == 0 && !st.initialized)
    cs_warn("snapshot: restoring onto an uninitialized server, without a token, for %s", client);
  if (rc == 0)
    rc = cs_seal_restore_begin(d->seal);
  restore_job *j = NULL;
  if (rc == 0 && (j = calloc(1, sizeof *j)) == NULL) {
    cs_seal_restore_abort(d->seal);
    rc = CS_ENOMEM;
  }
  if (rc == 0) {
    j->fn = fn;
    j->arg = arg;
    j->foreign = foreign;
    snprintf(j->client, sizeof j->client, "%s", client);
    cs_info("snapshot: restoring %zu entries (%zu bytes) for %s", b.n, len, client);
    S.restoring = 1;
    cs_api_auth_changed(d); /* requests admitted before this one are decided again (api.c) */
    rc = cs_commitq_submit(d->commitq, &b, on_restored, j);
    if (rc < 0) {
      S.restoring = 0;
      cs_seal_restore_abort(d->seal);
      free(j);
    }
  }
  cs_batch_clear(&b);
  cs_snapshot_free(&snap);
  free(buf);
  return rc;
}

static int write_chunk(const uint8_t *p, size_t n) {
  int e = cs_write_all(S.up.fd, p, n, NULL);
  if (e != 0)
    return cs_error_set(e == ENOSPC ? CS_ESTOREFULL : CS_EIO, "cannot stage the snapshot in %s: %s",
                        S.up.path, strerror(e));
  return 0;
}

void cs_snapshots_restore(cs_api_env *d, const Custos__SnapshotRestoreReq *q, const char *client,
                          int authed, cs_snapshots_reply_fn fn, void *arg) {
  int rc = 0;
  uint64_t now = uv_now(d->loop);
  if (S.restoring) {
    fn(arg, cs_error_set(CS_EBUSY, "a snapshot restore is being applied; retry"), NULL);
    return;
  }
  if (q->upload_id == 0) {
    if (q->offset != 0) {
      fn(arg, cs_error_set(CS_EINVAL, "a new snapshot upload starts at offset 0"), NULL);
      return;
    }
    if (S.up.fd >= 0 && now - S.up.used_ms < XFER_IDLE_MS) {
      fn(arg, cs_error_set(CS_EBUSY, "another snapshot upload is in progress; retry once "
                           "it is done (or idle for %d s)", XFER_IDLE_MS / 1000), NULL);
      return;
    }
    upload_drop();
    snprintf(S.up.path, sizeof S.up.path, "%s/" UPLOAD_NAME, d->cfg->storage_path);
    S.up.fd = open(S.up.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (S.up.fd < 0) {
      fn(arg, cs_error_set(CS_EIO, "cannot create %s: %s", S.up.path, strerror(errno)), NULL);
      return;
    }
    S.up.id = random_id();
  } else if (q->upload_id != S.up.id || S.up.fd < 0) {
    fn(arg, cs_error_set(CS_ESNAPXFER, "no snapshot upload %016llx (finished, failed, or idle "
                         "for more than %d s)", (unsigned long long)q->upload_id,
                         XFER_IDLE_MS / 1000), NULL);
    return;
  }
  if (q->offset != S.up.offset)
    rc = cs_error_set(CS_EINVAL, "chunk at offset %llu, expected %llu",
                      (unsigned long long)q->offset, (unsigned long long)S.up.offset);
  else if (q->data.len > d->cfg->map_size || S.up.offset > d->cfg->map_size - q->data.len)
    rc = cs_error_set(CS_ETOOBIG, "snapshot is larger than the store's map size (%zu bytes)",
                      d->cfg->map_size);
  else if (q->data.len > 0)
    rc = write_chunk(q->data.data, q->data.len);
  if (rc == 0) {
    S.up.offset += q->data.len;
    S.up.used_ms = now;
    if (!q->commit) {
      reply_restore(fn, arg, 0, 0, max_upload_chunk(d, authed));
      return;
    }
    rc = commit_upload(d, q->force, client, fn, arg);
    if (rc == 0)
      return; /* on_restored answers */
  }
  upload_drop(); /* a failed upload starts over */
  fn(arg, rc, NULL);
}

int cs_snapshots_restoring(cs_api_env *d) {
  (void)d;
  return S.restoring;
}

/* ---------------------------------------------------------------- schedule */

void cs_snapshots_on_key_change(void *ctx, const char *what) {
  cs_api_env *d = ctx;
  if (d->cfg->snapshot.path == NULL || !d->cfg->snapshot.after_key_change)
    return;
  cs_debug("snapshot: %s committed: a snapshot is due", what);
  S.pending = 1;
}

static void start_scheduled(cs_api_env *d, const char *reason) {
  build_job *j = calloc(1, sizeof *j);
  if (j == NULL)
    return;
  j->scheduled = 1;
  j->dir = d->cfg->snapshot.path;
  j->retain = d->cfg->snapshot.retain;
  snprintf(j->reason, sizeof j->reason, "%s", reason);
  S.writing = 1;
  int rc = start_build(d, j);
  if (rc < 0) {
    S.writing = 0;
    S.last_error_time = cs_now();
    snprintf(S.last_error, sizeof S.last_error, "%s", cs_error_message(rc));
    cs_error("snapshot: cannot start a scheduled snapshot: %s", S.last_error);
  }
}

static void on_timer(uv_timer_t *t) {
  cs_api_env *d = t->data;
  uint64_t now = uv_now(d->loop);
  for (size_t i = 0; i < MAX_XFERS; i++)
    if (S.xfers[i].id != 0 && now - S.xfers[i].used_ms > XFER_IDLE_MS) {
      cs_info("snapshot: save transfer %016llx idle: dropped", (unsigned long long)S.xfers[i].id);
      xfer_free(&S.xfers[i]);
    }
  if (S.up.fd >= 0 && !S.restoring && now - S.up.used_ms > XFER_IDLE_MS) {
    cs_info("snapshot: upload idle: dropped");
    upload_drop();
  }
  if (d->cfg->snapshot.path == NULL || S.writing || S.restoring || (*d->shutting_down))
    return;
  /* The active writes them (and needs the root key for the MAC): an init's
   * snapshot waits for the first unseal. */
  if (!cs_ha_serving(d->ha) || cs_seal_root_key(d->seal) == NULL) {
    if (S.pending)
      cs_debug("snapshot: one is due, waiting for this node to be the unsealed active");
    return;
  }
  uint64_t interval = (uint64_t)d->cfg->snapshot.interval_s * 1000;
  if (S.pending) {
    S.pending = 0;
    start_scheduled(d, "after a key change");
    if (interval)
      S.next_due_ms = now + interval;
  } else if (interval && now >= S.next_due_ms) {
    S.next_due_ms = now + interval;
    start_scheduled(d, "interval");
  }
}

int cs_snapshots_start(cs_api_env *d) {
  S.d = d;
  if (d->cfg->snapshot.path != NULL) {
    struct stat sb;
    if (stat(d->cfg->snapshot.path, &sb) != 0 || !S_ISDIR(sb.st_mode))
      return cs_error_set(CS_ECONFIG, "snapshot.path %s is not a directory", d->cfg->snapshot.path);
    if (access(d->cfg->snapshot.path, W_OK | X_OK) != 0)
      return cs_error_set(CS_ECONFIG, "snapshot.path %s is not writable", d->cfg->snapshot.path);
  }
  /* A staging file left by a crash during an upload is of no use. */
  char p[4096];
  snprintf(p, sizeof p, "%s/" UPLOAD_NAME, d->cfg->storage_path);
  (void)unlink(p);
  uv_timer_init(d->loop, &S.timer);
  S.timer.data = d;
  S.next_due_ms = uv_now(d->loop) + (uint64_t)d->cfg->snapshot.interval_s * 1000;
  uv_timer_start(&S.timer, on_timer, 1000, 1000);
  S.started = 1;
  return 0;
}

void cs_snapshots_stop(cs_api_env *d) {
  (void)d;
  if (!S.started)
    return;
  S.started = 0;
  uv_timer_stop(&S.timer);
  uv_close((uv_handle_t *)&S.timer, NULL);
  for (size_t i = 0; i < MAX_XFERS; i++)
    xfer_free(&S.xfers[i]);
  if (!S.restoring)
    upload_drop();
}

void cs_snapshots_status(cs_api_env *d, Custos__StatusRes *sr) {
  (void)d;
  sr->snapshot_last_time = S.last_time;
  sr->snapshot_last_path = S.last_path;
  sr->snapshot_last_error = S.last_error;
  sr->snapshot_last_error_time = S.last_error_time;
}
