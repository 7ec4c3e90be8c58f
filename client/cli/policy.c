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
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 2, &npos)) != 0)
    return rc;
  if (npos < 2)
    return cli_usage(g, "needs NAME and FILE (- for stdin)");
  rc = strcmp(pos[1], "-") == 0 ? cli_read_stdin(g, &doc, &len) : cli_read_file(g, pos[1], &doc, &len);
  if (rc != 0)
    return rc;
  if (memchr(doc, '\0', len) != NULL) {
    cli_free_secret(doc, len + 1);
    return cli_fail(g, "policy document %s contains a NUL byte", pos[1]);
  }
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyWriteReq op = CUSTOS__POLICY_WRITE_REQ__INIT;
  op.name = pos[0];
  op.document = (char *)doc;
  req.op_case = CUSTOS__REQUEST__OP_POLICY_WRITE;
  req.policy_write = &op;
  rc = cli_call_done(g, &req, "name", pos[0], "Uploaded policy: %s", pos[0]);
  cli_free_secret(doc, len + 1);
  return rc;
}

static int policy_read(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing NAME");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyReadReq op = CUSTOS__POLICY_READ_REQ__INIT;
  Custos__Response *res;
  op.name = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_POLICY_READ;
  req.policy_read = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_POLICY, &res)) != 0)
    return rc;
  const char *doc = S(res->policy->document);
  size_t n = strlen(doc);
  out_str(g, "name", NULL, res->policy->name && res->policy->name[0] ? res->policy->name : pos[0]);
  out_str(g, "document", NULL, doc);
  out_text(g, "%s%s", doc, n == 0 || doc[n - 1] != '\n' ? "\n" : "");
  cs_wire_response_free(res);
  return CLI_OK;
}

static int policy_list(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyListReq op = CUSTOS__POLICY_LIST_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_POLICY_LIST;
  req.policy_list = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_POLICY_LIST, &res)) != 0)
    return rc;
  const Custos__PolicyListRes *r = res->policy_list;
  out_list_begin(g, "policies", "");
  for (size_t i = 0; i < r->n_names; i++)
    out_item(g, S(r->names[i]));
  out_list_end(g);
  cs_wire_response_free(res);
  return CLI_OK;
}

static int policy_delete(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing NAME");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__PolicyDeleteReq op = CUSTOS__POLICY_DELETE_REQ__INIT;
  op.name = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_POLICY_DELETE;
  req.policy_delete = &op;
  return cli_call_done(g, &req, "name", pos[0], "Deleted policy: %s", pos[0]);
}

const cli_cmd cli_policy_cmds[] = {
  { "write", policy_write, NULL, "upload a policy document", "NAME FILE",
    "FILE - reads stdin.  The document is text (JSON rules) and must not\n"
    "contain a NUL byte.\n" },
  { "read", policy_read, NULL, "print a policy document", "NAME", "" },
  { "list", policy_list, NULL, "list the policy names", "", "" },
  { "delete", policy_delete, NULL, "delete a policy", "NAME", "" },
  { 0 },
};
