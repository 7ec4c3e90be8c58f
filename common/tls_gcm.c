/*
 * tls_gcm: see tls_gcm.h.
 *
 * mbedtls_cipher_context_t has no room for our state, so a table maps each
 * keyed context to its libsodium state: open addressing on the context's
 * address, under one mutex (the raft transport's TLS and the API's run on
 * different threads).  A context is used by one thread at a time (mbedTLS
 * contexts are not thread-safe), and only mbedtls_cipher_setkey and
 * mbedtls_cipher_free of that same context replace or free its state, so
 * the state found under the lock stays valid after it is released.
 */
#include "tls_gcm.h"
#include "bytes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/cipher.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/version.h>
#include <sodium.h>

#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16

/* The real calls, in libmbedcrypto (the linker's --wrap names them). */
void __real_mbedtls_cipher_init(mbedtls_cipher_context_t *ctx);
int __real_mbedtls_cipher_setup(mbedtls_cipher_context_t *ctx,
                                const mbedtls_cipher_info_t *cipher_info);
int __real_mbedtls_cipher_setkey(mbedtls_cipher_context_t *ctx, const unsigned char *key,
                                 int key_bitlen, const mbedtls_operation_t operation);
void __real_mbedtls_cipher_free(mbedtls_cipher_context_t *ctx);
int __real_mbedtls_cipher_auth_encrypt_ext(mbedtls_cipher_context_t *ctx, const unsigned char *iv,
                                           size_t iv_len, const unsigned char *ad, size_t ad_len,
                                           const unsigned char *input, size_t ilen,
                                           unsigned char *output, size_t output_len, size_t *olen,
                                           size_t tag_len);
int __real_mbedtls_cipher_auth_decrypt_ext(mbedtls_cipher_context_t *ctx, const unsigned char *iv,
                                           size_t iv_len, const unsigned char *ad, size_t ad_len,
                                           const unsigned char *input, size_t ilen,
                                           unsigned char *output, size_t output_len, size_t *olen,
                                           size_t tag_len);

/* The wrappers, declared for -Wmissing-prototypes. */
void __wrap_mbedtls_cipher_init(mbedtls_cipher_context_t *ctx);
int __wrap_mbedtls_cipher_setup(mbedtls_cipher_context_t *ctx,
                                const mbedtls_cipher_info_t *cipher_info);
int __wrap_mbedtls_cipher_setkey(mbedtls_cipher_context_t *ctx, const unsigned char *key,
                                 int key_bitlen, const mbedtls_operation_t operation);
void __wrap_mbedtls_cipher_free(mbedtls_cipher_context_t *ctx);
int __wrap_mbedtls_cipher_auth_encrypt_ext(mbedtls_cipher_context_t *ctx, const unsigned char *iv,
                                           size_t iv_len, const unsigned char *ad, size_t ad_len,
                                           const unsigned char *input, size_t ilen,
                                           unsigned char *output, size_t output_len, size_t *olen,
                                           size_t tag_len);
int __wrap_mbedtls_cipher_auth_decrypt_ext(mbedtls_cipher_context_t *ctx, const unsigned char *iv,
                                           size_t iv_len, const unsigned char *ad, size_t ad_len,
                                           const unsigned char *input, size_t ilen,
                                           unsigned char *output, size_t output_len, size_t *olen,
                                           size_t tag_len);

/* ---- whether the CPU can ------------------------------------------------------ */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int fast; /* set once by probe() */

static void probe(void) {
  fast = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

int cs_tls_gcm_available(void) {
  pthread_once(&probe_once, probe);
  return fast;
}

int cs_tls_gcm_versions(char built[18], char running[18]) {
  /* mbedtls_version_get_string (at most 18 bytes) is in the shared
   * libmbedcrypto (version.c); MBEDTLS_VERSION_STRING is the headers' of the
   * build, the same package as libmbedtls.a. */
  mbedtls_version_get_string(running);
  cs_strlcpy(built, MBEDTLS_VERSION_STRING, 18);
  return strcmp(built, running) != 0;
}

static _Atomic uint64_t records;

uint64_t cs_tls_gcm_records(void) { return atomic_load_explicit(&records, memory_order_relaxed); }

/* ---- the table: keyed context -> libsodium state -------------------------------- */

typedef struct slot {
  const mbedtls_cipher_context_t *ctx; /* NULL: free */
  crypto_aead_aes256gcm_state *st;
} slot;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slot *tab;
static size_t cap, used; /* cap: 0 or a power of two; used <= cap / 2 */

size_t cs_tls_gcm_states(void) {
  pthread_mutex_lock(&mu);
  size_t n = used;
  pthread_mutex_unlock(&mu);
  return n;
}

static size_t home(const void *p, size_t mask) {
  return (size_t)(((uintptr_t)p >> 4) * UINT64_C(0x9E3779B97F4A7C15) >> 20) & mask;
}

/* The slot of ctx, or the free one where it would go (mu held, cap > 0). */
static size_t find(const mbedtls_cipher_context_t *ctx) {
  size_t i = home(ctx, cap - 1);
  while (tab[i].ctx != NULL && tab[i].ctx != ctx)
    i = (i + 1) & (cap - 1);
  return i;
}

/* Room for one more entry (mu held): 0, or -1 when out of memory. */
static int grow(void) {
  if (used + 1 <= cap / 2)
    return 0;
  size_t ncap = cap ? cap * 2 : 64;
  slot *old = tab, *nt = calloc(ncap, sizeof *nt);
  size_t ocap = cap;
  if (nt == NULL)
    return -1;
  tab = nt;
  cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].ctx != NULL)
      tab[find(old[i].ctx)] = old[i];
  free(old);
  return 0;
}

