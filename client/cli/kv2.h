/* kv2: the versioned key/value commands (kv2.c), reached from kv.c's table. */
#ifndef CS_CLI_KV2_H
#define CS_CLI_KV2_H

#include "cli.h"

/* kv put / get / list / delete with --mount kv (argv: the words after the
 * subcommand, --mount included). */
int cli_kv2_put(cli_ctx *g, int argc, char **argv);
int cli_kv2_get(cli_ctx *g, int argc, char **argv);
int cli_kv2_list(cli_ctx *g, int argc, char **argv);
int cli_kv2_delete(cli_ctx *g, int argc, char **argv);
/* kv undelete / destroy (versioned only). */
int cli_kv2_undelete(cli_ctx *g, int argc, char **argv);
int cli_kv2_destroy(cli_ctx *g, int argc, char **argv);
/* kv metadata get / put / delete. */
extern const cli_cmd cli_kv2_metadata_cmds[];

#endif
