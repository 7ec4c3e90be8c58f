/* role: the cluster roles and their transitions.  See role.h. */
#include "role.h"

#include <stddef.h>

const char *cs_ha_role_name(cs_ha_role r) {
  static const char *const names[CS_HA_ROLE_COUNT] = {
      [CS_HA_STANDALONE] = "standalone",
      [CS_HA_FOLLOWER] = "follower",
      [CS_HA_CANDIDATE] = "candidate",
      [CS_HA_LEADER_SEALED] = "leader-sealed",
      [CS_HA_LEADER_CATCHING_UP] = "leader-catching-up",
      [CS_HA_ACTIVE] = "active",
      [CS_HA_REMOVED] = "removed",
      [CS_HA_STOPPED] = "stopped",
  };
  return (unsigned)r < CS_HA_ROLE_COUNT ? names[r] : "?";
}

cs_ha_role cs_ha_role_for(const cs_ha_facts *f) {
  if (f->stopping)
    return CS_HA_STOPPED;
  if (f->removed)
    return CS_HA_REMOVED;
  switch (f->raft_state) {
  case CS_HA_RAFT_LEADER:
    if (f->sealed)
      return CS_HA_LEADER_SEALED;
    return f->caught_up ? CS_HA_ACTIVE : CS_HA_LEADER_CATCHING_UP;
  case CS_HA_RAFT_CANDIDATE:
    return CS_HA_CANDIDATE;
  default:
    return CS_HA_FOLLOWER;
  }
}

#define B(r) (1u << (r))

int cs_ha_role_may(cs_ha_role from, cs_ha_role to) {
  /* Row: from; bits: the roles it may move to.  Every live role may end
   * (REMOVED, STOPPED); ACTIVE is entered only from LEADER_CATCHING_UP. */
  static const unsigned next[CS_HA_ROLE_COUNT] = {
      [CS_HA_STANDALONE] = 0,
      [CS_HA_FOLLOWER] = B(CS_HA_CANDIDATE) | B(CS_HA_LEADER_SEALED) |
                         B(CS_HA_LEADER_CATCHING_UP) | B(CS_HA_REMOVED) | B(CS_HA_STOPPED),
      [CS_HA_CANDIDATE] = B(CS_HA_FOLLOWER) | B(CS_HA_LEADER_SEALED) |
                          B(CS_HA_LEADER_CATCHING_UP) | B(CS_HA_REMOVED) | B(CS_HA_STOPPED),
      [CS_HA_LEADER_SEALED] = B(CS_HA_FOLLOWER) | B(CS_HA_CANDIDATE) |
                              B(CS_HA_LEADER_CATCHING_UP) | B(CS_HA_REMOVED) | B(CS_HA_STOPPED),
      [CS_HA_LEADER_CATCHING_UP] = B(CS_HA_FOLLOWER) | B(CS_HA_CANDIDATE) |
                                   B(CS_HA_LEADER_SEALED) | B(CS_HA_ACTIVE) | B(CS_HA_REMOVED) |
                                   B(CS_HA_STOPPED),
      [CS_HA_ACTIVE] = B(CS_HA_FOLLOWER) | B(CS_HA_CANDIDATE) | B(CS_HA_LEADER_SEALED) |
                       B(CS_HA_LEADER_CATCHING_UP) | B(CS_HA_REMOVED) | B(CS_HA_STOPPED),
      [CS_HA_REMOVED] = B(CS_HA_STOPPED),
      [CS_HA_STOPPED] = 0,
  };
  if ((unsigned)from >= CS_HA_ROLE_COUNT || (unsigned)to >= CS_HA_ROLE_COUNT)
    return 0;
  return (next[from] & B(to)) != 0;
}

int cs_ha_role_serves(cs_ha_role r) { return r == CS_HA_STANDALONE || r == CS_HA_ACTIVE; }

int cs_ha_role_leads(cs_ha_role r) {
  return r == CS_HA_LEADER_SEALED || r == CS_HA_LEADER_CATCHING_UP || r == CS_HA_ACTIVE;
}

void cs_ha_roles_init(cs_ha_roles *r, cs_ha_role_fn on_role, void *ctx) {
  r->role = CS_HA_FOLLOWER;
  r->on_role = on_role;
  r->ctx = ctx;
  r->firing = 0;
}

int cs_ha_roles_set(cs_ha_roles *r, cs_ha_role to) {
  if (r->firing || to == r->role || !cs_ha_role_may(r->role, to))
    return 0;
  cs_ha_role old = r->role;
  r->role = to;
  if (r->on_role != NULL) {
    r->firing = 1;
    r->on_role(r->ctx, old, to);
    r->firing = 0;
  }
  return 1;
}
