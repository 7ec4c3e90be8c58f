/*
 * commitq: grouping and the one retry policy, over a backend table.
 * See commitq.h.  Loop thread only: the writer backend's thread never sees
 * the queue, only the groups handed to it.
 */
#include "commitq.h"
#include "cs_error.h"
#include "log.h"
#include "stats.h"
#include "writer.h"

#include <stdlib.h>
#include <string.h>

/* How often a cluster node flushes its store in the background. */
#define CLUSTER_SYNC_MS 1000

typedef struct item {
  struct item *next;
  cs_batch b;
  cs_done_fn cb;
  void *arg;
  int alone;         /* retried: handed on in a group of its own */
} item;

/* Items handed on together; the backend's `arg`. */
typedef struct group {
  cs_commitq *q;
  item *items;
  size_t n;
  uint64_t handed_ns;  /* when handed to the backend (metrics) */
} group;

struct cs_commitq {
  uv_loop_t *loop;
  cs_store *store;
  cs_commit_writer *writer;        /* standalone backend; a cluster's background flusher */
  const cs_commit_backend *be;
  void *be_ctx;
  /* cs_commitq_set_backend: raft behind the backend table. */
  cs_commit_backend raft_be;
  cs_commitq_backend_fn raft_fn;
  void *raft_ctx;
  uv_idle_t idle;                  /* hands on what a loop turn submitted */
  item *head, *tail;               /* submitted, not yet handed on */
  unsigned in_flight;              /* groups handed on, not yet done */
  int stopping;
  int closed;                      /* the idle handle is closed */
};

static void pump(cs_commitq *q);

/* The queue is freed once it is stopped and closed and no backend holds
 * one of its groups (raft's last callbacks come when raft closes). */
static void maybe_free(cs_commitq *q) {
  if (q->closed && q->in_flight == 0)
    free(q);
}

/* Runs each item's callback with its result (status < 0: all failed) and
 * frees the group.  A detail made on another thread is set for the
 * callback; without one, no stale detail of this thread's goes with it. */
static void finish(group *g, int status, const int *each, const char *const *detail) {
  size_t i = 0;
  for (item *it = g->items, *next; it; it = next, i++) {
    next = it->next;
    int st = status < 0 || each == NULL ? status : each[i];
    if (detail != NULL && detail[i] != NULL)
      cs_error_set(st, "%s", detail[i]);
    else if (detail != NULL)
      cs_error_clear();
    cs_batch_clear(&it->b);
    it->cb(it->arg, st);
    free(it);
  }
  free(g);
}

/* The retry policy: a group's batches go back to the head of the queue,
 * in their order, each to be handed on alone. */
static void requeue_alone(cs_commitq *q, group *g) {
  item *last = NULL;
  for (item *it = g->items; it; it = it->next) {
    it->alone = 1;
    last = it;
  }
  if (last != NULL) {
    last->next = q->head;
    if (q->head == NULL)
      q->tail = last;
    q->head = g->items;
  }
  free(g);
}

/* A group the backend refused (nothing of it was applied): with several
 * batches one of them may be the cause, so each is tried alone. */
static void refused(cs_commitq *q, group *g, int rc) {
  if (g->n > 1) {
    cs_debug("group of %zu batches failed (%s): retrying them one by one", g->n,
             cs_error_message(rc));
    requeue_alone(q, g);
  } else {
    finish(g, rc, NULL, NULL);
  }
}

/* The backend's report on a group (loop thread). */
static void group_done(void *arg, int status, const int *each, const char *const *detail) {
  group *g = arg;
  cs_commitq *q = g->q;
  q->in_flight--;
  cs_hist_observe_ns(&cs_stats_get()->commit_seconds, cs_stats_now_ns() - g->handed_ns);
  int retry = status < 0 && q->be->retry_after_done && g->n > 1;
  if (retry)
    requeue_alone(q, g);
  /* The next group first, so the backend is busy while callbacks run. */
  if (!q->stopping)
    pump(q);
  if (!retry)
    finish(g, status, each, detail);
  if (q->stopping)
    maybe_free(q);
}

/* Takes the next group off the queue: one retried item alone, or every
 * item up to the next retried one.  NULL when out of memory. */
static group *take_group(cs_commitq *q) {
  group *g = calloc(1, sizeof *g);
  if (g == NULL)
    return NULL;
  g->q = q;
  item *it = q->head, *last = NULL;
  if (it->alone) {
    last = it;
    g->n = 1;
  } else {
    for (; it != NULL && !it->alone; it = it->next) {
      last = it;
      g->n++;
    }
  }
  g->items = q->head;
  q->head = last->next;
  if (q->head == NULL)
    q->tail = NULL;
  last->next = NULL;
  return g;
}

/* Hands one group to the backend; a refused group is retried (nothing of
 * it was applied) or fails. */