/* Removes slot i, moving later entries of its run back (no tombstones). */
static void remove_at(size_t i) {
  size_t mask = cap - 1, j = i;
  tab[i].ctx = NULL;
  tab[i].st = NULL;
  for (;;) {
    j = (j + 1) & mask;
    if (tab[j].ctx == NULL)
      return;
    size_t h = home(tab[j].ctx, mask);
    /* tab[j] may fill the hole at i unless its home lies cyclically in (i, j]. */
    if ((i <= j) ? (h <= i || h > j) : (h <= i && h > j)) {
      tab[i] = tab[j];
      tab[j].ctx = NULL;
      tab[j].st = NULL;
      i = j;
    }
  }
}

/* ctx's state; none for a context not (or no longer) set up for
 * AES-256-GCM, whatever the table says. */
static crypto_aead_aes256gcm_state *lookup(const mbedtls_cipher_context_t *ctx) {
  crypto_aead_aes256gcm_state *st = NULL;
  if (!cs_tls_gcm_available() || mbedtls_cipher_get_type(ctx) != MBEDTLS_CIPHER_AES_256_GCM)
    return NULL;
  pthread_mutex_lock(&mu);
  if (cap > 0) {
    size_t i = find(ctx);
    st = tab[i].st;
  }
  pthread_mutex_unlock(&mu);
  return st;
}

static void state_free(crypto_aead_aes256gcm_state *st) {
  if (st != NULL) {
    sodium_memzero(st, sizeof *st);
    free(st);
  }
}

/* Drops ctx's state, if it has one. */
static void detach(const mbedtls_cipher_context_t *ctx) {
  crypto_aead_aes256gcm_state *st = NULL;
  if (!cs_tls_gcm_available())
    return; /* nothing is ever attached */
  pthread_mutex_lock(&mu);
  if (cap > 0) {
    size_t i = find(ctx);
    if (tab[i].ctx != NULL) {
      st = tab[i].st;
      remove_at(i);
      used--;
    }
  }
  pthread_mutex_unlock(&mu);
  state_free(st);
}

/* Gives ctx a state for key (replacing any older one).  On failure ctx has
 * none, and its records run on mbedTLS. */
static void attach(const mbedtls_cipher_context_t *ctx, const unsigned char key[32]) {
  crypto_aead_aes256gcm_state *st = NULL, *old = NULL;
  /* libsodium's state is read with aligned 16-byte loads. */
  if (posix_memalign((void **)&st, 16, sizeof *st) != 0) {
    detach(ctx);
    return;
  }
  crypto_aead_aes256gcm_beforenm(st, key);
  pthread_mutex_lock(&mu);
  if (grow() < 0) {
    pthread_mutex_unlock(&mu);
    state_free(st);
    detach(ctx);
    return;
  }
  size_t i = find(ctx);
  if (tab[i].ctx == NULL) {
    tab[i].ctx = ctx;
    used++;
  }
  old = tab[i].st;
  tab[i].st = st;
  pthread_mutex_unlock(&mu);
  state_free(old);
}

/* ---- the calls ------------------------------------------------------------------ */

/* A context initialized or set up again, without mbedtls_cipher_free in
 * between, must not keep the state of its last key: mbedTLS's own context
 * is unkeyed then, so the state would encrypt under a key it lost. */
void __wrap_mbedtls_cipher_init(mbedtls_cipher_context_t *ctx) {
  if (ctx != NULL)
    detach(ctx);
  __real_mbedtls_cipher_init(ctx);
}

