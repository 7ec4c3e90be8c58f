/*
 * cluster_msg: what cluster members say to each other outside raft's own
 * stream, and who they are.
 *
 * Identity.  A node's cluster certificate names its node id in exactly one
 * subjectAltName of the form DNS:<node_id>.node.custos (mbedTLS 2.28 keeps
 * only dNSName and otherName entries of the SAN extension, so a DNS name
 * under a reserved suffix is what both ends can read).  The node id is what
 * the peer IS; everything a peer claims (the raft id of its preamble, the
 * node_id of a status report or a join request) must equal it.  Raft ids are
 * derived from node ids (FNV-1a 64), so every node computes the same ids.
 *
 * Wire.  A connection to the cluster port starts, after the TLS handshake,
 * with an 11-byte preamble: kind (1 raft stream, 2 message), raft id (u64
 * big-endian, 0 for a message), payload length (u16 big-endian, at most
 * CS_CLUSTER_MAX_PAYLOAD).  A raft preamble's payload is the sender's raft
 * address (HOST:PORT); a message's is one protobuf ClusterMessage, answered
 * by a u16 length and one ClusterReply.  Every parser here checks every
 * length and every field; nothing is trusted because it parsed.
 *
 * No sockets and no loop here: the fuzz target drives these functions.
 */
#ifndef CS_CLUSTER_MSG_H
#define CS_CLUSTER_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <mbedtls/x509_crt.h>

#define CS_CLUSTER_NODE_SUFFIX ".node.custos"
#define CS_CLUSTER_NODE_ID_MAX 63
#define CS_CLUSTER_ADDR_MAX 127
#define CS_CLUSTER_PREAMBLE_LEN 11
#define CS_CLUSTER_MAX_PAYLOAD 4096
#define CS_CLUSTER_PROOF_LEN 32

enum { CS_CLUSTER_KIND_RAFT = 1, CS_CLUSTER_KIND_MSG = 2 };

/* 1 when s[0..len) is a node id: 1-63 of A-Z a-z 0-9 . _ - (the rule of the
 * configuration's node_id). */
int cs_cluster_node_id_valid(const uint8_t *s, size_t len);
/* 1 when s[0..len) is HOST:PORT or [IPv6]:PORT, printable, port 1-65535,
 * at most CS_CLUSTER_ADDR_MAX bytes. */
int cs_cluster_address_valid(const uint8_t *s, size_t len);
/* The raft id of a node id (never 0). */
uint64_t cs_cluster_raft_id(const char *node_id);

/*
 * The node id named by `crt` (the leaf): the one DNS SAN ending in
 * CS_CLUSTER_NODE_SUFFIX with a valid node id before it, copied into
 * out[CS_CLUSTER_NODE_ID_MAX + 1].  Returns 0, or CS_EPEERID with a detail
 * ("names no node", "names more than one node").
 */
int cs_cluster_cert_node_id(const mbedtls_x509_crt *crt, char *out)
    __attribute__((warn_unused_result));

typedef struct cs_cluster_preamble {
  int kind;
  uint64_t raft_id;
  size_t len;          /* payload length */
} cs_cluster_preamble;

/* Writes the 11-byte header. */
void cs_cluster_preamble_put(uint8_t *p, int kind, uint64_t raft_id, size_t len);
/* Parses the 11-byte header at p; 0 or CS_EPROTO with a detail (unknown
 * kind, raft id 0 on a raft stream or not 0 on a message, length 0 or over
 * CS_CLUSTER_MAX_PAYLOAD). */
int cs_cluster_preamble_parse(const uint8_t *p, cs_cluster_preamble *out)
    __attribute__((warn_unused_result));

enum { CS_CLUSTER_MSG_STATUS = 1, CS_CLUSTER_MSG_JOIN = 2, CS_CLUSTER_MSG_UNSEAL = 3 };
/* The longest unseal share a relay carries (shares are 32 or 33 bytes). */
#define CS_CLUSTER_KEY_MAX 64

/* One side-channel message, decoded and validated. */
typedef struct cs_cluster_msg {
  int type;
  char node_id[CS_CLUSTER_NODE_ID_MAX + 1];
  char address[CS_CLUSTER_ADDR_MAX + 1];      /* JOIN only */
  char api_address[CS_CLUSTER_ADDR_MAX + 1];
  int sealed;                                 /* STATUS only */
  int initialized;                            /* STATUS only: the store holds a seal config */
  uint32_t term;
  uint64_t applied;
  /* STATUS: the staged term it holds (0: none) and its proof of holding it
   * (CS_CLUSTER_PROOF_LEN bytes exactly when staged_term != 0; checked by
   * the leader against its own key, see cs_seal_term_proof). */
  uint32_t staged_term;
  uint8_t staged_proof[CS_CLUSTER_PROOF_LEN];
  uint8_t key[CS_CLUSTER_KEY_MAX];            /* UNSEAL only: the relayed share (secret: */
  size_t key_len;                             /* the holder of the struct wipes it) */
} cs_cluster_msg;

/* Decodes one ClusterMessage; 0 or CS_EPROTO with a detail naming the
 * field.  Unknown fields are refused too (a peer of this version sends
 * none). */
int cs_cluster_msg_decode(const uint8_t *buf, size_t len, cs_cluster_msg *out)
    __attribute__((warn_unused_result));
/* Encodes into buf[cap]; *len set.  0 or CS_EINVAL when it does not fit.
 * Fields are not checked here: the receiver's decoder checks them. */
int cs_cluster_msg_encode(const cs_cluster_msg *m, uint8_t *buf, size_t cap, size_t *len)
    __attribute__((warn_unused_result));

enum { CS_CLUSTER_REPLY_STATUS = 1, CS_CLUSTER_REPLY_JOIN = 2, CS_CLUSTER_REPLY_REFUSED = 3,
       CS_CLUSTER_REPLY_UNSEAL = 4 };

typedef struct cs_cluster_reply {
  int type;
  char node_id[CS_CLUSTER_NODE_ID_MAX + 1];        /* STATUS, UNSEAL: the answering node */
  char api_address[CS_CLUSTER_ADDR_MAX + 1];       /* STATUS: its API address ("" if none) */
  int member;                                      /* JOIN */
  char leader_address[CS_CLUSTER_ADDR_MAX + 1];    /* JOIN ("" when unknown) */
  char reason[256];                                /* REFUSED, UNSEAL error (printable ASCII) */
  int sealed;                                      /* UNSEAL: its state after the share */
  unsigned progress, t;                            /* UNSEAL: its own unseal progress */
  int removed;                                     /* REFUSED: by the leader, you are no member */
} cs_cluster_reply;

int cs_cluster_reply_decode(const uint8_t *buf, size_t len, cs_cluster_reply *out)
    __attribute__((warn_unused_result));
int cs_cluster_reply_encode(const cs_cluster_reply *r, uint8_t *buf, size_t cap, size_t *len)
    __attribute__((warn_unused_result));

#endif
