/*
 * tls_pump: the bytes of one cluster connection (a tconn, raft_tls_int.h).
 *
 * Bytes flow tcp -> mbedtls_ssl_read -> `mine` (our end of the socketpair
 * whose other end, `theirs`, belongs to raft once handed over) and mine ->
 * mbedtls_ssl_write -> tcp.  Before the preamble, decrypted bytes go to
 * cs_rtls_on_plain (raft_tls.c).  Also here: the handshake and the verify
 * callback that binds the connection to the node its certificate names,
 * the handshake timer, the limits on unauthenticated incoming connections,
 * and the certificate sets (tlsmat: the mutual profile of
 * common/tls_policy.c on both ends).  When any side ends, the whole tconn
 * closes; raft then sees EOF on its end and closes it itself.
 */
#include "raft_tls_int.h"
#include "addr.h"
#include "cs_error.h"
#include "log.h"
#include "tls_policy.h"

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/platform_util.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* A member's cluster address: an IP literal and a port (common/addr.h). */
int cs_rtls_parse_addr(const char *address, struct sockaddr_storage *ss) {
  cs_addr a;
  if (cs_addr_parse(address, &a) != 0) {
    cs_error_clear();
    return -1;
  }
  if (a.bracketed)
    return uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
  return uv_ip4_addr(a.host, a.port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

static void tls_err(char *buf, size_t cap, int rc) { mbedtls_strerror(rc, buf, cap); }

void cs_rtls_maybe_finish_close(transport *tr) {
  if (tr->closing && !tr->listening && tr->nconns == 0 && tr->close_cb != NULL) {
    raft_uv_transport_close_cb cb = tr->close_cb;
    tr->close_cb = NULL;
    cb(tr->t);
  }
}

void cs_rtls_mat_release(tlsmat *m) {
  if (m == NULL || --m->refs > 0)
    return;
  mbedtls_ssl_config_free(&m->srv);
  mbedtls_ssl_config_free(&m->cli);
  mbedtls_x509_crt_free(&m->ca);
  mbedtls_x509_crt_free(&m->cert);
  mbedtls_pk_free(&m->key); /* zeroizes the private key */
  free(m);
}

static void on_handle_closed(uv_handle_t *h) {
  tconn *c = h->data;
  if (--c->handles > 0)
    return;
  transport *tr = c->tr;
  if (c->prev)
    c->prev->next = c->next;
  else
    tr->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  tr->nconns--;
  if (c->unauth)
    tr->nunauth--;
  mbedtls_ssl_free(&c->ssl);
  cs_rtls_mat_release(c->mat);
  free(c->in);
  /* Side-channel plaintext may be a relayed unseal share: wiped. */
  if (c->msg != NULL)
    mbedtls_platform_zeroize(c->msg, c->msg_len);
  free(c->msg);
  mbedtls_platform_zeroize(c->pre, sizeof c->pre);
  free(c);
  cs_rtls_maybe_finish_close(tr);
}

static void on_theirs_closed(uv_handle_t *h) {
  tconn *c = h->data;
  raft_free(h);
  on_handle_closed((uv_handle_t *)&c->timer); /* counts as one of ours */
}

/* ---------------------------------------------------------------- tcp output */

typedef struct wreq {
  uv_write_t w;
  tconn *c;
  uint8_t data[];
} wreq;

static void on_tcp_written(uv_write_t *w, int status) {
  wreq *r = (wreq *)w;
  tconn *c = r->c;
  free(r);
  c->writes--;
  if (status < 0 && c->state != ST_CLOSING)
    cs_rtls_conn_close(c, RAFT_NOCONNECTION);
  else if (c->close_after_writes && c->writes == 0 && c->state != ST_CLOSING)
    cs_rtls_conn_close(c, 0);
}

/* mbedTLS bio: queue ciphertext on the socket (copied: mbedTLS reuses its buffer). */
static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  tconn *c = ctx;
  if (c->state == ST_CLOSING)
    return MBEDTLS_ERR_NET_CONN_RESET;
  wreq *r = malloc(sizeof *r + len);
  if (r == NULL)
    return MBEDTLS_ERR_SSL_ALLOC_FAILED;
  memcpy(r->data, buf, len);
  r->c = c;
  uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
  if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written) != 0) {
    free(r);
    return MBEDTLS_ERR_NET_SEND_FAILED;
  }
  c->writes++;
  return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  tconn *c = ctx;
  size_t avail = c->in_len - c->in_off;
  if (avail == 0)
    return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > avail)
    len = avail;
  memcpy(buf, c->in + c->in_off, len);
  c->in_off += len;
  if (c->in_off == c->in_len)
    c->in_off = c->in_len = 0;
  return (int)len;
}

