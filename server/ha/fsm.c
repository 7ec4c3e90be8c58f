/* fsm: the LMDB state machine of a cluster.  See fsm.h. */
#include "bytes.h"
#include "fsm.h"
#include "cs_error.h"
#include "log.h"
#include "policy_cache.h"
#include "snapshot.h"
#include "token.h"

#include <assert.h>
#include <uv.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC "CSNAP001"
#define SNAP_HDR 24 /* magic, applied index, payload length */
#define P_TOKEN "core/token/"
#define P_POLICY "core/policy/"

#define GROUP_MARK 0xFFFFFFFFu
/* Entries are far below 4 GiB; this also bounds the batch count read. */
#define ENTRY_MAX ((size_t)1 << 31)

typedef struct fsm_state {
  struct raft *raft;
  cs_store *store;
  cs_fsm_results_fn results;
  void *ctx;
  void (*auth_changed)(void *ctx); /* NULL: empty the caches here */
  void *auth_ctx;
  cs_store_view *snap_view; /* a raft snapshot being taken (fsm_snapshot) */
  uint64_t snap_index;      /* raft's applied index when it began */
  int snap_failed;          /* it failed: wait a threshold before the next */
  unsigned threshold;       /* raft's snapshot threshold as configured */
  uint64_t max_bytes;       /* entries' bytes that call for a snapshot; 0: none */
  uint64_t bytes;           /* entries' bytes applied since the last one began */
  int on_loop;              /* the last snapshot was encoded on the loop (little room) */
} fsm_state;

/*
 * An applied entry that touches token entries or policies empties the
 * matching cache, on every node, leader or not: a node that served from its
 * caches before would otherwise serve a revoked token or a deleted policy
 * again once it is active (issue 10).  Caches are loop-thread state, and
 * raft applies on the loop.
 */
static void forget_cached(const fsm_state *st, const cs_batch *b) {
  int tokens = 0, policies = 0;
  for (size_t i = 0; i < b->n; i++) {
    tokens |= strncmp(b->ops[i].key, P_TOKEN, sizeof P_TOKEN - 1) == 0;
    policies |= strncmp(b->ops[i].key, P_POLICY, sizeof P_POLICY - 1) == 0;
  }
  if ((tokens || policies) && st->auth_changed != NULL) {
    st->auth_changed(st->auth_ctx); /* the owner's auth generation (server/api/authz.h) */
    return;
  }
  if (tokens)
    cs_token_cache_invalidate();
  if (policies)
    cs_policy_cache_invalidate();
}

int cs_fsm_entry_encode(const cs_batch *const *batches, size_t n, struct raft_buffer *out) {
  uint8_t **enc = calloc(n ? n : 1, sizeof *enc);
  size_t *lens = calloc(n ? n : 1, sizeof *lens);
  size_t total = 8;
  int rc = enc == NULL || lens == NULL ? CS_ENOMEM : 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = cs_batch_encode(batches[i], &enc[i], &lens[i]);
    if (rc == 0 && (lens[i] > ENTRY_MAX || (total += 4 + lens[i]) > ENTRY_MAX))
      rc = cs_error_set(CS_ETOOBIG, "cluster: a group of %zu batches is too large for one entry", n);
  }
  uint8_t *buf = NULL;
  size_t padded = (total + 7) & ~(size_t)7;
  if (rc == 0 && (buf = raft_calloc(1, padded)) == NULL)
    rc = CS_ENOMEM;
  if (rc == 0) {
    cs_put_be32(buf, GROUP_MARK);
    cs_put_be32(buf + 4, (uint32_t)n);
    size_t off = 8;
    for (size_t i = 0; i < n; i++) {
      cs_put_be32(buf + off, (uint32_t)lens[i]);
      memcpy(buf + off + 4, enc[i], lens[i]);
      off += 4 + lens[i];
    }
    out->base = buf;
    out->len = padded;
  }
  /* The encodings hold values in clear (barrier ciphertext, but wipe). */
  for (size_t i = 0; enc != NULL && i < n; i++)
    if (enc[i] != NULL) {
      memset(enc[i], 0, lens[i]);
      free(enc[i]);
    }
  free(enc);
  free(lens);
  return rc;
}

