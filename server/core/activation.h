/*
 * activation: when a staged term may become active (issue 14, staged
 * activation); a pure decision, no I/O, so the cluster layer calls it on
 * every tick with what it knows and tests can drive every case.
 *
 * A rotation in a cluster installs the new term as staged and distributes
 * it; it is activated only once every voter has acknowledged holding it,
 * so no member ever meets a value it cannot open.  A voter that does not
 * acknowledge holds activation back for at most max_delay seconds after
 * staging; then the term activates anyway and the laggards are named (they
 * seal themselves when they meet the new term, as today).  Non-voters
 * never hold it back.  Standalone (no other member) activation is
 * immediate.
 */
#ifndef CS_ACTIVATION_H
#define CS_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_member_keys {
  const char *node_id;
  int voter;             /* non-voters never hold activation back */
  uint32_t newest_term;  /* the newest term it acknowledged holding (staged included) */
} cs_member_keys;

typedef enum cs_activation {
  CS_ACTIVATION_WAIT = 0,      /* some voter lacks the term, and the delay has not run out */
  CS_ACTIVATION_NOW = 1,       /* every voter holds the term */
  CS_ACTIVATION_OVERDUE = 2,   /* the delay ran out: activate; *laggards voters lack it */
} cs_activation;

/*
 * The decision for `staged_term`, staged at `staged_at`, at `now`, given
 * the OTHER members (the caller holds the term).  *laggards is set to the
 * number of voters that lack it (0 with CS_ACTIVATION_NOW); a clock that
 * went back counts as no time elapsed.
 */
cs_activation cs_activation_decide(uint32_t staged_term, int64_t staged_at, int64_t now,
                                   uint64_t max_delay, const cs_member_keys *members, size_t n,
                                   size_t *laggards);

/*
 * Seconds a staged term has waited: the larger of the wall-clock time since
 * staged_at (0 when the clock is before it) and mono_s, the monotonic
 * seconds since this node first saw the term staged.  So a clock set back
 * holds activation back no longer than max_delay on one leader, and a new
 * leader keeps counting from the install time.
 */
uint64_t cs_activation_waited(int64_t staged_at, int64_t now, uint64_t mono_s);

#endif
