/*
 * Unit tests for wire: every `string` field reachable from a Request, found
 * by walking the protobuf-c descriptors (so a field added to custos.proto is
 * tested without a line here), is refused when it holds a NUL byte or
 * invalid UTF-8 and accepted when it holds valid UTF-8; bytes fields and
 * unknown fields may hold anything; error details cut by their buffer stay
 * valid UTF-8.  A decoded request lives in an arena (wire.c): one that
 * needs many blocks decodes whole, and a truncated one leaves nothing
 * behind (ASan's leak check).  Stored records unpack into an arena too,
 * and a KvData's bytes are a KvGetRes (what kv-get answers with).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cs_error.h"
#include "custos.pb-c.h"
#include "wire.h"

#define MAX_CHAIN 8
#define BUF_MAX 256

#define put_varint cs_wire_put_varint

/* One length-delimited field `num` holding `len` bytes at `in`, into out. */
static size_t put_field(uint8_t *out, uint32_t num, const uint8_t *in, size_t len) {
  size_t n = put_varint(out, (uint64_t)num << 3 | 2);
  n += put_varint(out + n, len);
  memcpy(out + n, in, len);
  return n + len;
}

/* Encodes the chain of fields chain[0..depth) (messages, then the string
 * last) around `val`.  A chain that does not start with a oneof member of
 * Request gets a status op, so the request carries an operation. */
