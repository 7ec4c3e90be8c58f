/*
 * Unit tests for server/http: protocol sniffing, the request parser fed in
 * pieces of every size (pipelining, LIST, chunked bodies), its limits, the
 * routing of Vault paths to decoded requests, and the rendering of answers
 * (status codes, Content-Type exactly application/json, 404 {"errors":[]},
 * 307 Location, HEAD without a body).
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
#include "http.h"
#include "wire.h"

static int no_grant(void *ctx) { return 0; }
static const cs_http_limits lim = {1024, 8192, no_grant, NULL};

/* Feeds s in pieces of `piece` bytes; collects up to 8 events. */
typedef struct run {
  cs_http_event ev[8];
  size_t n;
  int rc;
} run;

static void feed(const char *s, size_t len, size_t piece, run *r) {
  cs_http *h = cs_http_new();
  assert_non_null(h);
  memset(r, 0, sizeof *r);
  size_t off = 0, fed = 0;
  while (r->n < 8) {
    fed = fed + piece < len ? fed + piece : len;
    cs_http_event ev;
    r->rc = cs_http_next(h, (const uint8_t *)s, fed, &off, &lim, &ev);
    if (ev.kind != CS_HTTP_NONE)
      r->ev[r->n++] = ev;
    if (r->rc < 0 || (ev.kind == CS_HTTP_NONE && fed == len))
      break;
  }
  cs_http_free(h);
}

static void run_free(run *r) {
  for (size_t i = 0; i < r->n; i++) {
    cs_wire_request_free(r->ev[i].req);
    cs_http_req_free(r->ev[i].ctx);
    free(r->ev[i].out);
  }
}

static void test_sniff(void **state) {
  (void)state;
  assert_true(cs_http_sniff('G'));
  assert_true(cs_http_sniff('L'));
  assert_false(cs_http_sniff(0));    /* a frame length's first byte */
  assert_false(cs_http_sniff(0x16)); /* a TLS handshake record */
  assert_false(cs_http_sniff('g'));
}

static void test_pipeline_every_piece_size(void **state) {
  (void)state;
  static const char s[] =
      "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"
      "LIST /v1/secret/app/ HTTP/1.1\r\nX-Vault-Token: tok\r\n\r\n"
      "PUT /v1/secret/a%2Fb HTTP/1.1\r\nAuthorization: Bearer tok2\r\n"
      "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"k\"\r\n5\r\n:\"v\"}\r\n0\r\n\r\n";
  for (size_t piece = 1; piece <= sizeof s; piece++) {
    run r;
    feed(s, sizeof s - 1, piece, &r);
    if (r.rc != 0) print_message("piece %zu: %zu events, %s\n", piece, r.n, cs_error_message(r.rc));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < 3; i++)
      assert_int_equal(r.ev[i].kind, CS_HTTP_DISPATCH);
    assert_int_equal(r.ev[0].req->op_case, CUSTOS__REQUEST__OP_STATUS);
    assert_int_equal(r.ev[1].req->op_case, CUSTOS__REQUEST__OP_KV_LIST);
    assert_string_equal(r.ev[1].req->kv_list->prefix, "app");
    assert_memory_equal(r.ev[1].req->token.data, "tok", 3);
    const Custos__Request *put = r.ev[2].req;
    assert_int_equal(put->op_case, CUSTOS__REQUEST__OP_KV_PUT);
    assert_string_equal(put->kv_put->path, "a/b");
    assert_int_equal(put->kv_put->n_data, 1);
    assert_string_equal(put->kv_put->data[0]->key, "k");
    assert_memory_equal(put->kv_put->data[0]->value.data, "v", 1);
    assert_int_equal(put->token.len, 4);
    run_free(&r);
  }
}

/* A refused request: rc < 0, one answer with `status`, closing. */
static void refused(const char *s, int status) {
  run r;
  feed(s, strlen(s), 7, &r);
  if (r.rc >= 0)
    print_message("not refused: %.60s (%zu events)\n", s, r.n);
  assert_true(r.rc < 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ev[0].kind, CS_HTTP_ANSWER);
  assert_true(r.ev[0].close);
  char want[16];
  snprintf(want, sizeof want, "HTTP/1.1 %d ", status);
  assert_memory_equal(r.ev[0].out, want, strlen(want));
  run_free(&r);
}

