/*
 * Unit tests of the cluster side channel's wire format (server/ha/cluster_msg.c):
 * strict field rules (node ids, HOST:PORT), the preamble's bounds, round
 * trips of every message and reply, and refusal of what the old text format
 * or a lying peer would send: text, an embedded NUL in a node id, unknown
 * fields, missing fields, non-printable refusal reasons.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cluster_msg.h"
#include "custos.pb-c.h"
#include "cs_error.h"

#define S(x) (const uint8_t *)(x), strlen(x)

static void test_fields(void **state) {
  (void)state;
  assert_true(cs_cluster_node_id_valid(S("n1")));
  assert_true(cs_cluster_node_id_valid(S("node-1.eu_west")));
  assert_false(cs_cluster_node_id_valid(S("")));
  assert_false(cs_cluster_node_id_valid(S("n 1")));
  assert_false(cs_cluster_node_id_valid(S("n1/x")));
  assert_false(cs_cluster_node_id_valid((const uint8_t *)"n1\0x", 4));
  char long_id[65];
  memset(long_id, 'a', 64);
  long_id[64] = '\0';
  assert_false(cs_cluster_node_id_valid(S(long_id)));
  long_id[63] = '\0';
  assert_true(cs_cluster_node_id_valid(S(long_id)));

  assert_true(cs_cluster_address_valid(S("127.0.0.1:7201")));
  assert_true(cs_cluster_address_valid(S("[::1]:7201")));
  assert_true(cs_cluster_address_valid(S("node-1.example:1")));
  assert_false(cs_cluster_address_valid(S("127.0.0.1")));
  assert_false(cs_cluster_address_valid(S("127.0.0.1:0")));
  assert_false(cs_cluster_address_valid(S("127.0.0.1:65536")));
  assert_false(cs_cluster_address_valid(S(":7201")));
  assert_false(cs_cluster_address_valid(S("a:b:7201")));
  assert_false(cs_cluster_address_valid(S("[]:7201")));
  assert_false(cs_cluster_address_valid(S("host :7201")));
  assert_false(cs_cluster_address_valid((const uint8_t *)"h:1\0", 4));
  assert_int_not_equal(cs_cluster_raft_id("n1"), cs_cluster_raft_id("n2"));
  assert_int_not_equal(cs_cluster_raft_id(""), 0);
}

static void test_preamble(void **state) {
  (void)state;
  uint8_t p[CS_CLUSTER_PREAMBLE_LEN];
  cs_cluster_preamble pre;
  cs_cluster_preamble_put(p, CS_CLUSTER_KIND_RAFT, 0x0102030405060708ULL, 14);
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), 0);
  assert_int_equal(pre.kind, CS_CLUSTER_KIND_RAFT);
  assert_true(pre.raft_id == 0x0102030405060708ULL);
  assert_int_equal(pre.len, 14);
  cs_cluster_preamble_put(p, CS_CLUSTER_KIND_MSG, 0, CS_CLUSTER_MAX_PAYLOAD);
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), 0);
  cs_cluster_preamble_put(p, CS_CLUSTER_KIND_MSG, 0, CS_CLUSTER_MAX_PAYLOAD + 1);
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), CS_EPROTO);
  cs_cluster_preamble_put(p, CS_CLUSTER_KIND_MSG, 0, 0);
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), CS_EPROTO);
  cs_cluster_preamble_put(p, CS_CLUSTER_KIND_MSG, 7, 10);      /* a message carries no raft id */
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), CS_EPROTO);
  cs_cluster_preamble_put(p, CS_CLUSTER_KIND_RAFT, 0, 10);     /* a raft stream needs one */
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), CS_EPROTO);
  cs_cluster_preamble_put(p, 3, 0, 10);
  assert_int_equal(cs_cluster_preamble_parse(p, &pre), CS_EPROTO);
}