static size_t encode_chain(const ProtobufCFieldDescriptor *const *chain, size_t depth,
                           const uint8_t *val, size_t vlen, uint8_t *out) {
  uint8_t a[BUF_MAX], b[BUF_MAX];
  size_t n = vlen;
  memcpy(a, val, vlen);
  for (size_t i = depth; i-- > 0;) {
    n = put_field(b, chain[i]->id, a, n);
    memcpy(a, b, n);
  }
  if (!(chain[0]->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    n += put_field(a + n, CUSTOS__REQUEST__OP_STATUS, NULL, 0);
  memcpy(out, a, n);
  return n;
}

typedef struct walk {
  const ProtobufCFieldDescriptor *chain[MAX_CHAIN];
  size_t strings; /* string fields found */
} walk;

static void expect_refused(walk *w, size_t depth, const char *val, size_t vlen, const char *why) {
  uint8_t buf[BUF_MAX];
  size_t n = encode_chain(w->chain, depth, (const uint8_t *)val, vlen, buf);
  Custos__Request *r = NULL;
  int rc = cs_wire_decode_request(buf, n, &r);
  const char *f = w->chain[depth - 1]->name;
  if (rc != CS_EPROTO)
    fail_msg("string field %s holding %s: rc %d, expected CS_EPROTO", f, why, rc);
  if (strstr(cs_error_message(rc), f) == NULL)
    fail_msg("detail \"%s\" does not name field %s", cs_error_message(rc), f);
  assert_null(r);
}

static void expect_accepted(walk *w, size_t depth, const char *val, size_t vlen) {
  uint8_t buf[BUF_MAX];
  size_t n = encode_chain(w->chain, depth, (const uint8_t *)val, vlen, buf);
  Custos__Request *r = NULL;
  int rc = cs_wire_decode_request(buf, n, &r);
  if (rc != 0)
    fail_msg("string field %s holding valid UTF-8 refused: %s", w->chain[depth - 1]->name,
             cs_error_message(rc));
  cs_wire_request_free(r);
}

static void visit(walk *w, const ProtobufCMessageDescriptor *d, size_t depth) {
  if (depth >= MAX_CHAIN)
    return;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    w->chain[depth] = f;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      visit(w, f->descriptor, depth + 1);
    } else if (f->type == PROTOBUF_C_TYPE_STRING) {
      w->strings++;
      expect_refused(w, depth + 1, "a\0b", 3, "a NUL");
      expect_refused(w, depth + 1, "\0", 1, "only a NUL");
      expect_refused(w, depth + 1, "a\xff", 2, "0xff");
      expect_refused(w, depth + 1, "\xc0\xaf", 2, "an overlong '/'");
      expect_refused(w, depth + 1, "\xed\xa0\x80", 3, "a surrogate");
      expect_refused(w, depth + 1, "\xf4\x90\x80\x80", 4, "a code point above U+10FFFF");
      expect_refused(w, depth + 1, "ab\xe2\x82", 4, "a cut sequence");
      expect_accepted(w, depth + 1, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
      expect_accepted(w, depth + 1, "", 0);
    }
  }
}

static void test_every_string_field(void **state) {
  (void)state;
  walk w = {0};
  visit(&w, &custos__request__descriptor, 0);
  /* kv paths, field names, prefixes, nonces, policy names and documents,
   * token policies, node ids: far more than a handful. */
  if (w.strings < 12)
    fail_msg("only %zu string fields found under Request", w.strings);
}

/* bytes fields (tokens, shares, values) and unknown fields may hold anything. */
static void test_bytes_and_unknown_fields_unchecked(void **state) {
  (void)state;
  /* kv_put{path "a", data{key "k", value "\0\xff"}}, token "\0\xff", and an
   * unknown field 900 with a NUL and 0xff. */
  static const uint8_t req[] = {
      0x12, 0x02, 0x00, 0xff,                                    /* token */
      0xa2, 0x01, 0x0c, 0x0a, 0x01, 'a', 0x12, 0x07,             /* kv_put, path, data */
      0x0a, 0x01, 'k', 0x12, 0x02, 0x00, 0xff,                   /* key, value */
      0xa2, 0x38, 0x02, 0x00, 0xff,                              /* field 900 */
  };
  Custos__Request *r = NULL;
  int rc = cs_wire_decode_request(req, sizeof req, &r);
  if (rc != 0)
    fail_msg("refused: %s", cs_error_message(rc));
  assert_int_equal(r->op_case, CUSTOS__REQUEST__OP_KV_PUT);
  assert_int_equal(r->kv_put->data[0]->value.len, 2);
  cs_wire_request_free(r);
}

/* One NUL in the second of several repeated strings is enough. */
static void test_repeated_string(void **state) {
  (void)state;
  static const uint8_t req[] = {
      0xc2, 0x02, 0x08, 0x0a, 0x01, 'a', 0x0a, 0x03, 'b', 0x00, 'c', /* token_create policies */
  };
  Custos__Request *r = NULL;
  assert_int_equal(cs_wire_decode_request(req, sizeof req, &r), CS_EPROTO);
  assert_non_null(strstr(cs_error_message(CS_EPROTO), "NUL"));
}

static void test_string_check(void **state) {
  (void)state;
  assert_int_equal(cs_wire_string_check((const uint8_t *)"", 0), 0);
  assert_int_equal(cs_wire_string_check((const uint8_t *)"ab\0", 3), 1);
  assert_int_equal(cs_wire_string_check((const uint8_t *)"\xe2\x82", 2), 2);
  assert_int_equal(cs_wire_string_check((const uint8_t *)"\xf0\x9f\x98\x80", 4), 0);
}

/* A detail cut by its buffer in the middle of a multi-byte character must
 * not end in half of it: Error.message is a proto3 string. */
static void test_error_detail_stays_utf8(void **state) {
  (void)state;
  char name[600];
  for (size_t off = 0; off < 4; off++) {
    size_t n = 0;
    for (; n < off; n++)
      name[n] = 'x';
    while (n + 3 < sizeof name - 1) {
      memcpy(name + n, "\xe2\x82\xac", 3); /* the euro sign */
      n += 3;
    }
    name[n] = '\0';
    cs_error_set(CS_EINVAL, "field %s is given twice", name);
    const char *msg = cs_error_message(CS_EINVAL);
    if (cs_wire_string_check((const uint8_t *)msg, strlen(msg)) != 0)
      fail_msg("offset %zu: detail ends in a partial UTF-8 sequence", off);
    assert_true(strlen(msg) > 200);
  }
}

/* 3,000 empty pairs take about 30 times their 2 encoded bytes each as
 * structs: the arena grows block after block; a value after them is whole. */
static void test_arena_many_blocks(void **state) {
  (void)state;
  enum { N = 3000 };
  Custos__KvPair *pairs = calloc(N, sizeof *pairs), **ptrs = calloc(N, sizeof *ptrs);
  assert_non_null(pairs);
  assert_non_null(ptrs);
  uint8_t value[300];
  for (size_t i = 0; i < sizeof value; i++)
    value[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < N; i++) {
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = "";
    ptrs[i] = &pairs[i];
  }
  pairs[N - 1].key = "last";
  pairs[N - 1].value.data = value;
  pairs[N - 1].value.len = sizeof value;
  Custos__KvPutReq put = CUSTOS__KV_PUT_REQ__INIT;
  put.path = "many";
  put.n_data = N;
  put.data = ptrs;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  req.op_case = CUSTOS__REQUEST__OP_KV_PUT;
  req.kv_put = &put;
  req.id = 77;
  size_t len = custos__request__get_packed_size(&req);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  custos__request__pack(&req, buf);
  Custos__Request *r = NULL;
  int rc = cs_wire_decode_request(buf, len, &r);
  if (rc != 0)
    fail_msg("refused: %s", cs_error_message(rc));
  assert_int_equal(r->id, 77);
  assert_string_equal(r->kv_put->path, "many");
  assert_int_equal(r->kv_put->n_data, N);
  for (size_t i = 0; i + 1 < N; i++)
    assert_int_equal(r->kv_put->data[i]->value.len, 0);
  assert_string_equal(r->kv_put->data[N - 1]->key, "last");
  assert_memory_equal(r->kv_put->data[N - 1]->value.data, value, sizeof value);
  cs_wire_request_free(r);
  /* Cut anywhere, it is refused and frees what it took. */
  for (size_t cut = 1; cut < len; cut += len / 97 + 1) {
    r = NULL;
    if (cs_wire_decode_request(buf, len - cut, &r) == 0)
      cs_wire_request_free(r); /* a cut between pairs is a valid, shorter put */
  }
  free(buf);
  free(ptrs);
  free(pairs);
}

/* A frame of `reps` copies of `piece` after `head`, into a fresh buffer. */
static uint8_t *repeat_frame(const uint8_t *head, size_t hlen, const uint8_t *piece, size_t plen,
                             size_t reps, size_t *len) {
  *len = hlen + plen * reps;
  uint8_t *buf = malloc(*len);
  assert_non_null(buf);
  if (hlen > 0)
    memcpy(buf, head, hlen);
  for (size_t i = 0; i < reps; i++)
    memcpy(buf + hlen + i * plen, piece, plen);
  return buf;
}

#define BUDGET(n) (64 * (n) + 65536)

/* kv_put{path "a", data: `n` copies of the encoded pair} (under 2 MiB).
 * kv_put is field 20: tag 0xa2 0x01, then its body's length (3 bytes). */
static uint8_t *kv_put_frame(const uint8_t *pair, size_t plen, size_t n, size_t *len) {
  size_t body = 3 + n * plen;
  assert_true(body < (1u << 21));
  uint8_t head[8] = {0xa2, 0x01, (uint8_t)(0x80 | (body & 0x7f)),
                     (uint8_t)(0x80 | ((body >> 7) & 0x7f)), (uint8_t)(body >> 14), 0x0a, 0x01, 'a'};
  return repeat_frame(head, sizeof head, pair, plen, n, len);
}

/* Shapes a review built to make the arena hold far more than protobuf-c's
 * own allocator: each stays within the budget, and what protobuf-c frees
 * while it unpacks (a string given again) is taken back. */
static void test_arena_amplification(void **state) {
  (void)state;
  size_t len;
  Custos__Request *r;
  /* status {} given 32,768 times: each replaces the one before. */
  static const uint8_t status[] = {0x52, 0x00};
  uint8_t *buf = repeat_frame(NULL, 0, status, sizeof status, 32768, &len);
  assert_int_equal(cs_wire_decode_request(buf, len, &r), 0);
  assert_int_equal(r->op_case, CUSTOS__REQUEST__OP_STATUS);
  assert_true(cs_wire_request_footprint(r) <= BUDGET(len));
  cs_wire_request_free(r);
  free(buf);
  /* kv_put with pairs of 17 empty keys (protobuf-c takes a slab for each
   * pair's members past 16). */
  uint8_t pair[2 + 34] = {0x12, 34};
  for (size_t i = 0; i < 17; i++) {
    pair[2 + 2 * i] = 0x0a;
    pair[3 + 2 * i] = 0x00;
  }
  size_t npairs = 1800;
  buf = kv_put_frame(pair, sizeof pair, npairs, &len);
  int rc = cs_wire_decode_request(buf, len, &r);
  if (rc != 0)
    fail_msg("pairs of 17 keys refused: %s", cs_error_message(rc));
  assert_int_equal(r->kv_put->n_data, npairs);
  assert_true(cs_wire_request_footprint(r) <= BUDGET(len));
  cs_wire_request_free(r);
  free(buf);
  /* Pairs of 16 one-byte keys (no slab): the 15 replaced keys of each are
   * taken back, so the request holds a few times its size, not 8 times. */
  uint8_t pair16[2 + 48] = {0x12, 48};
  for (size_t i = 0; i < 16; i++) {
    pair16[2 + 3 * i] = 0x0a;
    pair16[3 + 3 * i] = 0x01;
    pair16[4 + 3 * i] = (uint8_t)('a' + i);
  }
  buf = kv_put_frame(pair16, sizeof pair16, npairs, &len);
  rc = cs_wire_decode_request(buf, len, &r);
  if (rc != 0)
    fail_msg("pairs of 16 keys refused: %s", cs_error_message(rc));
  assert_string_equal(r->kv_put->data[npairs - 1]->key, "p"); /* the last one given */
  if (cs_wire_request_footprint(r) > 4 * len + 4096)
    fail_msg("pairs of 16 keys: %zu bytes held for a %zu-byte request",
             cs_wire_request_footprint(r), len);
  cs_wire_request_free(r);
  free(buf);
}

/* cs_wire_put_varint writes what protobuf-c writes (Response.id, field 1). */
static void test_varint_matches_protobuf_c(void **state) {
  (void)state;
  const uint64_t vs[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                         UINT64_MAX};
  for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
    Custos__Response res = CUSTOS__RESPONSE__INIT;
    res.id = vs[i];
    uint8_t want[16], got[CS_WIRE_VARINT_MAX];
    size_t n = custos__response__pack(&res, want);
    size_t m = cs_wire_put_varint(got, vs[i]);
    if (vs[i] == 0) { /* proto3 leaves a zero out */
      assert_int_equal(n, 0);
      assert_int_equal(m, 1);
      assert_int_equal(got[0], 0);
      continue;
    }
    assert_int_equal(m, n - 1);
    assert_memory_equal(got, want + 1, m);
  }
}

