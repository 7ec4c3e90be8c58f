/*
 * Unit tests for crypto and secmem: GCM (known answer, round trip, every
 * kind of tampering), SHA-256 and HMAC-SHA256 known answers and the same
 * bytes as mbedTLS's at every length around the block sizes (the test runs
 * twice: on the SHA extensions and, with NETTLE_FAT_OVERRIDE=none, on
 * nettle's C code), no message or key left on the dead stack,
 * round trips and strict rejection, the DRBG, secure memory and the
 * constant-time compare.
 */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "cs_error.h"
#include "secmem.h"

#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

static void unhex(const char *h, uint8_t *out, size_t n) {
  size_t got = 0;
  assert_int_equal(cs_hex_decode(h, out, n, &got), 0);
  assert_int_equal(got, n);
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

/* ---- GCM ------------------------------------------------------------------- */

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16. */
static void test_gcm_known_answer(void **state) {
  (void)state;
  uint8_t key[32], nonce[12], aad[20], pt[60], ct_exp[60], tag_exp[16], ct[60], tag[16], back[60];
  unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32);
  unhex("cafebabefacedbaddecaf888", nonce, 12);
  unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
  unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt, 60);
  unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", ct_exp, 60);
  unhex("76fc6ece0f4e1768cddf8853bb2d551b", tag_exp, 16);
  assert_int_equal(cs_gcm_seal(key, nonce, aad, 20, pt, 60, ct, tag), 0);
  assert_memory_equal(ct, ct_exp, 60);
  assert_memory_equal(tag, tag_exp, 16);
  assert_int_equal(cs_gcm_open(key, nonce, aad, 20, ct, 60, tag, back), 0);
  assert_memory_equal(back, pt, 60);
}

static void test_gcm_roundtrip_and_tamper(void **state) {
  (void)state;
  uint8_t key[CS_KEY_LEN], nonce[CS_NONCE_LEN], aad[24], pt[100], ct[100], tag[CS_TAG_LEN],
      out[100];
  assert_int_equal(cs_random(key, sizeof key), 0);
  assert_int_equal(cs_random(nonce, sizeof nonce), 0);
  assert_int_equal(cs_random(aad, sizeof aad), 0);
  assert_int_equal(cs_random(pt, sizeof pt), 0);
  assert_int_equal(cs_gcm_seal(key, nonce, aad, sizeof aad, pt, sizeof pt, ct, tag), 0);
  assert_memory_not_equal(ct, pt, sizeof pt);
  assert_int_equal(cs_gcm_open(key, nonce, aad, sizeof aad, ct, sizeof ct, tag, out), 0);
  assert_memory_equal(out, pt, sizeof pt);

  /* Empty plaintext and no AAD still authenticate. */
  uint8_t t0[CS_TAG_LEN];
  assert_int_equal(cs_gcm_seal(key, nonce, NULL, 0, NULL, 0, NULL, t0), 0);
  assert_int_equal(cs_gcm_open(key, nonce, NULL, 0, NULL, 0, t0, NULL), 0);
  t0[0] ^= 1;
  assert_int_equal(cs_gcm_open(key, nonce, NULL, 0, NULL, 0, t0, NULL), CS_EAUTH);

  /* Flip one bit of ciphertext, tag, AAD, nonce, key: each is CS_EAUTH with
   * the output wiped. */
  for (int what = 0; what < 5; what++) {
    uint8_t *field[] = {ct, tag, aad, nonce, key};
    size_t flen[] = {sizeof ct, sizeof tag, sizeof aad, sizeof nonce, sizeof key};
    for (size_t pos = 0; pos < flen[what]; pos += 7) {
      field[what][pos] ^= 0x80;
      memset(out, 0xAA, sizeof out);
      assert_int_equal(cs_gcm_open(key, nonce, aad, sizeof aad, ct, sizeof ct, tag, out),
                       CS_EAUTH);
      assert_true(all_zero(out, sizeof out));
      field[what][pos] ^= 0x80;
    }
  }
  /* Shorter AAD (truncation) also fails. */
  assert_int_equal(cs_gcm_open(key, nonce, aad, sizeof aad - 1, ct, sizeof ct, tag, out),
                   CS_EAUTH);
  /* And everything restored still opens. */
  assert_int_equal(cs_gcm_open(key, nonce, aad, sizeof aad, ct, sizeof ct, tag, out), 0);
  assert_memory_equal(out, pt, sizeof pt);
}

