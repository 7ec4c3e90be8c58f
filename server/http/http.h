/*
 * http: custos's Vault-compatible HTTP/1.1 API, a thin translation layer
 * between HTTP and the protobuf protocol (docs/http-api.md).
 *
 * The HTTP API shares the TLS listener with the protobuf protocol: conn.c
 * looks at the first byte the client sends after the handshake
 * (cs_http_sniff).  A protobuf frame starts with a big-endian length whose
 * first byte is 0 for any frame the server accepts (at most 64 MiB); an
 * HTTP request starts with an upper-case method name.  From then on the
 * connection speaks that protocol only.
 *
 * A request's way: decrypted bytes -> cs_http_next (http_conn.c: libhttp-
 * parser, size and method limits) -> cs_http_route (http_route.c: Vault path,
 * method and JSON body to a decoded Custos__Request) -> the same dispatch
 * function as a protobuf frame (authorization, audit, handlers) ->
 * cs_reply_send -> cs_http_render (http_json.c: Custos__Response to Vault's
 * JSON and status code).  Nothing here knows a key or a token's meaning.
 */
#ifndef CS_HTTP_H
#define CS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "custos.pb-c.h"

typedef struct cs_http cs_http;         /* one connection's parser */
typedef struct cs_http_req cs_http_req; /* how to render one request's answer */

/* Bounds of one request's head (request line + headers): 431 above. */
#define CS_HTTP_MAX_HEAD (16u * 1024u)
#define CS_HTTP_MAX_HEADERS 64u
/* Bound of the request target (path + query): 414 above. */
#define CS_HTTP_MAX_URL 4096u

/* 1 when the first decrypted byte of a connection starts an HTTP request. */
int cs_http_sniff(uint8_t first);

/* Body limits: body_preauth, or body_max while granted(ctx) says the
 * connection's token may send large requests (cs_reply_grant_frames). */
typedef struct cs_http_limits {
  size_t body_preauth;
  size_t body_max;
  int (*granted)(void *ctx);
  void *ctx;
} cs_http_limits;

/* NULL when out of memory. */
cs_http *cs_http_new(void);
void cs_http_free(cs_http *h);

typedef enum cs_http_kind {
  CS_HTTP_NONE = 0,  /* needs more bytes */
  CS_HTTP_DISPATCH,  /* ev.req to dispatch; render its answer with ev.ctx */
  CS_HTTP_ANSWER,    /* ev.out is a complete response to queue */
} cs_http_kind;

typedef struct cs_http_event {
  cs_http_kind kind;
  Custos__Request *req; /* DISPATCH: free with cs_wire_request_free */
  cs_http_req *ctx;     /* DISPATCH: pass to cs_http_render (or cs_http_req_free) */
  uint8_t *out;         /* ANSWER: malloc'd response bytes */
  size_t out_len;
  int close;            /* the connection closes after this response */
} cs_http_event;

/*
 * Parses bytes buf[*off..len) of the connection and advances *off past what
 * it consumed (whole requests or parts of one, which it keeps).  Stops after
 * one complete request.  Returns 0 with ev->kind NONE (need more), DISPATCH
 * or ANSWER; or a negative CS_E* code for a request that cannot be answered
 * on this connection (malformed, smuggling attempt, over a limit): ev is then
 * an ANSWER (400/413/414/431) with close set, and the caller stops reading.
 */
int cs_http_next(cs_http *h, const uint8_t *buf, size_t len, size_t *off,
                 const cs_http_limits *lim, cs_http_event *ev) __attribute__((warn_unused_result));

/* 1 while part of a request was received but not all of it (the 408 clock
 * runs); *since = the uv_now-style ms stamp given by the last cs_http_touch. */
int cs_http_in_message(const cs_http *h, uint64_t *since);
/* Stamps the start of a request with `now` if one began since the last call. */
void cs_http_touch(cs_http *h, uint64_t now);

/* Renders the answer to a dispatched request and frees ctx.  NULL when out
 * of memory.  *close: the connection closes after it. */
uint8_t *cs_http_render(cs_http_req *ctx, const Custos__Response *res, size_t *len, int *close);
void cs_http_req_free(cs_http_req *ctx);

/* A complete error response {"errors":[msg]} (msg NULL: "errors":[]) with
 * Connection: close when `close`.  NULL when out of memory. */
uint8_t *cs_http_error(int status, const char *msg, int close, size_t *len);

/* The answer to a plain-text HTTP request on the TLS port (Go's wording). */
extern const char cs_http_plaintext_answer[];

#endif
