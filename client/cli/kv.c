/*
 * kv: the key/value commands: kv put / get / list / delete, and the `kv`
 * table.  `--mount kv` sends put/get/list/delete to the versioned mount
 * (kv2.c, which also owns undelete, destroy and metadata).
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

/* ----------------------------------------------------------------- mount */

/*
 * put, get, list and delete serve two mounts: "secret" (KV version 1, here,
 * the default) and "kv" (versioned, kv2.c).  The mount is read before the
 * options are parsed, since each mount has options of its own (--cas,
 * --version, --versions); kv2.c parses the words again and refuses any
 * other mount name.  Returns 1 for the versioned mount.
 */
static int versioned(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (strcmp(a, "--") == 0)
      break;
    if (strcmp(a, "--mount") == 0 || strcmp(a, "-mount") == 0)
      v = i + 1 < argc ? argv[i + 1] : NULL;
    else if (strncmp(a, "--mount=", 8) == 0)
      v = a + 8;
    else if (strncmp(a, "-mount=", 7) == 0)
      v = a + 7;
    if (v != NULL)
      return strcmp(v, "secret") != 0 && strcmp(v, "secret/") != 0;
  }
  return 0;
}

/* The --mount option of the version 1 commands: only "secret" gets here. */
#define MOUNT_OPT(var) { .name = "mount", .arg = 1, .val = &(var) }

/* ------------------------------------------------------------------ put */

