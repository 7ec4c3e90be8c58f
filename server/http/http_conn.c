/*
 * http_conn: one connection's HTTP/1.1 request parser: libhttp-parser
 * (Debian's libhttp-parser-dev 2.9) plus custos's pre-authentication limits.
 *
 * It keeps the request being received (target, token header, body) in its
 * own buffers, because http_parser keeps no data, and stops after each
 * complete request (http_parser_pause), so pipelined requests are handed
 * over one at a time, in order, and the rest waits in the conn's receive
 * buffer.  Limits, each answered once and then the connection closes:
 *   - request head (request line + headers) above CS_HTTP_MAX_HEAD, or more
 *     than CS_HTTP_MAX_HEADERS headers: 431;
 *   - request target above CS_HTTP_MAX_URL: 414;
 *   - body (Content-Length, or the sum of the chunks) above the connection's
 *     limit (the protobuf frame limits: see cs_http_limits): 413, checked
 *     on the declared length (of the body, or of each chunk) before any of
 *     its bytes is stored;
 *   - anything http_parser refuses (bad syntax, Content-Length twice,
 *     Content-Length with Transfer-Encoding, bad chunk sizes), a second
 *     token header, an Upgrade or CONNECT: 400.
 * The time a request may take (408) is conn.c's timer.
 *
 * Vault's LIST method is not one http_parser knows: a request line that
 * starts with "LIST " is fed to the parser as "GET " and marked a LIST.
 * Buffers that held a token or a body are wiped before they are freed.
 */
#include "http_internal.h"

#include "cs_error.h"

#include <http_parser.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/platform_util.h>

/* A growable byte buffer, wiped when it grows or is freed. */
typedef struct hbuf {
  uint8_t *p;
  size_t len, cap;
} hbuf;

enum { HDR_OTHER, HDR_TOKEN, HDR_AUTHORIZATION, HDR_WRAP };

struct cs_http {
  http_parser parser;
  http_parser_settings settings;
  const cs_http_limits *lim; /* during cs_http_next only */
  hbuf url, field, token, auth, body;
  size_t head_bytes;
  unsigned nheaders;
  int cur_header;      /* HDR_* of the header whose value is being read */
  int in_value;        /* the last callback was a header value */
  int field_long;      /* the header name is longer than any we look at */
  int tokens_seen;     /* token headers (X-Vault-Token or Authorization) */
  int wrap;            /* X-Vault-Wrap-TTL was sent */
  int fail_status;     /* set by a callback that refused the request */
  const char *fail_msg;
  int is_list;         /* the method was LIST (fed as GET) */
  int started;         /* bytes of the current request were consumed */
  int stamped;
  uint64_t stamp;
  int complete;
};

static void hbuf_free(hbuf *b) {
  if (b->p != NULL) {
    mbedtls_platform_zeroize(b->p, b->cap);
    free(b->p);
  }
  b->p = NULL;
  b->len = b->cap = 0;
}

static void hbuf_reset(hbuf *b) {
  if (b->p != NULL)
    mbedtls_platform_zeroize(b->p, b->len);
  b->len = 0;
}