/* A stored record unpacks into one arena; garbage gives NULL. */
static void test_unpack_record(void **state) {
  (void)state;
  Custos__KvPair p1 = CUSTOS__KV_PAIR__INIT, p2 = CUSTOS__KV_PAIR__INIT;
  p1.key = "user";
  p1.value = (ProtobufCBinaryData){5, (uint8_t *)"admin"};
  p2.key = "password";
  p2.value = (ProtobufCBinaryData){3, (uint8_t *)"p\0w"};
  Custos__KvPair *pairs[] = {&p1, &p2};
  Custos__KvData d = CUSTOS__KV_DATA__INIT;
  d.n_data = 2;
  d.data = pairs;
  uint8_t buf[BUF_MAX];
  size_t n = custos__kv_data__pack(&d, buf);
  ProtobufCMessage *m;
  assert_int_equal(cs_wire_unpack(&custos__kv_data__descriptor, buf, n, &m), 0);
  assert_int_equal(cs_wire_check(&custos__kv_data__descriptor, buf, n), 0);
  Custos__KvData *got = (Custos__KvData *)m;
  assert_int_equal(got->n_data, 2);
  assert_string_equal(got->data[1]->key, "password");
  assert_int_equal(got->data[1]->value.len, 3);
  assert_memory_equal(got->data[1]->value.data, "p\0w", 3);
  cs_wire_unpacked_free(&got->base);
  /* Truncations: the two agree (a cut between the pairs is a valid KvData
   * of one pair), and a refused unpack leaves nothing behind (ASan). */
  int refused = 0;
  for (size_t cut = 1; cut < n; cut++) {
    int urc = cs_wire_unpack(&custos__kv_data__descriptor, buf, cut, &m);
    int crc = cs_wire_check(&custos__kv_data__descriptor, buf, cut);
    if ((urc == 0) != (crc == 0))
      fail_msg("cut at %zu: unpack %d, check %d", cut, urc, crc);
    assert_true(urc == 0 || (urc == CS_EPROTO && m == NULL));
    refused += urc != 0;
    cs_wire_unpacked_free(m);
  }
  assert_int_equal(refused, (int)n - 2); /* all but the cut after the first pair */
  const uint8_t junk[] = {0xff, 0xff, 0xff};
  assert_int_equal(cs_wire_unpack(&custos__kv_data__descriptor, junk, sizeof junk, &m), CS_EPROTO);
  assert_int_equal(cs_wire_check(&custos__kv_data__descriptor, junk, sizeof junk), CS_EPROTO);
  cs_wire_unpacked_free(NULL);
}

