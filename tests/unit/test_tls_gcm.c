/*
 * Unit tests for tls_gcm (common/tls_gcm.h): TLS records' AES-256-GCM on
 * libsodium, through the same mbedtls_cipher_* calls the record layer
 * makes (redirected by the linker).  Every result is checked against
 * mbedTLS's own GCM (mbedtls_gcm_*, which is not redirected): every length
 * from 0 to 300 and a full record, in place and apart; every kind of
 * tampering fails and leaves no plaintext; AES-128, other IV and tag sizes
 * stay on mbedTLS; re-keying, freeing and many contexts at once (the
 * table's deletions); and a real handshake between the custos policy's
 * server and client in memory, records both ways and one tampered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <mbedtls/cipher.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/ssl.h>

#include "devcert.h"
#include "tls_gcm.h"
#include "tls_policy.h"

#define REC_MAX 16400

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed * 131 + i * 29 + (i >> 7));
}

/* mbedTLS's GCM, not redirected: ciphertext || tag. */
static void reference(const uint8_t *key, unsigned bits, const uint8_t *iv, size_t iv_len,
                      const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t n,
                      uint8_t *out, size_t tag_len) {
  mbedtls_gcm_context g;
  mbedtls_gcm_init(&g);
  assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, bits), 0);
  assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, n, iv, iv_len, ad, ad_len,
                                             pt, out, tag_len, out + n),
                   0);
  mbedtls_gcm_free(&g);
}

static void keyed(mbedtls_cipher_context_t *c, mbedtls_cipher_type_t type, const uint8_t *key,
                  int bits, mbedtls_operation_t op) {
  mbedtls_cipher_init(c);
  assert_int_equal(mbedtls_cipher_setup(c, mbedtls_cipher_info_from_type(type)), 0);
  assert_int_equal(mbedtls_cipher_setkey(c, key, bits, op), 0);
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

/* ---- the cipher calls --------------------------------------------------------- */

static void test_matches_mbedtls(void **state) {
  (void)state;
  static uint8_t pt[REC_MAX], exp[REC_MAX + 16], buf[REC_MAX + 16], out[REC_MAX + 16];
  uint8_t key[32], iv[12], ad[13];
  fill(key, sizeof key, 1);
  fill(ad, sizeof ad, 2);
  mbedtls_cipher_context_t enc, dec;
  keyed(&enc, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_ENCRYPT);
  keyed(&dec, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_DECRYPT);
  size_t states = cs_tls_gcm_states();
  assert_int_equal(states, cs_tls_gcm_available() ? 2 : 0);
  uint64_t before = cs_tls_gcm_records();
  for (size_t k = 0; k <= 302; k++) {
    size_t n = k == 301 ? 16384 : k == 302 ? 1000 : k, olen = 0;
    fill(pt, n, (unsigned)k);
    fill(iv, sizeof iv, (unsigned)k + 7);
    reference(key, 256, iv, sizeof iv, ad, sizeof ad, pt, n, exp, 16);
    /* apart */
    assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&enc, iv, 12, ad, sizeof ad, pt, n, out,
                                                     n + 16, &olen, 16),
                     0);
    assert_int_equal(olen, n + 16);
    assert_memory_equal(out, exp, n + 16);
    /* in place, as the record layer does */
    memcpy(buf, pt, n);
    assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&enc, iv, 12, ad, sizeof ad, buf, n, buf,
                                                     sizeof buf, &olen, 16),
                     0);
    assert_memory_equal(buf, exp, n + 16);
    assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12, ad, sizeof ad, buf, n + 16,
                                                     buf, sizeof buf, &olen, 16),
                     0);
    assert_int_equal(olen, n);
    assert_memory_equal(buf, pt, n);
    assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12, ad, sizeof ad, exp, n + 16,
                                                     out, n, &olen, 16),
                     0);
    assert_memory_equal(out, pt, n);
  }
  if (cs_tls_gcm_available())
    assert_int_equal(cs_tls_gcm_records() - before, 4 * 303);
  mbedtls_cipher_free(&enc);
  mbedtls_cipher_free(&dec);
  assert_int_equal(cs_tls_gcm_states(), 0);
}

