/*
 * conn: one client connection.  See conn.h for what it owns and its limits.
 *
 * States:
 *   HANDSHAKE  TLS handshake under the handshake timer.
 *   OPEN       reading frames and dispatching; the timer watches idleness.
 *   DRAIN      no new requests: the replies still owed are written, then a
 *              close_notify and a FIN (uv_shutdown); with `linger`, bytes the
 *              peer still sends are read and dropped until its EOF, so the
 *              kernel does not answer them with a reset that could destroy
 *              our last response in flight.  The timer bounds this state.
 *   CLOSED     uv_close was called on both handles.
 *
 * The reply FIFO: every dispatched request appends a cs_reply; cs_reply_send
 * fills the slot; flush_replies() writes filled slots from the head and stops
 * at the first unfilled one, so responses leave in request order.
 *
 * Order of effects: `pending` counts dispatched requests whose slot is not
 * filled yet, `pending_ordered` those of them that are not independent.  A
 * decoded request that may not run yet waits in `held` (at most one); it is
 * retried whenever a slot is filled.  A peer's close_notify drains with
 * `finish_buffered`: the requests it sent before it are still answered.
 */
#include "conn.h"
#include "bytes.h"
#include "cs_error.h"
#include "http.h"
#include "log.h"
#include "wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

enum { ST_HANDSHAKE, ST_OPEN, ST_DRAIN, ST_CLOSED };

/* How long replies may still be awaited once a connection is draining. */
#define DRAIN_TIMEOUT_MS 30000u
/* How long to wait for the peer's EOF after our FIN. */
#define LINGER_TIMEOUT_MS 2000u

struct cs_reply {
  cs_conn *conn;
  cs_reply *next;
  uint64_t id;
  uint8_t *frame;         /* packed response with its header, once filled */
  cs_http_req *http;      /* HTTP: how to render the response (NULL: protobuf) */
  size_t len;
  unsigned done : 1;      /* filled (or abandoned): may be written */
  unsigned held : 1;      /* filled by cs_reply_hold: waits for cs_reply_release */
  unsigned is_http : 1;   /* an HTTP request's slot (a replacement renders as HTTP) */
  unsigned counted : 1;   /* counts in conn->inflight and ->pending (a dispatched request) */
  unsigned ordered : 1;   /* counts in conn->pending_ordered (not independent) */
};

struct cs_conn {
  uv_tcp_t tcp;           /* handle.data = the conn */
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  cs_conn_env *env;
  cs_conn *prev, *next;   /* env->conns */
  cs_tls *tls;
  cs_client_info peer;
  struct sockaddr_storage sa;
  uint8_t *rbuf;          /* decrypted bytes not yet framed; NULL when empty */
  size_t rlen, rcap;
  cs_reply *head, *tail;
  Custos__Request *held;  /* decoded, waiting for the answers before it */
  cs_http_req *held_http; /* ... and, on HTTP, how its answer is rendered */
  int held_close;         /* ... and whether the connection closes after it */
  cs_http *http;          /* the HTTP parser once the first bytes said HTTP */
  unsigned inflight;      /* dispatched requests whose response is not written */
  unsigned pending;       /* dispatched requests whose slot is not filled */
  unsigned pending_ordered; /* ... of them not independent */
  size_t unsent;          /* bytes of filled slots not yet handed to TLS */
  unsigned refs;          /* 1 for the handles + 1 per cs_reply */
  unsigned handles_open;
  unsigned in_process;
  uint64_t last_active;   /* uv_now of the last request or response */
  uint64_t requests;
  /* The larger frame limit, while grant_check(grant_ctx, grant_hash) says
   * the token behind it may still write (cs_reply_grant_frames); NULL:
   * the pre-authentication limit.  The hash is what the store is keyed by,
   * not the token. */
  cs_frame_grant_fn grant_check;
  void *grant_ctx;
  uint8_t grant_hash[32];
  int head_granted;       /* the frame being received was checked and may be large */
  int state;
  unsigned started : 1;
  unsigned reading : 1;
  unsigned linger : 1;
  unsigned shut_started : 1;
  unsigned shut_done : 1;
  unsigned eof : 1;
  unsigned established : 1;    /* the TLS handshake completed */
  unsigned finish_buffered : 1;/* draining, but requests already received are answered */
  unsigned capped_logged : 1;  /* the in-flight cap was reported once */
  unsigned queued_logged : 1;  /* the queued-bytes cap was reported once */
  unsigned sniffed : 1;        /* the first decrypted byte chose the protocol */
  unsigned fed : 1;            /* bytes were handed to TLS */
  unsigned feeding : 1;        /* in cs_tls_feed: answers wait for its end (on_read) */
  unsigned listed : 1;         /* on a cs_reply_release_many list (flush_next) */
  cs_conn *flush_next;
};

static void conn_close(cs_conn *c);
static void flush_replies(cs_conn *c);
static void update_reading(cs_conn *c);
static void process_buffered(cs_conn *c);
static void drain_progress(cs_conn *c);
static void reject_with(cs_conn *c, uint8_t *bytes, size_t len);
static uint64_t http_deadline_in(const cs_conn *c, uint64_t now);
static unsigned http_request_ms(const cs_conn *c);

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Response bytes this connection holds that the peer has not taken yet:
 * filled slots, TLS records held by a cork (all of one read's answers are
 * corked until the read is handled), and the socket's write queue. */
