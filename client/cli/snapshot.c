/*
 * snapshot: `custos operator snapshot save | inspect | verify | restore`.
 *
 * save and restore move a snapshot file in chunks over the protocol (no
 * frame limit on the snapshot's size); inspect and verify read the file
 * offline with the format code of server/core/snapshot.c (pure functions:
 * parsing, SHA-256, HMAC, Shamir, AES-GCM; nothing of the store or the
 * network), so a backup can be checked without touching any server.
 *
 * save writes FILE atomically (a temporary file, fsync, rename): a crash
 * leaves the old FILE or none, never half a snapshot.
 */
#include "cli.h"
#include "cs_error.h"
#include "fdio.h"
#include "snapshot.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The first upload chunk stays below the pre-authentication frame limit
 * (64 KiB by default; restoring onto an uninitialized server carries no
 * token); then the server says how large the next may be (max_chunk). */
#define UPLOAD_CHUNK (48u * 1024u)
#define UPLOAD_CHUNK_MAX (1u << 20)

/* Reads a whole file of any size (snapshots may exceed the frame cap of
 * cli_read_file). */
static int read_whole(cli_ctx *g, const char *path, uint8_t **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cli_fail(g, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return cli_fail(g, "%s is not a regular file", path);
  }
  size_t n = (size_t)st.st_size, off = 0;
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL) {
    close(fd);
    return cli_fail(g, "out of memory reading %s (%zu bytes)", path, n);
  }
  while (off < n) {
    ssize_t r = read(fd, buf + off, n - off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    off += (size_t)r;
  }
  close(fd);
  *out = buf;
  *len = off;
  return 0;
}

/* Reads and checks a snapshot file; prints the error and returns CLI_FAIL. */
static int load(cli_ctx *g, const char *path, uint8_t **buf, size_t *len, cs_snapshot *snap) {
  int rc = read_whole(g, path, buf, len);
  if (rc != 0)
    return rc;
  if ((rc = cs_snapshot_parse(*buf, *len, snap)) < 0) {
    free(*buf);
    return cli_fail(g, "%s: %s", path, cs_error_message(rc));
  }
  return 0;
}

/* A term's state as key-status prints it ("" for a snapshot made before
 * term states were recorded). */
static const char *term_state(Custos__TermState st) {
  switch (st) {
  case CUSTOS__TERM_STATE__TERM_STATE_STAGED: return "staged";
  case CUSTOS__TERM_STATE__TERM_STATE_ACTIVE: return "active";
  case CUSTOS__TERM_STATE__TERM_STATE_DECRYPT_ONLY: return "decrypt-only";
  case CUSTOS__TERM_STATE__TERM_STATE_RETIRED: return "retired";
  default: return "";
  }
}

/* --------------------------------------------------------------- inspect */

/* A header string for a terminal: it comes from the file, so control
 * characters (escape sequences) are shown as '?'. */
static const char *printable(const char *s, char *buf, size_t cap) {
  size_t i = 0;
  for (; s != NULL && s[i] != '\0' && i + 1 < cap; i++)
    buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
  buf[i] = '\0';
  return i ? buf : "n/a";
}

