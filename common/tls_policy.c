/* tls_policy: the one TLS policy and its three profiles.  See tls_policy.h. */
#include "tls_policy.h"
#include "cs_error.h"
#include "tls_gcm.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/error.h>

/* TLS 1.2 ECDHE with AEAD only: forward secrecy, no CBC, no RSA key
 * exchange.  The same suites in two orders: AES-128-GCM first is the
 * faster on mbedTLS alone; AES-256-GCM first where its records run on
 * libsodium (tls_gcm.h), five times faster still.  A server picks by its
 * own order. */
static const int ciphersuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};
static const int ciphersuites_aes256_first[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const mbedtls_ecp_group_id curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

/* Why a file could not be used: errno's text when it cannot be opened
 * (clearer than mbedTLS's "file read/write error"), else the mbedTLS
 * reason. */
static const char *file_reason(const char *path, int ret, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(buf, cap, "%s", strerror(errno));
    return buf;
  }
  fclose(f);
  if (ret > 0) {
    snprintf(buf, cap, "%d certificate(s) in the file could not be parsed", ret);
    return buf;
  }
  mbedtls_strerror(ret, buf, cap);
  return buf;
}

int cs_tls_policy_load_pair(mbedtls_x509_crt *chain, mbedtls_pk_context *key,
                            const char *cert_file, const char *key_file, const char *what) {
  char why[256];
  if (cert_file == NULL || key_file == NULL)
    return cs_error_set(CS_ETLS, "a %s certificate and key are required", what);
  int ret = mbedtls_x509_crt_parse_file(chain, cert_file);
  if (ret != 0)
    return cs_error_set(CS_ETLS, "cannot read %s certificate %s: %s", what, cert_file,
                        file_reason(cert_file, ret, why, sizeof why));
  ret = mbedtls_pk_parse_keyfile(key, key_file, NULL);
  if (ret != 0)
    return cs_error_set(CS_ETLS, "cannot read %s key %s: %s", what, key_file,
                        file_reason(key_file, ret, why, sizeof why));
  if (mbedtls_pk_check_pair(&chain->pk, key) != 0)
    return cs_error_set(CS_ETLS, "%s key %s does not match the certificate %s", what, key_file,
                        cert_file);
  return 0;
}

int cs_tls_policy_load_ca(mbedtls_x509_crt *ca, const char *ca_file, const char *what) {
  char why[256];
  int ret = mbedtls_x509_crt_parse_file(ca, ca_file);
  if (ret != 0)
    return cs_error_set(CS_ETLS, "cannot read %s CA %s: %s", what, ca_file,
                        file_reason(ca_file, ret, why, sizeof why));
  return 0;
}

/* The policy itself: versions, suites, curves, random generator. */
static int base(mbedtls_ssl_config *conf, int endpoint, mbedtls_ctr_drbg_context *drbg) {
  char why[128];
  mbedtls_ssl_config_init(conf);
  int ret = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) {
    mbedtls_strerror(ret, why, sizeof why);
    return cs_error_set(CS_ETLS, "cannot set up TLS: %s", why);
  }
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(conf, cs_tls_gcm_available() ? ciphersuites_aes256_first
                                                             : ciphersuites);
  mbedtls_ssl_conf_curves(conf, curves);
  mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, drbg);
  return 0;
}

static int own_cert(mbedtls_ssl_config *conf, mbedtls_x509_crt *chain, mbedtls_pk_context *key) {
  char why[128];
  int ret = mbedtls_ssl_conf_own_cert(conf, chain, key);
  if (ret != 0) {
    mbedtls_strerror(ret, why, sizeof why);
    return cs_error_set(CS_ETLS, "cannot use the TLS certificate: %s", why);
  }
  return 0;
}

/* A peer without a certificate that chains to `ca` fails the handshake:
 * it never reaches the layer above. */
static void require_peer(mbedtls_ssl_config *conf, mbedtls_x509_crt *ca) {
  mbedtls_ssl_conf_ca_chain(conf, ca, NULL);
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
}

int cs_tls_policy_server(mbedtls_ssl_config *conf, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *chain, mbedtls_pk_context *key,
                         mbedtls_x509_crt *client_ca) {
  assert(chain != NULL && key != NULL);
  int rc = base(conf, MBEDTLS_SSL_IS_SERVER, drbg);
  if (rc == 0)
    rc = own_cert(conf, chain, key);
  if (rc < 0)
    return rc;
  if (client_ca != NULL)
    require_peer(conf, client_ca);
  else
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
  return 0;
}

int cs_tls_policy_mutual(mbedtls_ssl_config *conf, int endpoint, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *chain, mbedtls_pk_context *key, mbedtls_x509_crt *ca) {
  assert(chain != NULL && key != NULL && ca != NULL);
  assert(endpoint == MBEDTLS_SSL_IS_SERVER || endpoint == MBEDTLS_SSL_IS_CLIENT);
  int rc = base(conf, endpoint, drbg);
  if (rc == 0)
    rc = own_cert(conf, chain, key);
  if (rc < 0)
    return rc;
  require_peer(conf, ca);
  return 0;
}

int cs_tls_policy_client(mbedtls_ssl_config *conf, mbedtls_ctr_drbg_context *drbg,
                         mbedtls_x509_crt *ca, mbedtls_x509_crt *chain, mbedtls_pk_context *key) {
  assert((chain == NULL) == (key == NULL));
  int rc = base(conf, MBEDTLS_SSL_IS_CLIENT, drbg);
  if (rc == 0 && chain != NULL)
    rc = own_cert(conf, chain, key);
  if (rc < 0)
    return rc;
  if (ca != NULL)
    require_peer(conf, ca);
  else
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
  return 0;
}