/* cs_gcm_* (libsodium's AES-NI code on this CPU, else mbedTLS) against
 * mbedTLS's GCM called directly, both ways, at lengths around libsodium's
 * 16-byte blocks, its 128-byte (8-block) loop and its 64-byte AAD loop:
 * values written before the switch open after it, and back. */
static void test_gcm_matches_mbedtls(void **state) {
  (void)state;
  static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300, 1000, 4099};
  static const size_t alens[] = {0, 1, 15, 16, 17, 63, 64, 65, 130};
  uint8_t key[CS_KEY_LEN], nonce[CS_NONCE_LEN], aad[130], pt[4099], ct[4099], ct2[4099], back[4099];
  uint8_t tag[CS_TAG_LEN], tag2[CS_TAG_LEN];
  assert_int_equal(cs_random(pt, sizeof pt), 0);
  assert_int_equal(cs_random(aad, sizeof aad), 0);
  assert_non_null(cs_gcm_backend());
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    for (size_t j = 0; j < sizeof alens / sizeof alens[0]; j++) {
      size_t n = lens[i], an = alens[j];
      assert_int_equal(cs_random(key, sizeof key), 0);
      assert_int_equal(cs_random(nonce, sizeof nonce), 0);
      mbedtls_gcm_context g;
      mbedtls_gcm_init(&g);
      assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256), 0);
      assert_int_equal(cs_gcm_seal(key, nonce, aad, an, pt, n, ct, tag), 0);
      assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, n, nonce, sizeof nonce,
                                                 aad, an, pt, ct2, sizeof tag2, tag2),
                       0);
      assert_memory_equal(tag, tag2, sizeof tag);
      if (n > 0)
        assert_memory_equal(ct, ct2, n);
      assert_int_equal(mbedtls_gcm_auth_decrypt(&g, n, nonce, sizeof nonce, aad, an, tag,
                                                sizeof tag, ct, back),
                       0);
      if (n > 0)
        assert_memory_equal(back, pt, n);
      memset(back, 0xAA, sizeof back);
      assert_int_equal(cs_gcm_open(key, nonce, aad, an, ct2, n, tag2, back), 0);
      if (n > 0)
        assert_memory_equal(back, pt, n);
      /* A bad tag from either side: refused, output wiped. */
      tag2[n % CS_TAG_LEN] ^= 1;
      memset(back, 0xAA, sizeof back);
      assert_int_equal(cs_gcm_open(key, nonce, aad, an, ct2, n, tag2, back), CS_EAUTH);
      assert_true(all_zero(back, n));
      mbedtls_gcm_free(&g);
    }
}

/* No copy of the key is left on the stack below the caller once cs_gcm_*
 * return: libsodium 1.0.18's one-shot *_detached calls left their key
 * schedule there, whose first round keys are the key itself (a review's
 * finding).  The scan reads the dead stack through a fresh frame. */
__attribute__((noinline)) static int gcm_on_stack(const uint8_t *key, int open) {
  uint8_t nonce[CS_NONCE_LEN] = {1}, pt[64] = {2}, ct[64], tag[CS_TAG_LEN];
  int rc = cs_gcm_seal(key, nonce, NULL, 0, pt, sizeof pt, ct, tag);
  if (rc == 0 && open)
    rc = cs_gcm_open(key, nonce, NULL, 0, ct, sizeof ct, tag, pt);
  return rc;
}

/* Reading the dead stack is the point: its bytes are left uninitialized. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((noinline)) static int copies_below(const uint8_t *secret, int swapped) {
  volatile uint8_t probe[8192]; /* the stack the callees of *_on_stack used */
  int hits = 0;
  for (size_t i = 0; i + 16 <= sizeof probe; i++) {
    int eq = 1;
    for (int j = 0; j < 16 && eq; j++)
      eq = probe[i + j] == secret[swapped ? (j & ~3) + 3 - (j & 3) : j];
    hits += eq;
  }
  return hits;
}
#pragma GCC diagnostic pop

static void test_gcm_leaves_no_key_on_stack(void **state) {
  (void)state;
  static uint8_t key[CS_KEY_LEN];
  for (int i = 0; i < CS_KEY_LEN; i++)
    key[i] = (uint8_t)(0xA5 ^ (i * 37));
  for (int open = 0; open <= 1; open++) {
    assert_int_equal(gcm_on_stack(key, open), 0);
    assert_int_equal(copies_below(key, 0), 0);
  }
}

/* ---- hashes ---------------------------------------------------------------- */

