/*
 * cmd: the command tree walk, the usage errors and the help texts.
 *
 * The tree is made of cli_cmd tables (cli.h) in the shape of WireGuard's
 * wg.c: a row names a command (fn) or a group (sub).  cli_dispatch follows
 * the words of argv down the tree; a group answers "--help" itself, a
 * command answers it in cli_parse.  Every help text comes from the rows, so
 * `custos --help`, `custos kv --help` and `custos kv put --help` cannot
 * disagree with the commands that exist.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

static const cli_cmd *find(const cli_cmd *table, const char *name) {
  for (const cli_cmd *c = table; c != NULL && c->name != NULL; c++)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

/* "custos" + " " + words, for messages. */
static void prog(char *buf, size_t cap, const char *words) {
  snprintf(buf, cap, "custos%s%s", words[0] ? " " : "", words);
}

/* Prints each form of a usage string ("A\nB") after `lead` ("Usage: " then
 * as many spaces) and the program words. */
static void print_forms(FILE *f, const char *lead, const char *words, const char *usage) {
  char p[160];
  prog(p, sizeof p, words);
  size_t ll = strlen(lead);
  const char *s = usage ? usage : "";
  int first = 1;
  do {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    if (!first && s[0] == ' ') /* a continuation of the form above */
      fprintf(f, "%*s%*s%.*s\n", (int)ll, "", (int)strlen(p), "", (int)n, s);
    else
      fprintf(f, "%*s%s%s%.*s\n", first ? 0 : (int)ll, first ? lead : "", p, n ? " " : "", (int)n,
              s);
    first = 0;
    s = nl ? nl + 1 : NULL;
  } while (s != NULL && *s != '\0');
}

/* A group's synopsis: "<put|get|list|delete> ..." */
static void group_synopsis(const cli_cmd *grp, char *buf, size_t cap) {
  size_t off = 0;
  int n = snprintf(buf, cap, "<");
  off = n > 0 ? (size_t)n : 0;
  for (const cli_cmd *c = grp->sub; c->name != NULL && off < cap; c++) {
    n = snprintf(buf + off, cap - off, "%s%s", c == grp->sub ? "" : "|", c->name);
    if (n < 0)
      return;
    off += (size_t)n;
  }
  if (off < cap)
    snprintf(buf + off, cap - off, "> [args] [options]");
}

static void short_usage(FILE *f, const cli_cmd *cmd, const char *words) {
  char syn[512];
  char p[160];
  const char *usage = cmd ? cmd->usage : NULL;
  if (cmd != NULL && cmd->fn == NULL && cmd->sub != NULL && usage == NULL) {
    group_synopsis(cmd, syn, sizeof syn);
    usage = syn;
  }
  print_forms(f, "Usage: ", words, usage);
  prog(p, sizeof p, words);
  fprintf(f, "See '%s --help'.\n", p);
}

int cli_usage(cli_ctx *g, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (g->json) {
    if (g->words[0])
      return cli_error(g, CS_EUSAGE, "%s: %s", g->words, msg);
    return cli_error(g, CS_EUSAGE, "%s", msg);
  }
  if (g->words[0])
    fprintf(stderr, "custos: %s: %s\n", g->words, msg);
  else
    fprintf(stderr, "custos: %s\n", msg);
  short_usage(stderr, g->cmd, g->words);
  return CLI_USAGE;
}

/* Every form of every command under `c` (for the top-level help). */
static void list_all(const cli_cmd *c, const char *words) {
  char w[128];
  for (const cli_cmd *s = c->sub; s->name != NULL; s++) {
    snprintf(w, sizeof w, "%s%s%s", words, words[0] ? " " : "", s->name);
    if (s->fn != NULL) {
      const char *u = s->usage ? s->usage : "";
      do {
        const char *nl = strchr(u, '\n');
        size_t n = nl ? (size_t)(nl - u) : strlen(u);
        char line[256];
        if (u[0] == ' ') /* a continuation of the form above */
          snprintf(line, sizeof line, "%*s%.*s", (int)strlen(w), "", (int)n, u);
        else
          snprintf(line, sizeof line, "%s%s%.*s", w, n ? " " : "", (int)n, u);
        if (strlen(line) <= 40 && s->summary && u == (s->usage ? s->usage : ""))
          printf("  %-40s  %s\n", line, s->summary);
        else
          printf("  %s\n", line);
        u = nl ? nl + 1 : NULL;
      } while (u != NULL && *u != '\0');
    } else {
      list_all(s, w);
    }
  }
}

