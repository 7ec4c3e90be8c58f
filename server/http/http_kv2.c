/* http_kv2: see http_kv2.h. */
#define _GNU_SOURCE
#include "duration.h"
#include "http_kv2.h"

#include "cs_error.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Limits checked here, before anything is allocated for them (the core
 * checks them again: kv2.h). */
#define MAX_VERSIONS_PER_REQ 1000
#define MAX_CUSTOM 64
#define MAX_FIELDS 1024

static int refuse(cs_http_kv2 *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(cs_http_kv2 *t, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->error, sizeof t->error, fmt, ap);
  va_end(ap);
  t->status = status;
  return 0;
}

/* A decimal u64 without sign, spaces or leading '+': 0 or -1. */
static int parse_u64(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 20)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return -1;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* ?version=N (the last one given wins, as Go's url.Values.Get takes the
 * first: both are fine for one); 1 when given, 0 when not, -1 when bad. */
static int query_version(const char *q, uint64_t *v) {
  int found = 0;
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    if (n >= 8 && strncmp(q, "version=", 8) == 0) {
      if (found)
        return -1; /* twice: ambiguous, refused */
      if (parse_u64(q + 8, n - 8, v) < 0)
        return -1;
      found = 1;
    }
    q += n + (amp ? 1 : 0);
  }
  return found;
}

/* A JSON non-negative integer (or, as Vault's TypeInt, a decimal string). */
static int json_u64(const json_t *v, uint64_t max, uint64_t *out) {
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i > max)
      return -1;
    *out = (uint64_t)i;
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    if (parse_u64(s, json_string_length(v), out) < 0 || *out > max)
      return -1;
    return 0;
  }
  return -1;
}

/* Durations as Vault takes them: seconds as a number, or a string of
 * <digits><unit> groups (common/duration.h), "0" or "" meaning 0. */
static int json_duration(const json_t *v, uint64_t *out) {
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 0)
      return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  if (!json_is_string(v))
    return -1;
  const char *s = json_string_value(v);
  if (*s == 0) {
    *out = 0;
    return 0;
  }
  if (cs_duration_parse(s, out) != 0) { /* common/duration.c */
    cs_error_clear();
    return -1;
  }
  return 0;
}

/* String-valued pairs from a JSON object (secret data or custom metadata);
 * 0, or 1 after a refusal recorded in t, or CS_ENOMEM. */
static int pairs_from(cs_http_kv2 *t, const json_t *o, const char *what, size_t max, size_t *n) {
  *n = json_object_size(o);
  if (*n > max) {
    refuse(t, 400, "%s has %zu keys, at most %zu are allowed", what, *n, max);
    return 1;
  }
  t->pairs = calloc(*n ? *n : 1, sizeof *t->pairs);
  t->ptrs = calloc(*n ? *n : 1, sizeof *t->ptrs);
  if (t->pairs == NULL || t->ptrs == NULL)
    return CS_ENOMEM;
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    if (!json_is_string(v)) {
      refuse(t, 400, "custos stores string values only: %s field \"%.64s\" is not a string",
             what, k);
      return 1;
    }
    custos__kv_pair__init(&t->pairs[i]);
    t->pairs[i].key = (char *)k;
    t->pairs[i].value.data = (uint8_t *)json_string_value(v);
    t->pairs[i].value.len = json_string_length(v);
    t->ptrs[i] = &t->pairs[i];
    i++;
  }
  return 0;
}

/* ------------------------------------------------------------ routes */

static int data_put(cs_http_kv2 *t, char *path) {
  json_t *data = json_object_get(t->body, "data"), *opts = json_object_get(t->body, "options");
  if (data == NULL || json_is_null(data))
    return refuse(t, 400, "no data provided");
  if (!json_is_object(data))
    return refuse(t, 400, "data must be a JSON object");
  Custos__Kv2PutReq *p = &t->u.put;
  custos__kv2_put_req__init(p);
  if (opts != NULL && !json_is_null(opts)) {
    if (!json_is_object(opts))
      return refuse(t, 400, "options must be a JSON object");
    json_t *cas = json_object_get(opts, "cas");
    if (cas != NULL && !json_is_null(cas)) {
      uint64_t c;
      if (json_u64(cas, INT64_MAX, &c) < 0)
        return refuse(t, 400, "options.cas must be a non-negative integer");
      p->cas_opt_case = CUSTOS__KV2_PUT_REQ__CAS_OPT_CAS;
      p->cas = c;
    }
  }
  size_t n;
  int rc = pairs_from(t, data, "data", MAX_FIELDS, &n);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  p->path = path;
  p->n_data = n;
  p->data = t->ptrs;
  t->req.op_case = CUSTOS__REQUEST__OP_KV2_PUT;
  t->req.kv2_put = p;
  t->view = HV_KV2_WRITE;
  return 0;
}

