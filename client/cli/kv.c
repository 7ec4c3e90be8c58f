/*
 * kv: the key/value commands: kv put / get / list / delete.
 *
 * Values are bytes: from the command line, from stdin ("-") or from a file
 * ("@FILE").  `kv get --field K` writes the raw bytes alone (a newline is
 * added only for a terminal) so values can be piped; the table and JSON
 * listings escape what is not printable.  Value buffers are wiped on free.
 */
#include "cli.h"
#include "kv2.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S(x) ((x) != NULL ? (x) : "")
#define KV_MAX_FIELDS 1024

/* ------------------------------------------------------------------ put */

static int kv_put(cli_ctx *g, int argc, char **argv) {
  char *pos[1 + KV_MAX_FIELDS];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv put", argc, argv, NULL, pos, 1 + KV_MAX_FIELDS, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("kv put: missing PATH");
  if (npos < 2)
    return cli_usage_error("kv put: missing K=V");

  size_t nf = npos - 1;
  Custos__KvPair *pairs = calloc(nf, sizeof *pairs);
  Custos__KvPair **pp = calloc(nf, sizeof *pp);
  uint8_t **owned = calloc(nf, sizeof *owned);
  size_t *owned_len = calloc(nf, sizeof *owned_len);
  int used_stdin = 0;
  rc = CLI_OK;
  if (pairs == NULL || pp == NULL || owned == NULL || owned_len == NULL) {
    rc = cli_fail("out of memory");
    goto out;
  }
  for (size_t i = 0; i < nf && rc == CLI_OK; i++) {
    char *kvs = pos[1 + i];
    char *eq = strchr(kvs, '=');
    if (eq == NULL || eq == kvs) {
      rc = cli_usage_error("kv put: expected K=V, got \"%s\"", kvs);
      break;
    }
    *eq = '\0';   /* argv is ours to modify */
    const char *v = eq + 1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(pairs[j].key, kvs) == 0) {
        rc = cli_usage_error("kv put: field \"%s\" given twice", kvs);
        break;
      }
    if (rc != CLI_OK)
      break;
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = kvs;
    pp[i] = &pairs[i];
    if (strcmp(v, "-") == 0) {
      if (used_stdin++) {
        rc = cli_usage_error("kv put: only one value can come from stdin");
        break;
      }
      rc = cli_read_stdin(&owned[i], &owned_len[i]);
      pairs[i].value.data = owned[i];
      pairs[i].value.len = owned_len[i];
    } else if (v[0] == '@') {
      rc = cli_read_file(v + 1, &owned[i], &owned_len[i]);
      pairs[i].value.data = owned[i];
      pairs[i].value.len = owned_len[i];
    } else {
      pairs[i].value.data = (uint8_t *)v;
      pairs[i].value.len = strlen(v);
    }
  }
  if (rc == CLI_OK) {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__KvPutReq op = CUSTOS__KV_PUT_REQ__INIT;
    op.path = pos[0];
    op.n_data = nf;
    op.data = pp;
    req.op_case = CUSTOS__REQUEST__OP_KV_PUT;
    req.kv_put = &op;
    rc = cli_call_done(g, &req, "path", pos[0], "Data written to: %s", pos[0]);
  }
out:
  if (owned != NULL)
    for (size_t i = 0; i < nf; i++)
      cli_free_secret(owned[i], owned_len[i] + 1);
  free(owned);
  free(owned_len);
  free(pp);
  free(pairs);
  return rc;
}

/* ------------------------------------------------------------------ get */

/* A printable copy for the table: control bytes become \xNN. */
static char *printable(const uint8_t *p, size_t n) {
  char *s = malloc(4 * n + 1), *o = s;
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < 0x20 || p[i] == 0x7f)
      o += sprintf(o, "\\x%02x", p[i]);
    else
      *o++ = (char)p[i];
  }
  *o = '\0';
  return s;
}

