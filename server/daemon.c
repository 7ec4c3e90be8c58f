/*
 * daemon: start-up, the events that tie the modules together, and shutdown.
 * See daemon.h.
 *
 * Events.  Two sources, one handler each, on the loop thread:
 *  - the seal (on_seal_event): every unseal, seal and keyring change, by
 *    whatever path (a request, the dev server's auto-unseal, a standby
 *    following the active, HA sealing a removed node, a restore, shutdown),
 *    runs the request path's steps (caches, audit HMAC key) and then lets
 *    HA re-evaluate its role;
 *  - HA (on_role): the role changed.  Becoming ACTIVE empties the token and
 *    policy caches (storage is authoritative again); leaving
 *    LEADER_CATCHING_UP, whichever way, runs the requests held meanwhile
 *    (served, redirected, or held again).
 * Nothing below calls the daemon: the seal, HA and the listener know their
 * callbacks by pointer only.
 *
 * Shutdown order (cs_daemon_stop): listener (in-flight requests answered)
 * -> the api's staged audit records -> tick -> HA quiesced (role STOPPED:
 * it no longer touches the seal) -> snapshots -> rewrap driver -> seal closed (counters persisted through the queue, keys
 * wiped) -> commit queue drained -> HA stopped (raft closes).
 */
#define _GNU_SOURCE /* nftw */
#include "daemon.h"
#include "crypto.h"
#include "cs_error.h"
#include "devcert.h"
#include "log.h"
#include "recover.h"
#include "secmem.h"
#include "rewrapper.h"
#include "snapshots.h"
#include "staging.h"
#include "tls_gcm.h"
#include "unseal_relay.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- events */

/* Loads the per-installation audit HMAC key once the node is unsealed. */
static void load_audit_key(cs_daemon *d) {
  if (d->audit == NULL)
    return;
  uint8_t key[CS_KEY_LEN];
  int rc = cs_seal_audit_key(d->seal, key);
  if (rc == 0)
    cs_audit_set_hmac_key(d->audit, key);
  cs_wipe(key, sizeof key);
  if (rc < 0)
    cs_warn("audit HMAC key unavailable (%s): sensitive values are logged as unavailable",
            cs_error_message(rc));
}

/*
 * The seal's on_event: the one owner of what follows the seal state, so
 * every way of sealing (a seal request, a standby that sealed itself, HA
 * sealing a removed node, a restore, shutdown), of unsealing (the ceremony,
 * a relayed share, the dev server) and of replacing the keyring (rotation,
 * reload on becoming active, a restore) runs the same steps.  Every event
 * empties the caches of decrypted token entries and parsed policies
 * (storage may have changed).  Sealed: the audit HMAC key is wiped.
 * Unsealed or a new keyring: the audit key is (re)loaded; a restored store
 * may hold another one (the policy migration runs at the api's first
 * request of the new auth generation).  Then HA re-evaluates its role (a sealed leader
 * hands over; an unsealed one catches up).
 */
static void on_seal_event(void *ctx, enum cs_seal_event ev) {
  static int warned;
  cs_daemon *d = ctx;
  cs_api_auth_changed(&d->api);
  if (ev == CS_SEAL_EVENT_SEALED) {
    if (d->audit != NULL)
      cs_audit_clear_hmac_key(d->audit);
  } else {
    load_audit_key(d);
    if (cs_secmem_lock_failures() > 0 && !warned) {
      warned = 1;
      cs_warn("key memory could not be locked (RLIMIT_MEMLOCK too low; run with CAP_IPC_LOCK or "
              "LimitMEMLOCK=infinity): keys may reach swap");
    }
  }
  cs_ha_seal_changed(d->ha);
}

/* Once a second: automatic rotation, upgrade-key expiry, counter flush. */
static void on_tick(uv_timer_t *t) {
  cs_daemon *d = t->data;
  uint64_t now_ms = uv_now(d->loop);
  int flush = now_ms - d->last_flush_ms >= d->cfg.counter_flush_ms;
  if (flush)
    d->last_flush_ms = now_ms;
  if (!cs_ha_serving(d->ha))
    return; /* key maintenance is the active's job; standbys follow (ha.c) */
  int rotating;
  int rc = cs_seal_tick(d->seal, cs_now(), flush, &rotating);
  if (rc < 0)
    cs_warn("periodic key maintenance failed: %s", cs_error_message(rc));
}

