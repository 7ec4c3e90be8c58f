/*
 * bconn: one non-blocking TLS connection of custos-bench on a libuv loop.
 *
 * mbedTLS 2.28 runs over memory buffers: bytes read by libuv are appended to
 * `in` and consumed by the bio receive callback; records mbedTLS produces
 * are appended to `out` and written with uv_try_write (a uv_write of a copy
 * only for what the socket did not take).  Request frames are queued as
 * plaintext with csb_conn_queue() and encrypted together by csb_conn_flush(),
 * so a burst of pipelined requests becomes one TLS record and one syscall.
 * Decrypted bytes are cut into frames (4-byte big-endian length + body) and
 * handed to on_frame one by one.
 *
 * Everything runs on the loop thread.  A connection that fails calls
 * on_error once and stops; the owner closes it with csb_conn_close.
 */
#ifndef CSB_BCONN_H
#define CSB_BCONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <mbedtls/ssl.h>

typedef struct csb_conn csb_conn;

typedef struct csb_conn_cb {
  void (*on_ready)(csb_conn *c);                                      /* handshake done */
  void (*on_frame)(csb_conn *c, const uint8_t *body, size_t len);     /* one response */
  void (*on_error)(csb_conn *c, const char *msg);                     /* connection dead */
} csb_conn_cb;

typedef struct csb_buf {
  uint8_t *p;
  size_t off, len, cap;   /* live bytes are p[off .. off+len) */
} csb_buf;

struct csb_conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  mbedtls_ssl_context ssl;
  const csb_conn_cb *cb;
  void *data;             /* the owner's */
  csb_buf in, out, plain, pend;
  int ready, dead, closing, ssl_live;
  size_t write_queued;    /* bytes in uv_write requests not yet completed */
};

/*
 * Starts connecting to `sa` and handshaking with `conf` (shared by every
 * connection; it carries the CA and the IP-SAN verify callback).  Returns 0
 * or a negative uv error.  The connection must not move in memory.
 */
int csb_conn_start(csb_conn *c, uv_loop_t *loop, const mbedtls_ssl_config *conf,
                   const struct sockaddr *sa, const csb_conn_cb *cb, void *data);

/* Appends a plaintext frame (already with its header) to the pending batch. */
int csb_conn_queue(csb_conn *c, const uint8_t *frame, size_t len);
/* Room for `len` more bytes in the pending batch; returns where to write them
 * (then call csb_conn_commit with the number written), or NULL. */
uint8_t *csb_conn_reserve(csb_conn *c, size_t len);
void csb_conn_commit(csb_conn *c, size_t len);
/* Encrypts the pending batch and writes it.  Returns 0 or -1 (on_error was
 * called). */
int csb_conn_flush(csb_conn *c);

/* Closes the socket; `on_closed` runs when libuv is done with the handle. */
void csb_conn_close(csb_conn *c, uv_close_cb on_closed);

#endif
