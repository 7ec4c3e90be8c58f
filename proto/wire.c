/* wire: frame codec.  See wire.h. */
#include "wire.h"
#include "cs_error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/platform_util.h>

int cs_wire_frame_check(const uint8_t *buf, size_t len, size_t max, size_t *body_len) {
  if (len < CS_WIRE_HDR)
    return 0;
  uint32_t n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
               ((uint32_t)buf[2] << 8) | (uint32_t)buf[3];
  if (max > CS_WIRE_MAX_ABS)
    max = CS_WIRE_MAX_ABS;
  if (n > max)
    return cs_error_set(CS_ETOOBIG, "frame of %u bytes exceeds the limit of %zu bytes", n, max);
  if (len - CS_WIRE_HDR < n)
    return 0;
  *body_len = n;
  return 1;
}

void cs_wire_put_header(uint8_t hdr[CS_WIRE_HDR], uint32_t len) {
  hdr[0] = (uint8_t)(len >> 24);
  hdr[1] = (uint8_t)(len >> 16);
  hdr[2] = (uint8_t)(len >> 8);
  hdr[3] = (uint8_t)len;
}

static void wipe_bytes(ProtobufCBinaryData *b) {
  if (b->data != NULL && b->len > 0)
    mbedtls_platform_zeroize(b->data, b->len);
}

static void wipe_pairs(size_t n, Custos__KvPair **pairs) {
  for (size_t i = 0; i < n; i++)
    if (pairs[i] != NULL)
      wipe_bytes(&pairs[i]->value);
}

/*
 * A decoded request lives in an arena: protobuf-c's unpack takes every
 * piece (the message, its submessages, strings, bytes, arrays) from blocks
 * it bumps through, and cs_wire_request_free wipes the blocks whole and
 * frees them.  One malloc for a usual request instead of one per piece,
 * no walk of the descriptors to free or to wipe, and every byte the
 * request held is wiped (tokens, shares and values, and the strings too).
 * The request is the first allocation in the first block, so the block is
 * found from the request (checked at each decode).
 *
 * What protobuf-c frees during the unpack (a string or a oneof member
 * given again replaces the earlier one) is taken back when it is the last
 * piece, and wiped; anything else stays until the request is freed.  So
 * that a frame built of such repeats cannot hold far more memory than
 * protobuf-c's own allocator would, an arena holds at most ARENA_BUDGET
 * bytes: past it the decode fails (CS_ETOOBIG).
 */
typedef struct arena_block {
  struct arena_block *next; /* first block: the others, newest first */
  size_t cap, used;         /* bytes of data */
  /* The first block only: */
  size_t total, budget;     /* data bytes of all blocks, and their limit */
  void *last;               /* the newest piece (taken back when freed) */
  size_t last_len;
  int over;                 /* an allocation failed: 1 past the budget, -1 out of memory */
  _Alignas(16) uint8_t data[];
} arena_block;

#define ARENA_ALIGN 16u
#define ARENA_MIN 512u
/* The pieces of a legitimate request of n bytes take at most about 60 n
 * (empty key-value pairs: 2 bytes on the wire, a 48-byte struct and a
 * pointer each), plus the structs of one request. */
#define ARENA_BUDGET(n) ((n) <= (SIZE_MAX - 65536) / 64 ? 64 * (n) + 65536 : SIZE_MAX)

static arena_block *block_new(size_t cap) {
  if (cap > SIZE_MAX - sizeof(arena_block))
    return NULL;
  arena_block *b = malloc(sizeof *b + cap);
  if (b != NULL) {
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->total = cap;
    b->budget = SIZE_MAX;
  }
  return b;
}

