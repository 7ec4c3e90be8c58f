/*
 * rotate: new terms (by request or when the tick finds one due), the
 * rotate config, the counter flush, and the deletion of upgrade keys nobody
 * needs any more.  A committed rotation replaces the keyring through
 * set_state (event KEYRING_CHANGED).
 */
#include "seal_int.h"
#include "barrier.h"
#include "cs_error.h"
#include "crypto.h"
#include "log.h"
#include "secmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- rotate */

/* core/upgrade/<old_term>: `term` of `next` (active or staged) sealed
 * under old_term. */
static int stage_upgrade(cs_batch *b, const cs_keyring *next, uint32_t term, uint32_t old_term,
                         const uint8_t *old_key, int64_t expires) {
  char path[64];
  snprintf(path, sizeof path, P_UPGRADE "%u", old_term);
  cs_term_info ti;
  int rc = cs_keyring_term_info(next, term, &ti);
  if (rc < 0)
    return rc;
  Custos__KeyringTerm kt = CUSTOS__KEYRING_TERM__INIT;
  kt.term = term;
  kt.key.data = (uint8_t *)cs_keyring_key(next, term);
  kt.key.len = CS_KEY_LEN;
  kt.install_time = ti.install_time;
  Custos__UpgradeKey uk = CUSTOS__UPGRADE_KEY__INIT;
  uk.next = &kt;
  uk.expires = expires;
  size_t len = custos__upgrade_key__get_packed_size(&uk);
  uint8_t *pt = malloc(len), *ct;
  size_t ct_len;
  if (pt == NULL)
    return CS_ENOMEM;
  custos__upgrade_key__pack(&uk, pt);
  /* Sealed under the OLD term's key, with the old term in its header:
   * exactly what a standby that only knows the old term holds. */
  rc = cs_barrier_seal_with(old_key, old_term, path, pt, len, &ct, &ct_len);
  cs_wipe(pt, len);
  free(pt);
  if (rc < 0)
    return rc;
  rc = cs_batch_put(b, path, ct, ct_len);
  free(ct);
  return rc;
}

int cs_seal_rotate(cs_seal *s, cs_seal_cb cb, void *arg) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  int rc = cs_seal__check_idle(s);
  if (rc < 0)
    return rc;
  uint32_t staged = cs_keyring_staged(s->kr);
  if (staged != 0)
    return cs_error_set(CS_ESTAGED, "term %u is staged and not yet active (it activates once "
                        "every voter holds it, at most seal.max_activation_delay after the "
                        "rotation): rotate again once it is active (operator rotate --wait)",
                        staged);
  change *c = cs_seal__change_new(s, CH_ROTATE, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  cs_batch b;
  cs_batch_init(&b);
  uint32_t old_term = cs_keyring_active(s->kr);
  int64_t now = cs_now();
  int64_t expires = now + (int64_t)s->opts.upgrade_ttl;
  c->res.staged = s->staged_activation;
  if ((rc = cs_keyring_clone(s->kr, &c->next_kr)) < 0)
    goto fail;
  if (c->res.staged) {
    /* Staged: the old term keeps encrypting, core/root-key stays under it;
     * the upgrade key lives until the activation deletes it (its expiry
     * only has to outlast the longest wait). */
    rc = cs_keyring_stage(c->next_kr, now, &c->res.term);
    expires = now + (int64_t)s->max_activation_delay + (int64_t)s->opts.upgrade_ttl;
  } else {
    rc = cs_keyring_rotate(c->next_kr, now, &c->res.term);
  }
  if (rc < 0)
    goto fail;
  c->res.install_time = now;
  /* New keyring + root key under the new term (active only) + upgrade key:
   * one batch.  The root key is staged first so its encryption is counted
   * in the ring. */
  if ((!c->res.staged &&
       (rc = cs_barrier_stage_put(c->next_kr, &b, P_ROOT_KEY, s->root_key, CS_KEY_LEN)) < 0) ||
      (rc = stage_upgrade(&b, c->next_kr, c->res.term, old_term, cs_keyring_key(s->kr, old_term),
                          expires)) < 0 ||
      (rc = cs_seal__stage_keyring(&b, s->root_key, c->next_kr)) < 0)
    goto fail;
  return cs_seal__submit(s, c, &b);
fail:
  cs_batch_clear(&b);
  cs_seal__change_free(c);
  return rc;
}

