/*
 * secmem: page-backed, locked, undumpable memory for key material.
 *
 * Every allocation is its own anonymous mmap rounded up to whole pages.
 * That wastes most of a page for a 32-byte key, but keys are few and
 * long-lived, and a private mapping is the only way to give each one its
 * own mlock/MADV_DONTDUMP range that is released exactly when the key is
 * freed (a shared locked arena would need its own allocator, and a bug in
 * it would be a bug next to keys).  If keys ever become many, pool them.
 *
 * Invariant: memory handed out is zeroed, and is wiped before munlock and
 * munmap, so no key byte is ever returned to the kernel or left in swap.
 * mlock failure (RLIMIT_MEMLOCK) is not fatal: the memory is still usable,
 * and the failure is counted so the daemon can warn once.
 */
#include "secmem.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mbedtls/constant_time.h>
#include <mbedtls/platform_util.h>

static unsigned long lock_failures;

/* Bytes actually mapped for a request of n bytes (0 on overflow).
 * alloc(0) still maps one page so that it returns a unique pointer. */
static size_t mapped_len(size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (n == 0)
    return page;
  if (n > SIZE_MAX - (page - 1))
    return 0;
  return (n + page - 1) & ~(page - 1);
}

void *cs_secmem_alloc(size_t n) {
  size_t len = mapped_len(n);
  if (len == 0)
    return NULL;
  /* Anonymous mappings come zero-filled from the kernel. */
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  /* Exclude from core dumps first: it cannot fail for lack of a limit. */
  (void)madvise(p, len, MADV_DONTDUMP);
  if (mlock(p, len) != 0)
    __atomic_add_fetch(&lock_failures, 1, __ATOMIC_RELAXED);
  return p;
}

void cs_secmem_free(void *p, size_t n) {
  if (p == NULL)
    return;
  size_t len = mapped_len(n);
  /* Wipe the whole mapping, not just n bytes: a caller may have used
   * the slack, and zeroing before munlock keeps the key out of swap. */
  mbedtls_platform_zeroize(p, len);
  (void)munlock(p, len);
  (void)munmap(p, len);
}

void cs_wipe(void *p, size_t n) {
  if (p != NULL && n != 0)
    mbedtls_platform_zeroize(p, n);
}

int cs_ct_equal(const void *a, const void *b, size_t n) {
  /* mbedtls_ct_memcmp returns 0 for equal and touches every byte. */
  return mbedtls_ct_memcmp(a, b, n) == 0;
}

unsigned long cs_secmem_lock_failures(void) {
  return __atomic_load_n(&lock_failures, __ATOMIC_RELAXED);
}