static void on_role(void *ctx, cs_ha_role old_role, cs_ha_role new_role) {
  cs_daemon *d = ctx;
  /* Every role change: a request admitted under the old role and still
   * waiting for its audit record is decided again (api.c). */
  cs_api_auth_changed(&d->api);
  if (old_role == CS_HA_LEADER_CATCHING_UP)
    cs_api_activation_done(&d->api);
}

/* A raft entry touched tokens or policies (every node, fsm.c). */
static void on_auth_change(void *ctx) {
  cs_daemon *d = ctx;
  cs_api_auth_changed(&d->api);
}

/* The seal's writes go through the group commit queue like everything else. */
static int submit_batch(void *ctx, cs_batch *b, cs_done_fn done, void *arg) {
  return cs_commitq_submit(ctx, b, done, arg);
}

/* ---------------------------------------------------------------- start */

/* The request path's view of the daemon (server/api/api.h), refreshed as
 * each part opens; everyone holds &d->api, so they see the updates. */
static void fill_env(cs_daemon *d) {
  cs_api_env *e = &d->api;
  e->loop = d->loop;
  e->cfg = &d->cfg;
  e->store = d->store;
  e->seal = d->seal;
  e->commitq = d->commitq;
  e->listener = d->listener;
  e->audit = d->audit;
  e->ha = d->ha;
  e->shutting_down = &d->shutting_down;
}

static int open_core(cs_daemon *d) {
  cs_store_opts so = {.map_size = d->cfg.map_size};
  int rc = cs_store_open(&d->store, d->cfg.storage_path, &so);
  if (rc < 0)
    return rc;
  if ((rc = cs_commitq_start(&d->commitq, d->loop, d->store)) < 0)
    return rc;
  cs_seal_opts opts = {.store = d->store,
                       .submit = submit_batch,
                       .submit_ctx = d->commitq,
                       .upgrade_ttl = d->cfg.upgrade_key_ttl,
                       .on_key_change = cs_snapshots_on_key_change,
                       .key_change_ctx = &d->api,
                       .on_event = on_seal_event,
                       .on_event_ctx = d};
  if ((rc = cs_seal_open(&d->seal, &opts)) < 0)
    return rc;
  fill_env(d);
  if ((rc = cs_snapshots_start(&d->api)) < 0 || (rc = cs_rewrapper_start(&d->api)) < 0)
    return rc;
  if (!d->cfg.cluster.enabled)
    return 0;
  cs_ha_opts ho = {.loop = d->loop,
                   .store = d->store,
                   .seal = d->seal,
                   .commitq = d->commitq,
                   .cluster = &d->cfg.cluster,
                   .storage_path = d->cfg.storage_path,
                   .max_activation_delay = d->cfg.max_activation_delay,
                   .on_role = on_role,
                   .on_auth_change = on_auth_change,
                   .ctx = d};
  rc = cs_ha_start(&d->ha, &ho);
  fill_env(d);
  return rc;
}

static void start_tick(cs_daemon *d) {
  uv_timer_init(d->loop, &d->tick);
  d->tick.data = d;
  uv_timer_start(&d->tick, on_tick, 1000, 1000);
  d->tick_started = 1;
}

/* The TLS record layer is linked in (common/tls_gcm.h): an mbedTLS
 * security update installed since the build reaches it only by a rebuild. */
static void log_tls_versions(void) {
  char built[18], running[18];
  if (cs_tls_gcm_versions(built, running))
    cs_warn("TLS: the record layer was built with mbedTLS %s, the installed libmbedcrypto is %s: "
            "rebuild custos to take an mbedTLS update into its TLS",
            built, running);
  cs_debug("TLS: mbedTLS %s; AES-256-GCM records by %s", built,
           cs_tls_gcm_available() ? "libsodium (AES-NI)" : "mbedTLS");
}