void cs_fsm_entry_free(cs_batch *batches, int *status, size_t n) {
  for (size_t i = 0; batches != NULL && i < n; i++)
    cs_batch_clear(&batches[i]);
  free(batches);
  free(status);
}

/* Splits an entry into the (offset, length) of its batches: the group
 * format, or an older single-batch entry. */
static int entry_parts(const uint8_t *p, size_t len, size_t *n, size_t *first) {
  if (len < 4)
    return cs_error_set(CS_EPROTO, "short entry");
  uint32_t head = cs_get_be32(p);
  if (head != GROUP_MARK) {
    if (head > len - 4)
      return cs_error_set(CS_EPROTO, "entry length %u beyond its %zu bytes", head, len);
    *n = 1;
    *first = 0;
    return 0;
  }
  if (len < 8)
    return cs_error_set(CS_EPROTO, "short entry");
  uint32_t count = cs_get_be32(p + 4);
  if (count > (len - 8) / 4)
    return cs_error_set(CS_EPROTO, "entry claims %u batches in %zu bytes", count, len);
  *n = count;
  *first = 8;
  return 0;
}

int cs_fsm_entry_decode(const uint8_t *buf, size_t len, cs_batch **batches, int **status,
                        size_t *n) {
  size_t count = 0, off = 0;
  int rc = entry_parts(buf, len, &count, &off);
  if (rc < 0)
    return rc;
  /* Framing first, so a broken entry allocates nothing. */
  size_t o = off;
  for (size_t i = 0; i < count; i++) {
    if (len - o < 4 || cs_get_be32(buf + o) > len - o - 4)
      return cs_error_set(CS_EPROTO, "entry batch %zu runs past the entry", i);
    o += 4 + cs_get_be32(buf + o);
  }
  cs_batch *b = calloc(count ? count : 1, sizeof *b);
  int *st = calloc(count ? count : 1, sizeof *st);
  if (b == NULL || st == NULL) {
    free(b);
    free(st);
    return CS_ENOMEM;
  }
  for (size_t i = 0; i < count; i++) {
    size_t blen = cs_get_be32(buf + off);
    st[i] = cs_batch_decode(buf + off + 4, blen, &b[i]); /* leaves b[i] empty on failure */
    off += 4 + blen;
  }
  *batches = b;
  *status = st;
  *n = count;
  return 0;
}

/*
 * libraft counts entries only: with large values, snapshot_threshold
 * entries could hold gigabytes, kept in memory and replayed at start.  Past
 * max_bytes, raft's threshold drops to 1 so that it snapshots after this
 * apply; fsm_snapshot puts it back.  Only from the configured value: the
 * recovery's hold-back (cluster.c) raises it, and that wins.
 */
