/* staged_ops: see staged_ops.h. */
#include "staged_ops.h"
#include "api.h"
#include "staging.h"

void cs_staged_key_status_fill(struct cs_api_env *d, Custos__KeyStatusRes *ks,
                               cs_staged_key_status *st) {
  int64_t deadline = 0;
  size_t n = cs_staging_waiting(d, st->names, CS_STAGED_MAX_NAMES, &deadline);
  if (n > CS_STAGED_MAX_NAMES)
    n = CS_STAGED_MAX_NAMES;
  for (size_t i = 0; i < n; i++)
    st->ptrs[i] = st->names[i];
  ks->activation_deadline = deadline;
  ks->n_activation_waiting_for = n;
  ks->activation_waiting_for = n ? st->ptrs : NULL;
}
