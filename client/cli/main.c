/*
 * custos: the command-line client.  This file owns the global options
 * (each also from the environment), the dispatch to the command groups,
 * the command option parser, the output helpers and the one connection.
 *
 * Global options may appear anywhere before a "--": they are taken out of
 * argv first, the remaining words are the command.  Nothing connects to the
 * server before a command needs it, so usage errors never touch the network.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "jbuf.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/platform_util.h>

static const char usage_text[] =
  "Usage: custos [global options] <command> [args] [options]\n"
  "\n"
  "Commands:\n"
  "  status                                    seal status of the server\n"
  "  operator init [--key-shares N] [--key-threshold T]\n"
  "                [--recipient age1...]... [--recipients-file FILE] [--root-token-recipient age1...]\n"
  "                [--output-dir DIR]\n"
  "  operator unseal [KEY] | --reset [--nonce N]  submit one unseal key share\n"
  "  operator unseal --identity KEYFILE [FILE]  ... decrypted from an age file\n"
  "  operator seal\n"
  "  operator rotate [--wait]                  install a new encryption key term (--wait: until\n"
  "                                            it is active: staged in a cluster, docs/ha.md)\n"
  "  operator key-status\n"
  "  operator rotate-config [--enable|--disable] [--max-operations N] [--interval DURATION]\n"
  "  operator rekey --init [--key-shares N] [--key-threshold T] [--verify]\n"
  "  operator rekey --nonce NONCE [KEY]        submit a current key share\n"
  "  operator rekey --verify --nonce NONCE [NEWKEY]\n"
  "  operator rekey --status | --cancel\n"
  "  operator raft list-peers                  cluster members, leader, applied index\n"
  "  operator raft add-peer NODE_ID ADDRESS    approve a new member (its cluster address)\n"
  "  operator raft remove-peer NODE_ID         remove a member from the raft configuration\n"
  "  operator snapshot save FILE               snapshot of the whole store (sudo on sys/storage/snapshot)\n"
  "  operator snapshot inspect FILE            print a snapshot's header, check its checksum (offline)\n"
  "  operator snapshot verify FILE [KEY...]    check that shares open a snapshot (offline)\n"
  "  operator snapshot restore FILE [--force]  replace the store with a snapshot\n"
  "  kv put PATH K=V [K=V ...]                 V: value, - (stdin), @FILE\n"
  "  kv get PATH [--field K]\n"
  "  kv list [PREFIX]\n"
  "  kv delete PATH\n"
  "  token create --policy P [--policy Q ...] [--ttl DURATION] [--renewable]\n"
  "  token lookup [TOKEN]\n"
  "  token renew [TOKEN] [--increment DURATION]\n"
  "  token revoke TOKEN | --self\n"
  "  policy write NAME FILE                    FILE - reads stdin\n"
  "  policy read NAME\n"
  "  policy list\n"
  "  policy delete NAME\n"
  "  audit hash VALUE                          the audit log's form of VALUE (- stdin, @FILE)\n"
  "  help\n"
  "\n"
  "Global options (environment variable in brackets):\n"
  "  --addr HOST:PORT       server address [CUSTOS_ADDR] (default 127.0.0.1:7200)\n"
  "  --ca-cert FILE         PEM CA certificate to verify the server [CUSTOS_CACERT]\n"
  "  --token TOKEN          authentication token [CUSTOS_TOKEN]\n"
  "  --client-cert FILE     PEM client certificate [CUSTOS_CLIENT_CERT]\n"
  "  --client-key FILE      PEM client key [CUSTOS_CLIENT_KEY]\n"
  "  --format table|json    output format [CUSTOS_FORMAT] (default table)\n"
  "\n"
  "Exit codes: 0 success; 1 error; 2 usage error, or (status, unseal) sealed;\n"
  "  3 the server asked to retry (transient; nothing was done).\n"
  "Durations: 90s, 2m, 24h, 7d, 1h30m, or a number of seconds.\n";

static void print_usage(FILE *f) { fputs(usage_text, f); }

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("custos: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n\n", stderr);
  print_usage(stderr);
  return CLI_USAGE;
}

int cli_fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Exactly one line, whatever the server sent. */
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  fprintf(stderr, "Error: %s\n", msg);
  return CLI_FAIL;
}

/* ------------------------------------------------------------ connection */

