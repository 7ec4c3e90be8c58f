/* bconn: see bconn.h. */
#include "bconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>

/* One loop thread: libuv reads into this, then it is appended to c->in. */
static char read_buf[64 * 1024];

typedef struct write_req {
  uv_write_t req;
  csb_conn *conn;
  size_t len;
  uint8_t data[];
} write_req;

/* ---------------------------------------------------------------- buffers */

/* Makes room for `n` more bytes after the live ones; NULL when out of
 * memory. */
static uint8_t *buf_room(csb_buf *b, size_t n) {
  if (b->off > 0 && (b->len == 0 || b->off + b->len + n > b->cap)) {
    memmove(b->p, b->p + b->off, b->len);
    b->off = 0;
  }
  if (b->off + b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
      return NULL;
    b->p = p;
    b->cap = cap;
  }
  return b->p + b->off + b->len;
}

static int buf_append(csb_buf *b, const void *data, size_t n) {
  uint8_t *dst = buf_room(b, n);
  if (dst == NULL)
    return -1;
  memcpy(dst, data, n);
  b->len += n;
  return 0;
}

static void buf_consume(csb_buf *b, size_t n) {
  b->off += n;
  b->len -= n;
  if (b->len == 0)
    b->off = 0;
}

static void buf_free(csb_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- errors */

static void die(csb_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die(csb_conn *c, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  if (c->dead)
    return;
  c->dead = 1;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->ready)
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->cb->on_error(c, msg);
}

static void tls_die(csb_conn *c, const char *doing, int ret) {
  char why[160];
  mbedtls_strerror(ret, why, sizeof why);
  die(c, "TLS error %s: %s (-0x%04x)", doing, why, (unsigned)-ret);
}

/* ---------------------------------------------------------------- bio */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  csb_conn *c = ctx;
  if (buf_append(&c->out, buf, len) < 0)
    return MBEDTLS_ERR_SSL_ALLOC_FAILED;
  return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  csb_conn *c = ctx;
  if (c->in.len == 0)
    return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > c->in.len)
    len = c->in.len;
  memcpy(buf, c->in.p + c->in.off, len);
  buf_consume(&c->in, len);
  return (int)len;
}

/* ---------------------------------------------------------------- writing */

static void on_written(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  csb_conn *c = w->conn;
  c->write_queued -= w->len;
  free(w);
  if (status < 0 && status != UV_ECANCELED)
    die(c, "write failed: %s", uv_strerror(status));
}

/* Writes the ciphertext in c->out: directly when the socket takes it, the
 * rest through a uv_write of a copy. */
static int write_out(csb_conn *c) {
  if (c->out.len == 0 || c->dead)
    return c->dead ? -1 : 0;
  size_t done = 0;
  if (c->write_queued == 0) {
    uv_buf_t b = uv_buf_init((char *)c->out.p + c->out.off, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0)
      done = (size_t)n;
    else if (n != UV_EAGAIN) {
      die(c, "write failed: %s", uv_strerror(n));
      return -1;
    }
  }
  size_t rest = c->out.len - done;
  if (rest > 0) {
    write_req *w = malloc(sizeof *w + rest);
    if (w == NULL) {
      die(c, "out of memory");
      return -1;
    }
    w->conn = c;
    w->len = rest;
    memcpy(w->data, c->out.p + c->out.off + done, rest);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
      free(w);
      die(c, "write failed: %s", uv_strerror(rc));
      return -1;
    }
    c->write_queued += rest;
  }
  buf_consume(&c->out, c->out.len);
  return 0;
}

int csb_conn_queue(csb_conn *c, const uint8_t *frame, size_t len) {
  return buf_append(&c->pend, frame, len);
}

uint8_t *csb_conn_reserve(csb_conn *c, size_t len) { return buf_room(&c->pend, len); }

void csb_conn_commit(csb_conn *c, size_t len) { c->pend.len += len; }

