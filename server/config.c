/*
 * config: reads custosd's configuration file with libconfig.  See config.h
 * and docs/config.md.
 *
 * Strictness is the point: every group and setting is checked against the
 * list of known names, so a typo ("listner", "max_conections") is an error
 * naming the file, the line and the setting instead of a default silently
 * taking its place.  The `cluster` group (HA) is parsed into cfg->cluster.
 *
 * Every error message has the form "FILE:LINE: setting.path: what is
 * wrong" (or "FILE:LINE: message" for a syntax error), and cs_config_load
 * leaves nothing allocated behind when it fails.
 */
#include "addr.h"
#include "duration.h"
#include "config.h"
#include "cs_error.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

/* Bounds of the numeric settings. */
#define MAX_MAP_SIZE_MB (16ull * 1024 * 1024)     /* 16 TiB */
#define MIN_FRAME_BYTES 1024ll
#define MAX_CONNECTIONS 1000000ll
#define MAX_INFLIGHT 65536ll
#define MIN_QUEUED_BYTES 16384ll
#define MAX_QUEUED_BYTES (1ll << 30)
#define MAX_TIMEOUT_S (30ull * 24 * 3600)         /* fits in unsigned ms */

typedef struct parse_ctx {
  const char *path;
  char *err;
  size_t errcap;
} parse_ctx;

