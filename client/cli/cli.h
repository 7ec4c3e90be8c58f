/*
 * cli: what the command groups of the `custos` CLI share.
 *
 * main.c owns the global options, the dispatch, the option parser, the
 * output helpers (a small JSON writer and a "Key  Value" table) and the one
 * connection; encode.c owns conversions (hex, base64, durations, times);
 * input.c owns reading keys, files and stdin.  Each command group
 * (operator.c, kv.c, token.c, policy.c) turns its words into one request
 * and prints the result.
 *
 * Exit codes: 0 success, 1 failure (exactly one "Error: ..." line on
 * stderr), 2 usage error (or, for status/unseal, "still sealed"), 3 the
 * server refused with RETRY (a transient condition; nothing was done).
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include "custos_client.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_RETRY 3   /* the server said RETRY: nothing was done, run it again */

typedef struct cli_ctx {
  cs_client_opts opts;
  int json;              /* --format json */
  cs_client *client;     /* connected on first use */
} cli_ctx;

/* ------------------------------------------------------------ main.c */

/* Prints "custos: <message>", a blank line and the usage to stderr;
 * returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "Error: <message>" to stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Sends `req` (connecting first if needed) and checks that the response
 * carries `result` (a CUSTOS__RESPONSE__RESULT_* case).  Returns CLI_OK with
 * *res (free with cs_wire_response_free), or prints the error and returns
 * CLI_FAIL (CLI_RETRY when the server answered RETRY).
 */
int cli_call(cli_ctx *g, Custos__Request *req, int result, Custos__Response **res);
/*
 * Sends a request whose result is Empty and reports success: in JSON
 * {"success":true} plus "KEY":"VALUE" (or "KEY":true when value is NULL);
 * otherwise "Success! " and the formatted text.  Returns CLI_OK or the
 * failure cli_call reported.
 */
int cli_call_done(cli_ctx *g, Custos__Request *req, const char *key, const char *value,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Command options.  `arg` 0: a flag (sets *flag = 1); 1: one value (*val);
 * 2: repeatable value (appended to list[*nlist], at most `cap`). */
typedef struct cli_opt {
  const char *name;      /* without the leading "--" */
  int arg;
  int *flag;
  const char **val;
  const char **list;
  size_t *nlist;
  size_t cap;
} cli_opt;

/*
 * Parses argv[0..argc) for `cmd`: options from `opts` anywhere, "--" ends
 * options; the other words go to pos[] (at most max_pos, else a usage
 * error).  Returns 0, or CLI_USAGE after printing the usage error.
 */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, char **pos,
              size_t max_pos, size_t *npos);

/* Parses a decimal unsigned number in [min, max]; 0 or -1. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* JSON writer on stdout over common/jbuf.h: compact, one document per
 * command, printed whole by jw_end; strings escaped (control characters,
 * quotes, backslash; invalid UTF-8 -> U+FFFD). */
void jw_obj_begin(void);
void jw_obj_end(void);
void jw_arr_begin(void);
void jw_arr_end(void);
void jw_key(const char *key);
void jw_str(const char *s);
void jw_strn(const void *s, size_t n);
void jw_bool(int b);
void jw_u64(uint64_t v);
void jw_i64(int64_t v);
/* Ends the document with a newline. */
void jw_end(void);
void jw_kv_str(const char *key, const char *s);
void jw_kv_bool(const char *key, int b);
void jw_kv_u64(const char *key, uint64_t v);
void jw_kv_i64(const char *key, int64_t v);

/* Table: rows collected, then printed aligned under "Key  Value" (values
 * are wiped when printed: they may be secrets). */
void tbl_row(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tbl_print(void);

/* ---------------------------------------------------------- encode.c */

/* Lowercase hex / standard base64 (with padding) of n bytes into a fresh
 * string; NULL on allocation failure.  Free with cli_free_secret. */
char *cli_hex(const uint8_t *p, size_t n);
char *cli_b64(const uint8_t *p, size_t n);
/* Decodes a key share typed by a user: hex when the string is all hex
 * digits with an even length, else base64.  Returns 0 with a fresh buffer
 * (free with cli_free_secret), or -1. */
int cli_decode_key(const char *s, uint8_t **out, size_t *outlen) __attribute__((warn_unused_result));
void cli_free_secret(void *p, size_t n);
/* "90s", "2m", "24h", "7d", "1h30m", "0", or a bare number of seconds. */
int cli_parse_duration(const char *s, uint64_t *seconds) __attribute__((warn_unused_result));
/* Seconds as "1d2h3m4s" ("0s" for 0). */
void cli_fmt_duration(uint64_t seconds, char *buf, size_t cap);
/* Unix seconds as UTC RFC 3339 "2026-11-22T04:25:26Z"; "" for 0 when
 * zero_empty. */
void cli_fmt_time(int64_t t, int zero_empty, char *buf, size_t cap);

/* ----------------------------------------------------------- input.c */

/* Reads a whole stream/file into a fresh buffer (NUL-terminated, length
 * without the NUL).  Returns 0, or prints "Error: ..." and returns CLI_FAIL. */
int cli_read_stdin(uint8_t **out, size_t *len);
int cli_read_file(const char *path, uint8_t **out, size_t *len);
/* Reads one line from stdin, without echo when stdin is a terminal
 * (prompting on stderr).  Trailing whitespace is removed.  Returns 0 with a
 * fresh string (free with cli_free_secret), or prints and returns CLI_FAIL. */
int cli_read_secret_line(const char *prompt, char **out);
/* A key share from the argument, or from stdin when arg is NULL or "-";
 * decoded as by cli_decode_key.  Returns 0 or CLI_FAIL (printed). */
int cli_get_key(const char *arg, const char *prompt, uint8_t **key, size_t *len);

/* ------------------------------------------------------ command groups */

int cmd_status(cli_ctx *g, int argc, char **argv);
int cmd_operator(cli_ctx *g, int argc, char **argv);
int cmd_kv(cli_ctx *g, int argc, char **argv);
int cmd_token(cli_ctx *g, int argc, char **argv);
int cmd_policy(cli_ctx *g, int argc, char **argv);
int cmd_audit(cli_ctx *g, int argc, char **argv);
/* operator snapshot save|inspect|verify|restore (snapshot.c) */
int cli_snapshot(cli_ctx *g, int argc, char **argv);

#endif
