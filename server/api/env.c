/*
 * env: what the request path asks the daemon's services, through the
 * cs_api_env the daemon fills (api.h): the auth generation, and HA as
 * ha.h answers it for env->ha (NULL: standalone).
 */
#include "api.h"

#include "staging.h"

void cs_api_auth_changed(cs_api_env *env) {
  env->auth_gen++;
}

int cs_ha_is_active(cs_api_env *d) { return cs_ha_serving(d->ha); }
int cs_ha_is_leader(cs_api_env *d) { return cs_ha_leading(d->ha); }
void cs_ha_status(cs_api_env *d, const char **mode, const char **active_address) {
  cs_ha_mode(d->ha, mode, active_address);
}
int cs_ha_no_leader_error(cs_api_env *d) { return cs_ha_unavailable(d->ha); }
int cs_ha_removed(cs_api_env *d) { return cs_ha_role_now(d->ha) == CS_HA_REMOVED; }
int cs_ha_init_allowed(cs_api_env *d) { return cs_ha_may_init(d->ha); }
int cs_ha_peers(cs_api_env *d, cs_peer_info *out, size_t cap, size_t *n) {
  return cs_ha_members(d->ha, out, cap, n);
}
int cs_ha_add_peer(cs_api_env *d, const char *node_id, const char *address, cs_done_fn done,
                   void *arg) {
  return cs_ha_member_add(d->ha, node_id, address, done, arg);
}
int cs_ha_step_down(cs_api_env *d, cs_done_fn done, void *arg) {
  return cs_ha_hand_over(d->ha, done, arg);
}
int cs_ha_remove_peer(cs_api_env *d, const char *node_id, cs_done_fn done, void *arg) {
  return cs_ha_member_remove(d->ha, node_id, done, arg);
}
size_t cs_staging_waiting(cs_api_env *d, char (*names)[64], size_t cap, int64_t *deadline) {
  return cs_staging_laggards(d->ha, d->seal, d->cfg->max_activation_delay, names, cap, deadline);
}
int cs_unseal_relay_allowed(cs_api_env *d) { return cs_unseal_relay_check(d->ha); }
int cs_unseal_relay(cs_api_env *d, const uint8_t *key, size_t len,
                    void (*done)(void *arg, const cs_relay_result *r, size_t n), void *arg) {
  return cs_unseal_relay_send(d->ha, key, len, done, arg);
}
