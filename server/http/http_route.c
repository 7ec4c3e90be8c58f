/*
 * http_route: a Vault request (method, /v1/ path, query, JSON body, token)
 * to the protobuf Request custos serves, or to an answer made here (400 for
 * a bad body, 404 for an unknown path, 405 for a method the path does not
 * take, the static mount tables).
 *
 * The request is built on the stack, packed and decoded again with
 * cs_wire_decode_request: so it reaches dispatch exactly as a protobuf
 * frame would, through the same validation (UTF-8, NULs, sizes), and is
 * freed by cs_wire_request_free like any other.  The packed copy is wiped.
 * The KV v1 and v2 GET, the hot path, are copied instead with the same
 * checks (direct_copy: the round trip showed in their profile).
 *
 * Bodies are parsed with jansson; jansson refuses invalid UTF-8 and (without
 * JSON_ALLOW_NUL) "\u0000" in strings, and duplicate keys are refused too,
 * so a body means one thing to every reader.  A missing or empty body is an
 * empty object (hvac sends Content-Length: 0 on PUT/POST without data).
 */
#include "http_internal.h"

#include "cs_error.h"
#include "http_kv2.h"
#include "wire.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "encoding.h"
#include <mbedtls/platform_util.h>

#define KV_MOUNT "secret/"

/* ---------------------------------------------------------------- query */

typedef struct query {
  int list;
  int standbyok;
  int activecode, standbycode, sealedcode, uninitcode, perfstandbycode;
  int bad; /* a health code that is not a status code */
  char nonce[64]; /* ?nonce= (DELETE sys/generate-root/attempt) */
  char format[16]; /* ?format= (sys/metrics); longer values are cut, and refused */
} query;

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (cap > n).  -1 on a bad escape or a NUL. */
static int pct_decode(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c == 0)
      return -1;
    out[o++] = (char)c;
  }
  out[o] = 0;
  return 0;
}

/* Go's strconv.ParseBool, as Vault reads ?list= and ?standbyok=. */
static int parse_bool(const char *v, int *out) {
  static const char *const t[] = {"1", "t", "T", "true", "True", "TRUE"};
  static const char *const f[] = {"0", "f", "F", "false", "False", "FALSE"};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (strcmp(v, t[i]) == 0)
      return *out = 1, 0;
    if (strcmp(v, f[i]) == 0)
      return *out = 0, 0;
  }
  return -1;
}

static int parse_code(const char *v, int *out) {
  char *end;
  long n = strtol(v, &end, 10);
  if (*v == 0 || *end != 0 || n < 100 || n > 599)
    return -1;
  *out = (int)n;
  return 0;
}

/* One name=value of the query.  Unknown names are ignored, as Vault does. */
static void query_param(query *q, const char *k, const char *v) {
  int rc = 0;
  if (strcmp(k, "list") == 0)
    rc = parse_bool(v, &q->list);
  else if (strcmp(k, "standbyok") == 0)
    rc = parse_bool(*v ? v : "true", &q->standbyok);
  else if (strcmp(k, "activecode") == 0)
    rc = parse_code(v, &q->activecode);
  else if (strcmp(k, "standbycode") == 0)
    rc = parse_code(v, &q->standbycode);
  else if (strcmp(k, "sealedcode") == 0)
    rc = parse_code(v, &q->sealedcode);
  else if (strcmp(k, "uninitcode") == 0)
    rc = parse_code(v, &q->uninitcode);
  else if (strcmp(k, "perfstandbycode") == 0)
    rc = parse_code(v, &q->perfstandbycode);
  else if (strcmp(k, "nonce") == 0)
    snprintf(q->nonce, sizeof q->nonce, "%s", v);
  else if (strcmp(k, "format") == 0) {
    /* Anything but a short name is refused later as unsupported. */
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof q->format)
      memcpy(q->format, "?", 2);
    else
      memcpy(q->format, v, n + 1);
  }
  if (rc < 0)
    q->bad = 1;
}

static int parse_query(const char *s, query *q) {
  memset(q, 0, sizeof *q);
  q->activecode = 200;
  q->standbycode = 429;
  q->sealedcode = 503;
  q->uninitcode = 501;
  q->perfstandbycode = 473;
  char k[64], v[64];
  while (*s) {
    const char *amp = strchr(s, '&');
    size_t n = amp ? (size_t)(amp - s) : strlen(s);
    const char *eq = memchr(s, '=', n);
    size_t kn = eq ? (size_t)(eq - s) : n, vn = eq ? n - kn - 1 : 0;
    if (kn < sizeof k && vn < sizeof v) {
      if (pct_decode(s, kn, k) < 0 || pct_decode(eq ? eq + 1 : s, vn, v) < 0)
        return -1;
      query_param(q, k, v);
    }
    s += n + (amp ? 1 : 0);
  }
  return q->bad ? -1 : 0;
}

/* ---------------------------------------------------------------- answers */

static int answer(cs_http_event *ev, const http_msg *m, int status, const char *msg) {
  ev->kind = CS_HTTP_ANSWER;
  ev->close = m->close;
  ev->out = cs_http_error(status, msg, m->close, &ev->out_len);
  return ev->out != NULL ? 0 : CS_ENOMEM;
}

static int not_found(cs_http_event *ev, const http_msg *m) { return answer(ev, m, 404, NULL); }

static int bad_method(cs_http_event *ev, const http_msg *m) {
  return answer(ev, m, 405, "unsupported operation");
}

/*
 * The two hot reads (KV v1 and v2 GET: one string, the path) skip the pack
 * and decode round trip: the request is copied into one block of
 * cs_wire_request_new (freed, and wiped, by cs_wire_request_free like a
 * decoded one), after the checks cs_wire_decode_request would make
 * of it: an operation is set, and the one string field is valid UTF-8
 * without a NUL.  A path that fails the check takes the round trip, which
 * refuses it with the decoder's own message.  1: copied into *out; 0: not
 * one of these (or refused: use the round trip); CS_ENOMEM.
 */
