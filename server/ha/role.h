/*
 * role: what a cluster node is, as one enum with explicit transitions.
 *
 *   STANDALONE          no cluster section: serves everything (never a
 *                       transition: a standalone daemon has no cs_ha);
 *   FOLLOWER            a raft follower (or raft not yet running): a
 *                       standby that follows the active's keyring;
 *   CANDIDATE           campaigning (pre-vote or vote): a standby too;
 *   LEADER_SEALED       the raft leader, sealed or not initialized: serves
 *                       only status/unseal/init and hands leadership to an
 *                       unsealed member;
 *   LEADER_CATCHING_UP  the raft leader, unsealed, whose activation barrier
 *                       for this raft term is not applied yet: requests
 *                       that need the data wait (the daemon holds them);
 *   ACTIVE              the raft leader, unsealed, caught up in this term,
 *                       keyring reloaded from storage: serves everything;
 *   REMOVED             the leader said this node is no member any more:
 *                       sealed, serves nothing (terminal but for STOPPED);
 *   STOPPED             shutting down (terminal): no more transitions, the
 *                       seal is no longer touched.
 *
 * The role is a function of a few facts (cs_ha_role_for): the raft state,
 * sealed or not, whether the barrier of the current raft term is applied,
 * removed, stopping.  cs_ha_role_set moves between roles only along the
 * transitions cs_ha_role_may allows (ACTIVE is reached only through
 * LEADER_CATCHING_UP) and calls on_role(ctx, old, new) once per change.
 * The callback never sees the daemon: it gets its ctx and two roles.
 *
 * Pure: no loop, no raft.  tests/unit/test_ha_role.c drives it.
 */
#ifndef CS_HA_ROLE_H
#define CS_HA_ROLE_H

typedef enum cs_ha_role {
  CS_HA_STANDALONE = 0,
  CS_HA_FOLLOWER,
  CS_HA_CANDIDATE,
  CS_HA_LEADER_SEALED,
  CS_HA_LEADER_CATCHING_UP,
  CS_HA_ACTIVE,
  CS_HA_REMOVED,
  CS_HA_STOPPED,
} cs_ha_role;
#define CS_HA_ROLE_COUNT (CS_HA_STOPPED + 1)

/* The raft states the facts use (cluster.c translates libraft's). */
enum { CS_HA_RAFT_UNAVAILABLE = 0, CS_HA_RAFT_FOLLOWER, CS_HA_RAFT_CANDIDATE, CS_HA_RAFT_LEADER };

typedef struct cs_ha_facts {
  int raft_state;  /* CS_HA_RAFT_* */
  int sealed;      /* sealed or not initialized */
  int caught_up;   /* the activation barrier of the current raft term is applied */
  int removed;     /* the leader said we are no member */
  int stopping;    /* the daemon is shutting down */
} cs_ha_facts;

/* Called once per role change, on the loop, with the old and new role. */
typedef void (*cs_ha_role_fn)(void *ctx, cs_ha_role old_role, cs_ha_role new_role);

/* "standalone", "follower", "candidate", "leader-sealed",
 * "leader-catching-up", "active", "removed", "stopped"; "?" otherwise. */
const char *cs_ha_role_name(cs_ha_role r);
/* The role these facts call for (never STANDALONE). */
cs_ha_role cs_ha_role_for(const cs_ha_facts *f);
/* 1 when `from -> to` is a transition (a role to itself is none). */
int cs_ha_role_may(cs_ha_role from, cs_ha_role to);
/* 1 for the roles that serve data (STANDALONE, ACTIVE). */
int cs_ha_role_serves(cs_ha_role r);
/* 1 for the raft leader's roles. */
int cs_ha_role_leads(cs_ha_role r);

typedef struct cs_ha_roles {
  cs_ha_role role;       /* starts at FOLLOWER */
  cs_ha_role_fn on_role; /* NULL: nobody listens */
  void *ctx;
  int firing;            /* inside on_role: a nested set is refused */
} cs_ha_roles;

void cs_ha_roles_init(cs_ha_roles *r, cs_ha_role_fn on_role, void *ctx);
/*
 * Moves to `to`.  Returns 1 when the role changed (on_role ran), 0 when it
 * was already `to`, when the move is no transition (from a terminal role,
 * or FOLLOWER straight to ACTIVE), or when called from inside on_role (the
 * caller re-evaluates later; a role never changes under a callback's
 * feet).
 */
int cs_ha_roles_set(cs_ha_roles *r, cs_ha_role to);

#endif