static void print_header(cli_ctx *g, const char *path, size_t len,
                         const Custos__SnapshotHeader *h) {
  char created[40], pb[128];
  cli_fmt_time(h->created, 0, created, sizeof created);
  out_str(g, "file", "File", path);
  out_u64(g, "size", NULL, len);
  out_row_fmt(g, "Size", "%zu bytes", len);
  out_u64(g, "format_version", "Format Version", h->format_version);
  out_str(g, "created", "Created", created);
  out_str(g, "server_version", NULL, h->server_version ? h->server_version : "");
  out_row_fmt(g, "Server Version", "%s", printable(h->server_version, pb, sizeof pb));
  int cluster = h->node_id && h->node_id[0];
  out_str(g, "node_id", NULL, h->node_id ? h->node_id : "");
  if (cluster)
    out_row_fmt(g, "Node ID", "%s", printable(h->node_id, pb, sizeof pb));
  out_u64(g, "raft_index", cluster ? "Raft Index" : NULL, h->raft_index);
  out_u64(g, "raft_term", cluster ? "Raft Term" : NULL, h->raft_term);
  out_u64(g, "shares", "Total Shares", h->shares);
  out_u64(g, "threshold", "Threshold", h->threshold);
  out_u64(g, "active_term", "Active Term", h->active_term);
  out_list_begin(g, "terms", NULL);
  for (size_t i = 0; i < h->n_terms; i++) {
    out_obj_begin(g);
    out_u64(g, "term", NULL, h->terms[i]->term);
    out_i64(g, "install_time", NULL, h->terms[i]->install_time);
    out_str(g, "state", NULL, term_state(h->terms[i]->state));
    out_i64(g, "activation_time", NULL, h->terms[i]->activation_time);
    out_i64(g, "retirement_time", NULL, h->terms[i]->retirement_time);
    out_obj_end(g);
  }
  out_list_end(g);
  out_row_fmt(g, "Terms", "%zu (%u..%u)", h->n_terms, h->n_terms ? h->terms[0]->term : 0,
              h->n_terms ? h->terms[h->n_terms - 1]->term : 0);
  size_t retired = 0, first = 0;
  for (size_t i = h->n_terms; i-- > 0;)
    if (h->terms[i]->state == CUSTOS__TERM_STATE__TERM_STATE_RETIRED) {
      retired++;
      first = i;
    }
  if (retired) {
    char when[64];
    cli_fmt_time(h->terms[first]->retirement_time, 0, when, sizeof when);
    out_row_fmt(g, "Retired Terms", "%zu (first: term %u on %s)", retired, h->terms[first]->term,
                when);
  }
  out_u64(g, "entries", "Entries", h->entries);
  out_u64(g, "payload_bytes", NULL, h->payload_len);
  out_bool(g, "checksum_ok", NULL, 1);
  out_row_fmt(g, "Checksum", "ok (SHA-256)");
}

static int snap_inspect(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos);
  if (rc != 0)
    return rc;
  if (npos != 1)
    return cli_usage(g, "expected FILE");
  uint8_t *buf;
  size_t len;
  cs_snapshot snap;
  if ((rc = load(g, pos[0], &buf, &len, &snap)) != 0)
    return rc;
  print_header(g, pos[0], len, snap.hdr);
  cs_snapshot_free(&snap);
  free(buf);
  return CLI_OK;
}

/* --------------------------------------------------------------- verify */

static int snap_verify(cli_ctx *g, int argc, char **argv) {
  char *pos[256];
  size_t npos;
  int rc = cli_parse(g, argc, argv, NULL, pos, 256, &npos);
  if (rc != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "expected FILE [KEY...]");
  uint8_t *buf;
  size_t len;
  cs_snapshot snap;
  if ((rc = load(g, pos[0], &buf, &len, &snap)) != 0)
    return rc;
  unsigned t = snap.hdr->threshold;
  size_t want = npos - 1 > t ? npos - 1 : t;
  uint8_t *keys[256] = {0};
  size_t lens[256] = {0}, n = 0, terms = 0;
  for (; n < want && n < 255 && rc == 0; n++) {
    char prompt[64];
    snprintf(prompt, sizeof prompt, "Unseal Key %zu of %u (will be hidden): ", n + 1, t);
    rc = cli_get_key(g, n + 1 < npos ? pos[n + 1] : NULL, prompt, &keys[n], &lens[n]);
    if (rc == 0 && n > 0 && lens[n] != lens[0])
      rc = cli_fail(g, "key %zu has %zu bytes, key 1 has %zu", n + 1, lens[n], lens[0]);
  }
  if (rc == 0) {
    int r = cs_snapshot_verify(&snap, (const uint8_t *const *)keys, n, lens[0], &terms);
    if (r < 0)
      rc = cli_fail(g, "%s: %s", pos[0], cs_error_message(r));
  }
  if (rc == 0) {
    out_bool(g, "verified", NULL, 1);
    out_u64(g, "terms", NULL, terms);
    out_u64(g, "threshold", NULL, t);
    out_text(g, "Success! The shares open %s: root key, MAC and keyring (%zu terms) verified.\n",
             pos[0], terms);
  }
  for (size_t i = 0; i < 256; i++)
    if (keys[i] != NULL)
      cli_free_secret(keys[i], lens[i]);
  cs_snapshot_free(&snap);
  free(buf);
  return rc;
}

