/*
 * Unit tests for common/age: the C2SP CCTV age test vectors (every X25519,
 * armor, header, stanza, HMAC and STREAM vector, in tests/unit/age_vectors),
 * RFC 7748 X25519, Bech32 keys (age-keygen's output, bad checksums, case),
 * round trips of every chunk-boundary size to several recipients, and the
 * rejection of every single-byte change and every truncation of a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <mbedtls/sha256.h>
#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#include "age.h"
#include "cs_error.h"

#ifndef AGE_VECTORS
#error "AGE_VECTORS (the directory of the CCTV vectors) must be defined"
#endif

/* age-keygen -y of the CCTV identity. */
static const char VEC_IDENTITY[] =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
static const char VEC_RECIPIENT[] = "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef";

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0, r;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    r = fread(buf + n, 1, cap - n, f);
    n += r;
  } while (r > 0);
  fclose(f);
  *len = n;
  return buf;
}

#ifdef HAVE_ZLIB
static uint8_t *inflate_all(const uint8_t *in, size_t n, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(inflateInit(&z), Z_OK);
  size_t cap = n * 4 + 1024, len = 0;
  uint8_t *out = malloc(cap);
  assert_non_null(out);
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  int zr;
  do {
    if (len == cap) {
      cap *= 2;
      out = realloc(out, cap);
      assert_non_null(out);
    }
    z.next_out = out + len;
    z.avail_out = (uInt)(cap - len);
    zr = inflate(&z, Z_NO_FLUSH);
    len = cap - z.avail_out;
    assert_true(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
  } while (zr != Z_STREAM_END);
  inflateEnd(&z);
  *out_len = len;
  return out;
}
#endif

typedef struct {
  char expect[32];
  char payload[65];
  int compressed, armored;
  cs_age_identity ids[4];
  size_t nid;
  const uint8_t *body;
  size_t body_len;
} vector;

/* Splits a vector file into its "key: value" lines and the age file. */
static void parse_vector(const char *name, const uint8_t *buf, size_t n, vector *v) {
  memset(v, 0, sizeof *v);
  size_t pos = 0;
  while (pos < n) {
    const uint8_t *nl = memchr(buf + pos, '\n', n - pos);
    assert_non_null(nl);
    size_t ll = (size_t)(nl - (buf + pos));
    const char *l = (const char *)buf + pos;
    pos += ll + 1;
    if (ll == 0)
      break;
    if (ll > 8 && memcmp(l, "expect: ", 8) == 0)
      snprintf(v->expect, sizeof v->expect, "%.*s", (int)(ll - 8), l + 8);
    else if (ll == 9 + 64 && memcmp(l, "payload: ", 9) == 0)
      memcpy(v->payload, l + 9, 64);
    else if (ll == 16 && memcmp(l, "compressed: zlib", 16) == 0)
      v->compressed = 1;
    else if (ll == 13 && memcmp(l, "armored: yes", 12) == 0)
      v->armored = 1;
    else if (ll > 10 && memcmp(l, "identity: ", 10) == 0) {
      assert_true(v->nid < 4);
      if (cs_age_identity_parse(&v->ids[v->nid], l + 10, ll - 10) != 0)
        fail_msg("%s: identity does not parse", name);
      v->nid++;
    }
  }
  v->body = buf + pos;
  v->body_len = n - pos;
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65]) {
  uint8_t h[32];
  assert_int_equal(mbedtls_sha256_ret(p, n, h, 0), 0);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* The codes a vector's expectation allows.  An "armor failure" whose text
 * does not start with dashes is, as for the real age, not armor at all. */
static int allowed(const char *name, const vector *v, const uint8_t *file, size_t n, int rc) {
  if (strcmp(v->expect, "success") == 0)
    return rc == 0;
  if (strcmp(v->expect, "no match") == 0)
    return rc == CS_EAGENOMATCH;
  if (strcmp(v->expect, "HMAC failure") == 0)
    return rc == CS_EAGEMAC;
  if (strcmp(v->expect, "payload failure") == 0)
    return rc == CS_EAGEPAYLOAD;
  if (strcmp(v->expect, "header failure") == 0)
    return strcmp(name, "version_unsupported") == 0 ? rc == CS_EAGEVERSION : rc == CS_EAGEHEADER;
  if (strcmp(v->expect, "armor failure") == 0) {
    size_t i = 0;
    while (i < n && (file[i] == ' ' || file[i] == '\t' || file[i] == '\r' || file[i] == '\n'))
      i++;
    int dashes = n - i >= 5 && memcmp(file + i, "-----", 5) == 0;
    return rc == (dashes ? CS_EAGEARMOR : CS_EAGEHEADER);
  }
  fail_msg("%s: unknown expectation '%s'", name, v->expect);
  return 0;
}

static void run_vector(const char *name, const char *path) {
  size_t n, flen, ptlen = 0;
  uint8_t *buf = read_all(path, &n), *pt = NULL, *inflated = NULL;
  vector v;
  parse_vector(name, buf, n, &v);
  const uint8_t *file = v.body;
  flen = v.body_len;
  if (v.compressed) {
#ifdef HAVE_ZLIB
    file = inflated = inflate_all(v.body, v.body_len, &flen);
#else
    free(buf); /* built without zlib: the compressed vectors are skipped */
    return;
#endif
  }
  if (v.nid == 0) { /* "empty" files: any identity */
    assert_int_equal(cs_age_identity_parse(&v.ids[0], VEC_IDENTITY, strlen(VEC_IDENTITY)), 0);
    v.nid = 1;
  }
  int rc = cs_age_decrypt(v.ids, v.nid, file, flen, &pt, &ptlen);
  if (!allowed(name, &v, file, flen, rc))
    fail_msg("%s: expected %s, got %d (%s)", name, v.expect, rc, cs_strerror(rc));
  if (rc == 0) {
    char hex[65];
    sha256_hex(pt, ptlen, hex);
    if (strcmp(hex, v.payload) != 0)
      fail_msg("%s: payload hash differs", name);
    /* And back: our encryption of the same plaintext opens again. */
    cs_age_recipient r;
    uint8_t *ct, *pt2;
    size_t ctlen, pt2len;
    cs_age_identity_to_recipient(&v.ids[0], &r);
    assert_int_equal(cs_age_encrypt(&r, 1, pt, ptlen, v.armored, &ct, &ctlen), 0);
    assert_int_equal(cs_age_decrypt(v.ids, v.nid, ct, ctlen, &pt2, &pt2len), 0);
    assert_int_equal(pt2len, ptlen);
    assert_memory_equal(pt2, pt, ptlen);
    cs_age_free(pt2, pt2len);
    free(ct);
    cs_age_free(pt, ptlen);
  } else {
    assert_null(pt);
  }
  for (size_t i = 0; i < v.nid; i++)
    cs_age_identity_wipe(&v.ids[i]);
  free(inflated);
  free(buf);
}

static void test_cctv_vectors(void **state) {
  (void)state;
  DIR *d = opendir(AGE_VECTORS);
  assert_non_null(d);
  struct dirent *e;
  int count = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", AGE_VECTORS, e->d_name);
    run_vector(e->d_name, path);
    count++;
  }
  closedir(d);
  assert_true(count >= 90);
  print_message("%d CCTV vectors\n", count);
}

