/*
 * raft_tls_int: the connection state shared by raft_tls.c (the raft
 * transport and the preamble), tls_pump.c (TLS over TCP to a socketpair)
 * and side_channel.c (one message, one reply).  Not for other modules:
 * raft_tls.h is the interface.
 *
 * One tconn is one TCP connection to or from a peer: its uv_tcp_t, a
 * handshake timer, the mbedTLS session (heap: it must not move), and, once
 * the preamble has been exchanged, `mine`, our end of the socketpair whose
 * other end (`theirs`, allocated with raft_malloc because raft frees it)
 * belongs to raft.  Everything runs on the loop thread.
 */
#ifndef CS_RAFT_TLS_INT_H
#define CS_RAFT_TLS_INT_H

#include "raft_tls.h"
#include "cluster_msg.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <sys/socket.h>

enum { ROLE_RAFT_OUT = 1, ROLE_ACCEPT, ROLE_MSG_OUT };
enum { ST_CONNECTING = 0, ST_HANDSHAKE, ST_PREAMBLE, ST_OPEN, ST_CLOSING };

#define PREAMBLE_HDR CS_CLUSTER_PREAMBLE_LEN
#define MAX_PAYLOAD CS_CLUSTER_MAX_PAYLOAD
#define REPLY_CAP CS_CLUSTER_MAX_PAYLOAD

typedef struct transport transport;

/* The certificate, key and CA with the two ssl_configs built on them.
 * Every connection holds a reference (its mbedtls_ssl_context points into
 * srv or cli), so SIGHUP can swap in a new set for new connections while
 * open ones finish with theirs: the API listener's scheme (net/tls.c). */
typedef struct tlsmat {
  unsigned refs;
  mbedtls_ssl_config srv, cli;
  mbedtls_x509_crt ca, cert;
  mbedtls_pk_context key;
} tlsmat;

typedef struct tconn {
  transport *tr;
  struct tconn *next, *prev;
  int role, state, handles;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  uv_pipe_t mine;
  int mine_open;
  uv_pipe_t *theirs;             /* raft's end, until handed over */
  mbedtls_ssl_context ssl;
  tlsmat *mat;                   /* the TLS set this session was made from (a reference) */
  uint8_t *in;                   /* ciphertext read and not yet consumed by mbedTLS */
  size_t in_len, in_off, in_cap;
  uint8_t pre[PREAMBLE_HDR + MAX_PAYLOAD];
  size_t pre_len;
  char peer[64];                 /* the peer's IP:port (accepted) or the address dialled */
  char ip[48];                   /* accepted: the peer's IP address (per-address limit) */
  char peer_node[CS_CLUSTER_NODE_ID_MAX + 1]; /* node named by its verified certificate */
  char why[200];                 /* why the verify callback refused the certificate */
  uint64_t expect_id;            /* outgoing: raft id the peer's certificate must name; 0: any */
  int unauth;                    /* accepted and not yet past the preamble: counted */
  /* ROLE_RAFT_OUT */
  struct raft_uv_connect *req;
  raft_uv_connect_cb ccb;
  raft_id peer_id;
  /* ROLE_MSG_OUT */
  uint8_t *msg;
  size_t msg_len;
  cs_raft_tls_msg_cb mcb;
  void *marg;
  unsigned writes;               /* tcp writes in flight */
  int close_after_writes;
} tconn;

struct transport {
  struct raft_uv_transport *t;
  uv_loop_t *loop;
  raft_id id;
  char address[256];
  raft_uv_accept_cb accept_cb;
  uv_tcp_t listener;
  int listening;
  tlsmat *mat;                   /* for new connections; replaced by cs_raft_tls_reload */
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  cs_raft_tls_opts opts;
  tconn *conns;
  unsigned nconns;
  unsigned nunauth;              /* accepted connections with unauth set */
  uint64_t refused_at;           /* uv_now of the last "too many connections" warning */
  unsigned refused_quiet;        /* refusals since, not logged */
  int closing;
  raft_uv_transport_close_cb close_cb;
};

/* tconn.pre holds a whole preamble (header + payload) or a whole reply
 * (u16 length + payload): both lengths are checked against MAX_PAYLOAD
 * before a byte is copied (cs_cluster_preamble_parse, cs_rtls_msg_reply_len). */
_Static_assert(sizeof(((tconn *)0)->pre) >= PREAMBLE_HDR + MAX_PAYLOAD,
               "a preamble and its largest payload fit tconn.pre");
_Static_assert(sizeof(((tconn *)0)->pre) >= 2 + MAX_PAYLOAD,
               "a reply and its largest payload fit tconn.pre");
_Static_assert(MAX_PAYLOAD <= 0xffff, "payload lengths are u16 on the wire");

static inline unsigned cs_rtls_handshake_ms(const transport *tr) {
  return tr->opts.handshake_timeout_ms ? tr->opts.handshake_timeout_ms : 5000;
}

/* ---- tls_pump.c */
/* "HOST:PORT" / "[IPv6]:PORT" to a socket address; 0 or -1. */
int cs_rtls_parse_addr(const char *address, struct sockaddr_storage *ss);
/* A new tconn of `role` on the current TLS set, its handshake timer running. */
tconn *cs_rtls_conn_new(transport *tr, int role);
/* Closes every handle; reports a failure to whoever waits on this tconn. */
void cs_rtls_conn_close(tconn *c, int status);
/* Outgoing: starts the TCP connect to `address`; 0 or -1. */
int cs_rtls_start_connect(tconn *c, const char *address);
/* The listener's connection callback (limits on unauthenticated peers). */
void cs_rtls_on_accept(uv_stream_t *server, int status);
/* The handshake / preamble / reply took too long. */
void cs_rtls_on_timeout(uv_timer_t *t);
/* Encrypts and sends all of buf.  0 or -1. */
int cs_rtls_ssl_send_all(tconn *c, const uint8_t *buf, size_t len);
/* Plaintext to raft's end of the socketpair.  0 or -1. */
int cs_rtls_to_raft(tconn *c, const uint8_t *buf, size_t len);
/* Creates the socketpair; our end is read at once, raft's waits in c->theirs. */
int cs_rtls_make_pair(tconn *c);
/* Hands raft its end: after this raft owns (closes and frees) it. */
uv_stream_t *cs_rtls_hand_over(tconn *c);
/* A node's name for log lines (or "raft id ..."). */
const char *cs_rtls_node_name(transport *tr, uint64_t id, char *buf, size_t cap);
/* Refuses an authenticated peer: one log line naming who and why, closes. */
void cs_rtls_refuse(tconn *c, const char *what, const char *why);
/* Runs the transport's close callback once nothing is left open. */
void cs_rtls_maybe_finish_close(transport *tr);
/* Loads a certificate set (refused: CS_ETLS with a detail). */
int cs_rtls_mat_load(transport *tr, const char *cert_file, const char *key_file,
                     const char *ca_file, tlsmat **out) __attribute__((warn_unused_result));
void cs_rtls_mat_release(tlsmat *m);

/* ---- raft_tls.c */
/* The handshake finished (peer_node bound). */
void cs_rtls_on_established(tconn *c);
/* Decrypted bytes.  Returns -1 when the tconn was closed (or will be). */
int cs_rtls_on_plain(tconn *c, const uint8_t *buf, size_t len);

/* ---- side_channel.c */
void cs_rtls_msg_established(tconn *c);
int cs_rtls_msg_reply_len(tconn *c, size_t *len);
void cs_rtls_msg_reply(tconn *c);
void cs_rtls_answer_message(tconn *c, const uint8_t *msg, size_t len);

#endif
