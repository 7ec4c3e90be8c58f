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
 * Included by main.c and daemon.c, and, until server/api/ takes its
 * cs_api_env (API_LANDED, phase 2), by server/api/api_int.h, and by the
 * daemon-level modules snapshots.c and rewrapper.c.
 */
#ifndef CS_DAEMON_H
#define CS_DAEMON_H

#include <uv.h>
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

/* ---- implemented by server/api/ ------------------------------------------ */

/* The cs_dispatch_fn handed to the listener (ctx = the daemon). */
void cs_dispatch(void *ctx, const cs_client_info *client, Custos__Request *req, cs_reply *reply);
/* The cs_independent_fn handed to the listener: 1 for a kv put (it only
 * stages a value; earlier puts and deletes are ordered by the commit queue
 * and change nothing it reads), 0 for everything else. */
int cs_dispatch_independent(const Custos__Request *req);
/* Writes any staged audit records, releases their answers and closes the
 * api's loop handle (shutdown, once the listener has stopped). */
void cs_api_close(void);

/* Drops the cached token entries and parsed policies (seal, unseal, a
 * cluster node becoming active: what storage says may have changed). */
void cs_daemon_auth_changed(cs_daemon *d);
/* Runs again the requests held while this leader caught up. */
void cs_daemon_activation_done(cs_daemon *d);

/* ---- transition: HA as server/api/ still calls it (daemon.c) ------------ *
 * These forward to ha.h's cs_ha_* functions with d->ha; they go when the
 * api takes its cs_api_env (API_LANDED, phase 2) and calls ha.h through it. */
typedef cs_member_info cs_peer_info;
int cs_ha_is_active(cs_daemon *d);
int cs_ha_is_leader(cs_daemon *d);
void cs_ha_status(cs_daemon *d, const char **mode, const char **active_address);
int cs_ha_no_leader_error(cs_daemon *d);
int cs_ha_removed(cs_daemon *d);
int cs_ha_init_allowed(cs_daemon *d) __attribute__((warn_unused_result));
int cs_ha_peers(cs_daemon *d, cs_peer_info *out, size_t cap, size_t *n)
    __attribute__((warn_unused_result));
int cs_ha_add_peer(cs_daemon *d, const char *node_id, const char *address,
                   cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));
int cs_ha_step_down(cs_daemon *d, cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));
int cs_ha_remove_peer(cs_daemon *d, const char *node_id, cs_done_fn done,
                      void *arg) __attribute__((warn_unused_result));
/* key-status: voters that have not acknowledged the staged term (ha/staging.h). */
size_t cs_staging_waiting(cs_daemon *d, char (*names)[64], size_t cap, int64_t *deadline);
/* operator unseal --cluster (ha/unseal_relay.h has the ha-level functions). */
int cs_unseal_relay_allowed(cs_daemon *d) __attribute__((warn_unused_result));
int cs_unseal_relay(cs_daemon *d, const uint8_t *key, size_t len,
                    void (*done)(void *arg, const cs_relay_result *r, size_t n), void *arg)
    __attribute__((warn_unused_result));

#endif
