/* wire: frame codec.  See wire.h. */
#include "wire.h"
#include "cs_error.h"

#include <stdlib.h>
#include <string.h>
#include <mbedtls/platform_util.h>

int cs_wire_frame_check(const uint8_t *buf, size_t len, size_t max, size_t *body_len) {
  if (len < CS_WIRE_HDR)
    return 0;
  uint32_t n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
               ((uint32_t)buf[2] << 8) | (uint32_t)buf[3];
  if (max > CS_WIRE_MAX_ABS)
    max = CS_WIRE_MAX_ABS;
  if (n > max)
    return cs_error_set(CS_ETOOBIG, "frame of %u bytes exceeds the limit of %zu bytes", n, max);
  if (len - CS_WIRE_HDR < n)
    return 0;
  *body_len = n;
  return 1;
}

void cs_wire_put_header(uint8_t hdr[CS_WIRE_HDR], uint32_t len) {
  hdr[0] = (uint8_t)(len >> 24);
  hdr[1] = (uint8_t)(len >> 16);
  hdr[2] = (uint8_t)(len >> 8);
  hdr[3] = (uint8_t)len;
}

static void wipe_bytes(ProtobufCBinaryData *b) {
  if (b->data != NULL && b->len > 0)
    mbedtls_platform_zeroize(b->data, b->len);
}

static void wipe_pairs(size_t n, Custos__KvPair **pairs) {
  for (size_t i = 0; i < n; i++)
    if (pairs[i] != NULL)
      wipe_bytes(&pairs[i]->value);
}

#define MAX_WIPE_DEPTH 16 /* our schema nests 3 deep; a bound all the same */

/*
 * Wipes every `bytes` field of a decoded message, at any depth, repeated
 * or not, set oneof member or plain field, driven by the descriptors: the
 * keys, shares, tokens and values a request carries are all `bytes`, so a
 * field or an operation added to custos.proto is wiped without a line here
 * (no list of operations to keep in step with the server's op table).
 */
static void wipe_message(ProtobufCMessage *m, unsigned depth) {
  if (m == NULL || depth > MAX_WIPE_DEPTH)
    return;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    char *member = (char *)m + f->offset;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
      continue; /* another member of the oneof is set: this one's memory is not ours */
    size_t n = 1;
    void *elems = member;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      n = *(const size_t *)((const char *)m + f->quantifier_offset);
      elems = *(void **)member;
      if (elems == NULL)
        continue;
    }
    for (size_t k = 0; k < n; k++) {
      if (f->type == PROTOBUF_C_TYPE_BYTES)
        wipe_bytes(&((ProtobufCBinaryData *)elems)[k]);
      else
        wipe_message(((ProtobufCMessage **)elems)[k], depth + 1);
    }
  }
}

void cs_wire_request_free(Custos__Request *req) {
  if (req == NULL)
    return;
  wipe_message(&req->base, 0);
  custos__request__free_unpacked(req, NULL);
}

void cs_wire_response_free(Custos__Response *res) {
  if (res == NULL)
    return;
  switch (res->result_case) {
  case CUSTOS__RESPONSE__RESULT_INIT:
    for (size_t i = 0; i < res->init->n_keys; i++)
      wipe_bytes(&res->init->keys[i]);
    if (res->init->root_token != NULL)
      mbedtls_platform_zeroize(res->init->root_token, strlen(res->init->root_token));
    break;
  case CUSTOS__RESPONSE__RESULT_REKEY:
    for (size_t i = 0; i < res->rekey->n_keys; i++)
      wipe_bytes(&res->rekey->keys[i]);
    break;
  case CUSTOS__RESPONSE__RESULT_KV_GET:
    wipe_pairs(res->kv_get->n_data, res->kv_get->data);
    break;
  case CUSTOS__RESPONSE__RESULT_KV2_GET:
    wipe_pairs(res->kv2_get->n_data, res->kv2_get->data);
    break;
  case CUSTOS__RESPONSE__RESULT_TOKEN:
    if (res->token->token != NULL)
      mbedtls_platform_zeroize(res->token->token, strlen(res->token->token));
    break;
  default: break;
  }
  custos__response__free_unpacked(res, NULL);
}

/* ---------------------------------------------------------------- strings */

