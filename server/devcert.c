/*
 * devcert: the self-signed development certificate.  See devcert.h.
 *
 * mbedTLS 2.28 has no helper for subjectAltName, so the extension's DER is
 * written here with the mbedtls_asn1_write_* functions (they write
 * backwards, from the end of the buffer).  basicConstraints is written the
 * same way so that it can be marked critical, which strict verifiers
 * (OpenSSL's X509_V_FLAG_X509_STRICT, Python 3.13's default) require of a
 * CA certificate.  The private key PEM is wiped from memory after writing.
 */
#include "devcert.h"
#include "cs_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#define CHK(expr)                                                                                  \
  do {                                                                                             \
    if ((ret = (expr)) < 0)                                                                        \
      goto mbed_fail;                                                                              \
  } while (0)

/* SubjectAltName ::= SEQUENCE { [2] dNSName "localhost", [7] iPAddress 127.0.0.1 } */
static int write_san(unsigned char *buf, size_t cap, unsigned char **start) {
  static const unsigned char ip[4] = {127, 0, 0, 1};
  static const char dns[] = "localhost";
  unsigned char *p = buf + cap;
  size_t len = 0;
  int ret;
  CHK(mbedtls_asn1_write_raw_buffer(&p, buf, ip, sizeof ip));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_len(&p, buf, sizeof ip));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)dns, sizeof dns - 1));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_len(&p, buf, sizeof dns - 1));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_len(&p, buf, len));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  len += (size_t)ret;
  *start = p;
  return (int)len;
mbed_fail:
  return ret;
}

/* BasicConstraints ::= SEQUENCE { cA BOOLEAN TRUE } */
static int write_basic_constraints(unsigned char *buf, size_t cap, unsigned char **start) {
  unsigned char *p = buf + cap;
  size_t len = 0;
  int ret;
  CHK(mbedtls_asn1_write_bool(&p, buf, 1));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_len(&p, buf, len));
  len += (size_t)ret;
  CHK(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  len += (size_t)ret;
  *start = p;
  return (int)len;
mbed_fail:
  return ret;
}

/* Writes `path` through a temporary file and rename(), with `mode`. */
static int write_file(const char *path, const void *data, size_t len, mode_t mode) {
  char tmp[4096 + 8];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return cs_error_set(CS_EINVAL, "path too long: %s", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return cs_error_set(CS_EIO, "cannot create %s: %s", tmp, strerror(errno));
  const unsigned char *p = data;
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, p + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return cs_error_set(CS_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    off += (size_t)n;
  }
  /* O_CREAT honours the umask and keeps an old file's mode: set it. */
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    return cs_error_set(CS_EIO, "cannot write %s: %s", tmp, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return cs_error_set(CS_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  return 0;
}

static void fmt_time(time_t t, char out[16]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

int cs_devcert_generate(const char *dir, char *cert_path, char *key_path, size_t cap) {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_pk_context key;
  mbedtls_x509write_cert crt;
  mbedtls_mpi serial;
  unsigned char key_pem[1024];
  unsigned char crt_pem[4096];
  unsigned char ext[128];
  unsigned char serial_bytes[16];
  char not_before[16], not_after[16];
  char why[160];
  int ret = 0, rc = 0;

  if (snprintf(cert_path, cap, "%s/server.crt", dir) >= (int)cap ||
      snprintf(key_path, cap, "%s/server.key", dir) >= (int)cap)
    return cs_error_set(CS_EINVAL, "directory path too long: %s", dir);

  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_pk_init(&key);
  mbedtls_x509write_crt_init(&crt);
  mbedtls_mpi_init(&serial);

  static const char pers[] = "custosd devcert";
  CHK(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)pers,
                            sizeof pers - 1));
  CHK(mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)));
  CHK(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_ctr_drbg_random,
                          &drbg));

  /* A random positive 127-bit serial (RFC 5280: positive, at most 20 bytes). */
  CHK(mbedtls_ctr_drbg_random(&drbg, serial_bytes, sizeof serial_bytes));
  serial_bytes[0] &= 0x7f;
  serial_bytes[0] |= 0x01;
  CHK(mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes));

  time_t now = time(NULL);
  fmt_time(now - 3600, not_before);
  fmt_time(now + 365 * 24 * 3600, not_after);

  mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&crt, &key);
  mbedtls_x509write_crt_set_issuer_key(&crt, &key);
  CHK(mbedtls_x509write_crt_set_serial(&crt, &serial));
  CHK(mbedtls_x509write_crt_set_subject_name(&crt, "CN=custos-dev"));
  CHK(mbedtls_x509write_crt_set_issuer_name(&crt, "CN=custos-dev"));
  CHK(mbedtls_x509write_crt_set_validity(&crt, not_before, not_after));

  unsigned char *der;
  CHK(write_basic_constraints(ext, sizeof ext, &der));
  CHK(mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_BASIC_CONSTRAINTS,
                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS), 1, der,
                                          (size_t)ret));
  CHK(mbedtls_x509write_crt_set_key_usage(
      &crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_CERT_SIGN));
  CHK(mbedtls_x509write_crt_set_subject_key_identifier(&crt));
  CHK(mbedtls_x509write_crt_set_authority_key_identifier(&crt));
  CHK(write_san(ext, sizeof ext, &der));
  CHK(mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, der,
                                          (size_t)ret));

  CHK(mbedtls_x509write_crt_pem(&crt, crt_pem, sizeof crt_pem, mbedtls_ctr_drbg_random, &drbg));
  CHK(mbedtls_pk_write_key_pem(&key, key_pem, sizeof key_pem));

  /* Key first: a certificate without its key is useless. */
  rc = write_file(key_path, key_pem, strlen((char *)key_pem), 0600);
  if (rc == 0)
    rc = write_file(cert_path, crt_pem, strlen((char *)crt_pem), 0644);
  goto out;

mbed_fail:
  mbedtls_strerror(ret, why, sizeof why);
  rc = cs_error_set(CS_ECRYPTO, "cannot generate the development certificate: %s", why);
out:
  mbedtls_platform_zeroize(key_pem, sizeof key_pem);
  mbedtls_mpi_free(&serial);
  mbedtls_x509write_crt_free(&crt);
  mbedtls_pk_free(&key);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return rc;
}