static void test_tampered(void **state) {
  (void)state;
  uint8_t key[32], iv[12], ad[13], pt[300], ct[316], bad[316], out[300];
  fill(key, sizeof key, 3);
  fill(iv, sizeof iv, 4);
  fill(ad, sizeof ad, 5);
  fill(pt, sizeof pt, 6);
  mbedtls_cipher_context_t dec;
  keyed(&dec, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_DECRYPT);
  reference(key, 256, iv, sizeof iv, ad, sizeof ad, pt, sizeof pt, ct, 16);
  size_t olen;
  for (size_t at = 0; at < sizeof ct + sizeof ad + sizeof iv; at += 7) {
    uint8_t iv2[12], ad2[13];
    memcpy(bad, ct, sizeof ct);
    memcpy(iv2, iv, sizeof iv);
    memcpy(ad2, ad, sizeof ad);
    if (at < sizeof ct)
      bad[at] ^= 0x01; /* ciphertext or tag */
    else if (at < sizeof ct + sizeof ad)
      ad2[at - sizeof ct] ^= 0x80;
    else
      iv2[at - sizeof ct - sizeof ad] ^= 0x10;
    memset(out, 0xAA, sizeof out);
    assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv2, 12, ad2, sizeof ad2, bad,
                                                     sizeof bad, out, sizeof out, &olen, 16),
                     MBEDTLS_ERR_CIPHER_AUTH_FAILED);
    assert_true(all_zero(out, sizeof out) || !cs_tls_gcm_available());
    /* in place: no unauthenticated plaintext left in the record either */
    assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv2, 12, ad2, sizeof ad2, bad,
                                                     sizeof bad, bad, sizeof bad, &olen, 16),
                     MBEDTLS_ERR_CIPHER_AUTH_FAILED);
    assert_true(all_zero(bad, sizeof pt) || !cs_tls_gcm_available());
  }
  /* shorter than a tag: refused, not read before the buffer */
  assert_int_not_equal(
      mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12, ad, sizeof ad, ct, 15, out, sizeof out, &olen, 16),
      0);
  mbedtls_cipher_free(&dec);
}

/* AES-128-GCM, a 16-byte IV or a short tag: mbedTLS, with its bytes. */
static void test_other_shapes_stay_on_mbedtls(void **state) {
  (void)state;
  uint8_t key[32], iv[16], ad[13], pt[200], exp[216], out[216];
  fill(key, sizeof key, 8);
  fill(iv, sizeof iv, 9);
  fill(ad, sizeof ad, 10);
  fill(pt, sizeof pt, 11);
  size_t olen;
  mbedtls_cipher_context_t c128, c256;
  keyed(&c128, MBEDTLS_CIPHER_AES_128_GCM, key, 128, MBEDTLS_ENCRYPT);
  keyed(&c256, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_ENCRYPT);
  uint64_t before = cs_tls_gcm_records();
  reference(key, 128, iv, 12, ad, sizeof ad, pt, sizeof pt, exp, 16);
  assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c128, iv, 12, ad, sizeof ad, pt, sizeof pt,
                                                   out, sizeof out, &olen, 16),
                   0);
  assert_memory_equal(out, exp, sizeof exp);
  reference(key, 256, iv, 16, ad, sizeof ad, pt, sizeof pt, exp, 16);
  assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c256, iv, 16, ad, sizeof ad, pt, sizeof pt,
                                                   out, sizeof out, &olen, 16),
                   0);
  assert_memory_equal(out, exp, sizeof exp);
  reference(key, 256, iv, 12, ad, sizeof ad, pt, sizeof pt, exp, 12);
  assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c256, iv, 12, ad, sizeof ad, pt, sizeof pt,
                                                   out, sizeof out, &olen, 12),
                   0);
  assert_int_equal(olen, sizeof pt + 12);
  assert_memory_equal(out, exp, sizeof pt + 12);
  /* no room for the tag: mbedTLS's error, not a write past the buffer */
  assert_int_not_equal(mbedtls_cipher_auth_encrypt_ext(&c256, iv, 12, ad, sizeof ad, pt,
                                                       sizeof pt, out, sizeof pt + 8, &olen, 16),
                       0);
  assert_int_equal(cs_tls_gcm_records(), before);
  mbedtls_cipher_free(&c128);
  mbedtls_cipher_free(&c256);
}

