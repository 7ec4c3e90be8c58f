/*
 * Unit tests for policy: the documented example, the decision rules
 * (exact beats prefix, longest prefix wins, union across policies, deny
 * wins), and every rejection, each naming the offending rule.
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

static cs_policy *parse_ok(const char *doc) {
  cs_policy *p = NULL;
  int rc = cs_policy_parse(doc, strlen(doc), &p);
  if (rc != 0)
    fail_msg("rejected %s: %s", doc, cs_error_message(rc));
  return p;
}

static int allows1(const cs_policy *p, const char *path, unsigned caps) {
  const cs_policy *ps[1] = {p};
  return cs_policy_allows(ps, 1, path, caps);
}

static const char example[] =
    "{\"rules\":[{\"path\":\"secret/app/*\",\"capabilities\":[\"read\",\"list\"]},"
    "{\"path\":\"secret/app/admin\",\"capabilities\":[\"deny\"]}]}";

static void test_example(void **state) {
  (void)state;
  cs_policy *p = parse_ok(example);
  assert_int_equal(cs_policy_rule_count(p), 2);
  assert_string_equal(cs_policy_rule_path(p, 0), "secret/app/*");
  assert_int_equal(cs_policy_rule_caps(p, 0), CS_CAP_READ | CS_CAP_LIST);
  assert_int_equal(cs_policy_rule_caps(p, 1), CS_CAP_DENY);

  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_LIST), 1);
  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_READ | CS_CAP_LIST), 1);
  assert_int_equal(allows1(p, "secret/app/deep/er", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_WRITE), 0);
  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_READ | CS_CAP_WRITE), 0);
  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_DELETE), 0);
  assert_int_equal(allows1(p, "secret/app/x", CS_CAP_SUDO), 0);
  for (unsigned c = CS_CAP_READ; c <= CS_CAP_SUDO; c <<= 1)
    if (c != CS_CAP_DENY)
      assert_int_equal(allows1(p, "secret/app/admin", c), 0);
  /* the exact deny covers only that path, not what is below it */
  assert_int_equal(allows1(p, "secret/app/admin/x", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "secret/other", CS_CAP_READ), 0);
  assert_int_equal(allows1(p, "secret/app", CS_CAP_READ), 0); /* prefix is "secret/app/" */
  assert_int_equal(allows1(p, "", CS_CAP_READ), 0);
  cs_policy_free(p);
}

static void test_longest_prefix(void **state) {
  (void)state;
  cs_policy *p = parse_ok("{\"rules\":["
                          "{\"path\":\"*\",\"capabilities\":[\"list\"]},"
                          "{\"path\":\"a/*\",\"capabilities\":[\"read\"]},"
                          "{\"path\":\"a/b/*\",\"capabilities\":[\"write\"]},"
                          "{\"path\":\"a/b/c*\",\"capabilities\":[\"delete\"]}]}");
  assert_int_equal(allows1(p, "z", CS_CAP_LIST), 1);
  assert_int_equal(allows1(p, "z", CS_CAP_READ), 0);
  assert_int_equal(allows1(p, "a/x", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "a/x", CS_CAP_LIST), 0); /* "a/" decides, not "" */
  assert_int_equal(allows1(p, "a/b/x", CS_CAP_WRITE), 1);
  assert_int_equal(allows1(p, "a/b/x", CS_CAP_READ), 0);
  assert_int_equal(allows1(p, "a/b/cd", CS_CAP_DELETE), 1);
  assert_int_equal(allows1(p, "a/b/c", CS_CAP_DELETE), 1);
  assert_int_equal(allows1(p, "a/b/c", CS_CAP_WRITE), 0);
  assert_int_equal(cs_policy_capabilities((const cs_policy *const[]){p}, 1, "a/b/"), CS_CAP_WRITE);
  cs_policy_free(p);
}

static void test_exact_beats_prefix(void **state) {
  (void)state;
  /* the exact rule is listed first and is shorter than a matching prefix
   * would be: still it decides */
  cs_policy *p = parse_ok("{\"rules\":["
                          "{\"path\":\"a/b\",\"capabilities\":[\"read\"]},"
                          "{\"path\":\"a/b*\",\"capabilities\":[\"read\",\"write\",\"sudo\"]},"
                          "{\"path\":\"a/*\",\"capabilities\":[\"deny\"]}]}");
  assert_int_equal(allows1(p, "a/b", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "a/b", CS_CAP_WRITE), 0);
  assert_int_equal(allows1(p, "a/bc", CS_CAP_WRITE | CS_CAP_SUDO), 1);
  assert_int_equal(allows1(p, "a/c", CS_CAP_READ), 0);
  cs_policy_free(p);
}