/* --------------------------------------------------------------- save */

static int write_file(cli_ctx *g, const char *path, const uint8_t *buf, size_t len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return cli_fail(g, "cannot create %s: %s", tmp, strerror(errno));
  int e = cs_write_all(fd, buf, len, NULL);
  if (e != 0) {
    close(fd);
    unlink(tmp);
    return cli_fail(g, "cannot write %s: %s", tmp, strerror(e));
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return cli_fail(g, "cannot write %s: %s", path, strerror(e));
  }
  return 0;
}

static int snap_save(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos);
  if (rc != 0)
    return rc;
  if (npos != 1)
    return cli_usage(g, "expected FILE");
  uint8_t *buf = NULL;
  size_t have = 0, total = 0;
  uint64_t id = 0;
  do {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__SnapshotSaveReq op = CUSTOS__SNAPSHOT_SAVE_REQ__INIT;
    Custos__Response *res;
    op.id = id;
    op.offset = have;
    req.op_case = CUSTOS__REQUEST__OP_SNAPSHOT_SAVE;
    req.snapshot_save = &op;
    if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_SNAPSHOT_CHUNK, &res)) != 0) {
      free(buf);
      return rc;
    }
    const Custos__SnapshotChunkRes *c = res->snapshot_chunk;
    if (id == 0) {
      id = c->id;
      total = (size_t)c->total_len;
      if (c->total_len > SIZE_MAX || (buf = malloc(total ? total : 1)) == NULL) {
        cs_wire_response_free(res);
        return cli_fail(g, "out of memory for a %llu-byte snapshot", (unsigned long long)c->total_len);
      }
    }
    if (c->id != id || c->offset != have || c->total_len != total || c->data.len > total - have ||
        (c->data.len == 0 && have < total)) {
      cs_wire_response_free(res);
      free(buf);
      return cli_fail(g, "the server sent an inconsistent snapshot chunk");
    }
    memcpy(buf + have, c->data.data, c->data.len);
    have += c->data.len;
    cs_wire_response_free(res);
  } while (have < total);
  /* Check what arrived before it replaces anything. */
  cs_snapshot snap;
  int prc = cs_snapshot_parse(buf, total, &snap);
  if (prc < 0) {
    free(buf);
    return cli_fail(g, "the snapshot received is not valid: %s", cs_error_message(prc));
  }
  rc = write_file(g, pos[0], buf, total);
  if (rc == 0) {
    out_str(g, "file", NULL, pos[0]);
    out_u64(g, "size", NULL, total);
    out_u64(g, "entries", NULL, snap.hdr->entries);
    out_u64(g, "active_term", NULL, snap.hdr->active_term);
    out_text(g, "Success! Snapshot saved to %s (%zu bytes, %llu entries, keyring terms 1..%u, "
                "shares %u of %u). Keep it with the shares that are current now.\n",
             pos[0], total, (unsigned long long)snap.hdr->entries, snap.hdr->active_term,
             snap.hdr->threshold, snap.hdr->shares);
  }
  cs_snapshot_free(&snap);
  free(buf);
  return rc;
}

/* --------------------------------------------------------------- restore */

