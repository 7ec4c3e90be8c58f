/*
 * state: the seal's one transition function.  Every way into and out of
 * UNSEALED (the unseal ceremony, a seal request, shutdown, a standby that
 * missed an upgrade, a restore, a reload on becoming active, a committed
 * rotation) ends here, so the daemon's handler runs exactly once for each
 * and no path can forget it.  The epoch moves with every event: a change
 * staged under one key state is applied to memory only in that same state
 * (see change.c).
 */
#include "seal_int.h"
#include "log.h"
#include "secmem.h"

#include <assert.h>

static void fire(cs_seal *s, enum cs_seal_event ev) {
  s->epoch++;
  if (s->opts.on_event != NULL)
    s->opts.on_event(s->opts.on_event_ctx, ev);
}

void cs_seal__end_ceremony(cs_seal *s) {
  cs_seal__ceremony_clear(&s->cur);
  cs_seal__rekey_clear(s);
  cs_seal__genroot_clear(s);
  s->cer = CS_SEAL_CEREMONY_NONE;
}

static void wipe_keys(cs_seal *s) {
  cs_secmem_free(s->root_key, CS_KEY_LEN);
  s->root_key = NULL;
  cs_keyring_free(s->kr);
  s->kr = NULL;
}

void cs_seal__set_state(cs_seal *s, enum cs_seal_state to, uint8_t *root, cs_keyring *kr) {
  enum cs_seal_state from = s->state;
  if (to != CS_SEAL_UNSEALED) {
    assert(root == NULL && kr == NULL);
    /* A rekey or generate-root belongs to the unsealed node: its shares
     * are void now. */
    if (from == CS_SEAL_UNSEALED)
      cs_seal__end_ceremony(s);
    wipe_keys(s);
    s->state = to;
    if (from == CS_SEAL_UNSEALED)
      fire(s, CS_SEAL_EVENT_SEALED);
    return;
  }
  assert(kr != NULL && (root != NULL || from == CS_SEAL_UNSEALED));
  if (root != NULL && root != s->root_key) {
    cs_secmem_free(s->root_key, CS_KEY_LEN);
    s->root_key = root;
  }
  if (kr != s->kr) {
    cs_keyring_free(s->kr);
    s->kr = kr;
    s->flushed_encryptions = cs_seal__total_encryptions(kr);
  }
  s->state = to;
  if (from == CS_SEAL_UNSEALED) {
    fire(s, CS_SEAL_EVENT_KEYRING_CHANGED);
    return;
  }
  /* The unseal shares are done with (they combined to these keys). */
  cs_seal__end_ceremony(s);
  s->reason[0] = '\0'; /* unsealed again: whatever sealed it is over */
  fire(s, CS_SEAL_EVENT_UNSEALED);
}
