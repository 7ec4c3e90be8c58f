/*
 * kv_ops: the handlers of the key-value store (kv-put, kv-get, kv-list,
 * kv-delete), their paths (authorized on the secret's path; a list on the
 * folder it lists) and the secrets a put carries.  Writes are staged under
 * the barrier and handed to submit_write().
 */
#include "api_int.h"
#include "bytes.h"

#include "cs_error.h"

#include <stdio.h>
#include <stdlib.h>

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

void cs_op_kv_get(cs_rq *r) {
  Custos__KvData *data = NULL;
  int rc = cs_kv_get(r->d->store, cs_seal_keyring(r->d->seal), r->req->kv_get->path, &data);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  /* Every field is on record, however many the secret has. */
  cs_audit_sensitive *sens = calloc(data->n_data ? data->n_data : 1, sizeof *sens);
  if (sens == NULL) {
    cs_kv_data_free(data);
    respond(r, CS_ENOMEM, NULL, NULL, 0);
    return;
  }
  size_t ns = 0;
  for (size_t i = 0; i < data->n_data; i++, ns++)
    sens[ns] = (cs_audit_sensitive){data->data[i]->key, data->data[i]->value.data,
                                    data->data[i]->value.len};
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KvGetRes gr = CUSTOS__KV_GET_RES__INIT;
  gr.n_data = data->n_data;
  gr.data = data->data;
  res.result_case = CUSTOS__RESPONSE__RESULT_KV_GET;
  res.kv_get = &gr;
  respond(r, 0, &res, sens, ns);
  free(sens);
  cs_kv_data_free(data);
}

void cs_op_kv_list(cs_rq *r) {
  char **keys = NULL;
  size_t n = 0;
  int rc = cs_kv_list(r->d->store, r->req->kv_list->prefix, &keys, &n);
  respond_keys(r, rc, keys, n);
}
