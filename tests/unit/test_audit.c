/*
 * Unit tests for audit: every line is one valid JSON object with the
 * documented fields, sensitive values only ever appear as their HMAC (or
 * "unavailable" without a key), the HMAC is the one cs_audit_hmac_hex
 * gives, reopen follows log rotation, and write failures are CS_EAUDIT.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "crypto.h"
#include "cs_error.h"
#include "jtest.h"

typedef struct fixture {
  char dir[64];
  char log[128];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  strcpy(f->dir, "/tmp/custos-test-audit-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->log, sizeof f->log, "%s/audit.log", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  if (system(cmd) != 0)
    return -1;
  free(f);
  return 0;
}

/* The whole file, NUL-terminated; *len without the NUL. */
static char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  char *buf = NULL;
  size_t cap = 0, n = 0, r;
  do {
    if (n + 4096 > cap) {
      cap = cap ? cap * 2 : 8192;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    r = fread(buf + n, 1, cap - n - 1, fp);
    n += r;
  } while (r > 0);
  fclose(fp);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Parses line `idx` (0-based) of a log text with jansson; stray bytes in
 * logged strings (\uDCXX, see common/jbuf.h) come back as U+FFFD, and
 * jtest_decode_string() gives them exactly. */
static json_t *line_at(const char *text, size_t idx) {
  const char *p = text;
  for (size_t i = 0; i < idx; i++) {
    p = strchr(p, '\n');
    assert_non_null(p);
    p++;
  }
  const char *nl = strchr(p, '\n');
  assert_non_null(nl);
  json_t *v = jtest_load(p, (size_t)(nl - p));
  if (v == NULL || !json_is_object(v))
    fail_msg("line %zu does not parse as an object", idx);
  return v;
}

static size_t count_lines(const char *text) {
  size_t n = 0;
  for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
    n++;
  return n;
}

static const char *field(const json_t *v, const char *key) {
  const char *s = json_string_value(json_object_get(v, key));
  if (s == NULL)
    fail_msg("no string field %s", key);
  return s;
}

static const uint8_t key1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static const char pw[] = "hunter2-very-secret";
static const char share[] = "c2hhcmUtMS1vZi01LXNlY3JldA==";

static cs_audit_record request_record(cs_audit_sensitive *sens, size_t n) {
  cs_audit_record r = {
      .type = CS_AUDIT_REQUEST,
      .time = 1795321526, /* 2026-11-22T04:25:26Z */
      .request_id = 42,
      .client = "10.0.0.5:41230",
      .accessor = "acc-1",
      .operation = "kv-put",
      .path = "app/db",
      .sensitive = sens,
      .n_sensitive = n,
  };
  return r;
}

static void test_lines_are_json(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  assert_int_equal(cs_audit_open(&a, f->log), 0);
  cs_audit_set_hmac_key(a, key1);
  cs_audit_sensitive sens[] = {{"password", (const uint8_t *)pw, sizeof pw - 1},
                               {"share", (const uint8_t *)share, sizeof share - 1}};
  cs_audit_record r = request_record(sens, 2);
  assert_int_equal(cs_audit_write(a, &r), 0);

  r.type = CS_AUDIT_RESPONSE;
  r.n_sensitive = 0;
  assert_int_equal(cs_audit_write(a, &r), 0);

  r.error = CS_EPERM;
  r.error_message = "permission denied on app/db";
  r.accessor = NULL;
  r.path = "weird\x01\xff\"path";
  assert_int_equal(cs_audit_write(a, &r), 0);

  r.error_message = NULL;
  assert_int_equal(cs_audit_write(a, &r), 0);
  cs_audit_close(a);

  size_t len;
  char *text = slurp(f->log, &len);
  assert_int_equal(count_lines(text), 4);
  assert_int_equal(text[len - 1], '\n');

  json_t *v = line_at(text, 0);
  assert_string_equal(field(v, "type"), "request");
  assert_string_equal(field(v, "time"), "2026-11-22T04:25:26Z");
  assert_true(json_is_integer(json_object_get(v, "request_id")));
  assert_true(json_integer_value(json_object_get(v, "request_id")) == 42);
  assert_string_equal(field(v, "client"), "10.0.0.5:41230");
  assert_string_equal(field(v, "accessor"), "acc-1");
  assert_string_equal(field(v, "operation"), "kv-put");
  assert_string_equal(field(v, "path"), "app/db");
  assert_null(json_object_get(v, "result")); /* requests have no result */
  const json_t *s = json_object_get(v, "sensitive");
  assert_non_null(s);
  assert_int_equal(json_array_size(s), 2);
  assert_string_equal(field(json_array_get(s, 0), "field"), "password");
  assert_string_equal(field(json_array_get(s, 1), "field"), "share");
  json_decref(v);

  v = line_at(text, 1);
  assert_string_equal(field(v, "type"), "response");
  assert_string_equal(field(v, "result"), "ok");
  assert_null(json_object_get(v, "error_code"));
  assert_null(json_object_get(v, "sensitive"));
  json_decref(v);

  v = line_at(text, 2);
  assert_string_equal(field(v, "result"), "error");
  assert_string_equal(field(v, "error_code"), "CS_EPERM");
  assert_string_equal(field(v, "error_message"), "permission denied on app/db");
  assert_string_equal(field(v, "accessor"), "");
  assert_string_equal(field(v, "path"), "weird\x01\xef\xbf\xbd\"path"); /* U+FFFD */
  json_decref(v);
  static const char lit[] = "\"weird\\u0001\\udcff\\\"path\"";
  const char *at = strstr(text, lit);
  assert_non_null(at);
  size_t n;
  unsigned char *exact = jtest_decode_string(at, sizeof lit - 1, &n);
  assert_non_null(exact);
  assert_int_equal(n, 12);
  assert_memory_equal(exact, "weird\x01\xff\"path", 12); /* the exact bytes */
  free(exact);

  v = line_at(text, 3);
  assert_string_equal(field(v, "error_message"), cs_strerror(CS_EPERM));
  json_decref(v);
  free(text);

  struct stat st;
  assert_int_equal(stat(f->log, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
}

/* Records are built in one kept buffer: one of a secret's thousand long
 * field names (megabytes escaped) must not keep its buffer for good, and
 * the records after it come out whole. */
static void test_large_record_buffer_released(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  assert_int_equal(cs_audit_open(&a, f->log), 0);
  cs_audit_set_hmac_key(a, key1);
  enum { N = 1000, NAME = 1000 };
  char *names = malloc((size_t)N * (NAME + 1));
  cs_audit_sensitive *sens = calloc(N, sizeof *sens);
  assert_non_null(names);
  assert_non_null(sens);
  for (size_t i = 0; i < N; i++) {
    char *nm = names + i * (NAME + 1);
    memset(nm, 0x01, NAME); /* escaped six times over: about 6 MB in all */
    nm[NAME] = '\0';
    sens[i] = (cs_audit_sensitive){nm, (const uint8_t *)pw, sizeof pw - 1};
  }
  struct mallinfo2 before = mallinfo2();
  cs_audit_record r = request_record(sens, N);
  assert_int_equal(cs_audit_write(a, &r), 0);
  r = request_record(NULL, 0);
  assert_int_equal(cs_audit_stage(a, &r), 0);
  assert_int_equal(cs_audit_flush(a), 0);
  struct mallinfo2 after = mallinfo2();
  size_t held0 = before.uordblks + before.hblkhd, held1 = after.uordblks + after.hblkhd;
  if (held1 > held0 + 256 * 1024) /* heap and mmap'd blocks both */
    fail_msg("%zu bytes more in use after one large record", held1 - held0);
  cs_audit_close(a);
  free(sens);
  free(names);
  size_t len;
  char *text = slurp(f->log, &len);
  assert_int_equal(count_lines(text), 2);
  json_t *v = line_at(text, 0);
  assert_int_equal(json_array_size(json_object_get(v, "sensitive")), N);
  json_decref(v);
  v = line_at(text, 1);
  assert_string_equal(field(v, "path"), "app/db");
  assert_null(json_object_get(v, "sensitive"));
  json_decref(v);
  free(text);
}

static void test_sensitive_values_hashed(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  char want_pw[CS_AUDIT_HMAC_STR_MAX], want_share[CS_AUDIT_HMAC_STR_MAX];
  assert_int_equal(cs_audit_open(&a, f->log), 0);

  /* sealed: no key yet */
  cs_audit_hmac_hex(a, (const uint8_t *)pw, sizeof pw - 1, want_pw);
  assert_string_equal(want_pw, "hmac-sha256:unavailable");
  cs_audit_sensitive sens[] = {{"password", (const uint8_t *)pw, sizeof pw - 1},
                               {"share", (const uint8_t *)share, sizeof share - 1}};
  cs_audit_record r = request_record(sens, 2);
  assert_int_equal(cs_audit_write(a, &r), 0);

  cs_audit_set_hmac_key(a, key1);
  assert_int_equal(cs_audit_write(a, &r), 0);
  cs_audit_hmac_hex(a, (const uint8_t *)pw, sizeof pw - 1, want_pw);
  cs_audit_hmac_hex(a, (const uint8_t *)share, sizeof share - 1, want_share);

  /* the exported hash is HMAC-SHA256 under the key, in lower-case hex */
  uint8_t mac[32];
  char hex[65];
  cs_hmac_sha256(key1, sizeof key1, pw, sizeof pw - 1, mac);
  cs_hex_encode(mac, sizeof mac, hex);
  assert_int_equal(strncmp(want_pw, "hmac-sha256:", 12), 0);
  assert_string_equal(want_pw + 12, hex);
  assert_int_equal(strlen(want_pw), 12 + 64);

  /* another key hashes differently */
  uint8_t key2[32];
  memcpy(key2, key1, sizeof key2);
  key2[0] ^= 1;
  cs_audit_set_hmac_key(a, key2);
  char other[CS_AUDIT_HMAC_STR_MAX];
  cs_audit_hmac_hex(a, (const uint8_t *)pw, sizeof pw - 1, other);
  assert_string_not_equal(other, want_pw);

  cs_audit_clear_hmac_key(a);
  assert_int_equal(cs_audit_write(a, &r), 0);
  cs_audit_hmac_hex(a, (const uint8_t *)pw, sizeof pw - 1, other);
  assert_string_equal(other, "hmac-sha256:unavailable");
  cs_audit_close(a);

  size_t len;
  char *text = slurp(f->log, &len);
  assert_int_equal(count_lines(text), 3);
  assert_null(memmem(text, len, pw, sizeof pw - 1));
  assert_null(memmem(text, len, share, sizeof share - 1));
  assert_null(memmem(text, len, "hunter2", 7));

  const char *want[3][2] = {{"hmac-sha256:unavailable", "hmac-sha256:unavailable"},
                            {want_pw, want_share},
                            {"hmac-sha256:unavailable", "hmac-sha256:unavailable"}};
  for (size_t i = 0; i < 3; i++) {
    json_t *v = line_at(text, i);
    const json_t *s = json_object_get(v, "sensitive");
    assert_string_equal(field(json_array_get(s, 0), "value"), want[i][0]);
    assert_string_equal(field(json_array_get(s, 1), "value"), want[i][1]);
    json_decref(v);
  }
  free(text);
}

static void test_reopen_after_rotation(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  char rotated[160];
  snprintf(rotated, sizeof rotated, "%s.1", f->log);
  assert_int_equal(cs_audit_open(&a, f->log), 0);
  cs_audit_record r = request_record(NULL, 0);
  r.request_id = 1;
  assert_int_equal(cs_audit_write(a, &r), 0);
  assert_int_equal(rename(f->log, rotated), 0);
  r.request_id = 2; /* before SIGHUP: still goes to the renamed file */
  assert_int_equal(cs_audit_write(a, &r), 0);
  assert_int_equal(cs_audit_reopen(a), 0);
  r.request_id = 3;
  assert_int_equal(cs_audit_write(a, &r), 0);

  size_t len;
  char *old = slurp(rotated, &len), *cur = slurp(f->log, &len);
  assert_int_equal(count_lines(old), 2);
  assert_int_equal(count_lines(cur), 1);
  json_t *v = line_at(cur, 0);
  assert_true(json_is_integer(json_object_get(v, "request_id")));
  assert_true(json_integer_value(json_object_get(v, "request_id")) == 3);
  json_decref(v);
  free(old);
  free(cur);

  /* a failed reopen keeps the old file in use */
  char moved[160];
  snprintf(moved, sizeof moved, "%s.moved", f->dir);
  assert_int_equal(rename(f->dir, moved), 0);
  assert_int_equal(cs_audit_reopen(a), CS_EAUDIT);
  assert_non_null(strstr(cs_error_message(CS_EAUDIT), f->log));
  r.request_id = 4;
  assert_int_equal(cs_audit_write(a, &r), 0);
  assert_int_equal(rename(moved, f->dir), 0);
  cs_audit_close(a);
  cur = slurp(f->log, &len);
  assert_int_equal(count_lines(cur), 2);
  free(cur);
}

static void test_open_failure_names_file(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  char path[160];
  snprintf(path, sizeof path, "%s/no/such/dir/audit.log", f->dir);
  assert_int_equal(cs_audit_open(&a, path), CS_EAUDIT);
  assert_null(a);
  const char *msg = cs_error_message(CS_EAUDIT);
  assert_non_null(strstr(msg, path));
  assert_non_null(strstr(msg, "No such file or directory"));
  assert_int_equal(cs_audit_open(&a, f->dir), CS_EAUDIT); /* a directory */
  assert_null(a);
}

static void test_write_failure_is_eaudit(void **state) {
  (void)state;
  cs_audit *a = NULL;
  if (access("/dev/full", W_OK) != 0)
    skip();
  assert_int_equal(cs_audit_open(&a, "/dev/full"), 0);
  cs_audit_record r = request_record(NULL, 0);
  assert_int_equal(cs_audit_write(a, &r), CS_EAUDIT);
  const char *msg = cs_error_message(CS_EAUDIT);
  assert_non_null(strstr(msg, "/dev/full"));
  assert_non_null(strstr(msg, "No space left on device"));
  assert_int_equal(cs_audit_write(a, &r), CS_EAUDIT); /* and stays failed */
  cs_audit_close(a);
}

static void test_sync_mode(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  assert_int_equal(cs_audit_open(&a, f->log), 0);
  cs_audit_set_sync(a, 1);
  cs_audit_record r = request_record(NULL, 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_audit_write(a, &r), 0);
  cs_audit_close(a);
  cs_audit_close(NULL);
  size_t len;
  char *text = slurp(f->log, &len);
  assert_int_equal(count_lines(text), 3);
  free(text);
}

/* Many records with large, awkward fields: still one line each. */
static void test_large_records(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  assert_int_equal(cs_audit_open(&a, f->log), 0);
  cs_audit_set_hmac_key(a, key1);
  static char big[100000];
  for (size_t i = 0; i < sizeof big - 1; i++)
    big[i] = (char)(i % 7 == 0 ? '\n' : 'a' + i % 26);
  big[sizeof big - 1] = '\0';
  cs_audit_sensitive sens[64];
  for (size_t i = 0; i < 64; i++)
    sens[i] = (cs_audit_sensitive){"f", (const uint8_t *)big, i * 100};
  cs_audit_record r = request_record(sens, 64);
  r.path = big;
  for (int i = 0; i < 20; i++)
    assert_int_equal(cs_audit_write(a, &r), 0);
  cs_audit_close(a);
  size_t len;
  char *text = slurp(f->log, &len);
  assert_int_equal(count_lines(text), 20);
  json_t *v = line_at(text, 19);
  assert_string_equal(field(v, "path"), big);
  assert_int_equal(json_array_size(json_object_get(v, "sensitive")), 64);
  json_decref(v);
  free(text);
}

/* Staged records reach the file only at the flush, all in one write, in
 * staging order; a direct write in between goes out at once. */
static void test_stage_and_flush(void **state) {
  fixture *f = *state;
  cs_audit *a = NULL;
  assert_int_equal(cs_audit_open(&a, f->log), 0);
  cs_audit_set_hmac_key(a, key1);
  cs_audit_sensitive sens[] = {{"password", (const uint8_t *)pw, sizeof pw - 1}};
  cs_audit_record r = request_record(sens, 1);
  assert_int_equal(cs_audit_flush(a), 0); /* nothing staged: no-op */
  for (int i = 1; i <= 500; i++) {
    r.request_id = (uint64_t)i;
    assert_int_equal(cs_audit_stage(a, &r), 0);
  }
  assert_true(cs_audit_staged(a) > 500 * 100);
  size_t len;
  char *text = slurp(f->log, &len);
  assert_int_equal(len, 0);
  free(text);
  r.request_id = 1000; /* a direct write does not wait for the group */
  assert_int_equal(cs_audit_write(a, &r), 0);
  assert_int_equal(cs_audit_flush(a), 0);
  assert_int_equal(cs_audit_staged(a), 0);
  cs_audit_close(a);

  text = slurp(f->log, &len);
  assert_int_equal(count_lines(text), 501);
  assert_null(memmem(text, len, pw, sizeof pw - 1));
  for (size_t i = 0; i < 501; i++) {
    json_t *v = line_at(text, i);
    json_int_t want = i == 0 ? 1000 : (json_int_t)i;
    assert_true(json_integer_value(json_object_get(v, "request_id")) == want);
    json_decref(v);
  }
  free(text);
}

/* A failed flush reports CS_EAUDIT and empties the group (its requests are
 * failed by the caller; they are never written later by surprise). */
static void test_flush_failure(void **state) {
  (void)state;
  cs_audit *a = NULL;
  if (access("/dev/full", W_OK) != 0)
    skip();
  assert_int_equal(cs_audit_open(&a, "/dev/full"), 0);
  cs_audit_record r = request_record(NULL, 0);
  assert_int_equal(cs_audit_stage(a, &r), 0);
  assert_int_equal(cs_audit_flush(a), CS_EAUDIT);
  assert_non_null(strstr(cs_error_message(CS_EAUDIT), "No space left on device"));
  assert_int_equal(cs_audit_staged(a), 0);
  assert_int_equal(cs_audit_flush(a), 0);
  cs_audit_close(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stage_and_flush, setup, teardown),
      cmocka_unit_test(test_flush_failure),
      cmocka_unit_test_setup_teardown(test_lines_are_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_record_buffer_released, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sensitive_values_hashed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_after_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_failure_names_file, setup, teardown),
      cmocka_unit_test(test_write_failure_is_eaudit),
      cmocka_unit_test_setup_teardown(test_sync_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_records, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
