/*
 * http_json: a Custos__Response to the HTTP answer Vault would give:
 * status code, headers and JSON body (written with common/jbuf in REPLACE
 * mode, so a stored value that is not UTF-8 still gives valid JSON).
 *
 * Errors are {"errors":["..."]} with Content-Type exactly
 * "application/json" (hvac reads the messages only then), and Vault's codes:
 * sealed 503, a missing or refused token 403 "permission denied", nothing
 * at the path (or nothing to list) 404 {"errors":[]}, bad input 400.  A
 * standby answers 307 with Location on the active node (the protobuf
 * STANDBY error carries its address), like Vault without request
 * forwarding.  Buffers that held secrets (shares, tokens, values) are wiped
 * by jbuf and here before they are freed.
 */
#define _GNU_SOURCE
#include "http_internal.h"

#include "cs_error.h"
#include "http_kv2.h"
#include "jbuf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoding.h"
#include <mbedtls/platform_util.h>

const char cs_http_plaintext_answer[] =
    "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    "Content-Length: 48\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 204: return "No Content";
  case 307: return "Temporary Redirect";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 473: return "Performance Standby";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

/* cs_http_response with the body's Content-Type given. */
static uint8_t *response_typed(int status, const char *ctype, const char *body, size_t body_len,
                               int head, int close, const char *extra, size_t *len);

uint8_t *cs_http_response(int status, const char *body, size_t body_len, int head, int close,
                          const char *extra, size_t *len) {
  return response_typed(status, "application/json", body, body_len, head, close, extra, len);
}

