/*
 * termcount: how many stored values are encrypted under each key term.
 *
 * The counts are exact, not estimated: store.c keeps them in the meta
 * database (record "term_counts") and updates them inside the very write
 * transaction that puts, overwrites or deletes a value (an overwrite moves
 * one value from the old ciphertext's term to the new one), so a crash
 * can never leave them out of step with the data.  In a cluster every
 * member derives them from the same raft entries; they are bookkeeping of
 * each node, never replicated themselves.  A store opened without the
 * record (written by an older custosd) gets it from one full scan at open.
 *
 * What is counted (cs_termcount_classify): every barrier value in the data
 * database, i.e. KV data, tokens, policies, core/rotate-config,
 * core/audit-key, core/root-key, the rewrap cursor and anything added
 * later under the barrier.  Excluded, and why:
 *  - core/seal-config and core/restore: plaintext, not barrier values;
 *  - term 0 values (core/unseal/root-key under the unseal key,
 *    core/keyring under the root key): the key hierarchy, not data terms;
 *  - core/upgrade/<N>: the next term's key wrapped for standbys, transient
 *    (deleted when it expires or every member holds the term) and removed
 *    together with term N when N retires, so it must not hold N back.
 * A value too short for a barrier header or of another barrier version is
 * not counted either (reading it fails anyway); the full scan applies the
 * very same rule, so both agree on every store.
 *
 * Record format: n entries of [term u32 BE][values u64 BE], ascending by
 * term, terms with no value left out.
 */
#ifndef CS_TERMCOUNT_H
#define CS_TERMCOUNT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_store cs_store;

typedef struct cs_term_count {
  uint32_t term;
  uint64_t values;
} cs_term_count;

/* A small sorted array of counts (one entry per term that has values). */
typedef struct cs_termcounts {
  cs_term_count *v;
  size_t n, cap;
} cs_termcounts;

#define CS_TERMCOUNT_ENTRY 12

/* 1 and *term when the value stored at key is counted, else 0. */
int cs_termcount_classify(const char *key, size_t key_len, const uint8_t *val, size_t len,
                          uint32_t *term);

void cs_termcounts_init(cs_termcounts *c);
void cs_termcounts_free(cs_termcounts *c);
/* Values under `term` (0 when none). */
uint64_t cs_termcounts_get(const cs_termcounts *c, uint32_t term);
/* Sum over every term. */
uint64_t cs_termcounts_total(const cs_termcounts *c);
/* Adds one value under term.  0 or CS_ENOMEM. */
int cs_termcounts_inc(cs_termcounts *c, uint32_t term) __attribute__((warn_unused_result));
/* Removes one value under term; 0, or CS_ESTORECORRUPT when the term has
 * none (the counts no longer match the data). */
int cs_termcounts_dec(cs_termcounts *c, uint32_t term) __attribute__((warn_unused_result));
/* 1 when both hold the same counts. */
int cs_termcounts_equal(const cs_termcounts *a, const cs_termcounts *b);

/* Record bytes: *len = n * CS_TERMCOUNT_ENTRY; *out malloc'd. */
int cs_termcounts_encode(const cs_termcounts *c, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
/* Parses a record into c (initialized here).  CS_ESTORECORRUPT on a bad
 * length, unsorted terms or a zero count. */
int cs_termcounts_decode(const uint8_t *buf, size_t len, cs_termcounts *c)
    __attribute__((warn_unused_result));

/*
 * The verification: counts every value of the store by reading each
 * value's term header (one read transaction, cs_termcount_classify), into
 * c (initialized here).  What the maintained counts must always equal.
 */
int cs_termcount_scan(cs_store *s, cs_termcounts *c) __attribute__((warn_unused_result));

#endif
