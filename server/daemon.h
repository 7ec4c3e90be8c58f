/*
 * daemon: the state of one custosd process, shared by main.c (start-up,
 * signals, shutdown) and dispatch.c (requests).
 */
#ifndef CS_DAEMON_H
#define CS_DAEMON_H

#include <uv.h>
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
  uv_timer_t tick;
  uint64_t last_flush_ms;
  int shutting_down;
  int exit_code;
  const char *dev_dir;          /* --dev: removed at exit */
} cs_daemon;

/* The cs_dispatch_fn handed to the listener (ctx = the daemon). */
void cs_dispatch(void *ctx, const cs_peer *peer, Custos__Request *req, cs_reply *reply);

/* Once a second: automatic rotation, upgrade-key expiry, counter flush. */
void cs_daemon_tick(uv_timer_t *t);

#endif