static void test_limits_and_smuggling(void **state) {
  (void)state;
  char big[20000];
  snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", 17000, 0);
  refused(big, 431);
  refused("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 413);
  refused("PUT /v1/secret/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", 413);
  refused("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400);
  refused("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
  refused("GET / HTTP/1.1\r\nX-Vault-Token: a\r\nX-Vault-Token: b\r\n\r\n", 400);
  refused("BREW / HTTP/1.1\r\n\r\n", 400);
}

/* One request that the router answers itself with `status`. */
static void answered(const char *s, int status, const char *body) {
  run r;
  feed(s, strlen(s), 4096, &r);
  if (r.rc != 0 || r.n != 1)
    print_message("%.60s: rc %d, %zu events\n", s, r.rc, r.n);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ev[0].kind, CS_HTTP_ANSWER);
  char want[16];
  snprintf(want, sizeof want, "HTTP/1.1 %d ", status);
  assert_memory_equal(r.ev[0].out, want, strlen(want));
  const char *out = (const char *)r.ev[0].out;
  assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
  if (body != NULL)
    assert_non_null(strstr(out, body));
  run_free(&r);
}

static void test_router_answers(void **state) {
  (void)state;
  answered("GET /v1/nope HTTP/1.1\r\n\r\n", 404, "\r\n\r\n{\"errors\":[]}");
  answered("DELETE /v1/sys/health HTTP/1.1\r\n\r\n", 405, NULL);
  answered("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":", 400, "parse JSON");
  answered("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n", 400, "string");
  answered("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 14\r\n\r\n{\"a\":\"\\u0000\"}", 400, NULL);
  answered("PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\":\"\xff\"}", 400, NULL);
  answered("GET /v1/secret/a?list=maybe HTTP/1.1\r\n\r\n", 400, NULL);
  answered("PUT /v1/sys/unseal HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"key\":\"!\"}", 400, "hex or base64");
  answered("GET /v1/sys/internal/ui/mounts/secret/x HTTP/1.1\r\n\r\n", 200, "\"version\":\"1\"");
}

/* The KV v1 and v2 GET are copied rather than packed and decoded
 * (http_route.c direct_copy): the request dispatch gets is the one the
 * round trip would make, and a path the decoder refuses is refused. */
static Custos__Request *dispatched(const char *s, run *r) {
  feed(s, strlen(s), 4096, r);
  assert_int_equal(r->rc, 0);
  assert_int_equal(r->n, 1);
  assert_int_equal(r->ev[0].kind, CS_HTTP_DISPATCH);
  Custos__Request *req = r->ev[0].req;
  /* Packed again and decoded, it is the same request, byte for byte. */
  size_t len = custos__request__get_packed_size(req);
  uint8_t *a = malloc(len), *b = malloc(len);
  custos__request__pack(req, a);
  Custos__Request *dec = NULL;
  assert_int_equal(cs_wire_decode_request(a, len, &dec), 0);
  assert_int_equal(custos__request__get_packed_size(dec), len);
  custos__request__pack(dec, b);
  assert_memory_equal(a, b, len);
  cs_wire_request_free(dec);
  free(a);
  free(b);
  return req;
}

static void test_hot_reads(void **state) {
  (void)state;
  run r;
  Custos__Request *q = dispatched("GET /v1/secret/a/b%c3%a9 HTTP/1.1\r\nX-Vault-Token: tok\r\n\r\n", &r);
  assert_int_equal(q->op_case, CUSTOS__REQUEST__OP_KV_GET);
  assert_string_equal(q->kv_get->path, "a/b\xc3\xa9");
  assert_int_equal(q->token.len, 3);
  assert_memory_equal(q->token.data, "tok", 3);
  run_free(&r);
  q = dispatched("GET /v1/kv/data/x/y?version=3 HTTP/1.1\r\nAuthorization: Bearer t2\r\n\r\n", &r);
  assert_int_equal(q->op_case, CUSTOS__REQUEST__OP_KV2_GET);
  assert_string_equal(q->kv2_get->path, "x/y");
  assert_int_equal(q->kv2_get->version, 3);
  assert_int_equal(q->token.len, 2);
  run_free(&r);
  q = dispatched("GET /v1/secret/k HTTP/1.1\r\n\r\n", &r); /* no token */
  assert_int_equal(q->token.len, 0);
  assert_null(q->token.data);
  run_free(&r);
  /* Refused as the decoder refuses a frame with such a string. */
  answered("GET /v1/secret/a%ff HTTP/1.1\r\n\r\n", 400, "not valid UTF-8");
  answered("GET /v1/kv/data/a%c3 HTTP/1.1\r\n\r\n", 400, "not valid UTF-8");
}

/* Renders `res` for the context of request s. */
static char *render(const char *s, const Custos__Response *res) {
  run r;
  feed(s, strlen(s), 4096, &r);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ev[0].kind, CS_HTTP_DISPATCH);
  size_t len = 0;
  int close = 0;
  uint8_t *out = cs_http_render(r.ev[0].ctx, res, &len, &close);
  r.ev[0].ctx = NULL;
  run_free(&r);
  assert_non_null(out);
  char *z = malloc(len + 1);
  memcpy(z, out, len);
  z[len] = 0;
  free(out);
  return z;
}

static void test_render(void **state) {
  (void)state;
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Error e = CUSTOS__ERROR__INIT;
  Custos__StatusRes st = CUSTOS__STATUS_RES__INIT;
  res.error = &e;
  e.code = CUSTOS__ERROR_CODE__NOT_FOUND;
  e.message = "no secret at a";
  char *o = render("GET /v1/secret/a HTTP/1.1\r\nX-Vault-Token: t\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 404 "));
  assert_non_null(strstr(o, "\r\n\r\n{\"errors\":[]}"));
  free(o);
  e.code = CUSTOS__ERROR_CODE__PERMISSION_DENIED;
  e.message = "permission denied: kv_get on a";
  o = render("GET /v1/secret/a HTTP/1.1\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 403 "));
  assert_non_null(strstr(o, "{\"errors\":[\"permission denied\"]}"));
  free(o);
  e.code = CUSTOS__ERROR_CODE__STANDBY;
  e.active_address = "127.0.0.1:9";
  o = render("GET /v1/secret/a?x=1 HTTP/1.1\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 307 "));
  assert_non_null(strstr(o, "Location: https://127.0.0.1:9/v1/secret/a?x=1\r\n"));
  free(o);
  /* Health: the codes and their overrides; HEAD has the length, no body. */
  res.error = NULL;
  res.result_case = CUSTOS__RESPONSE__RESULT_STATUS;
  res.status = &st;
  st.initialized = 1;
  st.sealed = 1;
  st.ha_mode = "standalone";
  o = render("GET /v1/sys/health HTTP/1.1\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 503 "));
  free(o);
  o = render("HEAD /v1/sys/health?sealedcode=299 HTTP/1.1\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 299 "));
  assert_non_null(strstr(o, "Content-Length: "));
  assert_int_equal(o[strlen(o) - 1], '\n'); /* ends with the blank line */
  free(o);
  st.sealed = 0;
  st.ha_mode = "standby";
  o = render("GET /v1/sys/health HTTP/1.1\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 429 "));
  free(o);
  o = render("GET /v1/sys/health?standbyok=true HTTP/1.1\r\n\r\n", &res);
  assert_non_null(strstr(o, "HTTP/1.1 200 "));
  free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sniff),
      cmocka_unit_test(test_pipeline_every_piece_size),
      cmocka_unit_test(test_limits_and_smuggling),
      cmocka_unit_test(test_router_answers),
      cmocka_unit_test(test_hot_reads),
      cmocka_unit_test(test_render),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
