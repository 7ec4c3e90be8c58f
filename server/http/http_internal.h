/*
 * http_internal: what the three parts of server/http share: one parsed
 * request (http_msg, from http_conn.c to http_route.c) and the rendering
 * context (cs_http_req, from http_route.c to http_json.c).
 */
#ifndef CS_HTTP_INTERNAL_H
#define CS_HTTP_INTERNAL_H

#include "http.h"

typedef enum hm_method {
  HM_GET, HM_HEAD, HM_PUT, HM_POST, HM_DELETE, HM_LIST, HM_OTHER,
} hm_method;

/* One complete request as the parser saw it. */
typedef struct http_msg {
  hm_method method;
  const char *url; /* NUL-terminated request target */
  const uint8_t *token;  /* X-Vault-Token or Authorization: Bearer; NULL: none */
  size_t token_len;
  const uint8_t *body;
  size_t body_len;
  int close;       /* the client does not keep the connection alive */
  int wrap;        /* X-Vault-Wrap-TTL: response wrapping was asked for */
} http_msg;

/* How the answer to a dispatched request is shown (one per route). */
typedef enum http_view {
  HV_HEALTH, HV_SEAL_STATUS, HV_INIT_STATUS, HV_INIT, HV_LEADER, HV_NO_CONTENT,
  HV_KEY_STATUS, HV_ROTATE_CONFIG, HV_KV_READ, HV_KEYS, HV_TOKEN_AUTH, HV_TOKEN_DATA,
  HV_POLICY_READ, HV_POLICY_NAMES, HV_REKEY_STATUS, HV_REKEY_UPDATE, HV_REKEY_VERIFY, HV_MOUNTS, HV_RAFT_CONFIG,
  HV_KV2_WRITE, HV_KV2_READ, HV_KV2_META, HV_KV2_CONFIG, /* http_kv2.c */
  HV_REKEY_BACKUP, HV_GENROOT, HV_METRICS,
} http_view;

struct cs_http_req {
  http_view view;
  int head;            /* HEAD: the headers of the GET answer, no body */
  int close;
  /* sys/health status codes (Vault's query overrides). */
  int activecode, standbycode, sealedcode, uninitcode, perfstandbycode;
  int standbyok;
  char *target;        /* request target, for a standby's 307 Location (in ctx's block) */
};

/* Routes one request: fills ev with DISPATCH (a decoded request and its
 * rendering context) or ANSWER (a response made here: 400/404/405 and the
 * static mount tables).  0, or CS_ENOMEM. */
int cs_http_route(const http_msg *m, cs_http_event *ev) __attribute__((warn_unused_result));

/* A complete response: status line, Content-Type: application/json when
 * there is a body, Content-Length, Connection: close when `close`, `extra`
 * header lines (each ending in \r\n, may be NULL), then the body unless
 * `head`.  NULL when out of memory. */
uint8_t *cs_http_response(int status, const char *body, size_t body_len, int head, int close,
                          const char *extra, size_t *len);

/* Vault's status for a custos error code. */
int cs_http_status_for(Custos__ErrorCode code);

#endif
