/*
 * age: the age v1 file format (c2sp.org/age) on mbedTLS 2.28, for the key
 * ceremonies: the server encrypts each new share to its holder's X25519
 * recipient, and the CLI decrypts a share with the holder's identity file.
 *
 * Only what a ceremony needs: X25519 recipients (`age1...`) and identities
 * (`AGE-SECRET-KEY-1...`), in-memory files, the binary format and the ASCII
 * armor.  Other stanza types (scrypt, plugins, post-quantum) are parsed and
 * skipped, so a file that also names them still opens with an X25519
 * identity.  Parsing is strict: whatever the real `age` refuses, this module
 * refuses with a CS_EAGE* code, and it never reads past the buffer it is
 * given.  Decryption is all or nothing: no plaintext is released unless
 * every chunk authenticated and the final-chunk flag is where it must be.
 *
 * Secrets (identities, file keys, payload keys, plaintexts returned) are
 * wiped with mbedtls_platform_zeroize; MACs and tags are compared in
 * constant time.  Randomness comes from the kernel (getrandom), so the
 * module stands alone on the client side too.
 */
#ifndef CS_AGE_H
#define CS_AGE_H

#include <stddef.h>
#include <stdint.h>

#define CS_AGE_KEY_LEN 32
/* "age1" + 52 data characters + 6 checksum characters. */
#define CS_AGE_RECIPIENT_STRLEN 62
/* "AGE-SECRET-KEY-1" + 52 + 6. */
#define CS_AGE_IDENTITY_STRLEN 74
/* The most recipients one file may name (and identities one file may hold). */
#define CS_AGE_MAX_KEYS 64

typedef struct {
  uint8_t pub[CS_AGE_KEY_LEN]; /* X25519 public key (u coordinate, little endian) */
} cs_age_recipient;

typedef struct {
  uint8_t secret[CS_AGE_KEY_LEN]; /* X25519 scalar as stored (unclamped) */
  uint8_t pub[CS_AGE_KEY_LEN];    /* derived from secret */
} cs_age_identity;

/* Parses one `age1...` recipient of exactly n bytes (lower case, no
 * surrounding space).  0 or CS_EAGEKEY (bad characters, mixed case, wrong
 * HRP, checksum, padding or length). */
int cs_age_recipient_parse(cs_age_recipient *r, const char *s, size_t n)
    __attribute__((warn_unused_result));
/* Writes the `age1...` form and a NUL into out. */
void cs_age_recipient_format(const cs_age_recipient *r, char out[CS_AGE_RECIPIENT_STRLEN + 1]);

/* Parses a recipients list: one `age1...` per line, blank lines and lines
 * starting with '#' ignored, spaces around a recipient ignored (the format
 * of `age -R`).  Stores up to cap recipients; 0, CS_EAGEKEY (the detail
 * names the line), CS_ELIMIT (more than cap) or CS_EINVAL (none at all). */
int cs_age_recipients_parse_text(cs_age_recipient *out, size_t cap, size_t *count,
                                 const char *text, size_t n) __attribute__((warn_unused_result));

/* Parses one `AGE-SECRET-KEY-1...` identity of n bytes and derives its
 * public key.  0, CS_EAGEKEY or CS_ECRYPTO.  The caller wipes *id
 * (cs_age_identity_wipe) when done. */
int cs_age_identity_parse(cs_age_identity *id, const char *s, size_t n)
    __attribute__((warn_unused_result));
/* Parses an identity file as written by `age-keygen`: `#` comment lines and
 * blank lines ignored, every other line one identity.  Stores up to cap
 * identities; 0, CS_EAGEKEY (the detail names the line, never its text),
 * CS_ELIMIT or CS_EINVAL (no identity). */
int cs_age_identity_parse_text(cs_age_identity *out, size_t cap, size_t *count,
                               const char *text, size_t n) __attribute__((warn_unused_result));
/* A fresh random identity.  0 or CS_ECRYPTO. */
int cs_age_identity_generate(cs_age_identity *id) __attribute__((warn_unused_result));
/* Writes the `AGE-SECRET-KEY-1...` form and a NUL (secret: wipe it after). */
void cs_age_identity_format(const cs_age_identity *id, char out[CS_AGE_IDENTITY_STRLEN + 1]);
void cs_age_identity_to_recipient(const cs_age_identity *id, cs_age_recipient *r);
void cs_age_identity_wipe(cs_age_identity *id);

/*
 * Encrypts pt (n bytes) to each of the nr recipients (1..CS_AGE_MAX_KEYS),
 * in ASCII armor when `armor` is set.  On success *out is a malloc'ed
 * buffer of *out_len bytes (ciphertext, not secret: free() it).  0,
 * CS_EINVAL, CS_ENOMEM or CS_ECRYPTO; nothing is allocated on failure.
 */
int cs_age_encrypt(const cs_age_recipient *r, size_t nr, const uint8_t *pt, size_t n, int armor,
                   uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));

/*
 * Decrypts an age file (binary, or armored: detected as the real age does)
 * with the first of the nid identities that opens an X25519 stanza.  On
 * success *pt is a malloc'ed buffer of *pt_len bytes (never NULL, even for
 * an empty plaintext) that the caller releases with cs_age_free.  Errors:
 * CS_EAGEARMOR, CS_EAGEVERSION, CS_EAGEHEADER, CS_EAGENOMATCH, CS_EAGEMAC,
 * CS_EAGEPAYLOAD, CS_ENOMEM, CS_ECRYPTO; nothing is released on failure.
 */
int cs_age_decrypt(const cs_age_identity *ids, size_t nid, const uint8_t *in, size_t n,
                   uint8_t **pt, size_t *pt_len) __attribute__((warn_unused_result));

/* Wipes and frees a plaintext returned by cs_age_decrypt (NULL is fine). */
void cs_age_free(uint8_t *pt, size_t n);

/* Lower level, for the tests: X25519 (RFC 7748) of scalar k (clamped
 * here) and u coordinate u (top bit ignored).  0, CS_EAGEKEY for a point
 * mbedTLS refuses (low order), or CS_ECRYPTO. */
int cs_age_x25519(uint8_t out[32], const uint8_t k[32], const uint8_t u[32])
    __attribute__((warn_unused_result));

#endif
