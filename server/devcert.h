/*
 * devcert: a throwaway TLS identity for `custosd --dev`.
 *
 * Generates a P-256 key and a self-signed certificate (CN=custos-dev,
 * CA:TRUE so it can be its own trust anchor, subjectAltName DNS:localhost
 * and IP:127.0.0.1, valid from an hour ago for one year) and writes them
 * as PEM to DIR/server.crt and DIR/server.key (mode 0600).  A client
 * trusts it with `--ca-file DIR/server.crt`.  Never for production.
 */
#ifndef CS_DEVCERT_H
#define CS_DEVCERT_H

#include <stddef.h>

/*
 * Writes DIR/server.crt and DIR/server.key, replacing existing files, and
 * copies their paths into cert_path and key_path (each `cap` bytes).
 * Returns 0, CS_EINVAL when a path does not fit, CS_EIO (with the file and
 * errno text) or CS_ECRYPTO with a detail.
 */
int cs_devcert_generate(const char *dir, char *cert_path, char *key_path, size_t cap)
    __attribute__((warn_unused_result));

#endif
