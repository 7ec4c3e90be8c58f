/*
 * Unit tests of the cluster roles (server/ha/role.c): the role each set of
 * facts calls for, the full transition matrix, the on_role callback (once
 * per change, old and new, never nested), terminal roles, and the paths a
 * node takes in a cluster's life: election, catch-up, sealing, failover,
 * removal, shutdown racing a role change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "role.h"

#define F CS_HA_FOLLOWER
#define C CS_HA_CANDIDATE
#define LS CS_HA_LEADER_SEALED
#define LC CS_HA_LEADER_CATCHING_UP
#define A CS_HA_ACTIVE
#define R CS_HA_REMOVED
#define S CS_HA_STOPPED
#define SA CS_HA_STANDALONE

/* ---------------------------------------------------------------- facts -> role */

static void test_role_for(void **state) {
  (void)state;
  /* Every combination of the five facts. */
  for (int raft = CS_HA_RAFT_UNAVAILABLE; raft <= CS_HA_RAFT_LEADER; raft++)
    for (int sealed = 0; sealed <= 1; sealed++)
      for (int caught = 0; caught <= 1; caught++)
        for (int removed = 0; removed <= 1; removed++)
          for (int stopping = 0; stopping <= 1; stopping++) {
            cs_ha_facts f = {raft, sealed, caught, removed, stopping};
            cs_ha_role want;
            if (stopping)
              want = S;
            else if (removed)
              want = R;
            else if (raft == CS_HA_RAFT_LEADER)
              want = sealed ? LS : caught ? A : LC;
            else if (raft == CS_HA_RAFT_CANDIDATE)
              want = C;
            else
              want = F;
            cs_ha_role got = cs_ha_role_for(&f);
            if (got != want)
              fail_msg("raft %d sealed %d caught_up %d removed %d stopping %d: want %s got %s",
                       raft, sealed, caught, removed, stopping, cs_ha_role_name(want),
                       cs_ha_role_name(got));
            assert_int_not_equal(got, SA);
          }
  /* A raft state out of range is a follower, never a leader. */
  cs_ha_facts odd = {.raft_state = 42};
  assert_int_equal(cs_ha_role_for(&odd), F);
}

/* ---------------------------------------------------------------- transition matrix */

static void test_matrix(void **state) {
  (void)state;
  /* want[from][to]: 1 = a transition. */
  static const int want[CS_HA_ROLE_COUNT][CS_HA_ROLE_COUNT] = {
      /*         SA F  C  LS LC A  R  S */
      [SA] = {0, 0, 0, 0, 0, 0, 0, 0},
      [F] = {0, 0, 1, 1, 1, 0, 1, 1},
      [C] = {0, 1, 0, 1, 1, 0, 1, 1},
      [LS] = {0, 1, 1, 0, 1, 0, 1, 1},
      [LC] = {0, 1, 1, 1, 0, 1, 1, 1},
      [A] = {0, 1, 1, 1, 1, 0, 1, 1},
      [R] = {0, 0, 0, 0, 0, 0, 0, 1},
      [S] = {0, 0, 0, 0, 0, 0, 0, 0},
  };
  for (int from = 0; from < CS_HA_ROLE_COUNT; from++)
    for (int to = 0; to < CS_HA_ROLE_COUNT; to++)
      if (cs_ha_role_may((cs_ha_role)from, (cs_ha_role)to) != want[from][to])
        fail_msg("%s -> %s: want %d", cs_ha_role_name((cs_ha_role)from),
                 cs_ha_role_name((cs_ha_role)to), want[from][to]);
  /* Out of range either side: never. */
  assert_false(cs_ha_role_may((cs_ha_role)-1, F));
  assert_false(cs_ha_role_may(F, (cs_ha_role)CS_HA_ROLE_COUNT));
  assert_false(cs_ha_role_may((cs_ha_role)99, S));
}

