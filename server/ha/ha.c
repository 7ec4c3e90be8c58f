/*
 * ha: cluster roles on top of raft leadership.  See ha.h and role.h.
 *
 * Owns the cs_cluster (raft, its TLS transport, the side channel), the poll
 * timer and the role.  Everything runs on the loop thread.  Lifetime: ha is
 * freed once its timer is closed and the cluster has stopped (refs); an
 * activation barrier still in flight then is detached (its `ha` set to
 * NULL), so a callback that raft runs late touches nothing freed.  After
 * cs_ha_quiesce the role is STOPPED, which every callback checks before it
 * touches the seal.
 */
#include "ha.h"
#include "crypto.h"
#include "cs_error.h"
#include "log.h"
#include "logid.h"
#include "snapshot.h"
#include "staging.h"
#include "unseal_relay.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One activation barrier in flight (owned by its raft request). */
typedef struct activation {
  struct cs_ha *ha;          /* NULL once ha is freed */
  uint64_t term;
  struct activation *next;
} activation;

struct cs_ha {
  cs_ha_opts o;
  cs_cluster *cluster;
  cs_ha_roles roles;
  uv_timer_t timer;
  uint64_t no_leader_since;  /* uv_now when no leader was first seen; 0: there is one */
  int quorum_warned;         /* the "no quorum" warning was logged for this outage */
  uint64_t restores_seen;    /* cs_store_restores when last checked */
  uint64_t marker_seen;      /* core/restore id at the last check */
  unsigned refs;             /* while stopping: timer close + cluster stop */
  activation *barriers;      /* in flight */
  int stopping;              /* cs_ha_quiesce ran */
  int initialized;           /* as last reported (node_status) */
  int refreshing;            /* inside refresh(): a nested one returns at once */
  /* The raft term whose activation barrier is applied (0: none), and the
   * one whose barrier is in flight (0: none).  ACTIVE needs active_term ==
   * the current term, so every new leadership, however briefly leadership
   * was lost, and every unseal of a leader, goes through catching up. */
  uint64_t active_term;
  uint64_t activating_term;
  char raft_dir[4096];
};

/* What the status reports say about us.  Once quiescing, the seal may be
 * closed already: a stopping node reports itself sealed. */
static void node_status(void *ctx, cs_node_status *st) {
  cs_ha *ha = ctx;
  if (ha->stopping) {
    st->initialized = ha->initialized;
    st->sealed = 1;
    st->term = 0;
    return;
  }
  cs_seal_status ss;
  cs_seal_get_status(ha->o.seal, &ss);
  st->initialized = ha->initialized = ss.initialized;
  st->sealed = ss.sealed;
  st->term = ss.term;
  /* Staged activation: "I hold staged term N", with the proof. */
  uint32_t staged = ss.sealed ? 0 : cs_keyring_staged(cs_seal_keyring(ha->o.seal));
  st->staged_term = 0;
  if (staged != 0 &&
      cs_seal_term_proof(ha->o.seal, staged, ha->o.cluster->self.node_id, st->staged_proof) == 0)
    st->staged_term = staged;
}

static int commit_backend(void *ctx, const cs_batch *const *batches, size_t n,
                          cs_commitq_group_cb done, void *arg) {
  return cs_cluster_submit(ctx, batches, n, done, arg);
}

static int sealed(cs_ha *ha) {
  cs_seal_status st;
  cs_seal_get_status(ha->o.seal, &st);
  return st.sealed;
}

static void ha_release(cs_ha *ha) {
  if (--ha->refs > 0)
    return;
  for (activation *a = ha->barriers; a != NULL; a = a->next)
    a->ha = NULL;
  free(ha);
}

/* ---------------------------------------------------------------- facts */

/*
 * The store was replaced (restores counter moved): by a restore through raft
 * (on this node or another) or by a raft snapshot this node installed to
 * catch up.  Checked before the role is evaluated (so before anything uses
 * the keys: every poll, tick and request asks for the role), so no node
 * ever acts with the keyring of the replaced store: a counter flush of the
 * old keyring would overwrite the restored one.  A restore not seen before
 * that was forced over another installation or key set seals the node;
 * otherwise the keyring is reloaded (and the node seals only if its root
 * key does not open the new one).  Either way the seal fires its event
 * (caches, audit key) when it was unsealed; a sealed node holds nothing
 * that the new store could contradict.
 */
