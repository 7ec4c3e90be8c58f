/*
 * test_authz: the authorization matrix, without a daemon.
 *
 * Every row of server/api/ops.def (built here from the same X-macro list,
 * so a new operation is in the matrix without a line here) x every token
 * kind (none, root, policy-limited, expired, revoked, wrong) x every policy
 * kind (deny, read, write, sudo on sys/ paths) -> allowed, or the exact
 * error.  The expectation is an oracle written from the documented rules
 * (docs/policy.md), not a second copy of the code: operator actions need
 * sudo on their sys/ path in the operator namespace, secrets the row's
 * capability on their own path in the secret namespace; secret requests
 * name "sys/x", so a sys/ operator rule must never decide them.
 *
 * Then: the node's state (sealed, not initialized, restoring), the self
 * operations, the auth generation (cached policies are used until it
 * moves, and only then), a revoked token whose policies are still cached,
 * and the frame grant's "may write".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz.h"
#include "cs_error.h"
#include "token.h"
#include "wire.h"
#include "op.h"
#include "policy.h"
#include "policy_cache.h"

/* ---------------------------------------------------------------- the op table */

static const cs_op ops[] = {
#define OP(tag, name, needs_token, sys_path, cap, handler, path_of, sensitive_of, after_commit) \
  {CUSTOS__REQUEST__OP_##tag, name, needs_token, sys_path, cap, NULL, NULL, NULL, NULL},
#include "ops.def"
#undef OP
};
#define N_OPS (sizeof ops / sizeof ops[0])

/* ---------------------------------------------------------------- a fake store */

enum tok { T_NONE, T_ROOT, T_LIMITED, T_EXPIRED, T_REVOKED, T_WRONG, N_TOK };
static const char *const tok_names[N_TOK] = {"none", "root", "limited", "expired", "revoked", "wrong"};
static const char *const tok_values[N_TOK] = {"", "cs.root", "cs.limited", "cs.expired",
                                               "cs.revoked", "cs.wrong"};

enum pol { P_DENY, P_READ, P_WRITE, P_SUDO_SYS, N_POL };
static const char *const pol_names[N_POL] = {"deny", "read", "write", "sudo-sys"};
static const char *const pol_docs[N_POL] = {
    "{\"rules\":[{\"path\":\"*\",\"capabilities\":[\"deny\"]}],"
    "\"operator\":[{\"path\":\"*\",\"capabilities\":[\"deny\"]}]}",
    "{\"rules\":[{\"path\":\"*\",\"capabilities\":[\"read\",\"list\"]}]}",
    "{\"rules\":[{\"path\":\"*\",\"capabilities\":[\"write\",\"delete\"]}]}",
    "{\"operator\":[{\"path\":\"sys/*\",\"capabilities\":[\"sudo\"]}]}",
};

typedef struct fake {
  int state;                /* 0, CS_ESEALED, CS_ENOTINIT, CS_EBUSY */
  int initialized;
  const char *doc;          /* the stored document of policy "p" */
  int revoked;              /* cs.limited has been revoked */
  unsigned loads;           /* how often a policy was read from "storage" */
} fake;

static int fake_state(void *ctx, int *initialized) {
  fake *f = ctx;
  *initialized = f->initialized;
  return f->state ? cs_error_set(f->state, "state %d", f->state) : 0;
}

static Custos__TokenEntry *entry(const char *accessor, const char *policy, int root) {
  /* Packed and unpacked as core/token.c hands entries out (one arena). */
  Custos__TokenEntry e = CUSTOS__TOKEN_ENTRY__INIT;
  char *pols[1] = {(char *)policy};
  e.accessor = (char *)accessor;
  e.n_policies = 1;
  e.policies = pols;
  e.root = root;
  uint8_t buf[256];
  size_t n = custos__token_entry__pack(&e, buf);
  assert_true(n < sizeof buf);
  ProtobufCMessage *te;
  assert_int_equal(cs_wire_unpack(&custos__token_entry__descriptor, buf, n, &te), 0);
  return (Custos__TokenEntry *)te;
}

/* As core/token.c answers: missing, unknown and revoked are all CS_EPERM. */
static int fake_lookup(void *ctx, const uint8_t *token, size_t len, uint8_t hash[32],
                       Custos__TokenEntry **out) {
  fake *f = ctx;
  (void)hash;
  char t[32] = "";
  if (len == 0)
    return cs_error_set(CS_EPERM, "permission denied: no token");
  if (len < sizeof t)
    memcpy(t, token, len);
  if (strcmp(t, "cs.root") == 0) {
    *out = entry("acc-root", "root", 1);
    return 0;
  }
  if (strcmp(t, "cs.limited") == 0 && !f->revoked) {
    *out = entry("acc-limited", "p", 0);
    return 0;
  }
  if (strcmp(t, "cs.expired") == 0)
    return cs_error_set(CS_EEXPIRED, "permission denied: token expired");
  return cs_error_set(CS_EPERM, "permission denied: invalid token");
}

static int fake_load(void *ctx, const char *name, char **doc, size_t *len) {
  fake *f = ctx;
  if (strcmp(name, "p") != 0 || f->doc == NULL)
    return cs_error_set(CS_ENOTFOUND, "no policy named %s", name);
  f->loads++;
  *len = strlen(f->doc);
  *doc = strdup(f->doc);
  return *doc ? 0 : CS_ENOMEM;
}

static fake F;
static const cs_authz_src SRC = {.ctx = &F, .state = fake_state, .token_lookup = fake_lookup,
                                 .load_policy = fake_load};
static uint64_t gen = 1;

/* A fresh policy document: stored, and the generation moves (as the
 * committed write would make it). */
static void store_policy(const char *doc) {
  F.doc = doc;
  gen++;
}

/* ---------------------------------------------------------------- requests */

/* A request for row op that is NOT a self operation (token ops name
 * another token), with secret paths under sys/. */
typedef struct req_buf {
  Custos__Request req;
  Custos__TokenLookupReq lookup;
  Custos__TokenRenewReq renew;
  Custos__TokenRevokeReq revoke;
  uint8_t any[512]; /* zeroed stand-in for the other ops' messages (authz reads none) */
} req_buf;

static void make_req(req_buf *b, int op, int self) {
  memset(b, 0, sizeof *b);
  custos__request__init(&b->req);
  custos__token_lookup_req__init(&b->lookup);
  custos__token_renew_req__init(&b->renew);
  custos__token_revoke_req__init(&b->revoke);
  static uint8_t other[] = "cs.other";
  if (!self) {
    b->lookup.token = b->renew.token = b->revoke.token = (ProtobufCBinaryData){sizeof other - 1, other};
  } else {
    b->revoke.self = 1;
  }
  b->req.op_case = (Custos__Request__OpCase)op;
  switch (op) {
  case CUSTOS__REQUEST__OP_TOKEN_LOOKUP: b->req.token_lookup = &b->lookup; break;
  case CUSTOS__REQUEST__OP_TOKEN_RENEW: b->req.token_renew = &b->renew; break;
  case CUSTOS__REQUEST__OP_TOKEN_REVOKE: b->req.token_revoke = &b->revoke; break;
  default: b->req.status = (Custos__StatusReq *)b->any; break;
  }
}

static int decide(const cs_op *op, enum tok t, int self, cs_authz_who *who) {
  req_buf b;
  make_req(&b, op->op, self);
  const char *tv = tok_values[t];
  cs_error_clear();
  return cs_authz_decide(&SRC, gen, op, &b.req, "sys/x", (const uint8_t *)tv, strlen(tv), who);
}

/* ---------------------------------------------------------------- the oracle */

/* What each policy kind grants, by the documented rules. */
static int policy_grants(enum pol p, const cs_op *op) {
  if (op->sys_path != NULL) /* operator action: sudo on its sys/ path, operator rules only */
    return p == P_SUDO_SYS;
  unsigned granted = p == P_READ ? (CS_CAP_READ | CS_CAP_LIST)
                     : p == P_WRITE ? (CS_CAP_WRITE | CS_CAP_DELETE)
                                    : 0; /* deny; and sudo-sys grants no secret, not even sys/x */
  return (op->cap & ~granted) == 0 && op->cap != 0;
}

static int expected(const cs_op *op, enum tok t, enum pol p) {
  if (!op->needs_token)
    return 0;
  switch (t) {
  case T_ROOT: return 0;
  case T_EXPIRED: return CS_EEXPIRED;
  case T_NONE:
  case T_REVOKED:
  case T_WRONG: return CS_EPERM;
  case T_LIMITED: return policy_grants(p, op) ? 0 : CS_EPERM;
  default: fail();
  }
  return 0;
}

static const char *errname(int rc) {
  return rc == 0 ? "allow" : cs_errname(rc);
}

/* ---------------------------------------------------------------- tests */

static int setup(void **state) {
  (void)state;
  memset(&F, 0, sizeof F);
  F.initialized = 1;
  F.revoked = 0;
  gen++;
  return 0;
}

static void test_matrix(void **state) {
  (void)state;
  size_t cases = 0, failures = 0;
  for (int p = 0; p < N_POL; p++) {
    store_policy(pol_docs[p]);
    for (size_t i = 0; i < N_OPS; i++) {
      for (int t = 0; t < N_TOK; t++) {
        cs_authz_who who;
        int got = decide(&ops[i], (enum tok)t, 0, &who);
        int want = expected(&ops[i], (enum tok)t, (enum pol)p);
        cases++;
        if (got != want) {
          failures++;
          print_error("%s x token %s x policy %s: got %s (%s), want %s\n", ops[i].name,
                      tok_names[t], pol_names[p], errname(got), cs_error_message(got),
                      errname(want));
        }
        /* What the decision learned: only an accepted token is authed. */
        if (ops[i].needs_token && (t == T_ROOT || t == T_LIMITED)) {
          assert_int_equal(who.authed, 1);
          assert_int_equal(who.root, t == T_ROOT);
          assert_string_equal(who.accessor, t == T_ROOT ? "acc-root" : "acc-limited");
        } else {
          assert_int_equal(who.authed, 0);
        }
        if (got == CS_EPERM && t == T_LIMITED)
          assert_non_null(strstr(cs_error_message(got), ops[i].name));
      }
    }
  }
  print_message("authz matrix: %zu cases (%zu ops x %d token kinds x %d policies), %zu wrong\n",
                cases, N_OPS, N_TOK, N_POL, failures);
  assert_int_equal(failures, 0);
  assert_true(N_OPS >= 31);
}

/* Every row is a real, distinct operation with a sane access rule. */
static void test_table_rows(void **state) {
  (void)state;
  for (size_t i = 0; i < N_OPS; i++) {
    assert_true(ops[i].op != CUSTOS__REQUEST__OP__NOT_SET);
    assert_non_null(ops[i].name);
    for (size_t k = 0; k < i; k++) {
      assert_int_not_equal(ops[k].op, ops[i].op);
      assert_string_not_equal(ops[k].name, ops[i].name);
    }
    if (ops[i].needs_token)
      assert_int_not_equal(ops[i].cap, 0);
    if (ops[i].sys_path != NULL)
      assert_memory_equal(ops[i].sys_path, "sys/", 4);
  }
}

/* Every member of Request.op has a row: a request with an operation the
 * table lacks would only get "unknown operation" (review finding: a new
 * proto op without a row is caught here, not by a client). */
static void test_every_proto_op_has_a_row(void **state) {
  (void)state;
  const ProtobufCMessageDescriptor *d = &custos__request__descriptor;
  size_t members = 0;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
      continue;
    members++;
    size_t k = 0;
    while (k < N_OPS && ops[k].op != (int)f->id)
      k++;
    if (k == N_OPS)
      fail_msg("Request.%s (%u) has no row in server/api/ops.def", f->name, f->id);
  }
  assert_int_equal(members, N_OPS);
}