static void test_names_and_classes(void **state) {
  (void)state;
  static const char *const names[] = {"standalone", "follower", "candidate", "leader-sealed",
                                      "leader-catching-up", "active", "removed", "stopped"};
  for (int r = 0; r < CS_HA_ROLE_COUNT; r++)
    assert_string_equal(cs_ha_role_name((cs_ha_role)r), names[r]);
  assert_string_equal(cs_ha_role_name((cs_ha_role)CS_HA_ROLE_COUNT), "?");
  assert_string_equal(cs_ha_role_name((cs_ha_role)-3), "?");
  for (int r = 0; r < CS_HA_ROLE_COUNT; r++) {
    assert_int_equal(cs_ha_role_serves((cs_ha_role)r), r == SA || r == A);
    assert_int_equal(cs_ha_role_leads((cs_ha_role)r), r == LS || r == LC || r == A);
  }
}

/* ---------------------------------------------------------------- the machine */

typedef struct seen {
  int n;
  cs_ha_role from[32], to[32];
  cs_ha_roles *roles;   /* for the nested-set test */
  int nest;             /* on_role tries a set of its own */
  int nested_rc;
} seen;

static void on_role(void *ctx, cs_ha_role old_role, cs_ha_role new_role) {
  seen *s = ctx;
  assert_true(s->n < 32);
  s->from[s->n] = old_role;
  s->to[s->n] = new_role;
  s->n++;
  /* The role is already the new one while the callback runs. */
  assert_int_equal(s->roles->role, new_role);
  if (s->nest)
    s->nested_rc = cs_ha_roles_set(s->roles, CS_HA_STOPPED);
}

/* Drives the machine as ha.c does: facts -> role_for -> set. */
static int step(cs_ha_roles *r, int raft, int sealed, int caught, int removed, int stopping) {
  cs_ha_facts f = {raft, sealed, caught, removed, stopping};
  return cs_ha_roles_set(r, cs_ha_role_for(&f));
}

static void expect(const seen *s, int i, cs_ha_role from, cs_ha_role to) {
  assert_true(i < s->n);
  if (s->from[i] != from || s->to[i] != to)
    fail_msg("event %d: want %s -> %s, got %s -> %s", i, cs_ha_role_name(from),
             cs_ha_role_name(to), cs_ha_role_name(s->from[i]), cs_ha_role_name(s->to[i]));
}

static void test_life(void **state) {
  (void)state;
  seen s = {0};
  cs_ha_roles r;
  cs_ha_roles_init(&r, on_role, &s);
  s.roles = &r;
  assert_int_equal(r.role, F);
  /* Unchanged facts fire nothing. */
  assert_int_equal(step(&r, CS_HA_RAFT_UNAVAILABLE, 1, 0, 0, 0), 0);
  assert_int_equal(step(&r, CS_HA_RAFT_FOLLOWER, 0, 0, 0, 0), 0);
  assert_int_equal(s.n, 0);
  /* Election, catch-up, active. */
  assert_int_equal(step(&r, CS_HA_RAFT_CANDIDATE, 0, 0, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 0, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 0, 0, 0), 0);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 0, 0), 1);
  /* Sealed by an operator: hands over; unsealed again: catches up again. */
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 1, 0, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 0, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 0, 0), 1);
  /* Leadership lost (failover) and won again in a later term, seen only
   * after the fact: ACTIVE goes straight to catching up. */
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 0, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_FOLLOWER, 0, 0, 0, 0), 1);
  assert_int_equal(s.n, 8);
  expect(&s, 0, F, C);
  expect(&s, 1, C, LC);
  expect(&s, 2, LC, A);
  expect(&s, 3, A, LS);
  expect(&s, 4, LS, LC);
  expect(&s, 5, LC, A);
  expect(&s, 6, A, LC);
  expect(&s, 7, LC, F);
}

/* Never ACTIVE without catching up: facts that say "leader, caught up"
 * while the node is a follower (a stale active_term) are refused. */
static void test_no_shortcut(void **state) {
  (void)state;
  seen s = {0};
  cs_ha_roles r;
  cs_ha_roles_init(&r, on_role, &s);
  s.roles = &r;
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 0, 0), 0);
  assert_int_equal(r.role, F);
  assert_int_equal(cs_ha_roles_set(&r, A), 0);
  r.role = C;
  assert_int_equal(cs_ha_roles_set(&r, A), 0);
  r.role = LS;
  assert_int_equal(cs_ha_roles_set(&r, A), 0);
  assert_int_equal(s.n, 0);
  /* Nor STANDALONE, ever. */
  for (int from = 0; from < CS_HA_ROLE_COUNT; from++) {
    r.role = (cs_ha_role)from;
    assert_int_equal(cs_ha_roles_set(&r, SA), 0);
  }
  assert_int_equal(s.n, 0);
}

