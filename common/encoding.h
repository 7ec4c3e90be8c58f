/*
 * encoding: hex and base64 for key material, shared by the server, the
 * client library and the CLI.
 *
 * Invariant: the time taken depends on the lengths only, never on the
 * values of the bytes or digits (no table lookup, no branch on a digit):
 * key shares, tokens and root keys pass through here.  Hex digits are
 * computed and validated with libsodium's masks, base64 by mbedTLS 2.28's
 * constant-time codec (mbedtls_ct_base64_*).  A decoder reports a bad
 * digit only after it looked at every digit, and wipes what it wrote.
 */
#ifndef CS_ENCODING_H
#define CS_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* Characters of the encodings of n bytes, without the terminator. */
#define CS_HEX_LEN(n) (2 * (n))
#define CS_B64_LEN(n) (4 * (((n) + 2) / 3))

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated).
 * Constant time in the data. */
void cs_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes hex (either case).  0, or CS_EINVAL for odd length, a bad digit or
 * more than `cap` bytes.  Constant time in the digit values. */
int cs_hex_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));
/* Standard base64 with padding; out has room for CS_B64_LEN(n)+1. */
void cs_b64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes canonical standard base64 (padding, no whitespace).  0, or
 * CS_EINVAL for a bad character, length or more than `cap` bytes. */
int cs_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len)
    __attribute__((warn_unused_result));


#endif
