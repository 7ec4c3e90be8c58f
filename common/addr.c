/* addr: HOST:PORT parsing (addr.h). */
#include "addr.h"
#include "cs_error.h"

#include <stdio.h>
#include <string.h>

static int bad(cs_addr *out, const char *s, const char *why) {
  memset(out, 0, sizeof *out);
  /* The address may be anything a user typed: show at most 80 bytes. */
  return cs_error_set(CS_EINVAL, "address \"%.80s%s\": %s", s, strlen(s) > 80 ? "..." : "", why);
}

int cs_addr_parse(const char *s, cs_addr *out) {
  const char *host, *port;
  size_t hlen;
  memset(out, 0, sizeof *out);
  if (s == NULL || *s == '\0')
    return bad(out, "", "empty (expected HOST:PORT or [IPv6]:PORT)");
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (rb == NULL || rb[1] != ':')
      return bad(out, s, "expected [IPv6]:PORT");
    host = s + 1;
    hlen = (size_t)(rb - host);
    port = rb + 2;
    out->bracketed = 1;
  } else {
    const char *colon = strchr(s, ':');
    if (colon == NULL)
      return bad(out, s, "no port (expected HOST:PORT)");
    if (strchr(colon + 1, ':') != NULL)
      return bad(out, s, "more than one ':' (an IPv6 address goes in brackets: [::1]:7200)");
    host = s;
    hlen = (size_t)(colon - s);
    port = colon + 1;
  }
  if (hlen == 0)
    return bad(out, s, "empty host");
  if (hlen > CS_ADDR_HOST_MAX)
    return bad(out, s, "host too long");
  for (size_t i = 0; i < hlen; i++) {
    unsigned char c = (unsigned char)host[i];
    if (c <= ' ' || c >= 0x7f || c == '[' || c == ']' || c == '/' || (c == ':' && !out->bracketed))
      return bad(out, s, "bad character in the host");
  }
  size_t plen = strlen(port);
  if (plen == 0 || plen > 5)
    return bad(out, s, "the port must be a number from 1 to 65535");
  unsigned long p = 0;
  for (size_t i = 0; i < plen; i++) {
    if (port[i] < '0' || port[i] > '9')
      return bad(out, s, "the port must be a number from 1 to 65535");
    p = p * 10 + (unsigned long)(port[i] - '0');
  }
  if (p == 0 || p > 65535)
    return bad(out, s, "the port must be a number from 1 to 65535");
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';
  out->port = (uint16_t)p;
  return 0;
}

void cs_addr_format(const cs_addr *a, char *buf, size_t cap) {
  snprintf(buf, cap, a->bracketed ? "[%s]:%u" : "%s:%u", a->host, (unsigned)a->port);
}
