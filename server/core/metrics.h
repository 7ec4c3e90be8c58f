/*
 * metrics: counters, gauges and histograms rendered in the Prometheus text
 * exposition format (version 0.0.4), for GET /v1/sys/metrics.
 *
 * Two halves:
 *   - cs_hist: a fixed-bucket histogram that any thread may observe into
 *     (relaxed atomics: the commit writer thread records group latency
 *     while the loop renders);
 *   - cs_prom: a writer that turns families and samples into text and
 *     enforces the format's rules, so a caller cannot emit a sample before
 *     its family's HELP/TYPE, a name outside [a-zA-Z_:][a-zA-Z0-9_:]*, an
 *     unescaped label value, or a histogram without its +Inf bucket.
 * What is measured, and when, is the daemon's business; this module only
 * keeps numbers and writes them.
 *
 * Rules (see docs/http-api.md, "Metrics"): counters end in _total, times
 * are in seconds, sizes in bytes, every line ends in '\n'.
 */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define CS_HIST_MAX_BUCKETS 20

/*
 * A histogram of durations.  bounds[] are upper bounds in seconds,
 * ascending; the implicit last bucket is +Inf.  Observations are kept per
 * bucket (not cumulative) and summed into cumulative form when rendered.
 */
typedef struct cs_hist {
  const double *bounds;
  unsigned nbounds;
  uint64_t counts[CS_HIST_MAX_BUCKETS + 1]; /* last: above every bound */
  uint64_t sum_ns;
} cs_hist;

/* The default latency buckets: 100 us .. 10 s. */
extern const double cs_hist_latency_bounds[];
extern const unsigned cs_hist_latency_nbounds;
/* Buckets for counts (e.g. requests per commit group): 1 .. 1024. */
extern const double cs_hist_size_bounds[];
extern const unsigned cs_hist_size_nbounds;

void cs_hist_init(cs_hist *h, const double *bounds, unsigned nbounds);
/* Safe from any thread. */
void cs_hist_observe_ns(cs_hist *h, uint64_t ns);
/* For non-time histograms: v is recorded as is (sum in units of v). */
void cs_hist_observe_value(cs_hist *h, uint64_t v);

/* One label; a sample has up to CS_PROM_MAX_LABELS. */
typedef struct cs_prom_label {
  const char *name;
  const char *value;
} cs_prom_label;
#define CS_PROM_MAX_LABELS 4

typedef enum cs_prom_type {
  CS_PROM_COUNTER,
  CS_PROM_GAUGE,
  CS_PROM_HISTOGRAM,
} cs_prom_type;

/*
 * A text being built.  Like cs_jbuf, appends never fail on their own: the
 * first error is sticky and reported by cs_prom_result() (CS_ENOMEM, or
 * CS_EINVAL for misuse such as a bad name or a sample of another family).
 */
typedef struct cs_prom {
  char *buf;
  size_t len, cap;
  int err;
  char family[96];     /* the family whose samples may follow */
  cs_prom_type type;
} cs_prom;

void cs_prom_init(cs_prom *p);
void cs_prom_free(cs_prom *p);

/* Starts a family: "# HELP name help" and "# TYPE name type".  A counter's
 * name must end in _total.  A family may be started only once. */
void cs_prom_family(cs_prom *p, const char *name, cs_prom_type type, const char *help);
/* A counter or gauge sample of the current family; labels may be NULL. */
void cs_prom_sample(cs_prom *p, const cs_prom_label *labels, unsigned nlabels, double value);
void cs_prom_sample_u64(cs_prom *p, const cs_prom_label *labels, unsigned nlabels, uint64_t value);
/* A histogram of the current (histogram) family: _bucket lines with
 * cumulative counts and le="+Inf", then _sum (seconds, or raw units when
 * in_seconds is 0) and _count. */
void cs_prom_hist(cs_prom *p, const cs_prom_label *labels, unsigned nlabels, const cs_hist *h,
                  int in_seconds);

/* The text (owned by p) or the sticky error. */
int cs_prom_result(const cs_prom *p, const char **text, size_t *len)
    __attribute__((warn_unused_result));

#endif