int __wrap_mbedtls_cipher_setup(mbedtls_cipher_context_t *ctx,
                                const mbedtls_cipher_info_t *cipher_info) {
  if (ctx != NULL)
    detach(ctx);
  return __real_mbedtls_cipher_setup(ctx, cipher_info);
}

int __wrap_mbedtls_cipher_setkey(mbedtls_cipher_context_t *ctx, const unsigned char *key,
                                 int key_bitlen, const mbedtls_operation_t operation) {
  int rc = __real_mbedtls_cipher_setkey(ctx, key, key_bitlen, operation);
  if (rc == 0 && key_bitlen == 256 && mbedtls_cipher_get_type(ctx) == MBEDTLS_CIPHER_AES_256_GCM &&
      cs_tls_gcm_available())
    attach(ctx, key);
  else
    detach(ctx); /* re-keyed to something else, or failed: mbedTLS alone */
  return rc;
}

void __wrap_mbedtls_cipher_free(mbedtls_cipher_context_t *ctx) {
  if (ctx != NULL)
    detach(ctx);
  __real_mbedtls_cipher_free(ctx);
}

/* Input and output either the same buffer or apart (as mbedTLS requires). */
static int same_or_apart(const unsigned char *in, size_t in_len, const unsigned char *out,
                         size_t out_len) {
  return in == out || in + in_len <= out || out + out_len <= in;
}

int __wrap_mbedtls_cipher_auth_encrypt_ext(mbedtls_cipher_context_t *ctx, const unsigned char *iv,
                                           size_t iv_len, const unsigned char *ad, size_t ad_len,
                                           const unsigned char *input, size_t ilen,
                                           unsigned char *output, size_t output_len, size_t *olen,
                                           size_t tag_len) {
  crypto_aead_aes256gcm_state *st = lookup(ctx);
  if (st == NULL || iv_len != GCM_IV_LEN || tag_len != GCM_TAG_LEN || iv == NULL ||
      ad == NULL || input == NULL || output == NULL || olen == NULL ||
      ilen > crypto_aead_aes256gcm_MESSAGEBYTES_MAX || output_len < ilen ||
      output_len - ilen < GCM_TAG_LEN || !same_or_apart(input, ilen, output, ilen + GCM_TAG_LEN))
    return __real_mbedtls_cipher_auth_encrypt_ext(ctx, iv, iv_len, ad, ad_len, input, ilen,
                                                  output, output_len, olen, tag_len);
  /* ciphertext || tag, as mbedtls_cipher_auth_encrypt_ext writes it */
  crypto_aead_aes256gcm_encrypt_detached_afternm(output, output + ilen, NULL, input, ilen, ad,
                                                 ad_len, NULL, iv, st);
  *olen = ilen + GCM_TAG_LEN;
  atomic_fetch_add_explicit(&records, 1, memory_order_relaxed);
  return 0;
}

int __wrap_mbedtls_cipher_auth_decrypt_ext(mbedtls_cipher_context_t *ctx, const unsigned char *iv,
                                           size_t iv_len, const unsigned char *ad, size_t ad_len,
                                           const unsigned char *input, size_t ilen,
                                           unsigned char *output, size_t output_len, size_t *olen,
                                           size_t tag_len) {
  crypto_aead_aes256gcm_state *st = lookup(ctx);
  if (st == NULL || iv_len != GCM_IV_LEN || tag_len != GCM_TAG_LEN || iv == NULL ||
      ad == NULL || input == NULL || output == NULL || olen == NULL || ilen < GCM_TAG_LEN ||
      ilen - GCM_TAG_LEN > crypto_aead_aes256gcm_MESSAGEBYTES_MAX || output_len < ilen - GCM_TAG_LEN ||
      !same_or_apart(input, ilen - GCM_TAG_LEN, output, ilen - GCM_TAG_LEN))
    return __real_mbedtls_cipher_auth_decrypt_ext(ctx, iv, iv_len, ad, ad_len, input, ilen,
                                                  output, output_len, olen, tag_len);
  size_t n = ilen - GCM_TAG_LEN;
  if (crypto_aead_aes256gcm_decrypt_detached_afternm(output, NULL, input, n, input + n, ad,
                                                     ad_len, iv, st) != 0) {
    mbedtls_platform_zeroize(output, n); /* no unauthenticated plaintext */
    return MBEDTLS_ERR_CIPHER_AUTH_FAILED;
  }
  *olen = n;
  atomic_fetch_add_explicit(&records, 1, memory_order_relaxed);
  return 0;
}
