/* writer: the LMDB writer thread, a commit backend.  See writer.h. */
#include "writer.h"
#include "cs_error.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One group handed on: the batches are the queue's (valid until done). */
typedef struct job {
  struct job *next;
  const cs_batch **batches;
  size_t n;
  int rc;            /* the whole group's result */
  int *status;       /* each batch's */
  char **detail;     /* each failing batch's error detail (made on the thread) */
  cs_commit_done_fn done;
  void *arg;
} job;

struct cs_commit_writer {
  uv_loop_t *loop;
  cs_store *store;
  uv_async_t async;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake;    /* the thread: a job, a stop, or a new sync period */
  pthread_cond_t idle;    /* drain: the thread finished a job */
  job *todo_head, *todo_tail;   /* handed on, for the thread */
  job *done_head, *done_tail;   /* committed, callbacks pending on the loop */
  int busy;                     /* the thread is committing a job */
  int stopping;
  unsigned sync_ms;             /* background flush period (0: none) */
};

static void push(job **head, job **tail, job *j) {
  j->next = NULL;
  if (*tail)
    (*tail)->next = j;
  else
    *head = j;
  *tail = j;
}

static void job_free(job *j) {
  for (size_t i = 0; i < j->n; i++)
    free(j->detail[i]);
  free(j->detail);
  free(j->status);
  free(j->batches);
  free(j);
}

/* On the thread: one transaction for the group (cs_store_commit_group
 * leaves a batch that fails out alone).  Details are per thread: carry
 * them to the loop, so a client reads "disk full: ... in /var/lib/custos",
 * not "i/o error". */
static void commit_job(cs_commit_writer *w, job *j) {
  j->rc = cs_store_commit_group(w->store, j->batches, j->n, j->status);
  if (j->rc < 0)
    cs_debug("group of %zu batches failed: %s", j->n, cs_error_message(j->rc));
  for (size_t i = 0; i < j->n; i++) {
    int st = j->rc < 0 ? j->rc : j->status[i];
    if (st < 0)
      j->detail[i] = strdup(cs_error_message(st));
  }
}

/* Waits for work, or for the next background flush when one is due. */
static int wait_for_work(cs_commit_writer *w) {
  if (w->sync_ms == 0)
    return pthread_cond_wait(&w->wake, &w->mu);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += w->sync_ms / 1000;
  ts.tv_nsec += (long)(w->sync_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return pthread_cond_timedwait(&w->wake, &w->mu, &ts);
}

/* Off the loop: the store commits without fsync in a cluster; flushing it
 * now and then bounds what raft must replay after an OS crash. */
static void flush_store(cs_commit_writer *w) {
  int rc = cs_store_sync(w->store);
  if (rc < 0)
    cs_warn("background flush of the store failed: %s", cs_error_message(rc));
}

static void *writer(void *arg) {
  cs_commit_writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->todo_head == NULL && !w->stopping) {
      if (wait_for_work(w) == ETIMEDOUT && w->todo_head == NULL && !w->stopping) {
        pthread_mutex_unlock(&w->mu);
        flush_store(w);
        pthread_mutex_lock(&w->mu);
      }
    }
    if (w->todo_head == NULL)
      break; /* stopping, and nothing left */
    job *j = w->todo_head;
    w->todo_head = j->next;
    if (w->todo_head == NULL)
      w->todo_tail = NULL;
    w->busy = 1;
    pthread_mutex_unlock(&w->mu);

    commit_job(w, j);

    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    push(&w->done_head, &w->done_tail, j);
    pthread_cond_broadcast(&w->idle);
    uv_async_send(&w->async);
  }
  unsigned flush = w->sync_ms;
  pthread_mutex_unlock(&w->mu);
  if (flush)
    flush_store(w); /* a clean stop leaves the store on disk */
  return NULL;
}

/* On the loop: the callbacks of committed groups, in commit order. */
static void deliver(cs_commit_writer *w) {
  pthread_mutex_lock(&w->mu);
  job *list = w->done_head;
  w->done_head = w->done_tail = NULL;
  pthread_mutex_unlock(&w->mu);
  for (job *j = list, *next; j; j = next) {
    next = j->next;
    j->done(j->arg, j->rc, j->rc < 0 ? NULL : j->status, (const char *const *)j->detail);
    job_free(j);
  }
}

static void on_async(uv_async_t *h) { deliver(h->data); }

static int writer_submit(void *ctx, const cs_batch *const *batches, size_t n,
                         cs_commit_done_fn done, void *arg) {
  cs_commit_writer *w = ctx;
  job *j = calloc(1, sizeof *j);
  if (j == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory committing a group");
  size_t m = n ? n : 1;
  j->batches = malloc(m * sizeof *j->batches);
  j->status = calloc(m, sizeof *j->status);
  j->detail = calloc(m, sizeof *j->detail);
  if (j->batches == NULL || j->status == NULL || j->detail == NULL) {
    j->n = 0;
    job_free(j);
    return cs_error_set(CS_ENOMEM, "out of memory committing a group");
  }
  memcpy(j->batches, batches, n * sizeof *batches);
  j->n = n;
  j->done = done;
  j->arg = arg;
  pthread_mutex_lock(&w->mu);
  if (w->stopping) {
    pthread_mutex_unlock(&w->mu);
    job_free(j);
    return cs_error_set(CS_EUNAVAIL, "server is shutting down");
  }
  push(&w->todo_head, &w->todo_tail, j);
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

static void writer_drain(void *ctx) {
  cs_commit_writer *w = ctx;
  pthread_mutex_lock(&w->mu);
  while (w->todo_head != NULL || w->busy)
    pthread_cond_wait(&w->idle, &w->mu);
  pthread_mutex_unlock(&w->mu);
  deliver(w);
}

const cs_commit_backend cs_commit_writer_backend = {
    .name = "lmdb writer thread",
    .max_in_flight = 1,
    .retry_after_done = 1,
    .durable_log = 0,
    .submit = writer_submit,
    .drain = writer_drain,
};

int cs_commit_writer_start(cs_commit_writer **out, uv_loop_t *loop, cs_store *store) {
  cs_commit_writer *w = calloc(1, sizeof *w);
  if (w == NULL)
    return CS_ENOMEM;
  w->loop = loop;
  w->store = store;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->idle, NULL);
  if (uv_async_init(loop, &w->async, on_async) != 0) {
    free(w);
    return cs_error_set(CS_EINTERNAL, "uv_async_init failed");
  }
  w->async.data = w;
  if (pthread_create(&w->thread, NULL, writer, w) != 0) {
    uv_close((uv_handle_t *)&w->async, NULL);
    return cs_error_set(CS_EINTERNAL, "cannot start the writer thread");
  }
  *out = w;
  return 0;
}

void cs_commit_writer_sync_every(cs_commit_writer *w, unsigned ms) {
  pthread_mutex_lock(&w->mu);
  w->sync_ms = ms;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
}

static void on_close(uv_handle_t *h) {
  cs_commit_writer *w = h->data;
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->wake);
  pthread_cond_destroy(&w->idle);
  free(w);
}

void cs_commit_writer_stop(cs_commit_writer *w) {
  pthread_mutex_lock(&w->mu);
  w->stopping = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  deliver(w); /* callbacks of the last groups */
  uv_close((uv_handle_t *)&w->async, on_close);
}
