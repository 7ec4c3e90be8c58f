/*
 * Unit tests for the CLI's argument handling (client/cli: opt.c, cmd.c,
 * out.c) through the real command tables: the option parser's rules
 * ("--x v", "--x=v", "-x v", "--", "-", repeats, missing values, unknown
 * options), the global options, --help of every command and group (found by
 * walking the tree, so a new command is covered without touching this
 * file), and every command's options accepted.
 *
 * A command whose arguments parse goes on to connect; the context has no CA
 * certificate, so it stops there with exit 1 ("no CA certificate given")
 * before any network I/O.  That is how "parsed" (1) is told from "usage
 * error" (2) without a server and without stubbing anything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "jtest.h"

/* ------------------------------------------------------------ harness */

static char out_buf[65536], err_buf[65536];

static void slurp(FILE *f, char *buf, size_t cap) {
  fflush(f);
  rewind(f);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
}

/* Runs `custos ARGS...` (NULL-terminated) in this process as main() does,
 * with stdout/stderr captured into out_buf/err_buf; returns the exit code. */
static int run_argv(int argc, char **argv) {
  cli_ctx g;
  int version = 0, rc;
  FILE *fo = tmpfile(), *fe = tmpfile();
  assert_non_null(fo);
  assert_non_null(fe);
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);

  cli_ctx_init(&g);
  g.opts.addr = "127.0.0.1:1";
  if ((rc = cli_parse_globals(&g, &argc, argv, &version)) == 0) {
    if (version)
      rc = cmd_version(&g, 0, argv);
    else
      rc = cli_dispatch(&g, &cli_root, argc, argv);
    if (rc == CLI_HELPED)
      rc = CLI_OK;
    int frc = out_flush(&g);
    if (frc != 0 && rc == 0)
      rc = frc;
  }
  cli_ctx_free(&g);

  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  slurp(fo, out_buf, sizeof out_buf);
  slurp(fe, err_buf, sizeof err_buf);
  fclose(fo);
  fclose(fe);
  return rc;
}

/* run("kv", "put", ..., NULL): argv is copied (commands may modify it). */
static int run(const char *first, ...) {
  static char store[64][512];
  char *argv[65];
  int argc = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL && argc < 64; a = va_arg(ap, const char *)) {
    snprintf(store[argc], sizeof store[argc], "%s", a);
    argv[argc] = store[argc];
    argc++;
  }
  va_end(ap);
  argv[argc] = NULL;
  return run_argv(argc, argv);
}

#define ASSERT_ERR_HAS(s)                                                                  \
  do {                                                                                     \
    if (strstr(err_buf, (s)) == NULL)                                                      \
      fail_msg("stderr lacks \"%s\": %s", (s), err_buf);                                  \
  } while (0)

/* ------------------------------------------------------------ cli_parse */

/* A command row for the parser tests. */
static int frob(cli_ctx *g, int argc, char **argv) { return 0; }
static const cli_cmd test_cmd = { "frob", frob, NULL, "frobnicate", "[--flag] [--one V] X",
                                  "help of frob\n" };

typedef struct parsed {
  int flag;
  const char *one;
  const char *list[3];
  size_t nlist;
  char *pos[4];
  size_t npos;
} parsed;

static int parse_words(parsed *p, int argc, char **argv) {
  cli_ctx g;
  cli_ctx_init(&g);
  g.cmd = &test_cmd;
  snprintf(g.words, sizeof g.words, "frob");
  memset(p, 0, sizeof *p);
  const cli_opt opts[] = {
    { .name = "flag", .arg = 0, .flag = &p->flag },
    { .name = "one", .arg = 1, .val = &p->one },
    { .name = "many", .arg = 2, .list = p->list, .nlist = &p->nlist, .cap = 3 },
    { 0 },
  };
  FILE *fe = tmpfile(), *fo = tmpfile();
  fflush(stderr);
  fflush(stdout);
  int se = dup(2), so = dup(1);
  dup2(fileno(fe), 2);
  dup2(fileno(fo), 1);
  int rc = cli_parse(&g, argc, argv, opts, p->pos, 4, &p->npos);
  fflush(stderr);
  fflush(stdout);
  dup2(se, 2);
  dup2(so, 1);
  close(se);
  close(so);
  slurp(fe, err_buf, sizeof err_buf);
  slurp(fo, out_buf, sizeof out_buf);
  fclose(fe);
  fclose(fo);
  cli_ctx_free(&g);
  return rc;
}

#define WORDS(...) (char *[]){ __VA_ARGS__, NULL }
#define NWORDS(...) ((int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(p, ...) parse_words((p), NWORDS(__VA_ARGS__), WORDS(__VA_ARGS__))