/* Decimal digits of v into out (at least 20 bytes), no NUL; the count. */
static size_t put_dec(char *out, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

/* Appends the n bytes of s at *o (the caller sized the buffer). */
static void put_bytes(char **o, const char *s, size_t n) {
  memcpy(*o, s, n);
  *o += n;
}

#define PUT_LIT(o, lit) put_bytes(o, lit, sizeof lit - 1)

/* The header is built by hand (memcpy, not snprintf: the formatter was a
 * visible share of an HTTP GET's CPU, see docs/performance.md), straight
 * into the buffer that carries the body too. */
static uint8_t *response_typed(int status, const char *ctype, const char *body, size_t body_len,
                               int head, int close, const char *extra, size_t *len) {
  /* No body on 204, 304 and 1xx (RFC 9110); HEAD gets the length only. */
  int bodyless = status == 204 || status == 304 || status < 200;
  if (bodyless)
    body_len = 0;
  if (status < 100 || status > 999)
    return NULL;
  const char *why = reason(status);
  size_t why_len = strlen(why), ctype_len = body_len ? strlen(ctype) : 0;
  size_t extra_len = extra ? strlen(extra) : 0;
  static const char cl[] = "Content-Length: ", cc[] = "\r\nCache-Control: no-store\r\n";
  static const char conn[] = "Connection: close\r\n";
  char num[20];
  size_t num_len = put_dec(num, body_len);
  /* "HTTP/1.1 200 " why CRLF ["Content-Type: " ctype CRLF] cl N cc [conn] extra CRLF */
  size_t n = 13 + why_len + 2 + (body_len ? 14 + ctype_len + 2 : 0) + sizeof cl - 1 + num_len +
             sizeof cc - 1 + (close ? sizeof conn - 1 : 0) + extra_len + 2;
  if (n >= 512) /* as ever: a header that long is refused */
    return NULL;
  size_t send_body = head ? 0 : body_len;
  uint8_t *out = malloc(n + send_body);
  if (out == NULL)
    return NULL;
  char *o = (char *)out;
  PUT_LIT(&o, "HTTP/1.1 ");
  o += put_dec(o, (uint64_t)status);
  *o++ = ' ';
  put_bytes(&o, why, why_len);
  PUT_LIT(&o, "\r\n");
  if (body_len) {
    PUT_LIT(&o, "Content-Type: ");
    put_bytes(&o, ctype, ctype_len);
    PUT_LIT(&o, "\r\n");
  }
  PUT_LIT(&o, cl);
  put_bytes(&o, num, num_len);
  PUT_LIT(&o, cc);
  if (close)
    PUT_LIT(&o, conn);
  if (extra_len)
    put_bytes(&o, extra, extra_len);
  PUT_LIT(&o, "\r\n");
  if (send_body)
    put_bytes(&o, body, send_body);
  *len = (size_t)(o - (char *)out);
  assert(*len == n + send_body);
  return out;
}

uint8_t *cs_http_error(int status, const char *msg, int close, size_t *len) {
  cs_jbuf b;
  cs_jbuf_init(&b, CS_JBUF_REPLACE);
  cs_jbuf_begin_object(&b);
  cs_jbuf_key(&b, "errors");
  cs_jbuf_begin_array(&b);
  if (msg != NULL)
    cs_jbuf_str(&b, msg);
  cs_jbuf_end_array(&b);
  cs_jbuf_end_object(&b);
  const char *text;
  size_t tlen;
  uint8_t *out = NULL;
  if (cs_jbuf_result(&b, &text, &tlen) == 0)
    out = cs_http_response(status, text, tlen, 0, close, NULL, len);
  cs_jbuf_free(&b);
  return out;
}

int cs_http_status_for(Custos__ErrorCode code) {
  switch (code) {
  case CUSTOS__ERROR_CODE__BAD_REQUEST:
  case CUSTOS__ERROR_CODE__ALREADY_INITIALIZED:
  case CUSTOS__ERROR_CODE__BAD_SHARE:
  case CUSTOS__ERROR_CODE__KEY_MISMATCH:
  case CUSTOS__ERROR_CODE__BAD_NONCE:
  case CUSTOS__ERROR_CODE__CONFLICT: return 400;
  case CUSTOS__ERROR_CODE__SEALED:
  case CUSTOS__ERROR_CODE__NOT_INITIALIZED:
  case CUSTOS__ERROR_CODE__UNAVAILABLE:
  case CUSTOS__ERROR_CODE__RETRY: return 503;
  case CUSTOS__ERROR_CODE__PERMISSION_DENIED: return 403;
  case CUSTOS__ERROR_CODE__NOT_FOUND: return 404;
  case CUSTOS__ERROR_CODE__TOO_LARGE: return 413;
  case CUSTOS__ERROR_CODE__LIMIT: return 429;
  case CUSTOS__ERROR_CODE__STANDBY: return 307;
  default: return 500;
  }
}

void cs_http_req_free(cs_http_req *ctx) {
  if (ctx == NULL)
    return;
  free(ctx); /* the target lives in the same block (http_route.c emit) */
}

/* ---------------------------------------------------------------- helpers */

static void key_time(cs_jbuf *b, const char *k, int64_t t) {
  char s[32];
  struct tm tm;
  time_t tt = (time_t)t;
  if (gmtime_r(&tt, &tm) == NULL || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(s, sizeof s, "1970-01-01T00:00:00Z");
  cs_jbuf_key_str(b, k, s);
}

/* Shares as hex and base64: common/encoding.h (constant time). */
static void hex_str(cs_jbuf *b, const uint8_t *p, size_t n) {
  char s[CS_HEX_LEN(1024) + 1];
  if (n > 1024)
    n = 1024;
  cs_hex_encode(p, n, s);
  cs_jbuf_strn(b, s, CS_HEX_LEN(n));
  mbedtls_platform_zeroize(s, sizeof s);
}

static void b64_str(cs_jbuf *b, const uint8_t *p, size_t n) {
  char s[CS_B64_LEN(1024) + 1];
  if (n > 1024)
    n = 1024;
  cs_b64_encode(p, n, s);
  cs_jbuf_strn(b, s, CS_B64_LEN(n));
  mbedtls_platform_zeroize(s, sizeof s);
}

/* The share lists of init and a completed rekey. */
static void keys_lists(cs_jbuf *b, ProtobufCBinaryData *keys, size_t n) {
  cs_jbuf_key(b, "keys");
  cs_jbuf_begin_array(b);
  for (size_t i = 0; i < n; i++)
    hex_str(b, keys[i].data, keys[i].len);
  cs_jbuf_end_array(b);
  cs_jbuf_key(b, "keys_base64");
  cs_jbuf_begin_array(b);
  for (size_t i = 0; i < n; i++)
    b64_str(b, keys[i].data, keys[i].len);
  cs_jbuf_end_array(b);
}

/* Vault's logical-response envelope around "data" (opened by the caller). */
static void envelope_open(cs_jbuf *b, uint64_t lease) {
  cs_jbuf_begin_object(b);
  /* The constant members in one piece (the same bytes as key by key). */
  CS_JBUF_MEMBERS(b, "\"request_id\":\"\",\"lease_id\":\"\",\"renewable\":false");
  cs_jbuf_key_uint(b, "lease_duration", lease);
}

static void envelope_close(cs_jbuf *b) {
  CS_JBUF_MEMBERS(b, "\"wrap_info\":null,\"warnings\":null");
  cs_jbuf_end_object(b);
}

static void str_list(cs_jbuf *b, const char *k, char **s, size_t n) {
  cs_jbuf_key(b, k);
  cs_jbuf_begin_array(b);
  for (size_t i = 0; i < n; i++)
    cs_jbuf_str(b, s[i]);
  cs_jbuf_end_array(b);
}

static const Custos__StatusRes no_status = CUSTOS__STATUS_RES__INIT;

static const Custos__StatusRes *status_of(const Custos__Response *res) {
  return res->result_case == CUSTOS__RESPONSE__RESULT_STATUS ? res->status : &no_status;
}

/* ---------------------------------------------------------------- views */

/* sys/health: the status code tells a load balancer what this node is. */
static int view_health(cs_jbuf *b, const cs_http_req *ctx, const Custos__Response *res) {
  const Custos__StatusRes *st = status_of(res);
  int standby = st->ha_mode != NULL && strcmp(st->ha_mode, "standby") == 0;
  int code = !st->initialized ? ctx->uninitcode
             : st->sealed     ? ctx->sealedcode
             : standby        ? (ctx->standbyok ? ctx->activecode : ctx->standbycode)
                              : ctx->activecode;
  cs_jbuf_begin_object(b);
  cs_jbuf_key_bool(b, "initialized", st->initialized);
  cs_jbuf_key_bool(b, "sealed", st->sealed);
  cs_jbuf_key_bool(b, "standby", standby);
  cs_jbuf_key_bool(b, "performance_standby", 0);
  cs_jbuf_key_str(b, "replication_performance_mode", "disabled");
  cs_jbuf_key_str(b, "replication_dr_mode", "disabled");
  cs_jbuf_key_int(b, "server_time_utc", (int64_t)time(NULL));
  cs_jbuf_key_str(b, "version", st->version);
  cs_jbuf_key_str(b, "cluster_name", "custos");
  cs_jbuf_key_str(b, "cluster_id", "");
  cs_jbuf_end_object(b);
  return code;
}

static int view_seal_status(cs_jbuf *b, const Custos__Response *res) {
  const Custos__StatusRes *st = status_of(res);
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "type", "shamir");
  cs_jbuf_key_bool(b, "initialized", st->initialized);
  cs_jbuf_key_bool(b, "sealed", st->sealed);
  cs_jbuf_key_uint(b, "t", st->t);
  cs_jbuf_key_uint(b, "n", st->n);
  cs_jbuf_key_uint(b, "progress", st->progress);
  cs_jbuf_key_str(b, "nonce", st->nonce);
  cs_jbuf_key_str(b, "version", st->version);
  cs_jbuf_key_str(b, "build_date", "");
  cs_jbuf_key_bool(b, "migration", 0);
  cs_jbuf_key_bool(b, "recovery_seal", 0);
  cs_jbuf_key_str(b, "storage_type", strcmp(st->ha_mode ? st->ha_mode : "", "standalone") == 0 ||
                                             st->ha_mode == NULL || !st->ha_mode[0]
                                         ? "lmdb"
                                         : "raft");
  if (!st->sealed) {
    cs_jbuf_key_str(b, "cluster_name", "custos");
    cs_jbuf_key_str(b, "cluster_id", "");
  }
  if (st->n_relayed > 0) { /* sys/unseal with "cluster": true */
    cs_jbuf_key(b, "relayed");
    cs_jbuf_begin_array(b);
    for (size_t i = 0; i < st->n_relayed; i++) {
      const Custos__UnsealRelayResult *r = st->relayed[i];
      cs_jbuf_begin_object(b);
      cs_jbuf_key_str(b, "node_id", r->node_id);
      cs_jbuf_key_bool(b, "delivered", r->delivered);
      cs_jbuf_key_bool(b, "sealed", r->sealed);
      cs_jbuf_key_uint(b, "progress", r->progress);
      cs_jbuf_key_uint(b, "t", r->t);
      cs_jbuf_key_str(b, "error", r->error);
      cs_jbuf_end_object(b);
    }
    cs_jbuf_end_array(b);
  }
  cs_jbuf_end_object(b);
  return 200;
}

static int view_leader(cs_jbuf *b, const Custos__Response *res) {
  const Custos__StatusRes *st = status_of(res);
  const char *mode = st->ha_mode ? st->ha_mode : "";
  int ha = strcmp(mode, "active") == 0 || strcmp(mode, "standby") == 0;
  char addr[300] = "";
  if (ha && st->active_address && st->active_address[0])
    snprintf(addr, sizeof addr, "https://%s", st->active_address);
  cs_jbuf_begin_object(b);
  cs_jbuf_key_bool(b, "ha_enabled", ha);
  cs_jbuf_key_bool(b, "is_self", strcmp(mode, "active") == 0);
  cs_jbuf_key_str(b, "active_time", "0001-01-01T00:00:00Z");
  cs_jbuf_key_str(b, "leader_address", addr);
  cs_jbuf_key_str(b, "leader_cluster_address", "");
  cs_jbuf_key_bool(b, "performance_standby", 0);
  cs_jbuf_key_uint(b, "performance_standby_last_remote_wal", 0);
  cs_jbuf_end_object(b);
  return 200;
}

static int view_init(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_INIT)
    return 500;
  const Custos__InitRes *in = res->init;
  cs_jbuf_begin_object(b);
  keys_lists(b, in->keys, in->n_keys);
  cs_jbuf_key_str(b, "root_token", in->root_token);
  cs_jbuf_end_object(b);
  return 200;
}