static size_t queued_bytes(const cs_conn *c) {
  return c->tcp.write_queue_size + c->unsent + (c->tls != NULL ? cs_tls_corked_bytes(c->tls) : 0);
}

/* Whether frames read so far may still become requests. */
static int accepting(const cs_conn *c) {
  return c->state == ST_OPEN || (c->state == ST_DRAIN && c->finish_buffered);
}

/* ---------------------------------------------------------------- memory */

static void conn_unref(cs_conn *c) {
  if (--c->refs == 0)
    free(c);
}

static void wipe_free(void *p, size_t n) {
  if (p == NULL)
    return;
  mbedtls_platform_zeroize(p, n);
  free(p);
}

static void free_rbuf(cs_conn *c) {
  wipe_free(c->rbuf, c->rcap);
  c->rbuf = NULL;
  c->rlen = c->rcap = 0;
}

/* Drops the first n bytes of the receive buffer (frames handed over). */
static void rbuf_consume(cs_conn *c, size_t n) {
  if (n == 0)
    return;
  if (n >= c->rlen) {
    free_rbuf(c);
    return;
  }
  memmove(c->rbuf, c->rbuf + n, c->rlen - n);
  mbedtls_platform_zeroize(c->rbuf + c->rlen - n, n);
  c->rlen -= n;
}

/* Appends bytes; grows by copying so no stale plaintext is left behind by
 * realloc.  0 or CS_ENOMEM. */
static int rbuf_append(cs_conn *c, const uint8_t *buf, size_t len) {
  if (c->rcap - c->rlen < len) {
    size_t cap = c->rcap ? c->rcap : 1024;
    while (cap - c->rlen < len)
      cap *= 2;
    uint8_t *nb = malloc(cap);
    if (nb == NULL)
      return cs_error_set(CS_ENOMEM, "out of memory for a receive buffer of %zu bytes", cap);
    if (c->rlen > 0)
      memcpy(nb, c->rbuf, c->rlen);
    wipe_free(c->rbuf, c->rcap);
    c->rbuf = nb;
    c->rcap = cap;
  }
  memcpy(c->rbuf + c->rlen, buf, len);
  c->rlen += len;
  return 0;
}

/* Frees the request waiting for its turn (with its HTTP rendering). */
static void drop_held(cs_conn *c) {
  cs_wire_request_free(c->held);
  c->held = NULL;
  cs_http_req_free(c->held_http);
  c->held_http = NULL;
  c->held_close = 0;
}

static void on_handle_closed(uv_handle_t *h) {
  cs_conn *c = h->data;
  if (--c->handles_open > 0)
    return;
  /* Both handles are closed: pending writes and the shutdown request have
   * had their (cancelled) callbacks. */
  cs_tls_free(c->tls);
  c->tls = NULL;
  free_rbuf(c);
  cs_http_free(c->http);
  c->http = NULL;
  if (c->started) {
    cs_conn_env *env = c->env;
    if (c->prev != NULL)
      c->prev->next = c->next;
    else
      env->conns = c->next;
    if (c->next != NULL)
      c->next->prev = c->prev;
    env->nconns--;
    cs_debug("connection from %s closed after %llu requests", c->peer.address,
             (unsigned long long)c->requests);
    env->on_closed(env, c); /* may free env: do not touch it after this */
  }
  conn_unref(c);
}

/* Closes both handles.  Filled reply slots are freed now; unfilled ones
 * (and held ones) are detached and free themselves in cs_reply_send (or
 * cs_reply_release). */
static void conn_close(cs_conn *c) {
  if (c->state == ST_CLOSED)
    return;
  c->state = ST_CLOSED;
  cs_reply *r = c->head;
  while (r != NULL) {
    cs_reply *next = r->next;
    r->next = NULL;
    if (r->done) {
      wipe_free(r->frame, r->len);
      free(r);
      c->refs--; /* cannot reach 0: the handles hold a reference */
    }
    r = next;
  }
  c->head = c->tail = NULL;
  drop_held(c);
  c->handles_open = c->started ? 2 : 1;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  if (c->started)
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---------------------------------------------------------------- draining */

static void on_timer(uv_timer_t *t);

static void on_shutdown(uv_shutdown_t *req, int status) {
  cs_conn *c = req->data;
  if (c->state == ST_CLOSED)
    return;
  c->shut_done = 1;
  if (status < 0 || !c->linger || c->eof) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timer, LINGER_TIMEOUT_MS, 0);
}

/* The replies are all written: say goodbye (close_notify, then FIN once the
 * queued writes are out). */
static void finish_drain(cs_conn *c) {
  if (c->shut_started)
    return;
  c->shut_started = 1;
  cs_tls_close_notify(c->tls);
  cs_tls_flush(c->tls); /* uv_shutdown waits only for submitted writes */
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    conn_close(c);
}