/* RFC 7748 section 5.2, first vector, and the Alice/Bob exchange of 6.1. */
static void test_x25519_rfc7748(void **state) {
  (void)state;
  static const uint8_t k[32] = {0xa5, 0x46, 0xe3, 0x6b, 0xf0, 0x52, 0x7c, 0x9d, 0x3b, 0x16, 0x15,
                                0x4b, 0x82, 0x46, 0x5e, 0xdd, 0x62, 0x14, 0x4c, 0x0a, 0xc1, 0xfc,
                                0x5a, 0x18, 0x50, 0x6a, 0x22, 0x44, 0xba, 0x44, 0x9a, 0xc4};
  static const uint8_t u[32] = {0xe6, 0xdb, 0x68, 0x67, 0x58, 0x30, 0x30, 0xdb, 0x35, 0x94, 0xc1,
                                0xa4, 0x24, 0xb1, 0x5f, 0x7c, 0x72, 0x66, 0x24, 0xec, 0x26, 0xb3,
                                0x35, 0x3b, 0x10, 0xa9, 0x03, 0xa6, 0xd0, 0xab, 0x1c, 0x4c};
  static const uint8_t want[32] = {0xc3, 0xda, 0x55, 0x37, 0x9d, 0xe9, 0xc6, 0x90, 0x8e, 0x94, 0xea,
                                   0x4d, 0xf2, 0x8d, 0x08, 0x4f, 0x32, 0xec, 0xcf, 0x03, 0x49, 0x1c,
                                   0x71, 0xf7, 0x54, 0xb4, 0x07, 0x55, 0x77, 0xa2, 0x85, 0x52};
  uint8_t out[32];
  assert_int_equal(cs_age_x25519(out, k, u), 0);
  assert_memory_equal(out, want, 32);

  static const uint8_t alice[32] = {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
                                    0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
                                    0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a};
  static const uint8_t alice_pub[32] = {
      0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
      0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a};
  static const uint8_t nine[32] = {9};
  assert_int_equal(cs_age_x25519(out, alice, nine), 0);
  assert_memory_equal(out, alice_pub, 32);

  /* A low-order point (u = 0, u = 1) gives no shared secret. */
  static const uint8_t zero[32], one[32] = {1};
  assert_int_equal(cs_age_x25519(out, alice, zero), CS_EAGEKEY);
  assert_int_equal(cs_age_x25519(out, alice, one), CS_EAGEKEY);
}

