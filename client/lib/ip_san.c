/* ip_san: iPAddress subjectAltName matching.  See ip_san.h. */
#include "ip_san.h"

#include <string.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

/* Walks a GeneralNames SEQUENCE (the extnValue of subjectAltName). */
static int general_names_match(unsigned char *p, const unsigned char *end,
                               const unsigned char *ip, size_t iplen) {
  size_t len;
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
    return 0;
  if (len != (size_t)(end - p))
    return 0;
  while (p < end) {
    unsigned char tag = *p++;
    if (mbedtls_asn1_get_len(&p, end, &len) != 0)
      return 0;
    /* iPAddress [7] IMPLICIT OCTET STRING: context-specific, primitive. */
    if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == iplen && memcmp(p, ip, iplen) == 0)
      return 1;
    p += len;
  }
  return 0;
}

int cs_x509_ip_san_match(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t iplen) {
  if (crt == NULL || crt->v3_ext.p == NULL || crt->v3_ext.len == 0 || (iplen != 4 && iplen != 16))
    return 0;
  unsigned char *p = crt->v3_ext.p;
  const unsigned char *end = p + crt->v3_ext.len;
  size_t len;

  /* mbedTLS 2.28 points v3_ext past the [3] EXPLICIT wrapper, at the
   * Extensions SEQUENCE.  Accept the wrapper too, in case that changes. */
  if (*p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3)) {
    if (mbedtls_asn1_get_tag(&p, end, &len,
                             MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3) != 0)
      return 0;
    end = p + len;
  }
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
    return 0;
  end = p + len;

  static const char san_oid[] = MBEDTLS_OID_SUBJECT_ALT_NAME;
  while (p < end) {
    /* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
     *                          extnValue OCTET STRING } */
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
      return 0;
    unsigned char *ext_end = p + len;
    size_t oid_len;
    if (mbedtls_asn1_get_tag(&p, ext_end, &oid_len, MBEDTLS_ASN1_OID) != 0)
      return 0;
    int is_san = oid_len == sizeof san_oid - 1 && memcmp(p, san_oid, oid_len) == 0;
    p += oid_len;
    if (is_san) {
      int critical;
      if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN &&
          mbedtls_asn1_get_bool(&p, ext_end, &critical) != 0)
        return 0;
      if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
        return 0;
      if (p + len != ext_end)
        return 0;
      /* A certificate has at most one subjectAltName extension. */
      return general_names_match(p, ext_end, ip, iplen);
    }
    p = ext_end;
  }
  return 0;
}