static void sync_restore(cs_ha *ha) {
  uint64_t restores = cs_store_restores(ha->o.store);
  if (restores == ha->restores_seen)
    return;
  ha->restores_seen = restores;
  uint64_t marker = 0;
  int forced = 0;
  if (cs_snapshot_marker_read(ha->o.store, &marker, &forced) < 0)
    marker = ha->marker_seen; /* unreadable: no news, reload */
  int was_sealed = sealed(ha);
  int rc = cs_seal_restored(ha->o.seal, forced && marker != ha->marker_seen);
  ha->marker_seen = marker;
  cs_seal_status st;
  cs_seal_get_status(ha->o.seal, &st);
  if (rc < 0)
    cs_error("cluster: the store was replaced by a snapshot; its key set cannot be read (%s): "
             "sealed", cs_error_message(rc));
  else if (rc == 1)
    cs_info("cluster: the store was replaced by a snapshot; keyring reloaded");
  else if (!st.initialized)
    cs_info("cluster: the store was replaced by a snapshot; it holds no key set: not initialized");
  else if (was_sealed && st.ceremony == CS_SEAL_CEREMONY_UNSEAL && st.progress > 0)
    cs_info("cluster: the store was replaced by a snapshot; still sealed, the %u share(s) "
            "submitted so far still count (same key set)", st.progress);
  else if (was_sealed)
    cs_info("cluster: the store was replaced by a snapshot; still sealed");
  else
    cs_info("cluster: the store was replaced by a snapshot; sealed: unseal with the snapshot's "
            "shares");
}

static void activate(cs_ha *ha);

/*
 * Evaluates the facts and moves the role.  Entering LEADER_CATCHING_UP
 * starts the barrier; entering REMOVED seals; entering LEADER_SEALED
 * forgets the caught-up term (an unseal catches up again).
 */
static cs_ha_role refresh(cs_ha *ha) {
  if (ha->stopping || ha->refreshing)
    return ha->roles.role;
  ha->refreshing = 1;
  sync_restore(ha);
  int removed = cs_cluster_removed(ha->cluster);
  if (removed && !sealed(ha)) {
    cs_seal_seal(ha->o.seal); /* the seal's event reaches the owner (caches, audit key) */
    cs_warn("cluster: sealed: this node was removed from the cluster");
  }
  uint64_t term = cs_cluster_term(ha->cluster);
  cs_ha_facts f = {.raft_state = cs_cluster_raft_state(ha->cluster),
                   .sealed = sealed(ha),
                   .caught_up = ha->active_term != 0 && ha->active_term == term,
                   .removed = removed};
  cs_ha_role to = cs_ha_role_for(&f);
  if (to == CS_HA_LEADER_SEALED)
    ha->active_term = 0;
  cs_ha_role from = ha->roles.role;
  ha->refreshing = 0;
  if (to != from && cs_ha_roles_set(&ha->roles, to)) {
    if (cs_ha_role_leads(to) && !cs_ha_role_leads(from))
      cs_info("cluster: this node is the raft leader%s",
              to == CS_HA_LEADER_SEALED ? " (sealed: handing over)" : "");
    else if (!cs_ha_role_leads(to) && cs_ha_role_leads(from))
      cs_info("cluster: this node is no longer the raft leader");
    cs_debug("cluster: role %s -> %s", cs_ha_role_name(from), cs_ha_role_name(to));
  }
  if (ha->roles.role == CS_HA_LEADER_CATCHING_UP)
    activate(ha); /* once per term; retried after a failed barrier */
  return ha->roles.role;
}

/* ---------------------------------------------------------------- activation */

/*
 * The barrier of `a->term` is applied: every entry of earlier leaders is in
 * the store.  Storage is authoritative now: reload the keyring (its event
 * empties the caches: tokens and policies may have changed while we
 * followed), and only then become ACTIVE.  A failure leaves the role where
 * it is; the next refresh tries again.
 */