/* Whether a request already received is still to be answered. */
static int owed(const cs_conn *c) {
  if (c->head != NULL || c->held != NULL)
    return 1;
  /* HTTP: requests still buffered were handed over by process_buffered. */
  if (!c->finish_buffered || c->rlen == 0 || c->http != NULL)
    return 0;
  size_t body;
  size_t limit = c->grant_check != NULL || c->head_granted ? c->env->max_frame : c->env->max_frame_preauth;
  return cs_wire_frame_check(c->rbuf, c->rlen, limit, &body) != 0;
}

/* Draining: once nothing is owed, say goodbye.  Inside process() the
 * caller checks again when it returns. */
static void drain_progress(cs_conn *c) {
  if (c->state == ST_DRAIN && !c->in_process && !owed(c))
    finish_drain(c);
}

/* Accept no more requests (`finish`: except those already received);
 * close once the owed replies are written. */
static void conn_drain(cs_conn *c, int linger, int finish) {
  if (c->state != ST_OPEN)
    return;
  c->state = ST_DRAIN;
  c->linger = linger ? 1 : 0;
  c->finish_buffered = finish ? 1 : 0;
  if (!finish)
    drop_held(c);
  uv_timer_start(&c->timer, on_timer, DRAIN_TIMEOUT_MS, 0);
  if (finish)
    process_buffered(c);
  if (c->state == ST_DRAIN)
    drain_progress(c);
  if (c->state != ST_CLOSED)
    update_reading(c);
}

/* ---------------------------------------------------------------- timer */

static void on_timer(uv_timer_t *t) {
  cs_conn *c = t->data;
  cs_conn_env *env = c->env;
  switch (c->state) {
  case ST_HANDSHAKE:
    cs_info("TLS handshake with %s timed out after %u ms", c->peer.address,
            env->handshake_timeout_ms);
    conn_close(c);
    break;
  case ST_OPEN: {
    uint64_t now = uv_now(env->loop);
    uint64_t http_left = http_deadline_in(c, now);
    if (http_left == 0) {
      cs_info("HTTP request from %s not complete after %u ms: answered 408", c->peer.address,
              http_request_ms(c));
      size_t len = 0;
      uint8_t *bytes = cs_http_error(408, "request timeout", 1, &len);
      reject_with(c, bytes, len);
      break;
    }
    if (c->inflight > 0 || c->head != NULL) {
      uv_timer_start(&c->timer, on_timer, min_u64(env->idle_timeout_ms, http_left), 0);
      break;
    }
    uint64_t idle = now - c->last_active;
    if (idle < env->idle_timeout_ms) {
      uv_timer_start(&c->timer, on_timer, min_u64(env->idle_timeout_ms - idle, http_left), 0);
      break;
    }
    cs_info("closing idle connection from %s after %u s", c->peer.address,
            env->idle_timeout_ms / 1000);
    conn_drain(c, 0, 0);
    break;
  }
  case ST_DRAIN:
    if (!c->shut_started)
      cs_warn("closing connection from %s: %u replies still owed after %u s", c->peer.address,
              c->inflight, DRAIN_TIMEOUT_MS / 1000);
    conn_close(c);
    break;
  default:
    break;
  }
}

/* ---------------------------------------------------------------- replies */

static cs_reply *reply_new(cs_conn *c) {
  cs_reply *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->conn = c;
  c->refs++;
  if (c->tail != NULL)
    c->tail->next = r;
  else
    c->head = r;
  c->tail = r;
  return r;
}

/*
 * After bytes were written or left the cork (a write completed, a slot was
 * written, a read's corked answers went out): requests held back by the
 * queued-bytes cap may go, a drain may finish, reading may resume.  Most
 * writes complete at once in tls.c with no callback, so every place that
 * may have written calls this itself.
 */
static void after_write(cs_conn *c) {
  process_buffered(c);
  if (c->state == ST_DRAIN)
    drain_progress(c);
  if (c->state != ST_CLOSED)
    update_reading(c);
}

/* Writes the filled slots at the head of the FIFO, in order; -1 when the
 * connection is (now) closed.  Two or more
 * go to TLS together, copied into env->batch_buf (up to a record, 16 KiB):
 * the answers to a read's pipelined requests become one record, not one
 * each (docs/performance.md, session 10).  The copy is wiped.  A single
 * answer is written from its slot (a large buffer on the stack would push
 * every frame below it onto cold cache lines: measured). */