static void test_union_and_deny_across_policies(void **state) {
  (void)state;
  cs_policy *reader = parse_ok("{\"rules\":[{\"path\":\"app/*\",\"capabilities\":[\"read\"]}]}");
  cs_policy *writer =
      parse_ok("{\"rules\":[{\"path\":\"app/db\",\"capabilities\":[\"write\"]}]}");
  cs_policy *denier =
      parse_ok("{\"rules\":[{\"path\":\"app/secret*\",\"capabilities\":[\"deny\"]}]}");
  const cs_policy *both[] = {reader, writer};
  /* union: read from one policy, write from the other */
  assert_int_equal(cs_policy_allows(both, 2, "app/db", CS_CAP_READ | CS_CAP_WRITE), 1);
  assert_int_equal(cs_policy_allows(both, 2, "app/other", CS_CAP_READ | CS_CAP_WRITE), 0);
  assert_int_equal(cs_policy_allows(both, 2, "app/other", CS_CAP_READ), 1);
  /* deny in one policy wins over a grant in another, although the grant
   * is the more specific rule overall */
  cs_policy *granter =
      parse_ok("{\"rules\":[{\"path\":\"app/secret/x\",\"capabilities\":[\"read\"]}]}");
  const cs_policy *mixed[] = {reader, granter, denier};
  assert_int_equal(cs_policy_allows(mixed, 3, "app/secret/x", CS_CAP_READ), 0);
  assert_int_equal(cs_policy_capabilities(mixed, 3, "app/secret/x"), CS_CAP_READ | CS_CAP_DENY);
  assert_int_equal(cs_policy_allows(mixed, 3, "app/public", CS_CAP_READ), 1);
  /* a deny that is not the deciding rule of its policy does not count */
  cs_policy *carve = parse_ok("{\"rules\":[{\"path\":\"app/*\",\"capabilities\":[\"deny\"]},"
                              "{\"path\":\"app/ok\",\"capabilities\":[\"read\"]}]}");
  assert_int_equal(allows1(carve, "app/ok", CS_CAP_READ), 1);
  assert_int_equal(allows1(carve, "app/no", CS_CAP_READ), 0);
  /* missing (NULL) policies and no policies grant nothing */
  const cs_policy *holes[] = {NULL, reader, NULL};
  assert_int_equal(cs_policy_allows(holes, 3, "app/x", CS_CAP_READ), 1);
  assert_int_equal(cs_policy_allows(holes, 0, "app/x", CS_CAP_READ), 0);
  cs_policy_free(reader);
  cs_policy_free(writer);
  cs_policy_free(denier);
  cs_policy_free(granter);
  cs_policy_free(carve);
}

static void test_all_capabilities(void **state) {
  (void)state;
  cs_policy *p = parse_ok("{\"rules\":[{\"path\":\"sys/*\",\"capabilities\":"
                          "[\"sudo\",\"delete\",\"list\",\"write\",\"read\"]},"
                          "{\"capabilities\":[\"deny\",\"read\"],\"path\":\"sys/seal\"}]}");
  assert_int_equal(cs_policy_rule_caps(p, 0),
                   CS_CAP_SUDO | CS_CAP_DELETE | CS_CAP_LIST | CS_CAP_WRITE | CS_CAP_READ);
  assert_int_equal(cs_policy_rule_caps(p, 1), CS_CAP_DENY | CS_CAP_READ);
  assert_int_equal(allows1(p, "sys/rotate", CS_CAP_SUDO), 1);
  assert_int_equal(allows1(p, "sys/rotate", CS_CAP_ALL & ~CS_CAP_DENY), 1);
  assert_int_equal(allows1(p, "sys/seal", CS_CAP_READ), 0); /* deny overrides its own rule */
  assert_int_equal(allows1(p, "sys", CS_CAP_SUDO), 0);
  cs_policy_free(p);
}

