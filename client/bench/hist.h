/*
 * hist: a log-bucket latency histogram for custos-bench.
 *
 * Values are nanoseconds.  Each power of two is split into 32 linear
 * sub-buckets, so a reported percentile is within ~3% of the true value
 * (it is the upper edge of the bucket that holds it).  The maximum and the
 * sum are exact.  Recording is O(1) and allocation-free; the table is a
 * fixed 64 x 32 array, enough for any uint64_t.
 */
#ifndef CSB_HIST_H
#define CSB_HIST_H

#include <stdint.h>

#define CSB_HIST_SUB_BITS 5
#define CSB_HIST_SUB (1u << CSB_HIST_SUB_BITS)

typedef struct csb_hist {
  uint64_t count;
  uint64_t max;
  uint64_t min;
  double sum;
  uint64_t b[64][CSB_HIST_SUB];
} csb_hist;

void csb_hist_init(csb_hist *h);
void csb_hist_record(csb_hist *h, uint64_t ns);
/* Adds every sample of `src` to `dst`. */
void csb_hist_merge(csb_hist *dst, const csb_hist *src);
/* The value at quantile q in [0,1] (upper bucket edge; the exact max for
 * q = 1).  0 when empty. */
uint64_t csb_hist_quantile(const csb_hist *h, double q);

#endif
