/*
 * wire: the frame codec shared by custosd and the client library.
 *
 * A frame is a 4-byte big-endian length then that many bytes of protobuf.
 * Limits are checked on the length prefix, BEFORE anything is unpacked:
 * protobuf-c can amplify a small message into a large heap (see
 * docs/protocol.md), so the caller passes the limit that applies now
 * (tighter before a token has been accepted on the connection).
 */
#ifndef CS_WIRE_H
#define CS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "custos.pb-c.h"

#define CS_WIRE_HDR 4
#define CS_WIRE_MAX_PREAUTH (64u * 1024u)        /* before a token is accepted */
#define CS_WIRE_MAX_DEFAULT (4u * 1024u * 1024u) /* after; configurable */
#define CS_WIRE_MAX_ABS (64u * 1024u * 1024u)    /* never above this */

/*
 * Looks at the start of a receive buffer.  Returns 1 and sets *body_len when
 * a whole frame is present (header + body), 0 when more bytes are needed,
 * CS_ETOOBIG when the announced length exceeds `max`.
 */
int cs_wire_frame_check(const uint8_t *buf, size_t len, size_t max, size_t *body_len)
    __attribute__((warn_unused_result));

/* Writes the 4-byte header for a body of `len` bytes. */
void cs_wire_put_header(uint8_t hdr[CS_WIRE_HDR], uint32_t len);

/*
 * Unpacks and validates a Request body: an operation must be present, and
 * every `string` field, wherever it sits, must be valid UTF-8 without a NUL
 * byte (checked on the encoded bytes: protobuf-c would silently cut a
 * string at a NUL).  Returns 0 and *out (free with cs_wire_request_free), or
 * CS_EPROTO with a detail; the server answers that with id 0 and closes.
 * CS_ETOOBIG: its pieces would take more than 64 times its size (plus
 * 64 KiB); CS_ENOMEM.
 */
int cs_wire_decode_request(const uint8_t *body, size_t len, Custos__Request **out)
    __attribute__((warn_unused_result));
/* Length (1..4) of the valid UTF-8 sequence at p (avail bytes readable), or
 * 0 when the bytes at p do not start one (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF).  The one UTF-8 rule of custos. */
size_t cs_wire_utf8_seq(const uint8_t *p, size_t avail);

/* 0 when s[0..len) is valid UTF-8 (RFC 3629) without a NUL byte; 1 when it
 * holds a NUL, 2 when it is not valid UTF-8. */
int cs_wire_string_check(const uint8_t *s, size_t len) __attribute__((warn_unused_result));

/* Wipes all the request's memory (token, shares, values, strings) and
 * frees it.  Only for requests of cs_wire_decode_request or
 * cs_wire_request_new. */
void cs_wire_request_free(Custos__Request *req);

/* The bytes of memory the request holds (its arena's blocks). */
size_t cs_wire_request_footprint(const Custos__Request *req);

/* A request (custos__request__init'ed) for code that builds one by hand to
 * hand it on like a decoded one, with `extra` more bytes in the same block
 * at *tail (aligned to 16) for its pieces; NULL when out of memory.  Free
 * with cs_wire_request_free. */
Custos__Request *cs_wire_request_new(size_t extra, void **tail);

/*
 * Unpacks a stored record (a secret's KvData, a TokenEntry) into one arena,
 * as cs_wire_decode_request does a request: one malloc instead of one per
 * piece, and cs_wire_unpacked_free wipes every byte the message held.
 * 0 and *out; CS_EPROTO when buf does not parse as a message of `d`,
 * CS_ENOMEM, or CS_ETOOBIG (pieces past 64 times its size plus 64 KiB).
 * Free only with cs_wire_unpacked_free, never protobuf-c's free_unpacked.
 */
int cs_wire_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                   ProtobufCMessage **out) __attribute__((warn_unused_result));
void cs_wire_unpacked_free(ProtobufCMessage *m);

/*
 * Whether buf is a well-formed message of `d` without unpacking it (no
 * allocation): tags and lengths as protobuf-c reads them, every field in
 * bounds, the known string, bytes and message fields length-delimited,
 * and every string, at any depth, valid UTF-8 without a NUL (as a
 * request's are).  0 or CS_EPROTO.  It accepts nothing protobuf-c's unpack
 * refuses only for messages whose fields are all strings, bytes and
 * messages (a KvData, checked by fuzz_storage): the wire types of scalar
 * fields and the contents of packed ones are not looked at.
 */
int cs_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

/* Writes v as a protobuf varint at out (room for CS_WIRE_VARINT_MAX
 * bytes); returns its length. */
#define CS_WIRE_VARINT_MAX 10
size_t cs_wire_put_varint(uint8_t *out, uint64_t v);

/* Unpacks a Response body (client side).  Same contract as above. */
int cs_wire_decode_response(const uint8_t *body, size_t len, Custos__Response **out)
    __attribute__((warn_unused_result));
void cs_wire_response_free(Custos__Response *res);

/*
 * Packs a message with its frame header into a fresh malloc'd buffer.
 * Returns NULL on allocation failure.
 */
uint8_t *cs_wire_encode(const ProtobufCMessage *msg, size_t *frame_len);

#endif
