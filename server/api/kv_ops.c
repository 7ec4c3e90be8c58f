/*
 * kv_ops: the handlers of the key-value store (kv-put, kv-get, kv-list,
 * kv-delete), their paths (authorized on the secret's path; a list on the
 * folder it lists) and the secrets a put carries.  Writes are staged under
 * the barrier and handed to submit_write().
 */
#include "api_int.h"
#include "bytes.h"

#include "cs_error.h"
#include "secmem.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- paths */

/* Writes `path` into out (cut to cap: a longer one fails the check). */
static void put_path(const char *path, char *out, size_t cap) {
  cs_strlcpy(out, path, cap);
}

int cs_path_kv_put(const Custos__Request *req, char *out, size_t cap) {
  put_path(req->kv_put->path, out, cap);
  int rc = cs_kv_check_path(req->kv_put->path, 0);
  return rc < 0 ? rc : cs_kv_check_fields(req->kv_put->data, req->kv_put->n_data);
}

int cs_path_kv_get(const Custos__Request *req, char *out, size_t cap) {
  put_path(req->kv_get->path, out, cap);
  return cs_kv_check_path(req->kv_get->path, 0);
}

int cs_path_kv_delete(const Custos__Request *req, char *out, size_t cap) {
  put_path(req->kv_delete->path, out, cap);
  return cs_kv_check_path(req->kv_delete->path, 0);
}

/* A list is authorized against the folder it lists ("app" -> "app/"). */
int cs_path_kv_list(const Custos__Request *req, char *out, size_t cap) {
  cs_kv_list_folder(req->kv_list->prefix, out, cap);
  return cs_kv_check_path(req->kv_list->prefix, 1);
}

/* Every field of a put is on record, however many the secret has. */
size_t cs_sens_kv_put(const Custos__Request *req, cs_audit_sensitive *s) {
  const Custos__KvPutReq *q = req->kv_put;
  if (s != NULL)
    for (size_t i = 0; i < q->n_data; i++)
      s[i] = (cs_audit_sensitive){q->data[i]->key, q->data[i]->value.data, q->data[i]->value.len};
  return q->n_data;
}

/* ---------------------------------------------------------------- handlers */

void cs_op_kv_put(cs_rq *r) {
  const Custos__KvPutReq *q = r->req->kv_put;
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_kv_stage_put(cs_seal_keyring(r->d->seal), q->path, q->data, q->n_data, &b);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  submit_write(r, &b);
}

void cs_op_kv_delete(cs_rq *r) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_kv_stage_delete(r->d->store, r->req->kv_delete->path, &b);
  if (rc < 0) {
    cs_batch_clear(&b);
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  submit_write(r, &b);
}

/* A secret's fields as the answer: parsed, for HTTP (rendered as JSON). */
static void kv_get_parsed(cs_rq *r) {
  Custos__KvData *data = NULL;
  int rc = cs_kv_get(r->d->store, cs_seal_keyring(r->d->seal), r->req->kv_get->path, &data);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvGetRes gr = CUSTOS__KV_GET_RES__INIT;
  gr.n_data = data->n_data;
  gr.data = data->data;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV_GET;
  res.kv_get = &gr;
  respond_pairs(r, &res, data->data, data->n_data);
  cs_kv_data_free(data);
}

/* The field number of Response.kv_get, from the schema. */
static uint32_t kv_get_field(void) {
  static uint32_t id;
  if (id == 0)
    id = protobuf_c_message_descriptor_get_field_by_name(&custos__response__descriptor, "kv_get")
             ->id;
  return id;
}

/*
 * A protobuf client gets the secret's bytes as stored.  A KvData and a
 * KvGetRes are the same message on the wire (one field, 1, repeated KvPair;
 * test_wire checks the descriptors), so the decrypted value goes out as the
 * Response's kv_get field through protobuf-c's unknown fields: no unpack
 * of the pairs and no pack again.  protobuf-c writes an unknown field's
 * data right after its tag, so a length-delimited one carries its length
 * in front: the barrier leaves room for it before the plaintext.  The
 * pairs are parsed only for the audit record, which hashes every field,
 * and for HTTP; otherwise the bytes are checked without a decode, so a
 * value that does not parse is refused here, as before, rather than sent.
 */
void cs_op_kv_get(cs_rq *r) {
  if (cs_reply_is_http(r->reply)) {
    kv_get_parsed(r);
    return;
  }
  const char *path = r->req->kv_get->path;
  const size_t head = CS_WIRE_VARINT_MAX;
  uint8_t *buf;
  size_t len;
  int rc = cs_kv_get_encoded(r->d->store, cs_seal_keyring(r->d->seal), path, head, &buf, &len);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  const uint8_t *pt = buf + head;
  Custos__KvData *data = NULL;
  rc = r->d->audit != NULL ? cs_kv_data_decode(path, pt, len, &data)
                           : cs_kv_data_check(path, pt, len);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
  } else {
    uint8_t varint[CS_WIRE_VARINT_MAX];
    size_t h = cs_wire_put_varint(varint, len);
    uint8_t *field = buf + head - h;
    memcpy(field, varint, h);
    Custos__Response res = CUSTOS__RESPONSE__INIT;
    ProtobufCMessageUnknownField kv = {kv_get_field(), PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                       h + len, field};
    res.base.n_unknown_fields = 1;
    res.base.unknown_fields = &kv;
    respond_pairs(r, &res, data != NULL ? data->data : NULL, data != NULL ? data->n_data : 0);
  }
  cs_kv_data_free(data);
  cs_wipe(buf, head + len);
  free(buf);
}

void cs_op_kv_list(cs_rq *r) {
  char **keys = NULL;
  size_t n = 0;
  int rc = cs_kv_list(r->d->store, r->req->kv_list->prefix, &keys, &n);
  respond_keys(r, rc, keys, n);
}