static int write_replies(cs_conn *c) {
  if (c->state == ST_CLOSED || c->tls == NULL)
    return c->state == ST_CLOSED ? -1 : 0;
  int rc = 0, wrote = 0;
  uint8_t *batch = c->env->batch_buf;
  size_t used = 0, high = 0;
  cs_tls_cork(c->tls);
  while (c->head != NULL && c->head->done) {
    cs_reply *r = c->head;
    c->head = r->next;
    if (c->head == NULL)
      c->tail = NULL;
    if (r->frame != NULL) {
      c->unsent -= r->len;
      int alone = used == 0 && (c->head == NULL || !c->head->done);
      if (rc == 0 && used > 0 && r->len > CS_CONN_BATCH_BUF - used) {
        rc = cs_tls_write(c->tls, batch, used);
        used = 0;
      }
      if (rc == 0 && (alone || r->len > CS_CONN_BATCH_BUF)) {
        rc = cs_tls_write(c->tls, r->frame, r->len);
      } else if (rc == 0) {
        memcpy(batch + used, r->frame, r->len);
        used += r->len;
        high = used > high ? used : high;
      }
    }
    if (r->counted)
      c->inflight--;
    wipe_free(r->frame, r->len);
    free(r);
    c->refs--; /* the handles' reference keeps it above 0 */
    wrote = 1;
  }
  if (rc == 0 && used > 0)
    rc = cs_tls_write(c->tls, batch, used);
  if (high > 0)
    mbedtls_platform_zeroize(batch, high); /* answers carry secrets */
  cs_tls_uncork(c->tls);
  if (rc < 0) {
    cs_warn("cannot write to %s: %s", c->peer.address, cs_error_message(rc));
    conn_close(c);
    return -1;
  }
  if (wrote)
    c->last_active = uv_now(c->env->loop);
  return 0;
}

/* write_replies, then what a write allows next. */
static void flush_replies(cs_conn *c) {
  if (write_replies(c) == 0)
    after_write(c); /* a slot was filled or written: frames held back may go now */
}

/* Queues a finished answer (malloc'd bytes, taken over; NULL: none) after
 * the owed replies. */
static void queue_answer(cs_conn *c, uint8_t *bytes, size_t len) {
  cs_reply *r = reply_new(c);
  if (r == NULL) {
    wipe_free(bytes, len);
    return;
  }
  r->frame = bytes;
  r->len = bytes != NULL ? len : 0;
  c->unsent += r->len;
  r->done = 1;
}

/* Queues a last answer after the owed replies, then drains: nothing after
 * a bad frame or HTTP request is read, whether draining already or not. */
static void reject_with(cs_conn *c, uint8_t *bytes, size_t len) {
  queue_answer(c, bytes, len);
  c->finish_buffered = 0;
  drop_held(c);
  conn_drain(c, 1, 0);
  flush_replies(c);
}

/* An error Response (id 0), or on HTTP the status for the code. */
static void reject(cs_conn *c, int code) {
  uint8_t *bytes;
  size_t len = 0;
  if (c->http != NULL) {
    int status = code == CS_ETOOBIG ? 413 : code == CS_ENOMEM ? 500 : 400;
    bytes = cs_http_error(status, cs_error_message(code), 1, &len);
  } else {
    Custos__Response res = CUSTOS__RESPONSE__INIT;
    Custos__Error err = CUSTOS__ERROR__INIT;
    err.code = cs_error_wire_code(code);
    err.message = (char *)cs_error_message(code);
    res.error = &err;
    bytes = cs_wire_encode(&res.base, &len);
  }
  reject_with(c, bytes, len);
}

/* Packs res into r's slot, releasing the request's place in `pending`.
 * 0, or -1 when the connection is gone or out of memory (closed). */
static int pack_slot(cs_reply *r, Custos__Response *res) {
  cs_conn *c = r->conn;
  if (r->counted) {
    c->pending--;
    if (r->ordered)
      c->pending_ordered--;
  }
  res->id = r->id;
  if (r->http != NULL) {
    int close = 0;
    r->frame = cs_http_render(r->http, res, &r->len, &close);
    r->http = NULL;
  } else {
    r->frame = cs_wire_encode(&res->base, &r->len);
  }
  if (r->frame == NULL) {
    cs_error("out of memory packing a response for %s", c->peer.address);
    r->done = !r->held; /* a held slot stays detached until cs_reply_release */
    conn_close(c);
    return -1;
  }
  c->unsent += r->len;
  return 0;
}

/* A slot on a connection that closed: frees it (detached by conn_close). */
static void drop_detached(cs_reply *r) {
  cs_conn *c = r->conn;
  cs_http_req_free(r->http);
  wipe_free(r->frame, r->len);
  free(r);
  conn_unref(c);
}

int cs_reply_is_http(const cs_reply *reply) {
  return reply != NULL && (reply->http != NULL || reply->is_http);
}

void cs_reply_send(cs_reply *r, Custos__Response *res, int authenticated) {
  (void)authenticated;
  cs_conn *c = r->conn;
  if (c->state == ST_CLOSED) {
    drop_detached(r);
    return;
  }
  if (pack_slot(r, res) < 0)
    return;
  r->done = 1;
  if (!c->feeding) /* else on_read writes it with the read's other answers */
    flush_replies(c);
}

void cs_reply_hold(cs_reply *r, Custos__Response *res, int authenticated) {
  (void)authenticated;
  cs_conn *c = r->conn;
  r->is_http = r->http != NULL;
  r->held = 1;
  if (c->state == ST_CLOSED) {
    cs_http_req_free(r->http);
    r->http = NULL;
    return; /* cs_reply_release frees it */
  }
  (void)pack_slot(r, res); /* on failure the slot is done and the conn closed */
}

/* Lets a held slot go (see cs_reply_release); 1 when its connection has
 * answers to write, 0 when it has gone or just closed. */
