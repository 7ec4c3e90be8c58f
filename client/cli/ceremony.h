/*
 * ceremony: the CLI's key-holder ceremonies that need no token:
 *   custos operator verify-share [SHARE | --identity KEY FILE]
 *   custos operator generate-root --init (--otp [OTP] | --server-otp | --recipient age1...)
 *   custos operator generate-root --nonce N [SHARE | --identity KEY FILE]
 *   custos operator generate-root --status | --cancel --nonce N
 *   custos operator generate-root --decode ENCODED --otp OTP
 * (argv after the subcommand word.)
 */
#ifndef CLI_CEREMONY_H
#define CLI_CEREMONY_H

#include "cli.h"

int cli_verify_share(cli_ctx *g, int argc, char **argv);
int cli_generate_root(cli_ctx *g, int argc, char **argv);

#endif