static void hand_on(cs_commitq *q, group *g) {
  const cs_batch **b = malloc(g->n * sizeof *b);
  int rc;
  if (b == NULL) {
    rc = cs_error_set(CS_ENOMEM, "out of memory submitting a group");
  } else {
    size_t i = 0;
    for (item *it = g->items; it; it = it->next)
      b[i++] = &it->b;
    q->in_flight++;
    g->handed_ns = cs_stats_now_ns();
    cs_hist_observe_value(&cs_stats_get()->commit_group_batches, g->n);
    rc = q->be->submit(q->be_ctx, b, g->n, group_done, g);
    free(b);
    if (rc < 0)
      q->in_flight--;
  }
  if (rc < 0)
    refused(q, g, rc);
}

/* Hands on groups while the backend takes more. */
static void pump(cs_commitq *q) {
  while (q->head != NULL &&
         (q->be->max_in_flight == 0 || q->in_flight < q->be->max_in_flight)) {
    group *g = take_group(q);
    if (g == NULL) { /* fail one batch; the rest wait for memory */
      item *it = q->head;
      q->head = it->next;
      if (q->head == NULL)
        q->tail = NULL;
      cs_batch_clear(&it->b);
      it->cb(it->arg, cs_error_set(CS_ENOMEM, "out of memory submitting a group"));
      free(it);
      continue;
    }
    hand_on(q, g);
  }
}

/* Once per loop turn with submissions. */
static void on_idle(uv_idle_t *h) {
  cs_commitq *q = h->data;
  uv_idle_stop(&q->idle);
  pump(q);
}

int cs_commitq_start(cs_commitq **out, uv_loop_t *loop, cs_store *store) {
  cs_commitq *q = calloc(1, sizeof *q);
  if (q == NULL)
    return CS_ENOMEM;
  q->loop = loop;
  q->store = store;
  int rc = cs_commit_writer_start(&q->writer, loop, store);
  if (rc < 0) {
    free(q);
    return rc;
  }
  q->be = &cs_commit_writer_backend;
  q->be_ctx = q->writer;
  uv_idle_init(loop, &q->idle);
  q->idle.data = q;
  *out = q;
  return 0;
}

int cs_commitq_submit(cs_commitq *q, cs_batch *b, cs_done_fn cb, void *arg) {
  if (q->stopping)
    return cs_error_set(CS_EUNAVAIL, "server is shutting down");
  item *it = calloc(1, sizeof *it);
  if (it == NULL)
    return CS_ENOMEM;
  it->b = *b;
  cs_batch_init(b);
  it->cb = cb;
  it->arg = arg;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  uv_idle_start(&q->idle, on_idle);
  return 0;
}

void cs_commitq_use_backend(cs_commitq *q, const cs_commit_backend *be, void *be_ctx) {
  /* What the writer holds commits first, in order (start-up only). */
  while (q->in_flight > 0 && q->be->drain != NULL)
    q->be->drain(q->be_ctx);
  pump(q); /* not started before the loop runs: nothing was handed on */
  while (q->in_flight > 0 && q->be->drain != NULL)
    q->be->drain(q->be_ctx);
  q->be = be;
  q->be_ctx = be_ctx;
  if (be->durable_log) {
    /* The writer thread is idle now, and stays so: LMDB reads the flag at
     * commit, and only the state machine commits from here on. */
    int rc = cs_store_set_sync(q->store, 0);
    if (rc < 0)
      cs_warn("cannot turn fsync off for the state machine (it stays on): %s",
              cs_error_message(rc));
    else
      cs_commit_writer_sync_every(q->writer, CLUSTER_SYNC_MS);
  }
}

/* The raft adapter: raft reports without details. */
static void raft_done(void *arg, int status, const int *each) {
  group_done(arg, status, each, NULL);
}

static int raft_submit(void *ctx, const cs_batch *const *batches, size_t n,
                       cs_commit_done_fn done, void *arg) {
  cs_commitq *q = ctx;
  (void)done; /* always group_done: raft_done calls it */
  return q->raft_fn(q->raft_ctx, batches, n, raft_done, arg);
}

void cs_commitq_set_backend(cs_commitq *q, cs_commitq_backend_fn fn, void *ctx) {
  q->raft_fn = fn;
  q->raft_ctx = ctx;
  q->raft_be = (cs_commit_backend){
      .name = "raft",
      .max_in_flight = 0,      /* entries pipeline */
      .retry_after_done = 0,   /* a lost leadership may still commit the entry */
      .durable_log = 1,        /* libraft fsyncs its log before an entry counts */
      .submit = raft_submit,
      .drain = NULL,
  };
  cs_commitq_use_backend(q, &q->raft_be, q);
}

static void on_idle_closed(uv_handle_t *h) {
  cs_commitq *q = h->data;
  q->closed = 1;
  maybe_free(q);
}

void cs_commitq_stop(cs_commitq *q) {
  q->stopping = 1; /* from now on submissions are refused */
  uv_idle_stop(&q->idle);
  for (;;) {
    pump(q);
    if (q->in_flight == 0 || q->be->drain == NULL)
      break;
    q->be->drain(q->be_ctx); /* callbacks run; retries go back on the queue */
  }
  cs_commit_writer_stop(q->writer); /* a cluster's: one last flush */
  q->writer = NULL;
  uv_close((uv_handle_t *)&q->idle, on_idle_closed);
}