/* Removed: only STOPPED follows, whatever raft says later. */
static void test_removed(void **state) {
  (void)state;
  seen s = {0};
  cs_ha_roles r;
  cs_ha_roles_init(&r, on_role, &s);
  s.roles = &r;
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 0, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 0, 0), 1);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 1, 0), 1);
  assert_int_equal(r.role, R);
  /* A removed node that still believes it leads, or campaigns, stays removed. */
  r.role = R;
  assert_int_equal(cs_ha_roles_set(&r, A), 0);
  assert_int_equal(cs_ha_roles_set(&r, LC), 0);
  assert_int_equal(cs_ha_roles_set(&r, C), 0);
  assert_int_equal(cs_ha_roles_set(&r, F), 0);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 0, 0), 0);
  assert_int_equal(r.role, R);
  assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 1, 1), 1);
  assert_int_equal(r.role, S);
  assert_int_equal(s.n, 4);
  expect(&s, 2, A, R);
  expect(&s, 3, R, S);
}

/* Shutdown racing a role change: once STOPPED, nothing moves (a barrier
 * that completes afterwards, raft electing us meanwhile), and on_role is
 * never called again. */
static void test_stopped_is_final(void **state) {
  (void)state;
  static const cs_ha_role live[] = {F, C, LS, LC, A, R};
  for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
    seen s = {0};
    cs_ha_roles r;
    cs_ha_roles_init(&r, on_role, &s);
    s.roles = &r;
    r.role = live[i];
    assert_int_equal(cs_ha_roles_set(&r, S), 1);
    assert_int_equal(s.n, 1);
    expect(&s, 0, live[i], S);
    for (int to = 0; to < CS_HA_ROLE_COUNT; to++)
      assert_int_equal(cs_ha_roles_set(&r, (cs_ha_role)to), 0);
    assert_int_equal(step(&r, CS_HA_RAFT_LEADER, 0, 1, 0, 0), 0);
    assert_int_equal(r.role, S);
    assert_int_equal(s.n, 1);
  }
}

/* A callback that asks for another change (the daemon's handler running
 * held requests that ask for the role) is refused: the role never changes
 * under a callback, and the one in progress completes. */
static void test_no_nesting(void **state) {
  (void)state;
  seen s = {0};
  cs_ha_roles r;
  cs_ha_roles_init(&r, on_role, &s);
  s.roles = &r;
  s.nest = 1;
  s.nested_rc = -1;
  assert_int_equal(cs_ha_roles_set(&r, LC), 1);
  assert_int_equal(s.nested_rc, 0);
  assert_int_equal(r.role, LC);
  assert_int_equal(s.n, 1);
  assert_int_equal(r.firing, 0);
  /* Later, outside the callback, the change is possible. */
  s.nest = 0;
  assert_int_equal(cs_ha_roles_set(&r, S), 1);
  assert_int_equal(s.n, 2);
}

/* No listener is fine. */
static void test_no_callback(void **state) {
  (void)state;
  cs_ha_roles r;
  cs_ha_roles_init(&r, NULL, NULL);
  assert_int_equal(cs_ha_roles_set(&r, C), 1);
  assert_int_equal(cs_ha_roles_set(&r, LC), 1);
  assert_int_equal(cs_ha_roles_set(&r, A), 1);
  assert_int_equal(r.role, A);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_role_for),       cmocka_unit_test(test_matrix),
      cmocka_unit_test(test_names_and_classes), cmocka_unit_test(test_life),
      cmocka_unit_test(test_no_shortcut),    cmocka_unit_test(test_removed),
      cmocka_unit_test(test_stopped_is_final), cmocka_unit_test(test_no_nesting),
      cmocka_unit_test(test_no_callback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