int cli_call(cli_ctx *g, Custos__Request *req, int result, Custos__Response **res) {
  int rc;
  *res = NULL;
  if (g->client == NULL) {
    rc = cs_client_connect(&g->client, &g->opts);
    if (rc < 0)
      return cli_fail("%s", cs_error_message(rc));
  }
  rc = cs_client_call(g->client, req, res);
  if (rc < 0) {
    const char *msg = cs_client_errmsg(g->client);
    cli_fail("%s", msg[0] ? msg : cs_strerror(rc));
    return rc == CS_EBUSY ? CLI_RETRY : CLI_FAIL;
  }
  int got = (int)(*res)->result_case;
  if (got != result) {
    cs_wire_response_free(*res);
    *res = NULL;
    return cli_fail("unexpected response from the server (result %d, expected %d)", got, result);
  }
  return CLI_OK;
}

int cli_call_done(cli_ctx *g, Custos__Request *req, const char *key, const char *value,
                  const char *fmt, ...) {
  Custos__Response *res;
  int rc = cli_call(g, req, CUSTOS__RESPONSE__RESULT_EMPTY, &res);
  if (rc != CLI_OK)
    return rc;
  cs_wire_response_free(res);
  if (g->json) {
    jw_obj_begin();
    jw_kv_bool("success", 1);
    if (key != NULL && value != NULL)
      jw_kv_str(key, value);
    else if (key != NULL)
      jw_kv_bool(key, 1);
    jw_obj_end();
    jw_end();
  } else {
    va_list ap;
    va_start(ap, fmt);
    fputs("Success! ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
  }
  return CLI_OK;
}

/* -------------------------------------------------------- option parsing */

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

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, char **pos,
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
      const cli_opt *o = find_opt(opts, name, len);
      if (o == NULL)
        return cli_usage_error("%s: unknown option %s", cmd, a);
      const char *val = NULL;
      if (o->arg == 0) {
        if (eq != NULL)
          return cli_usage_error("%s: option --%s takes no value", cmd, o->name);
        *o->flag = 1;
        continue;
      }
      if (eq != NULL)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return cli_usage_error("%s: option --%s needs a value", cmd, o->name);
      if (o->arg == 1) {
        *o->val = val;
      } else {
        if (*o->nlist >= o->cap)
          return cli_usage_error("%s: option --%s given too many times", cmd, o->name);
        o->list[(*o->nlist)++] = val;
      }
      continue;
    }
    if (*npos >= max_pos)
      return cli_usage_error("%s: unexpected argument \"%s\"", cmd, a);
    pos[(*npos)++] = a;
  }
  return 0;
}

/* ------------------------------------------------------------ JSON writer */

/* The jw_* calls build one document in a cs_jbuf (common/jbuf.h, the same
 * writer as the audit log's) and jw_end prints it at once.  Invalid UTF-8
 * becomes U+FFFD so that every JSON reader accepts the output. */
static cs_jbuf jw = {.mode = CS_JBUF_REPLACE};

void jw_obj_begin(void) { cs_jbuf_begin_object(&jw); }
void jw_obj_end(void) { cs_jbuf_end_object(&jw); }
void jw_arr_begin(void) { cs_jbuf_begin_array(&jw); }
void jw_arr_end(void) { cs_jbuf_end_array(&jw); }
void jw_key(const char *key) { cs_jbuf_key(&jw, key); }
void jw_strn(const void *s, size_t n) { cs_jbuf_strn(&jw, s, n); }
void jw_str(const char *s) { cs_jbuf_str(&jw, s); }
void jw_bool(int b) { cs_jbuf_bool(&jw, b); }
void jw_u64(uint64_t v) { cs_jbuf_uint(&jw, v); }
void jw_i64(int64_t v) { cs_jbuf_int(&jw, v); }

void jw_end(void) {
  const char *text;
  size_t len;
  cs_jbuf_raw(&jw, "\n", 1);
  if (cs_jbuf_result(&jw, &text, &len) == 0)
    fwrite(text, 1, len, stdout);
  else
    fprintf(stderr, "Error: %s\n", cs_error_message(jw.err));
  cs_jbuf_free(&jw); /* wiped: the document may hold tokens or secrets */
}

void jw_kv_str(const char *key, const char *s) { jw_key(key); jw_str(s); }
void jw_kv_bool(const char *key, int b) { jw_key(key); jw_bool(b); }
void jw_kv_u64(const char *key, uint64_t v) { jw_key(key); jw_u64(v); }
void jw_kv_i64(const char *key, int64_t v) { jw_key(key); jw_i64(v); }

/* ------------------------------------------------------------------ table */

typedef struct row { char *key; char *val; size_t vlen; } row;
static row *rows;
static size_t nrows, caprows;