static const char *term_state_name(Custos__TermState s) {
  switch (s) {
  case CUSTOS__TERM_STATE__TERM_STATE_STAGED: return "staged";
  case CUSTOS__TERM_STATE__TERM_STATE_ACTIVE: return "active";
  case CUSTOS__TERM_STATE__TERM_STATE_DECRYPT_ONLY: return "decrypt-only";
  case CUSTOS__TERM_STATE__TERM_STATE_RETIRED: return "retired";
  default: return "unknown";
  }
}

/* Vault's three fields, then custos's every term with its state, times and
 * the exact number of stored values under it. */
static void key_status_fields(cs_jbuf *b, const Custos__KeyStatusRes *k) {
  cs_jbuf_key_uint(b, "term", k->term);
  key_time(b, "install_time", k->install_time);
  cs_jbuf_key_uint(b, "encryptions", k->encryptions);
  cs_jbuf_key(b, "terms");
  cs_jbuf_begin_array(b);
  for (size_t i = 0; i < k->n_terms; i++) {
    const Custos__TermStatus *t = k->terms[i];
    cs_jbuf_begin_object(b);
    cs_jbuf_key_uint(b, "term", t->term);
    cs_jbuf_key_str(b, "state", term_state_name(t->state));
    key_time(b, "install_time", t->install_time);
    if (t->activation_time)
      key_time(b, "activation_time", t->activation_time);
    if (t->retirement_time)
      key_time(b, "retirement_time", t->retirement_time);
    cs_jbuf_key_uint(b, "encryptions", t->encryptions);
    cs_jbuf_key_uint(b, "values", t->values);
    cs_jbuf_end_object(b);
  }
  cs_jbuf_end_array(b);
}