static int direct_copy(const Custos__Request *req, Custos__Request **out) {
  const char *path;
  if (req->op_case == CUSTOS__REQUEST__OP_KV_GET)
    path = req->kv_get->path;
  else if (req->op_case == CUSTOS__REQUEST__OP_KV2_GET)
    path = req->kv2_get->path;
  else
    return 0;
  if (req->id != 0 || req->base.n_unknown_fields != 0)
    return 0;
  size_t plen = strlen(path);
  if (cs_wire_string_check((const uint8_t *)path, plen) != 0)
    return 0;
  /* One block: the request, its operation, the token, the path. */
  size_t opsz = req->op_case == CUSTOS__REQUEST__OP_KV_GET ? sizeof(Custos__KvGetReq)
                                                           : sizeof(Custos__Kv2GetReq);
  opsz = (opsz + 15) & ~(size_t)15;
  if (req->token.len > SIZE_MAX / 2 || plen > SIZE_MAX / 4)
    return CS_ENOMEM;
  void *tail;
  Custos__Request *r = cs_wire_request_new(opsz + req->token.len + plen + 1, &tail);
  if (r == NULL)
    return CS_ENOMEM;
  void *op = tail;
  uint8_t *tok = req->token.len ? (uint8_t *)tail + opsz : NULL;
  char *p = (char *)tail + opsz + req->token.len;
  memcpy(p, path, plen + 1);
  if (tok != NULL) {
    memcpy(tok, req->token.data, req->token.len);
    r->token.data = tok;
    r->token.len = req->token.len;
  }
  r->op_case = req->op_case;
  if (req->op_case == CUSTOS__REQUEST__OP_KV_GET) {
    Custos__KvGetReq *g = op;
    custos__kv_get_req__init(g);
    g->path = p;
    r->kv_get = g;
  } else {
    Custos__Kv2GetReq *g = op;
    custos__kv2_get_req__init(g);
    g->path = p;
    g->version = req->kv2_get->version;
    r->kv2_get = g;
  }
  *out = r;
  return 1;
}

/* Packs the request built on the stack, decodes it like a frame (or, for
 * the hot reads, copies it: direct_copy), and hands it over with its
 * rendering context. */
static int emit(cs_http_event *ev, const http_msg *m, Custos__Request *req, http_view view,
                const query *q) {
  if (m->token != NULL) {
    req->token.data = (uint8_t *)m->token;
    req->token.len = m->token_len;
  }
  /* Most requests pack into a few hundred bytes: a stack buffer spares
   * the allocation (a body near the frame limit still takes the heap). */
  Custos__Request *dec = NULL;
  int rc = direct_copy(req, &dec);
  if (rc < 0)
    return rc;
  if (rc == 0) {
    uint8_t small[2048];
    size_t len = custos__request__get_packed_size(req);
    uint8_t *buf = len <= sizeof small ? small : malloc(len);
    if (buf == NULL)
      return CS_ENOMEM;
    custos__request__pack(req, buf);
    rc = cs_wire_decode_request(buf, len, &dec);
    mbedtls_platform_zeroize(buf, len);
    if (buf != small)
      free(buf);
    if (rc < 0)
      return answer(ev, m, 400, cs_error_message(rc));
  }
  /* The context and the request target (for a standby's 307) in one block. */
  size_t ulen = strlen(m->url);
  cs_http_req *ctx = calloc(1, sizeof *ctx + ulen + 1);
  if (ctx == NULL) {
    cs_wire_request_free(dec);
    return CS_ENOMEM;
  }
  ctx->target = (char *)(ctx + 1);
  memcpy(ctx->target, m->url, ulen + 1);
  ctx->view = view;
  ctx->head = m->method == HM_HEAD;
  ctx->close = m->close;
  ctx->activecode = q->activecode;
  ctx->standbycode = q->standbycode;
  ctx->sealedcode = q->sealedcode;
  ctx->uninitcode = q->uninitcode;
  ctx->perfstandbycode = q->perfstandbycode;
  ctx->standbyok = q->standbyok;
  ev->kind = CS_HTTP_DISPATCH;
  ev->req = dec;
  ev->ctx = ctx;
  ev->close = m->close;
  return 0;
}

/* ---------------------------------------------------------------- bodies */

/* The body as a JSON object (an empty body is {}); NULL after answering 400. */
static json_t *body_object(cs_http_event *ev, const http_msg *m, int *rc) {
  json_error_t err;
  json_t *o = m->body_len == 0 ? json_object()
                               : json_loadb((const char *)m->body, m->body_len,
                                            JSON_REJECT_DUPLICATES, &err);
  if (o != NULL && json_is_object(o))
    return o;
  json_decref(o);
  *rc = answer(ev, m, 400, m->body_len == 0 || o != NULL ? "request body must be a JSON object"
                                                         : "failed to parse JSON input");
  return NULL;
}

/* Field k as a string (absent or null: NULL, fine); -1 on another type. */
static int get_str(json_t *o, const char *k, const char **out) {
  json_t *v = json_object_get(o, k);
  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return -1;
  *out = json_string_value(v);
  return 0;
}

static int get_bool(json_t *o, const char *k, int *out) {
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return -1;
  *out = json_is_true(v);
  return 0;
}

static int get_uint(json_t *o, const char *k, uint64_t max, uint64_t *out) {
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
    return -1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

/* A duration as Vault takes it: seconds as a number or a string ("3600"),
 * or units ("1h30m", "45s", "2d"), largest first (common/duration.h). */
static int get_duration(json_t *o, const char *k, uint64_t *out, int *given) {
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  *given = 1;
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 0)
      return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  if (!json_is_string(v))
    return -1;
  /* common/duration.c: also refuses what would overflow (this copy used to
   * wrap a sum of large groups). */
  if (cs_duration_parse(json_string_value(v), out) != 0) {
    cs_error_clear();
    return -1;
  }
  return 0;
}

/* An unseal or rekey share: hex first, then standard base64, as Vault.
 * Both decoders are common/encoding.h's: constant time in the digits (the
 * hex loop that was here returned at the first bad digit). */
static int decode_key(const char *s, uint8_t *out, size_t cap, size_t *len) {
  if (s[0] != '\0' && (cs_hex_decode(s, out, cap, len) == 0 || cs_b64_decode(s, out, cap, len) == 0) &&
      *len > 0)
    return 0;
  cs_error_clear();
  mbedtls_platform_zeroize(out, cap);
  return -1;
}

#define KEY_CAP 1024

