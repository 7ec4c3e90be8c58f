/* holders: ceremony outputs encrypted to their holders (see holders.h). */
#include "holders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "age.h"
#include "crypto.h"
#include "cs_error.h"
#include "secmem.h"

static int parse_one(const char *s, cs_age_recipient *r, const char *what, size_t idx) {
  if (s == NULL || cs_age_recipient_parse(r, s, strlen(s)) != 0)
    return idx == 0 ? cs_error_set(CS_EAGEKEY, "%s is not an age recipient (age1...)", what)
                    : cs_error_set(CS_EAGEKEY, "%s %zu is not an age recipient (age1...)", what,
                                   idx);
  return 0;
}

int cs_holders_check(char *const *recipients, size_t nr, const char *root, unsigned n) {
  cs_age_recipient r;
  if (nr != 0 && nr != n)
    return cs_error_set(CS_EINVAL, "%zu age recipients for %u key shares: give one per share", nr,
                        n);
  for (size_t i = 0; i < nr; i++) {
    int rc = parse_one(recipients[i], &r, "recipient", i + 1);
    if (rc != 0)
      return rc;
  }
  if (root != NULL && root[0] != '\0')
    return parse_one(root, &r, "root token recipient", 0);
  return 0;
}

/* Encrypts text (n bytes) to one recipient into a NUL-terminated string. */
static int encrypt_to(const char *recipient, const uint8_t *text, size_t n, char **out) {
  cs_age_recipient r;
  uint8_t *ct;
  size_t ctlen;
  int rc = parse_one(recipient, &r, "recipient", 0);
  if (rc == 0)
    rc = cs_age_encrypt(&r, 1, text, n, 1, &ct, &ctlen);
  if (rc != 0)
    return rc;
  char *s = realloc(ct, ctlen + 1);
  if (s == NULL) {
    free(ct);
    return CS_ENOMEM;
  }
  s[ctlen] = '\0';
  *out = s;
  return 0;
}

int cs_holders_encrypt_shares(char *const *recipients, size_t n, const uint8_t *shares,
                              size_t share_len, char **out) {
  /* A share's hex form and a newline: what `custos operator unseal` reads.
   * Shares are 33 bytes (32 for a single one). */
  char hex[2 * 64 + 2];
  int rc = 0;
  size_t done = 0;
  if (2 * share_len + 2 > sizeof hex)
    return CS_EINVAL;
  for (; done < n; done++) {
    cs_hex_encode(shares + done * share_len, share_len, hex);
    hex[2 * share_len] = '\n';
    if ((rc = encrypt_to(recipients[done], (const uint8_t *)hex, 2 * share_len + 1,
                         &out[done])) != 0)
      break;
  }
  cs_wipe(hex, sizeof hex);
  if (rc != 0)
    cs_holders_free(out, done);
  return rc;
}

int cs_holders_encrypt_text(const char *recipient, const char *text, char **out) {
  size_t n = strlen(text);
  uint8_t *buf = malloc(n + 1);
  if (buf == NULL)
    return CS_ENOMEM;
  memcpy(buf, text, n);
  buf[n] = '\n';
  int rc = encrypt_to(recipient, buf, n + 1, out);
  cs_wipe(buf, n + 1);
  free(buf);
  return rc;
}

void cs_holders_free(char **out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(out[i]);
    out[i] = NULL;
  }
}