static void test_bech32_keys(void **state) {
  (void)state;
  cs_age_identity id;
  cs_age_recipient r, r2;
  char s[CS_AGE_IDENTITY_STRLEN + 1], rs[CS_AGE_RECIPIENT_STRLEN + 1];
  assert_int_equal(cs_age_identity_parse(&id, VEC_IDENTITY, strlen(VEC_IDENTITY)), 0);
  cs_age_identity_format(&id, s);
  assert_string_equal(s, VEC_IDENTITY);
  cs_age_identity_to_recipient(&id, &r);
  cs_age_recipient_format(&r, rs);
  assert_string_equal(rs, VEC_RECIPIENT);
  assert_int_equal(strlen(rs), CS_AGE_RECIPIENT_STRLEN);
  assert_int_equal(cs_age_recipient_parse(&r2, VEC_RECIPIENT, strlen(VEC_RECIPIENT)), 0);
  assert_memory_equal(r.pub, r2.pub, 32);

  /* Every single-character change of either string breaks the checksum
   * (or the HRP, separator, case or alphabet). */
  for (size_t i = 0; i < strlen(VEC_RECIPIENT); i++) {
    char bad[80];
    strcpy(bad, VEC_RECIPIENT);
    bad[i] = bad[i] == 'q' ? 'p' : 'q';
    assert_int_equal(cs_age_recipient_parse(&r2, bad, strlen(bad)), CS_EAGEKEY);
  }
  for (size_t i = 0; i < strlen(VEC_IDENTITY); i++) {
    char bad[80];
    strcpy(bad, VEC_IDENTITY);
    bad[i] = bad[i] == 'Q' ? 'P' : 'Q';
    assert_int_equal(cs_age_identity_parse(&id, bad, strlen(bad)), CS_EAGEKEY);
  }
  /* Case: recipients lower, identities upper, never mixed. */
  char up[80];
  for (size_t i = 0; i <= strlen(VEC_RECIPIENT); i++)
    up[i] = (char)(VEC_RECIPIENT[i] >= 'a' && VEC_RECIPIENT[i] <= 'z' ? VEC_RECIPIENT[i] - 32
                                                                       : VEC_RECIPIENT[i]);
  assert_int_equal(cs_age_recipient_parse(&r2, up, strlen(up)), CS_EAGEKEY);
  char low[80];
  for (size_t i = 0; i <= strlen(VEC_IDENTITY); i++)
    low[i] = (char)(VEC_IDENTITY[i] >= 'A' && VEC_IDENTITY[i] <= 'Z' ? VEC_IDENTITY[i] + 32
                                                                      : VEC_IDENTITY[i]);
  assert_int_equal(cs_age_identity_parse(&id, low, strlen(low)), CS_EAGEKEY);
  /* Truncated, extended, empty, the identity where a recipient goes. */
  assert_int_equal(cs_age_recipient_parse(&r2, VEC_RECIPIENT, strlen(VEC_RECIPIENT) - 1),
                   CS_EAGEKEY);
  assert_int_equal(cs_age_recipient_parse(&r2, "", 0), CS_EAGEKEY);
  assert_int_equal(cs_age_recipient_parse(&r2, VEC_IDENTITY, strlen(VEC_IDENTITY)), CS_EAGEKEY);
  assert_int_equal(cs_age_identity_parse(&id, VEC_RECIPIENT, strlen(VEC_RECIPIENT)), CS_EAGEKEY);

  /* Generated identities round-trip through their text form. */
  for (int i = 0; i < 20; i++) {
    cs_age_identity g, g2;
    assert_int_equal(cs_age_identity_generate(&g), 0);
    cs_age_identity_format(&g, s);
    assert_int_equal(cs_age_identity_parse(&g2, s, strlen(s)), 0);
    assert_memory_equal(&g, &g2, sizeof g);
    cs_age_identity_wipe(&g);
    cs_age_identity_wipe(&g2);
  }
}