/* Encrypts and sends all of buf.  0 or -1. */
int cs_rtls_ssl_send_all(tconn *c, const uint8_t *buf, size_t len) {
  while (len > 0) {
    int rc = mbedtls_ssl_write(&c->ssl, buf, len);
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ)
      continue;
    if (rc < 0) {
      char e[128];
      tls_err(e, sizeof e, rc);
      cs_debug("cluster: TLS write failed: %s", e);
      return -1;
    }
    buf += rc;
    len -= (size_t)rc;
  }
  return 0;
}

/* ---------------------------------------------------------------- pipe side */

static void on_mine_written(uv_write_t *w, int status) {
  wreq *r = (wreq *)w;
  tconn *c = r->c;
  free(r);
  if (status < 0 && c->state != ST_CLOSING)
    cs_rtls_conn_close(c, 0);
}

int cs_rtls_to_raft(tconn *c, const uint8_t *buf, size_t len) {
  wreq *r = malloc(sizeof *r + len);
  if (r == NULL)
    return -1;
  memcpy(r->data, buf, len);
  r->c = c;
  uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
  if (uv_write(&r->w, (uv_stream_t *)&c->mine, &b, 1, on_mine_written) != 0) {
    free(r);
    return -1;
  }
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = malloc(64 * 1024);
  buf->len = buf->base ? 64 * 1024 : 0;
}

static void on_mine_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tconn *c = s->data;
  if (n > 0 && c->state == ST_OPEN) {
    if (cs_rtls_ssl_send_all(c, (const uint8_t *)buf->base, (size_t)n) < 0)
      cs_rtls_conn_close(c, 0);
  } else if (n < 0 && c->state != ST_CLOSING) {
    cs_rtls_conn_close(c, 0); /* raft closed its end */
  }
  free(buf->base);
}

/* Creates the socketpair; our end is read at once, raft's end waits in c->theirs. */
int cs_rtls_make_pair(tconn *c) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -1;
  c->theirs = raft_malloc(sizeof *c->theirs);
  if (c->theirs == NULL) {
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  uv_pipe_init(c->tr->loop, &c->mine, 0);
  c->mine.data = c;
  c->mine_open = 1;
  c->handles++;
  uv_pipe_init(c->tr->loop, c->theirs, 0);
  c->theirs->data = c;
  if (uv_pipe_open(&c->mine, sv[0]) != 0 || uv_pipe_open(c->theirs, sv[1]) != 0) {
    close(sv[0]);
    close(sv[1]);
    c->handles++;
    uv_close((uv_handle_t *)c->theirs, on_theirs_closed);
    c->theirs = NULL;
    return -1;
  }
  uv_read_start((uv_stream_t *)&c->mine, alloc_cb, on_mine_read);
  return 0;
}

/* Hands raft its end: after this raft owns (closes and frees) it. */
uv_stream_t *cs_rtls_hand_over(tconn *c) {
  uv_stream_t *s = (uv_stream_t *)c->theirs;
  s->data = NULL;
  c->theirs = NULL;
  return s;
}

/* ---------------------------------------------------------------- protocol */

const char *cs_rtls_node_name(transport *tr, uint64_t id, char *buf, size_t cap) {
  const char *n = tr->opts.node_name ? tr->opts.node_name(tr->opts.ctx, id) : NULL;
  if (n != NULL && n[0])
    return n;
  snprintf(buf, cap, "raft id %llx", (unsigned long long)id);
  return buf;
}

