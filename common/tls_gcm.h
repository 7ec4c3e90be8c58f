/*
 * tls_gcm: the AES-256-GCM of TLS records on libsodium's AES-NI/PCLMUL code.
 *
 * mbedTLS 2.28 runs GCM one 16-byte block at a time: about 1.1 us for a
 * 300-byte record here, against 0.22 us for libsodium 1.0.18's 8-block
 * code (docs/performance.md, session 10).  Its cipher layer has no way to
 * plug in another GCM, so the binaries link libmbedtls statically and the
 * linker redirects (`-Wl,--wrap`, CMakeLists.txt) the calls its record
 * layer makes into the cipher layer:
 *
 *   mbedtls_cipher_init, _setup     a context starts over: no state
 *   mbedtls_cipher_setkey           keys a record cipher: an AES-256-GCM
 *                                   context also gets a libsodium state
 *   mbedtls_cipher_auth_encrypt_ext a record out: on that state when it
 *   mbedtls_cipher_auth_decrypt_ext a record in:  has one, else mbedTLS
 *   mbedtls_cipher_free             the state is wiped and freed
 *
 * The bytes are those of mbedTLS (same algorithm; tests/unit/test_tls_gcm.c
 * checks both ways and a real handshake), so a peer sees no difference.
 * Anything else (AES-128, ChaCha20-Poly1305, a CPU without AES-NI, an IV
 * or tag of another size, an allocation that failed) stays on mbedTLS,
 * whose context is keyed as always: the redirect can only make a record
 * faster, never change what it is.  The policy (tls_policy.c) puts the
 * AES-256-GCM suites first when this path is available.
 *
 * The cost of linking libmbedtls in: a security update of Debian's
 * libmbedtls14 reaches custos only once it is rebuilt (custosd logs the
 * versions at start, and warns when the shared libmbedcrypto it runs with
 * is not the one it was built with: cs_tls_gcm_versions).
 */
#ifndef CS_TLS_GCM_H
#define CS_TLS_GCM_H

#include <stddef.h>
#include <stdint.h>

/* 1 when TLS records under AES-256-GCM run on libsodium (the CPU has
 * AES-NI and PCLMUL), else 0. */
int cs_tls_gcm_available(void);
/* Records sealed or opened on libsodium so far, in this process (tests). */
uint64_t cs_tls_gcm_records(void);
/*
 * The mbedTLS the record layer was built from (linked in) and the one the
 * shared libmbedcrypto reports, as "2.28.3"; 1 when they differ (a
 * security update was installed since the build: rebuild), else 0.
 */
int cs_tls_gcm_versions(char built[18], char running[18]);
/* Cipher contexts holding a libsodium state now (tests: none leaks). */
size_t cs_tls_gcm_states(void);

#endif