/* A context keyed again uses its new key, and frees one state. */
static void test_rekey(void **state) {
  (void)state;
  uint8_t k1[32], k2[32], iv[12], ad[13], pt[64], exp[80], out[80];
  fill(k1, sizeof k1, 12);
  fill(k2, sizeof k2, 13);
  fill(iv, sizeof iv, 14);
  fill(ad, sizeof ad, 15);
  fill(pt, sizeof pt, 16);
  size_t olen;
  mbedtls_cipher_context_t c;
  keyed(&c, MBEDTLS_CIPHER_AES_256_GCM, k1, 256, MBEDTLS_ENCRYPT);
  assert_int_equal(mbedtls_cipher_setkey(&c, k2, 256, MBEDTLS_ENCRYPT), 0);
  reference(k2, 256, iv, 12, ad, sizeof ad, pt, sizeof pt, exp, 16);
  assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c, iv, 12, ad, sizeof ad, pt, sizeof pt, out,
                                                   sizeof out, &olen, 16),
                   0);
  assert_memory_equal(out, exp, sizeof exp);
  mbedtls_cipher_free(&c);
  assert_int_equal(cs_tls_gcm_states(), 0);
}

/* A keyed context set up again (or initialized) without a free keeps no
 * state: mbedTLS's own context is unkeyed then, and a record must get
 * mbedTLS's answer, not one under the lost key. */
static void test_setup_again_drops_state(void **state) {
  (void)state;
  uint8_t key[32], iv[12] = {1}, ad[13] = {2}, pt[32] = {3}, out[48];
  fill(key, sizeof key, 21);
  size_t olen;
  for (int how = 0; how <= 1; how++) {
    mbedtls_cipher_context_t c;
    keyed(&c, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_ENCRYPT);
    mbedtls_cipher_context_t old = c; /* owns the first setup's memory */
    if (how == 0)
      assert_int_equal(
          mbedtls_cipher_setup(&c, mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_256_GCM)), 0);
    else
      mbedtls_cipher_init(&c);
    assert_int_equal(cs_tls_gcm_states(), 0);
    if (how == 0) { /* (an initialized context has no cipher: mbedTLS would crash) */
      uint64_t before = cs_tls_gcm_records();
      int rc = mbedtls_cipher_auth_encrypt_ext(&c, iv, 12, ad, sizeof ad, pt, sizeof pt, out,
                                               sizeof out, &olen, 16);
      (void)rc; /* whatever mbedTLS answers for an unkeyed context: it answers it */
      assert_int_equal(cs_tls_gcm_records(), before);
    }
    mbedtls_cipher_free(&c);
    mbedtls_cipher_free(&old);
  }
}

/* A length past what GCM may take (libsodium would abort the process):
 * mbedTLS's error, and nothing read or written. */
static void test_huge_length_refused(void **state) {
  (void)state;
  uint8_t key[32], iv[12] = {1}, ad[13] = {2}, buf[64] = {0};
  fill(key, sizeof key, 22);
  size_t olen, huge = (size_t)1 << 40;
  mbedtls_cipher_context_t c;
  keyed(&c, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_ENCRYPT);
  assert_int_not_equal(mbedtls_cipher_auth_encrypt_ext(&c, iv, 12, ad, sizeof ad, buf, huge, buf,
                                                       huge + 16, &olen, 16),
                       0);
  assert_int_not_equal(mbedtls_cipher_auth_decrypt_ext(&c, iv, 12, ad, sizeof ad, buf, huge + 16,
                                                       buf, huge, &olen, 16),
                       0);
  mbedtls_cipher_free(&c);
}

