/* unseal_relay: the cluster unseal ceremony's seal side (see unseal_relay.h). */
#include "unseal_relay.h"

#include <stdio.h>
#include <string.h>

#include "cs_error.h"
#include "ha.h"
#include "log.h"

/* A share relayed by member `peer` (authenticated, in the configuration). */
static void on_share(void *ctx, const char *peer, const uint8_t *key, size_t len,
                     cs_relay_result *a) {
  cs_ha *ha = ctx;
  cs_seal *seal = cs_ha_seal(ha);
  cs_seal_status before, st;
  if (seal == NULL || cs_ha_role_now(ha) == CS_HA_REMOVED) {
    snprintf(a->error, sizeof a->error, "this node cannot be unsealed now");
    a->sealed = 1;
    return;
  }
  cs_seal_get_status(seal, &before);
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
  int rc = cs_seal_unseal(seal, key, len);
  cs_seal_get_status(seal, &st);
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

void cs_unseal_relay_attach(cs_cluster *c, cs_ha *ha) { cs_cluster_on_unseal_share(c, on_share, ha); }

int cs_unseal_relay_check(cs_ha *ha) {
  if (ha == NULL)
    return cs_error_set(CS_ENOTCLUSTER, "unseal --cluster needs cluster mode: this server is "
                                        "standalone");
  if (!cs_ha_config(ha)->relay_unseal)
    return cs_error_set(CS_ERELAYOFF, "cluster unseal relay is disabled on this node "
                                      "(cluster.relay_unseal = false): unseal each member on its own");
  return cs_cluster_relay_ready(cs_ha_cluster(ha)); /* RETRY when too many are in flight */
}

int cs_unseal_relay_send(cs_ha *ha, const uint8_t *key, size_t len,
                         void (*done)(void *arg, const cs_relay_result *r, size_t n), void *arg) {
  if (ha == NULL)
    return cs_error_set(CS_ENOTCLUSTER, "unseal --cluster needs cluster mode: this server is "
                                        "standalone");
  return cs_cluster_relay_unseal(cs_ha_cluster(ha), key, len, done, arg);
}