static int versions_req(cs_http_kv2 *t, int op, char *path) {
  json_t *vs = json_object_get(t->body, "versions");
  size_t n = 0;
  if (vs == NULL || json_is_null(vs))
    return refuse(t, 400, "no version number provided");
  if (json_is_array(vs)) {
    n = json_array_size(vs);
    if (n > MAX_VERSIONS_PER_REQ)
      return refuse(t, 400, "at most %d versions per request", MAX_VERSIONS_PER_REQ);
    if ((t->vers = calloc(n ? n : 1, sizeof *t->vers)) == NULL)
      return CS_ENOMEM;
    for (size_t i = 0; i < n; i++)
      if (json_u64(json_array_get(vs, i), UINT64_MAX, &t->vers[i]) < 0)
        return refuse(t, 400, "versions must be non-negative integers");
  } else if (json_is_string(vs)) {
    /* Vault's comma-separated form: "1,2,3". */
    const char *s = json_string_value(vs);
    size_t len = json_string_length(vs);
    if (len / 2 > MAX_VERSIONS_PER_REQ)
      return refuse(t, 400, "at most %d versions per request", MAX_VERSIONS_PER_REQ);
    if ((t->vers = calloc(len / 2 + 1, sizeof *t->vers)) == NULL)
      return CS_ENOMEM;
    while (len > 0) {
      const char *c = memchr(s, ',', len);
      size_t k = c ? (size_t)(c - s) : len;
      if (n >= MAX_VERSIONS_PER_REQ || parse_u64(s, k, &t->vers[n]) < 0)
        return refuse(t, 400, "versions must be non-negative integers");
      n++;
      s += k + (c ? 1 : 0);
      len -= k + (c ? 1 : 0);
      if (c != NULL && len == 0)
        return refuse(t, 400, "versions must be non-negative integers");
    }
  } else {
    return refuse(t, 400, "versions must be a list of integers");
  }
  if (n == 0)
    return refuse(t, 400, "no version number provided");
  Custos__Kv2VersionsReq *v = &t->u.versions;
  custos__kv2_versions_req__init(v);
  v->path = path;
  v->n_versions = n;
  v->versions = t->vers;
  t->req.op_case = (Custos__Request__OpCase)op;
  switch (op) {
  case CUSTOS__REQUEST__OP_KV2_DELETE: t->req.kv2_delete = v; break;
  case CUSTOS__REQUEST__OP_KV2_UNDELETE: t->req.kv2_undelete = v; break;
  default: t->req.kv2_destroy = v; break;
  }
  t->view = HV_NO_CONTENT;
  return 0;
}

/* The settings shared by metadata and config writes: 0, or 1 after a
 * refusal recorded in t. */
static int settings(cs_http_kv2 *t, int *has_max, uint32_t *max, int *has_cas, int *cas,
                    int *has_dva, uint64_t *dva) {
  json_t *v;
  uint64_t u;
  if ((v = json_object_get(t->body, "max_versions")) != NULL && !json_is_null(v)) {
    if (json_u64(v, UINT32_MAX, &u) < 0)
      return refuse(t, 400, "max_versions must be an integer from 0 to 1000"), 1;
    *has_max = 1;
    *max = (uint32_t)u;
  }
  if ((v = json_object_get(t->body, "cas_required")) != NULL && !json_is_null(v)) {
    if (!json_is_boolean(v))
      return refuse(t, 400, "cas_required must be a boolean"), 1;
    *has_cas = 1;
    *cas = json_is_true(v);
  }
  if ((v = json_object_get(t->body, "delete_version_after")) != NULL && !json_is_null(v)) {
    if (json_duration(v, &u) < 0)
      return refuse(t, 400, "delete_version_after must be a duration (\"3h25m19s\", seconds)"), 1;
    *has_dva = 1;
    *dva = u;
  }
  return 0;
}