static int kv_put(cli_ctx *g, int argc, char **argv) {
  char *pos[1 + KV_MAX_FIELDS];
  const char *mount = NULL;
  const cli_opt opts[] = { MOUNT_OPT(mount), { 0 } };
  size_t npos;
  int rc;
  if (versioned(argc, argv))
    return cli_kv2_put(g, argc, argv);
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1 + KV_MAX_FIELDS, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  if (npos < 2)
    return cli_usage(g, "missing K=V");

  size_t nf = npos - 1;
  Custos__KvPair *pairs = calloc(nf, sizeof *pairs);
  Custos__KvPair **pp = calloc(nf, sizeof *pp);
  uint8_t **owned = calloc(nf, sizeof *owned);
  size_t *owned_len = calloc(nf, sizeof *owned_len);
  int used_stdin = 0;
  rc = CLI_OK;
  if (pairs == NULL || pp == NULL || owned == NULL || owned_len == NULL) {
    rc = cli_fail(g, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < nf && rc == CLI_OK; i++) {
    char *kvs = pos[1 + i];
    char *eq = strchr(kvs, '=');
    if (eq == NULL || eq == kvs) {
      rc = cli_usage(g, "expected K=V, got \"%.64s\"", kvs);
      break;
    }
    *eq = '\0';   /* argv is ours to modify */
    const char *v = eq + 1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(pairs[j].key, kvs) == 0) {
        rc = cli_usage(g, "field \"%.64s\" given twice", kvs);
        break;
      }
    if (rc != CLI_OK)
      break;
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = kvs;
    pp[i] = &pairs[i];
    if (strcmp(v, "-") == 0) {
      if (used_stdin++) {
        rc = cli_usage(g, "only one value can come from stdin");
        break;
      }
      rc = cli_read_stdin(g, &owned[i], &owned_len[i]);
      pairs[i].value.data = owned[i];
      pairs[i].value.len = owned_len[i];
    } else if (v[0] == '@') {
      rc = cli_read_file(g, v + 1, &owned[i], &owned_len[i]);
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

static int kv_get(cli_ctx *g, int argc, char **argv) {
  const char *field = NULL, *mount = NULL;
  const cli_opt opts[] = { { .name = "field", .arg = 1, .val = &field }, MOUNT_OPT(mount), { 0 } };
  char *pos[1];
  size_t npos;
  int rc;
  if (versioned(argc, argv))
    return cli_kv2_get(g, argc, argv);
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");

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
      out_raw(g, r->data[i]->value.data, r->data[i]->value.len);
      if (isatty(1))
        out_raw(g, "\n", 1);
      rc = CLI_OK;
      break;
    }
    if (rc != CLI_OK)
      cli_fail(g, "field %s not found", field);
  } else {
    /* JSON: {"data":{K:V,...}}; text: a "K  V" row a field (the text back
     * end shows control bytes as \xNN). */
    out_map_begin(g, "data");
    for (size_t i = 0; i < r->n_data; i++)
      out_strn(g, S(r->data[i]->key), S(r->data[i]->key), r->data[i]->value.data,
               r->data[i]->value.len);
    out_map_end(g);
  }
  cs_wire_response_free(res);
  return rc;
}

/* ----------------------------------------------------------------- list */

static int kv_list(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  const char *mount = NULL;
  const cli_opt opts[] = { MOUNT_OPT(mount), { 0 } };
  size_t npos;
  int rc;
  if (versioned(argc, argv))
    return cli_kv2_list(g, argc, argv);
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
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
  out_list_begin(g, "keys", "Keys");
  for (size_t i = 0; i < r->n_keys; i++)
    out_item(g, S(r->keys[i]));
  out_list_end(g);
  cs_wire_response_free(res);
  return CLI_OK;
}

/* --------------------------------------------------------------- delete */

static int kv_delete(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  const char *mount = NULL;
  const cli_opt opts[] = { MOUNT_OPT(mount), { 0 } };
  size_t npos;
  int rc;
  if (versioned(argc, argv))
    return cli_kv2_delete(g, argc, argv);
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KvDeleteReq op = CUSTOS__KV_DELETE_REQ__INIT;
  op.path = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_KV_DELETE;
  req.kv_delete = &op;
  return cli_call_done(g, &req, "path", pos[0], "Data deleted at: %s", pos[0]);
}

const cli_cmd cli_kv_cmds[] = {
  { "put", kv_put, NULL, "write the fields of a path",
    "PATH K=V [K=V ...]\n--mount kv [--cas N] PATH K=V [K=V ...]",
    "Replaces the fields of PATH.  V is the value itself, - (read from stdin,\n"
    "for at most one field) or @FILE (the file's bytes).  PATH is 1..508 bytes\n"
    "of printable ASCII without empty, . or .. segments; at most 1024 fields.\n"
    "Use -- before words that start with a dash.\n"
    "\n"
    "Options:\n"
    "  --mount secret|kv   secret (default): KV version 1; kv: the versioned mount,\n"
    "                      which keeps the old versions and prints the new one\n"
    "  --cas N             (kv) write only if the current version is N (0: only\n"
    "                      if the path does not exist)\n" },
  { "get", kv_get, NULL, "read the fields of a path",
    "PATH [--field K]\n--mount kv [--version N] [--field K] PATH",
    "Options:\n"
    "  --field K           write only the raw bytes of field K (a newline only\n"
    "                      when stdout is a terminal); exit 1 when K is absent\n"
    "  --mount secret|kv   which mount (default secret, KV version 1)\n"
    "  --version N         (kv) that version (default: the current one)\n" },
  { "list", kv_list, NULL, "list the keys under a prefix", "[--mount kv] [PREFIX]",
    "Entries ending in / are folders.\n" },
  { "delete", kv_delete, NULL, "delete a path",
    "PATH\n--mount kv [--versions 1,2] PATH",
    "Version 1 (default): deletes PATH.  With --mount kv: a soft delete of\n"
    "the current version, or of the versions listed (undelete restores them).\n" },
  { "undelete", cli_kv2_undelete, NULL, "(kv) restore soft-deleted versions",
    "--versions 1,2 PATH", "Versioned mount only (--mount kv is implied).\n" },
  { "destroy", cli_kv2_destroy, NULL, "(kv) erase versions for good", "--versions 1,2 PATH",
    "Versioned mount only: the data of those versions is erased.\n" },
  { "metadata", NULL, cli_kv2_metadata_cmds, "(kv) versions and settings of a path", NULL, NULL },
  { 0 },
};
