/*
 * Fuzz target for what custosd reads back from disk: barrier ciphertexts
 * (decrypt with a fixed keyring), keyring records, seal configs, and the
 * records decoded on every request (a secret's KvData, a TokenEntry).  A
 * corrupt data directory must give clear errors, never a crash.  kv-get
 * sends a KvData that cs_wire_check accepts without decoding it, so the
 * check must never accept what the decode refuses.
 * The first input byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "keyring.h"
#include "seal.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cs_keyring *ring(void) {
  static cs_keyring *k;
  if (k == NULL) {
    uint8_t key[CS_KEY_LEN];
    if (cs_crypto_init() < 0 || cs_keyring_new(&k) < 0)
      abort();
    for (uint32_t t = 1; t <= 3; t++) {
      memset(key, (int)t, sizeof key);
      if (cs_keyring_add(k, t, key, 0, 0) < 0)
        abort();
    }
  }
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  switch (data[0] % 4) {
  case 0: {
    uint8_t *pt;
    size_t len;
    if (cs_barrier_decrypt(ring(), "kv/fuzz", p, n, &pt, &len) == 0)
      free(pt);
    break;
  }
  case 1: {
    cs_keyring *k;
    if (cs_keyring_decode(p, n, &k) == 0)
      cs_keyring_free(k);
    break;
  }
  case 3: {
    ProtobufCMessage *m;
    int urc = cs_wire_unpack(&custos__kv_data__descriptor, p, n, &m);
    cs_wire_unpacked_free(m);
    if (cs_wire_check(&custos__kv_data__descriptor, p, n) == 0 && urc == CS_EPROTO)
      abort(); /* kv-get would send what no client can parse */
    if (cs_wire_unpack(&custos__token_entry__descriptor, p, n, &m) == 0)
      cs_wire_unpacked_free(m);
    break;
  }
  default:
    if (cs_seal_config_check(p, n) == 0)
      break; /* valid configs are fine too */
    break;
  }
  return 0;
}
