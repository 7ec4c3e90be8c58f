/*
 * root: the top of the command tree (cli_root), `custos version` and the
 * help text of the global options.  A new command group is one row here and
 * a table in its own file (see /work/wt/CLI_LANDED, docs/cli.md).
 */
#include "cli.h"
#include "cs_version.h"

int cmd_version(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc = cli_parse(g, argc, argv, NULL, NULL, 0, &npos);
  if (rc != 0)
    return rc;
  out_str(g, "version", NULL, CS_VERSION);
  out_text(g, "custos %s\n", CS_VERSION);
  return CLI_OK;
}

static const cli_cmd top_cmds[] = {
  { "status", cmd_status, NULL, "seal status of the server", "",
    "Prints whether the server is initialized and sealed, its shares and\n"
    "threshold, the unseal progress, the key term, the version and the HA\n"
    "mode.  No token needed.\n"
    "\n"
    "Exit codes: 0 unsealed, 2 sealed, 1 error.\n" },
  { "operator", NULL, cli_operator_cmds, "seal life cycle, keys, cluster, snapshots", NULL, NULL },
  { "kv", NULL, cli_kv_cmds, "read and write secrets", NULL, NULL },
  { "token", NULL, cli_token_cmds, "create, look up, renew and revoke tokens", NULL, NULL },
  { "policy", NULL, cli_policy_cmds, "write, read, list and delete policies", NULL, NULL },
  { "audit", NULL, cli_audit_cmds, "audit log helpers", NULL, NULL },
  { "version", cmd_version, NULL, "print the version of this client", "",
    "Prints \"custos VERSION\" (json: {\"version\":\"VERSION\"}); the same as\n"
    "`custos --version`.  The server's version is in `custos status`.\n" },
  { 0 },
};

const cli_cmd cli_root = {
  "custos", NULL, top_cmds, NULL, "[global options] <command> [args] [options]",
  "Global options (environment variable in brackets):\n"
  "  --addr HOST:PORT       server address [CUSTOS_ADDR] (default 127.0.0.1:7200)\n"
  "  --ca-cert FILE         PEM CA certificate to verify the server [CUSTOS_CACERT]\n"
  "  --token TOKEN          authentication token [CUSTOS_TOKEN]\n"
  "  --client-cert FILE     PEM client certificate [CUSTOS_CLIENT_CERT]\n"
  "  --client-key FILE      PEM client key [CUSTOS_CLIENT_KEY]\n"
  "  --format table|json    output format [CUSTOS_FORMAT] (default table)\n"
  "  --version              print the version and exit\n"
  "  --help, -h             this help; after a command, that command's help\n"
  "\n"
  "Exit codes: 0 success; 1 error; 2 usage error, or (status, unseal) sealed;\n"
  "  3 the server asked to retry (transient; nothing was done).\n"
  "With --format json, errors are one JSON line on stderr:\n"
  "  {\"error\":{\"code\":\"usage\",\"message\":\"...\",\"command\":\"kv put\",\"exit_code\":2}}\n"
  "Durations: 90s, 2m, 24h, 7d, 1h30m, or a number of seconds.\n"
  "See 'custos <command> --help' for the options of each command.\n",
};