static void test_sha256(void **state) {
  (void)state;
  uint8_t got[32], exp[32];
  cs_sha256("abc", 3, got);
  unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", exp, 32);
  assert_memory_equal(got, exp, 32);
  cs_sha256("", 0, got);
  unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", exp, 32);
  assert_memory_equal(got, exp, 32);
}

static void test_hmac_rfc4231(void **state) {
  (void)state;
  uint8_t got[32], exp[32];
  /* RFC 4231 test case 2. */
  const char *msg = "what do ya want for nothing?";
  cs_hmac_sha256("Jefe", 4, msg, strlen(msg), got);
  unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", exp, 32);
  assert_memory_equal(got, exp, 32);
  /* RFC 4231 test case 1: key = 20 x 0x0b, "Hi There". */
  uint8_t key[20];
  memset(key, 0x0b, sizeof key);
  cs_hmac_sha256(key, sizeof key, "Hi There", 8, got);
  unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", exp, 32);
  assert_memory_equal(got, exp, 32);
}

/* The precomputed-pad HMAC (the audit log's) equals the plain one, for
 * messages around the block boundaries, and matches RFC 4231 case 2 with
 * its key zero-padded to 32 bytes (HMAC pads short keys with zeros). */
static void test_hmac_with_key(void **state) {
  (void)state;
  uint8_t key[32], msg[300], got[32], exp[32];
  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 13);
  cs_hmac_key k;
  cs_hmac_key_set(&k, key);
  const size_t lens[] = {0, 1, 31, 55, 56, 63, 64, 65, 119, 128, 256, 300};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    cs_hmac_sha256(key, sizeof key, msg, lens[i], exp);
    cs_hmac_sha256_with(&k, msg, lens[i], got);
    assert_memory_equal(got, exp, 32);
  }
  uint8_t jefe[32] = "Jefe";
  cs_hmac_key_set(&k, jefe);
  const char *m = "what do ya want for nothing?";
  cs_hmac_sha256_with(&k, m, strlen(m), got);
  unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", exp, 32);
  assert_memory_equal(got, exp, 32);
  cs_wipe(&k, sizeof k);
}

/* SHA-256 and both HMACs give mbedTLS's bytes at every length from 0 to
 * 300 (the block and padding boundaries of 64 and 55/56), at a large one,
 * and for keys shorter than, equal to and longer than a block (hashed
 * first, RFC 2104). */
static void test_hash_matches_mbedtls(void **state) {
  (void)state;
  static uint8_t msg[70000];
  uint8_t key[100], got[32], exp[32];
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 131 + (i >> 8));
  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 7 + 3);
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  cs_hmac_key k;
  cs_hmac_key_set(&k, key);
  const size_t klens[] = {0, 1, 20, 32, 63, 64, 65, 100};
  for (size_t n = 0; n <= 301; n++) {
    size_t len = n == 301 ? sizeof msg : n;
    assert_int_equal(mbedtls_sha256_ret(msg, len, exp, 0), 0);
    cs_sha256(msg, len, got);
    assert_memory_equal(got, exp, 32);
    assert_int_equal(mbedtls_md_hmac(md, key, 32, msg, len, exp), 0);
    cs_hmac_sha256_with(&k, msg, len, got);
    assert_memory_equal(got, exp, 32);
    for (size_t j = 0; j < sizeof klens / sizeof klens[0]; j++) {
      assert_int_equal(mbedtls_md_hmac(md, key, klens[j], msg, len, exp), 0);
      cs_hmac_sha256(key, klens[j], msg, len, got);
      assert_memory_equal(got, exp, 32);
    }
  }
  cs_wipe(&k, sizeof k);
}

/* The last 16 words of SHA-256's message schedule for one padded block of
 * msg (n <= 55), as native words: nettle's C code expands the schedule in
 * place, and 16 consecutive words of it give back the block (the
 * recurrence runs backwards), so they are as secret as the message. */
#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void block_schedule_tail(const uint8_t block[64], uint32_t tail[16]) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
           (uint32_t)block[4 * t + 2] << 8 | block[4 * t + 3];
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  /* Word by word: libc's memcpy would leave the words in a vector register
   * (zmm16 and up) that a signal frame saves, and the scan would find the
   * test's own copy. */
  volatile uint32_t *t = tail;
  for (int i = 0; i < 16; i++)
    t[i] = w[48 + i];
  cs_wipe(w, sizeof w);
}

