/*
 * audit: see audit.h.
 *
 * Invariants: `fd` is always an open descriptor of the log (reopen only
 * swaps after the new open succeeded); `hkey` (the HMAC key as pad states)
 * is secmem for the whole life of the log and meaningful only while
 * `has_key`; everything below `mu` (fd, hkey, has_key, torn, sync) is read
 * and written under it.
 */
#include "audit.h"
#include "crypto.h"
#include "cs_error.h"
#include "fdio.h"
#include "jbuf.h"
#include "secmem.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cs_audit {
  pthread_mutex_t mu;
  char *path;
  int fd;
  cs_hmac_key *hkey; /* secmem: the HMAC key's pad states (crypto.h) */
  int has_key;
  int torn;       /* the last write stopped mid-line */
  int sync;
  char *group;    /* staged lines (cs_audit_stage), written by cs_audit_flush */
  size_t group_len, group_cap;
  cs_jbuf line;   /* the record being built (its buffer kept from one to the next) */
  int64_t ts_t;   /* the second ts holds (records of one second share it) */
  char ts[32];
};

static int open_log(const char *path, int *fd) {
  *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  if (*fd < 0)
    return cs_error_set(CS_EAUDIT, "cannot open audit log %s: %s", path, strerror(errno));
  return 0;
}

int cs_audit_open(cs_audit **out, const char *path) {
  cs_audit *a = calloc(1, sizeof *a);
  int rc = CS_ENOMEM;
  if (a == NULL)
    return CS_ENOMEM;
  a->fd = -1;
  a->ts_t = INT64_MIN;
  cs_jbuf_init(&a->line, CS_JBUF_SURROGATEESCAPE);
  if ((a->path = strdup(path)) == NULL ||
      (a->hkey = cs_secmem_alloc(sizeof *a->hkey)) == NULL)
    goto fail_alloc;
  if ((rc = open_log(path, &a->fd)) < 0)
    goto fail_alloc;
  if (pthread_mutex_init(&a->mu, NULL) != 0) {
    rc = CS_ENOMEM;
    goto fail_mutex;
  }
  *out = a;
  return 0;
fail_mutex:
  close(a->fd);
fail_alloc:
  cs_secmem_free(a->hkey, sizeof *a->hkey);
  free(a->path);
  free(a);
  return rc;
}

int cs_audit_reopen(cs_audit *a) {
  int fd, rc = open_log(a->path, &fd);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&a->mu);
  int old = a->fd;
  a->fd = fd;
  a->torn = 0; /* a fresh file has no partial line */
  pthread_mutex_unlock(&a->mu);
  close(old);
  return 0;
}

void cs_audit_close(cs_audit *a) {
  if (a == NULL)
    return;
  close(a->fd);
  cs_secmem_free(a->hkey, sizeof *a->hkey);
  pthread_mutex_destroy(&a->mu);
  cs_jbuf_free(&a->line);
  free(a->group);
  free(a->path);
  free(a);
}

void cs_audit_set_sync(cs_audit *a, int on) {
  pthread_mutex_lock(&a->mu);
  a->sync = on != 0;
  pthread_mutex_unlock(&a->mu);
}

void cs_audit_set_hmac_key(cs_audit *a, const uint8_t key[32]) {
  pthread_mutex_lock(&a->mu);
  cs_hmac_key_set(a->hkey, key);
  a->has_key = 1;
  pthread_mutex_unlock(&a->mu);
}

void cs_audit_clear_hmac_key(cs_audit *a) {
  pthread_mutex_lock(&a->mu);
  cs_wipe(a->hkey, sizeof *a->hkey);
  a->has_key = 0;
  pthread_mutex_unlock(&a->mu);
}

/* cs_audit_hmac_hex with a->mu held. */
static void hmac_hex_locked(const cs_audit *a, const uint8_t *v, size_t n,
                            char out[CS_AUDIT_HMAC_STR_MAX]) {
  uint8_t mac[32];
  if (!a->has_key) {
    memcpy(out, CS_AUDIT_HMAC_UNAVAILABLE, sizeof CS_AUDIT_HMAC_UNAVAILABLE);
    return;
  }
  cs_hmac_sha256_with(a->hkey, v, n, mac);
  memcpy(out, CS_AUDIT_HMAC_PREFIX, sizeof CS_AUDIT_HMAC_PREFIX - 1);
  cs_hex_encode(mac, sizeof mac, out + sizeof CS_AUDIT_HMAC_PREFIX - 1);
  cs_wipe(mac, sizeof mac);
}

void cs_audit_hmac_hex(const cs_audit *a, const uint8_t *v, size_t n,
                       char out[CS_AUDIT_HMAC_STR_MAX]) {
  /* The lock is not part of the log's logical state, so locking it through
   * a const handle is fine. */
  pthread_mutex_t *mu = (pthread_mutex_t *)&a->mu;
  pthread_mutex_lock(mu);
  hmac_hex_locked(a, v, n, out);
  pthread_mutex_unlock(mu);
}

static void build_sensitive(const cs_audit *a, const cs_audit_record *r, cs_jbuf *b) {
  char mac[CS_AUDIT_HMAC_STR_MAX];
  cs_jbuf_key(b, "sensitive");
  cs_jbuf_begin_array(b);
  for (size_t i = 0; i < r->n_sensitive; i++) {
    const cs_audit_sensitive *s = &r->sensitive[i];
    hmac_hex_locked(a, s->value, s->len, mac);
    cs_jbuf_begin_object(b);
    cs_jbuf_key_str(b, "field", s->field);
    cs_jbuf_key_str(b, "value", mac);
    cs_jbuf_end_object(b);
  }
  cs_jbuf_end_array(b);
}

