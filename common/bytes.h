/*
 * bytes: big-endian integers in byte buffers, the one copy for every
 * on-disk and on-the-wire format of custos (raft entries, snapshots, store
 * metadata).  The caller guarantees the bytes are there.
 */
#ifndef CS_BYTES_H
#define CS_BYTES_H

#include <stdint.h>

static inline void cs_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline uint32_t cs_get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void cs_put_be64(uint8_t *p, uint64_t v) {
  cs_put_be32(p, (uint32_t)(v >> 32));
  cs_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t cs_get_be64(const uint8_t *p) {
  return (uint64_t)cs_get_be32(p) << 32 | cs_get_be32(p + 4);
}

/* Little endian: libraft's own encodings (its configuration entries). */
static inline uint64_t cs_get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

#endif
