/*
 * custosd: start-up, signals and shutdown.
 *
 *   custosd --config FILE        serve with the given configuration
 *   custosd --dev [--dev-listen ADDR]
 *                                a throw-away dev server: temporary data
 *                                directory, self-signed certificate,
 *                                initialized with one share and unsealed
 *   custosd --config FILE --recover-peers n1[,n2...]
 *                                offline: rewrite the raft configuration of
 *                                a cluster that lost quorum (docs/ha.md)
 *
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests and pending
 * commits, persist counters, wipe keys, exit 0.
 */
#define _GNU_SOURCE /* nftw */
#include "cs_error.h"
#include "crypto.h"
#include "daemon.h"
#include "devcert.h"
#include "ha.h"
#include "log.h"
#include "recover.h"
#include "secmem.h"
#include "snapshots.h"
#include "rewrapper.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static cs_daemon daemon_state;
static uv_signal_t sig_term, sig_int, sig_hup;

static void usage(FILE *f) {
  fprintf(f, "usage: custosd --config FILE\n"
             "       custosd --config FILE --recover-peers NODE_ID[,NODE_ID...]\n"
             "       custosd --dev [--dev-listen HOST:PORT]\n"
             "       custosd --version\n");
}

/* No core files, no ptrace by other users, nothing in swap we can help. */
static void harden_process(void) {
  struct rlimit rl = {0, 0};
  if (setrlimit(RLIMIT_CORE, &rl) != 0)
    cs_warn("cannot disable core dumps: %s", strerror(errno));
  /* Fleets and benchmarks hold thousands of connections: use the hard
   * limit on descriptors, not the 1024 soft default. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      cs_warn("cannot raise the descriptor limit: %s", strerror(errno));
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    cs_warn("cannot clear the dumpable flag: %s", strerror(errno));
  signal(SIGPIPE, SIG_IGN);
}

static void on_listener_stopped(void *arg) {
  cs_daemon *d = arg;
  cs_api_close();
  uv_timer_stop(&d->tick);
  uv_close((uv_handle_t *)&d->tick, NULL);
  cs_snapshots_stop(d);
  cs_rewrapper_stop(d);
  cs_seal_close(d->seal);        /* persists counters (through the queue), wipes keys */
  d->seal = NULL;
  cs_commitq_stop(d->commitq);   /* every acknowledged write is on disk */
  cs_ha_stop(d);                 /* cluster mode: raft closes */
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
}

/*
 * SIGHUP: reload the API listener's certificate, key and client CA (a
 * renewed certificate never needs a restart; a bad one is refused and the
 * old one kept), the cluster port's (cs_ha_reload_tls), and reopen the
 * audit log (after log rotation).
 */
static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  cs_daemon *d = h->data;
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
  cs_ha_reload_tls(d);
  if (d->audit == NULL)
    return;
  int rc = cs_audit_reopen(d->audit);
  if (rc < 0)
    cs_error("SIGHUP: cannot reopen the audit log, still writing the old file: %s",
             cs_error_message(rc));
  else
    cs_info("SIGHUP: audit log reopened");
}

static void on_signal(uv_signal_t *h, int signum) {
  cs_daemon *d = h->data;
  if (d->shutting_down)
    return;
  d->shutting_down = 1;
  cs_info("received %s: finishing in-flight requests and shutting down",
          signum == SIGTERM ? "SIGTERM" : "SIGINT");
  cs_listener_stop(d->listener, on_listener_stopped, d);
}

/* The seal's writes go through the group commit queue like everything else. */
static int submit_batch(void *ctx, cs_batch *b, cs_submit_done done, void *arg) {
  return cs_commitq_submit(ctx, b, done, arg);
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
                       .key_change_ctx = d,
                       .on_event = cs_daemon_seal_changed,
                       .on_event_ctx = d};
  if ((rc = cs_seal_open(&d->seal, &opts)) < 0 || (rc = cs_snapshots_start(d)) < 0 ||
      (rc = cs_rewrapper_start(d)) < 0)
    return rc;
  return d->cfg.cluster.enabled ? cs_ha_start(d) : 0;
}