int csb_conn_flush(csb_conn *c) {
  if (c->dead)
    return -1;
  while (c->pend.len > 0) {
    int ret = mbedtls_ssl_write(&c->ssl, c->pend.p + c->pend.off, c->pend.len);
    if (ret < 0) {
      tls_die(c, "writing", ret);
      return -1;
    }
    buf_consume(&c->pend, (size_t)ret);
  }
  return write_out(c);
}

/* ---------------------------------------------------------------- reading */

/* Hands every whole frame in c->plain to on_frame. */
static void deliver(csb_conn *c) {
  while (!c->dead && c->plain.len >= 4) {
    const uint8_t *p = c->plain.p + c->plain.off;
    size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (n > 64u * 1024 * 1024) {
      die(c, "response frame of %zu bytes is too large", n);
      return;
    }
    if (c->plain.len < 4 + n)
      return;
    c->cb->on_frame(c, p + 4, n);
    buf_consume(&c->plain, 4 + n);
  }
}

static void drive(csb_conn *c) {
  if (!c->ready) {
    int ret = mbedtls_ssl_handshake(&c->ssl);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
      write_out(c);
      return;
    }
    if (ret != 0) {
      if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
        die(c, "TLS handshake failed: certificate verify failed (flags 0x%x)",
            (unsigned)mbedtls_ssl_get_verify_result(&c->ssl));
      else
        tls_die(c, "in the handshake", ret);
      return;
    }
    c->ready = 1;
    if (write_out(c) < 0)
      return;
    c->cb->on_ready(c);
    if (c->dead)
      return;
    /* Application data may have come with the last handshake bytes. */
  }
  for (;;) {
    uint8_t *dst = buf_room(&c->plain, 16384 + 1024);
    if (dst == NULL) {
      die(c, "out of memory");
      return;
    }
    int ret = mbedtls_ssl_read(&c->ssl, dst, 16384 + 1024);
    if (ret > 0) {
      c->plain.len += (size_t)ret;
      continue;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
      break;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      deliver(c);
      die(c, "connection closed by the server");
      return;
    }
    tls_die(c, "reading", ret);
    return;
  }
  deliver(c);
  csb_conn_flush(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  csb_conn *c = s->data;
  if (c->dead || nread == 0)
    return;
  if (nread < 0) {
    die(c, "%s", nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
    return;
  }
  if (buf_append(&c->in, buf->base, (size_t)nread) < 0) {
    die(c, "out of memory");
    return;
  }
  drive(c);
}

static void on_connect(uv_connect_t *req, int status) {
  csb_conn *c = req->data;
  if (c->dead || c->closing)
    return;
  if (status < 0) {
    die(c, "cannot connect: %s", uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc < 0) {
    die(c, "cannot read: %s", uv_strerror(rc));
    return;
  }
  drive(c); /* sends the ClientHello */
}

int csb_conn_start(csb_conn *c, uv_loop_t *loop, const mbedtls_ssl_config *conf,
                   const struct sockaddr *sa, const csb_conn_cb *cb, void *data) {
  memset(c, 0, sizeof *c);
  c->cb = cb;
  c->data = data;
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc < 0)
    return rc;
  c->tcp.data = c;
  mbedtls_ssl_init(&c->ssl);
  c->ssl_live = 1;
  if (mbedtls_ssl_setup(&c->ssl, conf) != 0) {
    c->dead = 1;
    return UV_ENOMEM;
  }
  mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
  c->connect_req.data = c;
  rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
  if (rc < 0)
    c->dead = 1;
  return rc;
}

void csb_conn_close(csb_conn *c, uv_close_cb on_closed) {
  if (c->closing)
    return;
  c->closing = 1;
  c->dead = 1;
  if (c->ssl_live) {
    mbedtls_ssl_free(&c->ssl);
    c->ssl_live = 0;
  }
  buf_free(&c->in);
  buf_free(&c->out);
  buf_free(&c->plain);
  buf_free(&c->pend);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}
