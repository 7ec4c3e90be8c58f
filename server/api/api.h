/*
 * api: custosd's request path (server/api/), as the daemon sees it.
 *
 * The daemon owns one cs_api_env, fills it as it opens what the request
 * path works with (store, seal, commit queue, audit log, HA, listener) and
 * hands it to the listener as the context of cs_dispatch (both transports,
 * protobuf and HTTP, end there) and to the daemon-level modules that serve
 * requests (snapshots.c, rewrapper.c).  Nothing here knows the daemon: it
 * only sees this env, and calls ha.h with env->ha (a one-way dependency).
 */
#ifndef CS_API_H
#define CS_API_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "audit.h"
#include "commitq.h"
#include "config.h"
#include "custos.pb-c.h"
#include "ha.h"
#include "net/net.h"
#include "seal.h"
#include "store.h"
#include "unseal_relay.h"

typedef struct cs_api_env {
  uv_loop_t *loop;
  const cs_config *cfg;
  cs_store *store;
  cs_seal *seal;
  cs_commitq *commitq;
  cs_listener *listener;     /* NULL until listening (status, metrics) */
  cs_audit *audit;           /* NULL: no audit log configured */
  cs_ha *ha;                 /* NULL: standalone (ha.h answers for NULL) */
  const int *shutting_down;  /* the daemon's flag: nonzero once stopping */
  /*
   * The auth generation, owned by the daemon: the token entries and
   * policies the request path has cached are valid for one value of it.
   * Bumped (cs_api_auth_changed) by every change that may alter an access
   * decision; see authz.h.
   */
  uint64_t auth_gen;
} cs_api_env;

/* The cs_dispatch_fn handed to the listener (ctx = the cs_api_env). */
void cs_dispatch(void *ctx, const cs_client_info *client, Custos__Request *req, cs_reply *reply);
/* The cs_independent_fn handed to the listener: 1 for a kv put (it only
 * stages a value; earlier puts and deletes are ordered by the commit queue
 * and change nothing it reads), 0 for everything else. */
int cs_dispatch_independent(const Custos__Request *req);
/* Writes any staged audit records, releases their answers and closes the
 * api's loop handle (shutdown, once the listener has stopped). */
void cs_api_close(void);

/* Something that decides access may have changed (a seal event, a node
 * becoming active): the caches are emptied before the next decision. */
void cs_api_auth_changed(cs_api_env *env);
/* Runs again the requests held while this leader caught up (its role left
 * LEADER_CATCHING_UP). */
void cs_api_activation_done(cs_api_env *env);

/* ---- HA as the request path asks it (env.c: ha.h with env->ha) --------- */
typedef cs_member_info cs_peer_info;
int cs_ha_is_active(cs_api_env *d);
int cs_ha_is_leader(cs_api_env *d);
void cs_ha_status(cs_api_env *d, const char **mode, const char **active_address);
int cs_ha_no_leader_error(cs_api_env *d);
int cs_ha_removed(cs_api_env *d);
int cs_ha_init_allowed(cs_api_env *d) __attribute__((warn_unused_result));
int cs_ha_peers(cs_api_env *d, cs_peer_info *out, size_t cap, size_t *n)
    __attribute__((warn_unused_result));
int cs_ha_add_peer(cs_api_env *d, const char *node_id, const char *address, cs_done_fn done,
                   void *arg) __attribute__((warn_unused_result));
int cs_ha_step_down(cs_api_env *d, cs_done_fn done, void *arg) __attribute__((warn_unused_result));
int cs_ha_remove_peer(cs_api_env *d, const char *node_id, cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));
/* key-status: voters that have not acknowledged the staged term (ha/staging.h). */
size_t cs_staging_waiting(cs_api_env *d, char (*names)[64], size_t cap, int64_t *deadline);
/* operator unseal --cluster (ha/unseal_relay.h has the ha-level functions). */
int cs_unseal_relay_allowed(cs_api_env *d) __attribute__((warn_unused_result));
int cs_unseal_relay(cs_api_env *d, const uint8_t *key, size_t len,
                    void (*done)(void *arg, const cs_relay_result *r, size_t n), void *arg)
    __attribute__((warn_unused_result));

#endif
