/*
 * daemon: one custosd process's state and its life cycle.
 *
 * The daemon owns the store, the seal, the commit queue, the listener, the
 * audit log, the snapshot schedule and, in a cluster, HA (server/ha/ha.h).
 * It is the one subscriber of the seal's events (CS_SEAL_EVENT_*: caches,
 * audit HMAC key, HA's role) and of HA's role changes (held requests, caches
 * on becoming active), and runs the 1 s tick (automatic rotation, upgrade-key
 * expiry, counter flush).  main.c only parses arguments, sets signals and
 * calls start, reload and stop; the modules below never call back into the
 * daemon (no library needs a symbol defined here).
 *
 * Included by main.c and daemon.c only: the request path (server/api/)
 * and the daemon-level modules (snapshots.c, rewrapper.c) see the
 * daemon's cs_api_env (server/api/api.h), which it fills as it opens what
 * they work with.
 */
#ifndef CS_DAEMON_H
#define CS_DAEMON_H

#include <uv.h>
#include "api.h"
#include "audit.h"
#include "commitq.h"
#include "config.h"
#include "ha.h"
#include "net/net.h"
#include "seal.h"
#include "store.h"

typedef struct cs_daemon {
  uv_loop_t *loop;
  cs_config cfg;
  cs_store *store;
  cs_seal *seal;
  cs_commitq *commitq;
  cs_listener *listener;
  cs_audit *audit;              /* NULL: no audit log configured */
  cs_ha *ha;                    /* cluster mode; NULL standalone */
  uv_timer_t tick;
  int tick_started;
  uint64_t last_flush_ms;
  int shutting_down;
  int exit_code;
  const char *dev_dir;          /* --dev: removed at exit */
  cs_api_env api;               /* what the request path sees (server/api/api.h) */
} cs_daemon;

/*
 * Opens everything and starts serving on d->loop: audit log, random
 * generator, store, commit queue, seal, snapshots, HA (cluster mode), the
 * listener and the tick.  `dev_listen` non-NULL: the dev server (temporary
 * directory, self-signed certificate, init with one share and unseal, the
 * credentials printed on stdout, then listen).  `d` holds a loaded config
 * (cs_config_defaults + cs_config_load, or defaults for --dev).  Returns 0
 * or an error (logged); cs_daemon_free cleans up either way.
 */
int cs_daemon_start(cs_daemon *d, uv_loop_t *loop, const char *dev_listen)
    __attribute__((warn_unused_result));
/* SIGHUP: listener and cluster certificates, audit log reopened. */
void cs_daemon_reload(cs_daemon *d);
/* SIGTERM/SIGINT: stop accepting, finish in-flight requests and pending
 * commits, persist counters, wipe keys; `done(arg)` runs once everything
 * is closed (the loop then ends by itself).  Once only. */
void cs_daemon_stop(cs_daemon *d, void (*done)(void *arg), void *arg);
/* After the loop ended: closes the store and the audit log, removes the
 * dev directory, frees the config.  Returns the exit code. */
int cs_daemon_free(cs_daemon *d);

/* --recover-peers: offline, with the data directory locked (docs/ha.md). */
int cs_daemon_recover_members(cs_daemon *d, const char *list);

#endif