static void test_key_files(void **state) {
  (void)state;
  char text[512];
  snprintf(text, sizeof text,
           "# created: 2026-12-02T07:00:00Z\n# public key: %s\n%s\n", VEC_RECIPIENT, VEC_IDENTITY);
  cs_age_identity ids[2];
  size_t n = 0;
  assert_int_equal(cs_age_identity_parse_text(ids, 2, &n, text, strlen(text)), 0);
  assert_int_equal(n, 1);
  cs_age_identity_wipe(&ids[0]);
  assert_int_equal(cs_age_identity_parse_text(ids, 2, &n, "# only\n\n", 8), CS_EINVAL);
  snprintf(text, sizeof text, "%s\nAGE-SECRET-KEY-1Q\n", VEC_IDENTITY);
  assert_int_equal(cs_age_identity_parse_text(ids, 2, &n, text, strlen(text)), CS_EAGEKEY);
  assert_string_equal(cs_error_message(CS_EAGEKEY), "malformed age recipient or identity on line 2");

  cs_age_recipient rs[2];
  snprintf(text, sizeof text, "# holders\n  %s \r\n\n%s\n", VEC_RECIPIENT, VEC_RECIPIENT);
  assert_int_equal(cs_age_recipients_parse_text(rs, 2, &n, text, strlen(text)), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs_age_recipients_parse_text(rs, 1, &n, text, strlen(text)), CS_ELIMIT);
  assert_int_equal(cs_age_recipients_parse_text(rs, 2, &n, "age1x\n", 6), CS_EAGEKEY);
}

static void make_ids(cs_age_identity *ids, cs_age_recipient *rs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(cs_age_identity_generate(&ids[i]), 0);
    cs_age_identity_to_recipient(&ids[i], &rs[i]);
  }
}