/* ---------------------------------------------------------------- sys */

static int route_status(cs_http_event *ev, const http_msg *m, const query *q, http_view view) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__StatusReq s = CUSTOS__STATUS_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_STATUS;
  req.status = &s;
  return emit(ev, m, &req, view, q);
}

static int route_init(cs_http_event *ev, const http_msg *m, const query *q) {
  if (m->method == HM_GET)
    return route_status(ev, m, q, HV_INIT_STATUS);
  if (m->method != HM_PUT && m->method != HM_POST)
    return bad_method(ev, m);
  int rc = 0;
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  uint64_t shares = 0, threshold = 0;
  const char *pgp = NULL;
  if (get_uint(o, "secret_shares", 255, &shares) < 0 ||
      get_uint(o, "secret_threshold", 255, &threshold) < 0) {
    rc = answer(ev, m, 400, "secret_shares and secret_threshold must be integers from 1 to 255");
  } else if (get_str(o, "root_token_pgp_key", &pgp) < 0 || (pgp != NULL && *pgp) ||
             (json_object_get(o, "pgp_keys") && !json_is_null(json_object_get(o, "pgp_keys")))) {
    rc = answer(ev, m, 400, "PGP-encrypted keys are not supported by custos");
  } else {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__InitReq in = CUSTOS__INIT_REQ__INIT;
    in.shares = (uint32_t)shares;
    in.threshold = (uint32_t)threshold;
    req.op_case = CUSTOS__REQUEST__OP_INIT;
    req.init = &in;
    rc = emit(ev, m, &req, HV_INIT, q);
  }
  json_decref(o);
  return rc;
}

static int route_unseal(cs_http_event *ev, const http_msg *m, const query *q) {
  if (m->method != HM_PUT && m->method != HM_POST)
    return bad_method(ev, m);
  int rc = 0, reset = 0, cluster = 0;
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  const char *key = NULL, *nonce = NULL;
  uint8_t share[KEY_CAP];
  size_t len = 0;
  /* "nonce" is custos's: a reset names the unseal it discards (see
   * docs/http-api.md), so one client cannot throw away another's shares. */
  if (get_str(o, "key", &key) < 0 || get_bool(o, "reset", &reset) < 0 ||
      get_str(o, "nonce", &nonce) < 0 || get_bool(o, "cluster", &cluster) < 0) {
    rc = answer(ev, m, 400, "key and nonce must be strings, reset and cluster booleans");
  } else if (!reset && key == NULL) {
    rc = answer(ev, m, 400, "'key' must be specified in request body as JSON, or 'reset' set to true");
  } else if (!reset && decode_key(key, share, sizeof share, &len) < 0) {
    rc = answer(ev, m, 400, "'key' must be a valid hex or base64 string");
  } else {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__UnsealReq u = CUSTOS__UNSEAL_REQ__INIT;
    u.reset = reset;
    u.cluster = cluster; /* custos's: unseal --cluster (docs/ceremony.md) */
    u.nonce = (char *)(nonce ? nonce : "");
    u.key.data = share;
    u.key.len = reset ? 0 : len;
    req.op_case = CUSTOS__REQUEST__OP_UNSEAL;
    req.unseal = &u;
    rc = emit(ev, m, &req, HV_SEAL_STATUS, q);
  }
  mbedtls_platform_zeroize(share, sizeof share);
  json_decref(o);
  return rc;
}

/* An operation without arguments (seal, rotate, key status...). */
static int route_plain(cs_http_event *ev, const http_msg *m, const query *q, int op,
                       http_view view) {
  static const Custos__Empty none = CUSTOS__EMPTY__INIT;
  /* Every argument-less request message is empty: one stands for all. */
  Custos__Request req = CUSTOS__REQUEST__INIT;
  req.op_case = (Custos__Request__OpCase)op;
  switch (op) {
  case CUSTOS__REQUEST__OP_SEAL: req.seal = (Custos__SealReq *)&none; break;
  case CUSTOS__REQUEST__OP_ROTATE: req.rotate = (Custos__RotateReq *)&none; break;
  case CUSTOS__REQUEST__OP_KEY_STATUS: req.key_status = (Custos__KeyStatusReq *)&none; break;
  case CUSTOS__REQUEST__OP_REKEY_STATUS: req.rekey_status = (Custos__RekeyStatusReq *)&none; break;
  case CUSTOS__REQUEST__OP_REKEY_CANCEL: req.rekey_cancel = (Custos__RekeyCancelReq *)&none; break;
  case CUSTOS__REQUEST__OP_REKEY_BACKUP: req.rekey_backup = (Custos__RekeyBackupReq *)&none; break;
  case CUSTOS__REQUEST__OP_REKEY_BACKUP_DELETE:
    req.rekey_backup_delete = (Custos__RekeyBackupDeleteReq *)&none;
    break;
  case CUSTOS__REQUEST__OP_POLICY_LIST: req.policy_list = (Custos__PolicyListReq *)&none; break;
  case CUSTOS__REQUEST__OP_RAFT_LIST_PEERS:
    req.raft_list_peers = (Custos__RaftListPeersReq *)&none;
    break;
  case CUSTOS__REQUEST__OP_METRICS: req.metrics = (Custos__MetricsReq *)&none; break;
  default: return CS_EINTERNAL;
  }
  return emit(ev, m, &req, view, q);
}

static int is_write(const http_msg *m) { return m->method == HM_PUT || m->method == HM_POST; }

/* Vault's raft snapshot endpoints on custos's snapshot ops: GET answers the
 * whole file (SnapshotSaveReq.whole: one chunk, HTTP only); POST/PUT
 * uploads the raw body as one SnapshotRestoreReq chunk and commits it
 * (snapshot-force: force).  The op checks the file (corrupt: 400). */