static const cs_op *row(int op) {
  for (size_t i = 0; i < N_OPS; i++)
    if (ops[i].op == op)
      return &ops[i];
  fail_msg("no row for op %d", op);
  return NULL;
}

/* Sealed, uninitialized, restoring: refused before the token is looked at,
 * except a restore onto an uninitialized server (NEEDS_TOKEN_INIT). */
static void test_state(void **state) {
  (void)state;
  cs_authz_who who;
  store_policy(pol_docs[P_SUDO_SYS]);
  const cs_op *seal = row(CUSTOS__REQUEST__OP_SEAL), *get = row(CUSTOS__REQUEST__OP_KV_GET);
  const cs_op *restore = row(CUSTOS__REQUEST__OP_SNAPSHOT_RESTORE);
  const cs_op *status = row(CUSTOS__REQUEST__OP_STATUS);
  F.state = CS_ESEALED;
  assert_int_equal(decide(seal, T_ROOT, 0, &who), CS_ESEALED);
  assert_int_equal(who.looked_up, 0);
  assert_int_equal(decide(get, T_ROOT, 0, &who), CS_ESEALED);
  assert_int_equal(decide(status, T_NONE, 0, &who), 0);
  assert_int_equal(decide(restore, T_NONE, 0, &who), CS_ESEALED);
  F.state = CS_ENOTINIT;
  F.initialized = 0;
  assert_int_equal(decide(get, T_ROOT, 0, &who), CS_ENOTINIT);
  assert_int_equal(decide(restore, T_NONE, 0, &who), 0);
  F.state = CS_EBUSY;
  F.initialized = 1;
  assert_int_equal(decide(get, T_ROOT, 0, &who), CS_EBUSY);
  assert_int_equal(decide(restore, T_ROOT, 0, &who), CS_EBUSY);
}

