/*
 * age_keys: the CLI's side of ceremonies with age-encrypted shares
 * (common/age.h): the recipients an operator names for init, the encrypted
 * shares and token it prints, and a share a holder decrypts with an
 * identity file for `operator unseal --identity`.
 */
#ifndef CLI_AGE_KEYS_H
#define CLI_AGE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "custos.pb-c.h"

/*
 * The recipients given as --recipient values (list) and in a recipients
 * file (one per line, '#' comments; NULL: none), checked and in order.
 * Returns 0 with *out (n strings; free with cli_age_recipients_free), or
 * prints a usage error naming the bad recipient and returns CLI_USAGE
 * (CLI_FAIL when the file cannot be read).
 */
int cli_age_recipients(cli_ctx *g, const char *const *list, size_t nlist, const char *file,
                       char ***out, size_t *n);
void cli_age_recipients_free(char **v, size_t n);
/* Checks one recipient (--root-token-recipient): 0 or CLI_USAGE (printed). */
int cli_age_check_recipient(cli_ctx *g, const char *flag, const char *s);

/* Prints the encrypted shares (and the token, if encrypted) of an init
 * response: JSON members "unseal_keys_age" [...] and "root_token_age", or
 * each armored file under a "Unseal Key N (age, for age1...):" line. */
void cli_age_print_keys(cli_ctx *g, const Custos__InitRes *r, char *const *recipients,
                        const char *root_recipient);

/* Checks, before init, that --output-dir is a writable directory without
 * any of the files cli_age_write_keys would create (n shares, and the
 * token when root).  0 or CLI_USAGE (printed). */
int cli_age_check_output_dir(cli_ctx *g, const char *dir, size_t n, int root);

/*
 * Writes each encrypted share of an init response to DIR/unseal-key-N.age
 * and the encrypted token to DIR/root-token.age (new files only: an
 * existing one is an error, nothing is overwritten), then prints which file
 * is whose.  DIR must exist.  Returns 0, or CLI_FAIL (printed) after
 * printing every encrypted file as cli_age_print_keys does, since the
 * server has already been initialized.
 */
int cli_age_write_keys(cli_ctx *g, const char *dir, const Custos__InitRes *r,
                       char *const *recipients, const char *root_recipient);

/*
 * Reads the age file at path (stdin for NULL or "-"), decrypts it with an
 * identity of identity_file and decodes the share it holds (hex or base64
 * text), as cli_get_key does.  Returns 0 with *key (free with
 * cli_free_secret) or CLI_FAIL (printed: no identity matched, tampered
 * file, ...).  The plaintext is wiped.
 */
int cli_age_unseal_key(cli_ctx *g, const char *path, const char *identity_file, uint8_t **key, size_t *len);

#endif