static int route_snapshot(cs_http_event *ev, const http_msg *m, const query *q, int force) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  if (m->method == HM_GET && !force) {
    Custos__SnapshotSaveReq sv = CUSTOS__SNAPSHOT_SAVE_REQ__INIT;
    sv.whole = 1;
    req.op_case = CUSTOS__REQUEST__OP_SNAPSHOT_SAVE;
    req.snapshot_save = &sv;
    return emit(ev, m, &req, HV_SNAPSHOT, q);
  }
  if (!is_write(m))
    return bad_method(ev, m);
  Custos__SnapshotRestoreReq rr = CUSTOS__SNAPSHOT_RESTORE_REQ__INIT;
  rr.data.data = (uint8_t *)m->body;
  rr.data.len = m->body_len;
  rr.commit = 1;
  rr.force = force;
  req.op_case = CUSTOS__REQUEST__OP_SNAPSHOT_RESTORE;
  req.snapshot_restore = &rr;
  return emit(ev, m, &req, HV_NO_CONTENT, q);
}

static int route_rotate_config(cs_http_event *ev, const http_msg *m, const query *q) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RotateConfigReq rc_ = CUSTOS__ROTATE_CONFIG_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_ROTATE_CONFIG;
  req.rotate_config = &rc_;
  if (m->method == HM_GET)
    return emit(ev, m, &req, HV_ROTATE_CONFIG, q);
  if (!is_write(m))
    return bad_method(ev, m);
  int rc = 0, enabled = -1, given = 0;
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  uint64_t maxops = UINT64_MAX, interval = 0;
  json_t *e = json_object_get(o, "enabled");
  if ((e != NULL && !json_is_null(e) && !json_is_boolean(e)) ||
      get_uint(o, "max_operations", INT64_MAX, &maxops) < 0 ||
      get_duration(o, "interval", &interval, &given) < 0) {
    json_decref(o);
    return answer(ev, m, 400, "enabled must be a boolean, max_operations an integer and "
                              "interval a duration");
  }
  if (e != NULL && json_is_boolean(e))
    enabled = json_is_true(e);
  rc_.set = 1;
  if (enabled >= 0) {
    rc_.enabled_opt_case = CUSTOS__ROTATE_CONFIG_REQ__ENABLED_OPT_ENABLED;
    rc_.enabled = enabled;
  }
  if (maxops != UINT64_MAX) {
    rc_.max_operations_opt_case = CUSTOS__ROTATE_CONFIG_REQ__MAX_OPERATIONS_OPT_MAX_OPERATIONS;
    rc_.max_operations = maxops;
  }
  if (given) {
    rc_.interval_opt_case = CUSTOS__ROTATE_CONFIG_REQ__INTERVAL_OPT_INTERVAL_SECONDS;
    rc_.interval_seconds = interval;
  }
  json_decref(o);
  return emit(ev, m, &req, HV_NO_CONTENT, q);
}

/* sys/rekey/update and sys/rekey/verify: {"key","nonce"}. */
static int route_rekey_share(cs_http_event *ev, const http_msg *m, const query *q, int verify) {
  int rc = 0;
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  const char *key = NULL, *nonce = NULL;
  uint8_t share[KEY_CAP];
  size_t len = 0;
  if (get_str(o, "key", &key) < 0 || get_str(o, "nonce", &nonce) < 0 || key == NULL) {
    rc = answer(ev, m, 400, "key and nonce must be strings");
  } else if (decode_key(key, share, sizeof share, &len) < 0) {
    rc = answer(ev, m, 400, "'key' must be a valid hex or base64 string");
  } else {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__RekeyUpdateReq u = CUSTOS__REKEY_UPDATE_REQ__INIT;
    Custos__RekeyVerifyReq v = CUSTOS__REKEY_VERIFY_REQ__INIT;
    if (verify) {
      v.nonce = (char *)(nonce ? nonce : "");
      v.key.data = share;
      v.key.len = len;
      req.op_case = CUSTOS__REQUEST__OP_REKEY_VERIFY;
      req.rekey_verify = &v;
    } else {
      u.nonce = (char *)(nonce ? nonce : "");
      u.key.data = share;
      u.key.len = len;
      req.op_case = CUSTOS__REQUEST__OP_REKEY_UPDATE;
      req.rekey_update = &u;
    }
    rc = emit(ev, m, &req, verify ? HV_REKEY_VERIFY : HV_REKEY_UPDATE, q);
  }
  mbedtls_platform_zeroize(share, sizeof share);
  json_decref(o);
  return rc;
}

static int route_rekey(cs_http_event *ev, const http_msg *m, const query *q, const char *rest) {
  if (strcmp(rest, "init") == 0) {
    if (m->method == HM_GET)
      return route_plain(ev, m, q, CUSTOS__REQUEST__OP_REKEY_STATUS, HV_REKEY_STATUS);
    if (m->method == HM_DELETE)
      return route_plain(ev, m, q, CUSTOS__REQUEST__OP_REKEY_CANCEL, HV_NO_CONTENT);
    if (!is_write(m))
      return bad_method(ev, m);
    int rc = 0, verify = 0;
    json_t *o = body_object(ev, m, &rc);
    if (o == NULL)
      return rc;
    uint64_t shares = 0, threshold = 0;
    int backup = 0;
    /* "recipients": age recipients, one per new share (custos's answer to
     * Vault's pgp_keys); the server checks each one. */
    json_t *rcpt = json_object_get(o, "recipients");
    size_t nr = json_is_array(rcpt) ? json_array_size(rcpt) : 0;
    ProtobufCBinaryData rv[255];
    int bad_rcpt = rcpt != NULL && !json_is_null(rcpt) && (!json_is_array(rcpt) || nr > 255);
    for (size_t i = 0; !bad_rcpt && i < nr; i++) {
      json_t *e = json_array_get(rcpt, i);
      if (!json_is_string(e))
        bad_rcpt = 1;
      else
        rv[i] = (ProtobufCBinaryData){.data = (uint8_t *)json_string_value(e),
                                      .len = json_string_length(e)}; /* a \u0000 stays in */
    }
    if (get_uint(o, "secret_shares", 255, &shares) < 0 ||
        get_uint(o, "secret_threshold", 255, &threshold) < 0 ||
        get_bool(o, "require_verification", &verify) < 0 || get_bool(o, "backup", &backup) < 0) {
      rc = answer(ev, m, 400, "secret_shares and secret_threshold must be integers, "
                              "require_verification and backup booleans");
    } else if (bad_rcpt) {
      rc = answer(ev, m, 400, "recipients must be an array of at most 255 age recipients (strings)");
    } else if (json_object_get(o, "pgp_keys") && !json_is_null(json_object_get(o, "pgp_keys"))) {
      rc = answer(ev, m, 400, "PGP-encrypted keys are not supported by custos: give age "
                              "recipients in \"recipients\"");
    } else {
      Custos__Request req = CUSTOS__REQUEST__INIT;
      Custos__RekeyInitReq in = CUSTOS__REKEY_INIT_REQ__INIT;
      in.shares = (uint32_t)shares;
      in.threshold = (uint32_t)threshold;
      in.verify = verify;
      in.n_recipients = nr;
      in.recipients = rv;
      in.backup = backup;
      req.op_case = CUSTOS__REQUEST__OP_REKEY_INIT;
      req.rekey_init = &in;
      rc = emit(ev, m, &req, HV_REKEY_STATUS, q);
    }
    json_decref(o);
    return rc;
  }
  if (strcmp(rest, "update") == 0)
    return is_write(m) ? route_rekey_share(ev, m, q, 0) : bad_method(ev, m);
  if (strcmp(rest, "backup") == 0) {
    if (m->method == HM_GET)
      return route_plain(ev, m, q, CUSTOS__REQUEST__OP_REKEY_BACKUP, HV_REKEY_BACKUP);
    if (m->method == HM_DELETE)
      return route_plain(ev, m, q, CUSTOS__REQUEST__OP_REKEY_BACKUP_DELETE, HV_NO_CONTENT);
    return bad_method(ev, m);
  }
  if (strcmp(rest, "verify") == 0) {
    if (m->method == HM_GET)
      return route_plain(ev, m, q, CUSTOS__REQUEST__OP_REKEY_STATUS, HV_REKEY_VERIFY);
    return is_write(m) ? route_rekey_share(ev, m, q, 1) : bad_method(ev, m);
  }
  return not_found(ev, m);
}

