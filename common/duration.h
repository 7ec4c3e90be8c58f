/*
 * duration: "90s", "2m", "24h", "7d", "2w", "1h30m", or a bare number of
 * seconds: the one parser for the configuration, the CLI's options and
 * the HTTP API's ttl/increment/interval strings.
 *
 * Grammar: either digits alone (seconds), or one or more <digits><unit>
 * groups with units w, d, h, m, s, largest first, each at most once.  No
 * spaces, signs, fractions or sub-second units; a value that does not fit
 * in 64 bits of seconds is refused, never wrapped (a wrapped TTL would
 * turn "very long" into "already expired" or worse).
 */
#ifndef CS_DURATION_H
#define CS_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* 0 with *seconds, or CS_EINVAL with a detail (cs_error_message); *seconds
 * is untouched on failure. */
int cs_duration_parse(const char *s, uint64_t *seconds) __attribute__((warn_unused_result));
/* Seconds as "9d3h4m5s" ("0s" for 0; days are the largest unit) into buf. */
void cs_duration_format(uint64_t seconds, char *buf, size_t cap);

#endif
