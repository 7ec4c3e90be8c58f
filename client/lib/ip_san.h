/*
 * ip_san: matching an IP address against a certificate's iPAddress
 * subjectAltNames.
 *
 * mbedTLS 2.28 only checks a hostname against dNSName SANs and the CN, and
 * its parsed `subject_alt_names` list keeps only dNSName and otherName
 * entries.  So this module walks the raw extensions (crt->v3_ext) with the
 * mbedtls_asn1 functions, finds subjectAltName (2.5.29.17) and compares every
 * iPAddress entry ([7] IMPLICIT OCTET STRING, 4 or 16 bytes) with the address.
 */
#ifndef CS_IP_SAN_H
#define CS_IP_SAN_H

#include <stddef.h>
#include <mbedtls/x509_crt.h>

/*
 * Returns 1 when `crt` (the leaf only; the chain is not followed) has an
 * iPAddress SAN equal to the `len` (4 or 16) bytes at `ip`, 0 when it has
 * none that matches or the extensions cannot be parsed.
 */
int cs_x509_ip_san_match(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t len)
    __attribute__((warn_unused_result));

#endif
