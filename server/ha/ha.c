/* ha: active/standby on top of raft leadership.  See ha.h. */
#include "ha.h"
#include "cluster.h"
#include "crypto.h"
#include "cs_error.h"
#include "daemon.h"
#include "log.h"
#include "logid.h"
#include "snapshots.h"
#include "staging.h"
#include "unseal_relay.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cs_ha {
  cs_cluster *cluster;
  uv_timer_t timer;
  int was_leader;
  uint64_t no_leader_since;  /* uv_now when no leader was first seen; 0: there is one */
  int quorum_warned;         /* the "no quorum" warning was logged for this outage */
  uint64_t restores_seen;     /* cs_store_restores when last checked */
  uint64_t marker_seen;       /* core/restore id at the last poll */
  int refs;                   /* while stopping: timer close + cluster stop */
  /* The raft term in which this node became active (0: not active), and
   * the one whose activation barrier is in flight (0: none).  Serving needs
   * active_term == the current term, so every new leadership goes through
   * activate() first, however briefly leadership was lost. */
  uint64_t active_term;
  uint64_t activating_term;
  char raft_dir[4096];
};

static void node_status(void *ctx, cs_node_status *st) {
  cs_daemon *d = ctx;
  cs_seal_status ss;
  cs_seal_get_status(d->seal, &ss);
  st->initialized = ss.initialized;
  st->sealed = ss.sealed;
  st->term = ss.term;
  /* Staged activation: "I hold staged term N", with the proof. */
  uint32_t staged = ss.sealed ? 0 : cs_keyring_staged(cs_seal_keyring(d->seal));
  st->staged_term = 0;
  if (staged != 0 &&
      cs_seal_term_proof(d->seal, staged, d->cfg.cluster.self.node_id, st->staged_proof) == 0)
    st->staged_term = staged;
}

static int commit_backend(void *ctx, const cs_batch *const *batches, size_t n,
                          cs_commitq_group_cb done, void *arg) {
  return cs_cluster_submit(ctx, batches, n, done, arg);
}

/*
 * A cluster without a leader for longer than an election takes is a cluster
 * without quorum (or one whose network is broken): an operator must act, so
 * that is a warning, logged once per outage with what this node can reach,
 * and an info line when a leader is back.
 */