static int start_listener(cs_daemon *d) {
  int rc = cs_listener_start(&d->listener, d->loop, &d->cfg.listener, cs_dispatch,
                             cs_dispatch_independent, &d->api);
  fill_env(d);
  if (rc < 0) {
    cs_error("cannot listen on %s: %s", d->cfg.listener.address, cs_error_message(rc));
    return rc;
  }
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  cs_info("custosd listening on %s (%s)", d->cfg.listener.address,
          !st.initialized ? "not initialized" : st.sealed ? "sealed" : "unsealed");
  cs_debug("barrier: AES-256-GCM by %s", cs_gcm_backend());
  cs_debug("hashes: SHA-256 by nettle (%s)",
           cs_sha256_accelerated() ? "SHA extensions" : "C code");
  log_tls_versions();
  return 0;
}

static char dev_dir[] = "/tmp/custos-dev-XXXXXX";

/* Dev server, once init is committed: unseal (the seal's event runs as for
 * any unseal), print what a user needs, then listen. */
static void on_dev_init(void *arg, int status, cs_seal_result *r) {
  cs_daemon *d = arg;
  int rc = status;
  if (rc == 0)
    rc = cs_seal_unseal(d->seal, r->shares, r->share_len);
  if (rc == 0) {
    char b64[64];
    cs_b64_encode(r->shares, r->share_len, b64);
    /* The dev server exists to be talked to: these lines go to stdout,
     * never to the log. */
    printf("custos dev server: NOT for production (one share, temporary data).\n"
           "Data directory: %s (removed when the server stops)\n\n"
           "    export CUSTOS_ADDR=%s\n"
           "    export CUSTOS_CACERT=%s\n"
           "    export CUSTOS_TOKEN=%s\n\n"
           "Unseal Key: %s\n"
           "Root Token: %s\n\n",
           dev_dir, d->cfg.listener.address, d->cfg.listener.cert_file, r->root_token, b64,
           r->root_token);
    fflush(stdout);
    cs_wipe(b64, sizeof b64);
    rc = start_listener(d);
  } else {
    cs_error("dev server set-up failed: %s", cs_error_message(rc));
  }
  if (rc < 0) {
    d->exit_code = 1;
    uv_stop(d->loop);
  }
}

/* The dev server: everything in a fresh temporary directory; init goes
 * through cs_seal_init as an init request does. */
static int setup_dev(cs_daemon *d, const char *listen) {
  static char data[sizeof dev_dir + 8], cert[sizeof dev_dir + 32], key[sizeof dev_dir + 32];
  if (mkdtemp(dev_dir) == NULL)
    return cs_error_set(CS_EIO, "cannot create a temporary directory: %s", strerror(errno));
  d->dev_dir = dev_dir;
  snprintf(data, sizeof data, "%s/data", dev_dir);
  if (mkdir(data, 0700) != 0)
    return cs_error_set(CS_EIO, "cannot create %s: %s", data, strerror(errno));
  int rc = cs_devcert_generate(dev_dir, cert, key, sizeof cert);
  if (rc < 0)
    return rc;
  if ((d->cfg.storage_path = strdup(data)) == NULL ||
      (d->cfg.listener.address = strdup(listen)) == NULL ||
      (d->cfg.listener.cert_file = strdup(cert)) == NULL ||
      (d->cfg.listener.key_file = strdup(key)) == NULL)
    return CS_ENOMEM;
  if ((rc = open_core(d)) < 0)
    return rc;
  rc = cs_seal_init(d->seal, 1, 1, on_dev_init, d);
  return rc < 0 ? rc : 0;
}

