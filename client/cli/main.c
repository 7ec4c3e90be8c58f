/*
 * custos: the command-line client's main(): the environment, the global
 * options, the dispatch into the command tree (root.c) and the one flush
 * of the output.  Everything else is in libcustos_cli (see cli.h), so the
 * unit tests and the fuzz target run the same code.
 *
 * Global options may appear anywhere before a "--": they are taken out of
 * argv first, the remaining words are the command.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

int main(int argc, char **argv) {
  cli_ctx g;
  int version = 0, rc;

  signal(SIGPIPE, SIG_IGN);
  cli_ctx_init(&g);
  if (env("CUSTOS_ADDR")) g.opts.addr = env("CUSTOS_ADDR");
  g.opts.ca_file = env("CUSTOS_CACERT");
  g.opts.token = env("CUSTOS_TOKEN");
  g.opts.cert_file = env("CUSTOS_CLIENT_CERT");
  g.opts.key_file = env("CUSTOS_CLIENT_KEY");

  argc--;
  argv++;
  g.cmd = &cli_root; /* a usage error in the globals shows the top synopsis */
  if ((rc = cli_parse_globals(&g, &argc, argv, &version)) != 0) {
    cli_ctx_free(&g);
    return rc;
  }
  if (version)
    rc = cmd_version(&g, 0, argv);
  else
    rc = cli_dispatch(&g, &cli_root, argc, argv);
  if (rc == CLI_HELPED)
    rc = CLI_OK;
  /* What the command produced is printed even when it failed afterwards
   * (init whose --output-dir write failed prints the encrypted shares). */
  int frc = out_flush(&g);
  if (frc != 0 && rc == CLI_OK)
    rc = frc;
  cli_ctx_free(&g);
  return rc;
}