static void count_bytes(fsm_state *st, size_t len) {
  st->bytes += len;
  if (st->max_bytes == 0 || st->bytes < st->max_bytes || st->threshold <= 1 ||
      st->raft->snapshot.threshold != st->threshold)
    return;
  cs_debug("cluster: %llu MiB of raft entries since the last snapshot: snapshot now",
           (unsigned long long)(st->bytes >> 20));
  raft_set_snapshot_threshold(st->raft, 1);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  fsm_state *st = fsm->data;
  uint64_t index = raft_last_applied(st->raft) + 1;
  count_bytes(st, buf->len);
  cs_batch *b = NULL;
  int *status = NULL;
  size_t n = 0;
  int rc = cs_fsm_entry_decode(buf->base, buf->len, &b, &status, &n);
  if (rc < 0) {
    /* Only a member with the cluster's certificate can append entries, so a
     * malformed one is a bug, not an attack: every node skips it alike. */
    cs_error("cluster: raft entry %llu is not a valid group: skipped", (unsigned long long)index);
    *result = (void *)(intptr_t)rc;
    return 0;
  }
  /* Batches that did not decode fail alone; the rest go to the store, in
   * one transaction without fsync (fsm.h, "Durability"): the loop never
   * waits for the disk here, raft's log is the durable record. */
  const cs_batch **ptrs = malloc((n ? n : 1) * sizeof *ptrs);
  int *res = malloc((n ? n : 1) * sizeof *res);
  size_t m = 0;
  if (ptrs == NULL || res == NULL) {
    rc = CS_ENOMEM;
  } else {
    for (size_t i = 0; i < n; i++)
      if (status[i] == 0)
        ptrs[m++] = &b[i];
      else
        cs_error("cluster: batch %zu of raft entry %llu is malformed: it fails alone", i,
                 (unsigned long long)index);
    rc = cs_store_commit_group_indexed(st->store, ptrs, m, res, index);
  }
  if (rc < 0) {
    cs_error("cluster: applying raft entry %llu failed: %s", (unsigned long long)index,
             cs_error_message(rc));
  } else {
    for (size_t i = 0, j = 0; i < n; i++)
      if (status[i] == 0)
        status[i] = res[j++];
    if (st->results != NULL)
      st->results(st->ctx, index, status, n);
  }
  for (size_t i = 0; i < n; i++)
    forget_cached(st, &b[i]); /* also after a failure: cheap, and never stale */
  free(ptrs);
  free(res);
  cs_fsm_entry_free(b, status, n);
  *result = (void *)(intptr_t)rc;
  return 0;
}

/* The snapshot of one read view: a header (magic, the view's applied
 * index, payload length) and the payload, in a raft_malloc'd buffer. */
static int encode_view(cs_store_view *v, uint8_t **out, size_t *len) {
  uint64_t index;
  uint8_t *enc = NULL;
  size_t elen = 0;
  /* An unreadable index must not become 0: every node would then skip
   * restoring the snapshot (cs_fsm_snapshot_restore) while raft counts it. */
  int rc = cs_store_view_applied_index(v, &index);
  if (rc == 0)
    rc = cs_snapshot_payload_view(v, &enc, &elen, NULL, NULL);
  if (rc < 0)
    return rc;
  size_t total = (SNAP_HDR + elen + 7) & ~(size_t)7; /* raft likes multiples of 8 */
  uint8_t *buf = raft_calloc(1, total);
  if (buf == NULL) {
    free(enc);
    return CS_ENOMEM;
  }
  memcpy(buf, SNAP_MAGIC, 8);
  for (int i = 0; i < 8; i++) {
    buf[8 + i] = (uint8_t)(index >> (56 - 8 * i));
    buf[16 + i] = (uint8_t)((uint64_t)elen >> (56 - 8 * i));
  }
  if (elen > 0)
    memcpy(buf + SNAP_HDR, enc, elen);
  /* Values are barrier ciphertext, but wipe anyway: the buffer held them. */
  if (enc != NULL) {
    memset(enc, 0, elen);
    free(enc);
  }
  *out = buf;
  *len = total;
  return 0;
}

int cs_fsm_snapshot_encode(cs_store *store, uint8_t **out, size_t *len) {
  cs_store_view *v;
  int rc = cs_store_view_begin(store, &v);
  if (rc < 0)
    return rc;
  rc = encode_view(v, out, len);
  cs_store_view_end(v);
  return rc;
}

int cs_fsm_snapshot_restore(cs_store *store, const uint8_t *buf, size_t len) {
  if (len < SNAP_HDR || memcmp(buf, SNAP_MAGIC, 8) != 0)
    return cs_error_set(CS_EPROTO, "cluster: snapshot has an unknown format");
  uint64_t index = 0, plen = 0;
  for (int i = 0; i < 8; i++) {
    index = (index << 8) | buf[8 + i];
    plen = (plen << 8) | buf[16 + i];
  }
  if (plen > len - SNAP_HDR)
    return cs_error_set(CS_EPROTO, "cluster: snapshot is truncated");
  uint64_t have = cs_store_applied_index(store);
  if (index <= have) {
    cs_debug("cluster: snapshot at %llu not restored: the store is at %llu",
             (unsigned long long)index, (unsigned long long)have);
    return 0;
  }
  /* The snapshot replaces the whole data database in one transaction. */
  cs_batch snap;
  int rc = cs_batch_decode(buf + SNAP_HDR, (size_t)plen, &snap);
  if (rc >= 0) {
    snap.clear = 1;
    rc = cs_store_commit_indexed(store, &snap, index);
  }
  cs_batch_clear(&snap);
  /* Whatever was restored replaces every token and policy. */
  cs_token_cache_invalidate();
  cs_policy_cache_invalidate();
  if (rc >= 0)
    cs_info("cluster: restored a snapshot at index %llu", (unsigned long long)index);
  return rc < 0 ? rc : 0;
}

