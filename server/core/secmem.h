/*
 * secmem: memory for long-lived key material.
 *
 * Allocations are page-backed, mlock'ed (so keys never reach swap) and
 * marked MADV_DONTDUMP (so they never reach a core file).  They are wiped
 * before they are unlocked and freed.  When the memlock limit prevents
 * locking, the memory is still usable; cs_secmem_lock_failures() tells how
 * often that happened so the daemon can report it once.
 */
#ifndef CS_SECMEM_H
#define CS_SECMEM_H

#include <stddef.h>

/* Zeroed, locked memory of `n` bytes; NULL when out of memory. */
void *cs_secmem_alloc(size_t n);
/* Wipes and frees memory from cs_secmem_alloc (NULL is a no-op). */
void cs_secmem_free(void *p, size_t n);
/* Wipes `n` bytes in a way the compiler cannot elide. */
void cs_wipe(void *p, size_t n);
/* Constant-time comparison: 1 when equal, 0 otherwise. */
int cs_ct_equal(const void *a, const void *b, size_t n) __attribute__((warn_unused_result));
/* How many allocations could not be mlock'ed (memlock limit). */
unsigned long cs_secmem_lock_failures(void);

#endif
