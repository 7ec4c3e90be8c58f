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
#include "policy_ns.h"

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
                          "{\"path\":\"a/b*\",\"capabilities\":[\"read\",\"write\",\"list\"]},"
                          "{\"path\":\"a/*\",\"capabilities\":[\"deny\"]}]}");
  assert_int_equal(allows1(p, "a/b", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "a/b", CS_CAP_WRITE), 0);
  assert_int_equal(allows1(p, "a/bc", CS_CAP_WRITE | CS_CAP_LIST), 1);
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

static int allows_op(const cs_policy *p, const char *path, unsigned caps) {
  const cs_policy *ps[1] = {p};
  return cs_policy_ns_allows(ps, 1, CS_POLICY_NS_OPERATOR, path, caps);
}

static void test_all_capabilities(void **state) {
  (void)state;
  cs_policy *p = parse_ok("{\"operator\":[{\"path\":\"sys/*\",\"capabilities\":"
                          "[\"sudo\",\"delete\",\"list\",\"write\",\"read\"]},"
                          "{\"capabilities\":[\"deny\",\"read\"],\"path\":\"sys/seal\"}]}");
  assert_int_equal(cs_policy_rule_caps(p, 0),
                   CS_CAP_SUDO | CS_CAP_DELETE | CS_CAP_LIST | CS_CAP_WRITE | CS_CAP_READ);
  assert_int_equal(cs_policy_rule_caps(p, 1), CS_CAP_DENY | CS_CAP_READ);
  assert_int_equal(cs_policy_rule_ns(p, 0), CS_POLICY_NS_OPERATOR);
  assert_int_equal(allows_op(p, "sys/rotate", CS_CAP_SUDO), 1);
  assert_int_equal(allows_op(p, "sys/rotate", CS_CAP_ALL & ~CS_CAP_DENY), 1);
  assert_int_equal(allows_op(p, "sys/seal", CS_CAP_READ), 0); /* deny overrides its own rule */
  assert_int_equal(allows_op(p, "sys", CS_CAP_SUDO), 0);
  cs_policy_free(p);
}

/* A sys/ operator rule never decides a secret stored under sys/, and no
 * secret rule decides an operator action (issue 12). */
static void test_namespaces_never_decide_for_each_other(void **state) {
  (void)state;
  cs_policy *p = parse_ok("{\"rules\":[{\"path\":\"*\",\"capabilities\":[\"read\"]}],"
                          "\"operator\":[{\"path\":\"sys/*\",\"capabilities\":[\"sudo\"]},"
                          "{\"path\":\"*\",\"capabilities\":[\"deny\"]}]}");
  assert_int_equal(cs_policy_rule_count(p), 3);
  assert_int_equal(cs_policy_rule_ns(p, 0), CS_POLICY_NS_SECRET);
  assert_int_equal(allows1(p, "sys/x", CS_CAP_READ), 1);      /* the secret's "*" decides */
  assert_int_equal(allows_op(p, "sys/seal", CS_CAP_SUDO), 1);   /* the operator's "sys/ *" */
  assert_int_equal(allows_op(p, "sys/seal", CS_CAP_READ), 0);
  cs_policy_free(p);
  /* Only operator rules: no secret at all; only secret rules: no action. */
  p = parse_ok("{\"operator\":[{\"path\":\"sys/*\",\"capabilities\":[\"sudo\",\"read\"]}]}");
  assert_int_equal(allows1(p, "sys/x", CS_CAP_READ), 0);
  cs_policy_free(p);
  p = parse_ok("{\"rules\":[{\"path\":\"sys/*\",\"capabilities\":[\"read\",\"write\"]}]}");
  assert_int_equal(allows_op(p, "sys/seal", CS_CAP_SUDO), 0);
  assert_int_equal(allows1(p, "sys/x", CS_CAP_READ), 1);
  cs_policy_free(p);
  /* The same path may appear once in each section. */
  p = parse_ok("{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"]}],"
               "\"operator\":[{\"path\":\"a\",\"capabilities\":[\"sudo\"]}]}");
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
    {"{\"operator\":{}}", "policy \"operator\" is not an array"},
    {"{\"rules\":[{\"path\":\"sys/*\",\"capabilities\":[\"sudo\"]}]}",
     "rule 1 (sys/*): sudo is an operator capability: put the rule in \"operator\""},
    {"{\"rules\":[],\"operator\":[{\"path\":\"a\",\"capabilities\":[\"sudo\"]},"
     "{\"path\":\"a\",\"capabilities\":[\"deny\"]}]}",
     "operator rule 2 (a): same path as rule 1"},
    {"{\"operator\":[{\"path\":\"sys/x\",\"capabilities\":[\"raed\"]}]}",
     "operator rule 1 (sys/x): unknown capability \"raed\""},
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

