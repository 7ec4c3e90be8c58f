/*
 * raft_tls: a struct raft_uv_transport whose connections are mutually
 * authenticated TLS 1.2 (mbedTLS 2.28) between cluster members.
 *
 * raft's own TCP transport is plaintext and unauthenticated.  This one
 * listens on the node's cluster address and, for every connection (in or
 * out), runs a TLS handshake in which BOTH ends must present a certificate
 * signed by the cluster CA.  Only then is raft handed a stream: one end of
 * an AF_UNIX socketpair, whose other end this module pumps through the TLS
 * session.  So raft reads and writes plaintext on a uv_pipe_t, and the wire
 * only ever carries ciphertext.  A node without a certificate from the
 * cluster CA cannot get a stream to raft at all: it can neither read nor
 * inject entries.
 *
 * Identity: every cluster certificate names its node (cluster_msg.h).  Both
 * ends read it during the handshake: the connecting end refuses a peer
 * whose certificate does not name the node it meant to reach (the raft id
 * it was asked to connect to), and the accepting end binds the connection
 * to the node its peer's certificate names.  After the handshake the
 * connecting side sends a preamble (cluster_msg.h): a raft stream's raft id
 * must be the one of the certificate's node, and that node must be allowed
 * (may_open_raft); a message is handed to on_message with the
 * certificate's node id, never with a name the peer chose, and is answered
 * with one reply.  That is the cluster's side channel for standbys.
 *
 * Until its preamble has been accepted, an incoming connection is
 * unauthenticated: their number (in total and per IP address) and their
 * time are bounded, so a flood of handshakes cannot exhaust the node.
 *
 * Everything runs on the loop thread.
 */
#ifndef CS_RAFT_TLS_H
#define CS_RAFT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <raft.h>
#include <raft/uv.h>

typedef struct cs_raft_tls_opts {
  const char *cert_file;   /* this node's certificate (PEM), signed by the cluster CA, */
  const char *key_file;    /* naming self_node_id (see cluster_msg.h) */
  const char *ca_file;     /* the cluster CA: peers must present a certificate it signed */
  const char *self_node_id;
  unsigned handshake_timeout_ms;  /* TLS handshake + preamble; 0: 5000 */
  unsigned max_unauth;            /* accepted connections not yet past the preamble; 0: 128 */
  unsigned max_unauth_per_addr;   /* ... from one IP address; 0: 16 */
  /* Side channel: a message from the peer whose certificate names
   * `peer_node_id` (valid during the call); write at most *reply_len (in:
   * capacity) bytes of reply into reply. */
  void (*on_message)(void *ctx, const char *peer_node_id, const uint8_t *msg, size_t len,
                     uint8_t *reply, size_t *reply_len);
  /* May the authenticated node `peer_node_id` open a raft stream to us?
   * 0, or negative with a detail (logged with the refusal). */
  int (*may_open_raft)(void *ctx, const char *peer_node_id);
  /* Optional: the node id of a raft id, for log lines (NULL: unknown). */
  const char *(*node_name)(void *ctx, uint64_t raft_id);
  void *ctx;
} cs_raft_tls_opts;

/*
 * Fills `t` (the caller owns its memory; it must outlive raft_close) with a
 * TLS transport.  Loads the certificate, key and CA now.  Returns 0 or
 * CS_ETLS / CS_ENOMEM with a detail.
 */
int cs_raft_tls_init(struct raft_uv_transport *t, uv_loop_t *loop, const cs_raft_tls_opts *opts)
    __attribute__((warn_unused_result));
/* SIGHUP: loads the certificate, key and CA again.  New connections use
 * them; open ones keep the set they were made with.  Refused (the old set
 * kept) with CS_ETLS and a detail when a file does not load, the key does
 * not match, or the certificate does not name self_node_id. */
int cs_raft_tls_reload(struct raft_uv_transport *t, const char *cert_file, const char *key_file,
                       const char *ca_file) __attribute__((warn_unused_result));
/* Frees what cs_raft_tls_init allocated (after raft's close callback). */
void cs_raft_tls_free(struct raft_uv_transport *t);

/*
 * Sends one side-channel message to the node at `address` ("HOST:PORT")
 * over a fresh mutually authenticated connection whose peer certificate
 * must name the node of raft id `expect_id` (0: any node of the cluster
 * CA; the caller then trusts nothing in the reply but `peer_node_id`).
 * cb(arg, status, peer_node_id, reply, len) runs once on the loop (status 0
 * with the reply, or negative).
 */
typedef void (*cs_raft_tls_msg_cb)(void *arg, int status, const char *peer_node_id,
                                   const uint8_t *reply, size_t len);
int cs_raft_tls_send_msg(struct raft_uv_transport *t, const char *address, uint64_t expect_id,
                         const uint8_t *msg, size_t len, cs_raft_tls_msg_cb cb, void *arg)
    __attribute__((warn_unused_result));

#endif