static void *arena_alloc(void *data, size_t size) {
  arena_block *first = data;
  arena_block *b = first->next != NULL ? first->next : first; /* the newest */
  if (size > SIZE_MAX - ARENA_ALIGN)
    return NULL;
  size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (b->cap - b->used < need) {
    size_t left = first->budget - first->total; /* total <= budget always */
    size_t cap = b->cap <= SIZE_MAX / 2 ? b->cap * 2 : b->cap;
    cap = cap < need ? need : cap;
    cap = cap > left ? left : cap;
    if (cap < need) {
      first->over = 1;
      return NULL;
    }
    arena_block *nb = block_new(cap);
    if (nb == NULL) {
      first->over = -1;
      return NULL;
    }
    first->total += cap;
    nb->next = first->next; /* newest first after the head */
    first->next = nb;
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += need;
  first->last = p;
  first->last_len = need;
  return p;
}

/* Takes back the newest piece (a replaced string or oneof member); any
 * other goes with the arena. */
static void arena_free(void *data, void *ptr) {
  arena_block *first = data;
  if (ptr == NULL || ptr != first->last)
    return;
  arena_block *b = first->next != NULL ? first->next : first;
  mbedtls_platform_zeroize(ptr, first->last_len);
  b->used -= first->last_len;
  first->last = NULL;
}

static void arena_destroy(arena_block *first) {
  arena_block *b = first->next;
  while (b != NULL) {
    arena_block *next = b->next;
    mbedtls_platform_zeroize(b->data, b->used);
    free(b);
    b = next;
  }
  mbedtls_platform_zeroize(first->data, first->used);
  free(first);
}

/* The arena of a decoded (or cs_wire_request_new) request. */
static arena_block *arena_of(Custos__Request *req) {
  return (arena_block *)((uint8_t *)req - offsetof(arena_block, data));
}

void cs_wire_request_free(Custos__Request *req) {
  if (req != NULL)
    arena_destroy(arena_of(req));
}

size_t cs_wire_request_footprint(const Custos__Request *req) {
  return req != NULL ? arena_of((Custos__Request *)req)->total : 0;
}

Custos__Request *cs_wire_request_new(size_t extra, void **tail) {
  size_t head = (sizeof(Custos__Request) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (extra > SIZE_MAX - head - sizeof(arena_block))
    return NULL;
  arena_block *b = block_new(head + extra);
  if (b == NULL)
    return NULL;
  b->used = head + extra;
  Custos__Request *r = (Custos__Request *)b->data;
  custos__request__init(r);
  *tail = b->data + head;
  return r;
}

void cs_wire_response_free(Custos__Response *res) {
  if (res == NULL)
    return;
  switch (res->result_case) {
  case CUSTOS__RESPONSE__RESULT_INIT:
    for (size_t i = 0; i < res->init->n_keys; i++)
      wipe_bytes(&res->init->keys[i]);
    if (res->init->root_token != NULL)
      mbedtls_platform_zeroize(res->init->root_token, strlen(res->init->root_token));
    break;
  case CUSTOS__RESPONSE__RESULT_REKEY:
    for (size_t i = 0; i < res->rekey->n_keys; i++)
      wipe_bytes(&res->rekey->keys[i]);
    break;
  case CUSTOS__RESPONSE__RESULT_KV_GET:
    wipe_pairs(res->kv_get->n_data, res->kv_get->data);
    break;
  case CUSTOS__RESPONSE__RESULT_KV2_GET:
    wipe_pairs(res->kv2_get->n_data, res->kv2_get->data);
    break;
  case CUSTOS__RESPONSE__RESULT_TOKEN:
    if (res->token->token != NULL)
      mbedtls_platform_zeroize(res->token->token, strlen(res->token->token));
    break;
  default: break;
  }
  custos__response__free_unpacked(res, NULL);
}

/* ---------------------------------------------------------------- strings */

size_t cs_wire_utf8_seq(const uint8_t *p, size_t avail) {
  uint8_t c = p[0];
  if (c < 0x80)
    return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    else if (c == 0xed)
      hi = 0x9f; /* U+D800..U+DFFF */
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    else if (c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (avail < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t k = 2; k < n; k++)
    if ((p[k] & 0xc0) != 0x80)
      return 0;
  return n;
}

int cs_wire_string_check(const uint8_t *s, size_t len) {
  for (size_t i = 0; i < len;) {
    if (s[i] == 0)
      return 1;
    size_t n = cs_wire_utf8_seq(s + i, len - i);
    if (n == 0)
      return 2;
    i += n;
  }
  return 0;
}

/* The varint at buf[*pos], advancing *pos; -1 when it runs past len. */
static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
    uint8_t b = buf[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80)
      return 0;
  }
  return -1;
}

#define MAX_NESTING 16 /* our schema nests 3 deep; a bound all the same */

/*
 * protobuf-c hands `string` fields over as C strings: one with an embedded
 * NUL arrives cut at the NUL ("nul/a\0b" becomes "nul/a", so a put would
 * overwrite another secret), and invalid UTF-8 is kept as is.  Neither is
 * visible in the decoded message, so this walks the ENCODED bytes of a
 * message that protobuf-c already accepted, field by field, with the
 * message's descriptor: every occurrence of every string field, at any
 * depth, repeated or not, known to the schema, is checked.  Being driven by
 * the descriptors, a field added to custos.proto is covered without a line
 * here.  Unknown fields (which protobuf-c keeps but nothing reads) are
 * skipped.  Returns 0 or CS_EPROTO naming the field.
 */
static int check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         unsigned depth) {
  if (depth > MAX_NESTING)
    return cs_error_set(CS_EPROTO, "request nests messages too deeply");
  size_t pos = 0;
  while (pos < len) {
    uint64_t key, n;
    size_t at = pos;
    /* A tag as protobuf-c reads one: at most 5 bytes, field 1..2^29-1. */
    if (read_varint(buf, len, &pos, &key) < 0 || pos - at > 5 || key >> 3 == 0 ||
        key >> 3 > 0x1fffffff)
      return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
    switch (key & 7) {
    case 0: /* varint */
      if (read_varint(buf, len, &pos, &n) < 0)
        return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
      n = 0; /* nothing more to skip */
      break;
    case 1: n = 8; break; /* 64-bit */
    case 5: n = 4; break; /* 32-bit */
    case 2: /* length-delimited: protobuf-c reads at most 5 bytes of length, up to INT_MAX */
      at = pos;
      if (read_varint(buf, len, &pos, &n) < 0 || pos - at > 5 || n > INT_MAX)
        return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
      break;
    default:
      return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
    }
    if (n > len - pos)
      return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
    const uint8_t *p = buf + pos;
    pos += (size_t)n;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
    if (f == NULL)
      continue;
    int delimited = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES ||
                    f->type == PROTOBUF_C_TYPE_MESSAGE;
    if (delimited != ((key & 7) == 2) && !(f->label == PROTOBUF_C_LABEL_REPEATED && (key & 7) == 2))
      return cs_error_set(CS_EPROTO, "field %s.%s has the wrong wire type", d->short_name, f->name);
    if ((key & 7) != 2)
      continue;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      int bad = cs_wire_string_check(p, (size_t)n);
      if (bad)
        return cs_error_set(CS_EPROTO, "string field %s.%s %s", d->short_name, f->name,
                            bad == 1 ? "contains a NUL byte" : "is not valid UTF-8");
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      int rc = check_strings(f->descriptor, p, (size_t)n, depth + 1);
      if (rc < 0)
        return rc;
    }
  }
  return 0;
}

