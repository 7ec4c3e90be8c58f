/*
 * listener: the TCP listening socket of custosd and the limits on who may
 * connect.  See net.h for the API.
 *
 * The listener owns the shared TLS configuration and the cs_conn_env every
 * connection refers to (limits, the dispatch function, one read buffer),
 * the count of open connections and a small hash table of connections per
 * client IP address.  Four caps: open connections, open connections per
 * address (by default a sixteenth of the first, so one address cannot take
 * every slot), and connections still in their TLS handshake, in total and
 * per address (unauthenticated peers: a handshake costs the server an ECDHE
 * and a signature, and a stalled one holds a slot until its timeout).  A
 * connection over a cap is accepted and closed at once, with a warn line (at
 * most a few per second, then a summary, so a flood cannot flood the log
 * too).
 *
 * Stopping: the listening handle is closed, each connection is asked to
 * finish (cs_conn_shutdown), and `done` runs once the listening handle and
 * the last connection are closed.  The listener frees itself right after
 * `done` returns.
 */
#include "addr.h"
#include "net.h"
#include "conn.h"
#include "cs_error.h"
#include "log.h"
#include "tls.h"
#include "wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKLOG 1024
#define ADDR_BUCKETS 1024u
#define REFUSE_LOGS_PER_SECOND 5u

typedef struct addr_key {
  uint8_t family;
  uint8_t addr[16];
} addr_key;

typedef struct addr_count {
  struct addr_count *next;
  addr_key key;
  unsigned count;
  unsigned handshaking;   /* of count: TLS handshake not done yet */
} addr_count;

struct cs_listener {
  uv_tcp_t server;
  char address[96];
  unsigned max_connections;
  unsigned max_per_address;
  unsigned max_handshakes;
  unsigned max_handshakes_per_address;
  unsigned handshaking;   /* started conns whose TLS handshake is not done */
  addr_count *buckets[ADDR_BUCKETS];
  unsigned stopping : 1;
  unsigned server_closed : 1;
  void (*done)(void *arg);
  void *done_arg;
  uint64_t refuse_log_sec;
  unsigned refuse_logged, refuse_suppressed;
  cs_conn_env env;       /* last: holds the 64 KiB read buffer */
};

/* ---------------------------------------------------------------- addresses */

/*
 * Parses "HOST:PORT", where HOST is an IPv4 literal, "[IPv6]" or
 * "localhost".  0, or CS_ECONFIG with a detail.
 */
static int parse_address(const char *s, struct sockaddr_storage *out) {
  cs_addr a;
  if (s == NULL || *s == '\0')
    return cs_error_set(CS_ECONFIG, "no listener address");
  if (cs_addr_parse(s, &a) != 0)
    return cs_error_set(CS_ECONFIG, "listener %s", cs_error_message(CS_EINVAL));
  const char *host = strcmp(a.host, "localhost") == 0 ? "127.0.0.1" : a.host;
  memset(out, 0, sizeof *out);
  if (a.bracketed) {
    if (uv_ip6_addr(host, (int)a.port, (struct sockaddr_in6 *)out) != 0)
      return cs_error_set(CS_ECONFIG, "listener address %s: bad IPv6 address", s);
  } else if (uv_ip4_addr(host, (int)a.port, (struct sockaddr_in *)out) != 0) {
    return cs_error_set(CS_ECONFIG,
                        "listener address %s: host must be an IPv4 address, [IPv6] or localhost", s);
  }
  return 0;
}

