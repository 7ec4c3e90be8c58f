/* metrics: see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_error.h"

const double cs_hist_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                         1,      2.5,     5,      10};
const unsigned cs_hist_latency_nbounds =
    sizeof cs_hist_latency_bounds / sizeof cs_hist_latency_bounds[0];
const double cs_hist_size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const unsigned cs_hist_size_nbounds = sizeof cs_hist_size_bounds / sizeof cs_hist_size_bounds[0];

void cs_hist_init(cs_hist *h, const double *bounds, unsigned nbounds) {
  memset(h, 0, sizeof *h);
  h->bounds = bounds;
  h->nbounds = nbounds > CS_HIST_MAX_BUCKETS ? CS_HIST_MAX_BUCKETS : nbounds;
}

static void hist_add(cs_hist *h, double x, uint64_t sum_units) {
  unsigned i = 0;
  while (i < h->nbounds && x > h->bounds[i])
    i++;
  __atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&h->sum_ns, sum_units, __ATOMIC_RELAXED);
}

void cs_hist_observe_ns(cs_hist *h, uint64_t ns) { hist_add(h, (double)ns / 1e9, ns); }

void cs_hist_observe_value(cs_hist *h, uint64_t v) { hist_add(h, (double)v, v); }

/* ---- the text writer ---------------------------------------------------- */

void cs_prom_init(cs_prom *p) { memset(p, 0, sizeof *p); }

void cs_prom_free(cs_prom *p) {
  free(p->buf);
  cs_prom_init(p);
}

static void put(cs_prom *p, const char *s, size_t n) {
  if (p->err)
    return;
  if (p->len + n + 1 > p->cap) {
    size_t cap = p->cap ? p->cap : 4096;
    while (cap < p->len + n + 1)
      cap *= 2;
    char *nb = realloc(p->buf, cap);
    if (nb == NULL) {
      p->err = CS_ENOMEM;
      return;
    }
    p->buf = nb;
    p->cap = cap;
  }
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  p->buf[p->len] = '\0';
}

static void puts_(cs_prom *p, const char *s) { put(p, s, strlen(s)); }

