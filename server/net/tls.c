/*
 * tls: the shared server configuration and one session per connection.
 * See tls.h.
 *
 * Invariants of a session:
 *  - mbedTLS reads only from the bytes of the current cs_tls_feed() call
 *    (t->in); the bio returns MBEDTLS_ERR_SSL_WANT_READ once they are gone,
 *    so after cs_tls_feed() returns nothing is left unconsumed outside
 *    mbedTLS's own record buffer.  No ciphertext is buffered here.
 *  - mbedTLS reuses its output buffer, so the bio's send callback copies
 *    every record into t->pending, a growing buffer that carries its own
 *    uv_write_t.  Flushing hands that buffer to uv_write and forgets it; the
 *    write callback frees it.  The send callback never refuses bytes (except
 *    on allocation failure), so mbedtls_ssl_write never returns WANT_WRITE.
 *  - mbedTLS error codes are translated to CS_ETLS here, with the mbedTLS
 *    reason in the detail.
 */
#include "tls.h"
#include "cs_error.h"
#include "tls_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

struct cs_tls_config {
  /* The owner's reference plus one per session made from it: a session's
   * mbedtls_ssl_context points at conf, so a configuration replaced by a
   * certificate reload lives on until its last session is freed. */
  unsigned refs;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt chain;
  mbedtls_pk_context key;
  mbedtls_x509_crt ca;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
};

/* One uv_write: the request and the bytes it writes, in one allocation. */
typedef struct wbuf {
  uv_write_t req;
  cs_tls *t;
  size_t len, cap;
  uint8_t data[];
} wbuf;

struct cs_tls {
  mbedtls_ssl_context ssl;
  cs_tls_config *cfg;       /* referenced for the session's life */
  uv_stream_t *stream;
  cs_tls_callbacks cb;
  void *ctx;
  const uint8_t *in;     /* ciphertext of the current cs_tls_feed() */
  size_t in_len;
  wbuf *pending;         /* output not yet handed to uv_write */
  unsigned cork;
  unsigned handshake_done : 1;
  unsigned verified : 1;
};

int cs_tls_config_new(cs_tls_config **out, const char *cert_file, const char *key_file,
                      const char *client_ca_file) {
  char why[256];
  int ret, rc;
  cs_tls_config *c = calloc(1, sizeof *c);
  if (c == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory for the TLS configuration");
  c->refs = 1;
  mbedtls_ssl_config_init(&c->conf);
  mbedtls_x509_crt_init(&c->chain);
  mbedtls_pk_init(&c->key);
  mbedtls_x509_crt_init(&c->ca);
  mbedtls_entropy_init(&c->entropy);
  mbedtls_ctr_drbg_init(&c->drbg);

  static const char pers[] = "custosd tls";
  ret = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy,
                              (const unsigned char *)pers, sizeof pers - 1);
  if (ret != 0) {
    mbedtls_strerror(ret, why, sizeof why);
    rc = cs_error_set(CS_ECRYPTO, "cannot seed the TLS random generator: %s", why);
    goto fail;
  }
  /* The policy (versions, suites, curves, key/certificate match) is the
   * one of common/tls_policy.c (server profile), shared with the cluster
   * port and the clients. */
  if ((rc = cs_tls_policy_load_pair(&c->chain, &c->key, cert_file, key_file, "TLS")) < 0)
    goto fail;
  int has_ca = client_ca_file != NULL && client_ca_file[0] != '\0';
  if (has_ca && (rc = cs_tls_policy_load_ca(&c->ca, client_ca_file, "TLS client")) < 0)
    goto fail;
  mbedtls_ssl_config_free(&c->conf);
  if ((rc = cs_tls_policy_server(&c->conf, &c->drbg, &c->chain, &c->key,
                                 has_ca ? &c->ca : NULL)) < 0)
    goto fail;
  *out = c;
  return 0;

fail:
  cs_tls_config_free(c);
  return rc;
}

