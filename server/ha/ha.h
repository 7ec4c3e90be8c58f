/*
 * ha: what a custosd in a cluster does with raft leadership, as a role
 * (role.h) with explicit transitions reported to the daemon through one
 * callback, on_role(ctx, old, new).  ha never sees the daemon: it is given
 * the loop, the store, the seal and the commit queue it works with, and
 * tells its owner about roles, nothing else.
 *
 *  - ACTIVE = raft leader AND unsealed AND caught up in this raft term:
 *    serves every request;
 *  - a standby (FOLLOWER, CANDIDATE) answers status and unseal itself,
 *    redirects init, data and operator requests to the active (Error
 *    STANDBY with active_address), and every poll interval follows the
 *    keyring through its replica (cs_seal_follow: next terms from
 *    core/upgrade/<term>, then core/root-key and core/seal-config), so it
 *    can take over without being unsealed again;
 *  - LEADER_SEALED hands leadership to an unsealed member;
 *  - LEADER_CATCHING_UP: a node that becomes raft leader serves as active
 *    only once a raft barrier of its term is applied (every entry of
 *    earlier leaders is in its store) and it has reloaded the keyring from
 *    storage: once per raft term (and again after it was sealed), so a
 *    failback never serves from what it cached before.  The owner holds
 *    requests meanwhile and runs them again when the role leaves
 *    LEADER_CATCHING_UP;
 *  - REMOVED: the leader no longer lists this node: it seals and serves
 *    nothing;
 *  - every node, leader or not, empties its token / policy cache whenever
 *    an applied entry touches core/token/ or core/policy/ (fsm.c).
 *
 * When is the role evaluated?  libraft 0.15 has no state-change callback,
 * so the role is recomputed from the facts (role.h) at each poll, at each
 * question below (cs_ha_serving ... : so a request never acts on a stale
 * role), on every seal event (cs_ha_seal_changed) and when the activation
 * barrier is applied.  on_role runs from those places, never nested.
 *
 * Standalone (no `cluster` group) there is no cs_ha: every function here
 * takes ha == NULL and answers as a standalone node (role STANDALONE,
 * serving, leading).
 */
#ifndef CS_HA_H
#define CS_HA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "cluster.h"
#include "commitq.h"
#include "role.h"
#include "seal.h"
#include "store.h"

typedef struct cs_ha cs_ha;

typedef struct cs_ha_opts {
  uv_loop_t *loop;
  cs_store *store;
  cs_seal *seal;
  cs_commitq *commitq;              /* routed through raft from the start */
  const cs_cluster_config *cluster; /* copied by reference: must outlive ha */
  const char *storage_path;         /* raft's directory is <storage_path>/raft */
  unsigned max_activation_delay;    /* seal.max_activation_delay (staging.c) */
  cs_ha_role_fn on_role;            /* role changes (role.h); NULL: nobody listens */
  /* An applied entry changed tokens or policies (fsm.c): the owner bumps
   * its auth generation; NULL: the fsm empties the caches itself. */
  void (*on_auth_change)(void *ctx);
  void *ctx;
} cs_ha_opts;

/* Starts raft and routes the commit queue through it.  0 or an error. */
int cs_ha_start(cs_ha **out, const cs_ha_opts *opts) __attribute__((warn_unused_result));
/*
 * Shutdown, first half: the role becomes STOPPED (on_role runs once), the
 * poll stops, and ha never touches the seal again (the owner closes it
 * next).  Raft keeps running, so the commit queue can still flush through
 * it.  A barrier that completes later is ignored.
 */
void cs_ha_quiesce(cs_ha *ha);
/* Second half, once the commit queue is stopped: closes raft; ha is freed
 * when raft, the timer and any barrier in flight are done. */
void cs_ha_stop(cs_ha *ha);

/* The current role (re-evaluated first).  NULL: CS_HA_STANDALONE. */
cs_ha_role cs_ha_role_now(cs_ha *ha);
/* 1 when this node serves requests itself (standalone, or ACTIVE).  A
 * leader that is not yet active starts its catch-up here. */
int cs_ha_serving(cs_ha *ha);
/* 1 when this node is the raft leader (standalone: 1). */
int cs_ha_leading(cs_ha *ha);
/* "standalone" | "active" | "standby", and the active's API address ("" when
 * unknown; always "" for a removed node, whose idea of the leader is stale). */
void cs_ha_mode(cs_ha *ha, const char **mode, const char **active_address);
/* CS_EBUSY (RETRY) with the detail a request gets while there is no
 * active: "no quorum: N of M members reachable ..." when a majority is out
 * of reach, else "leader election in progress"; CS_EUNAVAIL for a removed
 * node. */
int cs_ha_unavailable(cs_ha *ha);
/* Before an init: CS_EALREADYINIT when another member of the cluster
 * reported an initialized store (standalone: 0). */
int cs_ha_may_init(cs_ha *ha) __attribute__((warn_unused_result));
/* The seal's event, forwarded by the owner: re-evaluates the role. */
void cs_ha_seal_changed(cs_ha *ha);
/* SIGHUP: reload the cluster port's certificate, key and CA; a bad set
 * (unreadable, key mismatch, not naming cluster.node_id) is refused with an
 * error line and the old one kept (standalone: nothing). */
void cs_ha_reload_tls(cs_ha *ha);
/* For snapshot headers: this node's id ("" standalone) and raft term (0). */
const char *cs_ha_node_id(cs_ha *ha);
uint64_t cs_ha_raft_term(cs_ha *ha);

/* For the other modules of server/ha (unseal_relay.c, staging.c): the cluster, the
 * configuration, and the seal while ha runs (NULL once quiesced: the
 * owner may have closed it). */
cs_cluster *cs_ha_cluster(cs_ha *ha);
const cs_cluster_config *cs_ha_config(cs_ha *ha);
cs_seal *cs_ha_seal(cs_ha *ha);
uv_loop_t *cs_ha_loop(cs_ha *ha);
unsigned cs_ha_activation_delay(cs_ha *ha);

/* The membership (operator raft ...; the caller authorizes: sudo on
 * sys/raft).  Standalone: CS_EINVAL "not in cluster mode". */
int cs_ha_members(cs_ha *ha, cs_member_info *out, size_t cap, size_t *n)
    __attribute__((warn_unused_result));
int cs_ha_member_add(cs_ha *ha, const char *node_id, const char *address,
                     cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));
int cs_ha_member_remove(cs_ha *ha, const char *node_id, cs_done_fn done,
                        void *arg) __attribute__((warn_unused_result));
/* operator raft step-down: see cs_cluster_step_down. */
int cs_ha_hand_over(cs_ha *ha, cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));

#endif
