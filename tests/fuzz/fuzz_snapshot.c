/*
 * Fuzz target for the snapshot file parser (server/core/snapshot.c): what
 * `custos operator snapshot inspect/verify/restore` and the server's restore
 * read from a file someone hands them.  A corrupt, truncated or hostile file
 * must give a clear error, never a crash, a hang or an over-read.
 *
 * The first byte picks the mode.  The checksums would stop a fuzzer at the
 * door, so besides raw files (0) it also fixes the trailing checksum (1),
 * reaching the header parser, and feeds the rest directly as a payload (2),
 * reaching the batch decoder and share verification.  Whatever parses is
 * MAC-checked under a fixed key and verified with fixed shares.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const cs_snapshot *s) {
  uint8_t key[CS_KEY_LEN] = {1};
  int rc = cs_snapshot_check_mac(s, key);
  cs_batch b;
  if (cs_snapshot_batch(s, &b) == 0)
    cs_batch_clear(&b);
  uint8_t sh[2][CS_KEY_LEN + 1];
  memset(sh[0], 1, sizeof sh[0]);
  memset(sh[1], 2, sizeof sh[1]);
  const uint8_t *shares[2] = {sh[0], sh[1]};
  size_t terms;
  rc |= cs_snapshot_verify(s, shares, 2, CS_KEY_LEN + 1, &terms);
  rc |= cs_snapshot_verify(s, shares, 1, CS_KEY_LEN, &terms);
  (void)rc; /* any outcome but a crash is fine */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int mode = data[0] % 3;
  data++;
  size--;
  if (mode == 2) {
    static const uint8_t zero_mac[32];
    Custos__SnapshotHeader h = CUSTOS__SNAPSHOT_HEADER__INIT;
    cs_snapshot s = {.hdr = &h, .payload = data, .payload_len = size, .body = data,
                     .body_len = size, .mac = zero_mac};
    exercise(&s);
    return 0;
  }
  uint8_t *copy = malloc(size ? size : 1);
  if (copy == NULL)
    return 0;
  memcpy(copy, data, size);
  if (mode == 1 && size >= CS_SNAPSHOT_TRAILER)
    cs_sha256(copy, size - CS_SNAPSHOT_TRAILER, copy + size - CS_SNAPSHOT_TRAILER);
  cs_snapshot s;
  if (cs_snapshot_parse(copy, size, &s) == 0) {
    exercise(&s);
    cs_snapshot_free(&s);
  }
  free(copy);
  return 0;
}