/* What the JSON reader refuses, each with the byte offset it names.  The
 * documents are given with their length: some hold NUL bytes. */
#define DOC(s) s, sizeof s - 1
static const struct bad_json {
  const char *doc;
  size_t len;
  const char *msg;
} bad_json[] = {
    /* duplicate keys, at every level, named where the repeated key starts */
    {DOC("{\"rules\":[],\"rules\":[]}"), "invalid JSON at byte 12: duplicate key near '\"rules\"'"},
    {DOC("{\"rules\":[{\"path\":\"a\",\"path\":\"b\",\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 22: duplicate key near '\"path\"'"},
    {DOC("{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"],\"capabilities\":[\"sudo\"]}]}"),
     "invalid JSON at byte 46: duplicate key"},
    {DOC("{\"rules\":[{\"p\\\"\":1,\"p\\\"\":2}]}"), "invalid JSON at byte 19: duplicate key"},
    /* \u0000 anywhere, field names included: "path\u0000x" must not pass
     * for "path" */
    {DOC("{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"],\"path\\u0000x\":\"b\"}]}"),
     "invalid JSON at byte 58: \\u0000 is not allowed near '\"path\\u0000x\"'"},
    {DOC("{\"rules\\u0000\":1,\"rules\":[]}"), "invalid JSON at byte 13: \\u0000 is not allowed"},
    {DOC("{\"rules\":[{\"path\":\"a\\u0000\",\"capabilities\":[\"read\"]}]}"),
     "\\u0000 is not allowed"},
    {DOC("{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\\u0000\"]}]}"),
     "\\u0000 is not allowed"},
    /* raw NUL bytes, in a string, between tokens, at the end */
    {DOC("{\"rules\":[{\"path\":\"a\0b\",\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 20: NUL byte"},
    {DOC("{\"rules\":[]\0}"), "invalid JSON at byte 11: NUL byte"},
    {DOC("{\"rules\":[]}\0"), "invalid JSON at byte 12: NUL byte"},
    {DOC("{\"ru\0les\":[]}"), "invalid JSON at byte 4: NUL byte"},
    /* invalid UTF-8 and lone surrogates */
    {DOC("{\"rules\":[{\"path\":\"a\xff\",\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 20: invalid UTF-8 (unable to decode byte 0xff near '\"a')"},
    {DOC("{\"rules\xc3\":[]}"), "invalid JSON at byte 7: invalid UTF-8"},
    {DOC("{\"rules\":[{\"path\":\"\xc0\xaf\",\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 19: invalid UTF-8"}, /* overlong '/' */
    {DOC("{\"rules\":[{\"path\":\"\xed\xa0\x80\",\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 19: invalid UTF-8"}, /* encoded surrogate */
    {DOC("{\"rules\":[{\"path\":\"\xf4\x90\x80\x80\",\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 19: invalid UTF-8"}, /* above U+10FFFF */
    {DOC("{\"rules\":[{\"path\":\"a\\udcff\",\"capabilities\":[\"read\"]}]}"),
     "invalid Unicode '\\uDCFF'"},
    /* huge numbers are refused by the reader, not rounded */
    {DOC("{\"rules\":[{\"path\":1e400,\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 22: real number overflow near '1e400'"},
    {DOC("{\"rules\":[{\"path\":99999999999999999999,\"capabilities\":[\"read\"]}]}"),
     "invalid JSON at byte 37: too big integer"},
    {DOC("{\"rules\":[{\"path\":-99999999999999999999,\"capabilities\":[\"read\"]}]}"),
     "too big negative integer"},
    /* outside RFC 8259 */
    {DOC("{\"rules\":[}"), "invalid JSON at byte 10: unexpected token near '}'"},
    {DOC("{\"rules\":[]} x"), "invalid JSON at byte 13: end of file expected near 'x'"},
    {DOC("\xef\xbb\xbf{\"rules\":[]}"), "invalid JSON at byte 2: invalid token"}, /* BOM */
    {DOC("{\"rules\":[],}"), "invalid JSON at byte 12: string or '}' expected"},
    {DOC("/*c*/{\"rules\":[]}"), "invalid JSON at byte 0: invalid token"},
    {DOC("{\"rules\":[\"\x01\"]}"), "invalid JSON at byte 11: control character 0x1"},
    {DOC("{\"rules\":[tru\x01]}"), "invalid JSON at byte 12: invalid token near 'tru'"},
    {DOC("{\"rules\":[\"\x7f\xc3\xa9\\q\"]}"),
     "invalid JSON at byte 15: invalid escape near '\"\\x7f\\xc3\\xa9\\q'"}, /* quoted printable */
    {DOC("{\"rules\":[\"abc"), "invalid JSON at byte 14: premature end of input"},
    {DOC(""), "invalid JSON at byte 0: unexpected token near end of file"},
};

static void test_json_rejections(void **state) {
  (void)state;
  int failed = 0;
  for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
    cs_policy *p = NULL;
    int rc = cs_policy_parse(bad_json[i].doc, bad_json[i].len, &p);
    if (rc != CS_EINVAL) {
      cs_policy_free(p);
      fail_msg("case %zu: rc %d (accepted?)", i, rc);
    }
    assert_null(p);
    const char *msg = cs_error_message(CS_EINVAL);
    if (strstr(msg, bad_json[i].msg) == NULL) {
      print_error("case %zu: detail \"%s\" lacks \"%s\"\n", i, msg, bad_json[i].msg);
      failed++;
    }
    for (const char *c = msg; *c != '\0'; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
        fail_msg("case %zu: unprintable detail \"%s\"", i, msg);
  }
  assert_int_equal(failed, 0);
}

/* Nesting far beyond what a policy needs: refused by the reader with an
 * offset when very deep, else by the policy checks; never a crash. */
static void test_deep_nesting(void **state) {
  (void)state;
  size_t depth = 100000, o = 0;
  char *doc = malloc(2 * depth + 32);
  assert_non_null(doc);
  o += (size_t)sprintf(doc, "{\"rules\":");
  memset(doc + o, '[', depth);
  memset(doc + o + depth, ']', depth);
  o += 2 * depth;
  doc[o++] = '}';
  cs_policy *p = NULL;
  assert_int_equal(cs_policy_parse(doc, o, &p), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "nested too deeply"));
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "invalid JSON at byte "));
  /* 1000 levels parse as JSON and are refused as a policy */
  o = (size_t)sprintf(doc, "{\"rules\":[");
  memset(doc + o, '[', 1000);
  memset(doc + o + 1000, ']', 1000);
  o += 2000;
  o += (size_t)sprintf(doc + o, "]}");
  assert_int_equal(cs_policy_parse(doc, o, &p), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "rule 1: not an object"));
  free(doc);
}

static void test_document_size_limit(void **state) {
  (void)state;
  size_t n = CS_POLICY_DOC_MAX + 1, o;
  char *doc = malloc(n);
  assert_non_null(doc);
  o = (size_t)sprintf(doc, "{\"rules\":[]}");
  memset(doc + o, ' ', n - o);
  cs_policy *p = NULL;
  assert_int_equal(cs_policy_parse(doc, n, &p), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "longer than 1048576 bytes"));
  /* exactly the limit is fine (trailing white space is allowed) */
  assert_int_equal(cs_policy_parse(doc, n - 1, &p), 0);
  assert_int_equal(cs_policy_rule_count(p), 0);
  cs_policy_free(p);
  free(doc);
}

