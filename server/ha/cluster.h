/*
 * cluster: a custos node as a member of a raft cluster (canonical libraft
 * 0.15 on the daemon's libuv loop, over the raft_tls transport, with the
 * LMDB state machine of fsm.c).
 *
 * It owns the raft instance, the membership table (node ids, cluster and
 * API addresses) and the side channel on which members report their status
 * (sealed or not, keyring term, applied index) to the leader every poll
 * interval.  What the daemon does with leadership (active/standby, the seal
 * following the keyring) is in ha.c; nothing here knows a key.
 *
 * Raft ids are derived from node ids (FNV-1a 64), so every node computes the
 * same ids from its configuration.
 */
#ifndef CS_CLUSTER_H
#define CS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "cs_error.h"
#include "store.h"

typedef struct cs_cluster_member {
  char *node_id;
  char *address;      /* raft and cluster traffic, HOST:PORT */
  char *api_address;  /* where clients are sent */
} cs_cluster_member;

/*
 * Raft entries between two snapshots of the state machine (Vault's default
 * too).  A snapshot encodes the whole store (on a libuv worker since
 * session 9, fsm.c; it still costs the CPU and the disk writes), so at
 * 100,000 secrets one every 1,024 entries cost a fifth of a cluster's
 * write throughput and raised its p99 by half again (docs/performance.md,
 * session 8).  The price: libraft keeps the entries since the last
 * snapshot (plus snapshot_trailing) in memory and in <storage.path>/raft,
 * and replays them at start.  An entry is one loop turn's writes, so with
 * 256-byte values about 100 MiB at this threshold; with large values (a
 * write may be up to max_frame_bytes) it would be bounded only by their
 * size: CS_SNAPSHOT_LOG_MB bounds the bytes too (docs/config.md).
 */
#define CS_SNAPSHOT_THRESHOLD 8192
/* MiB of entries applied since the last snapshot that call for the next
 * one before the threshold (fsm.c); the trailing entries come on top. */
#define CS_SNAPSHOT_LOG_MB 128

/* The `cluster` group of the configuration (strings owned by the config). */
typedef struct cs_cluster_config {
  int enabled;
  cs_cluster_member self;
  cs_cluster_member *peers;
  size_t n_peers;
  char *cert_file, *key_file, *ca_file;
  char *join;                 /* cluster address of a running member, or NULL */
  unsigned election_ms;       /* default 500 (cs_cluster_config_defaults) */
  unsigned heartbeat_ms;      /* default 50 */
  unsigned poll_ms;           /* standby poll and status report; default 1000 */
  unsigned snapshot_threshold;/* entries between snapshots; default CS_SNAPSHOT_THRESHOLD */
  unsigned snapshot_trailing; /* entries kept after a snapshot; default 128 */
  unsigned snapshot_log_mb;   /* ... or once the entries since hold this much; default CS_SNAPSHOT_LOG_MB */
  unsigned handshake_timeout_ms; /* cluster port: TLS handshake + preamble; default 5000 */
  unsigned max_unauth;        /* cluster port: connections not yet authenticated; default 128 */
  unsigned max_unauth_per_addr; /* ... from one IP address; default 16 */
  int relay_unseal;           /* `operator unseal --cluster`: relay and accept shares; default on */
} cs_cluster_config;

void cs_cluster_config_defaults(cs_cluster_config *cc);
void cs_cluster_config_free(cs_cluster_config *cc);

typedef struct cs_cluster cs_cluster;

/* What a node reports about itself (filled by the daemon's callback). */
typedef struct cs_node_status {
  int initialized;        /* the store holds a seal config */
  int sealed;
  uint32_t term;          /* active keyring term, 0 while sealed */
  uint32_t staged_term;   /* staged term held, 0: none */
  uint8_t staged_proof[32]; /* its proof (cs_seal_term_proof) */
} cs_node_status;

/*
 * Starts raft in `dir` (created if missing) on `loop`, applying to `store`.
 * A node whose log is empty and that has no `join` address bootstraps the
 * configured membership (every node lists the same members, so every node
 * bootstraps the same configuration); a node with `join` waits until an
 * operator adds it (cs_cluster_add on the leader).
 * `status_fn` is asked for this node's status before each report.
 * Returns 0 or CS_ETLS / CS_EIO / CS_ECONFIG with a detail.
 */