static void schedule_tail(const uint8_t *msg, size_t n, uint32_t tail[16]) {
  uint8_t block[64] = {0};
  for (size_t i = 0; i < n; i++) /* not memcpy: see block_schedule_tail */
    ((volatile uint8_t *)block)[i] = msg[i];
  block[n] = 0x80;
  block[62] = (uint8_t)((n * 8) >> 8);
  block[63] = (uint8_t)(n * 8);
  block_schedule_tail(block, tail);
  cs_wipe(block, sizeof block);
}

/* The schedule tail of a 32-byte key's HMAC pad block (key XOR pad). */
static void pad_schedule_tail(const uint8_t key[32], uint8_t pad, uint32_t tail[16]) {
  uint8_t block[64];
  for (size_t i = 0; i < sizeof block; i++)
    block[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ pad);
  block_schedule_tail(block, tail);
  cs_wipe(block, sizeof block);
}

/* Zeroes the stack below the caller: what schedule_tail computed may sit in
 * spill slots too (it does under ASan). */
__attribute__((noinline)) static void clear_stack(void) {
  volatile uint8_t scratch[16384];
  for (size_t i = 0; i < sizeof scratch; i++)
    scratch[i] = 0;
}

/* After a hash or a MAC of a secret that fits one block (a token), no
 * 16-byte run of it (as bytes or as the big-endian words SHA-256 loads),
 * of its expanded schedule, of the key or of the schedule of the key's pad
 * blocks is left on the stack below the caller, nor in the vector
 * registers (a signal frame copies them onto the stack).  Run on nettle's
 * C code (NETTLE_FAT_OVERRIDE=none) this fails without crypto.c's
 * burn_stack; with the SHA extensions, after a signal, without its clearing
 * of the registers. */
__attribute__((noinline)) static void hash_on_stack(const uint8_t *key, const uint8_t *msg,
                                                     size_t n, int which) {
  uint8_t out[32];
  cs_hmac_key k;
  switch (which) {
  case 0: cs_sha256(msg, n, out); break;
  case 1: cs_hmac_sha256(key, 32, msg, n, out); break;
  case 2:
    cs_hmac_key_set(&k, key);
    cs_hmac_sha256_with(&k, msg, n, out);
    cs_wipe(&k, sizeof k);
    break;
  default: /* the key alone: its last compression is the outer pad's */
    cs_hmac_key_set(&k, key);
    cs_wipe(&k, sizeof k);
  }
}

static void on_usr1(int sig) { (void)sig; }

static void test_hash_leaves_no_secret_on_stack(void **state) {
  (void)state;
  static uint8_t key[32], msg[48];
  static uint32_t tail[16], ipad[16], opad[16];
  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(0x3C ^ (i * 29));
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(0xC3 ^ (i * 53));
  schedule_tail(msg, sizeof msg, tail);
  pad_schedule_tail(key, 0x36, ipad);
  pad_schedule_tail(key, 0x5c, opad);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
  for (int sig = 0; sig <= 1; sig++)
    for (int which = 0; which < 4; which++) {
      clear_stack(); /* the scan must find only what this hash leaves */
      hash_on_stack(key, msg, sizeof msg, which);
      if (sig)
        raise(SIGUSR1); /* its frame holds the vector registers */
      for (size_t off = 0; off + 16 <= sizeof msg; off += 16) {
        assert_int_equal(copies_below(msg + off, 0), 0);
        assert_int_equal(copies_below(msg + off, 1), 0);
      }
      for (size_t w = 0; w + 4 <= 16; w += 4) {
        if (which == 0) /* the MACs' last block is the outer hash's */
          assert_int_equal(copies_below((const uint8_t *)(tail + w), 0), 0);
        assert_int_equal(copies_below((const uint8_t *)(ipad + w), 0), 0);
        assert_int_equal(copies_below((const uint8_t *)(opad + w), 0), 0);
      }
      assert_int_equal(copies_below(key, 0), 0);
      assert_int_equal(copies_below(key + 16, 0), 0);
    }
  signal(SIGUSR1, SIG_DFL);
}

/* hex and base64: tests/unit/test_encoding.c (common/encoding.c). */

/* ---- DRBG ------------------------------------------------------------------ */

static void *draw_thread(void *arg) {
  uint8_t *buf = arg;
  for (int i = 0; i < 200; i++)
    if (cs_random(buf, 64) != 0)
      return (void *)1;
  return NULL;
}

