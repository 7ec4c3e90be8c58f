/*
 * daemon: the state of one custosd process, shared by main.c (start-up,
 * signals, shutdown) and server/api/ (requests).
 */
#ifndef CS_DAEMON_H
#define CS_DAEMON_H

#include <uv.h>
#include "audit.h"
#include "commitq.h"
#include "config.h"
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
  uv_timer_t tick;
  uint64_t last_flush_ms;
  int shutting_down;
  int exit_code;
  const char *dev_dir;          /* --dev: removed at exit */
  struct cs_ha *ha;             /* cluster mode (server/ha/ha.h); NULL standalone */
} cs_daemon;

/* The cs_dispatch_fn handed to the listener (ctx = the daemon). */
void cs_dispatch(void *ctx, const cs_peer *peer, Custos__Request *req, cs_reply *reply);
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

/* The seal's on_event (ctx = the daemon): every seal, unseal and keyring
 * change goes through it (audit HMAC key, caches; see server/api/events.c). */
void cs_daemon_seal_changed(void *ctx, enum cs_seal_event ev);

/* Cluster mode: an activation attempt ended (active now, or not): the
 * requests held while this leader caught up are run again (ha.c). */
void cs_daemon_activation_done(cs_daemon *d);

/* Once a second: automatic rotation, upgrade-key expiry, counter flush. */
void cs_daemon_tick(uv_timer_t *t);

#endif
