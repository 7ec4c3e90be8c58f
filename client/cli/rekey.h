/*
 * rekey: the CLI's `operator rekey` (age recipients, backup) and what
 * `operator unseal --cluster` prints about the other members.  See rekey.c.
 */
#ifndef CLI_REKEY_H
#define CLI_REKEY_H

#include "cli.h"

/* `custos operator rekey ...` (argv after "rekey"). */
int cli_rekey(cli_ctx *g, int argc, char **argv);
/* After an unseal --cluster: one line (or a JSON member "relayed") per
 * other member. */
void cli_print_relayed(cli_ctx *g, const Custos__StatusRes *s);

#endif