static int snap_restore(cli_ctx *g, int argc, char **argv) {
  int force = 0;
  const cli_opt opts[] = { { .name = "force", .arg = 0, .flag = &force }, { 0 } };
  char *pos[1];
  size_t npos;
  int rc = cli_parse(g, argc, argv, opts, pos, 1, &npos);
  if (rc != 0)
    return rc;
  if (npos != 1)
    return cli_usage(g, "expected FILE");
  uint8_t *buf;
  size_t len;
  cs_snapshot snap;
  if ((rc = load(g, pos[0], &buf, &len, &snap)) != 0) /* refuse a bad file before any upload */
    return rc;
  size_t off = 0, chunk = UPLOAD_CHUNK;
  uint64_t id = 0;
  Custos__Response *res = NULL;
  for (;;) {
    size_t n = len - off < chunk ? len - off : chunk;
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__SnapshotRestoreReq op = CUSTOS__SNAPSHOT_RESTORE_REQ__INIT;
    op.upload_id = id;
    op.offset = off;
    op.data.data = buf + off;
    op.data.len = n;
    op.commit = off + n == len;
    op.force = force;
    req.op_case = CUSTOS__REQUEST__OP_SNAPSHOT_RESTORE;
    req.snapshot_restore = &op;
    if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_SNAPSHOT_RESTORE, &res)) != 0)
      break;
    id = res->snapshot_restore->upload_id;
    off += n;
    if (op.commit)
      break;
    if (res->snapshot_restore->received != off) {
      rc = cli_fail(g, "the server staged %llu bytes, %zu were sent",
                    (unsigned long long)res->snapshot_restore->received, off);
      break;
    }
    uint64_t m = res->snapshot_restore->max_chunk;
    if (m >= 1024)
      chunk = m < UPLOAD_CHUNK_MAX ? (size_t)m : UPLOAD_CHUNK_MAX;
    cs_wire_response_free(res);
    res = NULL;
  }
  if (rc == 0) {
    const Custos__SnapshotRestoreRes *r = res->snapshot_restore;
    out_bool(g, "restored", NULL, r->committed);
    out_bool(g, "sealed", NULL, r->sealed);
    out_bool(g, "foreign", NULL, r->foreign);
    out_u64(g, "t", NULL, r->t);
    out_u64(g, "n", NULL, r->n);
    if (r->sealed) {
      out_text(g, "Success! Snapshot %s restored (%zu bytes). The server is sealed: unseal it with "
                  "%u of the %u shares that were current when the snapshot was taken.\n",
             pos[0], len, r->t, r->n);
    } else {
      out_text(g, "Success! Snapshot %s restored (%zu bytes); the server serves the restored data "
                  "with the restored keyring.\n", pos[0], len);
    }
  }
  if (res != NULL)
    cs_wire_response_free(res);
  cs_snapshot_free(&snap);
  free(buf);
  return rc;
}

const cli_cmd cli_snapshot_cmds[] = {
  { "save", snap_save, NULL, "snapshot of the whole store to FILE", "FILE",
    "Streams a consistent snapshot (values stay encrypted) and writes FILE\n"
    "atomically.  Needs sudo on sys/storage/snapshot.\n" },
  { "inspect", snap_inspect, NULL, "print a snapshot's header, check its checksum (offline)",
    "FILE", "Offline: no server, no token.\n" },
  { "verify", snap_verify, NULL, "check that shares open a snapshot (offline)",
    "FILE [KEY...]",
    "Offline: reads a threshold of shares (as arguments, or one a line from\n"
    "stdin, hidden at a terminal) and checks that they open the snapshot's\n"
    "root key, that its MAC verifies and that its keyring opens.\n" },
  { "restore", snap_restore, NULL, "replace the store with a snapshot", "FILE [--force]",
    "Checks FILE, uploads it and has the server replace its whole store in one\n"
    "transaction.\n"
    "\n"
    "Options:\n"
    "  --force   restore a snapshot of another installation or other shares\n"
    "            (the server comes back sealed with the snapshot's t/n)\n" },
  { 0 },
};