/* A token may look up, renew and (with the self flag) revoke itself
 * whatever its policies say; naming another token needs sudo. */
static void test_self_ops(void **state) {
  (void)state;
  cs_authz_who who;
  store_policy(pol_docs[P_DENY]);
  int self_ops[] = {CUSTOS__REQUEST__OP_TOKEN_LOOKUP, CUSTOS__REQUEST__OP_TOKEN_RENEW,
                    CUSTOS__REQUEST__OP_TOKEN_REVOKE};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(decide(row(self_ops[i]), T_LIMITED, 1, &who), 0);
    assert_int_equal(decide(row(self_ops[i]), T_LIMITED, 0, &who), CS_EPERM);
    assert_int_equal(decide(row(self_ops[i]), T_REVOKED, 1, &who), CS_EPERM);
    assert_int_equal(decide(row(self_ops[i]), T_EXPIRED, 1, &who), CS_EEXPIRED);
  }
}

/* Policies are cached for one auth generation: a stored change without a
 * bump is not seen (the daemon bumps on every commit that changes one),
 * with a bump it is seen at the next decision. */
static void test_generation(void **state) {
  (void)state;
  cs_authz_who who;
  const cs_op *get = row(CUSTOS__REQUEST__OP_KV_GET);
  store_policy(pol_docs[P_READ]);
  unsigned loads = F.loads;
  assert_int_equal(decide(get, T_LIMITED, 0, &who), 0);
  assert_int_equal(decide(get, T_LIMITED, 0, &who), 0);
  assert_true(F.loads > loads); /* loaded once ... */
  unsigned after = F.loads;
  assert_int_equal(decide(get, T_LIMITED, 0, &who), 0);
  assert_int_equal(F.loads, after); /* ... then served from the cache */
  F.doc = pol_docs[P_DENY];         /* written, not yet committed: no bump */
  assert_int_equal(decide(get, T_LIMITED, 0, &who), 0);
  gen++;                            /* committed: the generation moves */
  assert_int_equal(decide(get, T_LIMITED, 0, &who), CS_EPERM);
  /* A deleted policy grants nothing. */
  F.doc = NULL;
  gen++;
  assert_int_equal(decide(get, T_LIMITED, 0, &who), CS_EPERM);
  assert_int_equal(cs_policy_cache_count(), 0);
}