void cs_tls_config_free(cs_tls_config *c) {
  if (c == NULL || --c->refs > 0)
    return;
  mbedtls_ssl_config_free(&c->conf);
  mbedtls_x509_crt_free(&c->chain);
  mbedtls_pk_free(&c->key); /* zeroizes the private key */
  mbedtls_x509_crt_free(&c->ca);
  mbedtls_ctr_drbg_free(&c->drbg);
  mbedtls_entropy_free(&c->entropy);
  free(c);
}

/* ---------------------------------------------------------------- bio */

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  cs_tls *t = ctx;
  if (t->in_len == 0)
    return MBEDTLS_ERR_SSL_WANT_READ;
  size_t n = len < t->in_len ? len : t->in_len;
  if (n > INT32_MAX)
    n = INT32_MAX;
  memcpy(buf, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

/* Copies the record: mbedTLS reuses its output buffer as soon as we return. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  cs_tls *t = ctx;
  if (len > INT32_MAX)
    len = INT32_MAX;
  wbuf *w = t->pending;
  size_t used = w != NULL ? w->len : 0;
  if (w == NULL || w->cap - used < len) {
    size_t cap = w != NULL ? w->cap * 2 : 4096;
    while (cap - used < len)
      cap *= 2;
    wbuf *nw = realloc(w, sizeof *nw + cap); /* not yet submitted: may move */
    if (nw == NULL)
      return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    nw->cap = cap;
    nw->len = used;
    nw->t = t;
    t->pending = nw;
    w = nw;
  }
  memcpy(w->data + w->len, buf, len);
  w->len += len;
  return (int)len;
}

static void on_write(uv_write_t *req, int status) {
  wbuf *w = (wbuf *)req;
  cs_tls *t = w->t;
  /* The records may carry secrets (unseal shares, tokens) in ciphertext
   * only; nothing to wipe.  */
  free(w);
  if (t->cb.on_written != NULL)
    t->cb.on_written(t->ctx, status);
}

