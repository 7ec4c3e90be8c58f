/*
 * staged: the CLI's side of staged activation (client/cli/staged.c).
 */
#ifndef CS_CLI_STAGED_H
#define CS_CLI_STAGED_H

#include <stdint.h>
#include "cli.h"

/* operator rotate --wait: polls key-status (through the active) until the
 * active term is `term` or later.  CLI_OK, or prints the error and returns
 * CLI_FAIL (no token right, sealed, or still staged well past the
 * deadline the server gave). */
int cli_rotate_wait(cli_ctx *g, uint32_t term);

/* Extra lines of `status` (seal_reason) and `key-status` (the staged
 * term's deadline and the voters it waits for), JSON and table. */
void cli_staged_status(cli_ctx *g, const Custos__StatusRes *s);
void cli_staged_key_status(cli_ctx *g, const Custos__KeyStatusRes *k);

#endif