static void test_messages(void **state) {
  (void)state;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_STATUS, .sealed = 1, .term = 7, .applied = 99};
  strcpy(m.node_id, "n2");
  strcpy(m.api_address, "127.0.0.1:7210");
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  cs_cluster_msg d;
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), 0);
  assert_memory_equal(&m, &d, sizeof m);

  cs_cluster_msg j = {.type = CS_CLUSTER_MSG_JOIN};
  strcpy(j.node_id, "n4");
  strcpy(j.address, "127.0.0.1:7231");
  strcpy(j.api_address, "127.0.0.1:7230");
  assert_int_equal(cs_cluster_msg_encode(&j, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), 0);
  assert_memory_equal(&j, &d, sizeof j);

  /* The old text side channel is not a message any more. */
  assert_int_equal(cs_cluster_msg_decode(S("S n1 127.0.0.1:1 127.0.0.1:2 0 1 5"), &d), CS_EPROTO);
  assert_int_equal(cs_cluster_msg_decode(S("J n9 127.0.0.1:1 127.0.0.1:2"), &d), CS_EPROTO);
  /* Empty (protobuf decodes it to a message of no kind), oversized. */
  assert_int_equal(cs_cluster_msg_decode(buf, 0, &d), CS_EPROTO);
  assert_int_equal(cs_cluster_msg_decode(buf, CS_CLUSTER_MAX_PAYLOAD + 1, &d), CS_EPROTO);
  /* A NUL inside node_id: "n1\0x" must not become "n1". */
  static const uint8_t nul[] = {0x0a, 0x16, 0x0a, 0x04, 'n', '1', 0, 'x', 0x12, 0x0e, '1', '2', '7',
                                '.', '0', '.', '0', '.', '1', ':', '7', '2', '0', '0'};
  assert_int_equal(cs_cluster_msg_decode(nul, sizeof nul, &d), CS_EPROTO);
  /* Status without api_address. */
  static const uint8_t noapi[] = {0x0a, 0x04, 0x0a, 0x02, 'n', '1'};
  assert_int_equal(cs_cluster_msg_decode(noapi, sizeof noapi, &d), CS_EPROTO);
  /* An unknown field (15, varint) next to a valid status. */
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  buf[n] = 0x78;
  buf[n + 1] = 0x01;
  assert_int_equal(cs_cluster_msg_decode(buf, n + 2, &d), CS_EPROTO);
  /* Encoding refuses what does not fit. */
  assert_int_equal(cs_cluster_msg_encode(&m, buf, 4, &n), CS_EINVAL);
}

/* Staged activation: the staged term and its proof travel in a status
 * report; a proof of any other length, or one without a term, is refused. */
static void test_staged_fields(void **state) {
  (void)state;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_STATUS, .term = 2, .applied = 9, .staged_term = 3};
  strcpy(m.node_id, "n2");
  strcpy(m.api_address, "127.0.0.1:7210");
  for (int i = 0; i < CS_CLUSTER_PROOF_LEN; i++)
    m.staged_proof[i] = (uint8_t)(i * 7 + 1);
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  cs_cluster_msg d;
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), 0);
  assert_memory_equal(&m, &d, sizeof m);

  uint8_t proof[CS_CLUSTER_PROOF_LEN + 1] = {0};
  Custos__ClusterMessage cm = CUSTOS__CLUSTER_MESSAGE__INIT;
  Custos__ClusterStatus st = CUSTOS__CLUSTER_STATUS__INIT;
  st.node_id = (ProtobufCBinaryData){.data = (uint8_t *)"n2", .len = 2};
  st.api_address = (ProtobufCBinaryData){.data = (uint8_t *)"127.0.0.1:7210", .len = 14};
  cm.kind_case = CUSTOS__CLUSTER_MESSAGE__KIND_STATUS;
  cm.status = &st;
  size_t lens[] = {0, 1, CS_CLUSTER_PROOF_LEN - 1, CS_CLUSTER_PROOF_LEN + 1};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    st.staged_term = 3;
    st.staged_proof = (ProtobufCBinaryData){.data = proof, .len = lens[i]};
    n = custos__cluster_message__pack(&cm, buf);
    assert_int_equal(cs_cluster_msg_decode(buf, n, &d), CS_EPROTO);
  }
  /* A proof without a staged term. */
  st.staged_term = 0;
  st.staged_proof = (ProtobufCBinaryData){.data = proof, .len = CS_CLUSTER_PROOF_LEN};
  n = custos__cluster_message__pack(&cm, buf);
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), CS_EPROTO);
}

