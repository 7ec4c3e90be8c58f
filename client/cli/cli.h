/*
 * cli: what the pieces of the `custos` CLI share.
 *
 * The CLI is a tree of command tables in the shape of WireGuard's wg.c: a
 * row {name, fn, sub, summary, usage, help} is either a command (fn) or a
 * group of subcommands (sub).  cmd.c walks the tree, opt.c parses one
 * command's options, out.c is the one output API (a table/text back end and
 * a JSON back end behind the same calls), call.c holds the one connection.
 * encode.c owns conversions, input.c reads keys, files and stdin.  Each
 * command group (operator.c, kv.c, token.c, policy.c, audit.c, snapshot.c)
 * exports its table and turns words into one request.
 *
 * Everything a command needs comes through the cli_ctx it is handed: the
 * global options, the output document, the connection and the name of the
 * command running (for error messages).  No command file calls main.c.
 *
 * Exit codes: 0 success, 1 failure (one error on stderr: "Error: ..." or,
 * with --format json, one {"error":{...}} line), 2 usage error (or, for
 * status/unseal, "still sealed"), 3 the server refused with RETRY (a
 * transient condition; nothing was done).
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include "custos_client.h"
#include "jbuf.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_RETRY 3   /* the server said RETRY: nothing was done, run it again */
/* Internal: --help was printed; the process exits 0.  Commands only pass it
 * on (it comes out of cli_parse like a usage error does). */
#define CLI_HELPED 64

typedef struct cli_ctx cli_ctx;

/*
 * A command: `argv` holds the words after the command's name (options and
 * arguments, in order, globals already taken out).  Returns a CLI_* code;
 * the first thing it does is cli_parse (which handles --help).
 */
typedef int cli_fn(cli_ctx *g, int argc, char **argv);

typedef struct cli_cmd {
  const char *name;
  cli_fn *fn;                  /* a command; NULL for a group */
  const struct cli_cmd *sub;   /* a group's subcommands, ended by a { 0 } row */
  const char *summary;         /* one line, for the group's list */
  const char *usage;           /* synopsis after "custos <words> "; \n between forms,
                                  a line starting with ' ' continues the form above */
  const char *help;            /* `--help`: what it does, its options, its output */
} cli_cmd;

/* ---------------------------------------------------------------- out.c */

/*
 * The output of one command, built by out_* calls and printed once by
 * out_flush (the dispatcher calls it after the command returns, also when
 * it failed: a half-done ceremony still prints what the server returned).
 * The text back end keeps rows, lists and grids until they can be aligned;
 * the JSON back end builds one object.  Both buffers are wiped when printed:
 * they hold tokens, shares and secret values.
 */
typedef struct out_row { char *key; char *val; size_t vlen; } out_row;

typedef struct cli_out {
  cs_jbuf json;            /* JSON back end: the document */
  int json_open;           /* the top-level object was begun */
  cs_jbuf text;            /* text back end: rendered text (raw mode) */
  out_row *rows;           /* pending "Key  Value" rows, or grid cells */
  size_t nrows, caprows;
  int in_list;             /* 0, 1: a list of scalars, 2: a list of objects */
  int list_text;           /* the list shows in the text back end */
  int in_obj;
  char **hdr;              /* grid column headers (the first object's labels) */
  size_t nhdr, caphdr;
  size_t grid_cell;        /* cells in the current object */
  size_t nitems;           /* items in the current list */
} cli_out;

/*
 * Fields.  `key` is the JSON member name (NULL: not in the JSON output),
 * `label` the text label (NULL: not in the text output).  At the top level a
 * labelled field is a row of the "Key  Value" table; inside out_obj_begin it
 * is a cell of a grid whose column header is the label.  Rows and cells
 * show control bytes as \xNN (a server's string cannot drive the terminal);
 * out_text and out_raw print what they are given.
 */
