/* commitq: group commit on a writer thread.  See commitq.h. */
#include "commitq.h"
#include "cs_error.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
  struct item *next;
  cs_batch b;
  cs_commitq_cb cb;
  void *arg;
  int status;
  char *detail;    /* the writer thread's error detail, for the loop thread */
} item;

struct cs_commitq {
  uv_loop_t *loop;
  cs_store *store;
  uv_async_t async;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  item *queue_head, *queue_tail;   /* queued for the writer */
  item *done_head, *done_tail;   /* committed, callbacks pending on the loop */
  int stopping;
  unsigned long long commits, batches;
  /* Cluster mode (loop thread only). */
  cs_commitq_backend_fn backend;
  void *backend_ctx;
  uv_idle_t idle;
  item *pend_head, *pend_tail;   /* submitted this turn of the loop */
};

static void push(item **head, item **tail, item *it) {
  it->next = NULL;
  if (*tail)
    (*tail)->next = it;
  else
    *head = it;
  *tail = it;
}

/* The batches of a list of items, as the array the store and the backend
 * take.  *n is their count; NULL when out of memory. */
static const cs_batch **group_batches(item *group, size_t *n) {
  size_t count = 0;
  for (item *it = group; it; it = it->next)
    count++;
  const cs_batch **b = malloc((count ? count : 1) * sizeof *b);
  if (b == NULL)
    return NULL;
  count = 0;
  for (item *it = group; it; it = it->next)
    b[count++] = &it->b;
  *n = count;
  return b;
}

/* Commits a group in one transaction; a batch that fails is left out
 * alone (cs_store_commit_group: the same policy as a cluster's entries). */
static void commit_group(cs_commitq *q, item *group) {
  size_t n = 0;
  const cs_batch **b = group_batches(group, &n);
  int *status = b != NULL ? malloc(n * sizeof *status) : NULL;
  if (status == NULL) {
    for (item *it = group; it; it = it->next)
      it->status = cs_error_set(CS_ENOMEM, "out of memory committing a group");
    free(b);
    return;
  }
  int rc = cs_store_commit_group(q->store, b, n, status);
  if (rc < 0)
    cs_debug("group of %zu batches failed: %s", n, cs_error_message(rc)); /* in each status */
  size_t i = 0;
  for (item *it = group; it; it = it->next)
    it->status = status[i++];
  q->commits++;
  free(status);
  free(b);
}

static void *writer(void *arg) {
  cs_commitq *q = arg;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (q->queue_head == NULL && !q->stopping)
      pthread_cond_wait(&q->wake, &q->mu);
    if (q->queue_head == NULL && q->stopping)
      break;
    item *group = q->queue_head;
    q->queue_head = q->queue_tail = NULL;
    pthread_mutex_unlock(&q->mu);

    commit_group(q, group);
    /* Details are per thread: carry them to the loop with the status, so a
     * client reads "disk full: ... in /var/lib/custos", not "i/o error". */
    for (item *it = group; it; it = it->next)
      if (it->status < 0)
        it->detail = strdup(cs_error_message(it->status));

    pthread_mutex_lock(&q->mu);
    for (item *it = group, *next; it; it = next) {
      next = it->next;
      q->batches++;
      cs_batch_clear(&it->b);
      push(&q->done_head, &q->done_tail, it);
    }
    uv_async_send(&q->async);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* On the loop: run the callbacks of committed batches. */
static void on_async(uv_async_t *h) {
  cs_commitq *q = h->data;
  pthread_mutex_lock(&q->mu);
  item *list = q->done_head;
  q->done_head = q->done_tail = NULL;
  pthread_mutex_unlock(&q->mu);
  for (item *it = list, *next; it; it = next) {
    next = it->next;
    if (it->detail != NULL) {
      cs_error_set(it->status, "%s", it->detail);
      free(it->detail);
    } else {
      cs_error_clear(); /* no stale detail of this thread's for the status */
    }
    it->cb(it->arg, it->status);
    free(it);
  }
}

int cs_commitq_start(cs_commitq **out, uv_loop_t *loop, cs_store *store) {
  cs_commitq *q = calloc(1, sizeof *q);
  if (q == NULL)
    return CS_ENOMEM;
  q->loop = loop;
  q->store = store;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->wake, NULL);
  if (uv_async_init(loop, &q->async, on_async) != 0) {
    free(q);
    return cs_error_set(CS_EINTERNAL, "uv_async_init failed");
  }
  q->async.data = q;
  if (pthread_create(&q->thread, NULL, writer, q) != 0) {
    uv_close((uv_handle_t *)&q->async, NULL);
    return cs_error_set(CS_EINTERNAL, "cannot start the writer thread");
  }
  *out = q;
  return 0;
}