/*
 * sys/generate-root/attempt (GET status, PUT start, DELETE cancel) and
 * sys/generate-root/update (PUT {"key","nonce"}).  A start takes "otp" (as
 * many characters as a token), or "recipient" (an age recipient, custos's
 * counterpart of Vault's pgp_key), or neither: the server makes the OTP
 * and returns it once (Vault 1.10+).  A cancel must name the attempt by
 * its nonce ({"nonce"} in the body or ?nonce=), unlike Vault's: anyone can
 * reach this endpoint, and only those given the nonce may end an attempt.
 */
static int route_genroot(cs_http_event *ev, const http_msg *m, const query *q, const char *rest) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  int rc = 0;
  if (strcmp(rest, "attempt") == 0 && m->method == HM_GET) {
    Custos__GenerateRootStatusReq st = CUSTOS__GENERATE_ROOT_STATUS_REQ__INIT;
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_STATUS;
    req.generate_root_status = &st;
    return emit(ev, m, &req, HV_GENROOT, q);
  }
  if (strcmp(rest, "attempt") != 0 && strcmp(rest, "update") != 0)
    return not_found(ev, m);
  int del = strcmp(rest, "attempt") == 0 && m->method == HM_DELETE;
  if (!del && !is_write(m))
    return bad_method(ev, m);
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  const char *otp = NULL, *recipient = NULL, *pgp = NULL, *key = NULL, *nonce = NULL;
  uint8_t share[KEY_CAP];
  size_t len = 0;
  if (get_str(o, "otp", &otp) < 0 || get_str(o, "recipient", &recipient) < 0 ||
      get_str(o, "pgp_key", &pgp) < 0 || get_str(o, "key", &key) < 0 ||
      get_str(o, "nonce", &nonce) < 0) {
    rc = answer(ev, m, 400, "otp, recipient, key and nonce must be strings");
  } else if (del) {
    Custos__GenerateRootCancelReq c = CUSTOS__GENERATE_ROOT_CANCEL_REQ__INIT;
    c.nonce = (char *)(nonce ? nonce : q->nonce);
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_CANCEL;
    req.generate_root_cancel = &c;
    rc = emit(ev, m, &req, HV_NO_CONTENT, q);
  } else if (strcmp(rest, "attempt") == 0) {
    if (pgp != NULL && pgp[0] != '\0') {
      rc = answer(ev, m, 400, "PGP keys are not supported by custos: give an age recipient in "
                              "\"recipient\"");
    } else {
      Custos__GenerateRootInitReq in = CUSTOS__GENERATE_ROOT_INIT_REQ__INIT;
      in.otp = (char *)(otp ? otp : "");
      in.recipient = (char *)(recipient ? recipient : "");
      in.generate_otp = (otp == NULL || !otp[0]) && (recipient == NULL || !recipient[0]);
      req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_INIT;
      req.generate_root_init = &in;
      rc = emit(ev, m, &req, HV_GENROOT, q);
    }
  } else if (key == NULL || decode_key(key, share, sizeof share, &len) < 0) {
    rc = answer(ev, m, 400, "'key' must be a valid hex or base64 string");
  } else {
    Custos__GenerateRootUpdateReq u = CUSTOS__GENERATE_ROOT_UPDATE_REQ__INIT;
    u.nonce = (char *)(nonce ? nonce : "");
    u.key.data = share;
    u.key.len = len;
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_UPDATE;
    req.generate_root_update = &u;
    rc = emit(ev, m, &req, HV_GENROOT, q);
  }
  mbedtls_platform_zeroize(share, sizeof share);
  json_decref(o);
  return rc;
}

