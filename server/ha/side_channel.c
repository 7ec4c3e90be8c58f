/*
 * side_channel: what cluster members say to each other outside raft.
 *
 * One connection carries one message: after the TLS handshake (tls_pump.c)
 * the sender writes the preamble (kind MSG, raft id 0, payload length) and
 * one encoded ClusterMessage; the receiver hands it to opts.on_message with
 * the node named by the sender's VERIFIED certificate (never a name the
 * message carries), writes a u16 length and one ClusterReply, and closes.
 * The sender reads the reply, checks its length against
 * CS_CLUSTER_MAX_PAYLOAD before buffering it, and hands it to its callback
 * with the node its own TLS session verified.
 *
 * The payloads are protobuf (custos.proto, "cluster side channel"),
 * decoded and validated by cluster_msg.c; this file only frames them.
 */
#include "raft_tls_int.h"
#include "cs_error.h"
#include "log.h"

#include <mbedtls/platform_util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers one side-channel message (accepting side) and closes. */
void cs_rtls_answer_message(tconn *c, const uint8_t *msg, size_t len) {
  transport *tr = c->tr;
  uint8_t reply[2 + REPLY_CAP];
  size_t rlen = REPLY_CAP;
  if (tr->opts.on_message != NULL)
    tr->opts.on_message(tr->opts.ctx, c->peer_node, msg, len, reply + 2, &rlen);
  else
    rlen = 0;
  if (rlen > REPLY_CAP)
    rlen = 0;
  mbedtls_platform_zeroize((uint8_t *)msg, len); /* c->pre: maybe a relayed share */
  reply[0] = (uint8_t)(rlen >> 8);
  reply[1] = (uint8_t)rlen;
  c->state = ST_OPEN; /* no more input expected */
  c->close_after_writes = 1;
  if (cs_rtls_ssl_send_all(c, reply, 2 + rlen) < 0) {
    cs_rtls_conn_close(c, 0);
    return;
  }
  mbedtls_ssl_close_notify(&c->ssl);
}

/* Connecting side, handshake done: the preamble and the message. */
void cs_rtls_msg_established(tconn *c) {
  uint8_t hdr[PREAMBLE_HDR];
  cs_cluster_preamble_put(hdr, CS_CLUSTER_KIND_MSG, 0, c->msg_len);
  if (cs_rtls_ssl_send_all(c, hdr, sizeof hdr) < 0 ||
      cs_rtls_ssl_send_all(c, c->msg, c->msg_len) < 0) {
    cs_rtls_conn_close(c, CS_ECONN);
    return;
  }
  c->state = ST_PREAMBLE; /* waiting for the reply */
  uv_timer_start(&c->timer, cs_rtls_on_timeout, cs_rtls_handshake_ms(c->tr), 0);
}

/* The reply's u16 length is in c->pre: 0, or -1 (closed) when it is over
 * what the buffer holds. */
int cs_rtls_msg_reply_len(tconn *c, size_t *len) {
  *len = ((size_t)c->pre[0] << 8) | c->pre[1];
  if (*len > MAX_PAYLOAD) {
    cs_warn("cluster: oversized reply from %s", c->peer);
    cs_rtls_conn_close(c, CS_EPROTO);
    return -1;
  }
  return 0;
}

/* The whole reply is in c->pre: to the sender's callback, then close. */
void cs_rtls_msg_reply(tconn *c) {
  cs_raft_tls_msg_cb cb = c->mcb;
  c->mcb = NULL;
  cb(c->marg, 0, c->peer_node, c->pre + 2, c->pre_len - 2);
  cs_rtls_conn_close(c, 0);
}

int cs_raft_tls_send_msg(struct raft_uv_transport *t, const char *address, uint64_t expect_id,
                         const uint8_t *msg, size_t len, cs_raft_tls_msg_cb cb, void *arg) {
  transport *tr = t->impl;
  if (len == 0 || len > MAX_PAYLOAD || tr->closing)
    return CS_EINVAL;
  tconn *c = cs_rtls_conn_new(tr, ROLE_MSG_OUT);
  if (c == NULL)
    return CS_ENOMEM;
  c->expect_id = expect_id;
  c->msg = malloc(len ? len : 1);
  if (c->msg == NULL) {
    cs_rtls_conn_close(c, 0);
    return CS_ENOMEM;
  }
  memcpy(c->msg, msg, len);
  c->msg_len = len;
  if (cs_rtls_start_connect(c, address) < 0) {
    cs_rtls_conn_close(c, 0);
    return cs_error_set(CS_ECONN, "cannot connect to %s", address);
  }
  c->mcb = cb;
  c->marg = arg;
  return 0;
}