/* Each bad document and the exact detail it must produce. */
static const struct bad {
  const char *doc;
  const char *msg; /* the detail must contain this */
} bad[] = {
    {"[]", "policy is not a JSON object"},
    {"{}", "policy has no \"rules\" array"},
    {"{\"rules\":{}}", "policy \"rules\" is not an array"},
    {"{\"rules\":[],\"name\":\"x\"}", "unknown top-level field \"name\""},
    {"{\"rules\":[1]}", "rule 1: not an object"},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"]},\"x\"]}", "rule 2: not an object"},
    {"{\"rules\":[{\"capabilities\":[\"read\"]}]}", "rule 1: missing \"path\""},
    {"{\"rules\":[{\"path\":7,\"capabilities\":[\"read\"]}]}", "rule 1: \"path\" is not a string"},
    {"{\"rules\":[{\"path\":\"\",\"capabilities\":[\"read\"]}]}", "rule 1 (): path is empty"},
    {"{\"rules\":[{\"path\":\"a b\",\"capabilities\":[\"read\"]}]}",
     "rule 1 (a b): path may only hold printable ASCII without spaces"},
    {"{\"rules\":[{\"path\":\"a\\tb\",\"capabilities\":[\"read\"]}]}",
     "rule 1 (a\\x09b): path may only hold printable ASCII"},
    {"{\"rules\":[{\"path\":\"caf\xc3\xa9\",\"capabilities\":[\"read\"]}]}",
     "rule 1 (caf\\xc3\\xa9): path may only hold printable ASCII"},
    {"{\"rules\":[{\"path\":\"a/*/b\",\"capabilities\":[\"read\"]}]}",
     "rule 1 (a/*/b): '*' is only allowed as the last character"},
    {"{\"rules\":[{\"path\":\"**\",\"capabilities\":[\"read\"]}]}",
     "rule 1 (**): '*' is only allowed as the last character"},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"]},"
     "{\"path\":\"secret/app/*\",\"capabilities\":[\"read\",\"raed\"]}]}",
     "rule 2 (secret/app/*): unknown capability \"raed\""},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"Read\"]}]}",
     "rule 1 (a): unknown capability \"Read\""},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\",\"list\",\"read\"]}]}",
     "rule 1 (a): capability \"read\" given twice"},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[]}]}", "rule 1 (a): \"capabilities\" is empty"},
    {"{\"rules\":[{\"path\":\"a\"}]}", "rule 1 (a): missing \"capabilities\""},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":\"read\"}]}",
     "rule 1 (a): \"capabilities\" is not an array"},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\",null]}]}",
     "rule 1 (a): capability 2 is not a string"},
    {"{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"],\"comment\":\"x\"}]}",
     "rule 1 (a): unknown field \"comment\""},
    {"{\"rules\":[{\"capabilities\":[\"read\"],\"path\":\"a\",\"paht\":\"b\"}]}",
     "rule 1 (a): unknown field \"paht\""},
    {"{\"rules\":[{\"path\":\"a/*\",\"capabilities\":[\"read\"]},"
     "{\"path\":\"b\",\"capabilities\":[\"read\"]},"
     "{\"path\":\"a/*\",\"capabilities\":[\"list\"]}]}",
     "rule 3 (a/*): same path as rule 1"},
    {"{\"rules\":[}", "invalid JSON at byte 10"},
    {"{\"rules\":[],\"rules\":[]}", "invalid JSON at byte 12: duplicate key"},
};

static void test_rejections(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cs_policy *p = NULL;
    int rc = cs_policy_parse(bad[i].doc, strlen(bad[i].doc), &p);
    if (rc != CS_EINVAL)
      fail_msg("case %zu (%s): rc %d", i, bad[i].doc, rc);
    assert_null(p);
    const char *msg = cs_error_message(CS_EINVAL);
    if (strstr(msg, bad[i].msg) == NULL)
      fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, msg, bad[i].msg);
  }
}

/* "\u0000" is legal JSON in a member name; "rules\u0000x" must not pass for
 * "rules" (nor "path\u0000x" for "path") just because a C string stops at
 * the NUL.  Only the refusal is asserted: the detail is the parser's. */
static void test_nul_in_member_names(void **state) {
  (void)state;
  static const char *docs[] = {
      "{\"rules\\u0000x\":[{\"path\":\"a\",\"capabilities\":[\"read\"]}]}",
      "{\"rules\":[{\"path\\u0000x\":\"b\",\"path\":\"a\",\"capabilities\":[\"read\"]}]}",
      "{\"rules\":[{\"path\":\"a\",\"capabilities\\u0000\":[\"read\"],\"capabilities\":[\"list\"]}]}",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    cs_policy *p = NULL;
    int rc = cs_policy_parse(docs[i], strlen(docs[i]), &p);
    if (rc != CS_EINVAL)
      fail_msg("case %zu (%s): rc %d", i, docs[i], rc);
    assert_null(p);
  }
}

