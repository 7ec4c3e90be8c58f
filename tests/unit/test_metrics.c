/*
 * Unit tests for metrics: the Prometheus text writer keeps the format's
 * rules (HELP/TYPE before samples, counters end in _total, escapes, a final
 * newline, cumulative buckets ending in +Inf equal to _count) and refuses
 * misuse with a sticky error instead of writing a text promtool rejects.
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
#include "metrics.h"

static const char *text_of(cs_prom *p) {
  const char *t;
  size_t n;
  assert_int_equal(cs_prom_result(p, &t, &n), 0);
  assert_int_equal(strlen(t), n);
  assert_true(n > 0 && t[n - 1] == '\n');
  return t;
}

static void test_counter_and_gauge(void **state) {
  (void)state;
  cs_prom p;
  cs_prom_init(&p);
  cs_prom_family(&p, "custos_requests_total", CS_PROM_COUNTER, "Requests by op and code.");
  cs_prom_label l[] = {{"op", "kv_get"}, {"code", "ok"}};
  cs_prom_sample_u64(&p, l, 2, 42);
  cs_prom_family(&p, "custos_sealed", CS_PROM_GAUGE, "1 when sealed.");
  cs_prom_sample(&p, NULL, 0, 1);
  assert_string_equal(text_of(&p), "# HELP custos_requests_total Requests by op and code.\n"
                                   "# TYPE custos_requests_total counter\n"
                                   "custos_requests_total{op=\"kv_get\",code=\"ok\"} 42\n"
                                   "# HELP custos_sealed 1 when sealed.\n"
                                   "# TYPE custos_sealed gauge\n"
                                   "custos_sealed 1\n");
  cs_prom_free(&p);
}

static void test_escapes(void **state) {
  (void)state;
  cs_prom p;
  cs_prom_init(&p);
  cs_prom_family(&p, "x_info", CS_PROM_GAUGE, "a \\ b\nc");
  cs_prom_label l[] = {{"peer", "a\"b\\c\nd"}};
  cs_prom_sample(&p, l, 1, 0.5);
  assert_string_equal(text_of(&p), "# HELP x_info a \\\\ b\\nc\n"
                                   "# TYPE x_info gauge\n"
                                   "x_info{peer=\"a\\\"b\\\\c\\nd\"} 0.5\n");
  cs_prom_free(&p);
}

static void test_histogram(void **state) {
  (void)state;
  static const double b[] = {0.001, 0.01};
  cs_hist h;
  cs_hist_init(&h, b, 2);
  cs_hist_observe_ns(&h, 500000);     /* 0.5 ms: first bucket */
  cs_hist_observe_ns(&h, 1000000);    /* exactly 1 ms: le is inclusive */
  cs_hist_observe_ns(&h, 5000000);    /* 5 ms */
  cs_hist_observe_ns(&h, 2000000000); /* 2 s: +Inf only */
  cs_prom p;
  cs_prom_init(&p);
  cs_prom_family(&p, "lat_seconds", CS_PROM_HISTOGRAM, "Latency.");
  cs_prom_hist(&p, NULL, 0, &h, 1);
  assert_string_equal(text_of(&p), "# HELP lat_seconds Latency.\n"
                                   "# TYPE lat_seconds histogram\n"
                                   "lat_seconds_bucket{le=\"0.001\"} 2\n"
                                   "lat_seconds_bucket{le=\"0.01\"} 3\n"
                                   "lat_seconds_bucket{le=\"+Inf\"} 4\n"
                                   "lat_seconds_sum 2.006500000\n"
                                   "lat_seconds_count 4\n");
  cs_prom_free(&p);

  cs_hist s;
  cs_hist_init(&s, cs_hist_size_bounds, cs_hist_size_nbounds);
  cs_hist_observe_value(&s, 3);
  cs_prom_init(&p);
  cs_prom_family(&p, "group_size", CS_PROM_HISTOGRAM, "Requests per group.");
  cs_prom_label l[] = {{"backend", "lmdb"}};
  cs_prom_hist(&p, l, 1, &s, 0);
  const char *t = text_of(&p);
  assert_non_null(strstr(t, "group_size_bucket{backend=\"lmdb\",le=\"2\"} 0\n"));
  assert_non_null(strstr(t, "group_size_bucket{backend=\"lmdb\",le=\"4\"} 1\n"));
  assert_non_null(strstr(t, "group_size_bucket{backend=\"lmdb\",le=\"+Inf\"} 1\n"));
  assert_non_null(strstr(t, "group_size_sum{backend=\"lmdb\"} 3\n"));
  cs_prom_free(&p);
}

static void expect_misuse(void (*fn)(cs_prom *)) {
  cs_prom p;
  const char *t;
  size_t n;
  cs_prom_init(&p);
  fn(&p);
  assert_int_equal(cs_prom_result(&p, &t, &n), CS_EINVAL);
  cs_prom_free(&p);
}

static void counter_without_total(cs_prom *p) { cs_prom_family(p, "reqs", CS_PROM_COUNTER, "h"); }
static void gauge_with_total(cs_prom *p) { cs_prom_family(p, "x_total", CS_PROM_GAUGE, "h"); }
static void bad_name(cs_prom *p) { cs_prom_family(p, "9lives", CS_PROM_GAUGE, "h"); }
static void name_with_dash(cs_prom *p) { cs_prom_family(p, "a-b", CS_PROM_GAUGE, "h"); }
static void sample_first(cs_prom *p) { cs_prom_sample(p, NULL, 0, 1); }
static void twice(cs_prom *p) {
  cs_prom_family(p, "a", CS_PROM_GAUGE, "h");
  cs_prom_sample(p, NULL, 0, 1);
  cs_prom_family(p, "a", CS_PROM_GAUGE, "h");
}
static void bad_label(cs_prom *p) {
  cs_prom_family(p, "a", CS_PROM_GAUGE, "h");
  cs_prom_label l[] = {{"a:b", "x"}};
  cs_prom_sample(p, l, 1, 1);
}
static void le_label(cs_prom *p) {
  cs_prom_family(p, "a", CS_PROM_GAUGE, "h");
  cs_prom_label l[] = {{"le", "x"}};
  cs_prom_sample(p, l, 1, 1);
}
static void hist_as_gauge(cs_prom *p) {
  cs_hist h;
  cs_hist_init(&h, cs_hist_latency_bounds, cs_hist_latency_nbounds);
  cs_prom_family(p, "a", CS_PROM_GAUGE, "h");
  cs_prom_hist(p, NULL, 0, &h, 1);
}
static void too_many_labels(cs_prom *p) {
  cs_prom_family(p, "a", CS_PROM_GAUGE, "h");
  cs_prom_label l[5] = {{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}, {"e", ""}};
  cs_prom_sample(p, l, 5, 1);
}
static void nothing(cs_prom *p) { (void)p; }

static void test_misuse(void **state) {
  (void)state;
  expect_misuse(counter_without_total);
  expect_misuse(gauge_with_total);
  expect_misuse(bad_name);
  expect_misuse(name_with_dash);
  expect_misuse(sample_first);
  expect_misuse(twice);
  expect_misuse(bad_label);
  expect_misuse(le_label);
  expect_misuse(hist_as_gauge);
  expect_misuse(too_many_labels);
  expect_misuse(nothing);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_and_gauge),
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_histogram),
      cmocka_unit_test(test_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