static int release_slot(cs_reply *r, int rc) {
  cs_conn *c = r->conn;
  if (c->state == ST_CLOSED) {
    drop_detached(r); /* a held slot is never done, so conn_close left it */
    return 0;
  }
  r->held = 0;
  if (rc < 0) {
    /* The audit record of this answer could not be written: the client
     * gets the error instead (and nothing of the answer). */
    c->unsent -= r->len;
    wipe_free(r->frame, r->len);
    if (r->is_http) {
      r->frame = cs_http_error(500, cs_strerror(rc), 0, &r->len);
    } else {
      Custos__Response res = CUSTOS__RESPONSE__INIT;
      Custos__Error err = CUSTOS__ERROR__INIT;
      err.code = cs_error_wire_code(rc);
      err.message = (char *)cs_strerror(rc);
      res.error = &err;
      res.id = r->id;
      r->frame = cs_wire_encode(&res.base, &r->len);
    }
    if (r->frame == NULL) {
      r->len = 0;
      r->done = 1;
      cs_error("out of memory answering %s", c->peer.address);
      conn_close(c);
      return 0;
    }
    c->unsent += r->len;
  }
  r->done = 1;
  return 1;
}

void cs_reply_release(cs_reply *r, int rc) {
  cs_conn *c = r->conn;
  if (release_slot(r, rc))
    flush_replies(c);
}

void cs_reply_release_many(cs_reply *const *list, size_t n, int rc) {
  cs_conn *touched = NULL, **tail = &touched; /* connections to write, once each */
  for (size_t i = 0; i < n; i++) {
    cs_conn *c = list[i]->conn;
    if (release_slot(list[i], rc) && !c->listed) {
      c->listed = 1;
      c->refs++; /* writing its slots may free them: the list keeps it */
      c->flush_next = NULL;
      *tail = c;
      tail = &c->flush_next;
    }
  }
  while (touched != NULL) {
    cs_conn *c = touched;
    touched = c->flush_next;
    c->listed = 0;
    flush_replies(c); /* its answers together: one record where they fit */
    conn_unref(c);
  }
}

void cs_reply_grant_frames(cs_reply *r, const uint8_t token_hash[32], cs_frame_grant_fn check,
                           void *ctx) {
  cs_conn *c = r->conn;
  if (c->state == ST_CLOSED)
    return;
  c->grant_check = check;
  c->grant_ctx = ctx;
  if (check != NULL)
    memcpy(c->grant_hash, token_hash, sizeof c->grant_hash);
  else
    mbedtls_platform_zeroize(c->grant_hash, sizeof c->grant_hash);
}

/* The limit for the frame starting at buf: max_frame only for a frame that
 * needs it and only while the grant holds, checked again for every such
 * frame (the token may have expired or been revoked since it was granted),
 * once, when its header arrives: not again for every piece of it, which a
 * client could otherwise make the server repeat per TLS record. */
static size_t frame_limit(cs_conn *c, const uint8_t *buf, size_t len) {
  cs_conn_env *env = c->env;
  if (c->head_granted)
    return env->max_frame;
  if (c->grant_check == NULL || len < CS_WIRE_HDR)
    return env->max_frame_preauth;
  uint32_t n = cs_get_be32(buf);
  if (n <= env->max_frame_preauth)
    return env->max_frame_preauth;
  if (c->grant_check(c->grant_ctx, c->grant_hash)) {
    c->head_granted = 1;
    return env->max_frame;
  }
  c->grant_check = NULL;
  mbedtls_platform_zeroize(c->grant_hash, sizeof c->grant_hash);
  return env->max_frame_preauth;
}

/* ---------------------------------------------------------------- HTTP */

/* The HTTP body limit rises like the frame limit (see frame_limit). */
static int http_granted(void *ctx) {
  cs_conn *c = ctx;
  if (c->grant_check == NULL)
    return 0;
  if (c->grant_check(c->grant_ctx, c->grant_hash))
    return 1;
  c->grant_check = NULL;
  mbedtls_platform_zeroize(c->grant_hash, sizeof c->grant_hash);
  return 0;
}

/* How long one HTTP request may take from its first byte to its last
 * (slow-loris): the handshake timeout, the bound on the other exchange a
 * client must finish before it is served. */
static unsigned http_request_ms(const cs_conn *c) { return c->env->handshake_timeout_ms; }

/* ms until the HTTP request being received times out; UINT64_MAX: none. */
static uint64_t http_deadline_in(const cs_conn *c, uint64_t now) {
  uint64_t since;
  if (c->http == NULL || !cs_http_in_message(c->http, &since))
    return UINT64_MAX;
  uint64_t end = since + http_request_ms(c);
  return end > now ? end - now : 0;
}

/* The next request on an HTTP connection: like next_request, or 1 when an
 * answer made by the HTTP layer (404, 405, 400...) was queued. */