/* 2,000 contexts keyed, freed in a scattered order with the others checked
 * along the way: the table's deletions keep every remaining entry found. */
static void test_many_contexts(void **state) {
  (void)state;
  enum { N = 2000 };
  mbedtls_cipher_context_t *c = calloc(N, sizeof *c);
  uint8_t (*keys)[32] = calloc(N, 32);
  assert_non_null(c);
  assert_non_null(keys);
  uint8_t iv[12] = {1}, ad[13] = {2}, pt[32] = {3}, exp[48], out[48];
  size_t olen;
  for (int i = 0; i < N; i++) {
    fill(keys[i], 32, (unsigned)i);
    keyed(&c[i], MBEDTLS_CIPHER_AES_256_GCM, keys[i], 256, MBEDTLS_ENCRYPT);
  }
  assert_int_equal(cs_tls_gcm_states(), cs_tls_gcm_available() ? N : 0);
  int freed[N] = {0};
  for (int step = 0; step < N; step++) {
    int i = (int)(((unsigned)step * 1237u) % N);
    mbedtls_cipher_free(&c[i]);
    freed[i] = 1;
    if (step % 97 == 0)
      for (int j = 0; j < N; j += 13)
        if (!freed[j]) {
          reference(keys[j], 256, iv, 12, ad, sizeof ad, pt, sizeof pt, exp, 16);
          assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c[j], iv, 12, ad, sizeof ad, pt,
                                                           sizeof pt, out, sizeof out, &olen, 16),
                           0);
          assert_memory_equal(out, exp, sizeof exp);
        }
  }
  assert_int_equal(cs_tls_gcm_states(), 0);
  free(c);
  free(keys);
}

/* ---- a real handshake --------------------------------------------------------- */

typedef struct pipe {
  uint8_t buf[65536];
  size_t len;
} pipe_t;

typedef struct end {
  pipe_t *in, *out;
} end_t;

static int bio_send(void *p, const unsigned char *b, size_t n) {
  end_t *e = p;
  if (n > sizeof e->out->buf - e->out->len)
    n = sizeof e->out->buf - e->out->len;
  if (n == 0)
    return MBEDTLS_ERR_SSL_WANT_WRITE;
  memcpy(e->out->buf + e->out->len, b, n);
  e->out->len += n;
  return (int)n;
}

static int bio_recv(void *p, unsigned char *b, size_t n) {
  end_t *e = p;
  if (e->in->len == 0)
    return MBEDTLS_ERR_SSL_WANT_READ;
  if (n > e->in->len)
    n = e->in->len;
  memcpy(b, e->in->buf, n);
  memmove(e->in->buf, e->in->buf + n, e->in->len - n);
  e->in->len -= n;
  return (int)n;
}

static int want(int rc) {
  return rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE;
}

/* Reads exactly n bytes from s (the peer has written them all). */
static void read_all(mbedtls_ssl_context *s, uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    int rc = mbedtls_ssl_read(s, p + got, n - got);
    assert_true(rc > 0);
    got += (size_t)rc;
  }
}

