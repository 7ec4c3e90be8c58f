/*
 * raft_tls: raft's transport over mutually authenticated TLS.  See raft_tls.h.
 *
 * Three files share the connection state of raft_tls_int.h:
 *   raft_tls.c      (this file) the struct raft_uv_transport interface
 *                   (init, listen, connect, close), set-up and reload, and
 *                   the preamble that opens a connection: a raft stream is
 *                   handed to raft, a message to side_channel.c;
 *   tls_pump.c      the TLS pump: TCP <-> mbedTLS <-> socketpair, the
 *                   handshake with the node identity bound by the verify
 *                   callback, timeouts, limits on unauthenticated peers, the
 *                   certificate sets;
 *   side_channel.c  one ClusterMessage and its ClusterReply per connection
 *                   (the codec is cluster_msg.c).
 *
 * Invariants: a raft connect request's callback runs exactly once (with a
 * stream, a failure, or RAFT_CANCELED at close); raft never sees a stream
 * before the peer's certificate was verified against the cluster CA and
 * its node identity was bound (peer_node, set by the verify callback during
 * the handshake: an outgoing connection to the wrong node, or a peer
 * certificate that names no node, fails the handshake itself); memory is
 * freed only once every handle of the tconn is closed.
 */
#include "raft_tls_int.h"
#include "cs_error.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void no_longer_unauth(tconn *c) {
  if (c->unauth) {
    c->unauth = 0;
    c->tr->nunauth--;
  }
}

/* ---------------------------------------------------------------- preamble */

/* The handshake finished: the connecting side speaks first. */
void cs_rtls_on_established(tconn *c) {
  transport *tr = c->tr;
  if (c->peer_node[0] == '\0') { /* the verify callback did not bind it: never trust */
    cs_rtls_refuse(c, "a connection", "no node identity");
    return;
  }
  if (c->role == ROLE_ACCEPT) {
    c->state = ST_PREAMBLE; /* the timer keeps running until the preamble is in */
    return;
  }
  uv_timer_stop(&c->timer);
  if (c->role == ROLE_RAFT_OUT) {
    uint8_t hdr[PREAMBLE_HDR];
    size_t alen = strlen(tr->address);
    cs_cluster_preamble_put(hdr, CS_CLUSTER_KIND_RAFT, tr->id, alen);
    if (cs_rtls_ssl_send_all(c, hdr, sizeof hdr) < 0 ||
        cs_rtls_ssl_send_all(c, (const uint8_t *)tr->address, alen) < 0 || cs_rtls_make_pair(c) < 0) {
      cs_rtls_conn_close(c, RAFT_NOCONNECTION);
      return;
    }
    c->state = ST_OPEN;
    raft_uv_connect_cb cb = c->ccb;
    c->ccb = NULL;
    cb(c->req, cs_rtls_hand_over(c), 0);
  } else {
    cs_rtls_msg_established(c); /* side_channel.c */
  }
}

/* A complete raft preamble (accepting side): hands raft a stream, or refuses. */
static int open_raft(tconn *c, const cs_cluster_preamble *pre, const uint8_t *rest, size_t len) {
  transport *tr = c->tr;
  const uint8_t *addr = c->pre + PREAMBLE_HDR;
  char b[40];
  if (pre->raft_id != cs_cluster_raft_id(c->peer_node)) { /* names: may_open_raft */
    char why[160];
    snprintf(why, sizeof why, "its preamble claims %s", cs_rtls_node_name(tr, pre->raft_id, b, sizeof b));
    cs_rtls_refuse(c, "a raft connection", why);
    return -1;
  }
  if (!cs_cluster_address_valid(addr, pre->len)) {
    cs_rtls_refuse(c, "a raft connection", "malformed address in its preamble");
    return -1;
  }
  int rc = tr->opts.may_open_raft ? tr->opts.may_open_raft(tr->opts.ctx, c->peer_node) : 0;
  if (rc < 0) {
    cs_rtls_refuse(c, "a raft connection", cs_error_message(rc));
    return -1;
  }
  if (tr->accept_cb == NULL || tr->closing) {
    cs_rtls_conn_close(c, 0);
    return -1;
  }
  char address[CS_CLUSTER_ADDR_MAX + 1];
  memcpy(address, addr, pre->len);
  address[pre->len] = '\0';
  if (cs_rtls_make_pair(c) < 0) {
    cs_rtls_conn_close(c, 0);
    return -1;
  }
  uv_timer_stop(&c->timer);
  no_longer_unauth(c);
  c->state = ST_OPEN;
  tr->accept_cb(tr->t, pre->raft_id, address, cs_rtls_hand_over(c));
  if (len > 0)
    return cs_rtls_to_raft(c, rest, len) < 0 ? (cs_rtls_conn_close(c, 0), -1) : 0;
  return 0;
}