/* Writes "FILE:LINE: NAME: message" and returns CS_ECONFIG. */
static int fail_at(parse_ctx *p, const config_setting_t *s, const char *name, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static int fail_at(parse_ctx *p, const config_setting_t *s, const char *name, const char *fmt,
                   ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char *file = s != NULL && config_setting_source_file(s) != NULL
                         ? config_setting_source_file(s)
                         : p->path;
  unsigned line = s != NULL ? config_setting_source_line(s) : 0;
  if (line > 0)
    snprintf(p->err, p->errcap, "%s:%u: %s: %s", file, line, name, msg);
  else
    snprintf(p->err, p->errcap, "%s: %s: %s", file, name, msg);
  return cs_error_set(CS_ECONFIG, "%s", p->err);
}

/* ---------------------------------------------------------------- durations */

int cs_parse_duration(const char *s, unsigned long long *seconds) {
  uint64_t v;
  int rc = cs_duration_parse(s, &v); /* common/duration.c */
  if (rc == 0)
    *seconds = v;
  return rc;
}

/* ---------------------------------------------------------------- settings */

static int check_members(parse_ctx *p, const config_setting_t *group, const char *gname,
                         const char *const *known) {
  int n = config_setting_length(group);
  for (int i = 0; i < n; i++) {
    const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
    const char *name = config_setting_name(m);
    int ok = 0;
    for (const char *const *k = known; *k != NULL && name != NULL; k++)
      if (strcmp(*k, name) == 0)
        ok = 1;
    if (!ok) {
      char full[128];
      snprintf(full, sizeof full, "%s.%s", gname, name != NULL ? name : "?");
      return fail_at(p, m, full, "unknown setting");
    }
  }
  return 0;
}

/* Looks up group.name.  Returns the setting or NULL when absent. */
static const config_setting_t *member(const config_setting_t *group, const char *name) {
  return group != NULL ? config_setting_get_member(group, name) : NULL;
}

static int get_string(parse_ctx *p, const config_setting_t *group, const char *gname,
                      const char *name, int required, char **out) {
  char full[128];
  snprintf(full, sizeof full, "%s.%s", gname, name);
  const config_setting_t *s = member(group, name);
  if (s == NULL) {
    if (required)
      return fail_at(p, group, full, "required setting is missing");
    return 0;
  }
  if (config_setting_type(s) != CONFIG_TYPE_STRING)
    return fail_at(p, s, full, "expected a string");
  const char *v = config_setting_get_string(s);
  if (v == NULL || v[0] == '\0')
    return fail_at(p, s, full, "must not be empty");
  char *dup = strdup(v);
  if (dup == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory");
  free(*out);
  *out = dup;
  return 0;
}

/* An integer in [min, max]; *found = 0 when absent. */
static int get_int(parse_ctx *p, const config_setting_t *group, const char *gname,
                   const char *name, long long min, long long max, long long *out) {
  char full[128];
  snprintf(full, sizeof full, "%s.%s", gname, name);
  const config_setting_t *s = member(group, name);
  if (s == NULL)
    return 0;
  int t = config_setting_type(s);
  if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
    return fail_at(p, s, full, "expected an integer");
  long long v = config_setting_get_int64(s);
  if (v < min || v > max)
    return fail_at(p, s, full, "must be between %lld and %lld", min, max);
  *out = v;
  return 1;
}

/* A duration ("10s", "1h30m", or a number of seconds) in [min, max]
 * seconds.  Returns 1 when present, 0 when absent, or CS_ECONFIG. */
static int get_duration(parse_ctx *p, const config_setting_t *group, const char *gname,
                        const char *name, unsigned long long min, unsigned long long max,
                        unsigned long long *out) {
  char full[128];
  snprintf(full, sizeof full, "%s.%s", gname, name);
  const config_setting_t *s = member(group, name);
  if (s == NULL)
    return 0;
  unsigned long long v = 0;
  int t = config_setting_type(s);
  if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
    long long i = config_setting_get_int64(s);
    if (i < 0)
      return fail_at(p, s, full, "must not be negative");
    v = (unsigned long long)i;
  } else if (t == CONFIG_TYPE_STRING) {
    if (cs_parse_duration(config_setting_get_string(s), &v) < 0)
      return fail_at(p, s, full, "expected a duration like \"90s\", \"2m\", \"1h30m\" or \"7d\"");
  } else {
    return fail_at(p, s, full, "expected a duration like \"90s\", \"2m\", \"1h30m\" or \"7d\"");
  }
  if (v < min || v > max)
    return fail_at(p, s, full, "must be between %llus and %llus", min, max);
  *out = v;
  return 1;
}

/* Syntax of "HOST:PORT" / "[IPv6]:PORT" (common/addr.h); the listener
 * resolves it. */
static int check_address(const char *a) {
  cs_addr ad;
  if (cs_addr_parse(a, &ad) != 0) {
    cs_error_clear();
    return -1;
  }
  return 0;
}

static const config_setting_t *group_of(parse_ctx *p, const config_setting_t *root,
                                        const char *name, int *rc) {
  const config_setting_t *g = config_setting_get_member(root, name);
  *rc = 0;
  if (g != NULL && config_setting_type(g) != CONFIG_TYPE_GROUP) {
    *rc = fail_at(p, g, name, "expected a group { ... }");
    return NULL;
  }
  return g;
}

static int parse_storage(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"path", "map_size_mb", NULL};
  int rc;
  const config_setting_t *g = group_of(p, root, "storage", &rc);
  if (rc < 0)
    return rc;
  if (g == NULL)
    return fail_at(p, NULL, "storage", "required group is missing (storage = { path = \"...\"; })");
  if ((rc = check_members(p, g, "storage", known)) < 0)
    return rc;
  if ((rc = get_string(p, g, "storage", "path", 1, &cfg->storage_path)) < 0)
    return rc;
  long long mb;
  if ((rc = get_int(p, g, "storage", "map_size_mb", 1, (long long)MAX_MAP_SIZE_MB, &mb)) < 0)
    return rc;
  if (rc == 1) {
    if ((unsigned long long)mb > SIZE_MAX >> 20)
      return fail_at(p, member(g, "map_size_mb"), "storage.map_size_mb", "too large");
    cfg->map_size = (size_t)mb << 20;
  }
  return 0;
}

