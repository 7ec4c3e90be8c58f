/*
 * conn: one client connection of the listener.
 *
 * A conn owns its uv_tcp_t, one uv_timer_t (handshake timeout, then idle
 * timeout, then the bound on a graceful close), its TLS session, a receive
 * buffer for a partial frame, and the FIFO of reply slots that keeps
 * pipelined responses in request order.  It turns decrypted bytes into
 * frames (cs_wire_frame_check with the pre-authentication limit, and
 * max_frame only for a frame that needs it while the connection's grant
 * holds: see cs_reply_grant_frames), frames into requests
 * (cs_wire_decode_request) and hands them to the dispatch function.
 *
 * Limits and failure handling:
 *  - A frame above the limit or a request that does not decode gets one
 *    error Response (id 0), after the responses of the requests before it;
 *    then the connection closes (close_notify, FIN, a short lingering read so
 *    the peer sees the error rather than a reset).
 *  - At most max_inflight requests are dispatched and not yet answered.  At
 *    the cap the connection stops reading (TCP backpressure; no error is
 *    sent) and resumes when replies drain.
 *  - Response bytes not yet sent (filled reply slots plus the socket's write
 *    queue) are capped at max_queued_bytes: at the cap no further request is
 *    dispatched, even one already read, and reading stops until the client
 *    has taken enough of its answers.  So a client that pipelines without
 *    reading holds at most the cap plus one response of server memory.
 *  - Order: requests take effect in the order they were sent.  A request is
 *    dispatched only when every earlier one was answered, or when it and
 *    the unanswered ones before it are all "independent" (the daemon's
 *    cs_independent_fn: kv puts, ordered by the commit queue).  The one
 *    request that must wait is held decoded; later frames stay in the
 *    receive buffer, and reading stops (TCP backpressure).
 *  - Memory is freed only once both handles are closed and no cs_reply
 *    refers to the conn any more (a reply holds a reference; after the close
 *    callbacks have run, the last cs_reply_send frees the conn).
 *
 * Idle connections hold no receive buffer: it is allocated for a partial
 * frame and freed when it empties.  Reads go into one buffer per listener.
 */
#ifndef CS_CONN_H
#define CS_CONN_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "net.h"
#include "tls.h"

typedef struct cs_conn cs_conn;

#define CS_CONN_READ_BUF (64u * 1024u)
#define CS_CONN_BATCH_BUF (16u * 1024u) /* one TLS record's worth */

/* What the connections of one listener share; owned by the listener. */
typedef struct cs_conn_env {
  uv_loop_t *loop;
  cs_tls_config *tls;
  size_t max_frame_preauth;
  size_t max_frame;
  unsigned handshake_timeout_ms;
  unsigned idle_timeout_ms;
  unsigned max_inflight;
  size_t max_queued_bytes;
  cs_dispatch_fn dispatch;
  cs_independent_fn independent;
  void *dispatch_ctx;
  /* Runs once per started conn whose TLS handshake completed. */
  void (*on_established)(struct cs_conn_env *env, cs_conn *c);
  /* Runs once per started conn, after its handles are closed.  The conn
   * may be examined (cs_conn_sockaddr, cs_conn_established) during the call
   * only. */
  void (*on_closed)(struct cs_conn_env *env, cs_conn *c);
  void *owner;
  cs_conn *conns;        /* started conns not yet fully closed */
  unsigned nconns;
  /* One read buffer for every conn: libuv calls alloc, read, and the read
   * callback in a row on the loop thread, and each read is consumed (fed
   * to TLS) before the callback returns. */
  char read_buf[CS_CONN_READ_BUF];
  /* One buffer for every conn's answers that go to TLS together
   * (flush_replies: on the loop thread, which never re-enters it). */
  uint8_t batch_buf[CS_CONN_BATCH_BUF];
} cs_conn_env;

/* Allocates a conn and initializes its uv_tcp_t on env->loop, ready for
 * uv_accept(server, cs_conn_stream(c)).  NULL when out of memory. */
cs_conn *cs_conn_new(cs_conn_env *env);
uv_stream_t *cs_conn_stream(cs_conn *c);

/* After uv_accept: records the peer address.  0, or CS_ECONN. */
int cs_conn_accepted(cs_conn *c) __attribute__((warn_unused_result));
const struct sockaddr_storage *cs_conn_sockaddr(const cs_conn *c);
const char *cs_conn_address(const cs_conn *c);

/* 1 once the TLS handshake completed. */
int cs_conn_established(const cs_conn *c);

/* Closes a conn that was not started (refused, or failed to accept). */
void cs_conn_refuse(cs_conn *c);

/* Starts TLS, the handshake timer and reading; sets TCP_NODELAY.  Returns
 * 0 once started (on_closed will run when it closes, even if it closes at
 * once), or a CS_E* code when it could not start: it is then closed and
 * on_closed will not run. */
int cs_conn_start(cs_conn *c) __attribute__((warn_unused_result));

/* The next conn of env->conns (NULL at the end). */
cs_conn *cs_conn_next(const cs_conn *c);

/* The listener is stopping: close at once if nothing is in flight, else stop
 * reading, answer what was dispatched, then close. */
void cs_conn_shutdown(cs_conn *c);

#endif
