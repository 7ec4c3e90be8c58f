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

void cs_wire_request_free(Custos__Request *req) {
  if (req == NULL)
    return;
  wipe_bytes(&req->token);
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_UNSEAL: wipe_bytes(&req->unseal->key); break;
  case CUSTOS__REQUEST__OP_REKEY_UPDATE: wipe_bytes(&req->rekey_update->key); break;
  case CUSTOS__REQUEST__OP_REKEY_VERIFY: wipe_bytes(&req->rekey_verify->key); break;
  case CUSTOS__REQUEST__OP_KV_PUT: wipe_pairs(req->kv_put->n_data, req->kv_put->data); break;
  case CUSTOS__REQUEST__OP_TOKEN_LOOKUP: wipe_bytes(&req->token_lookup->token); break;
  case CUSTOS__REQUEST__OP_TOKEN_RENEW: wipe_bytes(&req->token_renew->token); break;
  case CUSTOS__REQUEST__OP_TOKEN_REVOKE: wipe_bytes(&req->token_revoke->token); break;
  case CUSTOS__REQUEST__OP_AUDIT_HASH: wipe_bytes(&req->audit_hash->value); break;
  default: break;
  }
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
  case CUSTOS__RESPONSE__RESULT_TOKEN:
    if (res->token->token != NULL)
      mbedtls_platform_zeroize(res->token->token, strlen(res->token->token));
    break;
  default: break;
  }
  custos__response__free_unpacked(res, NULL);
}

/* protobuf-c accepts a string with an embedded NUL by truncating it; the
 * length check below is done on the decoded C string, so paths are capped. */
static int check_path(const char *p, const char *what) {
  if (p == NULL)
    return cs_error_set(CS_EPROTO, "%s is missing", what);
  size_t n = strlen(p);
  if (n > 1024)
    return cs_error_set(CS_EPROTO, "%s is longer than 1024 bytes", what);
  return 0;
}

static int validate_request(const Custos__Request *r) {
  switch (r->op_case) {
  case CUSTOS__REQUEST__OP__NOT_SET:
    return cs_error_set(CS_EPROTO, "request carries no operation");
  case CUSTOS__REQUEST__OP_KV_PUT:
    for (size_t i = 0; i < r->kv_put->n_data; i++)
      if (check_path(r->kv_put->data[i]->key, "field name") < 0)
        return CS_EPROTO;
    return check_path(r->kv_put->path, "path");
  case CUSTOS__REQUEST__OP_KV_GET: return check_path(r->kv_get->path, "path");
  case CUSTOS__REQUEST__OP_KV_LIST: return check_path(r->kv_list->prefix, "prefix");
  case CUSTOS__REQUEST__OP_KV_DELETE: return check_path(r->kv_delete->path, "path");
  case CUSTOS__REQUEST__OP_POLICY_WRITE: return check_path(r->policy_write->name, "policy name");
  case CUSTOS__REQUEST__OP_POLICY_READ: return check_path(r->policy_read->name, "policy name");
  case CUSTOS__REQUEST__OP_POLICY_DELETE: return check_path(r->policy_delete->name, "policy name");
  default:
    return 0;
  }
}

int cs_wire_decode_request(const uint8_t *body, size_t len, Custos__Request **out) {
  Custos__Request *r = custos__request__unpack(NULL, len, body);
  if (r == NULL)
    return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
  int rc = validate_request(r);
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
