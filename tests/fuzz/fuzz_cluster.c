/*
 * fuzz_cluster: libFuzzer target for what a cluster peer sends after the
 * TLS handshake (server/ha/cluster_msg.c): the 11-byte preamble and its
 * payload exactly as raft_tls.c consumes them (a raft stream's address, a
 * side-channel ClusterMessage), the ClusterReply a member reads back, and
 * the node identity of a peer certificate (DER).  The first byte picks the
 * parser.  Every message that decodes is encoded again and must decode to
 * the same fields.  Must never crash, leak or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_msg.h"
#include "cs_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checked in every build type (assert is compiled out with NDEBUG). */
#define CHECK(x) \
  do {           \
    if (!(x))    \
      abort();   \
  } while (0)

static void preamble(const uint8_t *p, size_t n) {
  cs_cluster_preamble pre;
  if (n < CS_CLUSTER_PREAMBLE_LEN || cs_cluster_preamble_parse(p, &pre) < 0)
    return;
  CHECK(pre.len > 0 && pre.len <= CS_CLUSTER_MAX_PAYLOAD);
  p += CS_CLUSTER_PREAMBLE_LEN;
  n -= CS_CLUSTER_PREAMBLE_LEN;
  if (pre.len > n)
    return; /* the server waits for more */
  cs_cluster_msg m;
  if (pre.kind == CS_CLUSTER_KIND_RAFT)
    (void)cs_cluster_address_valid(p, pre.len);
  else if (cs_cluster_msg_decode(p, pre.len, &m) == 0)
    CHECK(cs_cluster_node_id_valid((const uint8_t *)m.node_id, strlen(m.node_id)));
}

static void message(const uint8_t *p, size_t n) {
  cs_cluster_msg m, again;
  if (cs_cluster_msg_decode(p, n, &m) < 0)
    return;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t len;
  CHECK(cs_cluster_msg_encode(&m, buf, sizeof buf, &len) == 0);
  CHECK(cs_cluster_msg_decode(buf, len, &again) == 0);
  CHECK(memcmp(&m, &again, sizeof m) == 0);
}

static void reply(const uint8_t *p, size_t n) {
  cs_cluster_reply r, again;
  if (cs_cluster_reply_decode(p, n, &r) < 0)
    return;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t len;
  CHECK(cs_cluster_reply_encode(&r, buf, sizeof buf, &len) == 0);
  CHECK(cs_cluster_reply_decode(buf, len, &again) == 0);
  CHECK(memcmp(&r, &again, sizeof r) == 0);
}

static void certificate(const uint8_t *p, size_t n) {
  mbedtls_x509_crt crt;
  mbedtls_x509_crt_init(&crt);
  char node[CS_CLUSTER_NODE_ID_MAX + 1];
  if (mbedtls_x509_crt_parse_der(&crt, p, n) == 0 && cs_cluster_cert_node_id(&crt, node) == 0)
    CHECK(cs_cluster_node_id_valid((const uint8_t *)node, strlen(node)));
  mbedtls_x509_crt_free(&crt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  switch (data[0] & 3) {
  case 0: preamble(data + 1, size - 1); break;
  case 1: message(data + 1, size - 1); break;
  case 2: reply(data + 1, size - 1); break;
  default: certificate(data + 1, size - 1); break;
  }
  return 0;
}