static void on_caught_up(void *arg, int status) {
  activation *a = arg;
  cs_ha *ha = a->ha;
  uint64_t term = a->term;
  if (ha != NULL)
    for (activation **p = &ha->barriers; *p != NULL; p = &(*p)->next)
      if (*p == a) {
        *p = a->next;
        break;
      }
  free(a);
  if (ha == NULL || ha->stopping)
    return; /* freed, or shutting down: the seal is not ours to touch */
  if (ha->activating_term == term)
    ha->activating_term = 0;
  if (status < 0 || !cs_cluster_is_leader(ha->cluster) || cs_cluster_term(ha->cluster) != term ||
      sealed(ha)) {
    (void)refresh(ha);
    return;
  }
  /* Never serve with keys that cannot open what the cluster wrote. */
  int rc = cs_seal_reload(ha->o.seal);
  if (rc == 0)
    rc = cs_seal_check_active_keys(ha->o.seal);
  if (rc < 0) {
    char why[200];
    snprintf(why, sizeof why, "%s", cs_error_message(rc));
    cs_error("cluster: this node is the raft leader but refuses to serve as active: %s; "
             "sealing, so that a member holding the keys takes over (unseal this node again "
             "to follow the cluster)", why);
    cs_seal_seal_because(ha->o.seal, "refused to serve as active: %s", why);
    (void)refresh(ha); /* LEADER_SEALED: the held requests run again (redirected) */
    return;
  }
  ha->active_term = term;
  if (refresh(ha) == CS_HA_ACTIVE) {
    cs_seal_status st;
    cs_seal_get_status(ha->o.seal, &st);
    cs_info("cluster: active (term %u)", st.term);
  }
}

/* LEADER_CATCHING_UP: starts the catch-up barrier (once per raft term). */
static void activate(cs_ha *ha) {
  uint64_t term = cs_cluster_term(ha->cluster);
  if (ha->activating_term == term)
    return;
  activation *a = malloc(sizeof *a);
  if (a == NULL)
    return;
  *a = (activation){ha, term, NULL};
  int rc = cs_cluster_barrier(ha->cluster, on_caught_up, a);
  if (rc < 0) {
    free(a);
    cs_debug("cluster: cannot start the activation barrier: %s", cs_error_message(rc));
    return;
  }
  a->next = ha->barriers;
  ha->barriers = a;
  ha->activating_term = term;
}

/* ---------------------------------------------------------------- poll */

/*
 * A cluster without a leader for longer than an election takes is a cluster
 * without quorum (or one whose network is broken): an operator must act, so
 * that is a warning, logged once per outage with what this node can reach,
 * and an info line when a leader is back.
 */
static void watch_quorum(cs_ha *ha) {
  uint64_t now = uv_now(ha->o.loop);
  if (cs_cluster_has_leader(ha->cluster)) {
    if (ha->quorum_warned)
      cs_info("cluster: a leader is elected again after %.1f s without one",
              (double)(now - ha->no_leader_since) / 1000.0);
    ha->no_leader_since = 0;
    ha->quorum_warned = 0;
    return;
  }
  if (ha->no_leader_since == 0) {
    ha->no_leader_since = now;
    return;
  }
  /* Elections take 1-2 election timeouts, more on a loaded machine: only
   * an outage well beyond that is worth a warning. */
  uint64_t grace = 4ULL * ha->o.cluster->election_ms + 2ULL * ha->o.cluster->poll_ms;
  if (grace < 5000)
    grace = 5000;
  if (ha->quorum_warned || now - ha->no_leader_since < grace)
    return;
  unsigned reachable, voters;
  cs_cluster_quorum(ha->cluster, &reachable, &voters);
  if (reachable * 2 > voters)
    cs_warn("cluster: no leader for %.1f s although %u of %u members are reachable: "
            "elections are failing (check the cluster network and certificates)",
            (double)(now - ha->no_leader_since) / 1000.0, reachable, voters);
  else
    cs_warn("cluster: no quorum: %u of %u members reachable (a majority is %u); "
            "requests are refused until enough members are back",
            reachable, voters, voters / 2 + 1);
  ha->quorum_warned = 1;
}