static void test_handshake(void **state) {
  (void)state;
  char dir[] = "/tmp/custos-test-tlsgcm-XXXXXX", crt[256], keyf[256];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(cs_devcert_generate(dir, crt, keyf, sizeof crt), 0);
  mbedtls_entropy_context ent;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&ent);
  mbedtls_ctr_drbg_init(&drbg);
  assert_int_equal(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
  mbedtls_x509_crt chain, ca;
  mbedtls_pk_context key;
  mbedtls_x509_crt_init(&chain);
  mbedtls_x509_crt_init(&ca);
  mbedtls_pk_init(&key);
  assert_int_equal(cs_tls_policy_load_pair(&chain, &key, crt, keyf, "TLS"), 0);
  assert_int_equal(cs_tls_policy_load_ca(&ca, crt, "TLS"), 0);
  mbedtls_ssl_config sc, cc;
  assert_int_equal(cs_tls_policy_server(&sc, &drbg, &chain, &key, NULL), 0);
  assert_int_equal(cs_tls_policy_client(&cc, &drbg, &ca, NULL, NULL), 0);
  static pipe_t s2c, c2s;
  end_t se = {&c2s, &s2c}, ce = {&s2c, &c2s};
  mbedtls_ssl_context srv, cli;
  mbedtls_ssl_init(&srv);
  mbedtls_ssl_init(&cli);
  assert_int_equal(mbedtls_ssl_setup(&srv, &sc), 0);
  assert_int_equal(mbedtls_ssl_setup(&cli, &cc), 0);
  assert_int_equal(mbedtls_ssl_set_hostname(&cli, "localhost"), 0);
  mbedtls_ssl_set_bio(&srv, &se, bio_send, bio_recv, NULL);
  mbedtls_ssl_set_bio(&cli, &ce, bio_send, bio_recv, NULL);
  int sdone = 0, cdone = 0;
  for (int i = 0; i < 100 && !(sdone && cdone); i++) {
    int rc;
    if (!cdone && (rc = mbedtls_ssl_handshake(&cli)) == 0)
      cdone = 1;
    else if (!cdone)
      assert_true(want(rc));
    if (!sdone && (rc = mbedtls_ssl_handshake(&srv)) == 0)
      sdone = 1;
    else if (!sdone)
      assert_true(want(rc));
  }
  assert_true(sdone && cdone);
  const char *suite = mbedtls_ssl_get_ciphersuite(&srv);
  if (cs_tls_gcm_available())
    assert_string_equal(suite, "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384");
  else
    assert_string_equal(suite, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");

  static uint8_t msg[40000], got[40000];
  const size_t sizes[] = {1, 300, 16384, 40000};
  uint64_t before = cs_tls_gcm_records();
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    fill(msg, sizes[i], (unsigned)i);
    assert_int_equal(mbedtls_ssl_write(&cli, msg, sizes[i]), (int)sizes[i] > 16384 ? 16384 : (int)sizes[i]);
    size_t n = sizes[i] > 16384 ? 16384 : sizes[i];
    read_all(&srv, got, n);
    assert_memory_equal(got, msg, n);
    assert_int_equal(mbedtls_ssl_write(&srv, msg, n), (int)n);
    read_all(&cli, got, n);
    assert_memory_equal(got, msg, n);
  }
  if (cs_tls_gcm_available())
    assert_true(cs_tls_gcm_records() - before >= 8);
  /* a record changed in transit: the server refuses it */
  fill(msg, 100, 99);
  assert_int_equal(mbedtls_ssl_write(&cli, msg, 100), 100);
  assert_true(c2s.len > 20);
  c2s.buf[c2s.len - 3] ^= 0x04;
  assert_int_equal(mbedtls_ssl_read(&srv, got, sizeof got), MBEDTLS_ERR_SSL_INVALID_MAC);

  mbedtls_ssl_free(&srv);
  mbedtls_ssl_free(&cli);
  assert_int_equal(cs_tls_gcm_states(), 0);
  mbedtls_ssl_config_free(&sc);
  mbedtls_ssl_config_free(&cc);
  mbedtls_x509_crt_free(&chain);
  mbedtls_x509_crt_free(&ca);
  mbedtls_pk_free(&key);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&ent);
  unlink(crt);
  unlink(keyf);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matches_mbedtls), cmocka_unit_test(test_tampered),
      cmocka_unit_test(test_other_shapes_stay_on_mbedtls), cmocka_unit_test(test_rekey),
      cmocka_unit_test(test_setup_again_drops_state), cmocka_unit_test(test_huge_length_refused),
      cmocka_unit_test(test_many_contexts), cmocka_unit_test(test_handshake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
