/*
 * rewrap: re-encrypting stored values under the active term, so older
 * terms can be retired; the core steps, without any scheduling.
 *
 * A rewrap is a pass over every stored value in key order, driven by a
 * cursor persisted under the barrier at core/rewrap.  Each step
 * (cs_rewrap_build) reads up to N values stored under a term older than
 * the active one (or below a given term), re-encrypts each under the
 * active term, and stages into ONE batch: a conditional put per value
 * (cs_batch_put_if_digest: skipped at commit if the value was rewritten or
 * deleted since it was read, so the newer write always wins and nothing
 * deleted comes back) and, last, the advanced cursor.  The caller commits
 * that batch through the commit path (standalone: one LMDB transaction;
 * cluster: one raft entry, so it replicates like any write).  A crash
 * before the commit loses only the step: the persisted cursor still points
 * before it and the next build redoes it; a crash after it loses nothing.
 *
 * The cursor's values are counted like any other (termcount.h); the rewrap
 * never selects core/rewrap itself (every step rewrites it under the
 * active term anyway).  If the active term changes during a pass (a
 * rotation), the next build restarts the pass from the first key under the
 * new active term: values written under the previous one behind the
 * cursor would otherwise be missed.
 *
 * Retiring (cs_rewrap_stage_retire) is checked twice: against the counts
 * when the batch is built, for a clear refusal with the number of values
 * left, and in the transaction that commits it (require_empty_term), so a
 * rewrap batch still in flight can never leave values under a term whose
 * key is gone.
 */
#ifndef CS_REWRAP_H
#define CS_REWRAP_H

#include <stddef.h>
#include <stdint.h>
#include "keyring.h"
#include "store.h"

#define CS_REWRAP_PATH "core/rewrap"

typedef struct cs_rewrap_cursor {
  char after[CS_STORE_KEY_MAX + 1]; /* last key handled; "" = from the start */
  uint32_t below_term;   /* 0: every term older than target_term */
  uint32_t target_term;  /* the active term this pass re-encrypts to */
  uint64_t done;         /* values re-encrypted (staged) by this pass */
  uint64_t total;        /* values under the selected terms when the pass began */
  uint64_t skipped;      /* values that could not be opened (retired or unknown term) */
  int64_t started, updated;
  int finished;          /* the pass reached the last key */
  uint64_t rate;         /* values/s the driver may move (0: its default); kept
                          * across a restart of the pass; not used here */
} cs_rewrap_cursor;

/* What one step did. */
typedef struct cs_rewrap_step {
  size_t staged;         /* re-encryptions put into the batch */
  size_t examined;       /* keys read */
  int finished;          /* the pass is complete (the cursor in the batch says so) */
  int restarted;         /* the active term changed: the pass began again */
} cs_rewrap_step;

/* Reads the persisted cursor.  CS_ENOTFOUND when no rewrap ever ran. */
int cs_rewrap_load(cs_store *st, const cs_keyring *k, cs_rewrap_cursor *c)
    __attribute__((warn_unused_result));

/*
 * Starts a pass at the first key: fills *c (total from the exact counts)
 * and stages the cursor into b.  below_term 0 selects every term older than
 * the active one; otherwise only terms below below_term (and below the
 * active term: a below_term above it is the same as 0).
 */
int cs_rewrap_start(cs_store *st, cs_keyring *k, uint32_t below_term, int64_t now,
                    cs_rewrap_cursor *c, cs_batch *b) __attribute__((warn_unused_result));

/*
 * One step: up to max_values re-encryptions (and at most 16 * max_values
 * keys read, so a step over a store with little left to do stays short)
 * staged into b, the cursor advanced in *c and staged into b, last.  On
 * error b may hold a partial step: clear it.  Calling it on a finished
 * cursor stages nothing and reports finished.
 */
int cs_rewrap_build(cs_store *st, cs_keyring *k, cs_rewrap_cursor *c, size_t max_values,
                    int64_t now, cs_batch *b, cs_rewrap_step *res) __attribute__((warn_unused_result));

/* Stages *c as the persisted cursor (core/rewrap) into b: what the driver
 * uses to persist a changed rate with its next step. */
int cs_rewrap_stage_cursor(cs_keyring *k, const cs_rewrap_cursor *c, cs_batch *b)
    __attribute__((warn_unused_result));

/* The number of stored values a pass with below_term (see cs_rewrap_start)
 * still has to move: exact, from the counts. */
int cs_rewrap_remaining(cs_store *st, const cs_keyring *k, uint32_t below_term,
                        uint64_t *remaining) __attribute__((warn_unused_result));

/*
 * Whether `term` may be retired now: 0, or CS_ENOTERM (no such term),
 * CS_ETERMSTATE (the active term, a staged one, or already retired, with
 * a detail), CS_ETERMINUSE ("term N still encrypts V stored value(s):
 * rewrap them first").
 */
int cs_rewrap_retire_check(cs_store *st, const cs_keyring *k, uint32_t term)
    __attribute__((warn_unused_result));

/*
 * Builds the retirement of `term` into `next` (a clone of the live ring)
 * and b: checks as cs_rewrap_retire_check, moves the term to retired
 * (its key wiped), deletes the upgrade keys that hold or are sealed under
 * it (core/upgrade/<term-1>, core/upgrade/<term>), and sets
 * b->require_empty_term.  The caller then stages `next` as core/keyring in
 * the same batch (seal.c's stage_keyring), commits, and swaps the ring in
 * only after the commit succeeded.
 */
int cs_rewrap_stage_retire(cs_store *st, cs_keyring *next, uint32_t term, int64_t now,
                           cs_batch *b) __attribute__((warn_unused_result));

#endif