/*
 * Raft snapshots are taken in two steps (fsm version 3), so that the loop
 * does not encode the whole store (100-900 ms at 100k secrets on the test
 * box, a pause at every snapshot; docs/performance.md, session 9).
 *  - fsm_snapshot, on the loop, right after raft applied the entry at its
 *    snapshot index: opens a read view, which is that state (entries are
 *    applied on the loop, each in one commit).  Nothing else is copied.
 *  - fsm_snapshot_async, on a libuv worker, while the loop goes on serving
 *    and applying: encodes the view and ends it.
 *  - fsm_finalize, on the loop, once raft wrote the snapshot (or gave up):
 *    frees the buffer, and the view if the worker never ran.
 * raft takes one snapshot at a time; the view's owner is whoever runs.
 *
 * While the view is open LMDB cannot reuse what later commits free, so the
 * data file grows by about what is written during the encode (a review
 * measured ~200 MiB for a second of 20k writes at 100k 1 KiB values).
 * When the map's room above the file is under four times the data, the
 * snapshot is encoded here on the loop instead: a pause, but no growth
 * into a full map.  After a failure, the next snapshot waits a threshold
 * of entries or the byte limit (raft would otherwise ask again at the next
 * apply).
 */
#define SNAP_ROOM_FACTOR 4
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                              unsigned *n_bufs);

static void restore_threshold(fsm_state *st) {
  if (st->threshold > 1 && st->raft->snapshot.threshold == 1)
    raft_set_snapshot_threshold(st->raft, st->threshold);
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
  fsm_state *st = fsm->data;
  uint64_t applied = raft_last_applied(st->raft);
  if (st->snap_view != NULL)
    return RAFT_BUSY; /* not reached: raft takes one at a time */
  restore_threshold(st); /* count_bytes lowered it to get here */
  /* After a failure: a threshold of entries or the byte limit, whichever
   * comes first (count_bytes lowers the threshold again for the latter). */
  unsigned wait = st->threshold ? st->threshold : st->raft->snapshot.threshold;
  if (st->snap_failed && applied - st->snap_index < wait &&
      (st->max_bytes == 0 || st->bytes < st->max_bytes))
    return RAFT_BUSY; /* transient for raft: it asks again at a later apply */
  st->snap_failed = 0;
  st->snap_index = applied;
  st->bytes = 0;
  /* RAFT_BUSY, never an error: from here an error takes this node's raft
   * down (libraft 0.15 turns it UNAVAILABLE on a follower). */
  int rc = cs_store_view_begin(st->store, &st->snap_view);
  if (rc < 0) {
    cs_warn("cluster: cannot take a raft snapshot: %s", cs_error_message(rc));
    st->snap_view = NULL;
    st->snap_failed = 1;
    return RAFT_BUSY;
  }
  *bufs = NULL;
  *n_bufs = 0;
  size_t data = 0, room = 0;
  int here = fsm->snapshot_async == NULL; /* an io without async_work (cluster.c) */
  if (!here && cs_store_view_room(st->snap_view, &data, &room) == 0) {
    int little = room / SNAP_ROOM_FACTOR < data;
    if (little != st->on_loop) /* said once per change: the file never shrinks */
      cs_info("cluster: %zu MiB of room left in the map for %zu MiB of data: raft snapshots "
              "are encoded %s", room >> 20, data >> 20,
              little ? "on the event loop (a pause each; raise storage.map_size_mb)"
                     : "on a worker thread again");
    st->on_loop = little;
    here = little;
  }
  if (!here)
    return 0;
  rc = fsm_snapshot_async(fsm, bufs, n_bufs);
  return rc == 0 ? 0 : RAFT_BUSY;
}

