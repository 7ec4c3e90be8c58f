/*
 * tls_policy: the one TLS policy of custosd, for the API listener (tls.c)
 * and both ends of the cluster connections (ha/raft_tls.c).
 *
 * TLS 1.2 only (mbedTLS 2.28 has no 1.3), ECDHE key exchange with AEAD
 * suites only (forward secrecy, no CBC, no RSA key exchange), curves
 * X25519 / P-256 / P-384, and a key that must match its certificate.  Who
 * must present a certificate is the caller's choice (`ca` NULL: nobody).
 * Keeping the policy in one place means a change to it (a suite dropped, a
 * curve added) reaches every port at once.
 */
#ifndef CS_TLS_POLICY_H
#define CS_TLS_POLICY_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

/*
 * Loads a certificate chain and its private key and checks that they
 * belong together.  `what` names them in errors ("TLS", "cluster TLS").
 * Returns 0 or CS_ETLS with a detail such as "cannot read TLS certificate
 * /x.crt: No such file or directory".
 */
int cs_tls_policy_load_pair(mbedtls_x509_crt *chain, mbedtls_pk_context *key,
                            const char *cert_file, const char *key_file, const char *what)
    __attribute__((warn_unused_result));
/* Loads a CA file.  0 or CS_ETLS ("cannot read <what> CA <file>: ..."). */
int cs_tls_policy_load_ca(mbedtls_x509_crt *ca, const char *ca_file, const char *what)
    __attribute__((warn_unused_result));

/*
 * Initializes `conf` (endpoint MBEDTLS_SSL_IS_SERVER or _CLIENT) with the
 * policy, the random generator, the own certificate and key, and, when `ca`
 * is not NULL, a mandatory peer certificate verified against it.  The
 * caller frees conf with mbedtls_ssl_config_free (also on failure).
 * Returns 0 or CS_ETLS with a detail.
 */
int cs_tls_policy_config(mbedtls_ssl_config *conf, int endpoint, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *chain, mbedtls_pk_context *key, mbedtls_x509_crt *ca)
    __attribute__((warn_unused_result));

#endif