/* Structure only: what the request means (paths, names, counts) is the
 * server's to judge, with an error that carries the request's id. */
static int validate_request(const Custos__Request *r, const uint8_t *body, size_t len) {
  if (r->op_case == CUSTOS__REQUEST__OP__NOT_SET)
    return cs_error_set(CS_EPROTO, "request carries no operation");
  return check_strings(&custos__request__descriptor, body, len, 0);
}

/*
 * Unpacks a message of `d` (len bytes) into a fresh arena.  Its first block
 * has room for a usual message: the structs and a copy of its strings and
 * bytes (measured: a 300-byte put takes under 700).  NULL with *err the
 * reason when it does not parse (0), runs past *budget (1), is out of
 * memory (-1), or laid out unexpectedly (-2).
 */
static ProtobufCMessage *arena_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                      size_t len, int *err, size_t *budget) {
  size_t cap = len <= (SIZE_MAX - ARENA_MIN) / 2 ? ARENA_MIN + len + len / 4 : len;
  *budget = ARENA_BUDGET(len) > cap ? ARENA_BUDGET(len) : cap;
  *err = 0;
  arena_block *a = block_new(cap);
  if (a == NULL) {
    *err = -1;
    return NULL;
  }
  a->budget = *budget;
  ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, len, buf);
  if (m == NULL) {
    *err = a->over;
    arena_destroy(a);
    return NULL;
  }
  if ((void *)m != (void *)a->data) { /* protobuf-c took something else first */
    arena_destroy(a);
    *err = -2;
    return NULL;
  }
  return m;
}

int cs_wire_decode_request(const uint8_t *body, size_t len, Custos__Request **out) {
  int over;
  size_t budget;
  Custos__Request *r =
      (Custos__Request *)arena_unpack(&custos__request__descriptor, body, len, &over, &budget);
  if (r == NULL) {
    if (over == -1)
      return cs_error_set(CS_ENOMEM, "out of memory decoding a request of %zu bytes", len);
    if (over == -2)
      return cs_error_set(CS_EINTERNAL, "protobuf-c laid the request out unexpectedly");
    if (over > 0)
      return cs_error_set(CS_ETOOBIG, "request of %zu bytes unpacks into more than %zu bytes",
                          len, budget);
    return cs_error_set(CS_EPROTO, "request is not a valid protobuf Request");
  }
  int rc = validate_request(r, body, len);
  if (rc < 0) {
    cs_wire_request_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int cs_wire_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                   ProtobufCMessage **out) {
  int err;
  size_t budget;
  *out = arena_unpack(d, buf, len, &err, &budget);
  if (*out != NULL)
    return 0;
  if (err == -1)
    return cs_error_set(CS_ENOMEM, "out of memory decoding a %zu-byte %s", len, d->short_name);
  if (err > 0)
    return cs_error_set(CS_ETOOBIG, "a %zu-byte %s unpacks into too many pieces", len,
                        d->short_name);
  return cs_error_set(CS_EPROTO, "not a valid protobuf %s", d->short_name);
}

int cs_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len) {
  return check_strings(d, buf, len, 0);
}

void cs_wire_unpacked_free(ProtobufCMessage *m) {
  if (m != NULL)
    arena_destroy((arena_block *)((uint8_t *)m - offsetof(arena_block, data)));
}

int cs_wire_decode_response(const uint8_t *body, size_t len, Custos__Response **out) {
  Custos__Response *r = custos__response__unpack(NULL, len, body);
  if (r == NULL)
    return cs_error_set(CS_EPROTO, "response is not a valid protobuf Response");
  *out = r;
  return 0;
}

size_t cs_wire_put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

uint8_t *cs_wire_encode(const ProtobufCMessage *msg, size_t *frame_len) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(CS_WIRE_HDR + n);
  if (buf == NULL)
    return NULL;
  cs_wire_put_header(buf, (uint32_t)n);
  protobuf_c_message_pack(msg, buf + CS_WIRE_HDR);
  *frame_len = CS_WIRE_HDR + n;
  return buf;
}