/* Decrypted bytes.  Returns -1 when the tconn was closed (or will be). */
int cs_rtls_on_plain(tconn *c, const uint8_t *buf, size_t len) {
  if (c->state == ST_OPEN)
    return cs_rtls_to_raft(c, buf, len) < 0 ? (cs_rtls_conn_close(c, 0), -1) : 0;
  while (c->state == ST_PREAMBLE) {
    /* The reply to a message is a u16 length and that many bytes; a
     * preamble is the 11-byte header and its payload. */
    size_t hdr = c->role == ROLE_MSG_OUT ? 2 : PREAMBLE_HDR;
    size_t want = hdr;
    cs_cluster_preamble pre = {0};
    if (c->pre_len >= hdr) {
      if (c->role == ROLE_MSG_OUT) {
        if (cs_rtls_msg_reply_len(c, &pre.len) < 0) /* side_channel.c */
          return -1;
      } else {
        int rc = cs_cluster_preamble_parse(c->pre, &pre);
        if (rc < 0) {
          cs_rtls_refuse(c, "a connection", cs_error_message(rc));
          return -1;
        }
      }
      want = hdr + pre.len;
    }
    if (c->pre_len < want) {
      if (len == 0)
        return 0;
      size_t take = want - c->pre_len;
      if (take > len)
        take = len;
      memcpy(c->pre + c->pre_len, buf, take);
      c->pre_len += take;
      buf += take;
      len -= take;
      continue;
    }
    /* A complete preamble (or reply). */
    if (c->role == ROLE_MSG_OUT) {
      cs_rtls_msg_reply(c); /* side_channel.c: closes */
      return -1;
    }
    if (pre.kind == CS_CLUSTER_KIND_MSG) {
      uv_timer_stop(&c->timer);
      cs_rtls_answer_message(c, c->pre + PREAMBLE_HDR, pre.len);
      return -1; /* ignore the rest; we close after the writes */
    }
    return open_raft(c, &pre, buf, len);
  }
  return 0;
}

/* ---------------------------------------------------------------- the interface */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address) {
  transport *tr = t->impl;
  tr->id = id;
  snprintf(tr->address, sizeof tr->address, "%s", address);
  return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
  transport *tr = t->impl;
  struct sockaddr_storage ss;
  if (cs_rtls_parse_addr(tr->address, &ss) < 0) {
    snprintf(t->errmsg, sizeof t->errmsg, "bad cluster address %.128s", tr->address);
    return RAFT_INVALID;
  }
  tr->accept_cb = cb;
  uv_tcp_init(tr->loop, &tr->listener);
  tr->listener.data = tr;
  tr->listening = 1;
  int rc = uv_tcp_bind(&tr->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&tr->listener, 128, cs_rtls_on_accept);
  if (rc != 0) {
    snprintf(t->errmsg, sizeof t->errmsg, "cannot listen on %.128s: %.64s", tr->address,
             uv_strerror(rc));
    return RAFT_IOERR;
  }
  return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb) {
  transport *tr = t->impl;
  tconn *c = cs_rtls_conn_new(tr, ROLE_RAFT_OUT);
  if (c == NULL)
    return RAFT_NOMEM;
  c->req = req;
  c->peer_id = id;
  c->expect_id = id; /* the peer must BE the node raft asked for */
  if (cs_rtls_start_connect(c, address) < 0) {
    cs_rtls_conn_close(c, 0); /* ccb not set yet: nothing reported */
    snprintf(t->errmsg, sizeof t->errmsg, "cannot connect to %.128s", address);
    return RAFT_NOCONNECTION;
  }
  c->ccb = cb;
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  transport *tr = h->data;
  tr->listening = 0;
  cs_rtls_maybe_finish_close(tr);
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) {
  transport *tr = t->impl;
  tr->closing = 1;
  tr->close_cb = cb;
  for (tconn *c = tr->conns, *next; c; c = next) {
    next = c->next;
    cs_rtls_conn_close(c, RAFT_CANCELED);
  }
  if (tr->listening)
    uv_close((uv_handle_t *)&tr->listener, on_listener_closed);
  else
    cs_rtls_maybe_finish_close(tr);
}
int cs_raft_tls_reload(struct raft_uv_transport *t, const char *cert_file, const char *key_file,
                       const char *ca_file) {
  transport *tr = t->impl;
  tlsmat *fresh;
  int rc = cs_rtls_mat_load(tr, cert_file, key_file, ca_file, &fresh);
  if (rc < 0)
    return rc;
  tlsmat *old = tr->mat;
  tr->mat = fresh;
  cs_rtls_mat_release(old); /* freed with the last connection still using it */
  return 0;
}

int cs_raft_tls_init(struct raft_uv_transport *t, uv_loop_t *loop, const cs_raft_tls_opts *opts) {
  transport *tr = calloc(1, sizeof *tr);
  if (tr == NULL)
    return CS_ENOMEM;
  memset(t, 0, sizeof *t);
  tr->t = t;
  tr->loop = loop;
  tr->opts = *opts;
  mbedtls_entropy_init(&tr->entropy);
  mbedtls_ctr_drbg_init(&tr->drbg);
  t->impl = tr;
  int rc;
  static const char pers[] = "custos raft tls";
  if ((rc = mbedtls_ctr_drbg_seed(&tr->drbg, mbedtls_entropy_func, &tr->entropy,
                                  (const unsigned char *)pers, sizeof pers)) != 0) {
    cs_raft_tls_free(t);
    return cs_error_set(CS_ECRYPTO, "cluster TLS: cannot seed the random generator");
  }
  if ((rc = cs_rtls_mat_load(tr, opts->cert_file, opts->key_file, opts->ca_file, &tr->mat)) < 0) {
    cs_raft_tls_free(t);
    return rc;
  }
  t->init = t_init;
  t->listen = t_listen;
  t->connect = t_connect;
  t->close = t_close;
  return 0;
}

void cs_raft_tls_free(struct raft_uv_transport *t) {
  transport *tr = t->impl;
  if (tr == NULL)
    return;
  cs_rtls_mat_release(tr->mat);
  mbedtls_ctr_drbg_free(&tr->drbg);
  mbedtls_entropy_free(&tr->entropy);
  free(tr);
  t->impl = NULL;
}
