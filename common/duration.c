/* duration: parsing and formatting of durations (duration.h). */
#include "duration.h"
#include "cs_error.h"

#include <stdio.h>
#include <string.h>

static const struct {
  char unit;
  uint64_t mult;
} units[] = {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
#define NUNITS (sizeof units / sizeof units[0])

/* The duration may be anything a user typed: quote at most 64 bytes. */
#define Q(s) (int)(strlen(s) > 64 ? 64 : strlen(s)), (s)

int cs_duration_parse(const char *s, uint64_t *seconds) {
  if (s == NULL || *s == '\0')
    return cs_error_set(CS_EINVAL, "empty duration");
  uint64_t total = 0;
  size_t next_unit = 0; /* units come largest first, each once */
  const char *q = s;
  while (*q != '\0') {
    if (*q < '0' || *q > '9')
      return cs_error_set(CS_EINVAL, "bad duration \"%.*s\": expected a number", Q(s));
    uint64_t n = 0;
    while (*q >= '0' && *q <= '9') {
      unsigned d = (unsigned)(*q - '0');
      if (n > (UINT64_MAX - d) / 10)
        return cs_error_set(CS_EINVAL, "duration \"%.*s\" is too large", Q(s));
      n = n * 10 + d;
      q++;
    }
    uint64_t mult;
    if (*q == '\0') {
      if (next_unit != 0)
        return cs_error_set(CS_EINVAL, "bad duration \"%.*s\": missing unit", Q(s));
      mult = 1; /* a bare number: seconds */
    } else {
      size_t u = next_unit;
      while (u < NUNITS && units[u].unit != *q)
        u++;
      if (u == NUNITS)
        return cs_error_set(CS_EINVAL,
                            "bad duration \"%.*s\": units are w, d, h, m, s, largest first, "
                            "each once", Q(s));
      mult = units[u].mult;
      next_unit = u + 1;
      q++;
    }
    if (n > UINT64_MAX / mult || total > UINT64_MAX - n * mult)
      return cs_error_set(CS_EINVAL, "duration \"%.*s\" is too large", Q(s));
    total += n * mult;
  }
  *seconds = total;
  return 0;
}

void cs_duration_format(uint64_t s, char *buf, size_t cap) {
  size_t off = 0;
  if (cap == 0)
    return;
  buf[0] = '\0';
  if (s == 0) {
    snprintf(buf, cap, "0s");
    return;
  }
  /* Days are the largest unit printed: "30d" reads better than "4w2d". */
  for (size_t i = 1; i < NUNITS; i++) {
    uint64_t q = s / units[i].mult;
    s %= units[i].mult;
    if (q == 0)
      continue;
    int n = snprintf(buf + off, cap - off, "%llu%c", (unsigned long long)q, units[i].unit);
    if (n < 0 || (size_t)n >= cap - off)
      return;
    off += (size_t)n;
  }
}
