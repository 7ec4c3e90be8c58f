/*
 * fuzz_kv2: libFuzzer target for the JSON-to-request translation of the
 * HTTP API's KV v2 mount (server/http/http_kv2.c): method, the path after
 * "/v1/kv/", the query string and the JSON body as a client sends them,
 * translated by cs_http_kv2_translate exactly as http_route.c calls it,
 * then (when it is to be dispatched) packed and decoded again with
 * cs_wire_decode_request as every HTTP request is, and one result of the
 * matching kind rendered by cs_http_kv2_view.
 *
 * Input: byte 0 picks the method (low 3 bits) and LIST (bit 3); then the
 * path up to the first '\n', the query up to the next '\n', the rest is
 * the body.  Oracles: never a crash, leak or out-of-bounds read; the
 * answer is dispatch (a kv2 op, or nothing else) or 400/404/405 with a
 * message; a dispatched request passes the wire's validation (no NUL or
 * invalid UTF-8 reaches it) or is refused there cleanly; every version,
 * cas and max_versions that reaches it is in range.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_error.h"
#include "http_kv2.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render(const cs_http_kv2 *t) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Kv2WriteRes w = CUSTOS__KV2_WRITE_RES__INIT;
  Custos__Kv2GetRes g = CUSTOS__KV2_GET_RES__INIT;
  Custos__Kv2MetaRes m = CUSTOS__KV2_META_RES__INIT;
  Custos__Kv2ConfigRes c = CUSTOS__KV2_CONFIG_RES__INIT;
  Custos__Kv2VersionInfo v = CUSTOS__KV2_VERSION_INFO__INIT, *vp = &v;
  v.version = UINT64_MAX;
  v.created_time = INT64_MAX;
  v.deletion_time = INT64_MIN;
  switch (t->view) {
  case HV_KV2_WRITE:
    w.version = &v;
    res.result_case = CUSTOS__RESPONSE__RESULT_KV2_WRITE;
    res.kv2_write = &w;
    break;
  case HV_KV2_READ:
    g.version = &v;
    if (t->req.op_case == CUSTOS__REQUEST__OP_KV2_GET)
      g.deleted = t->req.kv2_get->version & 1;
    res.result_case = CUSTOS__RESPONSE__RESULT_KV2_GET;
    res.kv2_get = &g;
    break;
  case HV_KV2_META:
    m.n_versions = 1;
    m.versions = &vp;
    m.delete_version_after = UINT64_MAX;
    res.result_case = CUSTOS__RESPONSE__RESULT_KV2_META;
    res.kv2_meta = &m;
    break;
  case HV_KV2_CONFIG:
    c.delete_version_after = 3661;
    res.result_case = CUSTOS__RESPONSE__RESULT_KV2_CONFIG;
    res.kv2_config = &c;
    break;
  default: return;
  }
  cs_jbuf b;
  cs_jbuf_init(&b, CS_JBUF_REPLACE);
  int status = cs_http_kv2_view(&b, t->view, &res);
  if (status != 200 && status != 404)
    abort();
  cs_jbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const hm_method methods[] = {HM_GET, HM_HEAD, HM_PUT, HM_POST,
                                      HM_DELETE, HM_LIST, HM_OTHER, HM_POST};
  if (size < 1 || size > 65536)
    return 0;
  hm_method method = methods[data[0] & 7];
  int list = (data[0] & 8) != 0 || method == HM_LIST;
  const uint8_t *p = data + 1, *end = data + size;
  const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
  if (nl == NULL)
    return 0;
  char *path = malloc((size_t)(nl - p) + 1);
  memcpy(path, p, (size_t)(nl - p));
  path[nl - p] = 0;
  p = nl + 1;
  nl = memchr(p, '\n', (size_t)(end - p));
  const uint8_t *qend = nl != NULL ? nl : end;
  char *query = malloc((size_t)(qend - p) + 1);
  memcpy(query, p, (size_t)(qend - p));
  query[qend - p] = 0;
  const uint8_t *body = nl != NULL ? nl + 1 : end;
  size_t body_len = (size_t)(end - body);

  cs_http_kv2 t;
  int rc = cs_http_kv2_translate(&t, method, list, path, query, body, body_len);
  if (rc != 0 && rc != CS_ENOMEM)
    abort();
  if (rc == 0 && t.status != 0 && t.status != 400 && t.status != 404 && t.status != 405)
    abort();
  if (rc == 0 && t.status == 0) {
    int op = t.req.op_case;
    if (op < CUSTOS__REQUEST__OP_KV2_PUT || op > CUSTOS__REQUEST__OP_KV2_CONFIG)
      abort();
    if (op == CUSTOS__REQUEST__OP_KV2_PUT && t.req.kv2_put->cas_opt_case &&
        t.req.kv2_put->cas > INT64_MAX)
      abort();
    size_t len = custos__request__get_packed_size(&t.req);
    uint8_t *buf = malloc(len ? len : 1);
    custos__request__pack(&t.req, buf);
    Custos__Request *dec = NULL;
    if (cs_wire_decode_request(buf, len, &dec) == 0) {
      if ((int)dec->op_case != op)
        abort();
      cs_wire_request_free(dec);
    }
    free(buf);
    render(&t);
  }
  cs_http_kv2_free(&t);
  free(path);
  free(query);
  cs_error_clear();
  return 0;
}
