/*
 * tls_policy: the one TLS policy of the project, built by three profiles:
 *
 *  - server: the API listener (server/net/tls.c); a client certificate is
 *    required only when a client CA is given;
 *  - mutual: both ends of a cluster connection (server/ha/raft_tls.c):
 *    each end presents its certificate and requires one signed by the
 *    cluster CA;
 *  - client: a client of the API (client/lib, the CLI, the bench): the
 *    server's certificate is verified against a CA (a NULL CA turns
 *    verification off, for explicit "insecure" options only), with an
 *    optional client certificate.
 *
 * One library (common/, custos_common) linked by the server and the
 * clients, so a policy change reaches every end at once.
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
 * The three profiles.  Each initializes `conf` (mbedtls_ssl_config_init
 * included) with the policy and the random generator `drbg`; the caller
 * frees conf with mbedtls_ssl_config_free, also on failure.  Every object
 * passed in must outlive conf.  Return 0 or CS_ETLS with a detail.
 *
 * server: own certificate `chain` + `key` (required); `client_ca` NULL: no
 * client certificate asked for; else one that chains to it is required.
 */
int cs_tls_policy_server(mbedtls_ssl_config *conf, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *chain, mbedtls_pk_context *key,
                         mbedtls_x509_crt *client_ca) __attribute__((warn_unused_result));
/* mutual: `endpoint` MBEDTLS_SSL_IS_SERVER or _CLIENT; own certificate and
 * key and the CA (all required): the peer's certificate must chain to it. */
int cs_tls_policy_mutual(mbedtls_ssl_config *conf, int endpoint, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *chain, mbedtls_pk_context *key, mbedtls_x509_crt *ca)
    __attribute__((warn_unused_result));
/* client: `ca` verifies the server (NULL: no verification, for an explicit
 * insecure option only); `chain` + `key` a client certificate (both NULL:
 * none).  The caller adds its own verify callback (IP SANs, which mbedTLS
 * 2.28 does not match) and hostname. */
int cs_tls_policy_client(mbedtls_ssl_config *conf, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *ca, mbedtls_x509_crt *chain, mbedtls_pk_context *key)
    __attribute__((warn_unused_result));

#endif
