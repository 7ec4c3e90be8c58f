/*
 * staging: the active node's side of staged activation (docs/ha.md,
 * "Staged activation").  Every poll interval the active looks at the staged
 * term of its keyring (if any) and at what every other member last
 * reported: a member holds the term when its status report carries the
 * term with a valid proof of holding its key (cs_seal_term_proof), or when
 * it reports itself sealed with a replica that has applied the staging
 * entry (a sealed node loads the whole keyring from its replica when it is
 * unsealed, staged term included, so it never needs the upgrade key).  Once
 * every voter holds it, or seal.max_activation_delay has passed since the
 * rotation staged it, the active commits the activation
 * (cs_seal_activate); the decision itself is cs_activation_decide.
 *
 * Why the status report carries the acknowledgment: a standby cannot
 * propose raft entries, and the report already goes to the leader every
 * poll interval over the mutually authenticated cluster channel, where the
 * leader accepts it only from the node the TLS certificate names.  The
 * proof makes the acknowledgment mean "I hold the key", not "I say so".
 *
 * Time: the wait is the larger of the wall-clock time since the term's
 * install time (kept in the keyring, so a new leader keeps counting) and
 * the monotonic time since this node first saw the term staged (so a clock
 * set back cannot hold activation back longer than max_activation_delay on
 * one leader).
 */
#ifndef CS_HA_STAGING_H
#define CS_HA_STAGING_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"

struct cs_ha;

/* Leader and active only (ha.c's poll). */
void cs_staging_tick(struct cs_ha *ha);

/* What key-status shows about the staged term: the voters that have not
 * acknowledged it yet (up to cap names) and the time by which it activates
 * at the latest.  Returns the number of such voters; *deadline is 0 when
 * no term is staged.  ha NULL (standalone): no voters, only the deadline.
 * (The api calls it as cs_staging_waiting(d, ...) through daemon.c.) */
size_t cs_staging_laggards(struct cs_ha *ha, cs_seal *seal, unsigned max_delay, char (*names)[64],
                           size_t cap, int64_t *deadline);

#endif