/*
 * mbedTLS verify callback (per session), called for every certificate of
 * the peer's chain after the CA check.  At the leaf, binds the connection
 * to the node the certificate names, or fails the handshake: a certificate
 * that names no node, or (outgoing) one that names another node than the
 * one this connection is meant for.
 */
static int verify_peer(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
  tconn *c = ctx;
  if (depth != 0)
    return 0;
  c->peer_node[0] = '\0';
  char node[CS_CLUSTER_NODE_ID_MAX + 1];
  if (cs_cluster_cert_node_id(crt, node) < 0) {
    snprintf(c->why, sizeof c->why, "%s", cs_error_message(CS_EPEERID));
    *flags |= MBEDTLS_X509_BADCERT_OTHER;
    return 0;
  }
  /* The node meant: by raft id, and by name where the name is known (raft
   * ids are a non-cryptographic hash of the name). */
  const char *meant = NULL;
  if (c->expect_id != 0 && c->tr->opts.node_name != NULL)
    meant = c->tr->opts.node_name(c->tr->opts.ctx, c->expect_id);
  if (c->expect_id != 0 && (cs_cluster_raft_id(node) != c->expect_id ||
                            (meant != NULL && strcmp(meant, node) != 0))) {
    char b[40];
    snprintf(c->why, sizeof c->why, "certificate names node %s, expected %s", node,
             cs_rtls_node_name(c->tr, c->expect_id, b, sizeof b));
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
  }
  if (*flags == 0)
    snprintf(c->peer_node, sizeof c->peer_node, "%s", node);
  return 0;
}

/* A refusal of an authenticated peer: one log line naming who and why. */
void cs_rtls_refuse(tconn *c, const char *what, const char *why) {
  cs_warn("cluster: refused %s from %s (certificate of node %s): %s", what, c->peer,
          c->peer_node[0] ? c->peer_node : "?", why);
  cs_rtls_conn_close(c, CS_EPEERID);
}

/* Drives the handshake, then decrypts every complete record. */
static void drive(tconn *c) {
  if (c->state == ST_HANDSHAKE) {
    int rc = mbedtls_ssl_handshake(&c->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
      return;
    if (rc != 0) {
      char e[128], v[256] = "";
      tls_err(e, sizeof e, rc);
      uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
      if (flags != 0 && flags != (uint32_t)-1)
        mbedtls_x509_crt_verify_info(v, sizeof v, "", flags);
      char *nl;
      while ((nl = strchr(v, '\n')) != NULL)
        *nl = ' ';
      if (c->why[0])
        cs_warn("cluster: refused peer %s: %s", c->peer, c->why);
      else
        cs_warn("cluster: TLS handshake with a peer failed (%s): %s%s%s", c->peer, e,
                v[0] ? ": " : "", v);
      cs_rtls_conn_close(c, RAFT_NOCONNECTION);
      return;
    }
    cs_rtls_on_established(c);
    if (c->state == ST_CLOSING)
      return;
  }
  uint8_t buf[16 * 1024];
  while (c->state == ST_PREAMBLE || c->state == ST_OPEN) {
    int rc = mbedtls_ssl_read(&c->ssl, buf, sizeof buf);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
      return;
    if (rc <= 0) {
      cs_rtls_conn_close(c, c->role == ROLE_MSG_OUT ? CS_ECONN : 0);
      return;
    }
    if (c->close_after_writes)
      continue;
    int raft_stream = c->state == ST_OPEN;
    int prc = cs_rtls_on_plain(c, buf, (size_t)rc);
    if (!raft_stream) /* a side-channel message (maybe a share): wiped */
      mbedtls_platform_zeroize(buf, (size_t)rc);
    if (prc < 0)
      return;
  }
}

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tconn *c = s->data;
  if (n < 0) {
    free(buf->base);
    if (c->state != ST_CLOSING)
      cs_rtls_conn_close(c, RAFT_NOCONNECTION);
    return;
  }
  if (n > 0 && c->state != ST_CLOSING) {
    if (c->in_len + (size_t)n > c->in_cap) {
      size_t cap = c->in_len + (size_t)n;
      uint8_t *p = realloc(c->in, cap);
      if (p == NULL) {
        free(buf->base);
        cs_rtls_conn_close(c, RAFT_NOMEM);
        return;
      }
      c->in = p;
      c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, buf->base, (size_t)n);
    c->in_len += (size_t)n;
    drive(c);
  }
  free(buf->base);
}

