/* kv2: the versioned key/value commands (kv2.c). */
#ifndef CS_CLI_KV2_H
#define CS_CLI_KV2_H

#include "cli.h"

/* 1 when the `kv` command in argv (after "kv") is a versioned one (names
 * --mount kv, or is undelete / destroy / metadata).  *strip: the index of
 * a --mount secret option kv.c drops (-1: none). */
int cli_kv2_selected(int argc, char **argv, int *strip);
/* Runs a versioned `kv` command (argv[0] is the subcommand). */
int cmd_kv2(cli_ctx *g, int argc, char **argv);

#endif