static int route_policy(cs_http_event *ev, const http_msg *m, const query *q, const char *name) {
  int list = m->method == HM_LIST || (m->method == HM_GET && q->list);
  if (*name == 0) {
    if (!list)
      return bad_method(ev, m);
    return route_plain(ev, m, q, CUSTOS__REQUEST__OP_POLICY_LIST, HV_KEYS);
  }
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyReadReq rd = CUSTOS__POLICY_READ_REQ__INIT;
  Custos__PolicyDeleteReq del = CUSTOS__POLICY_DELETE_REQ__INIT;
  Custos__PolicyWriteReq wr = CUSTOS__POLICY_WRITE_REQ__INIT;
  switch (m->method) {
  case HM_GET:
    rd.name = (char *)name;
    req.op_case = CUSTOS__REQUEST__OP_POLICY_READ;
    req.policy_read = &rd;
    return emit(ev, m, &req, HV_POLICY_READ, q);
  case HM_DELETE:
    del.name = (char *)name;
    req.op_case = CUSTOS__REQUEST__OP_POLICY_DELETE;
    req.policy_delete = &del;
    return emit(ev, m, &req, HV_NO_CONTENT, q);
  case HM_PUT:
  case HM_POST: {
    int rc = 0;
    json_t *o = body_object(ev, m, &rc);
    if (o == NULL)
      return rc;
    const char *doc = NULL;
    if (get_str(o, "policy", &doc) < 0 || doc == NULL) {
      rc = answer(ev, m, 400, "'policy' parameter not supplied or empty");
    } else {
      wr.name = (char *)name;
      wr.document = (char *)doc;
      req.op_case = CUSTOS__REQUEST__OP_POLICY_WRITE;
      req.policy_write = &wr;
      rc = emit(ev, m, &req, HV_NO_CONTENT, q);
    }
    json_decref(o);
    return rc;
  }
  default:
    return bad_method(ev, m);
  }
}

/* The one KV mount, as `vault secrets list` and the kv preflight see it. */
static int route_ui_mount(cs_http_event *ev, const http_msg *m, const char *path) {
  if (m->method != HM_GET)
    return bad_method(ev, m);
  int v2 = strncmp(path, "kv", 2) == 0 && (path[2] == 0 || path[2] == '/');
  if (!v2 && (strncmp(path, "secret", 6) != 0 || (path[6] != 0 && path[6] != '/')))
    return answer(ev, m, 403, "preflight capability check returned 403, please ensure "
                              "client's policies grant access to the path");
  if (v2) {
    static const char body2[] =
        "{\"request_id\":\"\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
        "\"data\":{\"path\":\"kv/\",\"type\":\"kv\",\"description\":\"custos versioned "
        "key/value store\",\"options\":{\"version\":\"2\"},\"config\":{\"default_lease_ttl\":0,"
        "\"max_lease_ttl\":0},\"local\":false,\"seal_wrap\":false,\"external_entropy_access\":false},"
        "\"wrap_info\":null,\"warnings\":null,\"auth\":null}";
    ev->kind = CS_HTTP_ANSWER;
    ev->close = m->close;
    ev->out = cs_http_response(200, body2, sizeof body2 - 1, 0, m->close, NULL, &ev->out_len);
    return ev->out != NULL ? 0 : CS_ENOMEM;
  }
  static const char body[] =
      "{\"request_id\":\"\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
      "\"data\":{\"path\":\"secret/\",\"type\":\"kv\",\"description\":\"custos key/value store\","
      "\"options\":{\"version\":\"1\"},\"config\":{\"default_lease_ttl\":0,\"max_lease_ttl\":0},"
      "\"local\":false,\"seal_wrap\":false,\"external_entropy_access\":false},"
      "\"wrap_info\":null,\"warnings\":null,\"auth\":null}";
  ev->kind = CS_HTTP_ANSWER;
  ev->close = m->close;
  ev->out = cs_http_response(200, body, sizeof body - 1, 0, m->close, NULL, &ev->out_len);
  return ev->out != NULL ? 0 : CS_ENOMEM;
}

static int route_sys(cs_http_event *ev, const http_msg *m, const query *q, const char *p) {
  if (strcmp(p, "health") == 0)
    return m->method == HM_GET || m->method == HM_HEAD ? route_status(ev, m, q, HV_HEALTH)
                                                       : bad_method(ev, m);
  if (strcmp(p, "seal-status") == 0)
    return m->method == HM_GET ? route_status(ev, m, q, HV_SEAL_STATUS) : bad_method(ev, m);
  if (strcmp(p, "leader") == 0)
    return m->method == HM_GET ? route_status(ev, m, q, HV_LEADER) : bad_method(ev, m);
  if (strcmp(p, "init") == 0)
    return route_init(ev, m, q);
  if (strcmp(p, "unseal") == 0)
    return route_unseal(ev, m, q);
  if (strcmp(p, "seal") == 0)
    return is_write(m) ? route_plain(ev, m, q, CUSTOS__REQUEST__OP_SEAL, HV_NO_CONTENT)
                       : bad_method(ev, m);
  if (strcmp(p, "rotate") == 0)
    return is_write(m) ? route_plain(ev, m, q, CUSTOS__REQUEST__OP_ROTATE, HV_NO_CONTENT)
                       : bad_method(ev, m);
  if (strcmp(p, "key-status") == 0)
    return m->method == HM_GET ? route_plain(ev, m, q, CUSTOS__REQUEST__OP_KEY_STATUS,
                                             HV_KEY_STATUS)
                               : bad_method(ev, m);
  if (strcmp(p, "rotate/config") == 0)
    return route_rotate_config(ev, m, q);
  if (strncmp(p, "rekey/", 6) == 0)
    return route_rekey(ev, m, q, p + 6);
  if (strncmp(p, "generate-root/", 14) == 0)
    return route_genroot(ev, m, q, p + 14);
  /* The older policy API, the one hvac 0.11's sys.*_policy methods use. */
  if (strcmp(p, "policy") == 0)
    return m->method == HM_GET ? route_plain(ev, m, q, CUSTOS__REQUEST__OP_POLICY_LIST,
                                             HV_POLICY_NAMES)
                               : bad_method(ev, m);
  if (strncmp(p, "policy/", 7) == 0 && p[7] != 0)
    return route_policy(ev, m, q, p + 7);
  if (strcmp(p, "policies/acl") == 0 || strcmp(p, "policies/acl/") == 0)
    return route_policy(ev, m, q, "");
  if (strncmp(p, "policies/acl/", 13) == 0)
    return route_policy(ev, m, q, p + 13);
  if (strcmp(p, "storage/raft/configuration") == 0)
    return m->method == HM_GET ? route_plain(ev, m, q, CUSTOS__REQUEST__OP_RAFT_LIST_PEERS,
                                             HV_RAFT_CONFIG)
                               : bad_method(ev, m);
  if (strcmp(p, "storage/raft/snapshot") == 0 || strcmp(p, "storage/raft/snapshot-force") == 0)
    return route_snapshot(ev, m, q, p[21] != 0);
  if (strcmp(p, "mounts") == 0) {
    /* Static, but only for a valid token, as Vault: a lookup-self decides. */
    if (m->method != HM_GET)
      return bad_method(ev, m);
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__TokenLookupReq lk = CUSTOS__TOKEN_LOOKUP_REQ__INIT;
    req.op_case = CUSTOS__REQUEST__OP_TOKEN_LOOKUP;
    req.token_lookup = &lk;
    return emit(ev, m, &req, HV_MOUNTS, q);
  }
  if (strncmp(p, "internal/ui/mounts/", 19) == 0)
    return route_ui_mount(ev, m, p + 19);
  if (strcmp(p, "metrics") == 0) {
    if (m->method != HM_GET)
      return bad_method(ev, m);
    /* Only the Prometheus text format (Vault's default is its own JSON). */
    if (q->format[0] != 0 && strcmp(q->format, "prometheus") != 0)
      return answer(ev, m, 400, "unsupported metrics format: only format=prometheus is served");
    return route_plain(ev, m, q, CUSTOS__REQUEST__OP_METRICS, HV_METRICS);
  }
  return not_found(ev, m);
}

