/*
 * custos audit hash VALUE: the audit log's form of a value
 * ("hmac-sha256:<hex>", keyed with the installation's audit key), so an
 * auditor can check whether a given secret, share or token appears in the
 * log without the log ever holding it.  VALUE "-" reads stdin, "@FILE" a
 * file (both byte for byte).
 */
#include "cli.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int audit_hash(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing VALUE (or - for stdin, @FILE)");
  uint8_t *value = NULL;
  size_t len = 0;
  int owned = 1;
  if (strcmp(pos[0], "-") == 0)
    rc = cli_read_stdin(g, &value, &len);
  else if (pos[0][0] == '@')
    rc = cli_read_file(g, pos[0] + 1, &value, &len);
  else {
    value = (uint8_t *)pos[0];
    len = strlen(pos[0]);
    owned = 0;
  }
  if (rc != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__AuditHashReq op = CUSTOS__AUDIT_HASH_REQ__INIT;
  Custos__Response *res = NULL;
  op.value.data = value;
  op.value.len = len;
  req.op_case = CUSTOS__REQUEST__OP_AUDIT_HASH;
  req.audit_hash = &op;
  rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_AUDIT_HASH, &res);
  if (owned)
    cli_free_secret(value, len + 1);
  if (rc != 0)
    return rc;
  out_str(g, "hash", NULL, res->audit_hash->hash);
  out_text(g, "%s\n", res->audit_hash->hash ? res->audit_hash->hash : "");
  cs_wire_response_free(res);
  return CLI_OK;
}

const cli_cmd cli_audit_cmds[] = {
  { "hash", audit_hash, NULL, "the audit log's form of a value", "VALUE",
    "Prints hmac-sha256:<hex> of VALUE keyed with this installation's audit\n"
    "key, to search the audit log for a secret, share or token without the\n"
    "log holding it.  VALUE - reads stdin, @FILE a file, byte for byte.\n"
    "Needs sudo on sys/audit-hash and a configured audit log.\n" },
  { 0 },
};
