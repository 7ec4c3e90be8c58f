/*
 * events: what the daemon does on a seal event (caches, the audit HMAC
 * key) and on its once-a-second tick.  Kept here until server/daemon.c
 * owns them (the daemon engineer's move; see API_LANDED).
 */
#include "api_int.h"

#include "barrier.h"
#include "cs_error.h"
#include "ha.h"
#include "log.h"
#include "secmem.h"

#include <stdlib.h>

#define P_AUDIT_KEY "core/audit-key"

/* Loads the per-installation audit HMAC key once the node is unsealed. */
static void load_audit_key(cs_daemon *d) {
  if (d->audit == NULL)
    return;
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_get(d->store, cs_seal_keyring(d->seal), P_AUDIT_KEY, &pt, &len);
  if (rc == 0) {
    if (len == 32)
      cs_audit_set_hmac_key(d->audit, pt);
    cs_wipe(pt, len);
    free(pt);
  }
  if (rc < 0)
    cs_warn("audit HMAC key unavailable (%s): sensitive values are logged as unavailable",
            cs_error_message(rc));
}

/*
 * The one owner of what follows the seal state, registered as the seal's
 * on_event (see enum cs_seal_event), so every way of sealing (a seal
 * request, a standby that sealed itself, a restore, shutdown), of
 * unsealing (the ceremony, the dev server) and of replacing the keyring
 * (rotation, reload on becoming active, a restore) runs the same steps.
 * Every event empties the caches of decrypted token entries and parsed
 * policies (storage may have changed).  Sealed: the audit HMAC key is
 * wiped.  Unsealed or a new keyring: the audit key is (re)loaded; a
 * restored store may hold another one.
 */
void cs_daemon_seal_changed(void *ctx, enum cs_seal_event ev) {
  static int warned;
  cs_daemon *d = ctx;
  cs_daemon_auth_changed(d);
  switch (ev) {
  case CS_SEAL_EVENT_SEALED:
    if (d->audit != NULL)
      cs_audit_clear_hmac_key(d->audit);
    return;
  case CS_SEAL_EVENT_UNSEALED:
  case CS_SEAL_EVENT_KEYRING_CHANGED:
    break;
  }
  load_audit_key(d);
  cs_policies_migrate(d);
  if (cs_secmem_lock_failures() > 0 && !warned) {
    warned = 1;
    cs_warn("key memory could not be locked (RLIMIT_MEMLOCK too low; run with CAP_IPC_LOCK or "
            "LimitMEMLOCK=infinity): keys may reach swap");
  }
}

/* Once a second: automatic rotation, upgrade-key expiry, counter flush. */
void cs_daemon_tick(uv_timer_t *t) {
  cs_daemon *d = t->data;
  uint64_t now_ms = uv_now(d->loop);
  int flush = now_ms - d->last_flush_ms >= d->cfg.counter_flush_ms;
  if (flush)
    d->last_flush_ms = now_ms;
  if (!cs_ha_is_active(d))
    return; /* key maintenance is the active's job; standbys follow (ha.c) */
  int rotating;
  int rc = cs_seal_tick(d->seal, cs_now(), flush, &rotating);
  if (rc < 0)
    cs_warn("periodic key maintenance failed: %s", cs_error_message(rc));
}