static int next_http(cs_conn *c, const uint8_t *buf, size_t len, size_t *off,
                     Custos__Request **req, cs_http_req **hreq, int *close) {
  cs_conn_env *env = c->env;
  cs_http_limits lim = {env->max_frame_preauth, env->max_frame, http_granted, c};
  cs_http_event ev;
  int was_in = http_deadline_in(c, uv_now(env->loop)) != UINT64_MAX;
  int rc = cs_http_next(c->http, buf, len, off, &lim, &ev);
  if (rc < 0) {
    cs_info("refused HTTP request from %s: %s", c->peer.address, cs_error_message(rc));
    *off = len;
    reject_with(c, ev.out, ev.out_len);
    return -1;
  }
  cs_http_touch(c->http, uv_now(env->loop));
  if (!was_in && http_deadline_in(c, uv_now(env->loop)) != UINT64_MAX)
    uv_timer_start(&c->timer, on_timer, http_request_ms(c), 0);
  if (ev.kind == CS_HTTP_DISPATCH) {
    *req = ev.req;
    *hreq = ev.ctx;
    *close = ev.close;
    return 0;
  }
  if (ev.kind == CS_HTTP_NONE)
    return 0;
  if (ev.out == NULL) {
    reject(c, cs_error_set(CS_ENOMEM, "out of memory"));
    return -1;
  }
  c->requests++;
  c->last_active = uv_now(env->loop);
  queue_answer(c, ev.out, ev.out_len);
  if (ev.close)
    conn_drain(c, 1, 0);
  flush_replies(c);
  return 1;
}

/* A request line in plain text where a TLS handshake was due: answered
 * like Go's servers do, then a clean close (FIN, lingering read), so a
 * probe or a mistyped http:// URL sees why. */
static void refuse_plaintext(cs_conn *c) {
  cs_info("plain-text HTTP request from %s on the TLS port: answered 400 and closed",
          c->peer.address);
  uv_buf_t b = uv_buf_init((char *)cs_http_plaintext_answer,
                           (unsigned)strlen(cs_http_plaintext_answer));
  (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  c->state = ST_DRAIN;
  c->linger = 1;
  c->shut_started = 1;
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timer, LINGER_TIMEOUT_MS, 0);
  update_reading(c);
}

/* ---------------------------------------------------------------- frames */

/* Decodes the next whole frame of buf[*off..len) into *req (NULL: no
 * whole frame yet).  A frame over the limit or a request that does not
 * decode is rejected (the connection drains); then -1. */
static int next_request(cs_conn *c, const uint8_t *buf, size_t len, size_t *off,
                        Custos__Request **req, cs_http_req **hreq, int *close) {
  *req = NULL;
  *hreq = NULL;
  *close = 0;
  if (!c->sniffed && *off < len) {
    /* A frame the server accepts starts with a 0 length byte; HTTP with a
     * method name (see http.h). */
    c->sniffed = 1;
    if (cs_http_sniff(buf[*off])) {
      c->http = cs_http_new();
      if (c->http == NULL) {
        reject(c, cs_error_set(CS_ENOMEM, "out of memory"));
        return -1;
      }
      cs_debug("connection from %s speaks HTTP", c->peer.address);
    }
  }
  if (c->http != NULL)
    return next_http(c, buf, len, off, req, hreq, close);
  size_t body = 0;
  size_t limit = frame_limit(c, buf + *off, len - *off);
  int rc = cs_wire_frame_check(buf + *off, len - *off, limit, &body);
  if (rc == 0)
    return 0;
  if (rc < 0) {
    cs_warn("oversized frame from %s: %s", c->peer.address, cs_error_message(rc));
    *off = len;
    reject(c, rc);
    return -1;
  }
  rc = cs_wire_decode_request(buf + *off + CS_WIRE_HDR, body, req);
  *off += CS_WIRE_HDR + body;
  c->head_granted = 0; /* the next frame is checked afresh */
  if (rc < 0) {
    cs_info("malformed request from %s: %s", c->peer.address, cs_error_message(rc));
    *off = len;
    reject(c, rc);
    return -1;
  }
  return 0;
}

/* Whether the request may run now: every earlier one was answered, or it
 * and the unanswered ones are all independent (see conn.h).  Sets *indep. */
static int may_dispatch(const cs_conn *c, const Custos__Request *req, int *indep) {
  *indep = c->env->independent != NULL && c->env->independent(req);
  return c->pending == 0 || (*indep && c->pending_ordered == 0);
}

/* Whether the connection accepts requests and is below its in-flight cap.
 * Answers given during a read wait for its end (c->feeding) but still count
 * as in flight: at the cap they go now, so that the rest of the read is
 * still served in this batch rather than one answer per record and write
 * after it (a review measured 61 writes for 64 GETs at max_inflight 4). */
static int room_in_flight(cs_conn *c) {
  if (accepting(c) && c->inflight >= c->env->max_inflight && c->feeding && c->head != NULL &&
      c->head->done)
    (void)write_replies(c); /* after_write comes at the end of the read */
  return accepting(c) && c->inflight < c->env->max_inflight;
}

/* Frames, decodes and dispatches whole requests from buf (after the held
 * one) while the connection accepts requests, is below its in-flight and
 * queued-bytes caps, and order allows.  Returns the bytes consumed. */