/* The summary as a sentence: "\nWrite the fields of a path.\n". */
static void print_summary(const cli_cmd *cmd) {
  const char *s = cmd->summary;
  if (s == NULL || s[0] == '\0')
    return;
  printf("\n%c%s.\n", s[0] >= 'a' && s[0] <= 'z' ? s[0] - 'a' + 'A' : s[0], s + 1);
}

void cli_print_help(const cli_cmd *cmd, const char *words) {
  if (cmd->fn != NULL) {
    print_forms(stdout, "Usage: ", words, cmd->usage);
    print_summary(cmd);
    if (cmd->help && cmd->help[0])
      printf("\n%s", cmd->help);
    printf("\nGlobal options (--addr, --ca-cert, --token, --format, ...): see 'custos --help'.\n");
    return;
  }
  if (words[0] == '\0') { /* the top: every command, global options */
    printf("Usage: custos [global options] <command> [args] [options]\n\nCommands:\n");
    list_all(cmd, "");
    if (cmd->help)
      printf("\n%s", cmd->help);
    return;
  }
  char syn[512], p[160];
  group_synopsis(cmd, syn, sizeof syn);
  print_forms(stdout, "Usage: ", words, syn);
  print_summary(cmd);
  printf("\nCommands:\n");
  for (const cli_cmd *s = cmd->sub; s->name != NULL; s++)
    printf("  %-16s %s\n", s->name, s->summary ? s->summary : "");
  prog(p, sizeof p, words);
  printf("\nSee '%s <command> --help'.\n", p);
}

static void add_word(cli_ctx *g, const char *w) {
  size_t n = strlen(g->words);
  snprintf(g->words + n, sizeof g->words - n, "%s%s", n ? " " : "", w);
}

/* `custos help WORDS...`: the help of the command the words name. */
static int help_of(cli_ctx *g, const cli_cmd *root, int argc, char **argv) {
  const cli_cmd *c = root;
  for (int i = 0; i < argc; i++) {
    const cli_cmd *s = c->fn == NULL ? find(c->sub, argv[i]) : NULL;
    if (s == NULL) {
      g->cmd = c;
      return cli_usage(g, "help: no command \"%s\"", argv[i]);
    }
    add_word(g, s->name);
    c = s;
  }
  cli_print_help(c, g->words);
  return CLI_HELPED;
}

int cli_dispatch(cli_ctx *g, const cli_cmd *root, int argc, char **argv) {
  const cli_cmd *c = root;
  g->words[0] = '\0';
  g->cmd = root;
  while (c->fn == NULL) {
    if (argc == 0)
      return cli_usage(g, "%s", c == root ? "no command given" : "missing subcommand");
    if (is_help(argv[0])) {
      cli_print_help(c, g->words);
      return CLI_HELPED;
    }
    if (c == root && strcmp(argv[0], "help") == 0)
      return help_of(g, root, argc - 1, argv + 1);
    const cli_cmd *s = find(c->sub, argv[0]);
    if (s == NULL) {
      if (argv[0][0] == '-')
        return cli_usage(g, "unknown option %s (options go after the command)", argv[0]);
      return cli_usage(g, "unknown %s \"%s\"", c == root ? "command" : "subcommand", argv[0]);
    }
    add_word(g, s->name);
    g->cmd = c = s;
    argc--;
    argv++;
  }
  return c->fn(g, argc, argv);
}