static int start_listener(cs_daemon *d) {
  int rc = cs_listener_start(&d->listener, d->loop, &d->cfg.listener, cs_dispatch,
                             cs_dispatch_independent, d);
  if (rc < 0) {
    cs_error("cannot listen on %s: %s", d->cfg.listener.address, cs_error_message(rc));
    return rc;
  }
  cs_seal_status st;
  cs_seal_get_status(d->seal, &st);
  cs_info("custosd listening on %s (%s)", d->cfg.listener.address,
          !st.initialized ? "not initialized" : st.sealed ? "sealed" : "unsealed");
  return 0;
}

static char dev_dir[] = "/tmp/custos-dev-XXXXXX";

/* Dev server, once init is committed: unseal, print what a user needs,
 * then listen. */
static void on_dev_init(void *arg, int status, cs_seal_result *r) {
  cs_daemon *d = arg;
  int rc = status;
  if (rc == 0)
    rc = cs_seal_unseal(d->seal, r->shares, r->share_len); /* runs cs_daemon_seal_changed */
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

/* The dev server: everything in a fresh temporary directory. */
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
  d->cfg.storage_path = strdup(data);
  d->cfg.listener.address = strdup(listen);
  d->cfg.listener.cert_file = strdup(cert);
  d->cfg.listener.key_file = strdup(key);
  if ((rc = open_core(d)) < 0)
    return rc;
  rc = cs_seal_init(d->seal, 1, 1, on_dev_init, d);
  return rc < 0 ? rc : 0;
}

/* --recover-peers: with the data directory locked (a running node holds
 * the lock, so this refuses to touch a live log), rewrite the raft
 * configuration, say what was done, exit. */
static int recover_peers(cs_daemon *d, const char *list) {
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
  }
  if (rc < 0) {
    fprintf(stderr, "custosd: %s\n", cs_error_message(rc));
    return 1;
  }
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(path);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"dev", no_argument, NULL, 'd'},
      {"dev-listen", required_argument, NULL, 'l'}, {"version", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'}, {"recover-peers", required_argument, NULL, 'r'},
      {NULL, 0, NULL, 0}};
  const char *config_path = NULL, *dev_listen = "127.0.0.1:7200", *recover = NULL;
  int dev = 0, c;
  while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'c': config_path = optarg; break;
    case 'd': dev = 1; break;
    case 'l': dev_listen = optarg; break;
    case 'r': recover = optarg; break;
    case 'v': printf("custosd 0.1.0\n"); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || (dev == (config_path != NULL)) || (recover != NULL && dev)) {
    usage(stderr);
    return 2;
  }

  cs_daemon *d = &daemon_state;
  d->loop = uv_default_loop();
  harden_process();
  cs_config_defaults(&d->cfg);
  int rc;
  if (config_path != NULL) {
    char err[512];
    if (cs_config_load(&d->cfg, config_path, err, sizeof err) < 0) {
      fprintf(stderr, "custosd: %s\n", err);
      return 1;
    }
  }
  cs_log_set_level(d->cfg.log_level);
  if (recover != NULL)
    return recover_peers(d, recover);
  if (d->cfg.audit_file != NULL && (rc = cs_audit_open(&d->audit, d->cfg.audit_file)) < 0) {
    cs_error("cannot open the audit log: %s", cs_error_message(rc));
    return 1;
  }
  if ((rc = cs_crypto_init()) < 0) {
    cs_error("cannot seed the random generator: %s", cs_error_message(rc));
    return 1;
  }
  rc = dev ? setup_dev(d, dev_listen) : open_core(d);
  if (rc < 0) {
    cs_error("start-up failed: %s", cs_error_message(rc));
    return 1;
  }
  if (!dev && start_listener(d) < 0)
    return 1;
  if (cs_secmem_lock_failures() > 0)
    cs_warn("key memory could not be locked (RLIMIT_MEMLOCK too low?): keys may reach swap");

  uv_timer_init(d->loop, &d->tick);
  d->tick.data = d;
  uv_timer_start(&d->tick, cs_daemon_tick, 1000, 1000);
  uv_signal_init(d->loop, &sig_term);
  uv_signal_init(d->loop, &sig_int);
  sig_term.data = sig_int.data = d;
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_init(d->loop, &sig_hup);
  sig_hup.data = d;
  uv_signal_start(&sig_hup, on_sighup, SIGHUP);

  uv_run(d->loop, UV_RUN_DEFAULT);

  cs_store_close(d->store);
  cs_audit_close(d->audit);
  if (d->dev_dir != NULL)
    nftw(d->dev_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  cs_config_free(&d->cfg);
  uv_loop_close(d->loop);
  cs_info("custosd stopped");
  return d->exit_code;
}