size_t cs_wire_utf8_seq(const uint8_t *p, size_t avail) {
  uint8_t c = p[0];
  if (c < 0x80)
    return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    else if (c == 0xed)
      hi = 0x9f; /* U+D800..U+DFFF */
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    else if (c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (avail < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t k = 2; k < n; k++)
    if ((p[k] & 0xc0) != 0x80)
      return 0;
  return n;
}

int cs_wire_string_check(const uint8_t *s, size_t len) {
  for (size_t i = 0; i < len;) {
    if (s[i] == 0)
      return 1;
    size_t n = cs_wire_utf8_seq(s + i, len - i);
    if (n == 0)
      return 2;
    i += n;
  }
  return 0;
}

/* The varint at buf[*pos], advancing *pos; -1 when it runs past len. */
static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
    uint8_t b = buf[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80)
      return 0;
  }
  return -1;
}

#define MAX_NESTING 16 /* our schema nests 3 deep; a bound all the same */

/*
 * protobuf-c hands `string` fields over as C strings: one with an embedded
 * NUL arrives cut at the NUL ("nul/a\0b" becomes "nul/a", so a put would
 * overwrite another secret), and invalid UTF-8 is kept as is.  Neither is
 * visible in the decoded message, so this walks the ENCODED bytes of a
 * message that protobuf-c already accepted, field by field, with the
 * message's descriptor: every occurrence of every string field, at any
 * depth, repeated or not, known to the schema, is checked.  Being driven by
 * the descriptors, a field added to custos.proto is covered without a line
 * here.  Unknown fields (which protobuf-c keeps but nothing reads) are
 * skipped.  Returns 0 or CS_EPROTO naming the field.
 */
static int check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         unsigned depth) {
  if (depth > MAX_NESTING)
    return cs_error_set(CS_EPROTO, "request nests messages too deeply");
  size_t pos = 0;
  while (pos < len) {
    uint64_t key, n;
    if (read_varint(buf, len, &pos, &key) < 0)
      return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
    switch (key & 7) {
    case 0: /* varint */
      if (read_varint(buf, len, &pos, &n) < 0)
        return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
      continue;
    case 1: n = 8; break; /* 64-bit */
    case 5: n = 4; break; /* 32-bit */
    case 2:               /* length-delimited */
      if (read_varint(buf, len, &pos, &n) < 0)
        return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
      break;
    default:
      return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
    }
    if (n > len - pos)
      return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
    const uint8_t *p = buf + pos;
    pos += (size_t)n;
    if ((key & 7) != 2 || key >> 3 > UINT32_MAX)
      continue;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
    if (f == NULL)
      continue;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      int bad = cs_wire_string_check(p, (size_t)n);
      if (bad)
        return cs_error_set(CS_EPROTO, "string field %s.%s %s", d->short_name, f->name,
                            bad == 1 ? "contains a NUL byte" : "is not valid UTF-8");
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      int rc = check_strings(f->descriptor, p, (size_t)n, depth + 1);
      if (rc < 0)
        return rc;
    }
  }
  return 0;
}

/* Structure only: what the request means (paths, names, counts) is the
 * server's to judge, with an error that carries the request's id. */
static int validate_request(const Custos__Request *r, const uint8_t *body, size_t len) {
  if (r->op_case == CUSTOS__REQUEST__OP__NOT_SET)
    return cs_error_set(CS_EPROTO, "request carries no operation");
  return check_strings(&custos__request__descriptor, body, len, 0);
}

int cs_wire_decode_request(const uint8_t *body, size_t len, Custos__Request **out) {
  Custos__Request *r = custos__request__unpack(NULL, len, body);
  if (r == NULL)
    return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
  int rc = validate_request(r, body, len);
  if (rc < 0) {
    cs_wire_request_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int cs_wire_decode_response(const uint8_t *body, size_t len, Custos__Response **out) {
  Custos__Response *r = custos__response__unpack(NULL, len, body);
  if (r == NULL)
    return cs_error_set(CS_EPROTO, "response is not a valid protobuf Response");
  *out = r;
  return 0;
}

uint8_t *cs_wire_encode(const ProtobufCMessage *msg, size_t *frame_len) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(CS_WIRE_HDR + n);
  if (buf == NULL)
    return NULL;
  cs_wire_put_header(buf, (uint32_t)n);
  protobuf_c_message_pack(msg, buf + CS_WIRE_HDR);
  *frame_len = CS_WIRE_HDR + n;
  return buf;
}