/* ---- cluster mode: groups go to the backend (raft) ------------------------ */

/* Runs every callback of a group (`status` < 0: the whole group failed;
 * else each batch's status[i]) and frees the items. */
static void finish_group(void *arg, int status, const int *each) {
  item *list = arg;
  size_t i = 0;
  for (item *it = list, *next; it; it = next, i++) {
    next = it->next;
    cs_batch_clear(&it->b);
    it->cb(it->arg, status < 0 || each == NULL ? status : each[i]);
    free(it);
  }
}

/* Once per loop turn with submissions: one group, one backend call. */
static void on_idle(uv_idle_t *h) {
  cs_commitq *q = h->data;
  uv_idle_stop(&q->idle);
  item *group = q->pend_head;
  q->pend_head = q->pend_tail = NULL;
  if (group == NULL)
    return;
  size_t n = 0;
  const cs_batch **b = group_batches(group, &n);
  int rc = b == NULL ? cs_error_set(CS_ENOMEM, "out of memory submitting a group")
                     : q->backend(q->backend_ctx, b, n, finish_group, group);
  free(b);
  if (rc < 0) {
    finish_group(group, rc, NULL);
    return;
  }
  q->commits++;
  q->batches += n;
}

void cs_commitq_set_backend(cs_commitq *q, cs_commitq_backend_fn fn, void *ctx) {
  q->backend = fn;
  q->backend_ctx = ctx;
  uv_idle_init(q->loop, &q->idle);
  q->idle.data = q;
}

static int enqueue(cs_commitq *q, item *it) {
  if (q->backend != NULL) {
    if (q->stopping)
      return cs_error_set(CS_EUNAVAIL, "server is shutting down");
    it->next = NULL;
    push(&q->pend_head, &q->pend_tail, it);
    uv_idle_start(&q->idle, on_idle);
    return 0;
  }
  pthread_mutex_lock(&q->mu);
  if (q->stopping) {
    pthread_mutex_unlock(&q->mu);
    return cs_error_set(CS_EUNAVAIL, "server is shutting down");
  }
  push(&q->queue_head, &q->queue_tail, it);
  pthread_cond_signal(&q->wake);
  pthread_mutex_unlock(&q->mu);
  return 0;
}

int cs_commitq_submit(cs_commitq *q, cs_batch *b, cs_commitq_cb cb, void *arg) {
  item *it = calloc(1, sizeof *it);
  if (it == NULL)
    return CS_ENOMEM;
  it->b = *b;
  cs_batch_init(b);
  it->cb = cb;
  it->arg = arg;
  int rc = enqueue(q, it);
  if (rc < 0) {
    *b = it->b;
    free(it);
  }
  return rc;
}

static void on_close(uv_handle_t *h) { free(h->data); }

/* The idle handle closes first; the queue is freed with the async handle. */
static void on_idle_closed(uv_handle_t *h) {
  cs_commitq *q = h->data;
  uv_close((uv_handle_t *)&q->async, on_close);
}

void cs_commitq_stop(cs_commitq *q) {
  if (q->backend != NULL) {
    /* Hand the last group to the backend (it is still running). */
    on_idle(&q->idle);
  }
  pthread_mutex_lock(&q->mu);
  q->stopping = 1;
  pthread_cond_signal(&q->wake);
  pthread_mutex_unlock(&q->mu);
  pthread_join(q->thread, NULL);
  on_async(&q->async); /* callbacks of the last group */
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->wake);
  if (q->backend != NULL)
    uv_close((uv_handle_t *)&q->idle, on_idle_closed);
  else
    uv_close((uv_handle_t *)&q->async, on_close);
}

void cs_commitq_stats(const cs_commitq *q, unsigned long long *commits, unsigned long long *batches) {
  *commits = q->commits;
  *batches = q->batches;
}