static void test_parse_forms(void **state) {
  (void)state;
  parsed p;
  assert_int_equal(PARSE(&p, "a", "--flag", "--one", "v1", "b"), 0);
  assert_int_equal(p.flag, 1);
  assert_string_equal(p.one, "v1");
  assert_int_equal(p.npos, 2);
  assert_string_equal(p.pos[0], "a");
  assert_string_equal(p.pos[1], "b");

  assert_int_equal(PARSE(&p, "--one=x=y"), 0); /* only the first '=' splits */
  assert_string_equal(p.one, "x=y");
  assert_int_equal(PARSE(&p, "--one="), 0);    /* an empty value is a value */
  assert_string_equal(p.one, "");
  assert_int_equal(PARSE(&p, "-one", "v"), 0); /* one dash works too */
  assert_string_equal(p.one, "v");
  assert_int_equal(PARSE(&p, "--one", "--flag"), 0); /* a value may look like an option */
  assert_string_equal(p.one, "--flag");
  assert_int_equal(p.flag, 0);

  /* "-" is an argument (stdin); "--" ends the options. */
  assert_int_equal(PARSE(&p, "-", "--", "--flag", "-x", "--"), 0);
  assert_int_equal(p.flag, 0);
  assert_int_equal(p.npos, 4);
  assert_string_equal(p.pos[0], "-");
  assert_string_equal(p.pos[1], "--flag");
  assert_string_equal(p.pos[2], "-x");
  assert_string_equal(p.pos[3], "--");
}

static void test_parse_errors(void **state) {
  (void)state;
  parsed p;
  assert_int_equal(PARSE(&p, "--nope"), CLI_USAGE);
  ASSERT_ERR_HAS("custos: frob: unknown option --nope");
  ASSERT_ERR_HAS("Usage: custos frob [--flag] [--one V] X");
  ASSERT_ERR_HAS("See 'custos frob --help'.");
  assert_null(strstr(err_buf, "Commands:")); /* not the whole help */

  assert_int_equal(PARSE(&p, "--nope=1"), CLI_USAGE);
  ASSERT_ERR_HAS("unknown option --nope\n");
  assert_int_equal(PARSE(&p, "--=1"), CLI_USAGE);
  ASSERT_ERR_HAS("unknown option --=1");
  assert_int_equal(PARSE(&p, "--one"), CLI_USAGE);
  ASSERT_ERR_HAS("option --one needs a value");
  assert_int_equal(PARSE(&p, "--flag=1"), CLI_USAGE);
  ASSERT_ERR_HAS("option --flag takes no value");
  assert_int_equal(PARSE(&p, "a", "b", "c", "d", "e"), CLI_USAGE);
  ASSERT_ERR_HAS("unexpected argument \"e\"");
}

static void test_parse_repeats(void **state) {
  (void)state;
  parsed p;
  assert_int_equal(PARSE(&p, "--flag", "--flag"), 0); /* harmless */
  assert_int_equal(p.flag, 1);
  assert_int_equal(PARSE(&p, "--one", "a", "--one", "a"), 0); /* the same value twice */
  assert_string_equal(p.one, "a");
  assert_int_equal(PARSE(&p, "--one", "a", "--one", "b"), CLI_USAGE); /* which one? */
  ASSERT_ERR_HAS("option --one given twice");
  assert_int_equal(PARSE(&p, "--many", "1", "--many=2", "--many", "3"), 0);
  assert_int_equal(p.nlist, 3);
  assert_string_equal(p.list[0], "1");
  assert_string_equal(p.list[2], "3");
  assert_int_equal(PARSE(&p, "--many", "1", "--many", "2", "--many", "3", "--many", "4"),
                   CLI_USAGE);
  ASSERT_ERR_HAS("option --many given more than 3 times");
}

static void test_parse_help(void **state) {
  (void)state;
  parsed p;
  assert_int_equal(PARSE(&p, "x", "--help"), CLI_HELPED);
  assert_non_null(strstr(out_buf, "Usage: custos frob [--flag] [--one V] X"));
  assert_non_null(strstr(out_buf, "help of frob"));
  assert_int_equal(PARSE(&p, "-h"), CLI_HELPED);
  /* After "--" it is an argument; as a value it is a value. */
  assert_int_equal(PARSE(&p, "--", "--help"), 0);
  assert_string_equal(p.pos[0], "--help");
  assert_int_equal(PARSE(&p, "--one", "--help"), 0);
  assert_string_equal(p.one, "--help");
}

