/* logid: the identity of a node's raft log, checked against its store.  See logid.h. */
#include "logid.h"
#include "crypto.h"
#include "cs_error.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_FILE "custos-log-id"
#define ID_META "raft_log_id"
#define ID_HEX 32 /* 16 random bytes */

/* 1 when raft has written nothing in dir yet (no metadata, no segment). */
static int log_is_fresh(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return 1;
  struct dirent *e;
  int fresh = 1;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
        strcmp(e->d_name, ID_FILE) == 0 || strncmp(e->d_name, ID_FILE ".", sizeof ID_FILE) == 0)
      continue;
    fresh = 0;
    break;
  }
  closedir(d);
  return fresh;
}

/* Reads dir/custos-log-id into id (ID_HEX chars + NUL): 1 read, 0 absent, <0 error. */
static int read_id_file(const char *dir, char id[ID_HEX + 1]) {
  char path[4200];
  snprintf(path, sizeof path, "%s/" ID_FILE, dir);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return errno == ENOENT ? 0 : cs_error_set(CS_EIO, "cannot read %s: %s", path, strerror(errno));
  char buf[64] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  if (n < ID_HEX || strspn(buf, "0123456789abcdef") != ID_HEX)
    return cs_error_set(CS_ESTOREMISMATCH, "%s is corrupt (want %d hex digits)", path, ID_HEX);
  memcpy(id, buf, ID_HEX);
  id[ID_HEX] = '\0';
  return 1;
}

/* Writes a new random identity to dir/custos-log-id durably (temp + rename). */
static int write_id_file(const char *dir, char id[ID_HEX + 1]) {
  uint8_t raw[ID_HEX / 2];
  int rc = cs_random(raw, sizeof raw);
  if (rc < 0)
    return rc;
  cs_hex_encode(raw, sizeof raw, id);
  char tmp[4200], path[4200];
  snprintf(tmp, sizeof tmp, "%s/" ID_FILE ".tmp", dir);
  snprintf(path, sizeof path, "%s/" ID_FILE, dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return cs_error_set(CS_EIO, "cannot create %s: %s", tmp, strerror(errno));
  char line[ID_HEX + 2];
  memcpy(line, id, ID_HEX);
  line[ID_HEX] = '\n';
  int ok = write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok || rename(tmp, path) != 0) {
    if (ok)
      err = errno;
    unlink(tmp);
    return cs_error_set(CS_EIO, "cannot write %s: %s", path, strerror(err));
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd); /* the rename itself must survive a crash */
    close(dfd);
  }
  return 0;
}

static int refuse_foreign_store(cs_store *store, const char *raft_dir, uint64_t applied) {
  const char *dir = cs_store_dir(store);
  if (applied > 0)
    return cs_error_set(CS_ESTOREMISMATCH,
                        "storage in %s has applied raft entries up to index %llu, but the raft "
                        "log in %s is empty: the store was copied from another node or restored "
                        "from a backup without its raft log, and this node would skip entries "
                        "1..%llu of the new log as already applied. Refusing to start. Start "
                        "this node with an empty data directory (it catches up from the "
                        "cluster), or restore the backup as described in docs/operations.md",
                        dir, (unsigned long long)applied, raft_dir, (unsigned long long)applied);
  return cs_error_set(CS_ESTOREMISMATCH,
                      "storage in %s holds data that no raft log wrote (a standalone server's "
                      "store?), and the raft log in %s is empty: a new cluster member's store "
                      "must be empty. Refusing to start. Start this node with an empty data "
                      "directory (it catches up from the cluster)",
                      dir, raft_dir);
}

int cs_logid_check(cs_store *store, const char *raft_dir) {
  if (mkdir(raft_dir, 0700) != 0 && errno != EEXIST)
    return cs_error_set(CS_EIO, "cannot create %s: %s", raft_dir, strerror(errno));
  char stored[ID_HEX + 1] = {0}, file[ID_HEX + 1] = {0};
  size_t slen = 0;
  int rc = cs_store_meta_get(store, ID_META, (uint8_t *)stored, ID_HEX, &slen);
  int have_stored = rc == 0;
  if (rc < 0 && rc != CS_ENOTFOUND)
    return rc;
  if (have_stored && slen != ID_HEX)
    return cs_error_set(CS_ESTORECORRUPT, "storage in %s: raft log identity of %zu bytes",
                        cs_store_dir(store), slen);
  uint64_t applied = cs_store_applied_index(store);

  if (log_is_fresh(raft_dir)) {
    int empty = cs_store_is_empty(store);
    if (empty < 0)
      return empty;
    if (applied > 0 || !empty)
      return refuse_foreign_store(store, raft_dir, applied);
    /* A new log for an empty store: a new identity for both (a leftover
     * identity file of a log that was never written is replaced). */
    if ((rc = write_id_file(raft_dir, file)) < 0)
      return rc;
    return cs_store_meta_put(store, ID_META, (const uint8_t *)file, ID_HEX);
  }

  if ((rc = read_id_file(raft_dir, file)) < 0)
    return rc;
  if (rc == 0) {
    if (have_stored)
      return cs_error_set(CS_ESTOREMISMATCH,
                          "storage in %s was applied from raft log %s, but the raft log in %s "
                          "has no identity: it is not the log this store came from. Refusing to "
                          "start. Start this node with an empty data directory (it catches up "
                          "from the cluster)",
                          cs_store_dir(store), stored, raft_dir);
    /* A log of an older custos: give it an identity. */
    if ((rc = write_id_file(raft_dir, file)) < 0)
      return rc;
    cs_info("cluster: raft log in %s has no identity yet: now %s", raft_dir, file);
  }
  if (have_stored && strcmp(stored, file) != 0)
    return cs_error_set(CS_ESTOREMISMATCH,
                        "storage in %s was applied from raft log %s, but the raft log in %s is "
                        "%s: the store comes from another node or another cluster. Refusing to "
                        "start. Start this node with an empty data directory (it catches up "
                        "from the cluster), or restore a backup as described in "
                        "docs/operations.md",
                        cs_store_dir(store), stored, raft_dir, file);
  if (!have_stored) /* a store of an older custos next to its own log */
    return cs_store_meta_put(store, ID_META, (const uint8_t *)file, ID_HEX);
  return 0;
}
