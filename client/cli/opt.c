/*
 * opt: the one option parser of the CLI (command options and the global
 * options).
 *
 * Rules, the same for every command: options may come anywhere among the
 * arguments, as "--name value", "--name=value" or "-name value"; "--" ends
 * the options (later words are arguments even when they start with '-');
 * "-" alone is an argument (stdin).  A flag given twice is harmless; an
 * option that takes one value given twice with different values is a usage
 * error (which of the two was meant is not ours to guess).  An unknown
 * option is reported as an unknown option of the command that runs.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/platform_util.h>

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len) {
  for (const cli_opt *o = opts; o != NULL && o->name != NULL; o++)
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
      return o;
  return NULL;
}

int cli_parse(cli_ctx *g, int argc, char **argv, const cli_opt *opts, char **pos,
              size_t max_pos, size_t *npos) {
  int only_pos = 0;
  *npos = 0;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && a[0] == '-' && a[1] != '\0') {
      const char *name = a + (a[1] == '-' ? 2 : 1);
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      if (eq == NULL && (strcmp(name, "help") == 0 || strcmp(name, "h") == 0)) {
        cli_print_help(g->cmd, g->words);
        return CLI_HELPED;
      }
      const cli_opt *o = find_opt(opts, name, len);
      if (o == NULL) {
        if (len == 0)
          return cli_usage(g, "unknown option %s", a);
        return cli_usage(g, "unknown option --%.*s", (int)(len > 64 ? 64 : len), name);
      }
      const char *val = NULL;
      if (o->arg == 0) {
        if (eq != NULL)
          return cli_usage(g, "option --%s takes no value", o->name);
        *o->flag = 1;
        continue;
      }
      if (eq != NULL)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return cli_usage(g, "option --%s needs a value", o->name);
      if (o->arg == 1) {
        if (*o->val != NULL && strcmp(*o->val, val) != 0)
          return cli_usage(g, "option --%s given twice", o->name);
        *o->val = val;
      } else {
        if (*o->nlist >= o->cap)
          return cli_usage(g, "option --%s given more than %zu times", o->name, o->cap);
        o->list[(*o->nlist)++] = val;
      }
      continue;
    }
    if (*npos >= max_pos) {
      if (max_pos == 0)
        return cli_usage(g, "takes no arguments (got \"%.64s\")", a);
      return cli_usage(g, "unexpected argument \"%.64s\"", a);
    }
    pos[(*npos)++] = a;
  }
  return 0;
}

/* ------------------------------------------------------- global options */

int cli_parse_globals(cli_ctx *g, int *argc, char **argv, int *version) {
  const char *format = NULL;
  const char *addr = NULL, *ca = NULL, *token = NULL, *cert = NULL, *key = NULL;
  const struct { const char *name; const char **val; } globals[] = {
    { "addr", &addr }, { "ca-cert", &ca }, { "token", &token }, { "client-cert", &cert },
    { "client-key", &key }, { "format", &format },
  };
  int out = 0, rest = 0;
  for (int i = 0; i < *argc; i++) {
    char *a = argv[i];
    if (rest || strcmp(a, "--") == 0) {
      rest = 1;    /* everything after "--" belongs to the command */
      argv[out++] = a;
      continue;
    }
    /* --version before the command only: after it, the word may be the
     * command's own option (kv get --mount kv --version 3). */
    if (out == 0 && strcmp(a, "--version") == 0) {
      *version = 1;
      continue;
    }
    const char **slot = NULL, *val = NULL, *name = NULL;
    if (a[0] == '-' && a[1] == '-') {
      const char *n = a + 2, *eq = strchr(n, '=');
      size_t len = eq ? (size_t)(eq - n) : strlen(n);
      for (size_t k = 0; k < sizeof globals / sizeof globals[0]; k++)
        if (strlen(globals[k].name) == len && strncmp(globals[k].name, n, len) == 0) {
          slot = globals[k].val;
          name = globals[k].name;
        }
      if (slot != NULL) {
        if (eq != NULL)
          val = eq + 1;
        else if (i + 1 < *argc)
          val = argv[++i];
        else
          return cli_usage(g, "option --%s needs a value", name);
      }
    }
    if (slot == NULL) {
      argv[out++] = a;
      continue;
    }
    if (*slot != NULL && strcmp(*slot, val) != 0)
      return cli_usage(g, "option --%s given twice", name);
    if (slot == &token && token != NULL && token != val) /* the same token twice */
      mbedtls_platform_zeroize((char *)token, strlen(token));
    *slot = val;
  }
  *argc = out;
  argv[out] = NULL;
  /* The command line wins over the environment (read by main). */
  if (addr) g->opts.addr = addr;
  if (ca) g->opts.ca_file = ca;
  if (token) {
    /* The token leaves argv (and so `ps`): a copy, wiped by cli_ctx_free. */
    if ((g->token_copy = strdup(token)) == NULL)
      return cli_fail(g, "out of memory");
    mbedtls_platform_zeroize((char *)token, strlen(token));
    g->opts.token = g->token_copy;
  }
  if (cert) g->opts.cert_file = cert;
  if (key) g->opts.key_file = key;
  if (format == NULL)
    format = getenv("CUSTOS_FORMAT");
  if (format == NULL || format[0] == '\0' || strcmp(format, "table") == 0)
    g->json = 0;
  else if (strcmp(format, "json") == 0)
    g->json = 1;
  else
    return cli_usage(g, "unknown format \"%.32s\" (table or json)", format);
  return 0;
}