static addr_key key_of(const struct sockaddr_storage *sa) {
  addr_key k;
  memset(&k, 0, sizeof k);
  k.family = (uint8_t)sa->ss_family;
  if (sa->ss_family == AF_INET)
    memcpy(k.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  else if (sa->ss_family == AF_INET6)
    memcpy(k.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  return k;
}

static unsigned key_hash(const addr_key *k) {
  uint32_t h = 2166136261u; /* FNV-1a */
  const uint8_t *p = (const uint8_t *)k;
  for (size_t i = 0; i < sizeof *k; i++)
    h = (h ^ p[i]) * 16777619u;
  return h % ADDR_BUCKETS;
}

/* The entry for an address; created (count 0) when `create`. */
static addr_count *addr_lookup(cs_listener *l, const addr_key *k, int create) {
  unsigned b = key_hash(k);
  for (addr_count *e = l->buckets[b]; e != NULL; e = e->next)
    if (memcmp(&e->key, k, sizeof *k) == 0)
      return e;
  if (!create)
    return NULL;
  addr_count *e = calloc(1, sizeof *e);
  if (e == NULL)
    return NULL;
  e->key = *k;
  e->next = l->buckets[b];
  l->buckets[b] = e;
  return e;
}

static void addr_release(cs_listener *l, const addr_key *k) {
  unsigned b = key_hash(k);
  for (addr_count **pp = &l->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
    addr_count *e = *pp;
    if (memcmp(&e->key, k, sizeof *k) == 0) {
      if (--e->count == 0) {
        *pp = e->next;
        free(e);
      }
      return;
    }
  }
}

/* ---------------------------------------------------------------- lifecycle */

static void listener_free(cs_listener *l) {
  for (unsigned i = 0; i < ADDR_BUCKETS; i++) {
    addr_count *e = l->buckets[i];
    while (e != NULL) {
      addr_count *next = e->next;
      free(e);
      e = next;
    }
  }
  cs_tls_config_free(l->env.tls);
  free(l);
}

static void maybe_done(cs_listener *l) {
  if (!l->stopping || !l->server_closed || l->env.nconns > 0)
    return;
  cs_info("listener on %s stopped", l->address);
  if (l->done != NULL)
    l->done(l->done_arg);
  listener_free(l);
}

/* The conn is no longer in its handshake (done, or closed before). */
static void handshake_over(cs_listener *l, cs_conn *c) {
  addr_key k = key_of(cs_conn_sockaddr(c));
  addr_count *e = addr_lookup(l, &k, 0);
  if (e != NULL && e->handshaking > 0)
    e->handshaking--;
  l->handshaking--;
}

static void on_conn_established(cs_conn_env *env, cs_conn *c) { handshake_over(env->owner, c); }

static void on_conn_closed(cs_conn_env *env, cs_conn *c) {
  cs_listener *l = env->owner;
  if (!cs_conn_established(c))
    handshake_over(l, c);
  addr_key k = key_of(cs_conn_sockaddr(c));
  addr_release(l, &k);
  maybe_done(l);
}

/* A warn line per refused connection, at most a few per second. */
static void refuse_log(cs_listener *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse_log(cs_listener *l, const char *fmt, ...) {
  uint64_t sec = uv_now(l->env.loop) / 1000;
  if (sec != l->refuse_log_sec) {
    if (l->refuse_suppressed > 0)
      cs_warn("%u more connections refused in the last second", l->refuse_suppressed);
    l->refuse_log_sec = sec;
    l->refuse_logged = 0;
    l->refuse_suppressed = 0;
  }
  if (l->refuse_logged >= REFUSE_LOGS_PER_SECOND) {
    l->refuse_suppressed++;
    return;
  }
  l->refuse_logged++;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  cs_warn("%s", line);
}

static void on_connection(uv_stream_t *server, int status) {
  cs_listener *l = server->data;
  if (l->stopping)
    return;
  if (status < 0) {
    refuse_log(l, "accept failed: %s", uv_strerror(status));
    return;
  }
  cs_conn *c = cs_conn_new(&l->env);
  if (c == NULL) {
    cs_error("out of memory accepting a connection");
    return;
  }
  if (uv_accept(server, cs_conn_stream(c)) != 0 || cs_conn_accepted(c) != 0) {
    cs_conn_refuse(c);
    return;
  }
  if (l->env.nconns >= l->max_connections) {
    refuse_log(l, "refusing connection from %s: limit of %u connections reached",
               cs_conn_address(c), l->max_connections);
    cs_conn_refuse(c);
    return;
  }
  if (l->handshaking >= l->max_handshakes) {
    refuse_log(l, "refusing connection from %s: limit of %u connections in the TLS handshake "
               "reached", cs_conn_address(c), l->max_handshakes);
    cs_conn_refuse(c);
    return;
  }
  addr_key k = key_of(cs_conn_sockaddr(c));
  addr_count *e = addr_lookup(l, &k, 1);
  if (e == NULL) {
    cs_error("out of memory accepting a connection");
    cs_conn_refuse(c);
    return;
  }
  if (e->count >= l->max_per_address) {
    refuse_log(l, "refusing connection from %s: limit of %u connections per address reached",
               cs_conn_address(c), l->max_per_address);
    cs_conn_refuse(c);
    return;
  }
  if (e->handshaking >= l->max_handshakes_per_address) {
    refuse_log(l, "refusing connection from %s: limit of %u connections in the TLS handshake "
               "per address reached", cs_conn_address(c), l->max_handshakes_per_address);
    cs_conn_refuse(c);
    return;
  }
  e->count++;
  e->handshaking++;
  l->handshaking++;
  if (cs_conn_start(c) != 0) {
    /* Not started: on_conn_closed will not run. */
    e->handshaking--;
    l->handshaking--;
    addr_release(l, &k);
  }
}

static void on_server_closed(uv_handle_t *h) {
  cs_listener *l = h->data;
  l->server_closed = 1;
  if (l->stopping)
    maybe_done(l);
  else
    listener_free(l); /* start failed after the handle existed */
}

unsigned cs_listener_default_per_address(unsigned max_connections) {
  return max_connections / 16 > 0 ? max_connections / 16 : 1;
}

unsigned cs_listener_default_handshakes(unsigned max_connections) {
  return max_connections / 16 > 0 ? max_connections / 16 : 1;
}

unsigned cs_listener_default_handshakes_per_address(unsigned max_handshakes) {
  return max_handshakes / 8 > 0 ? max_handshakes / 8 : 1;
}

int cs_listener_start(cs_listener **out, uv_loop_t *loop, const cs_listener_opts *o,
                      cs_dispatch_fn dispatch, cs_independent_fn independent, void *ctx) {
  /* The daemon ignores SIGPIPE too; a peer gone mid-write must never kill
   * the process whoever embeds the listener. */
  signal(SIGPIPE, SIG_IGN);

  struct sockaddr_storage sa;
  int rc = parse_address(o->address, &sa);
  if (rc < 0)
    return rc;
  cs_listener *l = calloc(1, sizeof *l);
  if (l == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory for the listener");
  snprintf(l->address, sizeof l->address, "%s", o->address);
  l->max_connections = o->max_connections ? o->max_connections : CS_LISTENER_MAX_CONNECTIONS;
  l->max_per_address = o->max_per_address ? o->max_per_address : cs_listener_default_per_address(l->max_connections);
  l->max_handshakes = o->max_handshakes ? o->max_handshakes : cs_listener_default_handshakes(l->max_connections);
  l->max_handshakes_per_address = o->max_handshakes_per_address
                                      ? o->max_handshakes_per_address
                                      : cs_listener_default_handshakes_per_address(l->max_handshakes);

  cs_conn_env *env = &l->env;
  env->loop = loop;
  env->max_frame_preauth = o->max_frame_preauth ? o->max_frame_preauth : CS_WIRE_MAX_PREAUTH;
  env->max_frame = o->max_frame ? o->max_frame : CS_WIRE_MAX_DEFAULT;
  if (env->max_frame > CS_WIRE_MAX_ABS)
    env->max_frame = CS_WIRE_MAX_ABS;
  if (env->max_frame_preauth > env->max_frame)
    env->max_frame_preauth = env->max_frame;
  env->handshake_timeout_ms = o->handshake_timeout_ms ? o->handshake_timeout_ms : 10000;
  env->idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : 300000;
  env->max_inflight = o->max_inflight ? o->max_inflight : 1024;
  env->max_queued_bytes = o->max_queued_bytes ? o->max_queued_bytes : CS_LISTENER_MAX_QUEUED_BYTES;
  env->dispatch = dispatch;
  env->independent = independent;
  env->dispatch_ctx = ctx;
  env->on_established = on_conn_established;
  env->on_closed = on_conn_closed;
  env->owner = l;

  rc = cs_tls_config_new(&env->tls, o->cert_file, o->key_file, o->client_ca_file);
  if (rc < 0) {
    free(l);
    return rc;
  }

  rc = uv_tcp_init(loop, &l->server);
  if (rc != 0) {
    cs_tls_config_free(env->tls);
    free(l);
    return cs_error_set(CS_ECONN, "cannot listen on %s: %s", o->address, uv_strerror(rc));
  }
  l->server.data = l;
  rc = uv_tcp_bind(&l->server, (const struct sockaddr *)&sa, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&l->server, BACKLOG, on_connection);
  if (rc != 0) {
    int code = cs_error_set(CS_ECONN, "cannot listen on %s: %s", o->address, uv_strerror(rc));
    uv_close((uv_handle_t *)&l->server, on_server_closed); /* frees l */
    return code;
  }
  cs_info("listening on %s (TLS 1.2%s)", o->address,
          o->client_ca_file != NULL && o->client_ca_file[0] != '\0'
              ? ", client certificates required"
              : "");
  *out = l;
  return 0;
}

void cs_listener_stop(cs_listener *l, void (*done)(void *arg), void *arg) {
  if (l->stopping)
    return;
  l->stopping = 1;
  l->done = done;
  l->done_arg = arg;
  cs_info("listener on %s stopping: %u connections to finish", l->address, l->env.nconns);
  uv_close((uv_handle_t *)&l->server, on_server_closed);
  /* cs_conn_shutdown never unlinks synchronously: the list is stable. */
  for (cs_conn *c = l->env.conns; c != NULL; c = cs_conn_next(c))
    cs_conn_shutdown(c);
}


int cs_listener_reload_tls(cs_listener *l, const char *cert_file, const char *key_file,
                           const char *client_ca_file) {
  cs_tls_config *fresh;
  int rc = cs_tls_config_new(&fresh, cert_file, key_file, client_ca_file);
  if (rc < 0)
    return rc;
  cs_tls_config *old = l->env.tls;
  l->env.tls = fresh;
  cs_tls_config_free(old); /* freed with the last connection still using it */
  return 0;
}

unsigned cs_listener_connections(const cs_listener *l) { return l->env.nconns; }