/* The handshake (and, accepted, the preamble; sent, the reply) took too long. */
void cs_rtls_on_timeout(uv_timer_t *t) {
  tconn *c = t->data;
  if (c->state < ST_PREAMBLE || (c->state == ST_PREAMBLE && c->role != ROLE_RAFT_OUT)) {
    cs_warn("cluster: connection %s %s timed out during the %s", c->role == ROLE_ACCEPT ? "from" : "to",
            c->peer, c->state < ST_PREAMBLE ? "TLS handshake" : "preamble");
    cs_rtls_conn_close(c, RAFT_NOCONNECTION);
  }
}
/* ---------------------------------------------------------------- lifecycle */

tconn *cs_rtls_conn_new(transport *tr, int role) {
  tconn *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->tr = tr;
  c->role = role;
  mbedtls_ssl_init(&c->ssl);
  if (mbedtls_ssl_setup(&c->ssl, role == ROLE_ACCEPT ? &tr->mat->srv : &tr->mat->cli) != 0) {
    mbedtls_ssl_free(&c->ssl);
    free(c);
    return NULL;
  }
  c->mat = tr->mat;
  c->mat->refs++;
  mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
  mbedtls_ssl_set_verify(&c->ssl, verify_peer, c);
  uv_tcp_init(tr->loop, &c->tcp);
  uv_timer_init(tr->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  c->next = tr->conns;
  if (tr->conns)
    tr->conns->prev = c;
  tr->conns = c;
  tr->nconns++;
  uv_timer_start(&c->timer, cs_rtls_on_timeout, cs_rtls_handshake_ms(tr), 0);
  return c;
}

/* Closes every handle; reports a failure to whoever waits on this tconn. */
void cs_rtls_conn_close(tconn *c, int status) {
  if (c->state == ST_CLOSING)
    return;
  c->state = ST_CLOSING;
  if (c->ccb != NULL) {
    raft_uv_connect_cb cb = c->ccb;
    c->ccb = NULL;
    cb(c->req, NULL, status == RAFT_CANCELED ? RAFT_CANCELED : RAFT_NOCONNECTION);
  }
  if (c->mcb != NULL) {
    cs_raft_tls_msg_cb cb = c->mcb;
    c->mcb = NULL;
    cb(c->marg, status < 0 ? status : CS_ECONN, c->peer_node, NULL, 0);
  }
  if (c->theirs != NULL) {
    c->handles++;
    uv_close((uv_handle_t *)c->theirs, on_theirs_closed);
    c->theirs = NULL;
  }
  if (c->mine_open)
    uv_close((uv_handle_t *)&c->mine, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_connected(uv_connect_t *req, int status) {
  tconn *c = req->data;
  if (c->state == ST_CLOSING)
    return;
  if (status < 0) {
    cs_rtls_conn_close(c, RAFT_NOCONNECTION);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = ST_HANDSHAKE;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_tcp_read);
  drive(c); /* sends the ClientHello */
}

int cs_rtls_start_connect(tconn *c, const char *address) {
  struct sockaddr_storage ss;
  snprintf(c->peer, sizeof c->peer, "%s", address);
  if (cs_rtls_parse_addr(address, &ss) < 0)
    return -1;
  c->creq.data = c;
  if (uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&ss, on_connected) != 0)
    return -1;
  return 0;
}

/* The IP address (no port) of a peer, for the per-address limit. */
static void peer_ip(const struct sockaddr_storage *ss, char *ip, size_t cap) {
  ip[0] = '\0';
  if (ss->ss_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)ss, ip, cap);
  else if (ss->ss_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)ss, ip, cap);
}

