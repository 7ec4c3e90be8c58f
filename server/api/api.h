/*
 * api: custosd's request path (server/api/), as the daemon sees it.
 *
 * The daemon hands cs_dispatch and cs_dispatch_independent to the listener
 * (both transports, protobuf and HTTP, end there) and owns a cs_api_env:
 * what the request path works with.  Today the env's only field is the
 * auth generation; the store, seal, commit queue, audit log, config and HA
 * callbacks move into it as the daemon adopts it (see /work/wt/API_LANDED).
 */
#ifndef CS_API_H
#define CS_API_H

#include <stdint.h>

struct cs_daemon;

typedef struct cs_api_env {
  /*
   * The auth generation: the token entries and policies the request path
   * has cached are valid for one value of it.  Bumped (cs_api_auth_changed)
   * by every change that may alter an access decision; see authz.h.
   */
  uint64_t auth_gen;
} cs_api_env;

/* The daemon's env (transition: one per process, until the daemon embeds
 * its own and hands it to the listener as the dispatch context). */
cs_api_env *cs_api_env_of(struct cs_daemon *d);

/* Something that decides access may have changed: the caches are emptied
 * before the next decision. */
void cs_api_auth_changed(cs_api_env *env);

#endif
