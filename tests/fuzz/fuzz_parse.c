/*
 * libFuzzer target for the CLI's option parser (client/cli/opt.c) and the
 * command tree walk (cmd.c): the input is an argv, words separated by NUL
 * bytes (at most 64 words).  The words go through cli_parse_globals, then
 * cli_dispatch over a small tree whose commands parse every kind of option
 * (flag, one value, repeatable value, positionals), and what was parsed is
 * written through the JSON back end of out.c, which must stay valid JSON.
 *
 * Invariants checked: the exit code is 0, CLI_USAGE or CLI_HELPED; every
 * value and positional points into the argv it came from (or just after
 * the '=' of an --opt=value word); lists stay within their caps; a JSON
 * document reads back through jansson.  The parser prints usage errors and
 * help: run with -close_fd_mask=3 to silence them (libFuzzer keeps its own
 * reports).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jtest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 64

static char **cur_argv;
static int cur_argc;

/* p lies inside one of the words. */
static int in_argv(const char *p) {
  for (int i = 0; i < cur_argc; i++) {
    size_t n = strlen(cur_argv[i]);
    if (p >= cur_argv[i] && p <= cur_argv[i] + n)
      return 1;
  }
  return 0;
}

static int leaf(cli_ctx *g, int argc, char **argv) {
  int flag = 0;
  const char *one = NULL, *list[4];
  size_t nlist = 0, npos = 0;
  char *pos[8];
  const cli_opt opts[] = {
    { .name = "flag", .arg = 0, .flag = &flag },
    { .name = "one", .arg = 1, .val = &one },
    { .name = "many", .arg = 2, .list = list, .nlist = &nlist, .cap = 4 },
    { 0 },
  };
  int rc = cli_parse(g, argc, argv, opts, pos, 8, &npos);
  if (rc != 0)
    return rc;
  if (npos > 8 || nlist > 4 || (flag != 0 && flag != 1) || (one != NULL && !in_argv(one)))
    abort();
  for (size_t i = 0; i < npos; i++)
    if (!in_argv(pos[i]))
      abort();
  for (size_t i = 0; i < nlist; i++)
    if (!in_argv(list[i]))
      abort();
  out_bool(g, "flag", "Flag", flag);
  out_str(g, "one", "One", one);
  if (one != NULL) { /* a member name made of the user's bytes */
    out_map_begin(g, "by_name");
    out_str(g, one, one, one);
    out_map_end(g);
  }
  out_list_begin(g, "many", "Many");
  for (size_t i = 0; i < nlist; i++)
    out_item(g, list[i]);
  out_list_end(g);
  out_list_begin(g, "pos", "");
  for (size_t i = 0; i < npos; i++) {
    out_obj_begin(g);
    out_str(g, "word", "Word", pos[i]);
    out_obj_end(g);
  }
  out_list_end(g);
  return 0;
}

static const cli_cmd sub_cmds[] = {
  { "leaf", leaf, NULL, "a leaf", "[--flag] [--one V] [--many V]... [WORD...]", "" },
  { 0 },
};
static const cli_cmd top_cmds[] = {
  { "leaf", leaf, NULL, "a leaf", "[--flag] [--one V] [--many V]... [WORD...]", "" },
  { "group", NULL, sub_cmds, "a group", NULL, NULL },
  { 0 },
};
static const cli_cmd root = { "custos", NULL, top_cmds, NULL, "<command>", "" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16)
    return 0;
  /* Words: NUL-separated; a trailing word without NUL counts too. */
  char *buf = malloc(size + 1);
  char *argv[MAX_WORDS + 1];
  int argc = 0;
  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  for (size_t i = 0; i < size && argc < MAX_WORDS;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  argv[argc] = NULL;

  cli_ctx g;
  int version = 0;
  cli_ctx_init(&g);
  int rc = cli_parse_globals(&g, &argc, argv, &version);
  if (rc == 0 && argv[argc] != NULL)
    abort();
  cur_argv = argv;
  cur_argc = argc;
  if (rc == 0 && !version) {
    g.json = data[0] & 1; /* both back ends */
    rc = cli_dispatch(&g, &root, argc, argv);
  }
  if (rc != 0 && rc != CLI_USAGE && rc != CLI_HELPED)
    abort();
  if (g.json && g.out.json_open) {
    const char *text;
    size_t len;
    cs_jbuf_end_object(&g.out.json);
    if (cs_jbuf_result(&g.out.json, &text, &len) == 0) {
      json_t *v = jtest_load(text, len);
      if (v == NULL)
        abort();
      json_decref(v);
    }
  }
  cli_ctx_free(&g);
  free(buf);
  return 0;
}
