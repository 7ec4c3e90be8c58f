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
 * After the handshake the connecting side sends a preamble (its raft id and
 * address, which raft's accept callback needs).  A preamble with the kind
 * CS_RAFT_TLS_KIND_MSG instead carries one small cluster message (a node's
 * status report), delivered to the on_message callback and answered with
 * one reply; that is the cluster's side channel for standbys.
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
  const char *cert_file;   /* this node's certificate (PEM), signed by the cluster CA */
  const char *key_file;
  const char *ca_file;     /* the cluster CA: peers must present a certificate it signed */
  unsigned handshake_timeout_ms;  /* 0: 5000 */
  /* Optional side channel: a peer's message (valid during the call); write
   * at most *reply_len (in: capacity) bytes of reply into reply. */
  void (*on_message)(void *ctx, const uint8_t *msg, size_t len, uint8_t *reply,
                     size_t *reply_len);
  void *ctx;
} cs_raft_tls_opts;

/*
 * Fills `t` (the caller owns its memory; it must outlive raft_close) with a
 * TLS transport.  Loads the certificate, key and CA now.  Returns 0 or
 * CS_ETLS / CS_ENOMEM with a detail.
 */
int cs_raft_tls_init(struct raft_uv_transport *t, uv_loop_t *loop, const cs_raft_tls_opts *opts)
    __attribute__((warn_unused_result));
/* Frees what cs_raft_tls_init allocated (after raft's close callback). */
void cs_raft_tls_free(struct raft_uv_transport *t);

/*
 * Sends one side-channel message to the node at `address` ("HOST:PORT")
 * over a fresh mutually authenticated connection; cb(arg, status, reply,
 * len) runs once on the loop (status 0 with the reply, or negative).
 */
typedef void (*cs_raft_tls_msg_cb)(void *arg, int status, const uint8_t *reply, size_t len);
int cs_raft_tls_send_msg(struct raft_uv_transport *t, const char *address, const uint8_t *msg,
                         size_t len, cs_raft_tls_msg_cb cb, void *arg)
    __attribute__((warn_unused_result));

#endif