static void test_replies(void **state) {
  (void)state;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_STATUS}, d;
  strcpy(r.node_id, "n1");
  assert_int_equal(cs_cluster_reply_encode(&r, buf, sizeof buf, &n), 0); /* empty api allowed */
  assert_int_equal(cs_cluster_reply_decode(buf, n, &d), 0);
  assert_memory_equal(&r, &d, sizeof r);
  cs_cluster_reply j = {.type = CS_CLUSTER_REPLY_JOIN, .member = 1};
  strcpy(j.leader_address, "127.0.0.1:7201");
  assert_int_equal(cs_cluster_reply_encode(&j, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &d), 0);
  assert_memory_equal(&j, &d, sizeof j);
  cs_cluster_reply f = {.type = CS_CLUSTER_REPLY_REFUSED};
  strcpy(f.reason, "not a member of the cluster");
  assert_int_equal(cs_cluster_reply_encode(&f, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &d), 0);
  assert_string_equal(d.reason, "not a member of the cluster");
  assert_int_equal(d.removed, 0);
  /* The leader's "you were removed" survives the round trip. */
  f.removed = 1;
  assert_int_equal(cs_cluster_reply_encode(&f, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &d), 0);
  assert_int_equal(d.removed, 1);
  f.removed = 0;
  /* A reason with a newline (log injection) is refused. */
  strcpy(f.reason, "ok\nfake log line");
  assert_int_equal(cs_cluster_reply_encode(&f, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &d), CS_EPROTO);
  /* A status reply whose node id is not one. */
  strcpy(r.node_id, "n 1");
  assert_int_equal(cs_cluster_reply_encode(&r, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &d), CS_EPROTO);
  assert_int_equal(cs_cluster_reply_decode(S("M n1 127.0.0.1:1 127.0.0.1:2\n"), &d), CS_EPROTO);
}

/* A relayed unseal share and its ack: round trip, and every bound. */
static void test_unseal_relay(void **state) {
  (void)state;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_UNSEAL, .key_len = 33}, d;
  strcpy(m.node_id, "n1");
  for (int i = 0; i < 33; i++)
    m.key[i] = (uint8_t)(i * 7 + 1);
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), 0);
  assert_memory_equal(&m, &d, sizeof m);
  /* No share, or one too long. */
  m.key_len = 0;
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), CS_EPROTO);
  m.key_len = CS_CLUSTER_KEY_MAX + 1;
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), CS_EPROTO);
  for (size_t i = 0; i < sizeof d.key; i++)
    assert_int_equal(d.key[i], 0); /* nothing left of a refused share */
  /* A relayed share with a bad node id. */
  m.key_len = 33;
  strcpy(m.node_id, "n\n1");
  assert_int_equal(cs_cluster_msg_encode(&m, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_msg_decode(buf, n, &d), CS_EPROTO);

  cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_UNSEAL, .sealed = 1, .progress = 2, .t = 3}, e;
  strcpy(r.node_id, "n3");
  assert_int_equal(cs_cluster_reply_encode(&r, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &e), 0);
  assert_memory_equal(&r, &e, sizeof r);
  strcpy(r.reason, "share is not part of the current key set");
  assert_int_equal(cs_cluster_reply_encode(&r, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &e), 0);
  assert_string_equal(e.reason, r.reason);
  strcpy(r.reason, "bad\x01");
  assert_int_equal(cs_cluster_reply_encode(&r, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &e), CS_EPROTO);
  r.reason[0] = '\0';
  r.progress = 256;
  assert_int_equal(cs_cluster_reply_encode(&r, buf, sizeof buf, &n), 0);
  assert_int_equal(cs_cluster_reply_decode(buf, n, &e), CS_EPROTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_preamble),
      cmocka_unit_test(test_messages),
      cmocka_unit_test(test_staged_fields),
      cmocka_unit_test(test_replies),
      cmocka_unit_test(test_unseal_relay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