void tbl_row(const char *key, const char *fmt, ...) {
  if (nrows == caprows) {
    size_t cap = caprows ? caprows * 2 : 16;
    row *r = realloc(rows, cap * sizeof *r);
    if (r == NULL)
      return;
    rows = r;
    caprows = cap;
  }
  va_list ap;
  char *val = NULL;
  va_start(ap, fmt);
  int n = vasprintf(&val, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  rows[nrows].key = strdup(key);
  rows[nrows].val = val;
  rows[nrows].vlen = (size_t)n;
  nrows++;
}

void tbl_print(void) {
  size_t w = 3;
  for (size_t i = 0; i < nrows; i++)
    if (rows[i].key && strlen(rows[i].key) > w)
      w = strlen(rows[i].key);
  printf("%-*s    %s\n", (int)w, "Key", "Value");
  printf("%-*s    %s\n", (int)w, "---", "-----");
  for (size_t i = 0; i < nrows; i++) {
    const char *k = rows[i].key ? rows[i].key : "";
    if (rows[i].vlen == 0)
      printf("%s\n", k);
    else
      printf("%-*s    %s\n", (int)w, k, rows[i].val);
    free(rows[i].key);
    mbedtls_platform_zeroize(rows[i].val, rows[i].vlen);
    free(rows[i].val);
  }
  nrows = 0;
}

/* --------------------------------------------------------- global options */

/* Takes the global options out of argv (compacting it); returns 0 or a
 * usage error. */
static int parse_globals(cli_ctx *g, int *argc, char **argv, const char **format, int *help) {
  static const struct { const char *name; int id; } globals[] = {
    { "addr", 0 }, { "ca-cert", 1 }, { "token", 2 }, { "client-cert", 3 },
    { "client-key", 4 }, { "format", 5 },
  };
  int out = 0, rest = 0;
  for (int i = 0; i < *argc; i++) {
    char *a = argv[i];
    if (rest || strcmp(a, "--") == 0) {
      rest = 1;    /* everything after "--" belongs to the command */
      argv[out++] = a;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      *help = 1;
      continue;
    }
    int id = -1;
    const char *val = NULL;
    if (a[0] == '-' && a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      for (size_t k = 0; k < sizeof globals / sizeof globals[0]; k++)
        if (strlen(globals[k].name) == len && strncmp(globals[k].name, name, len) == 0)
          id = globals[k].id;
      if (id >= 0) {
        if (eq != NULL)
          val = eq + 1;
        else if (i + 1 < *argc)
          val = argv[++i];
        else
          return cli_usage_error("option %s needs a value", a);
      }
    }
    if (id < 0) {
      argv[out++] = a;
      continue;
    }
    switch (id) {
    case 0: g->opts.addr = val; break;
    case 1: g->opts.ca_file = val; break;
    case 2: g->opts.token = val; break;
    case 3: g->opts.cert_file = val; break;
    case 4: g->opts.key_file = val; break;
    case 5: *format = val; break;
    }
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

int main(int argc, char **argv) {
  cli_ctx g;
  int help = 0, rc;
  const char *format = env("CUSTOS_FORMAT");

  signal(SIGPIPE, SIG_IGN);
  memset(&g, 0, sizeof g);
  cs_client_opts_init(&g.opts);
  if (env("CUSTOS_ADDR")) g.opts.addr = env("CUSTOS_ADDR");
  g.opts.ca_file = env("CUSTOS_CACERT");
  g.opts.token = env("CUSTOS_TOKEN");
  g.opts.cert_file = env("CUSTOS_CLIENT_CERT");
  g.opts.key_file = env("CUSTOS_CLIENT_KEY");

  argc--;
  argv++;
  if ((rc = parse_globals(&g, &argc, argv, &format, &help)) != 0)
    return rc;
  if (format == NULL || strcmp(format, "table") == 0)
    g.json = 0;
  else if (strcmp(format, "json") == 0)
    g.json = 1;
  else
    return cli_usage_error("unknown format \"%s\" (table or json)", format);

  if (help || (argc > 0 && strcmp(argv[0], "help") == 0)) {
    print_usage(stdout);
    return CLI_OK;
  }
  if (argc == 0)
    return cli_usage_error("no command given");

  const char *cmd = argv[0];
  if (strcmp(cmd, "status") == 0)
    rc = cmd_status(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "operator") == 0)
    rc = cmd_operator(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "kv") == 0)
    rc = cmd_kv(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "token") == 0)
    rc = cmd_token(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "policy") == 0)
    rc = cmd_policy(&g, argc - 1, argv + 1);
  else if (strcmp(cmd, "audit") == 0)
    rc = cmd_audit(&g, argc - 1, argv + 1);
  else
    rc = cli_usage_error("unknown command \"%s\"", cmd);

  cs_client_close(g.client);
  if (fflush(stdout) != 0 && rc == CLI_OK)
    rc = cli_fail("cannot write the output: %s", strerror(errno));
  return rc;
}