static int view_key_status(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_KEY_STATUS)
    return 500;
  envelope_open(b, 0);
  key_status_fields(b, res->key_status);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  key_status_fields(b, res->key_status);
  cs_jbuf_end_object(b);
  envelope_close(b);
  return 200;
}

static void rotate_config_fields(cs_jbuf *b, const Custos__RotateConfigRes *c) {
  cs_jbuf_key_uint(b, "max_operations", c->max_operations);
  cs_jbuf_key_uint(b, "interval", c->interval_seconds);
  cs_jbuf_key_bool(b, "enabled", c->enabled);
}

static int view_rotate_config(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_ROTATE_CONFIG)
    return 500;
  envelope_open(b, 0);
  rotate_config_fields(b, res->rotate_config);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  rotate_config_fields(b, res->rotate_config);
  cs_jbuf_end_object(b);
  envelope_close(b);
  return 200;
}

static int view_kv_read(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_KV_GET)
    return 500;
  const Custos__KvGetRes *g = res->kv_get;
  envelope_open(b, 2764800); /* Vault's KV v1 default: a refresh hint, not a lease */
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  for (size_t i = 0; i < g->n_data; i++)
    cs_jbuf_key_strn(b, g->data[i]->key, g->data[i]->value.data, g->data[i]->value.len);
  cs_jbuf_end_object(b);
  CS_JBUF_MEMBERS(b, "\"auth\":null");
  envelope_close(b);
  return 200;
}