/* Every poll interval: what each role does over time. */
static void on_poll(uv_timer_t *t) {
  cs_ha *ha = t->data;
  cs_ha_role role = refresh(ha);
  if (role == CS_HA_STOPPED || role == CS_HA_REMOVED)
    return;
  watch_quorum(ha);
  cs_seal_status st;
  cs_seal_get_status(ha->o.seal, &st);
  switch (role) {
  case CS_HA_LEADER_SEALED:
    if (st.initialized && cs_cluster_transfer_to_unsealed(ha->cluster) < 0)
      cs_debug("cluster: sealed leader: no unsealed member to hand over to yet");
    break;
  case CS_HA_ACTIVE: {
    /* Upgrade keys every member has used are deleted before expiry. */
    int rc = cs_seal_upgrades_acked(ha->o.seal, cs_cluster_min_member_term(ha->cluster));
    if (rc < 0)
      cs_warn("cluster: deleting acknowledged upgrade keys failed: %s", cs_error_message(rc));
    cs_staging_tick(ha); /* a staged term activates once every voter holds it */
    break;
  }
  case CS_HA_FOLLOWER:
  case CS_HA_CANDIDATE: {
    int installed = 0;
    int rc = cs_seal_follow(ha->o.seal, cs_now(), &installed);
    if (rc < 0 && rc != CS_ESEALED)
      cs_warn("cluster: following the active's keyring failed: %s", cs_error_message(rc));
    if (installed > 0) {
      cs_seal_get_status(ha->o.seal, &st);
      cs_info("cluster: installed %d new keyring term(s); active term now %u", installed, st.term);
    }
    break;
  }
  default:
    break;
  }
}

/* ---------------------------------------------------------------- life cycle */

int cs_ha_start(cs_ha **out, const cs_ha_opts *opts) {
  cs_ha *ha = calloc(1, sizeof *ha);
  if (ha == NULL)
    return CS_ENOMEM;
  ha->o = *opts;
  cs_ha_roles_init(&ha->roles, opts->on_role, opts->ctx);
  snprintf(ha->raft_dir, sizeof ha->raft_dir, "%s/raft", opts->storage_path);
  /* Before raft replays anything: is this store from this raft log? */
  int rc = cs_logid_check(opts->store, ha->raft_dir);
  if (rc < 0) {
    free(ha);
    return rc;
  }
  rc = cs_cluster_start(&ha->cluster, opts->loop, opts->store, ha->raft_dir, opts->cluster,
                        node_status, ha);
  if (rc < 0) {
    free(ha);
    return rc;
  }
  cs_commitq_set_backend(opts->commitq, commit_backend, ha->cluster);
  if (opts->on_auth_change != NULL)
    cs_cluster_on_auth_change(ha->cluster, opts->on_auth_change, opts->ctx);
  /* Rotations stage their term until every voter holds it (staging.c). */
  cs_seal_set_staged_activation(opts->seal, 1, opts->max_activation_delay);
  /* The restore already in the store when we start is not news. */
  int forced;
  ha->restores_seen = cs_store_restores(opts->store);
  if (cs_snapshot_marker_read(opts->store, &ha->marker_seen, &forced) < 0)
    ha->marker_seen = 0;
  uv_timer_init(opts->loop, &ha->timer);
  ha->timer.data = ha;
  uv_timer_start(&ha->timer, on_poll, opts->cluster->poll_ms, opts->cluster->poll_ms);
  cs_unseal_relay_attach(ha->cluster, ha); /* operator unseal --cluster (unseal_relay.h) */
  *out = ha;
  return 0;
}

void cs_ha_quiesce(cs_ha *ha) {
  if (ha == NULL || ha->stopping)
    return;
  uv_timer_stop(&ha->timer);
  (void)cs_ha_roles_set(&ha->roles, CS_HA_STOPPED);
  ha->stopping = 1;
}

static void on_cluster_stopped(void *arg) { ha_release(arg); }

static void on_timer_closed(uv_handle_t *h) { ha_release(h->data); }

void cs_ha_stop(cs_ha *ha) {
  if (ha == NULL)
    return;
  cs_ha_quiesce(ha);
  ha->refs = 2;
  uv_close((uv_handle_t *)&ha->timer, on_timer_closed);
  cs_cluster_stop(ha->cluster, on_cluster_stopped, ha);
}

/* ---------------------------------------------------------------- questions */

cs_ha_role cs_ha_role_now(cs_ha *ha) { return ha == NULL ? CS_HA_STANDALONE : refresh(ha); }

int cs_ha_serving(cs_ha *ha) { return cs_ha_role_serves(cs_ha_role_now(ha)); }

int cs_ha_leading(cs_ha *ha) {
  if (ha == NULL)
    return 1;
  (void)refresh(ha);
  /* raft's own answer: a leader is a leader even while stopping */
  return cs_cluster_is_leader(ha->cluster);
}