static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                              unsigned *n_bufs) {
  fsm_state *st = fsm->data;
  uint8_t *buf;
  size_t len;
  if (st->snap_view == NULL)
    return 0; /* fsm_snapshot encoded it on the loop (little room): *bufs is set */
  uint64_t t0 = uv_hrtime();
  int rc = encode_view(st->snap_view, &buf, &len);
  cs_store_view_end(st->snap_view); /* at once: LMDB may reuse its pages again */
  st->snap_view = NULL;
  if (rc < 0) {
    cs_warn("cluster: cannot encode a raft snapshot: %s", cs_error_message(rc));
    st->snap_failed = 1; /* read on the loop after uv's after-work callback */
    return RAFT_IOERR;
  }
  *bufs = raft_malloc(sizeof **bufs);
  if (*bufs == NULL) {
    raft_free(buf);
    st->snap_failed = 1;
    return RAFT_NOMEM;
  }
  (*bufs)[0].base = buf;
  (*bufs)[0].len = len;
  *n_bufs = 1;
  cs_debug("cluster: snapshot taken (%zu bytes, encoded in %.1f ms)", len,
           (double)(uv_hrtime() - t0) / 1e6);
  return 0;
}

static int fsm_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
  fsm_state *st = fsm->data;
  cs_store_view_end(st->snap_view); /* the worker never ran */
  st->snap_view = NULL;
  if (*bufs != NULL) {
    for (unsigned i = 0; i < *n_bufs; i++)
      raft_free((*bufs)[i].base);
    raft_free(*bufs);
  }
  *bufs = NULL;
  *n_bufs = 0;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  fsm_state *st = fsm->data;
  st->bytes = 0; /* the log now starts after the installed snapshot */
  restore_threshold(st);
  int rc = cs_fsm_snapshot_restore(st->store, buf->base, buf->len);
  if (st->auth_changed != NULL)
    st->auth_changed(st->auth_ctx); /* every token and policy may have changed */
  if (rc < 0) {
    cs_error("cluster: cannot restore a snapshot: %s", cs_error_message(rc));
    return RAFT_IOERR;
  }
  raft_free(buf->base);
  return 0;
}

void cs_fsm_init(struct raft_fsm *fsm, struct raft *r, cs_store *store, cs_fsm_results_fn results,
                 void *ctx) {
  fsm_state *state = calloc(1, sizeof *state);
  assert(state != NULL);
  state->raft = r;
  state->store = store;
  state->results = results;
  state->ctx = ctx;
  memset(fsm, 0, sizeof *fsm);
  fsm->version = 3;
  fsm->data = state;
  fsm->apply = fsm_apply;
  fsm->snapshot = fsm_snapshot;
  fsm->restore = fsm_restore;
  fsm->snapshot_finalize = fsm_finalize;
  fsm->snapshot_async = fsm_snapshot_async;
}

void cs_fsm_set_snapshot_limits(struct raft_fsm *fsm, unsigned threshold, uint64_t max_bytes) {
  fsm_state *st = fsm->data;
  st->threshold = threshold;
  st->max_bytes = max_bytes;
}

void cs_fsm_on_auth_change(struct raft_fsm *fsm, void (*fn)(void *ctx), void *ctx) {
  fsm_state *st = fsm->data;
  st->auth_changed = fn;
  st->auth_ctx = ctx;
}

void cs_fsm_close(struct raft_fsm *fsm) {
  fsm_state *st = fsm->data;
  /* The apply commits without fsync: a clean stop leaves the store on disk. */
  int rc = st != NULL ? cs_store_sync(st->store) : 0;
  if (rc < 0)
    cs_warn("cluster: cannot flush the store at close: %s", cs_error_message(rc));
  if (st != NULL)
    cs_store_view_end(st->snap_view); /* none: raft finalizes before it closes */
  free(fsm->data);
  fsm->data = NULL;
}
