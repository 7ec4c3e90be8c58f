/* unseal_relay: the cluster unseal ceremony's seal side (see unseal_relay.h). */
#include "unseal_relay.h"

#include <stdio.h>
#include <string.h>

#include "cs_error.h"
#include "daemon.h"
#include "ha.h"
#include "log.h"

/* A share relayed by member `peer` (authenticated, in the configuration). */
static void on_share(void *ctx, const char *peer, const uint8_t *key, size_t len,
                     cs_relay_result *a) {
  cs_daemon *d = ctx;
  cs_seal_status before, st;
  if (d->seal == NULL || cs_ha_removed(d)) {
    snprintf(a->error, sizeof a->error, "this node cannot be unsealed now");
    a->sealed = 1;
    return;
  }
  cs_seal_get_status(d->seal, &before);
  if (!before.initialized) {
    snprintf(a->error, sizeof a->error, "this node is not initialized");
    a->sealed = 1;
    return;
  }
  if (!before.sealed) { /* not sealed: the share is ignored, not even checked */
    a->sealed = 0;
    a->t = before.t;
    return;
  }
  int rc = cs_seal_unseal(d->seal, key, len);
  cs_seal_get_status(d->seal, &st);
  a->sealed = st.sealed;
  a->progress = st.progress;
  a->t = st.t;
  if (rc < 0) {
    cs_warn("unseal share relayed by node %s refused: %s", peer, cs_error_message(rc));
    snprintf(a->error, sizeof a->error, "%s", cs_error_message(rc));
    return;
  }
  if (!st.sealed)
    cs_info("unsealed by a share relayed by node %s: term %u is active", peer, st.term);
  else
    cs_info("unseal share relayed by node %s: progress %u/%u", peer, st.progress, st.t);
}

void cs_unseal_relay_attach(cs_daemon *d) {
  cs_cluster *c = cs_ha_cluster(d);
  if (c != NULL)
    cs_cluster_on_unseal_share(c, on_share, d);
}

int cs_unseal_relay_allowed(cs_daemon *d) {
  cs_cluster *c = d->ha != NULL ? cs_ha_cluster(d) : NULL;
  if (c == NULL)
    return cs_error_set(CS_ENOTCLUSTER, "unseal --cluster needs cluster mode: this server is "
                                        "standalone");
  if (!d->cfg.cluster.relay_unseal)
    return cs_error_set(CS_ERELAYOFF, "cluster unseal relay is disabled on this node "
                                      "(cluster.relay_unseal = false): unseal each member on its own");
  return 0;
}

int cs_unseal_relay(cs_daemon *d, const uint8_t *key, size_t len,
                    void (*done)(void *arg, const cs_relay_result *r, size_t n), void *arg) {
  cs_cluster *c = d->ha != NULL ? cs_ha_cluster(d) : NULL;
  if (c == NULL)
    return cs_error_set(CS_ENOTCLUSTER, "unseal --cluster needs cluster mode: this server is "
                                        "standalone");
  return cs_cluster_relay_unseal(c, key, len, done, arg);
}