static int kv_get(cli_ctx *g, int argc, char **argv) {
  const char *field = NULL;
  const cli_opt opts[] = { { .name = "field", .arg = 1, .val = &field }, { 0 } };
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv get", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("kv get: missing PATH");

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KvGetReq op = CUSTOS__KV_GET_REQ__INIT;
  Custos__Response *res;
  op.path = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_KV_GET;
  req.kv_get = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KV_GET, &res)) != 0)
    return rc;
  const Custos__KvGetRes *r = res->kv_get;
  if (field != NULL) {
    rc = CLI_FAIL;
    for (size_t i = 0; i < r->n_data; i++) {
      if (strcmp(S(r->data[i]->key), field) != 0)
        continue;
      fwrite(r->data[i]->value.data, 1, r->data[i]->value.len, stdout);
      if (isatty(1))
        putchar('\n');
      rc = CLI_OK;
      break;
    }
    if (rc != CLI_OK)
      cli_fail("field %s not found", field);
  } else if (g->json) {
    jw_obj_begin();
    jw_key("data");
    jw_obj_begin();
    for (size_t i = 0; i < r->n_data; i++) {
      jw_key(S(r->data[i]->key));
      jw_strn(r->data[i]->value.data, r->data[i]->value.len);
    }
    jw_obj_end();
    jw_obj_end();
    jw_end();
  } else {
    for (size_t i = 0; i < r->n_data; i++) {
      char *v = printable(r->data[i]->value.data, r->data[i]->value.len);
      if (v == NULL) {
        rc = cli_fail("out of memory");
        break;
      }
      char *k = printable((const uint8_t *)S(r->data[i]->key), strlen(S(r->data[i]->key)));
      if (k == NULL) {
        cli_free_secret(v, strlen(v));
        rc = cli_fail("out of memory");
        break;
      }
      tbl_row(k, "%s", v);
      free(k);
      cli_free_secret(v, strlen(v));
    }
    if (rc == CLI_OK)
      tbl_print();
  }
  cs_wire_response_free(res);
  return rc;
}

/* ----------------------------------------------------------------- list */

static int kv_list(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv list", argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KvListReq op = CUSTOS__KV_LIST_REQ__INIT;
  Custos__Response *res;
  op.prefix = npos ? pos[0] : "";
  req.op_case = CUSTOS__REQUEST__OP_KV_LIST;
  req.kv_list = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KV_LIST, &res)) != 0)
    return rc;
  const Custos__KvListRes *r = res->kv_list;
  if (g->json) {
    jw_obj_begin();
    jw_key("keys");
    jw_arr_begin();
    for (size_t i = 0; i < r->n_keys; i++)
      jw_str(r->keys[i]);
    jw_arr_end();
    jw_obj_end();
    jw_end();
  } else {
    printf("Keys\n----\n");
    for (size_t i = 0; i < r->n_keys; i++)
      printf("%s\n", S(r->keys[i]));
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

/* --------------------------------------------------------------- delete */

static int kv_delete(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv delete", argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("kv delete: missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KvDeleteReq op = CUSTOS__KV_DELETE_REQ__INIT;
  op.path = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_KV_DELETE;
  req.kv_delete = &op;
  return cli_call_done(g, &req, "path", pos[0], "Data deleted at: %s", pos[0]);
}

int cmd_kv(cli_ctx *g, int argc, char **argv) {
  if (argc == 0)
    return cli_usage_error("kv: missing subcommand");
  /* The versioned mount (kv2.c): --mount kv, or a v2-only subcommand. */
  int strip;
  if (cli_kv2_selected(argc, argv, &strip))
    return cmd_kv2(g, argc, argv);
  if (strip >= 0) { /* --mount secret: the default, dropped */
    int n = strchr(argv[strip], '=') != NULL ? 1 : 2;
    if (strip + n > argc)
      n = argc - strip;
    memmove(argv + strip, argv + strip + n, (size_t)(argc - strip - n) * sizeof *argv);
    argc -= n;
  }
  if (strcmp(argv[0], "put") == 0)
    return kv_put(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "get") == 0)
    return kv_get(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "list") == 0)
    return kv_list(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "delete") == 0)
    return kv_delete(g, argc - 1, argv + 1);
  return cli_usage_error("kv: unknown subcommand \"%s\"", argv[0]);
}
