/*
 * Unit tests for policy_cache (issue 10, finding 1): what the cache hands
 * out stays valid however many later lookups evict or replace entries (200
 * names in 64 slots: collisions by pigeonhole, whatever the hash); a missing
 * policy is not cached and evicts nothing; a stored document that does not
 * parse is an error, never "absent".  Run under ASan for the lifetime part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cs_error.h"
#include "policy.h"
#include "policy_cache.h"

#define NAMES 200

static unsigned loads;

/* Names "pI" exist: even I read "pI/x", odd I deny it; "bad" is broken;
 * "mI" are missing. */
static int load(void *ctx, const char *name, char **doc, size_t *len) {
  (void)ctx;
  loads++;
  char buf[160];
  if (strcmp(name, "bad") == 0)
    snprintf(buf, sizeof buf, "{\"rules\":[");
  else if (name[0] == 'p')
    snprintf(buf, sizeof buf, "{\"rules\":[{\"path\":\"%s/x\",\"capabilities\":[\"%s\"]}]}", name,
             atoi(name + 1) % 2 ? "deny" : "read");
  else
    return cs_error_set(CS_ENOTFOUND, "no policy named %s", name);
  *doc = strdup(buf);
  *len = strlen(buf);
  return *doc ? 0 : CS_ENOMEM;
}

static int setup(void **state) {
  (void)state;
  cs_policy_cache_invalidate();
  loads = 0;
  return 0;
}

static int decides(const cs_policy *p, int i) {
  char path[32];
  snprintf(path, sizeof path, "p%d/x", i);
  const cs_policy *ps[1] = {p};
  return cs_policy_allows(ps, 1, path, CS_CAP_READ);
}

static void test_references_outlive_eviction(void **state) {
  (void)state;
  cs_policy *held[NAMES];
  char name[16];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < NAMES; i++) {
      snprintf(name, sizeof name, "p%d", i);
      assert_int_equal(cs_policy_cache_get(name, load, NULL, &held[i]), 0);
      assert_non_null(held[i]);
    }
    /* Every reference still decides as its own document says, although
     * most were evicted by the lookups after it. */
    for (int i = 0; i < NAMES; i++) {
      assert_int_equal(decides(held[i], i), i % 2 == 0);
      cs_policy_free(held[i]);
    }
  }
  assert_true(cs_policy_cache_count() <= 64);
}

static void test_invalidate_keeps_references(void **state) {
  (void)state;
  cs_policy *a, *b;
  assert_int_equal(cs_policy_cache_get("p2", load, NULL, &a), 0);
  cs_policy_cache_invalidate();
  assert_int_equal(cs_policy_cache_count(), 0);
  assert_int_equal(cs_policy_cache_get("p2", load, NULL, &b), 0);
  assert_ptr_not_equal(a, b);
  assert_int_equal(decides(a, 2), 1);
  assert_int_equal(decides(b, 2), 1);
  cs_policy_free(a);
  cs_policy_free(b);
}

static void test_missing_poisons_nothing(void **state) {
  (void)state;
  char name[16];
  cs_policy *p;
  for (int i = 0; i < NAMES; i += 2) { /* fill the cache with present ones */
    snprintf(name, sizeof name, "p%d", i);
    assert_int_equal(cs_policy_cache_get(name, load, NULL, &p), 0);
    cs_policy_free(p);
  }
  size_t before = cs_policy_cache_count();
  for (int i = 0; i < NAMES; i++) {
    snprintf(name, sizeof name, "m%d", i);
    assert_int_equal(cs_policy_cache_get(name, load, NULL, &p), 0);
    assert_null(p);
  }
  assert_int_equal(cs_policy_cache_count(), before);
  /* A name longer than any policy's is absent without a load. */
  char longname[CS_POLICY_NAME_MAX + 2];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  unsigned l = loads;
  assert_int_equal(cs_policy_cache_get(longname, load, NULL, &p), 0);
  assert_null(p);
  assert_int_equal(loads, l);
}

static void test_hit_does_not_load(void **state) {
  (void)state;
  cs_policy *a, *b;
  assert_int_equal(cs_policy_cache_get("p4", load, NULL, &a), 0);
  unsigned l = loads;
  assert_int_equal(cs_policy_cache_get("p4", load, NULL, &b), 0);
  assert_int_equal(loads, l);
  assert_ptr_equal(a, b);
  cs_policy_free(a);
  cs_policy_free(b);
}

static void test_broken_is_an_error(void **state) {
  (void)state;
  cs_policy *p = (cs_policy *)1;
  assert_int_equal(cs_policy_cache_get("bad", load, NULL, &p), CS_ESTORECORRUPT);
  assert_null(p);
  assert_int_equal(cs_policy_cache_count(), 0);
}

/* The cache's own hash (djb2), to pick names that share a set. */
static size_t djb2(const char *name) {
  size_t h = 5381;
  for (const char *c = name; *c; c++)
    h = h * 33 + (unsigned char)*c;
  return h;
}

/* Up to four names of one token that land in the same place are all kept:
 * a token's requests do not reload (decrypt and parse) its policies on
 * every request because two of their names collide. */
static void test_colliding_names_stay_cached(void **state) {
  (void)state;
  char names[4][16];
  size_t found = 0;
  snprintf(names[found++], sizeof names[0], "p0");
  for (int i = 2; found < 4 && i < 100000; i += 2) {
    char n[16];
    snprintf(n, sizeof n, "p%d", i);
    if (djb2(n) % 64 == djb2(names[0]) % 64)
      snprintf(names[found++], sizeof names[0], "%s", n);
  }
  assert_int_equal(found, 4);
  for (int round = 0; round < 3; round++)
    for (size_t k = 0; k < found; k++) {
      cs_policy *p = NULL;
      assert_int_equal(cs_policy_cache_get(names[k], load, NULL, &p), 0);
      assert_non_null(p);
      cs_policy_free(p);
    }
  assert_int_equal(loads, found); /* each loaded once, then hits */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_references_outlive_eviction, setup),
      cmocka_unit_test_setup(test_invalidate_keeps_references, setup),
      cmocka_unit_test_setup(test_missing_poisons_nothing, setup),
      cmocka_unit_test_setup(test_hit_does_not_load, setup),
      cmocka_unit_test_setup(test_colliding_names_stay_cached, setup),
      cmocka_unit_test_setup(test_broken_is_an_error, setup),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  cs_policy_cache_invalidate();
  return rc;
}