int cs_cluster_start(cs_cluster **out, uv_loop_t *loop, cs_store *store, const char *dir,
                     const cs_cluster_config *cfg,
                     void (*status_fn)(void *ctx, cs_node_status *st), void *ctx)
    __attribute__((warn_unused_result));
/* See cs_fsm_on_auth_change (fsm.h). */
void cs_cluster_on_auth_change(cs_cluster *c, void (*fn)(void *ctx), void *ctx);
/* Closes raft and the transport; `done` runs on the loop when finished. */
void cs_cluster_stop(cs_cluster *c, void (*done)(void *arg), void *arg);

/* SIGHUP: reloads the cluster port's certificate, key and CA from the
 * configured files (cs_raft_tls_reload). */
int cs_cluster_reload_tls(cs_cluster *c) __attribute__((warn_unused_result));

/* 1 when this node is the raft leader. */
int cs_cluster_is_leader(cs_cluster *c);
/* raft's state as CS_HA_RAFT_* (role.h). */
int cs_cluster_raft_state(cs_cluster *c);
/* The API address of the current leader ("" when unknown or when it is
 * not in the membership table). */
const char *cs_cluster_leader_api(cs_cluster *c);
const char *cs_cluster_node_id(const cs_cluster *c);
/* The last raft index applied to this node's store. */
uint64_t cs_cluster_applied(cs_cluster *c);

/*
 * Appends the n batches (serialized, cs_fsm_entry_encode) as one raft
 * entry; done(arg, status, each) runs on the loop once the entry is applied
 * by the local FSM (status 0, each[i] the store's result for batches[i]:
 * one bad batch fails alone) or failed as a whole (status < 0: CS_ESTANDBY
 * when not leader, CS_EUNAVAIL when leadership was lost before the entry
 * committed; each NULL).  The signature of a cs_commitq backend.
 */
int cs_cluster_submit(void *c, const cs_batch *const *batches, size_t n,
                      void (*done)(void *arg, int status, const int *each), void *arg)
    __attribute__((warn_unused_result));

/* Leader only: the node id of a member of the configuration (not this
 * node) that reported an initialized store within the last 3 poll
 * intervals, or NULL.  An init must not be accepted then: the entry would
 * be refused by that member's state machine and the stores would diverge. */
const char *cs_cluster_initialized_member(cs_cluster *c);

/* 1 once the leader said this node is no longer in the configuration
 * (removed by an operator): it then stops campaigning and reporting. */
int cs_cluster_removed(cs_cluster *c);

/* Whether any leader is known (this node or another). */
int cs_cluster_has_leader(cs_cluster *c);
/* Voters in the configuration, and how many of them (this node included)
 * gave a sign of life within the last 3 poll intervals.  Without a leader,
 * every node probes the others each poll interval, so the count is fresh. */
void cs_cluster_quorum(cs_cluster *c, unsigned *reachable, unsigned *voters);

/*
 * Leader only: appends a raft barrier; done(arg, 0) runs on the loop once
 * it is applied, i.e. once every entry before it (those of earlier leaders
 * included) is applied to the local store; done(arg, CS_EUNAVAIL) when
 * leadership was lost first.  Returns 0, or CS_ESTANDBY / CS_EUNAVAIL /
 * CS_ENOMEM and then done never runs.
 */
int cs_cluster_barrier(cs_cluster *c, cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));
/* The raft term this node is in (a new leadership is a new term). */
uint64_t cs_cluster_term(cs_cluster *c);

/* Leader only: the lowest keyring term reported by every member (unsealed
 * or not) within the last 3 poll intervals; 0 when a member has not
 * reported or reports a sealed node.  Used to drop upgrade keys early. */
uint32_t cs_cluster_min_member_term(cs_cluster *c);

/* Leader only: what each OTHER member of the configuration last reported
 * (staged activation, ha/staging.c).  `fresh`: a report within the last 3
 * poll intervals. */
typedef struct cs_member_report {
  char node_id[64];
  int voter, fresh, sealed;
  uint32_t term, staged_term;
  uint8_t staged_proof[32];
  uint64_t applied;       /* its last applied raft index, as reported */
} cs_member_report;
/* Fills up to cap entries; returns the count (0 when not the leader). */
size_t cs_cluster_reports(cs_cluster *c, cs_member_report *out, size_t cap);