static void test_random(void **state) {
  (void)state;
  assert_int_equal(cs_crypto_init(), 0);
  assert_int_equal(cs_crypto_init(), 0); /* idempotent */
  uint8_t a[32], b[32];
  assert_int_equal(cs_random(a, sizeof a), 0);
  assert_int_equal(cs_random(b, sizeof b), 0);
  assert_memory_not_equal(a, b, sizeof a);
  assert_false(all_zero(a, sizeof a));
  assert_int_equal(cs_random(a, 0), 0);

  /* Above the DRBG's 1024-byte request limit: must be chunked, and the
   * chunks must differ from one another. */
  static uint8_t big[5000];
  assert_int_equal(cs_random(big, sizeof big), 0);
  assert_memory_not_equal(big, big + 1024, 1024);
  assert_memory_not_equal(big + 1024, big + 2048, 1024);
  assert_false(all_zero(big + 4096, sizeof big - 4096));

  /* Concurrent draws are serialized, never fail and never repeat. */
  pthread_t th[4];
  static uint8_t bufs[4][64];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, draw_thread, bufs[i]), 0);
  for (int i = 0; i < 4; i++) {
    void *ret;
    assert_int_equal(pthread_join(th[i], &ret), 0);
    assert_null(ret);
  }
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++)
      assert_memory_not_equal(bufs[i], bufs[j], 64);
}

/* ---- secmem ---------------------------------------------------------------- */

static void test_secmem(void **state) {
  (void)state;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {0, 1, 32, 4095, 4096, 4097, 100000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint8_t *p = cs_secmem_alloc(sizes[i]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % page, 0);
    assert_true(all_zero(p, sizes[i]));
    memset(p, 0x5A, sizes[i]);
    cs_secmem_free(p, sizes[i]);
  }
  /* Many small allocations (one page each): all usable and distinct. */
  uint8_t *keys[64];
  for (int i = 0; i < 64; i++) {
    keys[i] = cs_secmem_alloc(32);
    assert_non_null(keys[i]);
    memset(keys[i], i, 32);
  }
  for (int i = 0; i < 64; i++) {
    assert_int_equal(keys[i][31], i);
    cs_secmem_free(keys[i], 32);
  }
  cs_secmem_free(NULL, 32);
  assert_null(cs_secmem_alloc(SIZE_MAX));
  /* Failures are only counted; print them so a low memlock limit is visible. */
  printf("secmem lock failures: %lu\n", cs_secmem_lock_failures());

  uint8_t w[16];
  memset(w, 0xFF, sizeof w);
  cs_wipe(w, sizeof w);
  assert_true(all_zero(w, sizeof w));
  cs_wipe(NULL, 0);
}

static void test_ct_equal(void **state) {
  (void)state;
  uint8_t a[33], b[33];
  assert_int_equal(cs_random(a, sizeof a), 0);
  memcpy(b, a, sizeof a);
  assert_int_equal(cs_ct_equal(a, b, sizeof a), 1);
  for (size_t i = 0; i < sizeof a; i++) {
    b[i] ^= 0x01;
    assert_int_equal(cs_ct_equal(a, b, sizeof a), 0);
    b[i] ^= 0x81;
    assert_int_equal(cs_ct_equal(a, b, sizeof a), 0);
    b[i] ^= 0x80;
  }
  assert_int_equal(cs_ct_equal(a, b, 0), 1);
}

/* ---- time ------------------------------------------------------------------ */

static void test_time(void **state) {
  (void)state;
  char buf[32];
  cs_rfc3339(0, buf, sizeof buf);
  assert_string_equal(buf, "1970-01-01T00:00:00Z");
  cs_rfc3339(1795321526, buf, sizeof buf);
  assert_string_equal(buf, "2026-11-22T04:25:26Z");
  cs_rfc3339(1795321526, buf, 5); /* too small: empty, not truncated garbage */
  assert_string_equal(buf, "");
  assert_true(cs_now() > 1600000000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gcm_known_answer), cmocka_unit_test(test_gcm_roundtrip_and_tamper),
      cmocka_unit_test(test_gcm_matches_mbedtls),
      cmocka_unit_test(test_gcm_leaves_no_key_on_stack),
      cmocka_unit_test(test_sha256),           cmocka_unit_test(test_hmac_rfc4231), cmocka_unit_test(test_hmac_with_key),
      cmocka_unit_test(test_hash_matches_mbedtls), cmocka_unit_test(test_hash_leaves_no_secret_on_stack),
      cmocka_unit_test(test_random),           cmocka_unit_test(test_secmem),
      cmocka_unit_test(test_ct_equal),         cmocka_unit_test(test_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