/* A revoked token is refused at once, although the policies it held are
 * still cached and no generation moved: the token is looked up on every
 * request (review finding: "a revoked token racing a cached policy"). */
static void test_revoked_with_cached_policy(void **state) {
  (void)state;
  cs_authz_who who;
  const cs_op *get = row(CUSTOS__REQUEST__OP_KV_GET);
  store_policy(pol_docs[P_READ]);
  assert_int_equal(decide(get, T_LIMITED, 0, &who), 0);
  assert_int_equal(cs_policy_cache_count(), 1);
  F.revoked = 1;
  assert_int_equal(decide(get, T_LIMITED, 0, &who), CS_EPERM);
  assert_int_equal(who.looked_up, 1);
  assert_int_equal(who.authed, 0);
}

/* A policy that cannot be parsed refuses (it may have been the deny).
 * Review finding: dispatch.c's `root || self || policies_allow()` turned
 * the error into "allowed"; this test failed on it. */
static void test_corrupt_policy_refuses(void **state) {
  (void)state;
  cs_authz_who who;
  store_policy("{\"rules\":[{\"path\":\"*\"}]}");
  assert_int_equal(decide(row(CUSTOS__REQUEST__OP_KV_GET), T_LIMITED, 0, &who), CS_ESTORECORRUPT);
  assert_int_equal(decide(row(CUSTOS__REQUEST__OP_SEAL), T_LIMITED, 0, &who), CS_ESTORECORRUPT);
  assert_int_equal(decide(row(CUSTOS__REQUEST__OP_KV_GET), T_ROOT, 0, &who), 0);
}

/* The frame grant: only a token that may write gets the larger frames. */
static void test_may_write(void **state) {
  (void)state;
  int want[N_POL] = {[P_DENY] = 0, [P_READ] = 0, [P_WRITE] = 1, [P_SUDO_SYS] = 1};
  for (int p = 0; p < N_POL; p++) {
    store_policy(pol_docs[p]);
    Custos__TokenEntry *te = entry("a", "p", 0);
    assert_int_equal(cs_authz_may_write(&SRC, gen, te), want[p]);
    cs_token_entry_free(te);
  }
  Custos__TokenEntry *te = entry("r", "root", 0);
  assert_int_equal(cs_authz_may_write(&SRC, gen, te), 1);
  cs_token_entry_free(te);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_table_rows, setup),
      cmocka_unit_test_setup(test_every_proto_op_has_a_row, setup),
      cmocka_unit_test_setup(test_matrix, setup),
      cmocka_unit_test_setup(test_state, setup),
      cmocka_unit_test_setup(test_self_ops, setup),
      cmocka_unit_test_setup(test_generation, setup),
      cmocka_unit_test_setup(test_revoked_with_cached_policy, setup),
      cmocka_unit_test_setup(test_corrupt_policy_refuses, setup),
      cmocka_unit_test_setup(test_may_write, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
