/*
 * audit: the append-only audit log.
 *
 * One line of JSON per record, written with a single write(2) on a file
 * opened O_APPEND, so concurrent writers and a crash never interleave two
 * records (a crash can at worst leave the last line short).  The server
 * writes a "request" record before acting and a "response" record after;
 * when either write fails it refuses the request, so there is no unaudited
 * access.
 *
 * Secrets never reach the log.  Values the caller marks sensitive (secret
 * field values, unseal shares, tokens) are written as
 * "hmac-sha256:<64 hex>", keyed with a per-installation audit key that the
 * server keeps under the barrier.  An auditor holding a candidate value can
 * ask the server (or use cs_audit_hmac_hex with the key) whether it was the
 * one logged, without the log ever revealing it.  While sealed there is no
 * key and the placeholder "hmac-sha256:unavailable" is written instead.
 *
 * A record looks like (one line):
 *   {"type":"response","time":"2026-11-22T04:25:26Z","request_id":7,
 *    "client":"10.0.0.5:41230","accessor":"a1b2","operation":"kv-get",
 *    "path":"app/db","result":"error","error_code":"CS_EPERM",
 *    "error_message":"permission denied on app/db",
 *    "sensitive":[{"field":"password","value":"hmac-sha256:9f..."}]}
 * "result"/"error_*" appear only in responses ("error_*" only for errors),
 * "sensitive" only when there are sensitive values.  Strings are escaped
 * as common/jbuf.h describes (invalid UTF-8 bytes as \uDCXX, losslessly).
 *
 * Durability: records are not fsync'ed by default.  The log is written from
 * the request path, and an fsync per request would bound the server at the
 * disk's flush rate; the page cache survives a custosd crash, and losing
 * the last records in a power cut is the accepted trade-off of most audit
 * devices.  cs_audit_set_sync(a, 1) makes every write fdatasync before it
 * returns, for installations that need the stronger guarantee.
 */
#ifndef CS_AUDIT_H
#define CS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

/* "hmac-sha256:" + 64 hex digits + NUL, with room to spare. */
#define CS_AUDIT_HMAC_STR_MAX (65 + 13)
#define CS_AUDIT_HMAC_PREFIX "hmac-sha256:"
#define CS_AUDIT_HMAC_UNAVAILABLE "hmac-sha256:unavailable"

typedef struct cs_audit cs_audit;

typedef enum cs_audit_type { CS_AUDIT_REQUEST, CS_AUDIT_RESPONSE } cs_audit_type;

/* A value that must only ever be logged as its HMAC. */
typedef struct cs_audit_sensitive {
  const char *field;     /* what it is: a kv field name, "share", "token" */
  const uint8_t *value;
  size_t len;
} cs_audit_sensitive;

/* Everything one record says.  NULL strings are written as "". */
typedef struct cs_audit_record {
  cs_audit_type type;
  int64_t time;              /* unix seconds, written as RFC 3339 UTC */
  uint64_t request_id;
  const char *client;        /* peer address */
  const char *accessor;      /* token accessor, "" when unauthenticated */
  const char *operation;     /* "kv-get", "unseal", ... */
  const char *path;          /* may be empty */
  int error;                 /* responses: 0 = "ok", else a CS_E* code */
  const char *error_message; /* responses with error: detail (NULL = cs_strerror) */
  const cs_audit_sensitive *sensitive;
  size_t n_sensitive;
} cs_audit_record;

/*
 * Opens (creating with mode 0600) the log at `path` for appending.
 * Returns 0 and *out, CS_EAUDIT with a detail naming the file, or
 * CS_ENOMEM.  An existing file keeps its mode.  No HMAC key is set yet.
 */
int cs_audit_open(cs_audit **out, const char *path) __attribute__((warn_unused_result));
/*
 * Opens the path again and swaps it in (SIGHUP after log rotation: the old
 * file was renamed, the new records go to a fresh file at `path`).  On
 * failure the old file stays in use and CS_EAUDIT is returned.
 */
int cs_audit_reopen(cs_audit *a) __attribute__((warn_unused_result));
/* Closes the file and wipes the key.  NULL is a no-op. */
void cs_audit_close(cs_audit *a);

/* 1: fdatasync after every record (see above); 0 (the default): don't. */
void cs_audit_set_sync(cs_audit *a, int on);

/* Copies the 32-byte HMAC key into the log's locked memory (allocated by
 * cs_audit_open), overwriting any previous key. */
void cs_audit_set_hmac_key(cs_audit *a, const uint8_t key[32]);
/* Wipes the key (on seal); sensitive values become "unavailable". */
void cs_audit_clear_hmac_key(cs_audit *a);

/*
 * Appends one record as one line.  Returns 0, or CS_EAUDIT with a detail
 * (the write error, e.g. "No space left on device") when the record could
 * not be written completely; the caller must then refuse the request.
 * Thread-safe.
 */
int cs_audit_write(cs_audit *a, const cs_audit_record *r) __attribute__((warn_unused_result));

/*
 * Grouped writing (one write(2) per event-loop turn instead of one per
 * record).  cs_audit_stage formats a record into the log's group buffer
 * without writing it (0, CS_EAUDIT if it cannot be built, CS_ENOMEM);
 * cs_audit_flush writes every staged record with one write and empties the
 * group (0, or CS_EAUDIT: then none of the staged records may be assumed
 * written, and the caller fails every request whose record was staged).
 * The caller must not let a response leave, nor a side effect happen,
 * before the flush holding its records has returned 0: the server stages
 * the records of side-effect-free requests and every response record, and
 * flushes once per loop turn before sending (server/api/).  A record
 * written with cs_audit_write is written at once, after nothing staged:
 * staged records of other requests may follow it in the file.
 * cs_audit_staged returns the bytes staged.  Thread-safe.
 */
int cs_audit_stage(cs_audit *a, const cs_audit_record *r) __attribute__((warn_unused_result));
int cs_audit_flush(cs_audit *a) __attribute__((warn_unused_result));
size_t cs_audit_staged(cs_audit *a);

/* The logged form of a sensitive value: "hmac-sha256:<hex>" with the
 * current key, or "hmac-sha256:unavailable" without one. */
void cs_audit_hmac_hex(const cs_audit *a, const uint8_t *v, size_t n,
                       char out[CS_AUDIT_HMAC_STR_MAX]);

#endif