static void putf(cs_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(cs_prom *p, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    p->err = p->err ? p->err : CS_EINVAL;
    return;
  }
  put(p, tmp, (size_t)n);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (label names: no ':'). */
static int valid_name(const char *s, int colon_ok) {
  if (s == NULL || *s == '\0')
    return 0;
  for (const char *c = s; *c; c++) {
    int alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_';
    int digit = *c >= '0' && *c <= '9';
    if (!(alpha || (digit && c != s) || (colon_ok && *c == ':')))
      return 0;
  }
  return 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static void misuse(cs_prom *p) {
  if (!p->err)
    p->err = CS_EINVAL;
}

/* HELP text escapes '\' and newline; label values also '"'. */
static void put_escaped(cs_prom *p, const char *s, int quote) {
  for (const char *c = s ? s : ""; *c; c++) {
    if (*c == '\\')
      puts_(p, "\\\\");
    else if (*c == '\n')
      puts_(p, "\\n");
    else if (quote && *c == '"')
      puts_(p, "\\\"");
    else
      put(p, c, 1);
  }
}

/* Families seen so far, by the text already written: "# TYPE name " is
 * unique per family, so a second start is found by searching for it. */
static int family_started(const cs_prom *p, const char *name) {
  if (p->buf == NULL)
    return 0;
  char key[128];
  int n = snprintf(key, sizeof key, "# TYPE %s ", name);
  if (n < 0 || (size_t)n >= sizeof key)
    return 1;
  return strstr(p->buf, key) != NULL;
}

void cs_prom_family(cs_prom *p, const char *name, cs_prom_type type, const char *help) {
  static const char *const names[] = {"counter", "gauge", "histogram"};
  if (!valid_name(name, 1) || strlen(name) >= sizeof p->family ||
      (type == CS_PROM_COUNTER) != ends_with(name, "_total") || family_started(p, name)) {
    misuse(p);
    return;
  }
  snprintf(p->family, sizeof p->family, "%s", name);
  p->type = type;
  puts_(p, "# HELP ");
  puts_(p, name);
  puts_(p, " ");
  put_escaped(p, help, 0);
  puts_(p, "\n# TYPE ");
  puts_(p, name);
  puts_(p, " ");
  puts_(p, names[type]);
  puts_(p, "\n");
}

/* name{a="x",b="y",extra} with an optional extra label (le="..."). */
static void put_series(cs_prom *p, const char *suffix, const cs_prom_label *labels,
                       unsigned nlabels, const char *le) {
  puts_(p, p->family);
  puts_(p, suffix);
  if (nlabels == 0 && le == NULL)
    return;
  puts_(p, "{");
  for (unsigned i = 0; i < nlabels; i++) {
    if (!valid_name(labels[i].name, 0) || strcmp(labels[i].name, "le") == 0) {
      misuse(p);
      return;
    }
    if (i)
      puts_(p, ",");
    puts_(p, labels[i].name);
    puts_(p, "=\"");
    put_escaped(p, labels[i].value, 1);
    puts_(p, "\"");
  }
  if (le != NULL) {
    puts_(p, nlabels ? ",le=\"" : "le=\"");
    puts_(p, le);
    puts_(p, "\"");
  }
  puts_(p, "}");
}

static int sample_ok(cs_prom *p, cs_prom_type want, unsigned nlabels) {
  int ok = p->family[0] != '\0' && nlabels <= CS_PROM_MAX_LABELS &&
           (want == CS_PROM_HISTOGRAM ? p->type == CS_PROM_HISTOGRAM : p->type != CS_PROM_HISTOGRAM);
  if (!ok)
    misuse(p);
  return ok && !p->err;
}

void cs_prom_sample(cs_prom *p, const cs_prom_label *labels, unsigned nlabels, double value) {
  if (!sample_ok(p, CS_PROM_GAUGE, nlabels))
    return;
  put_series(p, "", labels, nlabels, NULL);
  if (isnan(value))
    puts_(p, " NaN\n");
  else if (isinf(value))
    puts_(p, value > 0 ? " +Inf\n" : " -Inf\n");
  else
    putf(p, " %.17g\n", value);
}

void cs_prom_sample_u64(cs_prom *p, const cs_prom_label *labels, unsigned nlabels, uint64_t value) {
  if (!sample_ok(p, CS_PROM_GAUGE, nlabels))
    return;
  put_series(p, "", labels, nlabels, NULL);
  putf(p, " %llu\n", (unsigned long long)value);
}

void cs_prom_hist(cs_prom *p, const cs_prom_label *labels, unsigned nlabels, const cs_hist *h,
                  int in_seconds) {
  if (!sample_ok(p, CS_PROM_HISTOGRAM, nlabels))
    return;
  uint64_t cum = 0;
  char le[32];
  for (unsigned i = 0; i <= h->nbounds; i++) {
    cum += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
    if (i < h->nbounds)
      snprintf(le, sizeof le, "%g", h->bounds[i]);
    else
      snprintf(le, sizeof le, "+Inf");
    put_series(p, "_bucket", labels, nlabels, le);
    putf(p, " %llu\n", (unsigned long long)cum);
  }
  uint64_t sum = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
  put_series(p, "_sum", labels, nlabels, NULL);
  if (in_seconds)
    putf(p, " %.9f\n", (double)sum / 1e9);
  else
    putf(p, " %llu\n", (unsigned long long)sum);
  put_series(p, "_count", labels, nlabels, NULL);
  putf(p, " %llu\n", (unsigned long long)cum);
}

int cs_prom_result(const cs_prom *p, const char **text, size_t *len) {
  if (p->err)
    return p->err;
  if (p->len == 0)
    return CS_EINVAL;
  *text = p->buf;
  *len = p->len;
  return 0;
}