static void watch_quorum(cs_daemon *d, cs_ha *ha) {
  uint64_t now = uv_now(d->loop);
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
  uint64_t grace = 4ULL * d->cfg.cluster.election_ms + 2ULL * d->cfg.cluster.poll_ms;
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

/*
 * The store was replaced (restores counter moved): by a restore through raft
 * (on this node or another) or by a raft snapshot this node installed to
 * catch up.  Checked before anything uses the keys (every poll, tick and
 * request asks cs_ha_is_leader/is_active), so no node ever acts with the
 * keyring of the replaced store: a counter flush of the old keyring would
 * overwrite the restored one.  A restore not seen before that was forced
 * over another installation or key set seals the node; otherwise the
 * keyring is reloaded (and the node seals only if its root key does not
 * open the new one).  Returns 1 when it acted.
 */
static int sync_restore(cs_daemon *d) {
  cs_ha *ha = d->ha;
  uint64_t restores = cs_store_restores(d->store);
  if (restores == ha->restores_seen || d->seal == NULL)
    return 0;
  ha->restores_seen = restores;
  uint64_t marker = 0;
  int forced = 0;
  if (cs_snapshots_marker(d->store, &marker, &forced) < 0)
    marker = ha->marker_seen; /* unreadable: no news, reload */
  int rc = cs_seal_restored(d->seal, forced && marker != ha->marker_seen);
  ha->marker_seen = marker;
  cs_daemon_auth_changed(d);
  cs_info("cluster: the store was replaced by a snapshot; %s",
          rc == 1 ? "keyring reloaded" : "sealed: unseal with the snapshot's shares");
  return 1;
}

typedef struct activation {
  cs_daemon *d;
  cs_ha *ha;
  uint64_t term;
} activation;

static int unsealed(cs_daemon *d) {
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  return !st.sealed;
}

/*
 * The barrier of `a->term` is applied: every entry of earlier leaders is in
 * the store.  Storage is authoritative now: drop the caches (tokens and
 * policies may have changed while we followed) and reload the keyring, and
 * only then serve.
 */
static void on_caught_up(void *arg, int status) {
  activation *a = arg;
  cs_daemon *d = a->d;
  cs_ha *ha = a->ha;
  uint64_t term = a->term;
  free(a);
  if (d->ha != ha || d->seal == NULL)
    return; /* stopping */
  if (ha->activating_term == term)
    ha->activating_term = 0;
  if (status < 0 || !cs_cluster_is_leader(ha->cluster) || cs_cluster_term(ha->cluster) != term ||
      !unsealed(d)) {
    cs_daemon_activation_done(d); /* held requests: redirected, or held for the next try */
    return;
  }
  cs_daemon_auth_changed(d);
  /* Never serve with keys that cannot open what the cluster wrote. */
  int rc = cs_seal_reload(d->seal);
  if (rc == 0)
    rc = cs_seal_check_active_keys(d->seal);
  if (rc < 0) {
    char why[200];
    snprintf(why, sizeof why, "%s", cs_error_message(rc));
    cs_error("cluster: this node is the raft leader but refuses to serve as active: %s; "
             "sealing, so that a member holding the keys takes over (unseal this node again "
             "to follow the cluster)", why);
    cs_seal_seal_because(d->seal, "refused to serve as active: %s", why);
    cs_daemon_activation_done(d);
    return;
  }
  ha->active_term = term;
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  cs_info("cluster: active (term %u)", st.term);
  cs_daemon_activation_done(d);
}

/* Leader and unsealed but not yet active in this raft term: starts the
 * catch-up barrier (once per term). */
static void activate(cs_daemon *d) {
  cs_ha *ha = d->ha;
  uint64_t term = cs_cluster_term(ha->cluster);
  if (ha->activating_term == term)
    return;
  activation *a = malloc(sizeof *a);
  if (a == NULL)
    return;
  *a = (activation){d, ha, term};
  int rc = cs_cluster_barrier(ha->cluster, on_caught_up, a);
  if (rc < 0) {
    free(a);
    cs_debug("cluster: cannot start the activation barrier: %s", cs_error_message(rc));
    return;
  }
  ha->activating_term = term;
}

/* A node the leader no longer lists (operator raft remove-peer) must not
 * serve anything from a replica that stopped following the cluster: it
 * seals (as an operator's seal would) and stays sealed. */
static int watch_removed(cs_daemon *d) {
  if (!cs_cluster_removed(d->ha->cluster))
    return 0;
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  if (!st.sealed) {
    cs_seal_seal(d->seal); /* runs cs_daemon_seal_changed: caches and audit key */
    cs_warn("cluster: sealed: this node was removed from the cluster");
  }
  return 1;
}

/* Every poll interval. */
static void on_poll(uv_timer_t *t) {
  cs_daemon *d = t->data;
  cs_ha *ha = d->ha;
  if (d->seal == NULL || watch_removed(d))
    return;
  watch_quorum(d, ha);
  int leader = cs_cluster_is_leader(ha->cluster);
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  if (leader && !ha->was_leader)
    cs_info("cluster: this node is the raft leader%s", st.sealed ? " (sealed: handing over)" : "");
  if (!leader && ha->was_leader)
    cs_info("cluster: this node is no longer the raft leader");
  ha->was_leader = leader;
  if (sync_restore(d))
    cs_seal_get_status(d->seal, &st);
  if (leader) {
    if (st.initialized && st.sealed) {
      if (cs_cluster_transfer_to_unsealed(ha->cluster) < 0)
        cs_debug("cluster: sealed leader: no unsealed member to hand over to yet");
    } else if (!st.sealed && cs_ha_is_active(d)) {
      /* Upgrade keys every member has used are deleted before expiry. */
      int rc = cs_seal_upgrades_acked(d->seal, cs_cluster_min_member_term(ha->cluster));
      if (rc < 0)
        cs_warn("cluster: deleting acknowledged upgrade keys failed: %s", cs_error_message(rc));
      cs_staging_tick(d); /* a staged term activates once every voter holds it */
    }
  } else {
    cs_daemon_activation_done(d); /* requests held while we were leader: redirected */
    int installed = 0;
    int rc = cs_seal_follow(d->seal, cs_now(), &installed);
    if (rc < 0 && rc != CS_ESEALED)
      cs_warn("cluster: following the active's keyring failed: %s", cs_error_message(rc));
    if (installed > 0) {
      cs_seal_get_status(d->seal, &st);
      cs_info("cluster: installed %d new keyring term(s); active term now %u", installed, st.term);
    }
  }
}

int cs_ha_start(cs_daemon *d) {
  cs_ha *ha = calloc(1, sizeof *ha);
  if (ha == NULL)
    return CS_ENOMEM;
  snprintf(ha->raft_dir, sizeof ha->raft_dir, "%s/raft", d->cfg.storage_path);
  /* Before raft replays anything: is this store from this raft log? */
  int rc = cs_logid_check(d->store, ha->raft_dir);
  if (rc < 0) {
    free(ha);
    return rc;
  }
  rc = cs_cluster_start(&ha->cluster, d->loop, d->store, ha->raft_dir, &d->cfg.cluster,
                            node_status, d);
  if (rc < 0) {
    free(ha);
    return rc;
  }
  cs_commitq_set_backend(d->commitq, commit_backend, ha->cluster);
  /* Rotations stage their term until every voter holds it (staging.c). */
  cs_seal_set_staged_activation(d->seal, 1, d->cfg.max_activation_delay);
  /* The restore already in the store when we start is not news. */
  int forced;
  if (cs_snapshots_marker(d->store, &ha->marker_seen, &forced) < 0)
    ha->marker_seen = 0;
  uv_timer_init(d->loop, &ha->timer);
  ha->timer.data = d;
  uv_timer_start(&ha->timer, on_poll, d->cfg.cluster.poll_ms, d->cfg.cluster.poll_ms);
  d->ha = ha;
  cs_unseal_relay_attach(d); /* operator unseal --cluster (unseal_relay.h) */
  return 0;
}

/* ha is freed once both its timer is closed and the cluster has stopped:
 * either can finish first (libuv runs close callbacks last-closed first). */
static void ha_release(cs_ha *ha) {
  if (--ha->refs == 0)
    free(ha);
}

static void on_cluster_stopped(void *arg) { ha_release(arg); }

static void on_timer_closed(uv_handle_t *h) {
  ha_release((cs_ha *)((char *)h - offsetof(cs_ha, timer)));
}

void cs_ha_stop(cs_daemon *d) {
  cs_ha *ha = d->ha;
  if (ha == NULL)
    return;
  d->ha = NULL;
  ha->refs = 2;
  uv_timer_stop(&ha->timer);
  uv_close((uv_handle_t *)&ha->timer, on_timer_closed);
  cs_cluster_stop(ha->cluster, on_cluster_stopped, ha);
}

int cs_ha_is_leader(cs_daemon *d) {
  if (d->ha == NULL)
    return 1;
  (void)sync_restore(d);
  return cs_cluster_is_leader(d->ha->cluster);
}

int cs_ha_is_active(cs_daemon *d) {
  if (d->ha == NULL)
    return 1;
  (void)sync_restore(d);
  cs_ha *ha = d->ha;
  if (!cs_cluster_is_leader(ha->cluster) || d->seal == NULL || !unsealed(d))
    return 0;
  if (ha->active_term == cs_cluster_term(ha->cluster))
    return 1;
  activate(d); /* a new leadership: caught up and reloaded first */
  return 0;
}

void cs_ha_status(cs_daemon *d, const char **mode, const char **active_address) {
  if (d->ha == NULL) {
    *mode = "standalone";
    *active_address = "";
    return;
  }
  *mode = cs_ha_is_active(d) ? "active" : "standby";
  /* A removed node's idea of the leader is stale. */
  *active_address = cs_ha_removed(d) ? "" : cs_cluster_leader_api(d->ha->cluster);
}

int cs_ha_removed(cs_daemon *d) { return d->ha != NULL && cs_cluster_removed(d->ha->cluster); }

int cs_ha_no_leader_error(cs_daemon *d) {
  if (cs_ha_removed(d))
    return cs_error_set(CS_EUNAVAIL, "this node was removed from the cluster (operator raft "
                        "remove-peer) and serves nothing: use another member");
  unsigned reachable = 1, voters = 1;
  if (d->ha != NULL)
    cs_cluster_quorum(d->ha->cluster, &reachable, &voters);
  if (reachable * 2 > voters)
    return cs_error_set(CS_EBUSY, "no active node: leader election in progress "
                        "(%u of %u members reachable); retry", reachable, voters);
  return cs_error_set(CS_EBUSY, "no quorum: %u of %u members reachable (a majority is %u); "
                      "retry when enough members are back", reachable, voters, voters / 2 + 1);
}

int cs_ha_init_allowed(cs_daemon *d) {
  if (d->ha == NULL)
    return 0;
  cs_seal_status ss;
  cs_seal_get_status(d->seal, &ss);
  if (ss.initialized)
    return 0; /* cs_seal_init refuses it itself */
  const char *other = cs_cluster_initialized_member(d->ha->cluster);
  if (other == NULL)
    return 0;
  return cs_error_set(CS_EALREADYINIT,
                      "the cluster is already initialized: member %s reports an initialized "
                      "store although this node's is not; init refused (the stores do not "
                      "match: see docs/ha.md, \"A store belongs to its raft log\")",
                      other);
}

void cs_ha_reload_tls(cs_daemon *d) {
  if (d->ha == NULL)
    return;
  int rc = cs_cluster_reload_tls(d->ha->cluster);
  if (rc < 0)
    cs_error("SIGHUP: new cluster TLS certificate refused, the cluster port still serves the "
             "old one: %s", cs_error_message(rc));
  else
    cs_info("SIGHUP: cluster TLS certificate and key reloaded from %s and %s",
            d->cfg.cluster.cert_file, d->cfg.cluster.key_file);
}

struct cs_cluster *cs_ha_cluster(cs_daemon *d) { return d->ha ? d->ha->cluster : NULL; }

int cs_ha_peers(cs_daemon *d, cs_peer_info *out, size_t cap, size_t *n) {
  if (d->ha == NULL)
    return cs_error_set(CS_EINVAL, "not in cluster mode (no cluster section in the configuration)");
  *n = cs_cluster_peers(d->ha->cluster, out, cap);
  return 0;
}

int cs_ha_remove_peer(cs_daemon *d, const char *node_id, void (*done)(void *arg, int status),
                      void *arg) {
  if (d->ha == NULL)
    return cs_error_set(CS_EINVAL, "not in cluster mode (no cluster section in the configuration)");
  return cs_cluster_remove(d->ha->cluster, node_id, done, arg);
}

int cs_ha_add_peer(cs_daemon *d, const char *node_id, const char *address,
                   void (*done)(void *arg, int status), void *arg) {
  if (d->ha == NULL)
    return cs_error_set(CS_EINVAL, "not in cluster mode (no cluster section in the configuration)");
  return cs_cluster_add(d->ha->cluster, node_id, address, done, arg);
}

int cs_ha_step_down(cs_daemon *d, void (*done)(void *arg, int status), void *arg) {
  if (d->ha == NULL)
    return cs_error_set(CS_EINVAL, "not in cluster mode (no cluster section in the configuration)");
  return cs_cluster_step_down(d->ha->cluster, done, arg);
}
