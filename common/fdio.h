/*
 * fdio: writing a whole buffer to a file descriptor, the one copy for the
 * audit log, snapshot files and snapshot uploads.
 */
#ifndef CS_FDIO_H
#define CS_FDIO_H

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

/* Writes all n bytes, retrying after signals and short writes.  0, or the
 * errno of the failure (EIO for a write of 0 bytes, which would loop
 * forever); *done (may be NULL) tells how many bytes made it. */
static inline int cs_write_all(int fd, const void *buf, size_t n, size_t *done) {
  const char *p = buf;
  size_t off = 0;
  int err = 0;
  while (off < n) {
    ssize_t w = write(fd, p + off, n - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    off += (size_t)w;
  }
  if (done != NULL)
    *done = off;
  return err;
}

#endif