/* A LIST: {"data":{"keys":[...]}}, or 404 with no keys, as Vault. */
static int view_keys(cs_jbuf *b, const Custos__Response *res) {
  char **k = NULL;
  size_t n = 0;
  if (res->result_case == CUSTOS__RESPONSE__RESULT_KV_LIST) {
    k = res->kv_list->keys;
    n = res->kv_list->n_keys;
  } else if (res->result_case == CUSTOS__RESPONSE__RESULT_POLICY_LIST) {
    k = res->policy_list->names;
    n = res->policy_list->n_names;
  } else {
    return 500;
  }
  if (n == 0) {
    cs_jbuf_begin_object(b);
    cs_jbuf_key(b, "errors");
    cs_jbuf_begin_array(b);
    cs_jbuf_end_array(b);
    cs_jbuf_end_object(b);
    return 404;
  }
  envelope_open(b, 0);
  if (res->result_case == CUSTOS__RESPONSE__RESULT_POLICY_LIST)
    str_list(b, "keys", k, n); /* Vault repeats the names at the top level */
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  str_list(b, "keys", k, n);
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "auth");
  cs_jbuf_null(b);
  envelope_close(b);
  return 200;
}

/* GET sys/policy: {"policies":[...],"keys":[...]}, never 404. */
static int view_policy_names(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_POLICY_LIST)
    return 500;
  const Custos__PolicyListRes *l = res->policy_list;
  envelope_open(b, 0);
  str_list(b, "policies", l->names, l->n_names);
  str_list(b, "keys", l->names, l->n_names);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  str_list(b, "policies", l->names, l->n_names);
  str_list(b, "keys", l->names, l->n_names);
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "auth");
  cs_jbuf_null(b);
  envelope_close(b);
  return 200;
}

static uint64_t ttl_left(int64_t expire) {
  int64_t now = (int64_t)time(NULL);
  return expire > now ? (uint64_t)(expire - now) : 0;
}

static int view_token_auth(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_TOKEN)
    return 500;
  const Custos__TokenRes *t = res->token;
  envelope_open(b, 0);
  cs_jbuf_key(b, "data");
  cs_jbuf_null(b);
  cs_jbuf_key(b, "auth");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "client_token", t->token);
  cs_jbuf_key_str(b, "accessor", t->accessor);
  str_list(b, "policies", t->policies, t->n_policies);
  str_list(b, "token_policies", t->policies, t->n_policies);
  cs_jbuf_key(b, "metadata");
  cs_jbuf_null(b);
  cs_jbuf_key_uint(b, "lease_duration", t->expire_time ? ttl_left(t->expire_time) : 0);
  cs_jbuf_key_bool(b, "renewable", t->renewable);
  cs_jbuf_key_str(b, "entity_id", "");
  cs_jbuf_key_str(b, "token_type", "service");
  cs_jbuf_key_bool(b, "orphan", 1);
  cs_jbuf_end_object(b);
  envelope_close(b);
  return 200;
}

static int view_token_data(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_TOKEN)
    return 500;
  const Custos__TokenRes *t = res->token;
  envelope_open(b, 0);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "accessor", t->accessor);
  cs_jbuf_key_int(b, "creation_time", t->issue_time);
  cs_jbuf_key_uint(b, "creation_ttl", t->expire_time > t->issue_time
                                          ? (uint64_t)(t->expire_time - t->issue_time) : 0);
  cs_jbuf_key_str(b, "display_name", "token");
  if (t->expire_time) {
    key_time(b, "expire_time", t->expire_time);
  } else {
    cs_jbuf_key(b, "expire_time");
    cs_jbuf_null(b);
  }
  cs_jbuf_key_uint(b, "explicit_max_ttl", 0);
  key_time(b, "issue_time", t->issue_time);
  cs_jbuf_key(b, "meta");
  cs_jbuf_null(b);
  cs_jbuf_key_uint(b, "num_uses", 0);
  cs_jbuf_key_bool(b, "orphan", 1);
  cs_jbuf_key_str(b, "path", "auth/token/create");
  str_list(b, "policies", t->policies, t->n_policies);
  cs_jbuf_key_bool(b, "renewable", t->renewable);
  cs_jbuf_key_uint(b, "ttl", t->expire_time ? ttl_left(t->expire_time) : 0);
  cs_jbuf_key_str(b, "type", "service");
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "auth");
  cs_jbuf_null(b);
  envelope_close(b);
  return 200;
}