/* Many keys in one object: the duplicate check stays fast and names the
 * first repetition. */
static void test_many_keys(void **state) {
  (void)state;
  size_t cap = 2 * 1024 * 1024, o = 0;
  char *doc = malloc(cap);
  assert_non_null(doc);
  o += (size_t)sprintf(doc + o, "{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"]");
  for (int k = 0; k < 50000; k++)
    o += (size_t)sprintf(doc + o, ",\"k%d\":%d", k, k);
  size_t at = o + 1;
  o += (size_t)sprintf(doc + o, ",\"k5\":0,\"k7\":0}]}");
  cs_policy *p = NULL;
  assert_int_equal(cs_policy_parse(doc, o, &p), CS_EINVAL);
  char where[64];
  snprintf(where, sizeof where, "at byte %zu: duplicate key near '\"k5\"'", at);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), where));
  /* without the repetition: an unknown field, the first one in text order */
  o = at - 1;
  o += (size_t)sprintf(doc + o, "}]}");
  assert_int_equal(cs_policy_parse(doc, o, &p), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "rule 1 (a): unknown field \"k0\""));
  free(doc);
}

/* A repeated key of 500000 backslashes (escaped) and a quote: found where
 * it starts, in linear time (ctest's timeout bounds the test). */
static void test_duplicate_long_key(void **state) {
  (void)state;
  size_t half = 250000, o = 0, at = 0;
  char *doc = malloc(4 * half + 64);
  assert_non_null(doc);
  doc[o++] = '{';
  for (int rep = 0; rep < 2; rep++) {
    if (rep == 1) {
      doc[o++] = ',';
      at = o;
    }
    doc[o++] = '"';
    for (size_t k = 0; k < half; k++)
      memcpy(doc + o + 2 * k, k < half - 2 ? "\\\\" : "\\\"", 2);
    o += 2 * half;
    o += (size_t)sprintf(doc + o, "\":%d", rep);
  }
  doc[o++] = '}';
  cs_policy *p = NULL;
  assert_int_equal(cs_policy_parse(doc, o, &p), CS_EINVAL);
  char where[64];
  snprintf(where, sizeof where, "invalid JSON at byte %zu: duplicate key", at);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), where));
  free(doc);
}

