/*
 * retire: the end of a term's life (decrypt-only -> retired), and standbys
 * following a retirement the active committed.
 *
 * A retirement is one batch, like every key change: the keyring with the
 * term retired (its key gone), the deletion of the upgrade keys that hold
 * or are sealed under that key, and the store's in-transaction check that
 * no stored value is left under the term (cs_batch.require_empty_term), so
 * a value committed under it a moment earlier (a rewrap step, or any write
 * racing the request) makes the whole retirement fail instead of leaving
 * that value unreadable.  The check against the counts when the batch is
 * built (cs_rewrap_retire_check) only gives the early, clear refusal.
 * Memory changes in the commit callback (change.c, CH_RETIRE).
 */
#include "seal_int.h"
#include "barrier.h"
#include "cs_error.h"
#include "crypto.h"
#include "log.h"
#include "rewrap.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

int cs_seal_retire(cs_seal *s, uint32_t term, cs_seal_cb cb, void *arg) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  int rc = cs_seal__check_idle(s);
  if (rc < 0)
    return rc;
  change *c = cs_seal__change_new(s, CH_RETIRE, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  int64_t now = cs_now();
  if ((rc = cs_keyring_clone(s->kr, &c->next_kr)) < 0 ||
      (rc = cs_rewrap_stage_retire(s->opts.store, c->next_kr, term, now, &b)) < 0 ||
      (rc = cs_seal__stage_keyring(&b, s->root_key, c->next_kr)) < 0)
    goto fail;
  c->res.term = term;
  c->res.install_time = now; /* the retirement time, for the caller */
  return cs_seal__submit(s, c, &b);
fail:
  cs_batch_clear(&b);
  cs_seal__change_free(c);
  return rc;
}

/*
 * A member that did not write the retirement (a standby, or a node catching
 * up) still holds the retired key in memory: it wipes it too as soon as its
 * replica has the retired keyring, so a retirement ends the key's life on
 * every member, not only on the active.  core/keyring is sealed under the
 * root key, which every unsealed member holds.  Only retirements are taken
 * from storage here (terms and activations follow their own paths); 1 when
 * a term was retired in memory, 0 when none, <0 on error.
 */
int cs_seal__follow_retired(cs_seal *s) {
  if (s->state != CS_SEAL_UNSEALED)
    return 0;
  cs_keyring *stored = NULL;
  int rc = cs_seal__read_keyring(s, s->root_key, &stored);
  if (rc < 0)
    return rc;
  int changed = 0;
  cs_term_info ti, mine;
  for (size_t i = 0; i < cs_keyring_count(stored); i++) {
    cs_keyring_info(stored, i, &ti);
    if (ti.state != CS_TERM_RETIRED || cs_keyring_term_info(s->kr, ti.term, &mine) < 0 ||
        mine.state != CS_TERM_DECRYPT_ONLY)
      continue;
    if (cs_keyring_transition(s->kr, ti.term, CS_TERM_RETIRED, ti.retirement_time) == 0) {
      cs_info("term %u was retired by the active node: its key is wiped here too", ti.term);
      changed = 1;
    }
  }
  cs_keyring_free(stored);
  if (changed)
    cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, s->kr);
  return changed;
}
