/*
 * http_kv2: the KV version 2 mount "kv/" of the HTTP API: a Vault request
 * (method, the path after "/v1/kv/", the query, the JSON body) to a
 * kv2_* Custos__Request, and the kv2 results to Vault's JSON.
 *
 *   data/:path       GET (?version=N) -> kv2_get; PUT|POST {"data":{..},
 *                    "options":{"cas":N}} -> kv2_put; DELETE -> kv2_delete
 *                    of the current version
 *   metadata/:path   GET -> kv2_meta_get; PUT|POST {"max_versions",
 *                    "cas_required","delete_version_after","custom_metadata"}
 *                    -> kv2_meta_put; DELETE -> kv2_meta_delete; LIST (or
 *                    GET ?list=true) -> kv2_list
 *   delete|undelete|destroy/:path   PUT|POST {"versions":[1,2]}
 *   config           GET, PUT|POST {"max_versions","cas_required",
 *                    "delete_version_after"} -> kv2_config
 *
 * The translation is a pure function of its inputs (no connection, no
 * server) so a fuzz target drives it exactly (tests/fuzz/fuzz_kv2.c).
 * Bodies are read with jansson as the rest of the HTTP API does (invalid
 * UTF-8, "\u0000" and duplicate keys refused); numbers must be JSON
 * integers in range (a version or cas of 2^64 or more does not parse, a
 * negative one is refused), secret values strings.
 */
#ifndef CS_HTTP_KV2_H
#define CS_HTTP_KV2_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "custos.pb-c.h"
#include "http_internal.h"
#include "jbuf.h"

#define CS_HTTP_KV2_MOUNT "kv/"

/* One translated request; everything it points to is owned here. */
typedef struct cs_http_kv2 {
  Custos__Request req;
  union {
    Custos__Kv2PutReq put;
    Custos__Kv2GetReq get;
    Custos__Kv2VersionsReq versions;
    Custos__Kv2MetaGetReq meta_get;
    Custos__Kv2MetaPutReq meta_put;
    Custos__Kv2MetaDeleteReq meta_delete;
    Custos__Kv2ListReq list;
    Custos__Kv2ConfigReq config;
  } u;
  http_view view;
  json_t *body;
  Custos__KvPair *pairs;
  Custos__KvPair **ptrs;
  uint64_t *vers;
  /* When the request is answered without dispatching (status != 0). */
  int status;
  char error[200];
} cs_http_kv2;

/*
 * Translates a request to the kv/ mount: `rest` is the decoded path after
 * "kv/" (modified: a trailing '/' of a list is cut), `list` whether it is a
 * LIST, `query` the raw query string (after '?', may be ""), the body and
 * its length.  Returns 0 and either t->status 0 with t->req ready to
 * dispatch (view t->view), or t->status a 4xx with t->error; or
 * CS_ENOMEM.  Free with cs_http_kv2_free in every case.
 */
int cs_http_kv2_translate(cs_http_kv2 *t, hm_method method, int list, char *rest,
                          const char *query, const uint8_t *body, size_t body_len)
    __attribute__((warn_unused_result));
void cs_http_kv2_free(cs_http_kv2 *t);

/* The body of a kv2 result in Vault's shape for view v (HV_KV2_*): returns
 * the HTTP status (200, 404 for a deleted or destroyed version with
 * Vault's body, 500 for a response of another kind). */
int cs_http_kv2_view(cs_jbuf *b, http_view v, const Custos__Response *res);

/* The mount entry of kv/ for sys/mounts and sys/internal/ui/mounts. */
void cs_http_kv2_mount_fields(cs_jbuf *b);

#endif