static void test_roundtrip_sizes(void **state) {
  (void)state;
  static const size_t sizes[] = {0, 1, 15, 16, 17, 65535, 65536, 65537, 131072, 131073, 200000};
  cs_age_identity ids[3], other;
  cs_age_recipient rs[3];
  make_ids(ids, rs, 3);
  assert_int_equal(cs_age_identity_generate(&other), 0);
  uint8_t *pt = malloc(200000);
  assert_non_null(pt);
  for (size_t i = 0; i < 200000; i++)
    pt[i] = (uint8_t)(i * 7 + 3);
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    for (int armor = 0; armor < 2; armor++) {
      uint8_t *ct, *out;
      size_t ctlen, outlen;
      assert_int_equal(cs_age_encrypt(rs, 3, pt, sizes[s], armor, &ct, &ctlen), 0);
      if (armor)
        assert_memory_equal(ct, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35);
      else
        assert_memory_equal(ct, "age-encryption.org/v1\n-> X25519 ", 32);
      for (size_t k = 0; k < 3; k++) {
        assert_int_equal(cs_age_decrypt(&ids[k], 1, ct, ctlen, &out, &outlen), 0);
        assert_int_equal(outlen, sizes[s]);
        if (sizes[s] > 0)
          assert_memory_equal(out, pt, sizes[s]);
        cs_age_free(out, outlen);
      }
      out = NULL;
      assert_int_equal(cs_age_decrypt(&other, 1, ct, ctlen, &out, &outlen), CS_EAGENOMATCH);
      assert_null(out);
      /* A list of identities: the one that matches may come last. */
      cs_age_identity two[2] = {other, ids[2]};
      assert_int_equal(cs_age_decrypt(two, 2, ct, ctlen, &out, &outlen), 0);
      cs_age_free(out, outlen);
      free(ct);
    }
  }
  uint8_t *ct;
  size_t ctlen;
  assert_int_equal(cs_age_encrypt(rs, 0, pt, 1, 0, &ct, &ctlen), CS_EINVAL);
  free(pt);
}

/* Every single-bit flip of a small file, binary or armored, is refused,
 * and so is every truncation: nothing is ever released. */
static void test_tamper_and_truncate(void **state) {
  (void)state;
  cs_age_identity id;
  cs_age_recipient r;
  make_ids(&id, &r, 1);
  const uint8_t msg[] = "share-3 of 5: 0123456789abcdef";
  for (int armor = 0; armor < 2; armor++) {
    uint8_t *ct, *out;
    size_t ctlen, outlen;
    assert_int_equal(cs_age_encrypt(&r, 1, msg, sizeof msg, armor, &ct, &ctlen), 0);
    for (size_t i = 0; i < ctlen; i++) {
      for (int bit = 0; bit < 8; bit++) {
        ct[i] ^= (uint8_t)(1 << bit);
        out = NULL;
        int rc = cs_age_decrypt(&id, 1, ct, ctlen, &out, &outlen);
        ct[i] ^= (uint8_t)(1 << bit);
        /* Flipping the armor's last newline to another whitespace, or
         * case in nothing: the only harmless changes are outside the
         * armor (trailing whitespace). */
        if (rc == 0) {
          assert_true(armor && i == ctlen - 1);
          cs_age_free(out, outlen);
          continue;
        }
        assert_true(rc < 0);
        assert_null(out);
      }
    }
    for (size_t l = 0; l < ctlen - (armor ? 1 : 0); l++) {
      out = NULL;
      assert_true(cs_age_decrypt(&id, 1, ct, l, &out, &outlen) < 0);
      assert_null(out);
    }
    free(ct);
  }
  cs_age_identity_wipe(&id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cctv_vectors),     cmocka_unit_test(test_x25519_rfc7748),
      cmocka_unit_test(test_bech32_keys),      cmocka_unit_test(test_key_files),
      cmocka_unit_test(test_roundtrip_sizes),  cmocka_unit_test(test_tamper_and_truncate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
