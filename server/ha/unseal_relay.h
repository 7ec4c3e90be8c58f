/*
 * unseal_relay: one unseal ceremony for a whole cluster
 * (`custos operator unseal --cluster SHARE`).
 *
 * The node a holder gives a share to adds it to its own unseal and relays
 * it to every other member of the raft configuration over the cluster's
 * mutually authenticated side channel (cluster.h); each member adds it to
 * its own unseal, with its own nonce and progress, and combines on its own
 * at its threshold.  A member that is not sealed ignores the share; one
 * with cluster.relay_unseal = false refuses it.  Shares are checked by the
 * receiving seal against its own key set (core/seal-config MACs), so a
 * share of another key set or installation advances nothing.  Nothing is
 * relayed further than one hop, and nothing but the share travels.
 */
#ifndef CS_UNSEAL_RELAY_H
#define CS_UNSEAL_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include "cluster.h"

struct cs_ha;

/* Cluster mode: accept relayed shares from now on (cs_ha_start).  Shares
 * go to the seal of `ha` while it runs; once it is quiesced (shutdown) or
 * the node was removed, they are refused without a look. */
void cs_unseal_relay_attach(cs_cluster *c, struct cs_ha *ha);

/* Before the local unseal of an `unseal --cluster`: 0 when this node can
 * relay, else CS_ENOTCLUSTER (standalone: ha NULL) or CS_ERELAYOFF
 * (config), so a refused relay counts nothing anywhere. */
int cs_unseal_relay_check(struct cs_ha *ha) __attribute__((warn_unused_result));

/*
 * Relays `key` to every other member (see cs_cluster_relay_unseal): done
 * runs on the loop with what each member did.  CS_ENOTCLUSTER standalone,
 * CS_ERELAYOFF when this node's cluster.relay_unseal is off; then done
 * never runs.
 */
int cs_unseal_relay_send(struct cs_ha *ha, const uint8_t *key, size_t len,
                         void (*done)(void *arg, const cs_relay_result *r, size_t n), void *arg)
    __attribute__((warn_unused_result));

#endif