static int parse_listener(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {
      "address", "tls_cert_file", "tls_key_file", "tls_client_ca_file", "max_connections",
      "max_connections_per_address", "max_frame_bytes", "max_frame_bytes_preauth",
      "handshake_timeout", "idle_timeout", "max_inflight", "max_queued_response_bytes",
      "max_handshakes", "max_handshakes_per_address", NULL};
  const char *G = "listener";
  cs_listener_opts *o = &cfg->listener;
  int rc;
  const config_setting_t *g = group_of(p, root, G, &rc);
  if (rc < 0)
    return rc;
  if (g == NULL)
    return fail_at(p, NULL, G, "required group is missing (listener = { address = \"...\"; })");
  if ((rc = check_members(p, g, G, known)) < 0)
    return rc;

  char *s = NULL;
  if ((rc = get_string(p, g, G, "address", 1, &s)) < 0)
    return rc;
  o->address = s;
  if (check_address(s) < 0)
    return fail_at(p, member(g, "address"), "listener.address",
                   "expected HOST:PORT or [IPv6]:PORT, got \"%s\"", s);
  s = NULL;
  if ((rc = get_string(p, g, G, "tls_cert_file", 1, &s)) < 0)
    return rc;
  o->cert_file = s;
  s = NULL;
  if ((rc = get_string(p, g, G, "tls_key_file", 1, &s)) < 0)
    return rc;
  o->key_file = s;
  s = NULL;
  if ((rc = get_string(p, g, G, "tls_client_ca_file", 0, &s)) < 0)
    return rc;
  o->client_ca_file = s;

  long long v;
  if ((rc = get_int(p, g, G, "max_connections", 1, MAX_CONNECTIONS, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_connections = (unsigned)v;
  if ((rc = get_int(p, g, G, "max_connections_per_address", 1, MAX_CONNECTIONS, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_per_address = (unsigned)v;
  if ((rc = get_int(p, g, G, "max_inflight", 1, MAX_INFLIGHT, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_inflight = (unsigned)v;
  if ((rc = get_int(p, g, G, "max_queued_response_bytes", MIN_QUEUED_BYTES, MAX_QUEUED_BYTES, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_queued_bytes = (size_t)v;
  if ((rc = get_int(p, g, G, "max_handshakes", 1, MAX_CONNECTIONS, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_handshakes = (unsigned)v;
  if ((rc = get_int(p, g, G, "max_handshakes_per_address", 1, MAX_CONNECTIONS, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_handshakes_per_address = (unsigned)v;
  if ((rc = get_int(p, g, G, "max_frame_bytes", MIN_FRAME_BYTES, CS_WIRE_MAX_ABS, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_frame = (size_t)v;
  if ((rc = get_int(p, g, G, "max_frame_bytes_preauth", MIN_FRAME_BYTES, CS_WIRE_MAX_ABS, &v)) < 0)
    return rc;
  if (rc == 1)
    o->max_frame_preauth = (size_t)v;
  if (o->max_frame_preauth > o->max_frame) {
    const config_setting_t *at = member(g, "max_frame_bytes_preauth");
    return fail_at(p, at != NULL ? at : member(g, "max_frame_bytes"),
                   "listener.max_frame_bytes_preauth",
                   "must not exceed listener.max_frame_bytes (%zu)", o->max_frame);
  }

  unsigned long long d;
  if ((rc = get_duration(p, g, G, "handshake_timeout", 1, 3600, &d)) < 0)
    return rc;
  if (rc == 1)
    o->handshake_timeout_ms = (unsigned)(d * 1000);
  if ((rc = get_duration(p, g, G, "idle_timeout", 1, MAX_TIMEOUT_S, &d)) < 0)
    return rc;
  if (rc == 1)
    o->idle_timeout_ms = (unsigned)(d * 1000);
  return 0;
}

static int parse_seal(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"upgrade_key_ttl", "counter_flush_interval",
                                      "max_activation_delay", "generate_root_timeout",
                                      "verify_share_per_minute", NULL};
  int rc;
  const config_setting_t *g = group_of(p, root, "seal", &rc);
  if (rc < 0 || g == NULL)
    return rc;
  if ((rc = check_members(p, g, "seal", known)) < 0)
    return rc;
  unsigned long long d;
  if ((rc = get_duration(p, g, "seal", "upgrade_key_ttl", 1, MAX_TIMEOUT_S, &d)) < 0)
    return rc;
  if (rc == 1)
    cfg->upgrade_key_ttl = (unsigned)d;
  if ((rc = get_duration(p, g, "seal", "max_activation_delay", 1, 86400, &d)) < 0)
    return rc;
  if (rc == 1)
    cfg->max_activation_delay = (unsigned)d;
  if ((rc = get_duration(p, g, "seal", "counter_flush_interval", 1, 86400, &d)) < 0)
    return rc;
  if (rc == 1)
    cfg->counter_flush_ms = (unsigned)(d * 1000);
  if ((rc = get_duration(p, g, "seal", "generate_root_timeout", 1, 86400, &d)) < 0)
    return rc;
  if (rc == 1)
    cfg->generate_root_timeout = (unsigned)d;
  long long v;
  if ((rc = get_int(p, g, "seal", "verify_share_per_minute", 1, 100000, &v)) < 0)
    return rc;
  if (rc == 1)
    cfg->verify_share_per_minute = (unsigned)v;
  return 0;
}

static int parse_audit(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"file", NULL};
  int rc;
  const config_setting_t *g = group_of(p, root, "audit", &rc);
  if (rc < 0 || g == NULL)
    return rc;
  if ((rc = check_members(p, g, "audit", known)) < 0)
    return rc;
  return get_string(p, g, "audit", "file", 0, &cfg->audit_file);
}

static int parse_token(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"max_ttl", NULL};
  int rc;
  const config_setting_t *g = group_of(p, root, "token", &rc);
  if (rc < 0 || g == NULL)
    return rc;
  if ((rc = check_members(p, g, "token", known)) < 0)
    return rc;
  unsigned long long d;
  if ((rc = get_duration(p, g, "token", "max_ttl", 1, CS_TOKEN_MAX_TTL_LIMIT, &d)) < 0)
    return rc;
  if (rc == 1)
    cfg->token_max_ttl = d;
  return 0;
}

/* snapshot = { path; interval; retain; after_key_change; } */
static int parse_snapshot(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"path", "interval", "retain", "after_key_change", NULL};
  const char *G = "snapshot";
  int rc;
  const config_setting_t *g = group_of(p, root, G, &rc);
  if (rc < 0 || g == NULL)
    return rc;
  if ((rc = check_members(p, g, G, known)) < 0)
    return rc;
  if ((rc = get_string(p, g, G, "path", 1, &cfg->snapshot.path)) < 0)
    return rc;
  unsigned long long d;
  if ((rc = get_duration(p, g, G, "interval", 1, 366ull * 86400, &d)) < 0)
    return rc;
  if (rc == 1)
    cfg->snapshot.interval_s = (unsigned)d;
  long long v;
  if ((rc = get_int(p, g, G, "retain", 1, 100000, &v)) < 0)
    return rc;
  if (rc == 1)
    cfg->snapshot.retain = (unsigned)v;
  const config_setting_t *a = member(g, "after_key_change");
  if (a != NULL) {
    if (config_setting_type(a) != CONFIG_TYPE_BOOL)
      return fail_at(p, a, "snapshot.after_key_change", "expected true or false");
    cfg->snapshot.after_key_change = config_setting_get_bool(a);
  }
  return 0;
}

/* telemetry = { unauthenticated_metrics_access; } */
static int parse_telemetry(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"unauthenticated_metrics_access", NULL};
  const char *G = "telemetry";
  int rc;
  const config_setting_t *g = group_of(p, root, G, &rc);
  if (rc < 0 || g == NULL)
    return rc;
  if ((rc = check_members(p, g, G, known)) < 0)
    return rc;
  const config_setting_t *a = member(g, "unauthenticated_metrics_access");
  if (a != NULL) {
    if (config_setting_type(a) != CONFIG_TYPE_BOOL)
      return fail_at(p, a, "telemetry.unauthenticated_metrics_access", "expected true or false");
    cfg->metrics_unauthenticated = config_setting_get_bool(a);
  }
  return 0;
}

/* One cluster member: node_id, address, api_address (all required). */
static int parse_member(parse_ctx *p, const config_setting_t *g, const char *G,
                        cs_cluster_member *m, int self) {
  static const char *const known_peer[] = {"node_id", "address", "api_address", NULL};
  int rc;
  if (!self && (rc = check_members(p, g, G, known_peer)) < 0)
    return rc;
  if ((rc = get_string(p, g, G, "node_id", 1, &m->node_id)) < 0 ||
      (rc = get_string(p, g, G, "address", 1, &m->address)) < 0 ||
      (rc = get_string(p, g, G, "api_address", 1, &m->api_address)) < 0)
    return rc;
  if (strlen(m->node_id) > 63 || strspn(m->node_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(m->node_id))
    return fail_at(p, member(g, "node_id"), G, "node_id: use up to 63 letters, digits, . _ -");
  if (check_address(m->address) < 0 || strlen(m->address) > 127)
    return fail_at(p, member(g, "address"), G, "address: expected HOST:PORT, got \"%s\"", m->address);
  if (check_address(m->api_address) < 0 || strlen(m->api_address) > 127)
    return fail_at(p, member(g, "api_address"), G, "api_address: expected HOST:PORT, got \"%s\"",
                   m->api_address);
  return 0;
}

/* cluster = { node_id; address; api_address; tls_*; peers = ( {...}, ... ); ... } */
static int parse_cluster(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {
      "node_id", "address", "api_address", "tls_cert_file", "tls_key_file", "tls_ca_file",
      "peers", "join", "election_timeout", "heartbeat_timeout", "poll_interval",
      "snapshot_threshold", "snapshot_trailing", "snapshot_log_mb", "handshake_timeout",
      "max_unauth_connections",
      "max_unauth_per_address", "relay_unseal", NULL};
  const char *G = "cluster";
  cs_cluster_config *cc = &cfg->cluster;
  int rc;
  const config_setting_t *g = group_of(p, root, G, &rc);
  if (rc < 0 || g == NULL)
    return rc;
  if ((rc = check_members(p, g, G, known)) < 0)
    return rc;
  cc->enabled = 1;
  if ((rc = parse_member(p, g, G, &cc->self, 1)) < 0 ||
      (rc = get_string(p, g, G, "tls_cert_file", 1, &cc->cert_file)) < 0 ||
      (rc = get_string(p, g, G, "tls_key_file", 1, &cc->key_file)) < 0 ||
      (rc = get_string(p, g, G, "tls_ca_file", 1, &cc->ca_file)) < 0 ||
      (rc = get_string(p, g, G, "join", 0, &cc->join)) < 0)
    return rc;
  if (cc->join != NULL && check_address(cc->join) < 0)
    return fail_at(p, member(g, "join"), "cluster.join", "expected HOST:PORT");
  const config_setting_t *peers = member(g, "peers");
  if (peers != NULL) {
    if (config_setting_type(peers) != CONFIG_TYPE_LIST && config_setting_type(peers) != CONFIG_TYPE_ARRAY)
      return fail_at(p, peers, "cluster.peers", "expected a list ( { ... }, ... )");
    int n = config_setting_length(peers);
    if (n > 15)
      return fail_at(p, peers, "cluster.peers", "at most 15 peers");
    cc->peers = calloc((size_t)n + 1, sizeof *cc->peers);
    if (cc->peers == NULL)
      return cs_error_set(CS_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
      const config_setting_t *e = config_setting_get_elem(peers, (unsigned)i);
      if (config_setting_type(e) != CONFIG_TYPE_GROUP)
        return fail_at(p, e, "cluster.peers", "expected a group { node_id; address; api_address; }");
      cc->n_peers++;
      if ((rc = parse_member(p, e, "cluster.peers", &cc->peers[i], 0)) < 0)
        return rc;
      if (strcmp(cc->peers[i].node_id, cc->self.node_id) == 0)
        return fail_at(p, e, "cluster.peers", "node_id \"%s\" is this node's own", cc->self.node_id);
    }
  }
  long long v;
  if ((rc = get_int(p, g, G, "election_timeout", 50, 60000, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->election_ms = (unsigned)v;
  if ((rc = get_int(p, g, G, "heartbeat_timeout", 10, 30000, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->heartbeat_ms = (unsigned)v;
  if (cc->heartbeat_ms >= cc->election_ms)
    return fail_at(p, g, "cluster.heartbeat_timeout", "must be below cluster.election_timeout");
  if ((rc = get_int(p, g, G, "poll_interval", 50, 600000, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->poll_ms = (unsigned)v;
  if ((rc = get_int(p, g, G, "snapshot_threshold", 2, 1000000, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->snapshot_threshold = (unsigned)v;
  if ((rc = get_int(p, g, G, "snapshot_trailing", 1, 1000000, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->snapshot_trailing = (unsigned)v;
  if ((rc = get_int(p, g, G, "snapshot_log_mb", 1, 1048576, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->snapshot_log_mb = (unsigned)v;
  /* The cluster port is exposed to whoever can reach it: bound what an
   * unauthenticated peer can hold (connections, and their time). */
  if ((rc = get_int(p, g, G, "max_unauth_connections", 1, 4096, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->max_unauth = (unsigned)v;
  if ((rc = get_int(p, g, G, "max_unauth_per_address", 1, 4096, &v)) < 0)
    return rc;
  if (rc == 1)
    cc->max_unauth_per_addr = (unsigned)v;
  else if (cc->max_unauth_per_addr > cc->max_unauth)
    cc->max_unauth_per_addr = cc->max_unauth; /* the default follows a lower total */
  if (cc->max_unauth_per_addr > cc->max_unauth)
    return fail_at(p, member(g, "max_unauth_per_address") ? member(g, "max_unauth_per_address")
                                                          : member(g, "max_unauth_connections"),
                   "cluster.max_unauth_per_address",
                   "must not exceed cluster.max_unauth_connections (%u)", cc->max_unauth);
  unsigned long long d;
  if ((rc = get_duration(p, g, G, "handshake_timeout", 1, 3600, &d)) < 0)
    return rc;
  if (rc == 1)
    cc->handshake_timeout_ms = (unsigned)(d * 1000);
  const config_setting_t *relay = member(g, "relay_unseal");
  if (relay != NULL) {
    if (config_setting_type(relay) != CONFIG_TYPE_BOOL)
      return fail_at(p, relay, "cluster.relay_unseal", "expected true or false");
    cc->relay_unseal = config_setting_get_bool(relay);
  }
  return 0;
}

static int parse_root(parse_ctx *p, const config_setting_t *root, cs_config *cfg) {
  static const char *const known[] = {"storage", "listener", "seal", "audit",
                                      "log_level", "cluster", "token", "snapshot", "telemetry", NULL};
  int rc = check_members(p, root, "", known);
  if (rc < 0) {
    /* check_members named it ".name": top-level names need no dot. */
    char *dot = strstr(p->err, ": .");
    if (dot != NULL)
      memmove(dot + 2, dot + 3, strlen(dot + 3) + 1);
    return cs_error_set(CS_ECONFIG, "%s", p->err);
  }
  if ((rc = parse_storage(p, root, cfg)) < 0 || (rc = parse_listener(p, root, cfg)) < 0 ||
      (rc = parse_seal(p, root, cfg)) < 0 || (rc = parse_audit(p, root, cfg)) < 0 ||
      (rc = parse_token(p, root, cfg)) < 0 ||
      (rc = parse_cluster(p, root, cfg)) < 0 || (rc = parse_snapshot(p, root, cfg)) < 0 ||
      (rc = parse_telemetry(p, root, cfg)) < 0)
    return rc;
  const config_setting_t *ll = config_setting_get_member(root, "log_level");
  if (ll != NULL) {
    if (config_setting_type(ll) != CONFIG_TYPE_STRING)
      return fail_at(p, ll, "log_level", "expected a string: debug, info, warn or error");
    int level = cs_log_level_parse(config_setting_get_string(ll));
    if (level < 0)
      return fail_at(p, ll, "log_level", "expected debug, info, warn or error, got \"%s\"",
                     config_setting_get_string(ll));
    cfg->log_level = level;
  }
  return 0;
}

/* ---------------------------------------------------------------- API */

void cs_config_defaults(cs_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->map_size = (size_t)1024 << 20;
  cfg->listener.max_frame_preauth = CS_WIRE_MAX_PREAUTH;
  cfg->listener.max_frame = CS_WIRE_MAX_DEFAULT;
  cfg->listener.handshake_timeout_ms = 10000;
  cfg->listener.idle_timeout_ms = 300000;
  cfg->listener.max_connections = CS_LISTENER_MAX_CONNECTIONS;
  /* max_per_address, max_handshakes(_per_address), max_queued_bytes: 0 =
   * derived by the listener (net.h). */
  cfg->listener.max_inflight = 1024;
  cfg->upgrade_key_ttl = 120;
  cfg->max_activation_delay = 600;
  cfg->counter_flush_ms = 5000;
  cfg->generate_root_timeout = 600;
  cfg->verify_share_per_minute = 10;
  cfg->token_max_ttl = CS_TOKEN_MAX_TTL_DEFAULT;
  cfg->audit_file = NULL;
  cfg->log_level = CS_LOG_INFO;
  cs_cluster_config_defaults(&cfg->cluster);
  cfg->snapshot.retain = 24;
  cfg->snapshot.after_key_change = 1;
}

void cs_config_free(cs_config *cfg) {
  if (cfg == NULL)
    return;
  free(cfg->storage_path);
  free((char *)cfg->listener.address);
  free((char *)cfg->listener.cert_file);
  free((char *)cfg->listener.key_file);
  free((char *)cfg->listener.client_ca_file);
  free(cfg->audit_file);
  free(cfg->snapshot.path);
  cfg->snapshot.path = NULL;
  cs_cluster_config_free(&cfg->cluster);
  cfg->storage_path = NULL;
  cfg->listener.address = cfg->listener.cert_file = NULL;
  cfg->listener.key_file = cfg->listener.client_ca_file = NULL;
  cfg->audit_file = NULL;
}

int cs_config_load(cs_config *cfg, const char *path, char *err, size_t errcap) {
  char dummy[8];
  if (err == NULL || errcap == 0) {
    err = dummy;
    errcap = sizeof dummy;
  }
  err[0] = '\0';
  parse_ctx p = {.path = path, .err = err, .errcap = errcap};
  cs_config_defaults(cfg);

  /* libconfig reports a missing file as "file I/O error"; say why. */
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, errcap, "%s: cannot read: %s", path, strerror(errno));
    return cs_error_set(CS_ECONFIG, "%s", err);
  }
  fclose(f);

  config_t lc;
  config_init(&lc);
  int rc;
  if (config_read_file(&lc, path) != CONFIG_TRUE) {
    const char *file = config_error_file(&lc) != NULL ? config_error_file(&lc) : path;
    const char *text = config_error_text(&lc) != NULL ? config_error_text(&lc) : "parse error";
    if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
      snprintf(err, errcap, "%s: cannot read: %s", file, text);
    else
      snprintf(err, errcap, "%s:%d: %s", file, config_error_line(&lc), text);
    rc = cs_error_set(CS_ECONFIG, "%s", err);
  } else {
    rc = parse_root(&p, config_root_setting(&lc), cfg);
  }
  config_destroy(&lc);
  if (rc < 0) {
    cs_config_free(cfg);
    cs_config_defaults(cfg);
    return rc == CS_ENOMEM ? rc : CS_ECONFIG;
  }
  return 0;
}