/* Appends n bytes (keeping a NUL after them); 0 or CS_ENOMEM. */
static int hbuf_add(hbuf *b, const char *s, size_t n) {
  if (b->cap - b->len <= n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n)
      cap *= 2;
    uint8_t *np = malloc(cap);
    if (np == NULL)
      return CS_ENOMEM;
    size_t len = b->len;
    if (len)
      memcpy(np, b->p, len);
    hbuf_free(b);
    b->p = np;
    b->len = len;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

static cs_http *of(http_parser *p) { return p->data; }

static int fail(cs_http *h, int status, const char *msg) {
  h->fail_status = status;
  h->fail_msg = msg;
  return -1;
}

/* Counts head bytes against CS_HTTP_MAX_HEAD (http_parser's own bound is a
 * process-wide setting, so the limit is kept here). */
static int head_add(cs_http *h, size_t n) {
  h->head_bytes += n;
  if (h->head_bytes > CS_HTTP_MAX_HEAD)
    return fail(h, 431, "request header fields too large");
  return 0;
}

static int on_message_begin(http_parser *p) {
  cs_http *h = of(p);
  h->started = 1;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  cs_http *h = of(p);
  if (head_add(h, n) < 0)
    return -1;
  if (h->url.len + n > CS_HTTP_MAX_URL)
    return fail(h, 414, "request target too long");
  return hbuf_add(&h->url, at, n) < 0 ? fail(h, 500, "out of memory") : 0;
}

/* The header whose name was just completed, by name. */
static int header_kind(const hbuf *f) {
  if (f->len == 13 && strncasecmp((const char *)f->p, "x-vault-token", 13) == 0)
    return HDR_TOKEN;
  if (f->len == 13 && strncasecmp((const char *)f->p, "authorization", 13) == 0)
    return HDR_AUTHORIZATION;
  if (f->len == 16 && strncasecmp((const char *)f->p, "x-vault-wrap-ttl", 16) == 0)
    return HDR_WRAP;
  return HDR_OTHER;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  cs_http *h = of(p);
  if (head_add(h, n) < 0)
    return -1;
  if (h->in_value || h->nheaders == 0) {
    if (++h->nheaders > CS_HTTP_MAX_HEADERS)
      return fail(h, 431, "too many header fields");
    hbuf_reset(&h->field);
    h->field_long = 0;
    h->in_value = 0;
  }
  /* Only short names matter; a long one is counted, not kept. */
  if (h->field_long || h->field.len + n > 64) {
    h->field_long = 1;
    return 0;
  }
  return hbuf_add(&h->field, at, n) < 0 ? fail(h, 500, "out of memory") : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  cs_http *h = of(p);
  if (head_add(h, n) < 0)
    return -1;
  if (!h->in_value) {
    h->in_value = 1;
    h->cur_header = h->field_long ? HDR_OTHER : header_kind(&h->field);
    if (h->cur_header == HDR_WRAP)
      h->wrap = 1;
    else if (h->cur_header != HDR_OTHER && ++h->tokens_seen > 1)
      return fail(h, 400, "more than one token header");
  }
  hbuf *dst = h->cur_header == HDR_TOKEN ? &h->token
              : h->cur_header == HDR_AUTHORIZATION ? &h->auth : NULL;
  if (dst != NULL && hbuf_add(dst, at, n) < 0)
    return fail(h, 500, "out of memory");
  return 0;
}

static size_t body_limit(const cs_http *h, size_t want) {
  const cs_http_limits *lim = h->lim;
  if (want <= lim->body_preauth)
    return lim->body_preauth;
  return lim->granted != NULL && lim->granted(lim->ctx) ? lim->body_max : lim->body_preauth;
}

static int on_headers_complete(http_parser *p) {
  cs_http *h = of(p);
  if (p->upgrade || p->method == HTTP_CONNECT)
    return fail(h, 400, "protocol upgrades are not supported");
  /* Refused before a byte of the body is stored. */
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > body_limit(h, p->content_length))
    return fail(h, 413, "request body too large");
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  cs_http *h = of(p);
  if (h->body.len + n > body_limit(h, h->body.len + n))
    return fail(h, 413, "request body too large");
  return hbuf_add(&h->body, at, n) < 0 ? fail(h, 500, "out of memory") : 0;
}

/* A chunk's declared size counts before its bytes arrive. */
static int on_chunk_header(http_parser *p) {
  cs_http *h = of(p);
  uint64_t want = h->body.len + p->content_length;
  if (want > body_limit(h, want))
    return fail(h, 413, "request body too large");
  return 0;
}

static int on_message_complete(http_parser *p) {
  cs_http *h = of(p);
  h->complete = 1;
  http_parser_pause(p, 1); /* one request at a time */
  return 0;
}

/* jansson keeps its own copies of the strings of a body (secret values,
 * shares, tokens) and frees them without wiping: from the first HTTP
 * connection on, every jansson block is wiped before it is freed.  The
 * hook is process-wide and harmless for the other jansson user (policy
 * documents); blocks allocated before it are plain malloc blocks too. */
static void wiping_free(void *p) {
  if (p == NULL)
    return;
  mbedtls_platform_zeroize(p, malloc_usable_size(p));
  free(p);
}

cs_http *cs_http_new(void) {
  static int hooked;
  if (!hooked) {
    json_set_alloc_funcs(malloc, wiping_free);
    hooked = 1;
  }
  cs_http *h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  http_parser_settings_init(&h->settings);
  h->settings.on_message_begin = on_message_begin;
  h->settings.on_url = on_url;
  h->settings.on_header_field = on_header_field;
  h->settings.on_header_value = on_header_value;
  h->settings.on_headers_complete = on_headers_complete;
  h->settings.on_body = on_body;
  h->settings.on_chunk_header = on_chunk_header;
  h->settings.on_message_complete = on_message_complete;
  return h;
}

static void reset_message(cs_http *h) {
  hbuf_reset(&h->url);
  hbuf_reset(&h->field);
  hbuf_reset(&h->token);
  hbuf_reset(&h->auth);
  hbuf_reset(&h->body);
  h->head_bytes = 0;
  h->nheaders = 0;
  h->cur_header = HDR_OTHER;
  h->in_value = 0;
  h->tokens_seen = 0;
  h->wrap = 0;
  h->is_list = 0;
  h->started = h->stamped = h->complete = 0;
}

void cs_http_free(cs_http *h) {
  if (h == NULL)
    return;
  hbuf_free(&h->url);
  hbuf_free(&h->field);
  hbuf_free(&h->token);
  hbuf_free(&h->auth);
  hbuf_free(&h->body);
  free(h);
}

int cs_http_sniff(uint8_t first) { return first >= 'A' && first <= 'Z'; }

