/*
 * libFuzzer target for common/age's parsers: the ones that read what a key
 * holder hands the CLI (an age file, binary or armored, and an identity
 * file) and what an operator hands init (a recipients file).
 *
 * The first byte picks the parser; the rest is its input:
 *   0: cs_age_decrypt with the CCTV test identity (armor, header, stanzas,
 *      MAC, STREAM); the seeds are real files to that identity, so the
 *      fuzzer starts past the MAC;
 *   1: cs_age_identity_parse_text;  2: cs_age_recipients_parse_text.
 * Oracles: no crash, leak or read out of bounds (ASan); every result is 0
 * or a CS_E code; a decrypted plaintext is shorter than the input and
 * decrypts again, after our own re-encryption, to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "age.h"
#include "cs_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char IDENTITY[] =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

static void check_decrypt(const uint8_t *in, size_t n) {
  static cs_age_identity id;
  static int ready;
  if (!ready) {
    if (cs_age_identity_parse(&id, IDENTITY, sizeof IDENTITY - 1) != 0)
      abort();
    ready = 1;
  }
  uint8_t *pt = NULL, *ct, *pt2;
  size_t ptlen = 0, ctlen, pt2len;
  int rc = cs_age_decrypt(&id, 1, in, n, &pt, &ptlen);
  if (rc > 0 || (rc != 0 && pt != NULL))
    abort();
  if (rc != 0)
    return;
  if (pt == NULL || ptlen >= n)
    abort();
  cs_age_recipient r;
  cs_age_identity_to_recipient(&id, &r);
  if (cs_age_encrypt(&r, 1, pt, ptlen, (int)(n & 1), &ct, &ctlen) != 0 ||
      cs_age_decrypt(&id, 1, ct, ctlen, &pt2, &pt2len) != 0 || pt2len != ptlen ||
      memcmp(pt, pt2, ptlen) != 0)
    abort();
  free(ct);
  cs_age_free(pt2, pt2len);
  cs_age_free(pt, ptlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const uint8_t *in = data + 1;
  size_t n = size - 1, count = 0;
  if (data[0] % 3 == 0) {
    check_decrypt(in, n);
  } else if (data[0] % 3 == 1) {
    cs_age_identity ids[4];
    int rc = cs_age_identity_parse_text(ids, 4, &count, (const char *)in, n);
    if (rc > 0 || (rc == 0 && (count == 0 || count > 4)))
      abort();
    cs_age_identity_wipe(&ids[0]);
  } else {
    cs_age_recipient rs[4];
    int rc = cs_age_recipients_parse_text(rs, 4, &count, (const char *)in, n);
    if (rc > 0 || (rc == 0 && (count == 0 || count > 4)))
      abort();
  }
  return 0;
}