/* Escapes are decoded before the checks: a path spelled with \u escapes
 * is the same path, and a name spelled so is the same field. */
static void test_escapes_decoded(void **state) {
  (void)state;
  cs_policy *p = parse_ok("{\"r\\u0075les\":[{\"pa\\u0074h\":\"app\\/\\u002a\","
                          "\"capabilities\":[\"r\\u0065ad\"]}]}");
  assert_int_equal(cs_policy_rule_count(p), 1);
  assert_string_equal(cs_policy_rule_path(p, 0), "app/*");
  assert_int_equal(allows1(p, "app/x", CS_CAP_READ), 1);
  cs_policy_free(p);
  /* a field name that decodes to a known one twice is a duplicate */
  cs_policy *q = NULL;
  static const char dup[] = "{\"rules\":[],\"rul\\u0065s\":[]}";
  assert_int_equal(cs_policy_parse(dup, sizeof dup - 1, &q), CS_EINVAL);
  assert_non_null(strstr(cs_error_message(CS_EINVAL), "invalid JSON at byte 12: duplicate key"));
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

/* An old document keeps its operator decisions and its secret decisions,
 * except that sudo-only rules no longer decide secrets (policy_ns.h). */
static void test_namespace_migration(void **state) {
  (void)state;
  static const char old[] =
      "{\"rules\":[{\"path\":\"sys/*\",\"capabilities\":[\"sudo\"]},"
      "{\"path\":\"app/*\",\"capabilities\":[\"read\",\"sudo\"]},"
      "{\"path\":\"sys/rotate\",\"capabilities\":[\"deny\"]},"
      "{\"path\":\"*\",\"capabilities\":[\"read\"]}]}";
  char *m = NULL;
  size_t mlen = 0;
  assert_int_equal(cs_policy_ns_migrate(old, strlen(old), &m, &mlen), 0);
  assert_int_equal(strlen(m), mlen);
  assert_string_equal(m, "{\"rules\":[{\"path\":\"app/*\",\"capabilities\":[\"read\"]},"
                         "{\"path\":\"sys/rotate\",\"capabilities\":[\"deny\"]},"
                         "{\"path\":\"*\",\"capabilities\":[\"read\"]}],"
                         "\"operator\":[{\"path\":\"sys/*\",\"capabilities\":[\"sudo\"]},"
                         "{\"path\":\"sys/rotate\",\"capabilities\":[\"deny\"]},"
                         "{\"path\":\"*\",\"capabilities\":[\"read\"]}]}");
  cs_policy *p = parse_ok(m);
  assert_int_equal(allows_op(p, "sys/seal", CS_CAP_SUDO), 1);
  assert_int_equal(allows_op(p, "sys/rotate", CS_CAP_SUDO), 0);
  assert_int_equal(allows1(p, "app/x", CS_CAP_READ), 1);
  assert_int_equal(allows1(p, "sys/x", CS_CAP_READ), 1); /* "sys/ *" sudo no longer decides it */
  assert_int_equal(allows1(p, "sys/rotate", CS_CAP_READ), 0); /* a deny still does */
  cs_policy_free(p);
  free(m);
  /* Already namespaced: unchanged. */
  static const char cur[] = "{\"operator\":[{\"path\":\"sys/seal\",\"capabilities\":[\"sudo\"]}]}";
  assert_int_equal(cs_policy_ns_migrate(cur, strlen(cur), &m, &mlen), 0);
  assert_string_equal(m, cur);
  free(m);
  /* Which old rules can reach a sys/ path. */
  assert_int_equal(cs_policy_ns_matches_sys("*"), 1);
  assert_int_equal(cs_policy_ns_matches_sys("s*"), 1);
  assert_int_equal(cs_policy_ns_matches_sys("sys/*"), 1);
  assert_int_equal(cs_policy_ns_matches_sys("sys/token/*"), 1);
  assert_int_equal(cs_policy_ns_matches_sys("sys/seal"), 1);
  assert_int_equal(cs_policy_ns_matches_sys("sys"), 0);
  assert_int_equal(cs_policy_ns_matches_sys("app/*"), 0);
  assert_int_equal(cs_policy_ns_matches_sys("sysx*"), 0);
  /* Corrupt stored data is an error, never an empty policy. */
  assert_int_equal(cs_policy_ns_migrate("[]", 2, &m, &mlen), CS_EINVAL);
  assert_int_equal(cs_policy_ns_migrate("{\"rules\":[7]}", 13, &m, &mlen), CS_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example),
      cmocka_unit_test(test_longest_prefix),
      cmocka_unit_test(test_exact_beats_prefix),
      cmocka_unit_test(test_union_and_deny_across_policies),
      cmocka_unit_test(test_all_capabilities),
      cmocka_unit_test(test_namespaces_never_decide_for_each_other),
      cmocka_unit_test(test_namespace_migration),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_nul_in_member_names),
      cmocka_unit_test(test_json_rejections),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_document_size_limit),
      cmocka_unit_test(test_many_keys),
      cmocka_unit_test(test_duplicate_long_key),
      cmocka_unit_test(test_escapes_decoded),
      cmocka_unit_test(test_long_path_in_error_is_bounded),
      cmocka_unit_test(test_rule_limit),
      cmocka_unit_test(test_empty_rules_deny_everything),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