static int meta_put(cs_http_kv2 *t, char *path) {
  Custos__Kv2MetaPutReq *p = &t->u.meta_put;
  custos__kv2_meta_put_req__init(p);
  int has_max = 0, has_cas = 0, has_dva = 0, cas = 0;
  if (settings(t, &has_max, &p->max_versions, &has_cas, &cas, &has_dva,
               &p->delete_version_after) != 0)
    return 0;
  if (has_max)
    p->max_versions_opt_case = CUSTOS__KV2_META_PUT_REQ__MAX_VERSIONS_OPT_MAX_VERSIONS;
  if (has_cas) {
    p->cas_required_opt_case = CUSTOS__KV2_META_PUT_REQ__CAS_REQUIRED_OPT_CAS_REQUIRED;
    p->cas_required = cas;
  }
  if (has_dva)
    p->delete_version_after_opt_case =
        CUSTOS__KV2_META_PUT_REQ__DELETE_VERSION_AFTER_OPT_DELETE_VERSION_AFTER;
  json_t *cm = json_object_get(t->body, "custom_metadata");
  if (cm != NULL && !json_is_null(cm)) {
    if (!json_is_object(cm))
      return refuse(t, 400, "custom_metadata must be a JSON object of strings");
    size_t n;
    int rc = pairs_from(t, cm, "custom_metadata", MAX_CUSTOM, &n);
    if (rc != 0)
      return rc < 0 ? rc : 0;
    p->set_custom_metadata = 1;
    p->n_custom_metadata = n;
    p->custom_metadata = t->ptrs;
  }
  p->path = path;
  t->req.op_case = CUSTOS__REQUEST__OP_KV2_META_PUT;
  t->req.kv2_meta_put = p;
  t->view = HV_NO_CONTENT;
  return 0;
}

static int config(cs_http_kv2 *t, hm_method method) {
  Custos__Kv2ConfigReq *c = &t->u.config;
  custos__kv2_config_req__init(c);
  t->req.op_case = CUSTOS__REQUEST__OP_KV2_CONFIG;
  t->req.kv2_config = c;
  if (method == HM_GET) {
    t->view = HV_KV2_CONFIG;
    return 0;
  }
  if (method != HM_PUT && method != HM_POST)
    return refuse(t, 405, "unsupported operation");
  int has_max = 0, has_cas = 0, has_dva = 0, cas = 0;
  if (settings(t, &has_max, &c->max_versions, &has_cas, &cas, &has_dva,
               &c->delete_version_after) != 0)
    return 0;
  c->set = 1;
  if (has_max)
    c->max_versions_opt_case = CUSTOS__KV2_CONFIG_REQ__MAX_VERSIONS_OPT_MAX_VERSIONS;
  if (has_cas) {
    c->cas_required_opt_case = CUSTOS__KV2_CONFIG_REQ__CAS_REQUIRED_OPT_CAS_REQUIRED;
    c->cas_required = cas;
  }
  if (has_dva)
    c->delete_version_after_opt_case =
        CUSTOS__KV2_CONFIG_REQ__DELETE_VERSION_AFTER_OPT_DELETE_VERSION_AFTER;
  t->view = HV_NO_CONTENT;
  return 0;
}

