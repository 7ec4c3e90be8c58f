/*
 * lifecycle: the key lifecycle commands of the CLI beyond a plain rotation:
 *
 *   operator key-status [--verify]
 *   operator rewrap [--below-term N] [--rate OPS_PER_SEC] [--wait]
 *   operator rewrap --status
 *   operator retire-term N
 *   operator rotate --rewrap [--retire] [--rate OPS_PER_SEC]
 *
 * Each entry takes the words after the subcommand and returns a CLI exit
 * code (cli.h).
 */
#ifndef CS_CLI_LIFECYCLE_H
#define CS_CLI_LIFECYCLE_H

#include "cli.h"

int cli_key_status(cli_ctx *g, int argc, char **argv);
int cli_rewrap(cli_ctx *g, int argc, char **argv);
int cli_retire_term(cli_ctx *g, int argc, char **argv);
/* `operator rotate` with --rewrap / --retire / --rate (plain rotate when
 * none is given). */
int cli_rotate_lifecycle(cli_ctx *g, int argc, char **argv);
/* 1 when argv (after "rotate") asks for more than a plain rotation. */
int cli_rotate_is_lifecycle(int argc, char **argv);

#endif