/* ---------------------------------------------------------------- tokens */

static int route_token_create(cs_http_event *ev, const http_msg *m, const query *q, json_t *o) {
  json_t *pol = json_object_get(o, "policies");
  uint64_t ttl = 0;
  int given = 0, renewable = 1;
  if ((pol != NULL && !json_is_null(pol) && !json_is_array(pol)) ||
      get_duration(o, "ttl", &ttl, &given) < 0 || get_bool(o, "renewable", &renewable) < 0)
    return answer(ev, m, 400, "policies must be a list of strings, ttl a duration and renewable "
                              "a boolean");
  /* Options custos has no equivalent for are refused, not ignored: a
   * caller asking for a use-limited or periodic token must not get a
   * plain one.  (hvac sends no_parent, display_name and num_uses: 0.) */
  const char *type = NULL;
  uint64_t uses = 0, max_ttl = 0;
  int g2 = 0;
  json_t *id = json_object_get(o, "id"), *period = json_object_get(o, "period");
  if ((id != NULL && !json_is_null(id)) || (period != NULL && !json_is_null(period)) ||
      get_str(o, "type", &type) < 0 || (type != NULL && strcmp(type, "service") != 0) ||
      get_uint(o, "num_uses", INT64_MAX, &uses) < 0 || uses != 0 ||
      get_duration(o, "explicit_max_ttl", &max_ttl, &g2) < 0 || max_ttl != 0)
    return answer(ev, m, 400, "custos tokens support policies, ttl and renewable only "
                              "(no id, period, type, num_uses or explicit_max_ttl)");
  size_t n = json_is_array(pol) ? json_array_size(pol) : 0;
  if (n > 64)
    return answer(ev, m, 400, "at most 64 policies per token");
  char *names[64];
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(pol, i);
    if (!json_is_string(s))
      return answer(ev, m, 400, "policies must be a list of strings");
    names[i] = (char *)json_string_value(s);
  }
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenCreateReq tc = CUSTOS__TOKEN_CREATE_REQ__INIT;
  tc.n_policies = n;
  tc.policies = names;
  tc.ttl_seconds = ttl;
  tc.renewable = renewable;
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_CREATE;
  req.token_create = &tc;
  return emit(ev, m, &req, HV_TOKEN_AUTH, q);
}

/* The "token" field of lookup/renew/revoke; NULL after answering 400. */
static const char *body_token(cs_http_event *ev, const http_msg *m, json_t *o, int *rc) {
  const char *t = NULL;
  if (get_str(o, "token", &t) < 0 || t == NULL || *t == 0) {
    *rc = answer(ev, m, 400, "missing token");
    return NULL;
  }
  return t;
}

static int route_token_op(cs_http_event *ev, const http_msg *m, const query *q, const char *op,
                          json_t *o) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenLookupReq lk = CUSTOS__TOKEN_LOOKUP_REQ__INIT;
  Custos__TokenRenewReq rn = CUSTOS__TOKEN_RENEW_REQ__INIT;
  Custos__TokenRevokeReq rv = CUSTOS__TOKEN_REVOKE_REQ__INIT;
  int self = strstr(op, "-self") != NULL, rc = 0, given = 0;
  int by_accessor = strstr(op, "-accessor") != NULL;
  const char *tok = NULL;
  if (by_accessor) {
    /* {"accessor": "..."}: the audit log's handle of a token (Vault's
     * lookup-accessor / revoke-accessor). */
    const char *acc = NULL;
    if (get_str(o, "accessor", &acc) < 0 || acc == NULL || *acc == 0)
      return answer(ev, m, 400, "missing accessor");
    lk.accessor = rv.accessor = (char *)acc;
  } else if (!self && (tok = body_token(ev, m, o, &rc)) == NULL) {
    return rc;
  }
  if (tok != NULL) {
    lk.token.data = rn.token.data = rv.token.data = (uint8_t *)tok;
    lk.token.len = rn.token.len = rv.token.len = strlen(tok);
  }
  if (strncmp(op, "lookup", 6) == 0) {
    req.op_case = CUSTOS__REQUEST__OP_TOKEN_LOOKUP;
    req.token_lookup = &lk;
    return emit(ev, m, &req, HV_TOKEN_DATA, q);
  }
  if (strncmp(op, "renew", 5) == 0) {
    if (get_duration(o, "increment", &rn.increment_seconds, &given) < 0)
      return answer(ev, m, 400, "increment must be a duration");
    req.op_case = CUSTOS__REQUEST__OP_TOKEN_RENEW;
    req.token_renew = &rn;
    return emit(ev, m, &req, HV_TOKEN_AUTH, q);
  }
  rv.self = self;
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_REVOKE;
  req.token_revoke = &rv;
  return emit(ev, m, &req, HV_NO_CONTENT, q);
}