int cs_http_kv2_translate(cs_http_kv2 *t, hm_method method, int list, char *rest,
                          const char *query, const uint8_t *body, size_t body_len) {
  memset(t, 0, sizeof *t);
  custos__request__init(&t->req);
  int is_write = method == HM_PUT || method == HM_POST;
  if (is_write) {
    json_error_t err;
    t->body = body_len == 0 ? json_object()
                            : json_loadb((const char *)body, body_len, JSON_REJECT_DUPLICATES, &err);
    if (t->body == NULL && body_len == 0)
      return CS_ENOMEM;
    if (t->body == NULL)
      return refuse(t, 400, "failed to parse JSON input");
    if (!json_is_object(t->body))
      return refuse(t, 400, "request body must be a JSON object");
  }
  if (strcmp(rest, "config") == 0)
    return list ? refuse(t, 405, "unsupported operation") : config(t, method);
  char *slash = strchr(rest, '/');
  if (slash == NULL && list && strcmp(rest, "metadata") == 0)
    slash = rest + strlen(rest); /* LIST /v1/kv/metadata: the top level */
  else if (slash == NULL)
    return refuse(t, 404, "%s", "");
  int at_end = *slash == 0;
  *slash = 0;
  const char *sub = rest;
  char *path = at_end ? slash : slash + 1;
  size_t n = strlen(path);
  if (strcmp(sub, "metadata") == 0 && list) {
    if (n > 0 && path[n - 1] == '/')
      path[n - 1] = 0;
    custos__kv2_list_req__init(&t->u.list);
    t->u.list.prefix = path;
    t->req.op_case = CUSTOS__REQUEST__OP_KV2_LIST;
    t->req.kv2_list = &t->u.list;
    t->view = HV_KEYS;
    return 0;
  }
  int known = strcmp(sub, "data") == 0 || strcmp(sub, "metadata") == 0 ||
              strcmp(sub, "delete") == 0 || strcmp(sub, "undelete") == 0 ||
              strcmp(sub, "destroy") == 0;
  if (!known)
    return refuse(t, 404, "%s", "");
  if (list || n == 0)
    return refuse(t, 405, "unsupported operation");
  if (strcmp(sub, "data") == 0) {
    switch (method) {
    case HM_GET: {
      uint64_t v = 0;
      if (query_version(query, &v) < 0)
        return refuse(t, 400, "version must be a non-negative integer");
      custos__kv2_get_req__init(&t->u.get);
      t->u.get.path = path;
      t->u.get.version = v;
      t->req.op_case = CUSTOS__REQUEST__OP_KV2_GET;
      t->req.kv2_get = &t->u.get;
      t->view = HV_KV2_READ;
      return 0;
    }
    case HM_DELETE:
      custos__kv2_versions_req__init(&t->u.versions);
      t->u.versions.path = path;
      t->req.op_case = CUSTOS__REQUEST__OP_KV2_DELETE;
      t->req.kv2_delete = &t->u.versions;
      t->view = HV_NO_CONTENT;
      return 0;
    case HM_PUT:
    case HM_POST: return data_put(t, path);
    default: return refuse(t, 405, "unsupported operation");
    }
  }
  if (strcmp(sub, "metadata") == 0) {
    switch (method) {
    case HM_GET:
      custos__kv2_meta_get_req__init(&t->u.meta_get);
      t->u.meta_get.path = path;
      t->req.op_case = CUSTOS__REQUEST__OP_KV2_META_GET;
      t->req.kv2_meta_get = &t->u.meta_get;
      t->view = HV_KV2_META;
      return 0;
    case HM_DELETE:
      custos__kv2_meta_delete_req__init(&t->u.meta_delete);
      t->u.meta_delete.path = path;
      t->req.op_case = CUSTOS__REQUEST__OP_KV2_META_DELETE;
      t->req.kv2_meta_delete = &t->u.meta_delete;
      t->view = HV_NO_CONTENT;
      return 0;
    case HM_PUT:
    case HM_POST: return meta_put(t, path);
    default: return refuse(t, 405, "unsupported operation");
    }
  }
  if (!is_write)
    return refuse(t, 405, "unsupported operation");
  int op = strcmp(sub, "delete") == 0     ? CUSTOS__REQUEST__OP_KV2_DELETE
           : strcmp(sub, "undelete") == 0 ? CUSTOS__REQUEST__OP_KV2_UNDELETE
                                          : CUSTOS__REQUEST__OP_KV2_DESTROY;
  return versions_req(t, op, path);
}

