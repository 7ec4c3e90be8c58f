/* log: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int min_level = CS_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void cs_log_set_level(int level) { min_level = level; }

int cs_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  return -1;
}

void cs_log(int level, const char *fmt, ...) {
  if (level < min_level)
    return;
  char line[1024], ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* One write per line so lines from several threads never interleave. */
  fprintf(stderr, "%s %-5s %s\n", ts, names[level & 3], line);
}
