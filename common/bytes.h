/*
 * bytes: big-endian integers in byte buffers, the one copy for every
 * on-disk and on-the-wire format of custos (raft entries, snapshots, store
 * metadata).  The caller guarantees the bytes are there.  And cs_strlcpy,
 * the bounded string copy of the request path.
 */
#ifndef CS_BYTES_H
#define CS_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies src into dst (cap > 0 bytes), cut to cap - 1 and always ended;
 * returns strlen(src), so a result >= cap says it was cut.  The same as
 * snprintf(dst, cap, "%s", src) without the format parsing, which cost
 * 3.8% of a pipelined GET in four copies per request (docs/performance.md). */
static inline size_t cs_strlcpy(char *dst, const char *src, size_t cap) {
  size_t n = strlen(src), k = n < cap ? n : cap - 1;
  memcpy(dst, src, k);
  dst[k] = '\0';
  return n;
}

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