void cs_http_kv2_free(cs_http_kv2 *t) {
  free(t->pairs);
  free(t->ptrs);
  free(t->vers);
  json_decref(t->body); /* the values were copied into the request: jansson's blocks are wiped */
  memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------ views */

/* digits of v, zero-padded to w, at p. */
static void put_digits(char *p, unsigned long v, int w) {
  for (int i = w - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" for 0 <= sec < year 10000, 0 <= frac <
 * 1000000, into s (>= 28 bytes); its length (27).  What gmtime_r,
 * strftime and snprintf made of it, without them: an HTTP GET of a
 * versioned secret writes two of these (civil date from days: H. Hinnant's
 * algorithm, exact for the proleptic Gregorian calendar). */
static size_t rfc3339_us(int64_t sec, long frac, char *s) {
  int64_t days = sec / 86400, rem = sec % 86400;
  int64_t z = days + 719468;
  int64_t era = z / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2)
    y++;
  put_digits(s, (unsigned long)y, 4);
  s[4] = '-';
  put_digits(s + 5, (unsigned long)m, 2);
  s[7] = '-';
  put_digits(s + 8, (unsigned long)d, 2);
  s[10] = 'T';
  put_digits(s + 11, (unsigned long)(rem / 3600), 2);
  s[13] = ':';
  put_digits(s + 14, (unsigned long)(rem / 60 % 60), 2);
  s[16] = ':';
  put_digits(s + 17, (unsigned long)(rem % 60), 2);
  s[19] = '.';
  put_digits(s + 20, (unsigned long)frac, 6);
  s[26] = 'Z';
  s[27] = 0;
  return 27;
}

/* Unix microseconds as RFC 3339 with microseconds ("" for 0). */
static void key_time_us(cs_jbuf *b, const char *k, int64_t us) {
  char s[48], base[32];
  if (us == 0) {
    cs_jbuf_key_str(b, k, "");
    return;
  }
  time_t sec = (time_t)(us / 1000000);
  long frac = (long)(us % 1000000);
  if (frac < 0) {
    frac += 1000000;
    sec--;
  }
  if (sec >= 0 && sec <= 253402300799) { /* 1970 to 9999: by hand, as below but cheaper */
    cs_jbuf_key_strn(b, k, s, rfc3339_us((int64_t)sec, frac, s));
    return;
  }
  struct tm tm;
  if (gmtime_r(&sec, &tm) == NULL || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    snprintf(base, sizeof base, "1970-01-01T00:00:00");
  snprintf(s, sizeof s, "%s.%06ldZ", base, frac);
  cs_jbuf_key_str(b, k, s);
}

/* Go's time.Duration.String() for whole seconds: "0s", "1m30s", "1h0m0s". */
static void key_duration(cs_jbuf *b, const char *k, uint64_t s) {
  char out[64];
  if (s < 60)
    snprintf(out, sizeof out, "%llus", (unsigned long long)s);
  else if (s < 3600)
    snprintf(out, sizeof out, "%llum%llus", (unsigned long long)(s / 60),
             (unsigned long long)(s % 60));
  else
    snprintf(out, sizeof out, "%lluh%llum%llus", (unsigned long long)(s / 3600),
             (unsigned long long)(s % 3600 / 60), (unsigned long long)(s % 60));
  cs_jbuf_key_str(b, k, out);
}

static void envelope_open(cs_jbuf *b) {
  cs_jbuf_begin_object(b);
  /* The constant members in one piece (the same bytes as key by key). */
  CS_JBUF_MEMBERS(b, "\"request_id\":\"\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0");
  cs_jbuf_key(b, "data");
}

static void envelope_close(cs_jbuf *b) {
  CS_JBUF_MEMBERS(b, "\"wrap_info\":null,\"warnings\":null,\"auth\":null");
  cs_jbuf_end_object(b);
}

/* Vault writes custom_metadata as null when there is none. */
static void custom(cs_jbuf *b, Custos__KvPair **p, size_t n, int null_when_empty) {
  cs_jbuf_key(b, "custom_metadata");
  if (n == 0 && null_when_empty) {
    cs_jbuf_null(b);
    return;
  }
  cs_jbuf_begin_object(b);
  for (size_t i = 0; i < n; i++)
    cs_jbuf_key_strn(b, p[i]->key, p[i]->value.data, p[i]->value.len);
  cs_jbuf_end_object(b);
}

static void version_meta(cs_jbuf *b, const Custos__Kv2VersionInfo *v, Custos__KvPair **cp,
                         size_t ncp) {
  static const Custos__Kv2VersionInfo none = CUSTOS__KV2_VERSION_INFO__INIT;
  if (v == NULL)
    v = &none;
  cs_jbuf_begin_object(b);
  key_time_us(b, "created_time", v->created_time);
  custom(b, cp, ncp, 1);
  key_time_us(b, "deletion_time", v->deletion_time);
  cs_jbuf_key_bool(b, "destroyed", v->destroyed);
  cs_jbuf_key_uint(b, "version", v->version);
  cs_jbuf_end_object(b);
}

int cs_http_kv2_view(cs_jbuf *b, http_view view, const Custos__Response *res) {
  switch (view) {
  case HV_KV2_WRITE:
    if (res->result_case != CUSTOS__RESPONSE__RESULT_KV2_WRITE)
      return 500;
    envelope_open(b);
    version_meta(b, res->kv2_write->version, res->kv2_write->custom_metadata,
                 res->kv2_write->n_custom_metadata);
    envelope_close(b);
    return 200;
  case HV_KV2_READ: {
    if (res->result_case != CUSTOS__RESPONSE__RESULT_KV2_GET)
      return 500;
    const Custos__Kv2GetRes *g = res->kv2_get;
    int gone = g->deleted || g->destroyed;
    envelope_open(b);
    cs_jbuf_begin_object(b);
    cs_jbuf_key(b, "data");
    if (gone) {
      cs_jbuf_null(b); /* Vault: 404 with the version's metadata */
    } else {
      cs_jbuf_begin_object(b);
      for (size_t i = 0; i < g->n_data; i++)
        cs_jbuf_key_strn(b, g->data[i]->key, g->data[i]->value.data, g->data[i]->value.len);
      cs_jbuf_end_object(b);
    }
    cs_jbuf_key(b, "metadata");
    version_meta(b, g->version, g->custom_metadata, g->n_custom_metadata);
    cs_jbuf_end_object(b);
    envelope_close(b);
    return gone ? 404 : 200;
  }
  case HV_KV2_META: {
    if (res->result_case != CUSTOS__RESPONSE__RESULT_KV2_META)
      return 500;
    const Custos__Kv2MetaRes *m = res->kv2_meta;
    envelope_open(b);
    cs_jbuf_begin_object(b);
    cs_jbuf_key_bool(b, "cas_required", m->cas_required);
    key_time_us(b, "created_time", m->created_time);
    cs_jbuf_key_uint(b, "current_version", m->current_version);
    custom(b, m->custom_metadata, m->n_custom_metadata, 1);
    key_duration(b, "delete_version_after", m->delete_version_after);
    cs_jbuf_key_uint(b, "max_versions", m->max_versions);
    cs_jbuf_key_uint(b, "oldest_version", m->oldest_version);
    key_time_us(b, "updated_time", m->updated_time);
    cs_jbuf_key(b, "versions");
    cs_jbuf_begin_object(b);
    for (size_t i = 0; i < m->n_versions; i++) {
      char num[24];
      snprintf(num, sizeof num, "%llu", (unsigned long long)m->versions[i]->version);
      cs_jbuf_key(b, num);
      cs_jbuf_begin_object(b);
      key_time_us(b, "created_time", m->versions[i]->created_time);
      key_time_us(b, "deletion_time", m->versions[i]->deletion_time);
      cs_jbuf_key_bool(b, "destroyed", m->versions[i]->destroyed);
      cs_jbuf_end_object(b);
    }
    cs_jbuf_end_object(b);
    cs_jbuf_end_object(b);
    envelope_close(b);
    return 200;
  }
  case HV_KV2_CONFIG: {
    if (res->result_case != CUSTOS__RESPONSE__RESULT_KV2_CONFIG)
      return 500;
    const Custos__Kv2ConfigRes *c = res->kv2_config;
    envelope_open(b);
    cs_jbuf_begin_object(b);
    cs_jbuf_key_bool(b, "cas_required", c->cas_required);
    key_duration(b, "delete_version_after", c->delete_version_after);
    cs_jbuf_key_uint(b, "max_versions", c->max_versions);
    cs_jbuf_end_object(b);
    envelope_close(b);
    return 200;
  }
  default: return 500;
  }
}

void cs_http_kv2_mount_fields(cs_jbuf *b) {
  cs_jbuf_key(b, CS_HTTP_KV2_MOUNT);
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "type", "kv");
  cs_jbuf_key_str(b, "description", "custos versioned key/value store");
  cs_jbuf_key_str(b, "accessor", "");
  cs_jbuf_key(b, "config");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_uint(b, "default_lease_ttl", 0);
  cs_jbuf_key_uint(b, "max_lease_ttl", 0);
  cs_jbuf_end_object(b);
  cs_jbuf_key(b, "options");
  cs_jbuf_begin_object(b);
  cs_jbuf_key_str(b, "version", "2");
  cs_jbuf_end_object(b);
  cs_jbuf_key_bool(b, "local", 0);
  cs_jbuf_key_bool(b, "seal_wrap", 0);
  cs_jbuf_end_object(b);
}
