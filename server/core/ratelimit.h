/*
 * ratelimit: token buckets per client address, for the unauthenticated
 * operations that must not be run at line rate by one client (verify-share).
 *
 * A bucket holds at most `per_minute` tokens and refills at per_minute per
 * 60 s; each allowed call takes one.  Addresses are compared without their
 * port ("127.0.0.1:5555" and "127.0.0.1:6666" share a bucket; so do
 * "[::1]:1" and "[::1]:2").  The table has a fixed number of slots: when
 * it is full, the bucket idle longest is reused (a full bucket: nothing
 * lost), so memory stays bounded whatever the number of addresses.  An
 * attacker with many addresses gets per_minute calls per address; the
 * limit is about one client hammering, not a cap on the whole server.
 *
 * Time is passed in (milliseconds of a monotonic clock), so tests drive it.
 * One thread (the loop).
 */
#ifndef CS_RATELIMIT_H
#define CS_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_ratelimit cs_ratelimit;

/* per_minute >= 1, slots >= 1.  0 or CS_EINVAL / CS_ENOMEM. */
int cs_ratelimit_new(cs_ratelimit **out, unsigned per_minute, size_t slots)
    __attribute__((warn_unused_result));
void cs_ratelimit_free(cs_ratelimit *rl);
/* Changes the rate (a reload); buckets keep their tokens, capped. */
void cs_ratelimit_set_rate(cs_ratelimit *rl, unsigned per_minute);
/*
 * Takes one token for `client` at `now_ms`: 0, or CS_ERATELIMIT (with a
 * detail saying when to retry) when its bucket is empty.
 */
int cs_ratelimit_take(cs_ratelimit *rl, const char *client, uint64_t now_ms)
    __attribute__((warn_unused_result));

#endif