int cs_http_in_message(const cs_http *h, uint64_t *since) {
  *since = h->stamp;
  return h->started && h->stamped && !h->complete;
}

void cs_http_touch(cs_http *h, uint64_t now) {
  if (h->started && !h->stamped) {
    h->stamped = 1;
    h->stamp = now;
  }
}

static hm_method method_of(const cs_http *h) {
  if (h->is_list)
    return HM_LIST;
  switch (h->parser.method) {
  case HTTP_GET: return HM_GET;
  case HTTP_HEAD: return HM_HEAD;
  case HTTP_PUT: return HM_PUT;
  case HTTP_POST: return HM_POST;
  case HTTP_DELETE: return HM_DELETE;
  default: return HM_OTHER;
  }
}

/* The token of the request: X-Vault-Token, else "Authorization: Bearer". */
static void find_token(const cs_http *h, const uint8_t **tok, size_t *len) {
  *tok = NULL;
  *len = 0;
  if (h->token.len > 0) {
    *tok = h->token.p;
    *len = h->token.len;
  } else if (h->auth.len > 7 && strncasecmp((const char *)h->auth.p, "bearer ", 7) == 0) {
    *tok = h->auth.p + 7;
    *len = h->auth.len - 7;
  }
}

static int answer_error(cs_http_event *ev, int status, const char *msg, int rc) {
  ev->kind = CS_HTTP_ANSWER;
  ev->close = 1;
  ev->out = cs_http_error(status, msg, 1, &ev->out_len);
  return rc;
}

/* Where the parser stopped with an error: its answer. */
static int parse_error(cs_http *h, cs_http_event *ev) {
  enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
  if (h->fail_status == 413)
    return answer_error(ev, 413, h->fail_msg, cs_error_set(CS_ETOOBIG, "%s", h->fail_msg));
  if (h->fail_status != 0)
    return answer_error(ev, h->fail_status, h->fail_msg,
                        cs_error_set(CS_EPROTO, "%s", h->fail_msg));
  if (e == HPE_HEADER_OVERFLOW)
    return answer_error(ev, 431, "request header fields too large",
                        cs_error_set(CS_EPROTO, "request header fields too large"));
  const char *why = e == HPE_UNEXPECTED_CONTENT_LENGTH
                        ? "Content-Length given twice or with Transfer-Encoding"
                        : http_errno_description(e);
  char msg[128];
  snprintf(msg, sizeof msg, "malformed HTTP request: %s", why);
  return answer_error(ev, 400, msg,
                      cs_error_set(CS_EPROTO, "malformed HTTP request: %s (%s)", why,
                                   http_errno_name(e)));
}

/* At the start of a request: Vault's LIST, which http_parser does not know,
 * goes in as GET.  Returns the bytes of buf to skip, 0 for none, or -1 when
 * too few bytes have arrived to tell. */
static int list_prefix(cs_http *h, const uint8_t *buf, size_t len) {
  static const char list[] = "LIST ";
  size_t n = len < 5 ? len : 5;
  if (memcmp(buf, list, n) != 0)
    return 0;
  if (n < 5)
    return -1;
  h->is_list = 1;
  /* Cannot fail: GET is a method and nothing is buffered yet. */
  http_parser_execute(&h->parser, &h->settings, "GET ", 4);
  return 5;
}

/* The complete request in h, routed. */
static int finish_request(cs_http *h, cs_http_event *ev) {
  http_msg m;
  memset(&m, 0, sizeof m);
  m.method = method_of(h);
  m.url = h->url.p != NULL ? (const char *)h->url.p : "";
  find_token(h, &m.token, &m.token_len);
  m.body = h->body.p;
  m.body_len = h->body.len;
  m.close = !http_should_keep_alive(&h->parser);
  m.wrap = h->wrap;
  int rc = cs_http_route(&m, ev);
  reset_message(h);
  http_parser_pause(&h->parser, 0);
  if (rc < 0)
    return answer_error(ev, 500, "out of memory", rc);
  return 0;
}

int cs_http_next(cs_http *h, const uint8_t *buf, size_t len, size_t *off,
                 const cs_http_limits *lim, cs_http_event *ev) {
  memset(ev, 0, sizeof *ev);
  if (*off >= len)
    return 0;
  h->lim = lim;
  if (!h->started) {
    int skip = list_prefix(h, buf + *off, len - *off);
    if (skip < 0)
      return 0;
    *off += (size_t)skip;
    if (*off >= len)
      return 0; /* a length of 0 would tell http_parser the stream ended */
  }
  size_t n = http_parser_execute(&h->parser, &h->settings, (const char *)buf + *off, len - *off);
  *off += n;
  h->lim = NULL;
  enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
  if (h->complete && (e == HPE_OK || e == HPE_PAUSED))
    return finish_request(h, ev);
  if (e != HPE_OK)
    return parse_error(h, ev);
  return 0;
}