/* Leader only: hands leadership to an unsealed member seen recently.
 * 0 when a transfer started, CS_ENOTFOUND when there is none. */
int cs_cluster_transfer_to_unsealed(cs_cluster *c) __attribute__((warn_unused_result));

/* Leader only (operator raft step-down): hands leadership to the unsealed
 * voter seen within 3 poll intervals with the highest applied index; done
 * runs once another node leads (0) or the transfer failed.  CS_ESTANDBY
 * when not the leader, CS_EINPROGRESS during a transfer, CS_ENOSUCCESSOR
 * when no member qualifies. */
int cs_cluster_step_down(cs_cluster *c, cs_done_fn done, void *arg)
    __attribute__((warn_unused_result));

/*
 * Cluster unseal (`operator unseal --cluster`).  A member that receives a
 * share from a client relays it, over the side channel (one mutually
 * authenticated connection per member, the peer's certificate checked to
 * name that member), to every other member of the raft configuration.  A
 * receiver hands a share relayed by a member of its configuration to
 * `fn`, which adds it to this node's own unseal (or ignores it when the
 * node is not sealed) and fills the answer; shares from a node that is not
 * a member, or while relay_unseal is off, are refused without looking at
 * them.  Nothing here knows what a share is.
 */
typedef struct cs_relay_result {
  char node_id[64];
  int delivered;          /* the member answered */
  int sealed;
  unsigned progress, t;
  char error[256];        /* refusal or connection failure; "" when accepted */
} cs_relay_result;
typedef void (*cs_cluster_unseal_fn)(void *ctx, const char *peer, const uint8_t *key, size_t len,
                                     cs_relay_result *answer);
void cs_cluster_on_unseal_share(cs_cluster *c, cs_cluster_unseal_fn fn, void *ctx);
/* Relays in flight at once on one node (each is one connection per member). */
#define CS_CLUSTER_MAX_RELAYS 8
/* 0 when a relay can start now, CS_ERELAYOFF or CS_EBUSY (CS_CLUSTER_MAX_RELAYS
 * in flight): checked before the local unseal, so a refused relay counts
 * nothing anywhere. */
int cs_cluster_relay_ready(cs_cluster *c) __attribute__((warn_unused_result));
/* Relays `key` to every other member; done(arg, results, n) runs on the
 * loop once every member answered or failed (each attempt is bounded by the
 * cluster handshake timeout); results are valid during the call.  n == 0:
 * no other member.  Returns 0, CS_ERELAYOFF, CS_EBUSY (CS_CLUSTER_MAX_RELAYS
 * in flight), CS_EBADSHARE, CS_EINVAL or CS_ENOMEM (done then never runs).  The share is copied and wiped once sent. */
int cs_cluster_relay_unseal(cs_cluster *c, const uint8_t *key, size_t len,
                            void (*done)(void *arg, const cs_relay_result *r, size_t n),
                            void *arg) __attribute__((warn_unused_result));

/* One member of the cluster: a line of `operator raft list-peers`. */
typedef struct cs_member_info {
  char node_id[64];
  char address[128];
  char api_address[128];
  int voter, leader;
  uint64_t applied;       /* last reported (the leader's own for itself) */
  int reachable;          /* a sign of life within 3 poll intervals (+0.5 s) */
  int64_t last_contact_ms;/* since the last sign of life; 0 itself; -1 never */
  int reported;           /* a status report was seen: sealed and term are known */
  int sealed;
  uint32_t term;          /* keyring term last reported */
} cs_member_info;
/* Fills up to cap entries; returns the count. */
size_t cs_cluster_members(cs_cluster *c, cs_member_info *out, size_t cap);
/* Leader only: adds node_id (raft address `address`) to the configuration
 * and promotes it to voter once it caught up; done runs when the promotion
 * committed or the change failed.  The operator's approval of a new node
 * (dispatch authorizes: sudo on sys/raft).  CS_EPEEREXISTS when it is
 * already a member, CS_EINVAL for a bad id or address. */
int cs_cluster_add(cs_cluster *c, const char *node_id, const char *address,
                   cs_done_fn done, void *arg) __attribute__((warn_unused_result));
/* Leader only: removes node_id from the configuration; done runs later. */
int cs_cluster_remove(cs_cluster *c, const char *node_id, cs_done_fn done,
                      void *arg) __attribute__((warn_unused_result));

#endif
