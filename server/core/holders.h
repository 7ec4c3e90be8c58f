/*
 * holders: the outputs of a key ceremony encrypted to the people who hold
 * them, as age files (common/age.h), so that whoever runs the ceremony
 * never sees a share or the root token in the clear.
 *
 * What is encrypted is the text a holder would otherwise have been shown
 * (a share in hex, the root token), followed by a newline: `age -d -i` then
 * prints exactly what `custos operator unseal` takes.  The files are ASCII
 * armored.  The plaintext exists only where the caller keeps it (the seal's
 * result, wiped after the response) and in buffers wiped before return.
 */
#ifndef CS_HOLDERS_H
#define CS_HOLDERS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Checks a ceremony's recipients before anything is generated: none at all
 * (the shares go out in the clear), or exactly n (one per share), each an
 * age X25519 recipient; root may be NULL or "" (the token in the clear).
 * 0, CS_EAGEKEY (the detail names the recipient) or CS_EINVAL (count).
 */
int cs_holders_check(char *const *recipients, size_t nr, const char *root, unsigned n)
    __attribute__((warn_unused_result));

/* Encrypts share i (share_len bytes at shares + i * share_len) to
 * recipients[i] for i < n; out[i] is a malloc'ed NUL-terminated armored age
 * file.  0, CS_EAGEKEY, CS_ENOMEM or CS_ECRYPTO (then nothing is left
 * allocated).  Free with cs_holders_free. */
int cs_holders_encrypt_shares(char *const *recipients, size_t n, const uint8_t *shares,
                              size_t share_len, char **out) __attribute__((warn_unused_result));

/* Encrypts a NUL-terminated secret text (a token) to one recipient. */
int cs_holders_encrypt_text(const char *recipient, const char *text, char **out)
    __attribute__((warn_unused_result));

void cs_holders_free(char **out, size_t n);

#endif