static void test_long_path_in_error_is_bounded(void **state) {
  (void)state;
  char doc[2048], path[600];
  memset(path, 'p', sizeof path);
  path[sizeof path - 1] = '\0';
  snprintf(doc, sizeof doc, "{\"rules\":[{\"path\":\"%s\",\"capabilities\":[\"read\"]}]}", path);
  cs_policy *p = NULL;
  assert_int_equal(cs_policy_parse(doc, strlen(doc), &p), CS_EINVAL);
  const char *msg = cs_error_message(CS_EINVAL);
  assert_non_null(strstr(msg, "rule 1 (ppp"));
  assert_non_null(strstr(msg, "...): path is longer than 512 bytes"));
  /* 512 is fine */
  path[512] = '\0';
  snprintf(doc, sizeof doc, "{\"rules\":[{\"path\":\"%s\",\"capabilities\":[\"read\"]}]}", path);
  p = NULL;
  assert_int_equal(cs_policy_parse(doc, strlen(doc), &p), 0);
  assert_int_equal(allows1(p, path, CS_CAP_READ), 1);
  cs_policy_free(p);
}

static void test_rule_limit(void **state) {
  (void)state;
  size_t cap = 64 * 1024, o = 0;
  char *doc = malloc(cap);
  assert_non_null(doc);
  o += (size_t)snprintf(doc + o, cap - o, "{\"rules\":[");
  for (int i = 0; i < CS_POLICY_MAX_RULES; i++)
    o += (size_t)snprintf(doc + o, cap - o, "%s{\"path\":\"p/%d\",\"capabilities\":[\"read\"]}",
                          i ? "," : "", i);
  size_t end = o;
  o += (size_t)snprintf(doc + o, cap - o, "]}");
  cs_policy *p = NULL;
  assert_int_equal(cs_policy_parse(doc, o, &p), 0);
  assert_int_equal(cs_policy_rule_count(p), CS_POLICY_MAX_RULES);
  assert_int_equal(allows1(p, "p/999", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "p/1000", CS_CAP_READ), 0);
  cs_policy_free(p);
  o = end;
  o += (size_t)snprintf(doc + o, cap - o, ",{\"path\":\"x\",\"capabilities\":[\"read\"]}]}");
  p = NULL;
  assert_int_equal(cs_policy_parse(doc, o, &p), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "1001 rules, at most 1000"));
  free(doc);
}

static void test_empty_rules_deny_everything(void **state) {
  (void)state;
  cs_policy *p = parse_ok("{\"rules\":[]}");
  assert_int_equal(cs_policy_rule_count(p), 0);
  assert_int_equal(allows1(p, "a", CS_CAP_READ), 0);
  cs_policy_free(p);
}

static void test_names(void **state) {
  (void)state;
  char longest[CS_POLICY_NAME_MAX + 2];
  memset(longest, 'n', sizeof longest);
  longest[CS_POLICY_NAME_MAX] = '\0';
  assert_int_equal(cs_policy_name_valid("app-readers_v1.2"), 1);
  assert_int_equal(cs_policy_name_valid("root"), 1);
  assert_int_equal(cs_policy_name_valid(longest), 1);
  assert_int_equal(cs_policy_check_name(longest), 0);
  longest[CS_POLICY_NAME_MAX] = 'n';
  longest[CS_POLICY_NAME_MAX + 1] = '\0';
  assert_int_equal(cs_policy_name_valid(longest), 0);
  assert_int_equal(cs_policy_name_valid(""), 0);
  assert_int_equal(cs_policy_name_valid("a b"), 0);
  assert_int_equal(cs_policy_name_valid("a/b"), 0);
  assert_int_equal(cs_policy_name_valid("caf\xc3\xa9"), 0);
  assert_int_equal(cs_policy_check_name("ops"), 0);
  assert_int_equal(cs_policy_check_name("root"), CS_EPERM);
  assert_non_null(strstr(cs_error_message(CS_EPERM), "root"));
  assert_int_equal(cs_policy_check_name("bad name"), CS_EINVAL);
  assert_int_equal(cs_policy_check_name("Root"), 0); /* names are case-sensitive */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example),
      cmocka_unit_test(test_longest_prefix),
      cmocka_unit_test(test_exact_beats_prefix),
      cmocka_unit_test(test_union_and_deny_across_policies),
      cmocka_unit_test(test_all_capabilities),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_nul_in_member_names),
      cmocka_unit_test(test_long_path_in_error_is_bounded),
      cmocka_unit_test(test_rule_limit),
      cmocka_unit_test(test_empty_rules_deny_everything),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