static int view_policy(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_POLICY)
    return 500;
  const Custos__PolicyRes *p = res->policy;
  envelope_open(b, 0);
  /* "policy" for sys/policies/acl, "rules" for the older sys/policy. */
  cs_jbuf_key_str(b, "name", p->name);
  cs_jbuf_key_str(b, "policy", p->document);
  cs_jbuf_key_str(b, "rules", p->document);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "name", p->name);
  cs_jbuf_key_str(b, "policy", p->document);
  cs_jbuf_key_str(b, "rules", p->document);
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "auth");
  cs_jbuf_null(b);
  envelope_close(b);
  return 200;
}

static int view_rekey(cs_jbuf *b, const cs_http_req *ctx, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_REKEY)
    return 500;
  const Custos__RekeyStatusRes *r = res->rekey;
  cs_jbuf_begin_object(b);
  if (ctx->view == HV_REKEY_VERIFY) {
    cs_jbuf_key_str(b, "nonce", r->verification_nonce);
    cs_jbuf_key_bool(b, "started", r->started);
    cs_jbuf_key_uint(b, "t", r->t);
    cs_jbuf_key_uint(b, "n", r->n);
    cs_jbuf_key_uint(b, "progress", r->verification_progress);
    cs_jbuf_key_bool(b, "complete", r->complete);
    cs_jbuf_end_object(b);
    return 200;
  }
  /* Vault says complete when the new shares are out, verified or not. */
  if (r->complete || r->n_keys > 0 || r->n_keys_age > 0) {
    cs_jbuf_key_bool(b, "complete", 1);
    keys_lists(b, r->keys, r->n_keys);
    /* With recipients: the new shares only as age files (custos's
     * counterpart of Vault's PGP-encrypted "keys"). */
    if (r->n_keys_age > 0)
      str_list(b, "keys_age", r->keys_age, r->n_keys_age);
  }
  cs_jbuf_key_bool(b, "started", r->started);
  cs_jbuf_key_str(b, "nonce", r->nonce);
  cs_jbuf_key_uint(b, "t", r->t);
  cs_jbuf_key_uint(b, "n", r->n);
  cs_jbuf_key_uint(b, "progress", r->progress);
  cs_jbuf_key_uint(b, "required", r->required);
  cs_jbuf_key(b, "pgp_fingerprints");
  cs_jbuf_null(b);
  if (r->n_recipients > 0)
    str_list(b, "recipients", r->recipients, r->n_recipients);
  cs_jbuf_key_bool(b, "backup", r->backup);
  cs_jbuf_key_bool(b, "verification_required", r->verification_required);
  if (r->verification_nonce && r->verification_nonce[0])
    cs_jbuf_key_str(b, "verification_nonce", r->verification_nonce);
  cs_jbuf_end_object(b);
  return 200;
}

/* sys/rekey/backup: Vault's envelope; the age files by recipient (Vault
 * keys its PGP-encrypted shares by key fingerprint). */
static int view_rekey_backup(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_REKEY_BACKUP)
    return 500;
  const Custos__RekeyBackup *k = res->rekey_backup;
  envelope_open(b, 0);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "nonce", k->nonce);
  cs_jbuf_key(b, "keys");
  cs_jbuf_begin_object(b);
  for (size_t i = 0; i < k->n_keys_age && i < k->n_recipients; i++) {
    cs_jbuf_key(b, k->recipients[i]);
    cs_jbuf_begin_array(b);
    cs_jbuf_str(b, k->keys_age[i]);
    cs_jbuf_end_array(b);
  }
  cs_jbuf_end_object(b);
  str_list(b, "keys_age", k->keys_age, k->n_keys_age);
  cs_jbuf_end_object(b);
  envelope_close(b);
  return 200;
}

/* sys/generate-root/attempt and /update: Vault's fields (no nonce in a
 * plain status: custos gives it only to the initiator and to those who
 * present it); "recipient" and "encoded_token_age" stand for Vault's
 * pgp_fingerprint and PGP-encrypted token. */