/* 1 when one more unauthenticated connection from `ip` is within the limits. */
static int within_limits(transport *tr, const char *ip) {
  unsigned max = tr->opts.max_unauth ? tr->opts.max_unauth : 128;
  unsigned per = tr->opts.max_unauth_per_addr ? tr->opts.max_unauth_per_addr : 16;
  if (tr->nunauth >= max)
    return 0;
  unsigned n = 0;
  for (tconn *o = tr->conns; o != NULL; o = o->next)
    if (o->unauth && o->state != ST_CLOSING && strcmp(o->ip, ip) == 0)
      n++;
  return n < per;
}

/* One warning a second at most for refused connections (a flood must not
 * become a log flood). */
static void warn_refused(transport *tr, const char *ip) {
  uint64_t now = uv_now(tr->loop);
  if (tr->refused_at != 0 && now - tr->refused_at < 1000) {
    tr->refused_quiet++;
    return;
  }
  cs_warn("cluster: refused a connection from %s: too many unauthenticated connections "
          "(cluster.max_unauth_connections / max_unauth_per_address)%s",
          ip, tr->refused_quiet ? " (and others since the last warning)" : "");
  tr->refused_at = now;
  tr->refused_quiet = 0;
}

void cs_rtls_on_accept(uv_stream_t *server, int status) {
  transport *tr = server->data;
  if (status < 0 || tr->closing)
    return;
  tconn *c = cs_rtls_conn_new(tr, ROLE_ACCEPT);
  if (c == NULL)
    return;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    cs_rtls_conn_close(c, 0);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  char ip[48] = "?";
  memset(&ss, 0, sizeof ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
    peer_ip(&ss, ip, sizeof ip);
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (!within_limits(tr, ip)) {
    warn_refused(tr, ip);
    cs_rtls_conn_close(c, 0);
    return;
  }
  snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  snprintf(c->ip, sizeof c->ip, "%s", ip);
  c->unauth = 1;
  tr->nunauth++;
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = ST_HANDSHAKE;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_tcp_read);
}
/* ---------------------------------------------------------------- set-up */

/* Loads a TLS set; refused (CS_ETLS with a detail) when a file does not
 * load, the key does not match, or the certificate does not name this
 * node (every peer would cs_rtls_refuse it). */
int cs_rtls_mat_load(transport *tr, const char *cert_file, const char *key_file,
                    const char *ca_file, tlsmat **out) {
  tlsmat *m = calloc(1, sizeof *m);
  if (m == NULL)
    return CS_ENOMEM;
  m->refs = 1;
  mbedtls_x509_crt_init(&m->ca);
  mbedtls_x509_crt_init(&m->cert);
  mbedtls_pk_init(&m->key);
  mbedtls_ssl_config_init(&m->srv);
  mbedtls_ssl_config_init(&m->cli);
  int rc;
  /* The mutual profile of common/tls_policy.c, on both ends. */
  if ((rc = cs_tls_policy_load_ca(&m->ca, ca_file, "cluster")) < 0 ||
      (rc = cs_tls_policy_load_pair(&m->cert, &m->key, cert_file, key_file, "cluster TLS")) < 0 ||
      (rc = cs_tls_policy_mutual(&m->srv, MBEDTLS_SSL_IS_SERVER, &tr->drbg, &m->cert, &m->key,
                                 &m->ca)) < 0 ||
      (rc = cs_tls_policy_mutual(&m->cli, MBEDTLS_SSL_IS_CLIENT, &tr->drbg, &m->cert, &m->key,
                                 &m->ca)) < 0) {
    cs_rtls_mat_release(m);
    return rc;
  }
  /* A node whose own certificate names another node (or none) would be
   * refused by every peer: say so instead. */
  const char *self = tr->opts.self_node_id;
  char own[CS_CLUSTER_NODE_ID_MAX + 1];
  if ((rc = cs_cluster_cert_node_id(&m->cert, own)) < 0)
    rc = cs_error_set(CS_ETLS, "cluster certificate %s: %s", cert_file, cs_error_message(rc));
  else if (self == NULL || strcmp(own, self) != 0)
    rc = cs_error_set(CS_ETLS, "cluster certificate %s names node %s, but cluster.node_id is %s",
                      cert_file, own, self ? self : "(none)");
  if (rc < 0) {
    cs_rtls_mat_release(m);
    return rc;
  }
  *out = m;
  return 0;
}
