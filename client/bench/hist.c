/* hist: see hist.h. */
#include "hist.h"

#include <string.h>

void csb_hist_init(csb_hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

/* Octave o holds [2^o, 2^(o+1)) for o >= SUB_BITS; values below 2^SUB_BITS
 * are exact in octave 0. */
static void index_of(uint64_t v, unsigned *o, unsigned *s) {
  if (v < CSB_HIST_SUB) {
    *o = 0;
    *s = (unsigned)v;
    return;
  }
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  *o = msb - CSB_HIST_SUB_BITS + 1;
  *s = (unsigned)(v >> (msb - CSB_HIST_SUB_BITS)) & (CSB_HIST_SUB - 1);
}

/* The largest value that falls into bucket (o, s). */
static uint64_t upper_edge(unsigned o, unsigned s) {
  if (o == 0)
    return s;
  unsigned shift = o - 1;
  uint64_t base = (uint64_t)(CSB_HIST_SUB + s) << shift;
  return base + ((uint64_t)1 << shift) - 1;
}

void csb_hist_record(csb_hist *h, uint64_t ns) {
  unsigned o, s;
  index_of(ns, &o, &s);
  h->b[o][s]++;
  h->count++;
  h->sum += (double)ns;
  if (ns > h->max)
    h->max = ns;
  if (ns < h->min)
    h->min = ns;
}

void csb_hist_merge(csb_hist *dst, const csb_hist *src) {
  for (unsigned o = 0; o < 64; o++)
    for (unsigned s = 0; s < CSB_HIST_SUB; s++)
      dst->b[o][s] += src->b[o][s];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->max > dst->max)
    dst->max = src->max;
  if (src->min < dst->min)
    dst->min = src->min;
}

uint64_t csb_hist_quantile(const csb_hist *h, double q) {
  if (h->count == 0)
    return 0;
  if (q >= 1.0)
    return h->max;
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if (rank >= h->count)
    rank = h->count - 1;
  uint64_t seen = 0;
  for (unsigned o = 0; o < 64; o++)
    for (unsigned s = 0; s < CSB_HIST_SUB; s++) {
      seen += h->b[o][s];
      if (seen > rank) {
        uint64_t e = upper_edge(o, s);
        return e > h->max ? h->max : e;
      }
    }
  return h->max;
}