static void flush(cs_tls *t) {
  wbuf *w = t->pending;
  if (w == NULL)
    return;
  t->pending = NULL;
  if (w->len == 0) {
    free(w);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
  if (uv_is_closing((uv_handle_t *)t->stream)) {
    free(w); /* the stream is going away: drop the bytes */
    return;
  }
  /*
   * Most answers fit the socket's buffer: written here, with no write
   * request.  A uv_write that completes at once still re-arms the stream's
   * epoll watcher when its callback runs (one epoll_ctl per answer).  Only
   * with nothing queued (uv_try_write refuses otherwise, so order holds);
   * what it could not take goes through uv_write.  The callers of flush
   * check reading and draining after it (conn.c), as on_written would.
   */
  int n = uv_try_write(t->stream, &b, 1);
  if (n == (int)b.len) {
    free(w);
    return;
  }
  if (n > 0) {
    b.base += n;
    b.len -= (unsigned)n;
  }
  if (uv_write(&w->req, t->stream, &b, 1, on_write) != 0) {
    free(w); /* the stream is going away: drop the bytes */
    return;
  }
}

void cs_tls_flush(cs_tls *t) { flush(t); }

void cs_tls_cork(cs_tls *t) { t->cork++; }

void cs_tls_uncork(cs_tls *t) {
  if (t->cork > 0 && --t->cork == 0)
    flush(t);
}

/* ---------------------------------------------------------------- session */

cs_tls *cs_tls_new(const cs_tls_config *cfg, uv_stream_t *stream, const cs_tls_callbacks *cb,
                   void *ctx) {
  cs_tls *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  mbedtls_ssl_init(&t->ssl);
  if (mbedtls_ssl_setup(&t->ssl, &cfg->conf) != 0) {
    mbedtls_ssl_free(&t->ssl);
    free(t);
    return NULL;
  }
  mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
  t->cfg = (cs_tls_config *)cfg; /* the reference count is not the configuration */
  t->cfg->refs++;
  t->stream = stream;
  t->cb = *cb;
  t->ctx = ctx;
  return t;
}

void cs_tls_free(cs_tls *t) {
  if (t == NULL)
    return;
  free(t->pending);
  mbedtls_ssl_free(&t->ssl); /* zeroizes record buffers and keys */
  cs_tls_config_free(t->cfg); /* this session's reference */
  free(t);
}

/* Records the reason of a failed session in the error detail. */
static int fail(cs_tls *t, int ret, const char *during) {
  char why[160], info[256] = "";
  mbedtls_strerror(ret, why, sizeof why);
  uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
  if (flags != 0 && flags != (uint32_t)-1 &&
      (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED || ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)) {
    char raw[256];
    int n = mbedtls_x509_crt_verify_info(raw, sizeof raw, "", flags);
    if (n > 0) {
      /* One log line: the verify info is a list of lines. */
      size_t j = 0;
      j += (size_t)snprintf(info, sizeof info, " (");
      for (int i = 0; i < n && raw[i] != '\0' && j + 3 < sizeof info; i++) {
        if (raw[i] == '\n') {
          if (raw[i + 1] != '\0') {
            info[j++] = ';';
            info[j++] = ' ';
          }
        } else {
          info[j++] = raw[i];
        }
      }
      if (j + 2 < sizeof info) {
        info[j++] = ')';
      }
      info[j] = '\0';
    }
  }
  return cs_error_set(CS_ETLS, "%s%s%s (-0x%04x)%s", during ? during : "", during ? ": " : "",
                      why, (unsigned)-ret, info);
}

/* Decrypts everything mbedTLS can produce from the input at hand. */
static int read_records(cs_tls *t) {
  uint8_t buf[16384];
  size_t used = 0;
  int rc = 0;
  for (;;) {
    int ret = mbedtls_ssl_read(&t->ssl, buf, sizeof buf);
    if (ret > 0) {
      if ((size_t)ret > used)
        used = (size_t)ret;
      if (t->cb.on_data(t->ctx, buf, (size_t)ret) != 0)
        break;
      continue;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
      break;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      rc = 1;
      break;
    }
    rc = fail(t, ret, "read");
    break;
  }
  /* Requests carry shares and tokens: do not leave them on the stack. */
  mbedtls_platform_zeroize(buf, used);
  return rc;
}

int cs_tls_feed(cs_tls *t, const uint8_t *buf, size_t len) {
  int rc = 0;
  t->in = buf;
  t->in_len = len;
  cs_tls_cork(t);
  if (!t->handshake_done) {
    int ret = mbedtls_ssl_handshake(&t->ssl);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
      goto out;
    if (ret != 0) {
      rc = fail(t, ret, NULL);
      goto out;
    }
    t->handshake_done = 1;
    t->verified = mbedtls_ssl_get_peer_cert(&t->ssl) != NULL &&
                  mbedtls_ssl_get_verify_result(&t->ssl) == 0;
    if (t->cb.on_handshake != NULL)
      t->cb.on_handshake(t->ctx);
  }
  /* The client's first request often rides with its last handshake
   * flight: read right away, until mbedTLS wants more input. */
  rc = read_records(t);
out:
  t->in = NULL;
  t->in_len = 0;
  cs_tls_uncork(t);
  return rc;
}

int cs_tls_write(cs_tls *t, const uint8_t *buf, size_t len) {
  size_t off = 0;
  int rc = 0;
  while (off < len) {
    int ret = mbedtls_ssl_write(&t->ssl, buf + off, len - off);
    if (ret > 0) {
      off += (size_t)ret; /* partial: at most one record per call */
      continue;
    }
    /* The send callback never blocks, so WANT_WRITE does not happen; any
     * error is fatal for the session. */
    rc = ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? cs_error_set(CS_ENOMEM, "out of memory in TLS write")
                                             : fail(t, ret, "write");
    break;
  }
  if (t->cork == 0)
    flush(t);
  return rc;
}

void cs_tls_close_notify(cs_tls *t) {
  if (t->handshake_done)
    (void)mbedtls_ssl_close_notify(&t->ssl);
  if (t->cork == 0)
    flush(t);
}

int cs_tls_handshake_done(const cs_tls *t) { return t->handshake_done; }

int cs_tls_peer_verified(const cs_tls *t) { return t->verified; }

size_t cs_tls_corked_bytes(const cs_tls *t) { return t->pending != NULL ? t->pending->len : 0; }