static int view_genroot(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_GENERATE_ROOT)
    return 500;
  const Custos__GenerateRootStatusRes *r = res->generate_root;
  cs_jbuf_begin_object(b);
  cs_jbuf_key_bool(b, "started", r->started || r->complete);
  cs_jbuf_key_str(b, "nonce", r->nonce);
  cs_jbuf_key_uint(b, "progress", r->progress);
  cs_jbuf_key_uint(b, "required", r->required);
  cs_jbuf_key_str(b, "encoded_token", r->encoded_token);
  cs_jbuf_key_str(b, "encoded_root_token", r->encoded_token);
  if (r->encoded_token_age && r->encoded_token_age[0])
    cs_jbuf_key_str(b, "encoded_token_age", r->encoded_token_age);
  cs_jbuf_key_str(b, "pgp_fingerprint", "");
  cs_jbuf_key_str(b, "recipient", r->recipient);
  cs_jbuf_key_str(b, "otp", r->otp);
  cs_jbuf_key_uint(b, "otp_length", r->otp_length);
  cs_jbuf_key_bool(b, "complete", r->complete);
  if (r->expires)
    key_time(b, "expires", r->expires);
  cs_jbuf_end_object(b);
  return 200;
}

/* sys/storage/raft/configuration: Vault's shape, custos's members. */
static int view_raft_config(cs_jbuf *b, const Custos__Response *res) {
  if (res->result_case != CUSTOS__RESPONSE__RESULT_RAFT_PEERS)
    return 500;
  const Custos__RaftPeersRes *r = res->raft_peers;
  envelope_open(b, 0);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  cs_jbuf_key(b, "config");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_uint(b, "index", 0);
  cs_jbuf_key(b, "servers");
  cs_jbuf_begin_array(b);
  for (size_t i = 0; i < r->n_peers; i++) {
    const Custos__RaftPeer *p = r->peers[i];
    cs_jbuf_begin_object(b);
    cs_jbuf_key_str(b, "node_id", p->node_id);
    cs_jbuf_key_str(b, "address", p->address);
    cs_jbuf_key_bool(b, "leader", p->leader);
    cs_jbuf_key_str(b, "protocol_version", "3");
    cs_jbuf_key_bool(b, "voter", p->voter);
    cs_jbuf_end_object(b);
  }
  cs_jbuf_end_array(b);
  cs_jbuf_end_object(b);
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "auth");
  cs_jbuf_null(b);
  envelope_close(b);
  return 200;
}

static void mount_entry(cs_jbuf *b, const char *type, const char *desc, const char *version) {
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "type", type);
  cs_jbuf_key_str(b, "description", desc);
  cs_jbuf_key_str(b, "accessor", "");
  cs_jbuf_key(b, "config");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_uint(b, "default_lease_ttl", 0);
  cs_jbuf_key_uint(b, "max_lease_ttl", 0);
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "options");
  if (version != NULL) {
    cs_jbuf_begin_object(b);
    cs_jbuf_key_str(b, "version", version);
    cs_jbuf_end_object(b);
  } else {
    cs_jbuf_null(b);
  }
  cs_jbuf_key_bool(b, "local", 0);
  cs_jbuf_key_bool(b, "seal_wrap", 0);
  cs_jbuf_end_object(b);
}

static void mounts_fields(cs_jbuf *b) {
  cs_jbuf_key(b, "secret/");
  mount_entry(b, "kv", "custos key/value store", "1");
  cs_http_kv2_mount_fields(b);
  cs_jbuf_key(b, "sys/");
  mount_entry(b, "system", "system endpoints", NULL);
}

/* Rendered only once lookup-self accepted the token. */
static int view_mounts(cs_jbuf *b, const Custos__Response *res) {
  envelope_open(b, 0);
  mounts_fields(b);
  cs_jbuf_key(b, "data");
  cs_jbuf_begin_object(b);
  mounts_fields(b);
  cs_jbuf_end_object(b);
  envelope_close(b);
  return 200;
}