int cs_daemon_start(cs_daemon *d, uv_loop_t *loop, const char *dev_listen) {
  d->loop = loop;
  int rc;
  if (d->cfg.audit_file != NULL && (rc = cs_audit_open(&d->audit, d->cfg.audit_file)) < 0) {
    cs_error("cannot open the audit log: %s", cs_error_message(rc));
    return rc;
  }
  if ((rc = cs_crypto_init()) < 0) {
    cs_error("cannot seed the random generator: %s", cs_error_message(rc));
    return rc;
  }
  rc = dev_listen != NULL ? setup_dev(d, dev_listen) : open_core(d);
  if (rc < 0) {
    cs_error("start-up failed: %s", cs_error_message(rc));
    return rc;
  }
  if (dev_listen == NULL && (rc = start_listener(d)) < 0)
    return rc;
  if (cs_secmem_lock_failures() > 0)
    cs_warn("key memory could not be locked (RLIMIT_MEMLOCK too low?): keys may reach swap");
  start_tick(d);
  return 0;
}

/* ---------------------------------------------------------------- reload, stop */

void cs_daemon_reload(cs_daemon *d) {
  if (d->listener != NULL) {
    const cs_listener_opts *lc = &d->cfg.listener;
    int rc = cs_listener_reload_tls(d->listener, lc->cert_file, lc->key_file, lc->client_ca_file);
    if (rc < 0)
      cs_error("SIGHUP: new TLS certificate refused, still serving the old one: %s",
               cs_error_message(rc));
    else
      cs_info("SIGHUP: TLS certificate and key reloaded from %s and %s", lc->cert_file,
              lc->key_file);
  }
  cs_ha_reload_tls(d->ha);
  if (d->audit == NULL)
    return;
  int rc = cs_audit_reopen(d->audit);
  if (rc < 0)
    cs_error("SIGHUP: cannot reopen the audit log, still writing the old file: %s",
             cs_error_message(rc));
  else
    cs_info("SIGHUP: audit log reopened");
}

typedef struct stop_ctx {
  cs_daemon *d;
  void (*done)(void *arg);
  void *arg;
} stop_ctx;

static stop_ctx stopping;

static void on_listener_stopped(void *arg) {
  stop_ctx *s = arg;
  cs_daemon *d = s->d;
  cs_api_close();                /* staged audit records written, their answers released */
  if (d->tick_started) {
    uv_timer_stop(&d->tick);
    uv_close((uv_handle_t *)&d->tick, NULL);
  }
  cs_ha_quiesce(d->ha);          /* role STOPPED: HA leaves the seal alone from now on */
  cs_snapshots_stop(&d->api);
  cs_rewrapper_stop(&d->api);
  cs_seal_close(d->seal);        /* persists counters (through the queue), wipes keys */
  d->seal = NULL;
  cs_commitq_stop(d->commitq);   /* every acknowledged write is on disk */
  cs_ha_stop(d->ha);             /* cluster mode: raft closes */
  d->ha = NULL;
  if (s->done != NULL)
    s->done(s->arg);
}

void cs_daemon_stop(cs_daemon *d, void (*done)(void *arg), void *arg) {
  if (d->shutting_down)
    return;
  d->shutting_down = 1;
  stopping = (stop_ctx){d, done, arg};
  if (d->listener == NULL) {     /* the dev server failed before listening */
    on_listener_stopped(&stopping);
    return;
  }
  cs_listener_stop(d->listener, on_listener_stopped, &stopping);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int cs_daemon_free(cs_daemon *d) {
  cs_store_close(d->store);
  d->store = NULL;
  cs_audit_close(d->audit);
  d->audit = NULL;
  if (d->dev_dir != NULL)
    nftw(d->dev_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  cs_config_free(&d->cfg);
  return d->exit_code;
}

int cs_daemon_recover_members(cs_daemon *d, const char *list) {
  if (!d->cfg.cluster.enabled) {
    fprintf(stderr, "custosd: --recover-peers: the configuration has no cluster section\n");
    return 1;
  }
  cs_store_opts so = {.map_size = d->cfg.map_size};
  int rc = cs_store_open(&d->store, d->cfg.storage_path, &so);
  if (rc == 0) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/raft", d->cfg.storage_path);
    rc = cs_recover_peers(dir, &d->cfg.cluster, list, stdout);
    cs_store_close(d->store);
    d->store = NULL;
  }
  if (rc < 0) {
    fprintf(stderr, "custosd: %s\n", cs_error_message(rc));
    return 1;
  }
  return 0;
}