static void test_parse_u64(void **state) {
  (void)state;
  uint64_t v;
  assert_int_equal(cli_parse_u64("255", 1, 255, &v), 0);
  assert_int_equal(v, 255);
  assert_int_equal(cli_parse_u64("256", 1, 255, &v), -1);
  assert_int_equal(cli_parse_u64("0", 1, 255, &v), -1);
  assert_int_equal(cli_parse_u64("-1", 0, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_u64("+1", 0, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_u64(" 1", 0, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_u64("1x", 0, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
  assert_int_equal(cli_parse_u64("", 0, UINT64_MAX, &v), -1);
}

/* ------------------------------------------------------------ globals */

static void test_globals(void **state) {
  (void)state;
  cli_ctx g;
  char tok[] = "t"; /* argv is writable: the token's bytes are wiped there */
  char *argv[] = { "kv", "--addr", "h:1", "get", "--format=json", "p", "--token", tok, "--",
                   "--addr", "x", NULL };
  int argc = 11, version = 0;
  unsetenv("CUSTOS_FORMAT");
  cli_ctx_init(&g);
  assert_int_equal(cli_parse_globals(&g, &argc, argv, &version), 0);
  assert_int_equal(argc, 6);
  assert_string_equal(argv[0], "kv");
  assert_string_equal(argv[1], "get");
  assert_string_equal(argv[2], "p");
  assert_string_equal(argv[3], "--"); /* after "--", globals belong to the command */
  assert_string_equal(argv[4], "--addr");
  assert_null(argv[6]);
  assert_string_equal(g.opts.addr, "h:1");
  assert_string_equal(g.opts.token, "t");
  assert_int_equal(g.json, 1);
  assert_int_equal(version, 0);
  cli_ctx_free(&g);

  assert_int_equal(run("--format", "yaml", "status", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("unknown format \"yaml\"");
  assert_int_equal(run("status", "--addr", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("option --addr needs a value");
  assert_int_equal(run("--addr", "a:1", "status", "--addr", "b:2", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("option --addr given twice");
  setenv("CUSTOS_FORMAT", "json", 1);
  assert_int_equal(run("kv", NULL), CLI_USAGE);
  assert_non_null(strstr(err_buf, "{\"error\":{\"code\":\"usage\""));
  unsetenv("CUSTOS_FORMAT");
}

static void test_version(void **state) {
  (void)state;
  assert_int_equal(run("--version", NULL), 0);
  assert_non_null(strstr(out_buf, "custos "));
  assert_int_equal(run("version", NULL), 0);
  assert_non_null(strstr(out_buf, "custos "));
  assert_int_equal(run("version", "--format", "json", NULL), 0);
  assert_non_null(strstr(out_buf, "{\"version\":\""));
  assert_int_equal(run("version", "extra", NULL), CLI_USAGE);
  assert_int_equal(run("--format", "json", "--version", NULL), 0);
  /* After the command word, --version belongs to the command. */
  assert_int_equal(run("status", "--version", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("custos: status: unknown option --version");
}

/* ------------------------------------------------------------ the tree */

/* Calls fn(words, argc, argv) for every command of the tree. */
static void walk(const cli_cmd *c, char **words, int depth,
                 void (*fn)(const cli_cmd *, char **, int)) {
  for (const cli_cmd *s = c->sub; s->name != NULL; s++) {
    words[depth] = (char *)s->name;
    if (s->fn != NULL)
      fn(s, words, depth + 1);
    else
      walk(s, words, depth + 1, fn);
  }
}

static int ncommands;

static void check_help(const cli_cmd *c, char **words, int n) {
  char *argv[8];
  char expect[160] = "Usage: custos";
  for (int i = 0; i < n; i++) {
    argv[i] = words[i];
    strcat(expect, " ");
    strcat(expect, words[i]);
  }
  argv[n] = "--help";
  argv[n + 1] = NULL;
  assert_non_null(c->summary);
  assert_non_null(c->usage);
  assert_non_null(c->help);
  int rc = run_argv(n + 1, argv);
  if (rc != 0 || strncmp(out_buf, expect, strlen(expect)) != 0 || err_buf[0] != '\0')
    fail_msg("%s --help: rc %d, out: %s, err: %s", expect, rc, out_buf, err_buf);
  /* help WORDS... prints the same */
  char saved[sizeof out_buf];
  memcpy(saved, out_buf, sizeof saved);
  char *hargv[8];
  hargv[0] = "help";
  for (int i = 0; i < n; i++)
    hargv[i + 1] = words[i];
  hargv[n + 1] = NULL;
  assert_int_equal(run_argv(n + 1, hargv), 0);
  assert_string_equal(out_buf, saved);
  ncommands++;
}

static void check_unknown(const cli_cmd *c, char **words, int n) {
  char *argv[8];
  char expect[160] = "custos:";
  for (int i = 0; i < n; i++) {
    argv[i] = words[i];
    strcat(expect, " ");
    strcat(expect, words[i]);
  }
  strcat(expect, ": unknown option --no-such-option");
  argv[n] = "--no-such-option";
  argv[n + 1] = NULL;
  int rc = run_argv(n + 1, argv);
  if (rc != CLI_USAGE || strstr(err_buf, expect) == NULL || strstr(err_buf, "--help'.") == NULL)
    fail_msg("%s: rc %d, err: %s", expect, rc, err_buf);
  (void)c;
}

static void test_every_command_help(void **state) {
  (void)state;
  char *words[8];
  ncommands = 0;
  walk(&cli_root, words, 0, check_help);
  assert_true(ncommands >= 30);
  walk(&cli_root, words, 0, check_unknown);

  assert_int_equal(run("--help", NULL), 0);
  assert_non_null(strstr(out_buf, "operator snapshot restore FILE [--force]"));
  assert_non_null(strstr(out_buf, "Global options"));
  assert_int_equal(run("help", NULL), 0);
  assert_int_equal(run("operator", "--help", NULL), 0);
  assert_non_null(strstr(out_buf, "Usage: custos operator <init|unseal|"));
  assert_int_equal(run("operator", "snapshot", "-h", NULL), 0);
  assert_non_null(strstr(out_buf, "restore"));
  assert_int_equal(run("help", "kv", "nope", NULL), CLI_USAGE);
}

static void test_groups(void **state) {
  (void)state;
  assert_int_equal(run(NULL), CLI_USAGE);
  ASSERT_ERR_HAS("custos: no command given");
  assert_int_equal(run("frob", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("unknown command \"frob\"");
  assert_int_equal(run("--frob", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("unknown option --frob");
  assert_int_equal(run("kv", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("custos: kv: missing subcommand");
  ASSERT_ERR_HAS("Usage: custos kv <put|get|list|delete|");
  ASSERT_ERR_HAS("See 'custos kv --help'.");
  assert_int_equal(run("operator", "raft", "frob", NULL), CLI_USAGE);
  ASSERT_ERR_HAS("custos: operator raft: unknown subcommand \"frob\"");
}

/* ------------------------------------------------------------ each command */

/* Options and arguments that parse: the command goes on to connect and
 * fails there (no CA), or fails on a local file that does not exist. */
static void test_every_command_parses(void **state) {
  (void)state;
  static const char *const ok[][16] = {
    { "status" },
    { "operator", "init" },
    { "operator", "init", "--key-shares", "3", "--key-threshold", "2" },
    { "operator", "init", "--key-shares=1" },
    { "operator", "init", "--recipient",
      "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef", "--root-token-recipient",
      "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef", "--output-dir", "/tmp" },
    { "operator", "init", "--recipients-file", "/nonexistent/recipients" },
    { "operator", "unseal", "00ff" },
    { "operator", "unseal", "AP8=" },
    { "operator", "unseal", "--reset" },
    { "operator", "unseal", "--reset", "--nonce", "n" },
    { "operator", "unseal", "--identity", "/nonexistent/key", "/nonexistent/file" },
    { "operator", "unseal", "--cluster", "00ff" },
    { "operator", "seal" },
    { "operator", "rotate" },
    { "operator", "key-status" },
    { "operator", "rotate-config" },
    { "operator", "rotate-config", "--enable", "--max-operations", "10", "--interval", "1h30m" },
    { "operator", "rotate-config", "--disable", "--interval", "0" },
    { "operator", "rekey", "--init", "--key-shares", "5", "--key-threshold", "3", "--verify" },
    { "operator", "rekey", "--nonce", "n", "00ff" },
    { "operator", "rekey", "--verify", "--nonce", "n", "00ff" },
    { "operator", "rekey", "--status" },
    { "operator", "rekey", "--cancel" },
    { "operator", "rekey", "--retrieve-backup" },
    { "operator", "rekey", "--delete-backup" },
    { "operator", "rekey", "--init", "--recipient",
      "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef", "--key-shares", "1",
      "--backup" },
    { "operator", "rekey", "--nonce", "n", "--identity", "/nonexistent/key", "/nonexistent/f" },
    { "kv", "put", "--mount", "kv", "a/b", "k=v", "--cas", "0" },
    { "kv", "put", "--mount=secret", "a/b", "k=v" },
    { "kv", "get", "--mount", "kv", "a/b", "--version", "2", "--field", "k" },
    { "kv", "list", "--mount", "kv" },
    { "kv", "delete", "--mount", "kv", "--versions", "1,2", "a/b" },
    { "kv", "undelete", "--versions", "1", "a/b" },
    { "kv", "destroy", "--versions", "1", "a/b" },
    { "kv", "metadata", "get", "a/b" },
    { "kv", "metadata", "put", "--max-versions", "3", "--cas-required", "true",
      "--delete-version-after", "1h", "--custom-metadata", "a=b", "a/b" },
    { "kv", "metadata", "delete", "a/b" },
    { "operator", "key-status", "--verify" },
    { "operator", "rotate", "--rewrap", "--retire", "--rate", "100" },
    { "operator", "rewrap", "--below-term", "3", "--rate", "10", "--wait" },
    { "operator", "rewrap", "--status" },
    { "operator", "retire-term", "2" },
    { "operator", "verify-share", "00ff" },
    { "operator", "verify-share", "--identity", "/nonexistent/key", "/nonexistent/f" },
    { "operator", "generate-root", "--status" },
    { "operator", "generate-root", "--init", "--otp" },
    { "operator", "generate-root", "--init", "--server-otp" },
    { "operator", "generate-root", "--nonce", "n", "--output", "/tmp/x.age", "00ff" },
    { "operator", "generate-root", "--cancel", "--nonce", "n" },
    { "operator", "raft", "list-peers" },
    { "operator", "raft", "add-peer", "n4", "127.0.0.1:9" },
    { "operator", "raft", "remove-peer", "n4" },
    { "operator", "raft", "step-down" },
    { "operator", "snapshot", "save", "/tmp/x.snap" },
    { "operator", "snapshot", "inspect", "/nonexistent/x.snap" },
    { "operator", "snapshot", "verify", "/nonexistent/x.snap", "00ff" },
    { "operator", "snapshot", "restore", "/nonexistent/x.snap", "--force" },
    { "kv", "put", "a/b", "k=v", "k2=@/nonexistent/file" },
    { "kv", "put", "a/b", "k=v", "--", "j=-x" },
    { "kv", "get", "a/b" },
    { "kv", "get", "a/b", "--field", "k" },
    { "kv", "list" },
    { "kv", "list", "a/" },
    { "kv", "delete", "a/b" },
    { "token", "create", "--policy", "p", "--policy", "q", "--ttl", "24h", "--renewable" },
    { "token", "lookup" },
    { "token", "lookup", "tok" },
    { "token", "renew", "tok", "--increment", "90s" },
    { "token", "revoke", "tok" },
    { "token", "revoke", "--self" },
    { "policy", "write", "p", "/nonexistent/policy.json" },
    { "policy", "read", "p" },
    { "policy", "list" },
    { "policy", "delete", "p" },
    { "audit", "hash", "v" },
    { "audit", "hash", "@/nonexistent/file" },
    { "status", "--format", "json", "--addr", "127.0.0.1:1", "--token", "t" },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char *argv[17];
    int argc = 0;
    char buf[16][128];
    for (; argc < 16 && ok[i][argc] != NULL; argc++) {
      snprintf(buf[argc], sizeof buf[argc], "%s", ok[i][argc]);
      argv[argc] = buf[argc];
    }
    argv[argc] = NULL;
    int rc = run_argv(argc, argv);
    if (rc != CLI_FAIL || (strncmp(err_buf, "Error: ", 7) != 0 && strncmp(err_buf, "{\"error\"", 8) != 0))
      fail_msg("case %zu (%s %s %s): rc %d, err: %s", i, ok[i][0], ok[i][1] ? ok[i][1] : "",
               ok[i][1] && ok[i][2] ? ok[i][2] : "", rc, err_buf);
  }
}

/* Values and combinations each command refuses before it sends anything. */
static void test_usage_errors(void **state) {
  (void)state;
  static const struct { const char *argv[10]; const char *msg; } bad[] = {
    { { "status", "x" }, "status: takes no arguments" },
    { { "operator", "init", "--key-shares", "0" }, "--key-shares must be a number from 1 to 255" },
    { { "operator", "init", "--key-shares", "256" }, "--key-shares must be" },
    { { "operator", "init", "--key-shares", "2", "--key-threshold", "3" }, "is larger than" },
    { { "operator", "init", "--recipient", "age1bogus" }, "is not an age recipient" },
    { { "operator", "init", "--output-dir", "/tmp" }, "--output-dir goes with" },
    { { "operator", "init", "--key-shares", "2", "--recipient",
        "age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef" }, "1 age recipients for 2" },
    { { "operator", "unseal", "a", "b" }, "unexpected argument \"b\"" },
    { { "operator", "unseal", "--reset", "00ff" }, "--reset takes no key" },
    { { "operator", "unseal", "--nonce", "n" }, "--nonce goes with --reset" },
    { { "operator", "unseal", "--reset", "--identity", "k" }, "--identity goes with" },
    { { "operator", "unseal", "--reset", "--cluster" }, "--cluster goes with a share" },
    { { "operator", "unseal", "--nonce", "a", "--reset", "--nonce", "b" }, "--nonce given twice" },
    { { "operator", "rotate-config", "--enable", "--disable" }, "exclude each other" },
    { { "operator", "rotate-config", "--interval", "5x" }, "bad --interval \"5x\"" },
    { { "operator", "rotate-config", "--max-operations", "-1" }, "--max-operations needs a number" },
    { { "operator", "rekey" }, "needs --init, --status, --cancel, --nonce" },
    { { "operator", "rekey", "--init", "--status" }, "use one of" },
    { { "operator", "rekey", "--status", "--key-shares", "3" }, "go with --init" },
    { { "operator", "rekey", "--cancel", "x" }, "unexpected argument" },
    { { "operator", "raft", "add-peer", "n4" }, "expected NODE_ID and its cluster ADDRESS" },
    { { "operator", "raft", "remove-peer" }, "expected one node id" },
    { { "operator", "snapshot", "save" }, "expected FILE" },
    { { "operator", "snapshot", "verify" }, "expected FILE [KEY...]" },
    { { "kv", "put", "p" }, "missing K=V" },
    { { "kv", "put" }, "missing PATH" },
    { { "kv", "put", "p", "novalue" }, "expected K=V, got \"novalue\"" },
    { { "kv", "put", "p", "=v" }, "expected K=V" },
    { { "kv", "put", "p", "a=1", "a=2" }, "field \"a\" given twice" },
    { { "kv", "put", "p", "a=-", "b=-" }, "only one value can come from stdin" },
    { { "kv", "get" }, "missing PATH" },
    { { "kv", "get", "p", "--field" }, "option --field needs a value" },
    { { "kv", "delete" }, "missing PATH" },
    { { "token", "create" }, "at least one --policy" },
    { { "token", "create", "--policy", "p", "--ttl", "1y" }, "bad --ttl \"1y\"" },
    { { "token", "renew", "--increment", "soon" }, "bad --increment" },
    { { "token", "revoke" }, "--self" },
    { { "token", "revoke", "--self", "t" }, "give one of" },
    { { "token", "revoke", "--accessor", "a", "t" }, "give one of" },
    { { "token", "lookup", "--accessor", "a", "t" }, "not both" },
    { { "policy", "write", "p" }, "needs NAME and FILE" },
    { { "policy", "read" }, "missing NAME" },
    { { "policy", "delete" }, "missing NAME" },
    { { "audit", "hash" }, "missing VALUE" },
    { { "kv", "put", "--mount", "other", "p", "a=1" }, "only the versioned mount" },
    { { "kv", "put", "--mount", "kv", "p", "a=1", "--cas", "x" }, "--cas takes a version number" },
    { { "kv", "put", "p", "a=1", "--cas", "1" }, "unknown option --cas" },
    { { "kv", "undelete", "p" }, "missing --versions" },
    { { "kv", "destroy", "--versions", "1,,2", "p" }, "--versions takes numbers" },
    { { "kv", "metadata", "put", "--cas-required", "maybe", "p" }, "--cas-required takes true or false" },
    { { "operator", "rekey", "--status", "--backup" }, "go with --init" },
    { { "operator", "rekey", "--init", "--backup" }, "--backup needs --recipient" },
    { { "operator", "verify-share", "a", "b" }, "unexpected argument" },
    { { "operator", "rotate", "--retire" }, "--retire needs --rewrap" },
    { { "operator", "rotate", "--rate", "5" }, "--rate goes with --rewrap" },
    { { "operator", "rewrap", "--rate", "0" }, "--rate must be a whole number" },
    { { "operator", "rewrap", "--status", "--below-term", "2" }, "--status takes no other option" },
    { { "operator", "retire-term" }, "missing the term number" },
    { { "operator", "retire-term", "x" }, "is not a term number" },
    { { "operator", "generate-root" }, "use one of --init" },
    { { "operator", "generate-root", "--init" }, "--init needs one of" },
    { { "operator", "generate-root", "--cancel" }, "--cancel needs --nonce N" },
    { { "operator", "generate-root", "--decode", "x" }, "--decode needs --otp" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *argv[11];
    char buf[10][128];
    int argc = 0;
    for (; argc < 10 && bad[i].argv[argc] != NULL; argc++) {
      snprintf(buf[argc], sizeof buf[argc], "%s", bad[i].argv[argc]);
      argv[argc] = buf[argc];
    }
    argv[argc] = NULL;
    int rc = run_argv(argc, argv);
    if (rc != CLI_USAGE || strstr(err_buf, bad[i].msg) == NULL || strstr(err_buf, "--help'.") == NULL)
      fail_msg("case %zu (%s %s): rc %d, want \"%s\", err: %s", i, bad[i].argv[0],
               bad[i].argv[1] ? bad[i].argv[1] : "", rc, bad[i].msg, err_buf);
  }
}

/* ------------------------------------------------------------ errors, out */

static void test_json_errors(void **state) {
  (void)state;
  assert_int_equal(run("--format", "json", "kv", "put", "--frob", NULL), CLI_USAGE);
  json_t *v = jtest_load(err_buf, strlen(err_buf));
  assert_non_null(v);
  json_t *e = json_object_get(v, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), "usage");
  assert_string_equal(json_string_value(json_object_get(e, "message")),
                      "kv put: unknown option --frob");
  assert_string_equal(json_string_value(json_object_get(e, "command")), "kv put");
  assert_int_equal(json_integer_value(json_object_get(e, "exit_code")), 2);
  json_decref(v);
  assert_string_equal(out_buf, "");

  /* A local failure: no CA certificate. */
  assert_int_equal(run("--format", "json", "kv", "get", "a", NULL), CLI_FAIL);
  v = jtest_load(err_buf, strlen(err_buf));
  assert_non_null(v);
  e = json_object_get(v, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), "client");
  assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "no CA certificate"));
  json_decref(v);
  /* exactly one line */
  assert_non_null(strchr(err_buf, '\n'));
  assert_string_equal(strchr(err_buf, '\n'), "\n");

  assert_string_equal(cli_error_class(CS_EPERM), "permission_denied");
  assert_string_equal(cli_error_class(CS_EBUSY), "retry");
  assert_string_equal(cli_error_class(CS_ESEALED), "sealed");
  assert_string_equal(cli_error_class(CS_ECONN), "unavailable");
}

/* Both back ends from the same calls. */
static void emit(cli_ctx *g) {
  out_str(g, "name", "Name", "a\x1b[31mb");
  out_u64(g, "n", "Count", 7);
  out_bool(g, "only_json", NULL, 1);
  out_row_fmt(g, "Only Text", "%d/%d", 1, 2);
  out_list_begin(g, "items", "Items");
  out_item(g, "x");
  out_item(g, "y");
  out_list_end(g);
  out_list_begin(g, "grid", "");
  for (int i = 0; i < 2; i++) {
    out_obj_begin(g);
    out_u64(g, "id", "Id", (uint64_t)i * 1000);
    out_str(g, "state", "State", i ? "up" : "down");
    out_str(g, NULL, "Text Only", "t");
    out_obj_end(g);
  }
  out_list_end(g);
  out_map_begin(g, "data");
  out_strn(g, "k", "k", "v\n", 2);
  out_map_end(g);
  out_text(g, "free text\n");
}

static int capture_flush(cli_ctx *g) {
  FILE *fo = tmpfile();
  fflush(stdout);
  int so = dup(1);
  dup2(fileno(fo), 1);
  int rc = out_flush(g);
  fflush(stdout);
  dup2(so, 1);
  close(so);
  slurp(fo, out_buf, sizeof out_buf);
  fclose(fo);
  return rc;
}

static void test_out_backends(void **state) {
  (void)state;
  cli_ctx g;
  cli_ctx_init(&g);
  emit(&g);
  assert_int_equal(capture_flush(&g), 0);
  assert_string_equal(out_buf,
                      "Key          Value\n"
                      "---          -----\n"
                      "Name         a\\x1b[31mb\n"
                      "Count        7\n"
                      "Only Text    1/2\n"
                      "Items\n-----\nx\ny\n"
                      "Id    State  Text Only\n"
                      "--    -----  ---------\n"
                      "0     down   t\n"
                      "1000  up     t\n"
                      "Key    Value\n"
                      "---    -----\n"
                      "k      v\\x0a\n"
                      "free text\n");
  cli_ctx_free(&g);

  cli_ctx_init(&g);
  g.json = 1;
  emit(&g);
  assert_int_equal(capture_flush(&g), 0);
  assert_string_equal(out_buf,
                      "{\"name\":\"a\\u001b[31mb\",\"n\":7,\"only_json\":true,"
                      "\"items\":[\"x\",\"y\"],"
                      "\"grid\":[{\"id\":0,\"state\":\"down\"},{\"id\":1000,\"state\":\"up\"}],"
                      "\"data\":{\"k\":\"v\\n\"}}\n");
  cli_ctx_free(&g);

  /* Nothing added: nothing printed. */
  cli_ctx_init(&g);
  assert_int_equal(capture_flush(&g), 0);
  assert_string_equal(out_buf, "");
  g.json = 1;
  assert_int_equal(capture_flush(&g), 0);
  assert_string_equal(out_buf, "");
  cli_ctx_free(&g);
}

/* ------------------------------------------------------------ hostile argv */

static void test_hostile_argv(void **state) {
  (void)state;
  /* A huge argument count: the parser stops at the positional limit. */
  int argc = 20000;
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  static char kvs[20000][12];
  assert_non_null(argv);
  argv[0] = "kv";
  argv[1] = "put";
  argv[2] = "p";
  for (int i = 3; i < argc; i++) {
    snprintf(kvs[i], sizeof kvs[i], "k%d=v", i);
    argv[i] = kvs[i];
  }
  assert_int_equal(run_argv(argc, argv), CLI_USAGE);
  ASSERT_ERR_HAS("unexpected argument");

  /* A huge single option name and value: messages are bounded. */
  static char big[200000];
  memset(big, 'x', sizeof big - 1);
  memcpy(big, "--", 2);
  argv[0] = "status";
  argv[1] = big;
  argv[2] = NULL;
  assert_int_equal(run_argv(2, argv), CLI_USAGE);
  assert_true(strlen(err_buf) < 2048);
  argv[0] = "token";
  argv[1] = "create";
  argv[2] = "--policy";
  argv[3] = "p";
  argv[4] = "--ttl";
  argv[5] = big + 2;
  argv[6] = NULL;
  assert_int_equal(run_argv(6, argv), CLI_USAGE);
  assert_true(strlen(err_buf) < 2048);
  /* Repeated list options beyond the cap. */
  for (int i = 2; i < 2 + 2 * 65; i += 2) {
    argv[i] = "--policy";
    argv[i + 1] = "p";
  }
  argv[2 + 2 * 65] = NULL;
  assert_int_equal(run_argv(2 + 2 * 65, argv), CLI_USAGE);
  ASSERT_ERR_HAS("--policy given more than 64 times");
  free(argv);
}

/* Key shares typed by a user: hex (either case) or base64, nothing else. */
static void test_decode_key(void **state) {
  (void)state;
  uint8_t *k;
  size_t n;
  assert_int_equal(cli_decode_key("00ffA0", &k, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(k[1], 0xff);
  assert_int_equal(k[2], 0xa0);
  cli_free_secret(k, n);
  assert_int_equal(cli_decode_key("AP8=", &k, &n), 0); /* base64 */
  assert_int_equal(n, 2);
  assert_int_equal(k[0], 0x00);
  assert_int_equal(k[1], 0xff);
  cli_free_secret(k, n);
  /* All hex digits, even length: hex (the documented rule), even though it
   * is also valid base64. */
  assert_int_equal(cli_decode_key("ABCD", &k, &n), 0);
  assert_int_equal(n, 2);
  cli_free_secret(k, n);
  static const char *const bad[] = { "", "abc", "zz", "AP8", "AP 8=", "AP8=\n", "====", "0x0", "Zm9v YmFy" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    k = (uint8_t *)1;
    assert_int_equal(cli_decode_key(bad[i], &k, &n), -1);
    assert_null(k);
  }
}

/* Secrets on the command line leave argv once read (ps, /proc/PID/cmdline). */
static void test_argv_wiped(void **state) {
  (void)state;
  cli_ctx g;
  char share[] = "00ff00ff";
  uint8_t *k;
  size_t n;
  cli_ctx_init(&g);
  assert_int_equal(cli_get_key(&g, share, "", &k, &n), 0);
  assert_int_equal(n, 4);
  for (size_t i = 0; i < sizeof share - 1; i++)
    assert_int_equal(share[i], 0);
  cli_free_secret(k, n);
  cli_ctx_free(&g);

  char w0[] = "--token", w1[] = "cs.secret", w2[] = "status", w3[] = "--token=cs.secret";
  char *argv[] = { w0, w1, w2, w3, NULL };
  int argc = 4, version = 0;
  unsetenv("CUSTOS_FORMAT");
  cli_ctx_init(&g);
  assert_int_equal(cli_parse_globals(&g, &argc, argv, &version), 0);
  assert_string_equal(g.opts.token, "cs.secret");
  assert_int_equal(w1[0], 0);                   /* both copies wiped */
  assert_int_equal(w3[8], 0);
  assert_memory_equal(w3, "--token=", 8);
  assert_int_equal(argc, 1);
  cli_ctx_free(&g);
}

int main(void) {
  unsetenv("CUSTOS_FORMAT");
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_forms),
    cmocka_unit_test(test_parse_errors),
    cmocka_unit_test(test_parse_repeats),
    cmocka_unit_test(test_parse_help),
    cmocka_unit_test(test_parse_u64),
    cmocka_unit_test(test_globals),
    cmocka_unit_test(test_version),
    cmocka_unit_test(test_every_command_help),
    cmocka_unit_test(test_groups),
    cmocka_unit_test(test_every_command_parses),
    cmocka_unit_test(test_usage_errors),
    cmocka_unit_test(test_json_errors),
    cmocka_unit_test(test_out_backends),
    cmocka_unit_test(test_hostile_argv),
    cmocka_unit_test(test_decode_key),
    cmocka_unit_test(test_argv_wiped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