void cs_ha_mode(cs_ha *ha, const char **mode, const char **active_address) {
  cs_ha_role r = cs_ha_role_now(ha);
  if (ha == NULL) {
    *mode = "standalone";
    *active_address = "";
    return;
  }
  *mode = r == CS_HA_ACTIVE ? "active" : "standby";
  *active_address = r == CS_HA_REMOVED ? "" : cs_cluster_leader_api(ha->cluster);
}

int cs_ha_unavailable(cs_ha *ha) {
  if (ha != NULL && cs_cluster_removed(ha->cluster))
    return cs_error_set(CS_EUNAVAIL, "this node was removed from the cluster (operator raft "
                        "remove-peer) and serves nothing: use another member");
  unsigned reachable = 1, voters = 1;
  if (ha != NULL)
    cs_cluster_quorum(ha->cluster, &reachable, &voters);
  if (reachable * 2 > voters)
    return cs_error_set(CS_EBUSY, "no active node: leader election in progress "
                        "(%u of %u members reachable); retry", reachable, voters);
  return cs_error_set(CS_EBUSY, "no quorum: %u of %u members reachable (a majority is %u); "
                      "retry when enough members are back", reachable, voters, voters / 2 + 1);
}

int cs_ha_may_init(cs_ha *ha) {
  if (ha == NULL)
    return 0;
  cs_seal_status ss;
  cs_seal_get_status(ha->o.seal, &ss);
  if (ss.initialized)
    return 0; /* cs_seal_init refuses it itself */
  const char *other = cs_cluster_initialized_member(ha->cluster);
  if (other == NULL)
    return 0;
  return cs_error_set(CS_EALREADYINIT,
                      "the cluster is already initialized: member %s reports an initialized "
                      "store although this node's is not; init refused (the stores do not "
                      "match: see docs/ha.md, \"A store belongs to its raft log\")",
                      other);
}

void cs_ha_seal_changed(cs_ha *ha) {
  if (ha != NULL)
    (void)refresh(ha);
}

void cs_ha_reload_tls(cs_ha *ha) {
  if (ha == NULL)
    return;
  int rc = cs_cluster_reload_tls(ha->cluster);
  if (rc < 0)
    cs_error("SIGHUP: new cluster TLS certificate refused, the cluster port still serves the "
             "old one: %s", cs_error_message(rc));
  else
    cs_info("SIGHUP: cluster TLS certificate and key reloaded from %s and %s",
            ha->o.cluster->cert_file, ha->o.cluster->key_file);
}

const char *cs_ha_node_id(cs_ha *ha) { return ha == NULL ? "" : cs_cluster_node_id(ha->cluster); }

uint64_t cs_ha_raft_term(cs_ha *ha) { return ha == NULL ? 0 : cs_cluster_term(ha->cluster); }

cs_cluster *cs_ha_cluster(cs_ha *ha) { return ha->cluster; }
const cs_cluster_config *cs_ha_config(cs_ha *ha) { return ha->o.cluster; }
cs_seal *cs_ha_seal(cs_ha *ha) { return ha->stopping ? NULL : ha->o.seal; }
uv_loop_t *cs_ha_loop(cs_ha *ha) { return ha->o.loop; }
unsigned cs_ha_activation_delay(cs_ha *ha) { return ha->o.max_activation_delay; }

static int standalone(void) {
  return cs_error_set(CS_EINVAL, "not in cluster mode (no cluster section in the configuration)");
}

int cs_ha_members(cs_ha *ha, cs_member_info *out, size_t cap, size_t *n) {
  if (ha == NULL)
    return standalone();
  *n = cs_cluster_members(ha->cluster, out, cap);
  return 0;
}

int cs_ha_member_remove(cs_ha *ha, const char *node_id, cs_done_fn done,
                        void *arg) {
  if (ha == NULL)
    return standalone();
  return cs_cluster_remove(ha->cluster, node_id, done, arg);
}

int cs_ha_member_add(cs_ha *ha, const char *node_id, const char *address,
                     cs_done_fn done, void *arg) {
  if (ha == NULL)
    return standalone();
  return cs_cluster_add(ha->cluster, node_id, address, done, arg);
}

int cs_ha_hand_over(cs_ha *ha, cs_done_fn done, void *arg) {
  if (ha == NULL)
    return standalone();
  return cs_cluster_step_down(ha->cluster, done, arg);
}