void out_str(cli_ctx *g, const char *key, const char *label, const char *v);
void out_strn(cli_ctx *g, const char *key, const char *label, const void *v, size_t n);
void out_bool(cli_ctx *g, const char *key, const char *label, int v);
void out_u64(cli_ctx *g, const char *key, const char *label, uint64_t v);
void out_i64(cli_ctx *g, const char *key, const char *label, int64_t v);
/* A string field whose text is formatted (the same text in both back ends). */
void out_fmt(cli_ctx *g, const char *key, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A text-only row whose value differs from the JSON value: text label, value. */
void out_row_fmt(cli_ctx *g, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Lists: a JSON array under `key`.  In text, label NULL hides the list,
 * "" prints the items one per line, any other label prints it as a heading
 * ("Keys" / "----") above them.  Items are out_item (strings) or objects
 * (out_obj_begin/out_obj_end, shown in text as the rows of a grid).
 */
void out_list_begin(cli_ctx *g, const char *key, const char *label);
void out_item(cli_ctx *g, const char *s);
void out_item_u64(cli_ctx *g, uint64_t v);
void out_obj_begin(cli_ctx *g);
void out_obj_end(cli_ctx *g);
void out_list_end(cli_ctx *g);

/* A JSON object under `key` whose fields are added next (out_map_end
 * closes it); in text its labelled fields are ordinary table rows. */
void out_map_begin(cli_ctx *g, const char *key);
void out_map_end(cli_ctx *g);

/* Free text, text back end only, in order with the rest (printf format). */
void out_text(cli_ctx *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes written to stdout as they are, in either format (kv get --field). */
void out_raw(cli_ctx *g, const void *p, size_t n);
/* "Success! <text>" in text; {"success":true,KEY:VALUE} in JSON (KEY:true
 * when value is NULL; nothing more when key is NULL). */
void out_done(cli_ctx *g, const char *key, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prints the document (text, or the JSON object and a newline) and wipes
 * it.  Returns 0, or CLI_FAIL when stdout cannot be written. */
int out_flush(cli_ctx *g);
/* Wipes and frees what was not printed. */
void out_discard(cli_ctx *g);

/*
 * Errors: exactly one per failed command, on stderr.  `code` is a CS_E*
 * code: CS_EUSAGE for usage errors, CS_ECLIENT for local failures, or what
 * the server or the client library answered.  Text: "Error: <message>" on
 * one line; JSON: {"error":{"code":"<class>","message":"..."}} on one line.
 * Returns the exit code that goes with `code` (CLI_USAGE, CLI_RETRY for
 * CS_EBUSY, else CLI_FAIL).
 */
int cli_error(cli_ctx *g, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* cli_error(g, CS_ECLIENT, ...): returns CLI_FAIL. */
int cli_fail(cli_ctx *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The JSON error class of a code: "usage", "client", or the server's wire
 * class in lower case ("permission_denied", "sealed", "retry", ...). */
const char *cli_error_class(int code);

/* ---------------------------------------------------------------- cmd.c */

/*
 * A usage error of the command running: "custos: <words>: <message>", its
 * short usage and "See 'custos <words> --help'." (JSON: one error object,
 * code "usage").  Returns CLI_USAGE.
 */
int cli_usage(cli_ctx *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the help of `cmd` (a command or a group) reached by `words` ("" for
 * the top) to stdout. */
void cli_print_help(const cli_cmd *cmd, const char *words);

/*
 * Runs the command argv names under `root` (a group row): walks the
 * subcommand tables, handles "--help"/"-h" at group level and
 * "help WORDS...", sets g->cmd and g->words, calls the command.  Returns its
 * CLI_* code (CLI_HELPED when help was printed).
 */
int cli_dispatch(cli_ctx *g, const cli_cmd *root, int argc, char **argv);

/* The command tree (main.c) and the groups' tables. */
extern const cli_cmd cli_root;
extern const cli_cmd cli_operator_cmds[];
extern const cli_cmd cli_raft_cmds[];
extern const cli_cmd cli_snapshot_cmds[];
extern const cli_cmd cli_kv_cmds[];
extern const cli_cmd cli_token_cmds[];
extern const cli_cmd cli_policy_cmds[];
extern const cli_cmd cli_audit_cmds[];
/* status and version (operator.c, main.c). */
int cmd_status(cli_ctx *g, int argc, char **argv);
int cmd_version(cli_ctx *g, int argc, char **argv);

/* ---------------------------------------------------------------- opt.c */

/* Command options.  `arg` 0: a flag (sets *flag = 1; repeating it is
 * harmless); 1: one value (*val; given twice is a usage error); 2: a
 * repeatable value (appended to list[*nlist], at most `cap`). */
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
 * Parses argv[0..argc) for the command running (g->cmd): options from
 * `opts` (ended by a { 0 } row; NULL: none) anywhere, as "--name value",
 * "--name=value" or "-name value"; "--" ends options; "-" alone is an
 * argument.  "--help"/"-h" prints the command's help and returns
 * CLI_HELPED.  The other words go to pos[] (at most max_pos, else a usage
 * error).  Returns 0, CLI_HELPED, or CLI_USAGE after printing the usage
 * error (unknown option, missing value, too many arguments, ...).
 */
int cli_parse(cli_ctx *g, int argc, char **argv, const cli_opt *opts, char **pos,
              size_t max_pos, size_t *npos) __attribute__((warn_unused_result));

/* Parses a decimal unsigned number in [min, max]; 0 or -1. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
    __attribute__((warn_unused_result));

/*
 * A --token value is copied and its bytes in argv are wiped, so `ps` and
 * /proc/PID/cmdline stop showing it as soon as the options are parsed.
 * Takes the global options (--addr, --ca-cert, --token, --client-cert,
 * --client-key, --format; --version only before the command words) out of
 * argv before a "--", compacting
 * it; sets g->opts, g->json, *version.  Returns 0 or CLI_USAGE (printed).
 */
int cli_parse_globals(cli_ctx *g, int *argc, char **argv, int *version)
    __attribute__((warn_unused_result));

/* --------------------------------------------------------------- call.c */

/*
 * Sends `req` (connecting first if needed) and checks that the response
 * carries `result` (a CUSTOS__RESPONSE__RESULT_* case).  Returns CLI_OK with
 * *res (free with cs_wire_response_free), or prints the error and returns
 * CLI_FAIL (CLI_RETRY when the server answered RETRY).
 */
int cli_call(cli_ctx *g, Custos__Request *req, int result, Custos__Response **res)
    __attribute__((warn_unused_result));
/* Sends a request whose result is Empty and reports success with out_done.
 * Returns CLI_OK or the failure cli_call reported. */
int cli_call_done(cli_ctx *g, Custos__Request *req, const char *key, const char *value,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ----------------------------------------------------------- the context */

struct cli_ctx {
  cs_client_opts opts;
  int json;              /* --format json */
  cs_client *client;     /* connected on first use (call.c) */
  const cli_cmd *cmd;    /* the command running (cmd.c) */
  char words[128];       /* its words, "operator snapshot save" */
  cli_out out;           /* its output (out.c) */
  char *token_copy;      /* --token, copied out of argv (which is then wiped) */
};

/* A context with the defaults (no environment read); free with cli_ctx_free. */
void cli_ctx_init(cli_ctx *g);
/* Closes the connection, wipes the output. */
void cli_ctx_free(cli_ctx *g);

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
 * without the NUL; free with cli_free_secret(p, len + 1)).  Returns 0, or
 * prints the error and returns CLI_FAIL. */
int cli_read_stdin(cli_ctx *g, uint8_t **out, size_t *len);
int cli_read_file(cli_ctx *g, const char *path, uint8_t **out, size_t *len);
/* Reads one line from stdin, without echo when stdin is a terminal
 * (prompting on stderr).  Trailing whitespace is removed.  Returns 0 with a
 * fresh string (free with cli_free_secret(p, CLI_SECRET_LINE_MAX)), or
 * prints and returns CLI_FAIL. */
#define CLI_SECRET_LINE_MAX 4096
int cli_read_secret_line(cli_ctx *g, const char *prompt, char **out);
/* A key share from the argument, or from stdin when arg is NULL or "-";
 * decoded as by cli_decode_key.  An argument (a word of argv) is wiped once
 * read, so `ps` stops showing the share.  Returns 0 or CLI_FAIL (printed). */
int cli_get_key(cli_ctx *g, const char *arg, const char *prompt, uint8_t **key, size_t *len);

#endif
