/*
 * fuzz_config: libFuzzer target for cs_config_load.  Each input is written
 * to a memfd and loaded through /proc/self/fd/N (cs_config_load takes a
 * path).  Inputs with an @include directive are skipped: they would make
 * libconfig read arbitrary files of the fuzzing machine.
 *
 * libconfig 1.5's scanner leaks its string buffer when a file ends inside
 * an unterminated string (fixed upstream in later releases); that leak is
 * suppressed so the fuzzer keeps looking for bugs of ours.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void) { return "leak:libconfig.so\n"; }

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 64 * 1024 || memmem(data, size, "include", 7) != NULL)
    return 0;
  if (fd < 0) {
    fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (fd < 0)
      abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
    abort();
  cs_config cfg;
  char err[512];
  if (cs_config_load(&cfg, path, err, sizeof err) == 0)
    cs_config_free(&cfg);
  return 0;
}