/* What cs_wire_check refuses, protobuf-c's unpack refuses too: a known
 * length-delimited field with another wire type, a key that is not UTF-8
 * or holds a NUL.  Unknown fields pass, as they do in an unpack. */
static void test_check_matches_unpack(void **state) {
  (void)state;
  static const struct {
    uint8_t b[16];
    size_t n;
    int ok;
  } cases[] = {
      {{0x0a, 0x05, 0x0a, 0x01, 'k', 0x12, 0x00}, 7, 1},     /* {key "k", value ""} */
      {{0x08, 0x05}, 2, 0},                                   /* data as a varint */
      {{0x0a, 0x02, 0x08, 0x01}, 4, 0},                       /* key as a varint */
      {{0x0a, 0x02, 0x15, 0x00}, 4, 0},                       /* value as fixed32, cut */
      {{0x0a, 0x03, 0x0a, 0x01, 0x00}, 5, 0},                 /* key with a NUL */
      {{0x0a, 0x03, 0x0a, 0x01, 0xff}, 5, 0},                 /* key not UTF-8 */
      {{0x0a, 0x04, 0x0a, 0x01, 'k', 0x00}, 6, 0},            /* field number 0 */
      {{0x18, 0x07, 0x0a, 0x00}, 4, 1},                       /* unknown varint, empty pair */
      {{0x0a, 0x05, 0x0a, 0x01, 'k', 0x12, 0x05}, 7, 0},      /* value past the end */
      {{0x00, 0x00}, 2, 0},                                   /* field 0 (found by fuzz_storage) */
      {{0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 7, 0},     /* a 6-byte tag for field 1 */
      {{0x80, 0x80, 0x80, 0x80, 0x10, 0x00}, 6, 0},           /* field 2^29 */
      {{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7, 0},     /* a 6-byte length (review) */
      {{0x0a, 0x07, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 9, 0}, /* ... in a pair */
      {{0x1a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7, 0},     /* ... of an unknown field */
      {{0x0a, 0x80, 0x80, 0x80, 0x80, 0x08}, 6, 0},           /* a length of 2^31 */
      {{0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00}, 6, 1},           /* field 2^29 - 1, unknown */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ProtobufCMessage *m;
    int urc = cs_wire_unpack(&custos__kv_data__descriptor, cases[i].b, cases[i].n, &m);
    int crc = cs_wire_check(&custos__kv_data__descriptor, cases[i].b, cases[i].n);
    cs_wire_unpacked_free(m);
    if (cases[i].ok && (urc != 0 || crc != 0))
      fail_msg("case %zu: unpack %d, check %d, both should accept", i, urc, crc);
    if (!cases[i].ok && crc == 0)
      fail_msg("case %zu: check accepted what should be refused (unpack %d)", i, urc);
  }
}

/*
 * kv-get answers with the stored KvData bytes as Response.kv_get
 * (server/api/kv_ops.c): that holds only while KvGetRes and KvData are one
 * message on the wire.  So: both have exactly one field, number 1, repeated
 * KvPair; and a Response carrying the bytes as an unknown length-delimited
 * field kv_get decodes to the pairs.
 */
static void test_kv_get_res_is_kv_data(void **state) {
  (void)state;
  const ProtobufCMessageDescriptor *a = &custos__kv_data__descriptor,
                                   *b = &custos__kv_get_res__descriptor;
  assert_int_equal(a->n_fields, 1);
  assert_int_equal(b->n_fields, 1);
  assert_int_equal(a->fields[0].id, 1);
  assert_int_equal(b->fields[0].id, 1);
  assert_int_equal(a->fields[0].label, PROTOBUF_C_LABEL_REPEATED);
  assert_int_equal(b->fields[0].label, PROTOBUF_C_LABEL_REPEATED);
  assert_int_equal(a->fields[0].type, PROTOBUF_C_TYPE_MESSAGE);
  assert_int_equal(b->fields[0].type, PROTOBUF_C_TYPE_MESSAGE);
  assert_ptr_equal(a->fields[0].descriptor, &custos__kv_pair__descriptor);
  assert_ptr_equal(b->fields[0].descriptor, &custos__kv_pair__descriptor);

  Custos__KvPair p = CUSTOS__KV_PAIR__INIT;
  p.key = "k";
  uint8_t value[300];
  memset(value, 0x5a, sizeof value);
  p.value = (ProtobufCBinaryData){sizeof value, value};
  Custos__KvPair *pairs[] = {&p, &p};
  Custos__KvData d = CUSTOS__KV_DATA__INIT;
  d.n_data = 2;
  d.data = pairs;
  uint8_t stored[1024], field[1024 + CS_WIRE_VARINT_MAX], frame[2048];
  size_t n = custos__kv_data__pack(&d, stored);
  size_t h = cs_wire_put_varint(field, n);
  memcpy(field + h, stored, n);
  const ProtobufCFieldDescriptor *kv =
      protobuf_c_message_descriptor_get_field_by_name(&custos__response__descriptor, "kv_get");
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  ProtobufCMessageUnknownField u = {kv->id, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, h + n, field};
  res.id = 7;
  res.base.n_unknown_fields = 1;
  res.base.unknown_fields = &u;
  size_t len = custos__response__get_packed_size(&res);
  assert_true(len <= sizeof frame);
  assert_int_equal(custos__response__pack(&res, frame), len);
  Custos__Response *got;
  assert_int_equal(cs_wire_decode_response(frame, len, &got), 0);
  assert_int_equal(got->id, 7);
  assert_int_equal(got->result_case, CUSTOS__RESPONSE__RESULT_KV_GET);
  assert_int_equal(got->base.n_unknown_fields, 0);
  assert_int_equal(got->kv_get->n_data, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_string_equal(got->kv_get->data[i]->key, "k");
    assert_int_equal(got->kv_get->data[i]->value.len, sizeof value);
    assert_memory_equal(got->kv_get->data[i]->value.data, value, sizeof value);
  }
  cs_wire_response_free(got);
}

/* docs/protocol.md: tags past protobuf's limits and a string field sent as
 * a varint are refused with the one message, whoever finds them. */
static void test_request_tag_limits(void **state) {
  (void)state;
  static const struct {
    uint8_t b[12];
    size_t n;
  } bad[] = {
      {{0x00, 0x00, 0x52, 0x00}, 4},                         /* field 0, then a status op */
      {{0xd2, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 7},       /* status op, 6-byte tag */
      {{0x80, 0x80, 0x80, 0x80, 0x10, 0x00, 0x52, 0x00}, 8}, /* field 2^29 */
      {{0xaa, 0x01, 0x02, 0x08, 0x01}, 5},                   /* kv_get with its path a varint */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Custos__Request *r = NULL;
    int rc = cs_wire_decode_request(bad[i].b, bad[i].n, &r);
    if (rc != CS_EPROTO)
      fail_msg("case %zu: %d, want CS_EPROTO", i, rc);
    assert_string_equal(cs_error_message(rc), "request is not a valid protobuf Request");
    assert_null(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_varint_matches_protobuf_c),
      cmocka_unit_test(test_unpack_record),
      cmocka_unit_test(test_check_matches_unpack),
      cmocka_unit_test(test_request_tag_limits),
      cmocka_unit_test(test_kv_get_res_is_kv_data),
      cmocka_unit_test(test_arena_amplification),
      cmocka_unit_test(test_arena_many_blocks),
      cmocka_unit_test(test_every_string_field),
      cmocka_unit_test(test_bytes_and_unknown_fields_unchecked),
      cmocka_unit_test(test_repeated_string),
      cmocka_unit_test(test_string_check),
      cmocka_unit_test(test_error_detail_stays_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
