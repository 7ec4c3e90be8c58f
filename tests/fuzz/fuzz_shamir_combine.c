/*
 * libFuzzer target for cs_shamir_combine / cs_shamir_combine_var: shares
 * come from users at unseal time, so combine must survive any bytes.
 *
 * Input: [nparts][part_len][bytes...].  The bytes are cut into nparts
 * parts of part_len each; when the input runs short, the last parts are
 * shorter, which also exercises the unequal-length check of _var.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shamir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t nparts = data[0], part_len = data[1];
  data += 2;
  size -= 2;

  /* Each part gets its own heap copy so ASan sees any read past its end. */
  uint8_t *parts[255];
  size_t lens[255];
  size_t used = 0, whole = 1;
  for (size_t i = 0; i < nparts; i++) {
    size_t len = size - used < part_len ? size - used : part_len;
    whole &= len == part_len;
    parts[i] = malloc(len ? len : 1);
    if (parts[i] == NULL)
      abort();
    memcpy(parts[i], data + used, len);
    lens[i] = len;
    used += len;
  }

  uint8_t out[256];
  /* The fixed-length API may only be given parts that really hold part_len bytes. */
  if (whole) {
    int rc = cs_shamir_combine((const uint8_t *const *)parts, nparts, part_len, out);
    (void)rc;
  }
  int rc = cs_shamir_combine_var((const uint8_t *const *)parts, lens, nparts, out, sizeof out);
  (void)rc;

  for (size_t i = 0; i < nparts; i++)
    free(parts[i]);
  return 0;
}