static int route_token(cs_http_event *ev, const http_msg *m, const query *q, const char *op) {
  static const char *const ops[] = {"create",     "lookup",      "lookup-self",    "renew",
                                    "renew-self", "revoke",      "revoke-self",    "lookup-accessor",
                                    "revoke-accessor"};
  size_t i;
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(op, ops[i]) == 0)
      break;
  if (i == sizeof ops / sizeof ops[0])
    return not_found(ev, m);
  if (strcmp(op, "lookup-self") == 0 && m->method == HM_GET) {
    json_t *none = json_object();
    if (none == NULL)
      return CS_ENOMEM;
    int rc = route_token_op(ev, m, q, op, none);
    json_decref(none);
    return rc;
  }
  if (!is_write(m))
    return bad_method(ev, m);
  int rc = 0;
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  rc = i == 0 ? route_token_create(ev, m, q, o) : route_token_op(ev, m, q, op, o);
  json_decref(o);
  return rc;
}

/* ---------------------------------------------------------------- kv */

/* The secret as KvPairs: only string values (custos stores bytes; a number
 * or object would come back as a string, so it is refused instead). */
static int route_kv_put(cs_http_event *ev, const http_msg *m, const query *q, const char *path) {
  int rc = 0;
  json_t *o = body_object(ev, m, &rc);
  if (o == NULL)
    return rc;
  size_t n = json_object_size(o), i = 0;
  Custos__KvPair *pairs = calloc(n ? n : 1, sizeof *pairs);
  Custos__KvPair **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  if (pairs == NULL || ptrs == NULL) {
    rc = CS_ENOMEM;
    goto out;
  }
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (!json_is_string(v)) {
      char msg[160];
      snprintf(msg, sizeof msg, "custos stores string values only: field \"%.64s\" is not a string", k);
      rc = answer(ev, m, 400, msg);
      goto out;
    }
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = (char *)k;
    pairs[i].value.data = (uint8_t *)json_string_value(v);
    pairs[i].value.len = json_string_length(v);
    ptrs[i] = &pairs[i];
    i++;
  }
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KvPutReq put = CUSTOS__KV_PUT_REQ__INIT;
  put.path = (char *)path;
  put.n_data = n;
  put.data = ptrs;
  req.op_case = CUSTOS__REQUEST__OP_KV_PUT;
  req.kv_put = &put;
  rc = emit(ev, m, &req, HV_NO_CONTENT, q);
out:
  free(ptrs);
  free(pairs);
  json_decref(o); /* jansson does not wipe: the values are in the request now */
  return rc;
}

static int route_kv(cs_http_event *ev, const http_msg *m, const query *q, char *path) {
  int list = m->method == HM_LIST || (m->method == HM_GET && q->list);
  size_t n = strlen(path);
  Custos__Request req = CUSTOS__REQUEST__INIT;
  if (list) {
    if (n > 0 && path[n - 1] == '/')
      path[n - 1] = 0;
    Custos__KvListReq l = CUSTOS__KV_LIST_REQ__INIT;
    l.prefix = path;
    req.op_case = CUSTOS__REQUEST__OP_KV_LIST;
    req.kv_list = &l;
    return emit(ev, m, &req, HV_KEYS, q);
  }
  if (n == 0)
    return bad_method(ev, m);
  Custos__KvGetReq g = CUSTOS__KV_GET_REQ__INIT;
  Custos__KvDeleteReq d = CUSTOS__KV_DELETE_REQ__INIT;
  switch (m->method) {
  case HM_GET:
    g.path = path;
    req.op_case = CUSTOS__REQUEST__OP_KV_GET;
    req.kv_get = &g;
    return emit(ev, m, &req, HV_KV_READ, q);
  case HM_DELETE:
    d.path = path;
    req.op_case = CUSTOS__REQUEST__OP_KV_DELETE;
    req.kv_delete = &d;
    return emit(ev, m, &req, HV_NO_CONTENT, q);
  case HM_PUT:
  case HM_POST:
    return route_kv_put(ev, m, q, path);
  default:
    return bad_method(ev, m);
  }
}

/* The versioned mount kv/ (http_kv2.c translates). */
static int route_kv2(cs_http_event *ev, const http_msg *m, const query *q, char *rest,
                     const char *query_str) {
  int list = m->method == HM_LIST || (m->method == HM_GET && q->list);
  cs_http_kv2 t;
  int rc = cs_http_kv2_translate(&t, m->method, list, rest, query_str, m->body, m->body_len);
  if (rc == 0 && t.status == 404)
    rc = not_found(ev, m);
  else if (rc == 0 && t.status != 0)
    rc = answer(ev, m, t.status, t.error);
  else if (rc == 0)
    rc = emit(ev, m, &t.req, t.view, q);
  cs_http_kv2_free(&t);
  return rc;
}

/* ---------------------------------------------------------------- entry */

int cs_http_route(const http_msg *m, cs_http_event *ev) {
  const char *url = m->url, *qm = strchr(url, '?');
  size_t plen = qm ? (size_t)(qm - url) : strlen(url);
  query q;
  if (parse_query(qm ? qm + 1 : "", &q) < 0)
    return answer(ev, m, 400, "invalid query parameter");
  if (m->method == HM_OTHER)
    return bad_method(ev, m);
  /* A client asking for a wrapped answer must not get the secret itself. */
  if (m->wrap)
    return answer(ev, m, 400, "response wrapping (X-Vault-Wrap-TTL) is not supported by custos");
  char path[CS_HTTP_MAX_URL + 1];
  if (plen < 4 || strncmp(url, "/v1/", 4) != 0)
    return not_found(ev, m);
  if (pct_decode(url + 4, plen - 4, path) < 0)
    return answer(ev, m, 400, "invalid path encoding");
  if (strncmp(path, "sys/", 4) == 0)
    return route_sys(ev, m, &q, path + 4);
  if (strncmp(path, "auth/token/", 11) == 0)
    return route_token(ev, m, &q, path + 11);
  if (strcmp(path, "secret") == 0)
    return route_kv(ev, m, &q, path + 6);
  if (strncmp(path, KV_MOUNT, sizeof KV_MOUNT - 1) == 0)
    return route_kv(ev, m, &q, path + sizeof KV_MOUNT - 1);
  if (strncmp(path, CS_HTTP_KV2_MOUNT, sizeof CS_HTTP_KV2_MOUNT - 1) == 0)
    return route_kv2(ev, m, &q, path + sizeof CS_HTTP_KV2_MOUNT - 1, qm ? qm + 1 : "");
  return not_found(ev, m);
}