static size_t process(cs_conn *c, const uint8_t *buf, size_t len) {
  cs_conn_env *env = c->env;
  size_t off = 0;
  c->in_process++;
  while (room_in_flight(c) && queued_bytes(c) < env->max_queued_bytes) {
    Custos__Request *req = c->held;
    cs_http_req *hreq = c->held_http;
    int hclose = c->held_close;
    c->held = NULL;
    c->held_http = NULL;
    c->held_close = 0;
    if (req == NULL) {
      int rc = next_request(c, buf, len, &off, &req, &hreq, &hclose);
      if (rc < 0)
        break;
      if (rc > 0)
        continue; /* the HTTP layer answered by itself */
      if (req == NULL)
        break;
    }
    int indep;
    if (!may_dispatch(c, req, &indep)) {
      c->held = req; /* its turn comes when the answers before it are in */
      c->held_http = hreq;
      c->held_close = hclose;
      break;
    }
    cs_reply *r = reply_new(c);
    if (r == NULL) {
      cs_wire_request_free(req);
      cs_http_req_free(hreq);
      cs_error_set(CS_ENOMEM, "out of memory");
      reject(c, CS_ENOMEM);
      break;
    }
    r->http = hreq;
    r->id = req->id;
    r->counted = 1;
    r->ordered = !indep;
    c->inflight++;
    c->pending++;
    if (!indep)
      c->pending_ordered++;
    c->requests++;
    c->last_active = uv_now(env->loop);
    env->dispatch(env->dispatch_ctx, &c->peer, req, r);
    if (hclose)
      conn_drain(c, 1, 0); /* HTTP "Connection: close": answer this one, then close */
  }
  if (c->state == ST_OPEN && c->inflight >= env->max_inflight && !c->capped_logged) {
    /* Backpressure, not an error: nothing the client sent is lost, its
     * further requests wait in the socket until responses drain. */
    c->capped_logged = 1;
    cs_info("connection from %s reached %u requests in flight: reading paused until "
            "responses drain (listener.max_inflight)", c->peer.address, env->max_inflight);
  }
  if (c->state == ST_OPEN && queued_bytes(c) >= env->max_queued_bytes && !c->queued_logged) {
    c->queued_logged = 1;
    cs_info("connection from %s holds %zu response bytes it has not read: reading paused "
            "until it does (listener.max_queued_response_bytes)", c->peer.address,
            queued_bytes(c));
  }
  c->in_process--;
  return off;
}

/* Requests waiting (held, or frames in the receive buffer) go first. */
static void process_buffered(cs_conn *c) {
  if (c->in_process || !accepting(c) || (c->rlen == 0 && c->held == NULL))
    return;
  size_t n = process(c, c->rbuf, c->rlen);
  if (accepting(c))
    rbuf_consume(c, n);
  else
    free_rbuf(c);
}

/* Decrypted bytes from TLS. */
static int on_tls_data(void *ctx, const uint8_t *buf, size_t len) {
  cs_conn *c = ctx;
  if (c->state != ST_OPEN)
    return 1;
  if (c->rlen == 0 && !c->in_process) {
    /* Fast path: frame straight from TLS's buffer; copy only a tail. */
    size_t n = process(c, buf, len);
    if (c->state != ST_OPEN)
      return 1;
    buf += n;
    len -= n;
    if (len == 0)
      return 0;
  }
  int rc = rbuf_append(c, buf, len);
  if (rc < 0) {
    reject(c, rc);
    return 1;
  }
  process_buffered(c);
  return c->state == ST_OPEN ? 0 : 1;
}

static void on_tls_handshake(void *ctx) {
  cs_conn *c = ctx;
  c->state = ST_OPEN;
  c->established = 1;
  if (c->env->on_established != NULL)
    c->env->on_established(c->env, c);
  c->peer.has_client_cert = cs_tls_peer_verified(c->tls);
  c->last_active = uv_now(c->env->loop);
  uv_timer_start(&c->timer, on_timer, c->env->idle_timeout_ms, 0);
  cs_debug("connection from %s: TLS established%s", c->peer.address,
           c->peer.has_client_cert ? " (client certificate verified)" : "");
}

static void on_tls_written(void *ctx, int status) {
  cs_conn *c = ctx;
  if (c->state == ST_CLOSED)
    return;
  if (status < 0) {
    cs_debug("write to %s failed: %s", c->peer.address, uv_strerror(status));
    conn_close(c);
    return;
  }
  after_write(c);
}

/* ---------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  cs_conn *c = h->data;
  *buf = uv_buf_init(c->env->read_buf, sizeof c->env->read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cs_conn *c = s->data;
  if (nread == 0 || c->state == ST_CLOSED)
    return;
  if (nread < 0) {
    if (c->state == ST_DRAIN) {
      c->eof = 1;
      update_reading(c);
      if (c->shut_done)
        conn_close(c);
      return;
    }
    if (c->state == ST_HANDSHAKE)
      cs_info("TLS handshake with %s failed: connection closed by the peer (%s)",
              c->peer.address, uv_strerror((int)nread));
    conn_close(c);
    return;
  }
  if (c->state == ST_DRAIN)
    return; /* lingering: drop what the peer still sends */
  if (!c->fed) {
    c->fed = 1;
    if (nread > 0 && cs_http_sniff((uint8_t)buf->base[0])) {
      refuse_plaintext(c);
      return;
    }
  }
  c->feeding = 1;
  int rc = cs_tls_feed(c->tls, (const uint8_t *)buf->base, (size_t)nread);
  c->feeding = 0;
  if (c->state == ST_CLOSED)
    return;
  if (rc < 0) {
    /* TLS has sent its alert: answers after it would be dropped by the
     * peer, and requests still buffered are not run on a failed session. */
    if (!cs_tls_handshake_done(c->tls))
      cs_info("TLS handshake with %s failed: %s", c->peer.address, cs_error_message(rc));
    else
      cs_info("TLS error on connection from %s: %s", c->peer.address, cs_error_message(rc));
    conn_close(c);
    return;
  }
  if (write_replies(c) < 0) /* the answers the read's requests got at once */
    return; /* the write failed: write_replies said so and closed */
  if (rc == 1) {
    /* close_notify: answer what was asked, then close. */
    if (c->state == ST_OPEN)
      conn_drain(c, 0, 1);
    else
      conn_close(c);
    return;
  }
  after_write(c); /* the read's corked answers went out */
}