static int view(cs_jbuf *b, const cs_http_req *ctx, const Custos__Response *res) {
  switch (ctx->view) {
  case HV_HEALTH: return view_health(b, ctx, res);
  case HV_SEAL_STATUS: return view_seal_status(b, res);
  case HV_INIT_STATUS:
    cs_jbuf_begin_object(b);
    cs_jbuf_key_bool(b, "initialized", status_of(res)->initialized);
    cs_jbuf_end_object(b);
    return 200;
  case HV_INIT: return view_init(b, res);
  case HV_LEADER: return view_leader(b, res);
  case HV_NO_CONTENT: return 204;
  case HV_METRICS: return 500; /* rendered before: not JSON (cs_http_render) */
  case HV_KEY_STATUS: return view_key_status(b, res);
  case HV_ROTATE_CONFIG: return view_rotate_config(b, res);
  case HV_KV_READ: return view_kv_read(b, res);
  case HV_KEYS: return view_keys(b, res);
  case HV_TOKEN_AUTH: return view_token_auth(b, res);
  case HV_TOKEN_DATA: return view_token_data(b, res);
  case HV_POLICY_READ: return view_policy(b, res);
  case HV_POLICY_NAMES: return view_policy_names(b, res);
  case HV_REKEY_STATUS:
  case HV_REKEY_UPDATE:
  case HV_REKEY_VERIFY: return view_rekey(b, ctx, res);
  case HV_MOUNTS: return view_mounts(b, res);
  case HV_RAFT_CONFIG: return view_raft_config(b, res);
  case HV_KV2_WRITE:
  case HV_KV2_READ:
  case HV_KV2_META:
  case HV_KV2_CONFIG: return cs_http_kv2_view(b, ctx->view, res);
  case HV_REKEY_BACKUP: return view_rekey_backup(b, res);
  case HV_GENROOT: return view_genroot(b, res);
  }
  return 500;
}

/* ---------------------------------------------------------------- errors */

static uint8_t *render_error(const cs_http_req *ctx, const Custos__Error *e, size_t *len) {
  int status = cs_http_status_for(e->code);
  if (status == 307) {
    if (e->active_address == NULL || !e->active_address[0])
      return cs_http_error(503, e->message, ctx->close, len);
    char loc[CS_HTTP_MAX_URL + 320];
    snprintf(loc, sizeof loc, "Location: https://%s%s\r\n", e->active_address, ctx->target);
    return cs_http_response(307, NULL, 0, ctx->head, ctx->close, loc, len);
  }
  if (status == 404)
    return cs_http_error(404, NULL, ctx->close, len);
  const char *msg = e->message && e->message[0] ? e->message : "internal error";
  if (status == 403)
    msg = "permission denied";
  else if (e->code == CUSTOS__ERROR_CODE__SEALED)
    msg = "Vault is sealed"; /* the wording Vault clients know */
  else if (e->code == CUSTOS__ERROR_CODE__BAD_SHARE || e->code == CUSTOS__ERROR_CODE__KEY_MISMATCH)
    status = 400;
  return cs_http_error(status, msg, ctx->close, len);
}

uint8_t *cs_http_render(cs_http_req *ctx, const Custos__Response *res, size_t *len, int *close) {
  uint8_t *out = NULL;
  *close = ctx->close;
  if (res->error != NULL && ctx->view != HV_HEALTH) {
    out = render_error(ctx, res->error, len);
    cs_http_req_free(ctx);
    return out;
  }
  if (res->error != NULL) {
    /* Health never fails with a status code a load balancer misreads. */
    out = cs_http_error(500, res->error->message, ctx->close, len);
    cs_http_req_free(ctx);
    return out;
  }
  if (ctx->view == HV_METRICS) {
    /* Prometheus's text format, not JSON. */
    const char *text = res->result_case == CUSTOS__RESPONSE__RESULT_METRICS && res->metrics->text
                           ? res->metrics->text
                           : "";
    out = response_typed(200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
                         ctx->head, ctx->close, NULL, len);
    cs_http_req_free(ctx);
    return out;
  }
  cs_jbuf b;
  cs_jbuf_init(&b, CS_JBUF_REPLACE);
  int status = view(&b, ctx, res);
  const char *text = "";
  size_t tlen = 0;
  if (status == 204)
    out = cs_http_response(204, NULL, 0, ctx->head, ctx->close, NULL, len);
  else if (status == 500 && b.len == 0)
    out = cs_http_error(500, "unexpected response from the server core", ctx->close, len);
  else if (cs_jbuf_result(&b, &text, &tlen) == 0)
    out = cs_http_response(status, text, tlen, ctx->head, ctx->close, NULL, len);
  cs_jbuf_free(&b);
  cs_http_req_free(ctx);
  return out;
}
