/*
 * addr: "HOST:PORT" and "[IPv6]:PORT", the one parser for the listener,
 * the configuration, the cluster transport, the client library and the
 * bench.  Syntax only: nothing is resolved here (the caller decides whether
 * HOST may be a name, as the client's is, or must be a literal, as the
 * listener's and the raft transport's are).
 *
 * Accepted: HOST non-empty, at most CS_ADDR_HOST_MAX bytes, without ':'
 * unless in brackets, without brackets inside, printable ASCII without
 * spaces; PORT 1..5 decimal digits, 1..65535, no sign, no spaces.
 */
#ifndef CS_ADDR_H
#define CS_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define CS_ADDR_HOST_MAX 253 /* the longest DNS name */
/* "[" HOST "]:" 5 digits and the terminator. */
#define CS_ADDR_STR_MAX (CS_ADDR_HOST_MAX + 9)

typedef struct cs_addr {
  char host[CS_ADDR_HOST_MAX + 1]; /* without the brackets of an IPv6 literal */
  uint16_t port;
  int bracketed;                   /* written as "[host]:port" */
} cs_addr;

/* Parses s into *out.  0, or CS_EINVAL with a detail (cs_error_message)
 * that names what is wrong; *out is then zeroed. */
int cs_addr_parse(const char *s, cs_addr *out) __attribute__((warn_unused_result));
/* "host:port" or "[host]:port" into buf (CS_ADDR_STR_MAX bytes suffice). */
void cs_addr_format(const cs_addr *a, char *buf, size_t cap);

#endif
