/*
 * policy: policy write / read / list / delete.  A policy document is text
 * sent as a protobuf string, so it must not contain a NUL byte.
 */
#include "cli.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) ((x) != NULL ? (x) : "")

static int policy_write(cli_ctx *g, int argc, char **argv) {
  char *pos[2];
  size_t npos, len = 0;
  uint8_t *doc = NULL;
  int rc;
  if ((rc = cli_parse("policy write", argc, argv, NULL, pos, 2, &npos)) != 0)
    return rc;
  if (npos < 2)
    return cli_usage_error("policy write: needs NAME and FILE (- for stdin)");
  rc = strcmp(pos[1], "-") == 0 ? cli_read_stdin(&doc, &len) : cli_read_file(pos[1], &doc, &len);
  if (rc != 0)
    return rc;
  if (memchr(doc, '\0', len) != NULL) {
    free(doc);
    return cli_fail("policy document %s contains a NUL byte", pos[1]);
  }
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyWriteReq op = CUSTOS__POLICY_WRITE_REQ__INIT;
  op.name = pos[0];
  op.document = (char *)doc;
  req.op_case = CUSTOS__REQUEST__OP_POLICY_WRITE;
  req.policy_write = &op;
  rc = cli_call_done(g, &req, "name", pos[0], "Uploaded policy: %s", pos[0]);
  free(doc);
  return rc;
}

static int policy_read(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("policy read", argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("policy read: missing NAME");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyReadReq op = CUSTOS__POLICY_READ_REQ__INIT;
  Custos__Response *res;
  op.name = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_POLICY_READ;
  req.policy_read = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_POLICY, &res)) != 0)
    return rc;
  const char *doc = S(res->policy->document);
  if (g->json) {
    jw_obj_begin();
    jw_kv_str("name", res->policy->name && res->policy->name[0] ? res->policy->name : pos[0]);
    jw_kv_str("document", doc);
    jw_obj_end();
    jw_end();
  } else {
    size_t n = strlen(doc);
    fputs(doc, stdout);
    if (n == 0 || doc[n - 1] != '\n')
      putchar('\n');
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

static int policy_list(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse("policy list", argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyListReq op = CUSTOS__POLICY_LIST_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_POLICY_LIST;
  req.policy_list = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_POLICY_LIST, &res)) != 0)
    return rc;
  const Custos__PolicyListRes *r = res->policy_list;
  if (g->json) {
    jw_obj_begin();
    jw_key("policies");
    jw_arr_begin();
    for (size_t i = 0; i < r->n_names; i++)
      jw_str(r->names[i]);
    jw_arr_end();
    jw_obj_end();
    jw_end();
  } else {
    for (size_t i = 0; i < r->n_names; i++)
      printf("%s\n", S(r->names[i]));
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

static int policy_delete(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("policy delete", argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("policy delete: missing NAME");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyDeleteReq op = CUSTOS__POLICY_DELETE_REQ__INIT;
  op.name = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_POLICY_DELETE;
  req.policy_delete = &op;
  return cli_call_done(g, &req, "name", pos[0], "Deleted policy: %s", pos[0]);
}

int cmd_policy(cli_ctx *g, int argc, char **argv) {
  if (argc == 0)
    return cli_usage_error("policy: missing subcommand");
  if (strcmp(argv[0], "write") == 0)
    return policy_write(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "read") == 0)
    return policy_read(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "list") == 0)
    return policy_list(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "delete") == 0)
    return policy_delete(g, argc - 1, argv + 1);
  return cli_usage_error("policy: unknown subcommand \"%s\"", argv[0]);
}