/* The record as one JSON line (with its newline) into b.  Called with the
 * lock held, because sensitive values need the key. */
static void build(cs_audit *a, const cs_audit_record *r, cs_jbuf *b) {
  assert(r->type == CS_AUDIT_REQUEST || r->type == CS_AUDIT_RESPONSE);
  assert(r->n_sensitive == 0 || r->sensitive != NULL);
  if (r->time != a->ts_t) {
    cs_rfc3339(r->time, a->ts, sizeof a->ts);
    a->ts_t = r->time;
  }
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "type", r->type == CS_AUDIT_REQUEST ? "request" : "response");
  cs_jbuf_key_str(b, "time", a->ts);
  cs_jbuf_key_uint(b, "request_id", r->request_id);
  cs_jbuf_key_str(b, "client", r->client);
  cs_jbuf_key_str(b, "accessor", r->accessor);
  cs_jbuf_key_str(b, "operation", r->operation);
  cs_jbuf_key_str(b, "path", r->path);
  if (r->type == CS_AUDIT_RESPONSE) {
    cs_jbuf_key_str(b, "result", r->error == 0 ? "ok" : "error");
    if (r->error != 0) {
      cs_jbuf_key_str(b, "error_code", cs_errname(r->error));
      cs_jbuf_key_str(b, "error_message",
                      r->error_message != NULL ? r->error_message : cs_strerror(r->error));
    }
  }
  if (r->n_sensitive > 0)
    build_sensitive(a, r, b);
  cs_jbuf_end_object(b);
  cs_jbuf_raw(b, "\n", 1);
}

/* Writes a line with a->mu held: after a torn line first ends it, so the
 * damage stays confined to that one line. */
static int write_line(cs_audit *a, const char *line, size_t n) {
  size_t done;
  int err;
  if (a->torn) {
    if ((err = cs_write_all(a->fd, "\n", 1, &done)) != 0)
      return cs_error_set(CS_EAUDIT, "audit log %s: write failed: %s", a->path, strerror(err));
    a->torn = 0;
  }
  if ((err = cs_write_all(a->fd, line, n, &done)) != 0) {
    a->torn = done > 0;
    return cs_error_set(CS_EAUDIT, "audit log %s: write failed: %s", a->path, strerror(err));
  }
  if (a->sync && fdatasync(a->fd) != 0)
    return cs_error_set(CS_EAUDIT, "audit log %s: fdatasync failed: %s", a->path,
                        strerror(errno));
  return 0;
}

/* Builds r into a->line with a->mu held; *line and *n point into it
 * until build_done. */
static int build_line(cs_audit *a, const cs_audit_record *r, const char **line, size_t *n) {
  cs_jbuf_reset(&a->line);
  build(a, r, &a->line);
  int rc = cs_jbuf_result(&a->line, line, n);
  if (rc < 0)
    return cs_error_set(CS_EAUDIT, "audit log %s: cannot build record: %s", a->path,
                        cs_strerror(rc));
  return 0;
}

/* Wipes the record built; a buffer grown past 64 KiB by a large one (a
 * secret of a thousand fields) is let go rather than kept for good. */
static void build_done(cs_audit *a) {
  if (a->line.cap > 65536)
    cs_jbuf_free(&a->line);
  else
    cs_jbuf_reset(&a->line);
}

/* The staged group as one write, with a->mu held.  The group is emptied
 * whatever the outcome: its records' requests are failed by the caller. */
static int flush_locked(cs_audit *a) {
  if (a->group_len == 0)
    return 0;
  int rc = write_line(a, a->group, a->group_len);
  a->group_len = 0;
  return rc;
}

int cs_audit_write(cs_audit *a, const cs_audit_record *r) {
  const char *line;
  size_t n;
  pthread_mutex_lock(&a->mu);
  int rc = build_line(a, r, &line, &n);
  if (rc == 0)
    rc = write_line(a, line, n);
  build_done(a);
  pthread_mutex_unlock(&a->mu);
  return rc;
}

int cs_audit_stage(cs_audit *a, const cs_audit_record *r) {
  const char *line;
  size_t n;
  pthread_mutex_lock(&a->mu);
  int rc = build_line(a, r, &line, &n);
  if (rc == 0 && a->group_len + n > a->group_cap) {
    size_t cap = a->group_cap ? a->group_cap : 16384;
    while (cap < a->group_len + n)
      cap *= 2;
    char *g = realloc(a->group, cap);
    if (g == NULL)
      rc = CS_ENOMEM;
    else
      a->group = g, a->group_cap = cap;
  }
  if (rc == 0) {
    memcpy(a->group + a->group_len, line, n);
    a->group_len += n;
  }
  build_done(a);
  pthread_mutex_unlock(&a->mu);
  return rc;
}

int cs_audit_flush(cs_audit *a) {
  pthread_mutex_lock(&a->mu);
  int rc = flush_locked(a);
  /* A group that grew large once (a burst) does not keep its memory. */
  if (a->group_cap > (1u << 20)) {
    free(a->group);
    a->group = NULL;
    a->group_cap = 0;
  }
  pthread_mutex_unlock(&a->mu);
  return rc;
}

size_t cs_audit_staged(cs_audit *a) {
  pthread_mutex_lock(&a->mu);
  size_t n = a->group_len;
  pthread_mutex_unlock(&a->mu);
  return n;
}