int cs_seal_flush_counters(cs_seal *s) {
  if (s->state != CS_SEAL_UNSEALED)
    return 0;
  uint64_t sum = cs_seal__total_encryptions(s->kr);
  if (sum == s->flushed_encryptions)
    return 0;
  if (s->busy || s->flushing)
    return CS_EBUSY; /* the next tick will do it */
  change *c = cs_seal__change_new(s, CH_FLUSH, NULL, NULL);
  if (c == NULL)
    return CS_ENOMEM;
  c->flushed = sum;
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_seal__stage_keyring(&b, s->root_key, s->kr);
  if (rc < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  rc = cs_seal__submit(s, c, &b);
  return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------- rotate config */

int cs_seal_rotate_config_get(cs_seal *s, cs_rotate_config *cfg) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  *cfg = s->rot;
  return 0;
}

int cs_seal_rotate_config_set(cs_seal *s, const cs_rotate_config *cfg, cs_seal_cb cb, void *arg) {
  if (s->state != CS_SEAL_UNSEALED)
    return cs_error_set(CS_ESEALED, "server is sealed");
  if (cfg->max_operations < CS_MIN_MAX_OPS || cfg->max_operations > CS_DEFAULT_MAX_OPS)
    return cs_error_set(CS_EINVAL, "max-operations must be between %llu and %llu",
                        (unsigned long long)CS_MIN_MAX_OPS, (unsigned long long)CS_DEFAULT_MAX_OPS);
  if (cfg->interval_seconds != 0 &&
      (cfg->interval_seconds < CS_MIN_INTERVAL || cfg->interval_seconds > CS_MAX_INTERVAL))
    return cs_error_set(CS_EINVAL, "interval must be 0 (none) or between %llu and %llu seconds",
                        (unsigned long long)CS_MIN_INTERVAL, (unsigned long long)CS_MAX_INTERVAL);
  int rc = cs_seal__check_idle(s);
  if (rc < 0)
    return rc;
  change *c = cs_seal__change_new(s, CH_ROTATE_CONFIG, cb, arg);
  if (c == NULL)
    return CS_ENOMEM;
  c->rot = *cfg;
  Custos__RotateConfig m = CUSTOS__ROTATE_CONFIG__INIT;
  m.enabled = cfg->enabled != 0;
  m.max_operations = cfg->max_operations;
  m.interval_seconds = cfg->interval_seconds;
  uint8_t buf[64];
  size_t len = custos__rotate_config__pack(&m, buf);
  cs_batch b;
  cs_batch_init(&b);
  if ((rc = cs_barrier_stage_put(s->kr, &b, P_ROTATE_CONFIG, buf, len)) < 0) {
    cs_batch_clear(&b);
    cs_seal__change_free(c);
    return rc;
  }
  return cs_seal__submit(s, c, &b);
}

/* ---------------------------------------------------------------- tick */

typedef struct expired_scan {
  cs_seal *s;
  int64_t now;
  cs_batch *b;
} expired_scan;

/* The expiry of an upgrade key, or 0 when it cannot be read (then it is
 * useless to any standby of ours and goes too). */
int64_t cs_seal__upgrade_expiry(const cs_keyring *kr, const char *path, const uint8_t *val,
                                size_t val_len, Custos__UpgradeKey **keep) {
  uint8_t *pt;
  size_t len;
  int64_t expires = 0;
  if (cs_barrier_decrypt(kr, path, val, val_len, &pt, &len) != 0)
    return 0;
  Custos__UpgradeKey *uk = custos__upgrade_key__unpack(NULL, len, pt);
  cs_wipe(pt, len);
  free(pt);
  if (uk == NULL)
    return 0;
  expires = uk->expires;
  if (keep != NULL && uk->next != NULL && uk->next->key.len == CS_KEY_LEN) {
    *keep = uk;
    return expires;
  }
  if (uk->next != NULL && uk->next->key.data != NULL)
    cs_wipe(uk->next->key.data, uk->next->key.len);
  custos__upgrade_key__free_unpacked(uk, NULL);
  return keep != NULL ? 0 : expires;
}

static int collect_expired(void *arg, const char *key, size_t key_len, const uint8_t *val,
                           size_t val_len) {
  expired_scan *e = arg;
  char staged_path[64];
  uint32_t active = cs_keyring_active(e->s->kr);
  snprintf(staged_path, sizeof staged_path, P_UPGRADE "%u", active);
  /* The key carrying the staged term goes with its activation, not before. */
  if (cs_keyring_staged(e->s->kr) != 0 && strcmp(key, staged_path) == 0)
    return 0;
  if (cs_seal__upgrade_expiry(e->s->kr, key, val, val_len, NULL) <= e->now)
    return cs_batch_del(e->b, key);
  return 0;
}

static void on_auto_rotated(void *arg, int status, cs_seal_result *res) {
  if (status < 0)
    cs_warn("automatic rotation failed: %s", cs_error_message(status));
  else
    cs_info("automatic rotation: term %u is active", res->term);
}

int cs_seal_tick(cs_seal *s, int64_t now, int flush, int *rotating) {
  *rotating = 0;
  if (s->state != CS_SEAL_UNSEALED)
    return 0;
  cs_seal__genroot_expire(s, now); /* an idle attempt frees the slot */
  int rc = 0;
  cs_term_info ti;
  cs_keyring_info(s->kr, cs_keyring_count(s->kr) - 1, &ti);
  /* Compared unsigned: a stored interval above INT64_MAX must not read as
   * negative (always due); a clock before the install time is age 0. */
  uint64_t age = now > ti.install_time ? (uint64_t)now - (uint64_t)ti.install_time : 0;
  /* A staged term is the next rotation already under way (in a cluster
   * ha.c activates it); standalone nobody else needs to hold it first. */
  uint32_t staged = cs_keyring_staged(s->kr);
  if (staged != 0 && !s->staged_activation && !s->busy) {
    cs_info("term %u is staged and this node is standalone: activating it", staged);
    rc = cs_seal_activate(s, NULL, NULL);
    if (rc < 0)
      return rc;
  }
  int due = staged == 0 && s->rot.enabled &&
            (ti.encryptions > s->rot.max_operations ||
             (s->rot.interval_seconds != 0 && age >= s->rot.interval_seconds));
  if (due && !s->busy) {
    cs_info("automatic rotation due: term %u has %llu encryptions and is %llu s old", ti.term,
            (unsigned long long)ti.encryptions, (unsigned long long)age);
    rc = cs_seal_rotate(s, on_auto_rotated, NULL);
    if (rc < 0)
      return rc;
    if (s->busy) /* still in flight (an asynchronous commit) */
      s->busy_auto = 1;
    *rotating = 1;
  }
  cs_batch b;
  cs_batch_init(&b);
  expired_scan e = {s, now, &b};
  rc = cs_store_scan(s->opts.store, P_UPGRADE, collect_expired, &e);
  if (rc == 0 && b.n > 0) {
    change *c = cs_seal__change_new(s, CH_EXPIRE, NULL, NULL);
    rc = c == NULL ? CS_ENOMEM : cs_seal__submit(s, c, &b);
    rc = rc < 0 ? rc : 0;
  }
  cs_batch_clear(&b);
  if (rc == 0 && flush) {
    rc = cs_seal_flush_counters(s);
    if (rc == CS_EBUSY)
      rc = 0;
  }
  return rc;
}

typedef struct acked_scan {
  uint32_t acked;
  cs_batch *b;
} acked_scan;

static int collect_acked(void *arg, const char *key, size_t key_len, const uint8_t *val,
                         size_t val_len) {
  acked_scan *a = arg;
  char *end;
  unsigned long n = strtoul(key + sizeof P_UPGRADE - 1, &end, 10);
  if (*end != '\0' || n >= a->acked)
    return 0;
  return cs_batch_del(a->b, key);
}

int cs_seal_upgrades_acked(cs_seal *s, uint32_t acked_term) {
  if (s->state != CS_SEAL_UNSEALED || acked_term == 0)
    return 0;
  cs_batch b;
  cs_batch_init(&b);
  acked_scan a = {acked_term, &b};
  int rc = cs_store_scan(s->opts.store, P_UPGRADE, collect_acked, &a);
  if (rc == 0 && b.n > 0) {
    cs_info("deleting %zu upgrade key(s): every member has term %u", b.n, acked_term);
    change *c = cs_seal__change_new(s, CH_EXPIRE, NULL, NULL);
    rc = c == NULL ? CS_ENOMEM : cs_seal__submit(s, c, &b);
    rc = rc < 0 ? rc : 0;
  }
  cs_batch_clear(&b);
  return rc;
}

