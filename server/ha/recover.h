/*
 * recover: rewriting the raft configuration of a cluster that lost quorum
 * for good (`custosd --config FILE --recover-peers n1[,n2...]`, offline).
 *
 * A cluster whose majority is gone cannot commit anything, not even the
 * membership change that would remove the dead members.  The operator
 * stops every survivor, runs this on the survivor with the longest log
 * (highest applied index), names the survivors, and starts them again:
 * raft_recover() appends the new configuration to the log, and the named
 * survivors elect among themselves.  See docs/ha.md, "Recovering from a
 * lost quorum".
 */
#ifndef CS_RECOVER_H
#define CS_RECOVER_H

#include <stdio.h>
#include "cluster.h"

/* Parses `list` ("n1,n2"), checks it against the configuration stored in
 * the raft log in `raft_dir` (every name a current member, this node
 * among them, no duplicates) and rewrites the configuration to exactly
 * those members (voters, with the addresses the log has for them).
 * What it did goes to `out`.  The caller holds the data directory's lock.
 * 0, or CS_EINVAL / CS_ENOTFOUND / CS_EIO with a detail. */
/* In the raft directory after a recovery: the index of the configuration
 * entry raft_recover wrote (see recover.c: no raft snapshot at it). */
#define CS_RECOVER_MARKER "custos-recovered"

int cs_recover_peers(const char *raft_dir, const cs_cluster_config *cfg, const char *list,
                     FILE *out) __attribute__((warn_unused_result));

#endif
