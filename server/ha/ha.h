/*
 * ha: what a custosd in a cluster does with raft leadership.
 *
 *  - active  = raft leader AND unsealed: serves every request;
 *  - standby = anything else: answers status and unseal itself, redirects
 *    init, data and operator requests to the active (Error STANDBY with
 *    active_address), and every poll interval follows the keyring through
 *    its replica (cs_seal_follow: next terms from core/upgrade/<term>, then
 *    core/root-key and core/seal-config), so it can take over without being
 *    unsealed again;
 *  - a sealed leader hands leadership to an unsealed member;
 *  - a node that becomes raft leader serves as active only once a raft
 *    barrier of its term is applied (every entry of earlier leaders is in
 *    its store) and it has emptied its token and policy caches and reloaded
 *    the keyring from storage: once per raft term, so a failback never
 *    serves from what it cached before (requests meanwhile wait in
 *    server/api/api.c and run once it is active);
 *  - every node, leader or not, empties its token / policy cache whenever
 *    an applied entry touches core/token/ or core/policy/ (fsm.c).
 *
 * Standalone (no `cluster` group): every function here says "active".
 */
#ifndef CS_HA_H
#define CS_HA_H

#include <stddef.h>
#include "cluster.h"

struct cs_daemon;
typedef struct cs_ha cs_ha;

/* Starts raft (<storage.path>/raft) and routes the commit queue through it. */
int cs_ha_start(struct cs_daemon *d) __attribute__((warn_unused_result));
/* Stops raft; the daemon's loop ends once it is closed. */
void cs_ha_stop(struct cs_daemon *d);

/* 1 when this node serves requests itself (standalone, or active). */
int cs_ha_is_active(struct cs_daemon *d);
/* 1 when this node is the raft leader (standalone: 1). */
int cs_ha_is_leader(struct cs_daemon *d);
/* "standalone" | "active" | "standby", and the active's API address ("" when unknown). */
void cs_ha_status(struct cs_daemon *d, const char **mode, const char **active_address);

/* CS_EBUSY (RETRY) with the detail a request gets while there is no leader:
 * "no quorum: N of M members reachable ..." when a majority is out of
 * reach, else "leader election in progress". */
int cs_ha_no_leader_error(struct cs_daemon *d);

/* 1 when the leader said this node is no longer a member (it is sealed). */
int cs_ha_removed(struct cs_daemon *d);

/* Before an init: CS_EALREADYINIT when another member of the cluster
 * reported an initialized store (standalone: 0). */
int cs_ha_init_allowed(struct cs_daemon *d) __attribute__((warn_unused_result));

/* SIGHUP: reload the cluster port's certificate, key and CA; a bad set
 * (unreadable, key mismatch, not naming cluster.node_id) is refused with an
 * error line and the old one kept (standalone: nothing). */
void cs_ha_reload_tls(struct cs_daemon *d);

struct cs_cluster *cs_ha_cluster(struct cs_daemon *d);

/* list-peers / remove-peer (dispatch authorizes: sudo on sys/raft).
 * Standalone: CS_EINVAL "not in cluster mode". */
int cs_ha_peers(struct cs_daemon *d, cs_peer_info *out, size_t cap, size_t *n)
    __attribute__((warn_unused_result));
int cs_ha_add_peer(struct cs_daemon *d, const char *node_id, const char *address,
                   void (*done)(void *arg, int status), void *arg)
    __attribute__((warn_unused_result));
/* operator raft step-down: see cs_cluster_step_down. */
int cs_ha_step_down(struct cs_daemon *d, void (*done)(void *arg, int status), void *arg)
    __attribute__((warn_unused_result));
int cs_ha_remove_peer(struct cs_daemon *d, const char *node_id,
                      void (*done)(void *arg, int status), void *arg)
    __attribute__((warn_unused_result));

#endif
