/* activation: see activation.h. */
#include "activation.h"

cs_activation cs_activation_decide(uint32_t staged_term, int64_t staged_at, int64_t now,
                                   uint64_t max_delay, const cs_member_keys *members, size_t n,
                                   size_t *laggards) {
  size_t lag = 0;
  for (size_t i = 0; i < n; i++)
    lag += members[i].voter && members[i].newest_term < staged_term;
  *laggards = lag;
  if (lag == 0)
    return CS_ACTIVATION_NOW;
  /* Unsigned, like the rotation interval: a clock before staged_at is 0 s. */
  uint64_t waited = now > staged_at ? (uint64_t)now - (uint64_t)staged_at : 0;
  return waited >= max_delay ? CS_ACTIVATION_OVERDUE : CS_ACTIVATION_WAIT;
}

uint64_t cs_activation_waited(int64_t staged_at, int64_t now, uint64_t mono_s) {
  uint64_t wall = now > staged_at ? (uint64_t)now - (uint64_t)staged_at : 0;
  return wall > mono_s ? wall : mono_s;
}