/* Reads when the state and the limits allow it (backpressure otherwise). */
static void update_reading(cs_conn *c) {
  int want;
  switch (c->state) {
  case ST_HANDSHAKE:
    want = 1;
    break;
  case ST_OPEN:
    want = c->inflight < c->env->max_inflight && c->held == NULL &&
           queued_bytes(c) < c->env->max_queued_bytes;
    break;
  case ST_DRAIN:
    want = c->linger && !c->eof;
    break;
  default:
    want = 0;
  }
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* ---------------------------------------------------------------- lifecycle */

cs_conn *cs_conn_new(cs_conn_env *env) {
  cs_conn *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->env = env;
  c->refs = 1;
  c->state = ST_HANDSHAKE;
  if (uv_tcp_init(env->loop, &c->tcp) != 0) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  return c;
}

uv_stream_t *cs_conn_stream(cs_conn *c) { return (uv_stream_t *)&c->tcp; }

const struct sockaddr_storage *cs_conn_sockaddr(const cs_conn *c) { return &c->sa; }

const char *cs_conn_address(const cs_conn *c) { return c->peer.address; }

cs_conn *cs_conn_next(const cs_conn *c) { return c->next; }

int cs_conn_established(const cs_conn *c) { return c->established; }

int cs_conn_accepted(cs_conn *c) {
  int len = sizeof c->sa;
  int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->sa, &len);
  if (rc != 0)
    return cs_error_set(CS_ECONN, "getpeername: %s", uv_strerror(rc));
  /* An IPv4 client of a dual-stack socket counts and prints as IPv4. */
  if (c->sa.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->sa;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      struct sockaddr_in s4;
      memset(&s4, 0, sizeof s4);
      s4.sin_family = AF_INET;
      s4.sin_port = s6->sin6_port;
      memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
      memset(&c->sa, 0, sizeof c->sa);
      memcpy(&c->sa, &s4, sizeof s4);
    }
  }
  char host[INET6_ADDRSTRLEN] = "?";
  if (c->sa.ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->sa;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    snprintf(c->peer.address, sizeof c->peer.address, "%s:%u", host, ntohs(s4->sin_port));
  } else if (c->sa.ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
    snprintf(c->peer.address, sizeof c->peer.address, "[%s]:%u", host, ntohs(s6->sin6_port));
  } else {
    snprintf(c->peer.address, sizeof c->peer.address, "unknown");
  }
  return 0;
}

void cs_conn_refuse(cs_conn *c) { conn_close(c); }

int cs_conn_start(cs_conn *c) {
  cs_conn_env *env = c->env;
  static const cs_tls_callbacks cb = {
      .on_handshake = on_tls_handshake,
      .on_data = on_tls_data,
      .on_written = on_tls_written,
  };
  int rc = uv_tcp_nodelay(&c->tcp, 1);
  if (rc != 0) {
    cs_debug("TCP_NODELAY on %s: %s", c->peer.address, uv_strerror(rc));
    conn_close(c);
    return cs_error_set(CS_ECONN, "TCP_NODELAY: %s", uv_strerror(rc));
  }
  c->tls = cs_tls_new(env->tls, (uv_stream_t *)&c->tcp, &cb, c);
  if (c->tls == NULL) {
    cs_warn("out of memory for a TLS session for %s", c->peer.address);
    conn_close(c);
    return cs_error_set(CS_ENOMEM, "out of memory for a TLS session");
  }
  uv_timer_init(env->loop, &c->timer);
  c->timer.data = c;
  c->started = 1;
  c->next = env->conns;
  if (env->conns != NULL)
    env->conns->prev = c;
  env->conns = c;
  env->nconns++;
  uv_timer_start(&c->timer, on_timer, env->handshake_timeout_ms, 0);
  update_reading(c);
  if (!c->reading) {
    /* Started: the close runs on_closed like any other. */
    cs_warn("cannot read from %s", c->peer.address);
    conn_close(c);
    return 0;
  }
  cs_debug("connection from %s accepted", c->peer.address);
  return 0;
}

void cs_conn_shutdown(cs_conn *c) {
  switch (c->state) {
  case ST_HANDSHAKE:
    conn_close(c);
    break;
  case ST_OPEN:
    conn_drain(c, 0, 0);
    break;
  default:
    break;
  }
}
