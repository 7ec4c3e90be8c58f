/*
 * custosd: arguments, signals, and the daemon's start and stop.
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
 * commits, persist counters, wipe keys, exit 0 (cs_daemon_stop).  SIGHUP:
 * certificates and the audit log reloaded (cs_daemon_reload).  Everything
 * else is the daemon's (daemon.c).
 */
#include "cs_version.h"
#include "daemon.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

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

static void on_stopped(void *arg) {
  (void)arg;
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  cs_daemon *d = h->data;
  if (d->shutting_down)
    return;
  cs_info("received %s: finishing in-flight requests and shutting down",
          signum == SIGTERM ? "SIGTERM" : "SIGINT");
  cs_daemon_stop(d, on_stopped, NULL);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  cs_daemon_reload(h->data);
}

static void start_signals(uv_loop_t *loop, cs_daemon *d) {
  uv_signal_init(loop, &sig_term);
  uv_signal_init(loop, &sig_int);
  uv_signal_init(loop, &sig_hup);
  sig_term.data = sig_int.data = sig_hup.data = d;
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_hup, on_sighup, SIGHUP);
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
    case 'v': printf("custosd %s\n", CS_VERSION); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || (dev == (config_path != NULL)) || (recover != NULL && dev)) {
    usage(stderr);
    return 2;
  }

  cs_daemon *d = &daemon_state;
  harden_process();
  cs_config_defaults(&d->cfg);
  if (config_path != NULL) {
    char err[512];
    if (cs_config_load(&d->cfg, config_path, err, sizeof err) < 0) {
      fprintf(stderr, "custosd: %s\n", err);
      return 1;
    }
  }
  cs_log_set_level(d->cfg.log_level);
  if (recover != NULL) {
    int rc = cs_daemon_recover_members(d, recover);
    cs_config_free(&d->cfg);
    return rc;
  }
  uv_loop_t *loop = uv_default_loop();
  if (cs_daemon_start(d, loop, dev ? dev_listen : NULL) < 0)
    return 1; /* logged; the process ends with raft and the writer thread as they are */
  start_signals(loop, d);
  uv_run(loop, UV_RUN_DEFAULT);
  int code = cs_daemon_free(d);
  uv_loop_close(loop);
  cs_info("custosd stopped");
  return code;
}
